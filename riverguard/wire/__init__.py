"""The wire contract of docs/protocol.md: models, topics and time values."""
