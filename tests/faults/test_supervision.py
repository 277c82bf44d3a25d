"""``riverguard up`` supervises Mosquitto and influxd as it does its own components.

Each service is killed by its PID (SIGKILL) under the supervisor loop, and
must come back: reaped (no zombie), on the same port, with its data.
"""

from __future__ import annotations

import json
import signal
import threading

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from riverguard.wire import topics
from tests.faults.support import Supervisor, alive, signal_pid, wait_until

pytestmark = pytest.mark.integration


def _client(supervised: Supervisor) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.username_pw_set("sim", supervised.stack.secrets.broker["sim"])
    return client


def _retained(supervised: Supervisor, topic: str) -> bytes | None:
    """The message retained on ``topic``, as a new subscriber gets it (None: none)."""
    got: list[bytes] = []
    done = threading.Event()
    client = _client(supervised)
    client.on_connect = lambda c, *_: c.subscribe(topic, 1)

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", supervised.stack.broker_port)
    client.loop_start()
    try:
        done.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0] if got else None


def test_killed_broker_comes_back_on_its_port_with_its_retained_messages(
    supervised: Supervisor,
) -> None:
    stack = supervised.stack
    site, device = "load-002", "load-002-f00020"
    topic = topics.field_status(site, "fence", device)
    status = json.dumps({"online": True, "battery": 0.42}).encode()
    client = _client(supervised)
    client.connect("127.0.0.1", stack.broker_port)
    client.loop_start()
    try:
        client.publish(topic, status, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    # What is saved survives a SIGKILL; the window before the save is the
    # broker's own (docs/reliability.md).
    saved = stack.mosquitto.directory / "data" / "mosquitto.db"
    wait_until(lambda: saved.exists() and topic.encode() in saved.read_bytes(), 30, "saved to disk")
    pid = supervised.pid("mosquitto")
    lines = len(supervised.lines())

    signal_pid(pid, signal.SIGKILL)

    wait_until(lambda: supervised.said("mosquitto restarted", after=lines), 30, "restarted")
    assert supervised.said("mosquitto exited (signal SIGKILL); restart", after=lines)
    assert not alive(pid)  # reaped: no zombie left
    assert pid != supervised.pid("mosquitto")
    wait_until(stack.mosquitto.answers, 15, "the broker answering on its port")
    assert status == _retained(supervised, topic)


def test_killed_influxd_comes_back_on_its_port_with_its_points(supervised: Supervisor) -> None:
    stack = supervised.stack
    influx = stack.influxd
    line = "supervision_check,case=sigkill value=42i"
    httpx.post(
        f"{influx.url}/write", params={"db": influx.database}, content=line, timeout=10
    ).raise_for_status()
    pid = supervised.pid("influxd")
    lines = len(supervised.lines())

    signal_pid(pid, signal.SIGKILL)

    wait_until(lambda: supervised.said("influxd restarted", after=lines), 30, "restarted")
    assert supervised.said("influxd exited (signal SIGKILL); restart", after=lines)
    assert not alive(pid)
    wait_until(influx.answers, 30, "influxd answering on its port")
    response = httpx.get(
        f"{influx.url}/query",
        params={"db": influx.database, "q": 'SELECT "value" FROM "supervision_check"'},
        timeout=10,
    )
    assert [[42]] == [row[1:] for row in response.json()["results"][0]["series"][0]["values"]]


def test_a_hung_service_is_said_then_killed_and_restarted(supervised: Supervisor) -> None:
    """SIGSTOP: the port still accepts connections, but the probe gets no answer."""
    stack = supervised.stack
    component = stack.components["influxd"]
    pid = supervised.pid("influxd")
    wait_until(lambda: component.answered, 30, "influxd probed and answering")
    lines = len(supervised.lines())
    # Probes every 2 s, each waiting 2 s: silence is said at ~8 s, the kill follows.
    usual, stack.hang_restart_s = stack.hang_restart_s, 12.0
    try:
        signal_pid(pid, signal.SIGSTOP)
        wait_until(
            lambda: supervised.said(f"influxd (pid {pid}) not answering", after=lines),
            30,
            "the hang said",
        )
        wait_until(lambda: supervised.said("influxd restarted", after=lines), 40, "restarted")
    finally:
        stack.hang_restart_s = usual
        if component.process.pid == pid and component.process.process is not None:
            component.process.process.send_signal(signal.SIGCONT)
    assert supervised.said(f"influxd (pid {pid}) silent for", "killed", after=lines)
    assert not alive(pid)
    wait_until(stack.influxd.answers, 30, "influxd answering again")
