"""The state store on SQLite and PostgreSQL: audit records go with their change or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub import alarms as rules
from hub.errors import StoreError
from hub.store import AuditEntry, Store, alarm_audit
from riverguard.wire.models import Event
from tests.hub.conftest import STORES, store_url

pytestmark = pytest.mark.integration

T0 = datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_url(request.param) as url:
        opened = await Store.open(url or f"sqlite+aiosqlite:///{tmp_path}/hub.db")
        try:
            yield opened
        finally:
            await opened.close()


def _event() -> Event:
    return Event.model_validate(
        {
            "id": "db-fence-01:1",
            "site": "danshui-bridge",
            "device": "db-fence-01",
            "kind": "fence.breach",
            "zone": "z1",
            "ts": T0,
            "edge_ts": T0,
            "severity": "warning",
        }
    )


async def test_a_change_whose_audit_record_cannot_be_written_does_not_happen(store: Store) -> None:
    alarm = rules.open_alarm(_event(), T0, "alm-1")
    await store.save_alarm(alarm)
    acked = rules.acknowledge(alarm, "officer-li", T0)
    unwritable = AuditEntry(
        ts=T0, username="officer-li", action="ack", alarm_id="alm-1", before={"x": object()}
    )

    with pytest.raises(StoreError):
        await store.save_alarm(acked, unwritable)
    await store.save_alarm(acked, alarm_audit("ack", "officer-li", alarm, acked))

    entries = await store.list_audit(alarm_id="alm-1")
    assert ["ack"] == [e.action for e in entries]
    assert ("open", "acknowledged") == (entries[0].before["state"], entries[0].after["state"])  # type: ignore[index]
    stored = await store.get_alarm("alm-1")
    assert stored is not None
    assert "acknowledged" == stored.state


async def test_audit_filters_combine_and_page_newest_first(store: Store) -> None:
    for index, (user, action) in enumerate(
        [("a", "login"), ("b", "login"), ("a", "login_failed"), ("a", "login")]
    ):
        ts = T0.replace(second=index)
        await store.audit([AuditEntry(ts=ts, username=user, action=action, target=user)])

    logins_of_a = await store.list_audit(username="a", action="login")
    first_page = await store.list_audit(limit=2)
    second_page = await store.list_audit(limit=2, before_id=first_page[-1].id)
    window = await store.list_audit(start=T0.replace(second=1), end=T0.replace(second=3))

    assert [3, 0] == [e.ts.second for e in logins_of_a]
    assert [3, 2, 1, 0] == [e.ts.second for e in first_page + second_page]
    assert [2, 1] == [e.ts.second for e in window]
