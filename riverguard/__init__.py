"""Riverguard: real-time riverbank intrusion alerting.

This package is shared by every deployable: the wire models and topics of
docs/protocol.md, the site configuration, logging, the local services
launcher and the ``riverguard`` command line.
"""

__version__ = "0.1.0"
