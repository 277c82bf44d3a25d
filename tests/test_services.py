"""The service launcher starts real Mosquitto and influxd that enforce our configuration."""

from __future__ import annotations

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from riverguard.services import Influxd
from tests.conftest import Broker

pytestmark = pytest.mark.integration


def _connect(port: int, username: str, password: str) -> bool:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    try:
        for _ in range(20):
            client.loop(0.1)
            if client.is_connected():
                return True
        return False
    finally:
        client.disconnect()
        client.loop(0.1)


def test_broker_accepts_generated_logins(broker: Broker) -> None:
    """A generated login (PBKDF2 password line written by us) is accepted."""
    assert _connect(broker.port, "hub", broker.server.logins["hub"])


def test_broker_refuses_anonymous_and_wrong_password(broker: Broker) -> None:
    assert not _connect(broker.port, "hub", "wrong")
    assert not _connect(broker.port, "", "")


def test_influxd_answers_and_has_database(influxd: Influxd) -> None:
    response = httpx.get(f"{influxd.url}/query", params={"q": "SHOW DATABASES"})
    assert 200 == response.status_code
    assert ["riverguard"] in response.json()["results"][0]["series"][0]["values"]
