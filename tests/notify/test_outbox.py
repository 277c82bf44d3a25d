"""The outbox end to end on a real SQLite store and a real webhook receiver: an
escalation queues its calls in its own transaction, the sender delivers each once,
retries a refusing receiver with backoff, gives up, holds rate limits, keeps a
hung receiver from holding the others, and sends once across a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from hub import desk as desk_module
from hub.broadcaster import Broadcaster
from hub.clock import ManualClock
from hub.desk import AlarmDesk
from hub.metrics import HubMetrics
from hub.notify.links import ResponderLinks
from hub.notify.outbox import Outbox
from hub.notify.send_process import SendProcess
from hub.picture import Picture
from hub.responder_tokens import ResponderTokens
from hub.store import Batch, NotificationRow, Store
from riverguard.config import Config
from riverguard.testing import wait_for
from riverguard.wire.models import Alarm, Event
from tests.notify.receivers import HttpReceiver, http_receiver

pytestmark = pytest.mark.integration

T0 = datetime(2026, 7, 18, 11, 0, tzinfo=UTC)
SECRET = "outbox-test-secret-0123"
# A receiver no test here sends to: escalations only queue their calls.
URL = "http://127.0.0.1:9/hook"


def _config(urls: dict[str, str], **notify: Any) -> Config:
    """One site whose first level calls every responder of ``urls`` (a webhook each)."""
    return Config.model_validate(
        {
            "sites": [
                {
                    "id": "s1",
                    "name": "一号河段",
                    "name_en": "Reach one",
                    "grid": "city/grid-01",
                    "zones": [
                        {"id": "z1", "name": "码头", "name_en": "Wharf"},
                        {"id": "z2", "name": "浅滩", "name_en": "Shallows"},
                    ],
                    "escalation": [
                        {"after_s": 60, "level_name": "grid officer", "call": list(urls)},
                        {"after_s": 120, "level_name": "street", "call": []},
                    ],
                }
            ],
            "devices": [
                {"id": "f1", "site": "s1", "type": "fence", "zones": ["z1"]},
                {"id": "f2", "site": "s1", "type": "fence", "zones": ["z2"]},
            ],
            "notify": {
                "webhooks": [
                    {"id": name, "url": url, "secret": SECRET} for name, url in urls.items()
                ],
                "timeout_s": 2,
                "retry_first_s": 10,
            }
            | notify,
            "responders": [
                {"id": name, "name": name, "channels": [{"kind": "webhook", "webhook": name}]}
                for name in urls
            ],
        }
    )


@dataclass
class Hub:
    store: Store
    desk: AlarmDesk
    outbox: Outbox
    clock: ManualClock
    alarm_ids: list[str]
    outbox_metrics: HubMetrics

    async def rows(self, alarm: int = 0) -> list[NotificationRow]:
        return await self.store.notifications.for_alarm(self.alarm_ids[alarm])


@asynccontextmanager
async def hub(
    tmp_path: Path, config: Config, clock: ManualClock | None = None
) -> AsyncIterator[Hub]:
    clock = clock or ManualClock(T0)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    try:
        async with SendProcess(config.notify, clock.now) as sender:
            metrics = HubMetrics()
            outbox = Outbox(
                store,
                config,
                sender,
                ResponderLinks("https://hub.example.cn"),
                ResponderTokens(b"responder-token-key-0123456789"),
                clock=clock,
                metrics=metrics,
                rand=lambda: 0.0,
            )
            picture = Picture(config, clock.now)
            picture.load(await store.alarms.active(), [], [])
            desk = AlarmDesk(
                store,
                picture,
                Broadcaster(metrics, start_seq=0),
                metrics,
                clock,
                risk_points=lambda lines: None,
                calls_queued=outbox.wake,
            )
            yield Hub(store, desk, outbox, clock, [], metrics)
    finally:
        await store.close()


async def _open_alarm(running: Hub, device: str = "f1", zone: str = "z1") -> None:
    """A fence breach through the desk, as ingest commits it: the alarm and its event."""
    now = running.clock.now()
    event = Event.model_validate(
        {
            "id": f"{device}:{len(running.alarm_ids) + 1}",
            "site": "s1",
            "device": device,
            "kind": "fence.breach",
            "zone": zone,
            "ts": now,
            "edge_ts": now,
            "severity": "critical",
        }
    )
    committed = await running.desk.commit(
        Batch(events=[event], received_at={event.id: now}, last_seen={device: ("s1", now)})
    )
    running.alarm_ids.extend(committed.outcome.changed)


async def _settled(running: Hub) -> NotificationRow:
    """The first alarm's only notification once it is no longer queued or sending
    (polled: the sender runs as its own task)."""
    async with asyncio.timeout(10):
        while True:
            [row] = await running.rows()
            if row.state not in ("queued", "sending"):
                return row
            await asyncio.sleep(0.02)


async def _escalate(running: Hub) -> None:
    running.clock.advance(60)
    await running.desk.tick()


async def test_an_escalation_queues_its_calls_and_each_is_delivered_once(tmp_path: Path) -> None:
    async with http_receiver() as receiver:
        config = _config({"wang": f"{receiver.url}/a", "li": f"{receiver.url}/b"})
        async with hub(tmp_path, config) as running:
            await _open_alarm(running)
            await _escalate(running)
            rows = await running.rows()
            assert [("li", "queued"), ("wang", "queued")] == sorted(
                (row.call.responder_id, row.state) for row in rows
            )
            await running.outbox.flush()
            await running.outbox.flush()
            assert {"sent"} == {row.state for row in await running.rows()}
    assert ["/a", "/b"] == sorted(request.target for request in receiver.received)
    body = json.loads(receiver.received[0].body)
    assert (running.alarm_ids[0], 1, "grid officer") == (
        body["alarm"]["id"],
        body["alarm"]["level"],
        body["alarm"]["level_name"],
    )
    assert ["fence.breach"] == body["alarm"]["kinds"]
    assert body["links"]["respond"].startswith("https://hub.example.cn/respond/d-")
    assert {row.id for row in rows} == {
        request.headers["x-riverguard-delivery"] for request in receiver.received
    }


async def test_queueing_the_same_escalation_again_adds_nothing(tmp_path: Path) -> None:
    config = _config({"wang": "http://127.0.0.1:9/"})
    async with hub(tmp_path, config) as running:
        await _open_alarm(running)
        await _escalate(running)
        [row] = await running.rows()
        await running.store.notifications.queue([row.call], running.clock.now())
        assert [row.id] == [again.id for again in await running.rows()]


async def test_a_pass_reads_the_alarms_and_events_of_all_its_calls_once(tmp_path: Path) -> None:
    """Two alarms, two responders each: four calls, one read of the alarms and one of
    their events (not one of each per call), and each call tells of its own alarm."""
    async with (
        http_receiver() as receiver,
        hub(tmp_path, _config({"wang": receiver.url, "li": receiver.url})) as running,
    ):
        await _open_alarm(running, "f1", "z1")
        await _open_alarm(running, "f2", "z2")
        await _escalate(running)
        statements: list[str] = []

        def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        engine = running.store.engine.sync_engine
        event.listen(engine, "before_cursor_execute", executed)
        try:
            await running.outbox.flush()
        finally:
            event.remove(engine, "before_cursor_execute", executed)
        rows = [*(await running.rows(0)), *(await running.rows(1))]
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert 1 == sum("FROM alarms" in s for s in reads)
    assert 1 == sum("FROM events" in s for s in reads)
    alarm_of = {row.id: row.call.alarm_id for row in rows}
    assert 4 == len(receiver.received)
    for request in receiver.received:
        body = json.loads(request.body)
        assert alarm_of[body["delivery"]] == body["alarm"]["id"]
        assert ["fence.breach"] == body["alarm"]["kinds"]


async def test_a_refusing_receiver_is_retried_after_the_backoff_then_delivered(
    tmp_path: Path,
) -> None:
    async with (
        http_receiver(HttpReceiver(status=503)) as receiver,
        hub(tmp_path, _config({"wang": receiver.url})) as running,
    ):
        await _open_alarm(running)
        await _escalate(running)
        await running.outbox.flush()
        [row] = await running.rows()
        assert ("queued", 1) == (row.state, row.attempts)
        assert "HTTP 503" in row.reason
        assert (row.due_at - running.clock.now()).total_seconds() == 10
        await running.outbox.flush()
        assert 1 == len(receiver.received)
        receiver.status = 200
        running.clock.advance(10)
        await running.outbox.flush()
        [row] = await running.rows()
        assert ("sent", 2) == (row.state, row.attempts)
    first, second = receiver.received
    assert first.headers["x-riverguard-delivery"] == second.headers["x-riverguard-delivery"]


async def test_a_notification_is_given_up_when_its_attempts_are_spent(tmp_path: Path) -> None:
    async with http_receiver(HttpReceiver(status=500)) as receiver:
        config = _config({"wang": receiver.url}, max_attempts=2)
        async with hub(tmp_path, config) as running:
            await _open_alarm(running)
            await _escalate(running)
            await running.outbox.flush()
            running.clock.advance(10)
            await running.outbox.flush()
            [row] = await running.rows()
            assert ("given_up", 2) == (row.state, row.attempts)
            registry = running.outbox_metrics.registry
            for outcome in ("retry", "given_up"):
                labels = {"outcome": outcome, "channel": "webhook"}
                assert 1 == registry.get_sample_value("riverguard_hub_notifications_total", labels)
            running.clock.advance(3600)
            await running.outbox.flush()
    assert 2 == len(receiver.received)


async def test_an_sms_gateway_refusing_with_200_is_retried_then_given_up_with_its_answer(
    tmp_path: Path,
) -> None:
    """Aliyun-style: HTTP 200 with a refusal code in the body is not a send."""
    refusal = b'{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "Permits:1"}'
    async with http_receiver(HttpReceiver(answer=refusal)) as receiver:
        raw = _config({"wang": receiver.url}, max_attempts=2).model_dump()
        raw["notify"]["sms_gateways"] = [
            {
                "id": "aliyun",
                "url": f"{receiver.url}/sms",
                "body": {"PhoneNumbers": "{phone}", "TemplateParam": "{text}"},
                "success_path": "Code",
                "success_values": ["OK"],
            }
        ]
        [wang] = raw["responders"]
        wang |= {"phone": "+8613800000001", "channels": [{"kind": "sms", "gateway": "aliyun"}]}
        async with hub(tmp_path, Config.model_validate(raw)) as running:
            await _open_alarm(running)
            await _escalate(running)
            await running.outbox.flush()
            [row] = await running.rows()
            reason = "sms gateway aliyun answered 'isv.BUSINESS_LIMIT_CONTROL' at Code: "
            assert ("queued", 1) == (row.state, row.attempts)
            assert row.reason.startswith(reason), row.reason
            assert "Permits:1" in row.reason
            running.clock.advance(10)
            await running.outbox.flush()
            [row] = await running.rows()
            assert ("given_up", 2) == (row.state, row.attempts)
            assert row.reason.startswith(reason), row.reason
            registry = running.outbox_metrics.registry
            for outcome in ("retry", "given_up"):
                labels = {"outcome": outcome, "channel": "sms"}
                assert 1 == registry.get_sample_value("riverguard_hub_notifications_total", labels)
    assert 2 == len(receiver.received)


async def test_a_refusal_for_good_is_not_retried(tmp_path: Path) -> None:
    async with (
        http_receiver(HttpReceiver(status=401)) as receiver,
        hub(tmp_path, _config({"wang": receiver.url})) as running,
    ):
        await _open_alarm(running)
        await _escalate(running)
        await running.outbox.flush()
        [row] = await running.rows()
        assert ("failed", "webhook wang answered HTTP 401") == (row.state, row.reason)
        running.clock.advance(3600)
        await running.outbox.flush()
    assert 1 == len(receiver.received)


async def test_a_responder_over_their_rate_limit_waits_without_spending_an_attempt(
    tmp_path: Path,
) -> None:
    async with http_receiver() as receiver:
        config = _config({"wang": receiver.url}, responder_per_minute=1)
        async with hub(tmp_path, config) as running:
            await _open_alarm(running, "f1", "z1")
            await _open_alarm(running, "f2", "z2")
            await _escalate(running)
            await running.outbox.flush()
            rows = [*(await running.rows(0)), *(await running.rows(1))]
            assert ["queued", "sent"] == sorted(row.state for row in rows)
            [waiting] = [row for row in rows if row.state == "queued"]
            assert 0 == waiting.attempts
            assert running.clock.now() + timedelta(seconds=60) == waiting.due_at
            running.clock.advance(59)
            await running.outbox.flush()
            assert 1 == len(receiver.received)
            running.clock.advance(1)
            await running.outbox.flush()
            rows = [*(await running.rows(0)), *(await running.rows(1))]
            assert ["sent", "sent"] == [row.state for row in rows]
    assert 2 == len(receiver.received)


@pytest.mark.parametrize("limit", ["responder", "channel"])
async def test_a_rate_limit_holds_across_a_restart(tmp_path: Path, limit: str) -> None:
    """Two sends a minute: two go, the hub restarts half a minute later, and a third
    call waits for the end of the first send's minute rather than going at once."""
    async with http_receiver() as receiver:
        config = _config({"wang": receiver.url}, responder_per_minute=2)
        if limit == "channel":
            raw = config.model_dump()
            raw["notify"]["responder_per_minute"] = 30
            raw["notify"]["webhooks"][0]["per_minute"] = 2
            config = Config.model_validate(raw)
        clock = ManualClock(T0)
        async with hub(tmp_path, config, clock) as running:
            await _open_alarm(running, "f1", "z1")
            await _open_alarm(running, "f2", "z2")
            await _escalate(running)
            await running.outbox.flush()
            rows = [*(await running.rows(0)), *(await running.rows(1))]
            assert ["sent", "sent"] == [row.state for row in rows]
        first_sent = clock.now()
        clock.advance(30)
        async with hub(tmp_path, config, clock) as restarted:
            # One more call to the same responder on the same channel (by hand: level 0).
            more = dataclasses.replace(rows[0].call, level=0)
            await restarted.store.notifications.queue([more], clock.now())
            restarted.alarm_ids.extend(running.alarm_ids)
            sender = asyncio.create_task(restarted.outbox.run(), name="outbox")
            try:

                async def the_call(*states: str) -> NotificationRow | None:
                    """The third call once the sender has deferred (``queued`` with a
                    later due time) or settled it in one of ``states``."""
                    [row] = [r for r in await restarted.rows() if r.call.key == more.key]
                    deferred = row.state == "queued" and row.due_at > clock.now()
                    return row if deferred or row.state in states else None

                looked_at = await wait_for(lambda: the_call("sent"), what="the third call")
                assert looked_at is not None
                assert ("queued", first_sent + timedelta(seconds=60), 0) == (
                    looked_at.state,
                    looked_at.due_at,
                    looked_at.attempts,
                )
                assert 2 == len(receiver.received)
                clock.advance(30)
                await wait_for(lambda: the_call("sent", "failed"), what="the call sent")
            finally:
                sender.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sender
    assert 3 == len(receiver.received)


async def test_a_hung_receiver_holds_up_only_its_own_notification(tmp_path: Path) -> None:
    async with (
        http_receiver(HttpReceiver(hold=True)) as hung,
        http_receiver() as answering,
    ):
        config = _config({"wang": hung.url, "li": answering.url})
        async with hub(tmp_path, config) as running:
            await _open_alarm(running)
            await _escalate(running)
            await running.outbox.flush()
            states = {row.call.responder_id: row.state for row in await running.rows()}
            assert {"wang": "queued", "li": "sent"} == states
    assert 1 == len(answering.received)


async def test_the_sender_wakes_when_an_escalation_queues_calls(tmp_path: Path) -> None:
    async with (
        http_receiver() as receiver,
        hub(tmp_path, _config({"wang": receiver.url})) as running,
    ):
        await _open_alarm(running)
        sender = asyncio.create_task(running.outbox.run(), name="outbox")
        try:
            await _escalate(running)
            async with asyncio.timeout(10):
                await receiver.arrived.wait()
        finally:
            sender.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sender
    assert 1 == len(receiver.received)


async def test_a_hub_stopped_between_queueing_and_sending_sends_once_after_restart(
    tmp_path: Path,
) -> None:
    async with http_receiver() as receiver:
        config = _config({"wang": receiver.url})
        clock = ManualClock(T0)
        async with hub(tmp_path, config, clock) as running:
            await _open_alarm(running)
            await _escalate(running)
        assert [] == receiver.received
        async with hub(tmp_path, config, clock) as restarted:
            await restarted.outbox.flush()
            await restarted.outbox.flush()
        async with hub(tmp_path, config, clock) as again:
            again.alarm_ids.extend(running.alarm_ids)
            await again.outbox.flush()
            [row] = await again.rows()
            assert "sent" == row.state
    assert 1 == len(receiver.received)


async def test_a_send_cut_short_by_a_stop_is_sent_again_on_start(tmp_path: Path) -> None:
    async with http_receiver() as receiver:
        config = _config({"wang": receiver.url})
        clock = ManualClock(T0)
        async with hub(tmp_path, config, clock) as running:
            await _open_alarm(running)
            await _escalate(running)
            [row] = await running.rows()
            # Claimed for an attempt, then the hub stopped before it settled.
            assert {row.id} == await running.store.notifications.take([row.id], [], clock.now())
        async with hub(tmp_path, config, clock) as restarted:
            restarted.alarm_ids.extend(running.alarm_ids)
            sender = asyncio.create_task(restarted.outbox.run(), name="outbox")
            try:
                row = await _settled(restarted)
            finally:
                sender.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sender
            assert ("sent", 2) == (row.state, row.attempts)
    assert 1 == len(receiver.received)


async def test_a_trigger_after_an_announcement_climbs_and_calls_the_level(
    tmp_path: Path,
) -> None:
    """The other way up the grid path: the swimmer stays after the warning."""
    async with (
        http_receiver() as receiver,
        hub(tmp_path, _config({"wang": receiver.url})) as running,
    ):
        await _open_alarm(running)
        await running.desk.add_announcement(running.alarm_ids[0], "ann-1")
        running.clock.advance(5)
        now = running.clock.now()
        again = Event.model_validate(
            {
                "id": "f1:99",
                "site": "s1",
                "device": "f1",
                "kind": "fence.breach",
                "zone": "z1",
                "ts": now,
                "edge_ts": now,
                "severity": "critical",
            }
        )
        committed = await running.desk.commit(
            Batch(events=[again], received_at={again.id: now}, last_seen={"f1": ("s1", now)})
        )
        [alarm] = committed.outcome.changed.values()
        assert 1 == alarm.escalation_level
        # The call is audited in the batch's transaction, after the escalation.
        assert [("dispatch", "system", "wang"), ("escalate", "system", alarm.id)] == [
            (entry.action, entry.username, entry.target)
            for entry in await running.store.audit.find(alarm_id=alarm.id, limit=2)
        ]
        await running.outbox.flush()
        [row] = await running.rows()
        assert ("wang", 1, "sent") == (row.call.responder_id, row.call.level, row.state)
    assert 1 == len(receiver.received)


@pytest.mark.parametrize(("urls", "chunks"), [({}, [2]), ({"wang": URL, "li": URL}, [1, 1])])
async def test_a_timer_chunk_is_bounded_by_the_rows_it_writes_not_by_its_alarms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, urls: dict[str, str], chunks: list[int]
) -> None:
    """An escalation that calls two people writes four rows more and six with their
    dispatches and audit entries: a chunk of eight rows holds two escalations that call
    nobody, or one that calls both (an ingest batch waits for one chunk at most)."""
    monkeypatch.setattr(desk_module, "TIMER_CHUNK_ROWS", 8)
    async with hub(tmp_path, _config(urls)) as running:
        await _open_alarm(running, "f1", "z1")
        await _open_alarm(running, "f2", "z2")
        sizes: list[int] = []
        save_all = running.store.alarms.save_all

        async def counted(alarms: Sequence[Alarm], *args: Any) -> None:
            sizes.append(len(alarms))
            await save_all(alarms, *args)

        monkeypatch.setattr(running.store.alarms, "save_all", counted)
        await _escalate(running)
        assert chunks == sizes
        for alarm_id in running.alarm_ids:
            alarm = await running.store.alarms.get(alarm_id)
            assert alarm is not None
            assert 1 == alarm.escalation_level


async def test_a_timer_pass_escalates_each_due_alarm_once_chunk_by_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass commits its escalations a chunk at a time: each alarm climbs once, is
    audited once and calls its level once; one acknowledged meanwhile does not climb."""
    monkeypatch.setattr(desk_module, "TIMER_CHUNK_ROWS", 1)
    async with (
        http_receiver() as receiver,
        hub(tmp_path, _config({"wang": receiver.url})) as running,
    ):
        await _open_alarm(running, "f1", "z1")
        await _open_alarm(running, "f2", "z2")
        await _escalate(running)
        await running.desk.tick()  # nothing more is due
        for alarm_id in running.alarm_ids:
            alarm = await running.store.alarms.get(alarm_id)
            assert alarm is not None
            assert 1 == alarm.escalation_level
            # Newest first: the escalation, then its call to wang.
            assert [("dispatch", "wang"), ("escalate", alarm_id)] == [
                (entry.action, entry.target)
                for entry in await running.store.audit.find(alarm_id=alarm_id)
            ]
        await running.outbox.flush()
        for index in (0, 1):
            [row] = await running.rows(index)
            assert (1, "sent") == (row.call.level, row.state)
        await running.desk.acknowledge(running.alarm_ids[0], "officer")
        running.clock.advance(120)
        await running.desk.tick()
        first = await running.store.alarms.get(running.alarm_ids[0])
        second = await running.store.alarms.get(running.alarm_ids[1])
        assert first is not None
        assert second is not None
        assert (1, 2) == (first.escalation_level, second.escalation_level)
    assert 2 == len(receiver.received)


async def test_calls_still_queued_when_their_alarm_is_resolved_are_never_sent(
    tmp_path: Path,
) -> None:
    async with http_receiver() as receiver:
        config = _config({"wang": f"{receiver.url}/a", "li": f"{receiver.url}/b"})
        async with hub(tmp_path, config) as running:
            await _open_alarm(running)
            await _escalate(running)
            await running.desk.resolve(running.alarm_ids[0], "officer-li", "false_alarm", None)
            assert {("withdrawn", "the alarm was resolved before this was sent")} == {
                (row.state, row.reason) for row in await running.rows()
            }
            running.clock.advance(3600)
            await running.outbox.flush()
            assert {"withdrawn"} == {row.state for row in await running.rows()}
    assert [] == receiver.received


async def test_a_call_under_way_at_the_resolve_ends_as_it_would_and_is_not_tried_again(
    tmp_path: Path,
) -> None:
    """The receiver holds the call while the alarm is resolved, then refuses it (503):
    the attempt ends as a retry, and the retry is withdrawn, not sent."""
    async with (
        http_receiver(HttpReceiver(status=503, hold=True)) as receiver,
        hub(tmp_path, _config({"wang": receiver.url})) as running,
    ):
        await _open_alarm(running)
        await _escalate(running)
        sending = asyncio.create_task(running.outbox.flush(), name="flush")
        async with asyncio.timeout(10):
            await receiver.arrived.wait()
        await running.desk.resolve(running.alarm_ids[0], "officer-li", "false_alarm", None)
        [row] = await running.rows()
        assert "sending" == row.state
        receiver.release.set()
        await sending
        [row] = await running.rows()
        assert ("queued", 1) == (row.state, row.attempts)
        running.clock.advance(10)
        await running.outbox.flush()
        [row] = await running.rows()
        assert ("withdrawn", 1) == (row.state, row.attempts)
    assert 1 == len(receiver.received)
