"""Errors of the shared package.

RiverguardError
├── TopicError            (riverguard.wire.topics) a topic outside the protocol
├── ConfigError           (riverguard.config) a site configuration that cannot be used
├── TlsSettingsError      (riverguard.mqtt) broker TLS files that cannot be used
└── ServiceError          (riverguard.services) a local service that would not start
"""


class RiverguardError(Exception):
    """Base of every error raised by the riverguard package."""
