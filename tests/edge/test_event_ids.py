"""Keyed event ids: stable under one key, unguessable without it (edge/event_ids.py)."""

from __future__ import annotations

from pathlib import Path

from edge.event_ids import EventIds
from riverguard.wire.event_ids import derived_id, device_seq_id
from riverguard.wire.models import Event


def test_one_key_gives_one_id_per_derived_id_and_another_key_another() -> None:
    ids, other = EventIds(b"k" * 32), EventIds(b"o" * 32)
    minted = ids.mint("db-fence-01:5")
    assert minted == ids.mint("db-fence-01:5")
    assert minted != ids.mint("db-fence-01:6")
    assert minted != other.mint("db-fence-01:5")
    assert "db-fence-01:5" == derived_id(minted)
    assert "db-fence-01:5" == EventIds().mint("db-fence-01:5")  # no key: as derived


def test_the_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = EventIds.load_or_create(tmp_path / "edge")
    again = EventIds.load_or_create(tmp_path / "edge")
    assert first.key == again.key
    assert first.key != EventIds.load_or_create(tmp_path / "other").key


def test_derived_parts_are_read_back_for_tools_that_match_seqs() -> None:
    tag = ":kabcdefghijklmnop"
    assert "db-fence-01:5" == device_seq_id(f"db-fence-01:5:b1722115265{tag}")
    assert "db-fence-01:5:b1722115265" == derived_id(f"db-fence-01:5:b1722115265{tag}")
    assert "db-cam-01:frigate-1.2-abc" == derived_id(f"db-cam-01:frigate-1.2-abc{tag}")
    # Not a tag: left alone (a Node-RED peer's ids, an older edge's).
    assert "db-fence-01:5:kshort" == derived_id("db-fence-01:5:kshort")


def test_a_long_derived_id_is_cut_to_fit_the_wire_and_stays_apart() -> None:
    ids = EventIds(b"k" * 32)
    long_a, long_b = "cam:frigate-" + "a" * 190, "cam:frigate-" + "a" * 189 + "b"
    minted = [ids.mint(long_a), ids.mint(long_b)]
    assert [200, 200] == [len(event_id) for event_id in minted]
    assert minted[0] != minted[1]
    Event.model_validate({**_EVENT, "id": minted[0]})


_EVENT = {
    "site": "s",
    "device": "cam",
    "kind": "camera.intrusion",
    "zone": "z",
    "ts": "2026-07-27T21:21:05.123Z",
    "edge_ts": "2026-07-27T21:21:05.123Z",
    "severity": "warning",
}
