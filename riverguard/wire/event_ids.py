"""The shape of event ids (PROTOCOL 2.1, 7.10), for readers that match ids to reports.

An edge derives ``{device}:{seq}`` (``:b{boot}`` after a device restart, or
``{device}:frigate-{id}``) and adds its key tag ``:k{tag}`` (16 lowercase
base32 characters, ``edge.event_ids``). Tools that know what they sent
(seqs) compare the derived part; nothing may rely on the tag's value.
"""

from __future__ import annotations

import re

TAG_PREFIX = ":k"
TAG_LENGTH = 16
_TAG = re.compile(r":k[a-z2-7]{16}$")


def derived_id(event_id: str) -> str:
    """``event_id`` without its key tag: ``db-fence-01:5:kabc…`` -> ``db-fence-01:5``."""
    return event_id[: -len(TAG_PREFIX) - TAG_LENGTH] if _TAG.search(event_id) else event_id


def device_seq_id(event_id: str) -> str:
    """Also without a boot suffix: ``db-fence-01:5:b1722115265:kabc…`` -> ``db-fence-01:5``."""
    head, sep, boot = derived_id(event_id).rpartition(":b")
    return head if sep and boot.isdigit() else derived_id(event_id)
