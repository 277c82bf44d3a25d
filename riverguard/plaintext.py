"""Plain text stays on the machine: the rule every listener and connection settings obey.

A component told to listen or connect without TLS on an address other than
loopback refuses to start, unless its settings say ``allow_plaintext``. Host
names other than ``localhost`` count as remote: what a name resolves to can
change after the check, and a deployment that means plain text on a trusted
network can say so in one line.
"""

from __future__ import annotations

import ipaddress

_LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address or the name localhost; the wildcard
    addresses (0.0.0.0, ::, empty) are every address, so they are not."""
    name = host.strip().strip("[]").lower()
    if name in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(what: str, host: str, *, encrypted: bool, allowed: bool, remedy: str) -> str | None:
    """Why ``what`` may not carry plain text to or from ``host``, or None when it may."""
    if encrypted or allowed or is_loopback(host):
        return None
    return (
        f"{what} would be plain text on {host!r}, which is not a loopback address: "
        f"{remedy}, or set allow_plaintext if this network is trusted"
    )


def check(*refusals: str | None) -> None:
    """Raise ValueError (a settings validation error) naming every refusal, if any."""
    reasons = [reason for reason in refusals if reason is not None]
    if reasons:
        raise ValueError("; ".join(reasons))
