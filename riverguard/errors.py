"""Errors of the shared package.

RiverguardError
├── TopicError            (riverguard.wire.topics) a topic outside the protocol
├── ConfigError           (riverguard.config) a site configuration that cannot be used
├── TlsSettingsError      (riverguard.mqtt) broker TLS files that cannot be used
├── ServiceError          (riverguard.services) a local service that would not start
├── SpeechError           (riverguard.speech) espeak-ng missing, failing or too slow
└── HubSessionError       (riverguard.hub_session) the hub refused a tool's login
"""


class RiverguardError(Exception):
    """Base of every error raised by the riverguard package."""
