"""The one list of reject reasons: each side's reasons are in it and documented."""

from __future__ import annotations

import re
from pathlib import Path

from edge.metrics import EdgeMetrics
from hub.metrics import HubMetrics
from riverguard.wire.reject_reasons import (
    EDGE_REJECT_REASONS,
    HUB_REJECT_REASONS,
    REJECT_REASONS,
)

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def _documented() -> dict[str, str]:
    text = PROTOCOL.read_text(encoding="utf-8")
    section = text[text.index("### 7.32 Reject reasons") :]
    return dict(re.findall(r"^\| `(\w+)` \| (hub|edge|both) \|", section, flags=re.MULTILINE))


def test_every_reason_is_used_by_a_side_and_listed_once() -> None:
    assert sorted(REJECT_REASONS) == sorted(set(HUB_REJECT_REASONS) | set(EDGE_REJECT_REASONS))
    assert len(set(REJECT_REASONS)) == len(REJECT_REASONS)


def test_every_reason_is_documented_with_its_side() -> None:
    def side(reason: str) -> str:
        hub, edge = reason in HUB_REJECT_REASONS, reason in EDGE_REJECT_REASONS
        return "both" if hub and edge else "hub" if hub else "edge"

    assert {reason: side(reason) for reason in REJECT_REASONS} == _documented()


def test_each_side_counts_its_reasons_from_the_start() -> None:
    def labelled(registry_metrics: HubMetrics | EdgeMetrics, name: str) -> set[str]:
        return {
            sample.labels["reason"]
            for family in registry_metrics.registry.collect()
            for sample in family.samples
            if sample.name == f"{name}_total"
        }

    assert set(HUB_REJECT_REASONS) == labelled(HubMetrics(), "riverguard_hub_rejected")
    assert set(EDGE_REJECT_REASONS) == labelled(EdgeMetrics(), "riverguard_edge_rejected")
