"""The benchmark peer: the Node-RED flow a user would build instead of Riverguard.

mqtt in (``peer/field/+/fence/+``) -> a function node that normalises the
report -> ``influxdb out`` (one write per message, as that node does) and
``websocket out`` (``/ws/events``, the same envelope as our console gets).
Its npm packages are installed into ``bench/peer/node_modules`` on first use.
When the stack serves TLS (``bench --tls``), the flow's broker connection goes to
the TLS listener through a ``tls-config`` node that checks the broker against the
stack's CA, and the devices publish over TLS too, as they do for Riverguard.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from websockets.exceptions import InvalidHandshake, InvalidMessage
from websockets.sync.client import connect as ws_connect

from riverguard.services import ManagedProcess, free_port, port_accepts
from riverguard.stack import Stack
from simulators.load import PEER_TREE, Target, fences

PEER_DIR = Path(__file__).resolve().parent.parent / "bench" / "peer"
PEER_DATABASE = "peer"


def install() -> None:
    """``npm ci`` in bench/peer when its packages are not there yet."""
    if (PEER_DIR / "node_modules" / "node-red").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the Node-RED peer needs Node.js and npm")
    print("installing Node-RED for the peer benchmark (npm ci) ...", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True)


class NodeRedPeer:
    def __init__(self, directory: Path, stack: Stack) -> None:
        self.directory = directory
        self.stack = stack
        self.port = free_port()
        self.process = ManagedProcess(
            "node-red",
            [
                shutil.which("node") or "node",
                str(PEER_DIR / "node_modules" / "node-red" / "red.js"),
                "--settings",
                str(PEER_DIR / "settings.js"),
            ],
            directory / "node-red.log",
            env={"PEER_PORT": str(self.port), "PEER_USER_DIR": str(directory), "PATH": "/usr/bin"},
        )

    def start(self) -> None:
        install()
        self.directory.mkdir(parents=True, exist_ok=True)
        flows = (PEER_DIR / "flows.template.json").read_text(encoding="utf-8")
        flows = (
            flows.replace("__BROKER_PORT__", str(self._broker_port()))
            .replace("__INFLUX_PORT__", str(self.stack.influxd.port))
            .replace("__INFLUX_DB__", PEER_DATABASE)
        )
        nodes = json.loads(flows)
        for node in nodes:
            if node["type"] == "mqtt in":
                node["topic"] = PEER_TREE + "/" + node["topic"]
            if node["type"] == "mqtt-broker" and self.stack.tls:
                node["usetls"] = True
                node["tls"] = "cfg-tls"
        if self.stack.tls:
            # Node-RED reads the CA file itself; its certificate names 127.0.0.1.
            nodes.append(
                {
                    "id": "cfg-tls",
                    "type": "tls-config",
                    "name": "stack CA",
                    "cert": "",
                    "key": "",
                    "ca": str(self.stack.ca_file),
                    "certname": "",
                    "keyname": "",
                    "caname": "",
                    "servername": "",
                    "verifyservercert": True,
                    "alpnprotocol": "",
                }
            )
        (self.directory / "flows.json").write_text(json.dumps(nodes), encoding="utf-8")
        # credentialSecret is false in settings.js: credentials are plain JSON.
        credentials = {"cfg-mqtt": {"user": "sim", "password": self.stack.secrets.broker["sim"]}}
        (self.directory / "flows_cred.json").write_text(json.dumps(credentials), encoding="utf-8")
        httpx.post(
            f"{self.stack.influxd.url}/query", data={"q": f'CREATE DATABASE "{PEER_DATABASE}"'}
        ).raise_for_status()
        self.process.start()
        # The HTTP port opens before the flows start: wait for the WebSocket itself.
        self.process.wait_until(self._websocket_answers, 60, "serving /ws/events")

    def _websocket_answers(self) -> bool:
        if not port_accepts(self.port):
            return False
        try:
            with ws_connect(f"ws://127.0.0.1:{self.port}/ws/events", open_timeout=2):
                return True
        except (OSError, InvalidHandshake, InvalidMessage):
            return False

    def stop(self) -> None:
        self.process.stop()

    def _broker_port(self) -> int:
        return self.stack.broker_tls_port if self.stack.tls else self.stack.broker_port

    def target(self) -> Target:
        return Target(
            name="node-red",
            broker_port=self._broker_port(),
            ca_file=self.stack.ca_file if self.stack.tls else None,
            password=self.stack.secrets.broker["sim"],
            ws_url=f"ws://127.0.0.1:{self.port}/ws/events",
            processes={
                "broker": [self.stack.mosquitto.process],
                "influxd": [self.stack.influxd.process],
                "node-red": [self.process],
            },
            devices=fences(self.stack),
            prefix=PEER_TREE + "/",
        )
