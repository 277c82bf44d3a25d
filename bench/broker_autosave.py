"""What Mosquitto's persistence settings cost while a backlog builds up.

Mosquitto writes its whole in-memory database (retained messages, sessions,
every queued message) at each save. With a subscriber away (the hub down, an
edge down) its queue grows, and so does each save. For each setting this
starts a broker of our own with mosquitto.conf and that autosave setting,
leaves a persistent session subscribed and away, and publishes QoS 1 reports
of ~200 bytes as fast as one connection can have them acknowledged, in rounds
of 500, until ``--messages`` or ``--seconds``: the rate at the start (empty
queue) and at the end (the backlog queued), and how far it got. Not a test:
run it by hand and put the figures in docs/reliability.md::

    .venv/bin/python bench/broker_autosave.py --messages 100000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import tempfile
import time
from pathlib import Path

from riverguard import broker_acl
from riverguard.config import load_config
from riverguard.mqtt_client import Client, Subscription
from riverguard.services import Mosquitto, free_port, port_accepts
from riverguard.settings import DEFAULT_CONFIG

SETTINGS = {
    "interval 10 s": ["autosave_interval 10"],
    "interval 1 s": ["autosave_interval 1"],
    "every 100 changes": ["autosave_on_changes true", "autosave_interval 100"],
    "every change": ["autosave_on_changes true", "autosave_interval 1"],
}
ROUND = 500


def _start(directory: Path, lines: list[str]) -> Mosquitto:
    # The simulators' login, with a topic tree of its own ("bench/#").
    config = load_config(DEFAULT_CONFIG)
    names = [identity.username for identity in broker_acl.identities(config)]
    passwords = {name: secrets.token_urlsafe(12) for name in names}
    access = broker_acl.broker_access(config, passwords, sandboxes=("bench",))
    broker = Mosquitto(directory, free_port(), access)
    directory.mkdir(parents=True, exist_ok=True)
    broker.write_config()
    text = broker.conf_path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^autosave_(interval|on_changes) .*\n", "", text)
    broker.conf_path.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    broker.process.start()
    broker.process.wait_until(lambda: port_accepts(broker.port), 15, "listening")
    return broker


async def _run(broker: Mosquitto, messages: int, seconds: float) -> dict[str, float]:
    password = broker.logins[broker_acl.SIM]
    away = Client(
        "127.0.0.1",
        broker.port,
        username=broker_acl.SIM,
        password=password,
        identifier="away",
        clean_start=False,
        session_expiry=3600,
    )
    async with away:
        await away.subscribe([Subscription("bench/#", qos=1)])
    publisher = Client("127.0.0.1", broker.port, username=broker_acl.SIM, password=password)
    payload = json.dumps({"seq": 0, "pad": "x" * 180}).encode()
    rates: list[float] = []
    sent = 0
    started = time.perf_counter()
    async with publisher:
        while sent < messages and time.perf_counter() - started < seconds:
            round_started = time.perf_counter()
            await publisher.publish_many([(f"bench/{sent % 100}", payload)] * ROUND)
            rates.append(ROUND / (time.perf_counter() - round_started))
            sent += ROUND
    tenth = max(1, len(rates) // 10)
    return {
        "queued": sent,
        "seconds": round(time.perf_counter() - started, 1),
        "rate_first_per_s": round(sum(rates[:tenth]) / tenth),
        "rate_last_per_s": round(sum(rates[-tenth:]) / tenth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="riverguard-autosave-") as root:
        for name, lines in SETTINGS.items():
            broker = _start(Path(root) / name.replace(" ", "-"), lines)
            try:
                results[name] = asyncio.run(_run(broker, args.messages, args.seconds))
            finally:
                broker.stop()
            print(f"{name}: {results[name]}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
