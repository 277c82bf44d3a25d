"""Keyed event ids: stable under one key, unguessable without it (edge/event_ids.py)."""

from __future__ import annotations

from pathlib import Path

from edge.event_ids import EventIds
from riverguard.wire.event_ids import derived_id, device_seq_id


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
