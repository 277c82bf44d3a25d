"""Why the hub or an edge refuses a message from the field or the network (PROTOCOL 7.32).

A reason is the ``reason`` label of ``riverguard_hub_rejected_total`` and
``riverguard_edge_rejected_total``, the ``reason`` of the log line, and on the
hub the reason kept with the dead letter. ``RejectReason`` lets mypy refuse a
misspelt one where a refusal is raised.
"""

from __future__ import annotations

from typing import Literal, get_args

# Each side's reasons once: the metric of each side is labelled with its own up
# front, so that a dashboard shows a zero rather than no series.
BothSides = Literal[
    "bad_topic",
    "oversize",
    "malformed_json",
    "invalid",
    "unknown_device",
    "unknown_zone",
    # An event in a zone of the site that its device does not cover (a fence of z1
    # reporting, or clearing, z2).
    "wrong_zone",
]
HubOnly = Literal[
    # An event batch (PROTOCOL 7.12) that is JSON but not an array.
    "not_array",
    "unknown_site",
    "site_mismatch",
    "not_jpeg",
    "unknown_announcement",
    "unknown_speaker",
    # An acknowledgement that does not move its speaker's state forward (a repeat, a
    # late one, or one forged to overwrite a final state).
    "stale_state",
    # An event whose kind its device's type cannot report (a speaker's breach, a
    # fence's water entry), or whose id is not one of its device's.
    "wrong_device",
    # A new warning of an edge's own for a zone sooner than the site's cooldown allows.
    "edge_auto_too_often",
]
EdgeOnly = Literal[
    "wrong_site",
    "duplicate",
    # The same device, zone and kind again within the site's debounce window.
    "debounced",
    # The event was kept; only the snapshot the camera attached was left out.
    "bad_snapshot",
    # An announce whose audio URL is not under the hub's (PROTOCOL 7.31): not fetched.
    "foreign_audio_url",
    # A speaker's state for an announcement it is not playing (forged or stale).
    "unknown_state",
    # A speaker's state after its announcement ended (done, failed or stopped).
    "late_state",
    # A command of the hub for a speaker while the site broker is away.
    "field_down",
    # A bug in handling one message; the loop goes on.
    "internal",
]
RejectReason = Literal[BothSides, HubOnly, EdgeOnly]

REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)
HUB_REJECT_REASONS: tuple[RejectReason, ...] = get_args(BothSides) + get_args(HubOnly)
EDGE_REJECT_REASONS: tuple[RejectReason, ...] = get_args(BothSides) + get_args(EdgeOnly)
