"""The hub's own links on the console WebSocket (PROTOCOL 7.13): broker, store,
InfluxDB and per edge when last heard; a killed broker, a silent edge, an InfluxDB
that does not answer, and one log line per failed reconnect."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from hub.broadcaster import Broadcaster, Client
from hub.clock import ManualClock
from hub.links import Links
from hub.metrics import HubMetrics
from riverguard.config import load_config
from riverguard.services import Influxd, free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.aiomqtt_client import aiomqtt_client
from tests.conftest import EXAMPLE_CONFIG, Broker
from tests.hub.conftest import SITE, Inbox, MakeSettings, hub_settings, run_hub, ws_inbox

pytestmark = pytest.mark.integration

OTHER_SITE = "xiyong-wharf"


def _links(message: dict[str, Any]) -> dict[str, Any] | None:
    if message["type"] == "links":
        return dict(message["data"])
    if message["type"] == "hello":
        return dict(message["data"]["links"])
    return None


def _edge(links: dict[str, Any], site: str) -> dict[str, Any]:
    return next(dict(edge) for edge in links["edges"] if edge["site"] == site)


async def _latest(inbox: Inbox, match: Any, what: str) -> dict[str, Any]:
    """The first links picture (hello or change) that ``match`` accepts."""

    def matching(message: dict[str, Any]) -> bool:
        links = _links(message)
        return links is not None and bool(match(links))

    try:
        found = await inbox.wait_for(matching, timeout=20)
    except TimeoutError:
        seen = [_links(m) for m in inbox.items if _links(m) is not None]
        raise AssertionError(f"no links message with {what}; seen: {seen}") from None
    links = _links(found)
    assert links is not None
    return links


async def _edge_status(broker: Broker, site: str, *, retain: bool, ts: str | None = None) -> None:
    """An edge status (PROTOCOL 2.3) as the site's edge publishes it."""
    status = {"online": True, "state": "online", "ts": ts or format_ts(utcnow()), "outbox": 0}
    async with aiomqtt_client(broker.settings(f"edge-{site}")) as client:
        await client.publish(topics.edge_status(site), json.dumps(status), qos=1, retain=retain)


async def test_an_edge_not_heard_within_two_status_intervals_is_unheard_whatever_it_said(
    make_settings: MakeSettings, quiet_broker: Broker
) -> None:
    clock = ManualClock()
    settings = make_settings(edge_status_interval_s=30)
    async with run_hub(settings, clock) as running:
        token = await running.token("viewer")
        async with running.socket(token) as ws, ws_inbox(ws) as inbox:
            hello = await _latest(inbox, lambda links: True, "a hello")
            assert {"up": True} == {"up": hello["broker"]["up"]}
            assert 60.0 == hello["edge_silent_after_s"]
            assert (False, None) == (
                _edge(hello, SITE)["heard"],
                _edge(hello, SITE)["last_heard"],
            )

            await _edge_status(quiet_broker, SITE, retain=False)
            heard = await _latest(inbox, lambda ln: _edge(ln, SITE)["heard"], "the edge heard")
            assert format_ts(clock.now()) == _edge(heard, SITE)["last_heard"]
            assert not _edge(heard, OTHER_SITE)["heard"]

            inbox.items.clear()
            clock.advance(59)
            clock.advance(0.9)
            await asyncio.sleep(0.2)  # the watcher looked: still within the limit
            assert [] == [m for m in inbox.items if m["type"] == "links"]
            clock.advance(0.1)
            silent = await _latest(
                inbox, lambda ln: not _edge(ln, SITE)["heard"], "the edge unheard"
            )
            # Its last status said online; the hub no longer takes its word for it.
            assert format_ts(clock.now()) == _edge(silent, SITE)["since"]
            assert silent["broker"]["up"]

            await _edge_status(quiet_broker, SITE, retain=False)
            await _latest(inbox, lambda ln: _edge(ln, SITE)["heard"], "the edge heard again")


async def test_a_retained_status_counts_as_heard_when_it_was_sent_not_when_it_arrives(
    make_settings: MakeSettings, quiet_broker: Broker
) -> None:
    """A hub (re)subscribing gets the broker's stored statuses: an old one is old news."""
    old = format_ts(utcnow() - timedelta(seconds=600))
    recent = format_ts(utcnow())
    await _edge_status(quiet_broker, SITE, retain=True, ts=old)
    await _edge_status(quiet_broker, OTHER_SITE, retain=True, ts=recent)
    async with run_hub(make_settings(edge_status_interval_s=30)) as running:

        async def both_seen() -> bool:
            edges = running.hub.links.edges
            return None not in (edges[SITE].last_heard, edges[OTHER_SITE].last_heard)

        await wait_for(both_seen, what="both retained statuses")
        links = running.hub.links.data()
    assert (False, old) == (_edge(links, SITE)["heard"], _edge(links, SITE)["last_heard"])
    assert _edge(links, OTHER_SITE)["heard"]


async def test_a_killed_broker_is_a_link_down_with_every_edge_unheard_until_it_is_back(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    settings = hub_settings(
        tmp_path,
        own_broker.settings("hub"),
        influxd.url,
        influx_database,
        link_check_interval_s=0.2,
    )
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    loop.set_exception_handler(lambda _, context: loop_errors.append(str(context["message"])))
    with structlog.testing.capture_logs() as logs:
        async with run_hub(settings) as running:
            token = await running.token("viewer")
            async with running.socket(token) as ws, ws_inbox(ws) as inbox:
                await _edge_status(own_broker, SITE, retain=False)
                before = await _latest(inbox, lambda ln: _edge(ln, SITE)["heard"], "the edge heard")
                assert (True, True, True) == tuple(
                    before[k]["up"] for k in ("broker", "store", "influx")
                )
                await asyncio.to_thread(own_broker.server.kill)  # SIGKILL, by its PID
                down = await _latest(inbox, lambda ln: not ln["broker"]["up"], "the broker down")
                assert not _edge(down, SITE)["heard"]
                assert down["broker"]["detail"]
                # Several reconnects fail while it is away.
                await wait_for(
                    lambda: sum(e["event"] == "broker connect failed" for e in logs) >= 3,
                    timeout=20,
                    what="three failed reconnects",
                )
                inbox.items.clear()
                await asyncio.to_thread(own_broker.server.start)
                up = await _latest(inbox, lambda ln: ln["broker"]["up"], "the broker back")
                assert format_ts(utcnow()) >= up["broker"]["since"] > down["broker"]["since"]
                await _edge_status(own_broker, SITE, retain=False)
                await _latest(inbox, lambda ln: _edge(ln, SITE)["heard"], "the edge heard again")
        gc.collect()
        await asyncio.sleep(0)
    failed = [e for e in logs if e["event"] == "broker connect failed"]
    assert all(e["log_level"] == "warning" and e["retry_in_s"] > 0 for e in failed), failed
    assert all(e["error"].startswith("cannot connect") for e in failed), failed
    # One line per attempt: nothing else is logged for a failed reconnect.
    lost = [e for e in logs if e["event"] == "broker connection lost"]
    assert 1 == len(lost), lost
    assert 1 == sum(e["event"] == "hub link down" for e in logs)
    assert [] == loop_errors


async def test_a_hung_broker_is_a_link_down_within_one_and_a_half_keepalives(
    tmp_path: Path, own_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    """SIGSTOP: the broker's socket stays open and silent; the hub's keepalive
    (``mqtt_keepalive_s``, 5 s) finds it in at most 7.5 s, not a quiet field."""
    settings = hub_settings(tmp_path, own_broker.settings("hub"), influxd.url, influx_database)
    assert 5 == settings.mqtt_keepalive_s
    async with run_hub(settings) as running:
        token = await running.token("viewer")
        async with running.socket(token) as ws, ws_inbox(ws) as inbox:
            await _latest(inbox, lambda ln: ln["broker"]["up"], "the broker up")
            pid = own_broker.server.process.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                # 7.5 s after the broker was last heard, with room for a loaded machine;
                # the former 15 s keepalive took 15 to 22.5 s.
                await wait_for(
                    lambda: not running.hub.link.connected, timeout=14, what="the broker lost"
                )
                took = time.monotonic() - stopped
                down = await _latest(inbox, lambda ln: not ln["broker"]["up"], "the broker down")
                assert "no answer from the broker in 7.5 s" in down["broker"]["detail"]
                assert not _edge(down, SITE)["heard"]
            finally:
                os.kill(pid, signal.SIGCONT)
            print(f"hung broker found after {took:.1f} s")
            await _latest(inbox, lambda ln: ln["broker"]["up"], "the broker back")


async def test_influx_not_answering_is_a_link_down_and_back_up_when_it_answers(
    tmp_path: Path, quiet_broker: Broker, influxd: Influxd, influx_database: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = hub_settings(
        tmp_path, quiet_broker.settings("hub"), dead, influx_database, link_check_interval_s=0.2
    )
    async with run_hub(settings) as running:
        token = await running.token("viewer")
        async with running.socket(token) as ws, ws_inbox(ws) as inbox:
            down = await _latest(inbox, lambda ln: not ln["influx"]["up"], "InfluxDB down")
            assert (True, True) == (down["broker"]["up"], down["store"]["up"])
            assert "InfluxDB" in down["influx"]["detail"]
            # The same hub, its InfluxDB now answering.
            running.hub.influx.url = influxd.url
            await _latest(inbox, lambda ln: ln["influx"]["up"], "InfluxDB back")


def _plain_links(clock: ManualClock) -> tuple[Links, Broadcaster, Client]:
    broadcaster = Broadcaster(HubMetrics(), start_seq=0)
    client = Client(100)
    broadcaster.attach(client, None)
    links = Links(
        load_config(EXAMPLE_CONFIG),
        broadcaster,
        broadcaster.metrics,
        clock,
        silent_after_s=60,
        check_interval_s=5,
    )
    return links, broadcaster, client


def _sent(client: Client) -> list[dict[str, Any]]:
    sent = []
    while not client.queue.empty():
        sent.append(json.loads(client.queue.get_nowait().text))
    return sent


def test_a_failed_commit_keeps_the_store_down_until_a_commit_succeeds_whatever_pings_say() -> None:
    """A full disk answers SELECT 1: only a commit that works again brings the store back."""
    clock = ManualClock()
    links, broadcaster, client = _plain_links(clock)
    links.report("broker", "connection", True)
    assert ["links"] == [m["type"] for m in _sent(client)]

    clock.advance(3)
    links.report("store", "commit", False, "database or disk is full")
    (down,) = _sent(client)
    assert {"up": False, "since": format_ts(clock.now()), "detail": "database or disk is full"} == (
        down["data"]["store"]
    )
    links.report("store", "ping", True)
    links.report("store", "commit", False, "database or disk is full")
    links.report("store", "ping", False, "no answer")  # down already: not news
    assert [] == _sent(client)
    assert "database or disk is full; no answer" == links.states["store"].detail
    links.report("store", "ping", True)
    links.report("store", "commit", True)
    (up,) = _sent(client)
    assert (True, "") == (up["data"]["store"]["up"], up["data"]["store"]["detail"])
    samples = {
        s.labels["link"]: s.value
        for metric in broadcaster.metrics.link_up.collect()
        for s in metric.samples
    }
    assert {"broker": 1.0, "store": 1.0, "influx": 1.0} == samples


def test_while_the_broker_is_down_no_edge_is_heard_and_the_first_message_after_is() -> None:
    clock = ManualClock()
    links, _, client = _plain_links(clock)
    links.heard(SITE, clock.now())
    assert not links.edges[SITE].heard  # the broker link is not up yet
    links.report("broker", "connection", True)
    assert (True, False) == (links.edges[SITE].heard, links.edges[OTHER_SITE].heard)
    links.report("broker", "connection", False, "connection lost")
    assert not links.edges[SITE].heard
    (_, down) = _sent(client)
    assert (False, False) == (down["data"]["broker"]["up"], _edge(down["data"], SITE)["heard"])
    links.report("broker", "connection", True)
    assert links.edges[SITE].heard  # heard 0 s ago: within the limit
    clock.advance(10)
    links.heard(OTHER_SITE, clock.now())
    assert links.edges[OTHER_SITE].heard
    # An older message (a retained status's own time) never moves last_heard back.
    links.heard(OTHER_SITE, clock.now() - timedelta(seconds=30))
    assert clock.now() == links.edges[OTHER_SITE].last_heard
