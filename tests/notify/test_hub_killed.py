"""A real hub process killed (SIGKILL, by its PID) around a call: a call queued but
not yet through is sent exactly once after the restart; one already sent is not
sent again. A signed webhook to a real HTTP receiver that counts deliveries."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riverguard.services import Influxd, ManagedProcess, free_port
from riverguard.testing import wait_for
from riverguard.wire import topics
from tests.conftest import Broker
from tests.edge.support import component_env, publisher, riverguard_process
from tests.faults.support import answers
from tests.hub.conftest import PASSWORDS, SITE, event_payload, unique_seq
from tests.notify.receivers import HttpReceiver, http_receiver
from tests.notify.support import config_with_a_grid_officer

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, webhook_url: str) -> Path:
    """The grid officer's config, escalating a second after the breach and retrying a
    refused call within a second."""
    path = config_with_a_grid_officer(tmp_path, webhook_url)
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    site = next(s for s in raw["sites"] if s["id"] == SITE)
    site["escalation"][0]["after_s"] = 1
    raw["notify"].update({"retry_first_s": 0.2, "retry_cap_s": 0.5, "max_attempts": 100})
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def make_hub(
    own_broker: Broker, tmp_path: Path, influxd: Influxd, influx_database: str
) -> Iterator[Any]:
    users = tmp_path / "users.json"
    users.write_text(json.dumps(PASSWORDS), encoding="utf-8")
    started: list[ManagedProcess] = []

    async def make(config: Path) -> ManagedProcess:
        env = component_env(
            own_broker.settings("hub"),
            tmp_path / "hub",
            RIVERGUARD_CONFIG=str(config),
            RIVERGUARD_HTTP_PORT=str(free_port()),
            RIVERGUARD_INFLUX_URL=influxd.url,
            RIVERGUARD_INFLUX_DATABASE=influx_database,
            RIVERGUARD_USERS_FILE=str(users),
            RIVERGUARD_RESPONDER_KEY="responder-key-0123456789",
            RIVERGUARD_ARGON2_TIME_COST="1",
            RIVERGUARD_ARGON2_MEMORY_KIB="1024",
        )
        process = riverguard_process("hub", ["hub"], env, tmp_path / "hub.log")
        started.append(process)
        process.start()
        health = f"http://127.0.0.1:{env['RIVERGUARD_HTTP_PORT']}/healthz"
        try:
            # Up, with its broker link: a breach published now reaches it.
            await wait_for(lambda: answers(health) == 200, timeout=60, what="the hub healthy")
        except TimeoutError:
            raise AssertionError(process.log_tail()) from None
        return process

    yield make
    for process in started:
        process.stop()


def _rows(tmp_path: Path) -> list[tuple[str, str, int]]:
    """The notifications the hub stored: (id, state, attempts), read beside the hub."""
    path = tmp_path / "hub" / "hub.db"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        try:
            found = db.execute("SELECT id, state, attempts FROM notifications ORDER BY created_at")
            return [(r[0], r[1], int(r[2])) for r in found]
        except sqlite3.OperationalError:  # not migrated yet
            return []


def _kill(process: ManagedProcess) -> None:
    assert process.process is not None
    os.kill(process.process.pid, signal.SIGKILL)
    process.process.wait(10)


async def _breach(own_broker: Broker, fence: int) -> None:
    """A breach reported by the bridge's fence no. ``fence`` (of zone z``fence``)."""
    async with publisher(own_broker.settings(f"edge-{SITE}")) as edge:
        payload = event_payload(unique_seq(), device=f"db-fence-0{fence}", zone=f"z{fence}")
        await edge.publish(topics.events(SITE), json.dumps(payload).encode(), qos=1)


def _deliveries(receiver: HttpReceiver) -> Counter[str]:
    return Counter(r.headers["x-riverguard-delivery"] for r in receiver.received)


async def test_a_hub_killed_before_its_call_got_through_sends_it_once_after_restart(
    tmp_path: Path, own_broker: Broker, make_hub: Any
) -> None:
    port = free_port()  # nobody listens yet: every attempt is refused
    config = _config(tmp_path, f"http://127.0.0.1:{port}/duty")
    hub = await make_hub(config)
    await _breach(own_broker, 1)
    await wait_for(
        lambda: any(attempts >= 1 for _, _, attempts in _rows(tmp_path)),
        timeout=60,
        what=f"the call queued and tried\n{hub.log_tail()}",
    )
    _kill(hub)
    [(row_id, state, _)] = _rows(tmp_path)
    assert state in {"queued", "sending"}

    async with http_receiver(port=port) as receiver:
        await make_hub(config)
        await wait_for(
            lambda: [(row_id, "sent")] == [(i, s) for i, s, _ in _rows(tmp_path)],
            timeout=60,
            what="the call sent after the restart",
        )
        assert {row_id: 1} == _deliveries(receiver)


async def test_a_hub_killed_after_sending_does_not_send_again(
    tmp_path: Path, own_broker: Broker, make_hub: Any
) -> None:
    async with http_receiver() as receiver:
        config = _config(tmp_path, f"{receiver.url}/duty")
        hub = await make_hub(config)
        await _breach(own_broker, 1)
        await wait_for(
            lambda: [s for _, s, _ in _rows(tmp_path)] == ["sent"],
            timeout=60,
            what=f"the call sent\n{hub.log_tail()}",
        )
        _kill(hub)
        [sent] = _rows(tmp_path)

        await make_hub(config)
        # Another alarm's call, sent by the restarted hub: its outbox has taken up
        # whatever the kill left by the time this one is through.
        await _breach(own_broker, 2)
        await wait_for(
            lambda: [s for _, s, _ in _rows(tmp_path)] == ["sent", "sent"],
            timeout=60,
            what="the second alarm's call sent",
        )
        assert sent == _rows(tmp_path)[0]  # never claimed again
        assert {sent[0]: 1, _rows(tmp_path)[1][0]: 1} == _deliveries(receiver)


def _sending_child(hub: ManagedProcess) -> int:
    """The pid of ``hub``'s sending process, found in /proc by parent and command."""
    assert hub.process is not None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            stat = (entry / "stat").read_bytes()
            parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
            if parent == hub.process.pid and b"hub.notify.send_process" in (
                (entry / "cmdline").read_bytes()
            ):
                found.append(int(entry.name))
    [pid] = found
    return pid


async def test_a_sending_process_killed_is_started_again_and_the_hub_stays_up(
    tmp_path: Path, own_broker: Broker, make_hub: Any
) -> None:
    async with http_receiver() as receiver:
        config = _config(tmp_path, f"{receiver.url}/duty")
        hub = await make_hub(config)
        await _breach(own_broker, 1)
        await wait_for(
            lambda: [s for _, s, _ in _rows(tmp_path)] == ["sent"],
            timeout=60,
            what=f"the first call sent\n{hub.log_tail()}",
        )
        first = _sending_child(hub)
        os.kill(first, signal.SIGKILL)
        await _breach(own_broker, 2)
        await wait_for(
            lambda: [s for _, s, _ in _rows(tmp_path)] == ["sent", "sent"],
            timeout=60,
            what=f"the second call sent by a new sending process\n{hub.log_tail()}",
        )
        assert hub.process is not None
        assert hub.process.poll() is None  # the hub did not stop
        assert first != _sending_child(hub)
        assert 2 == sum(_deliveries(receiver).values())
        assert "sending process ended; starting another" in hub.log_tail()
