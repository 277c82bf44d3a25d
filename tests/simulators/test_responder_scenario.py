"""The responder scenario against a real stack whose responders are reached through
the demo's signed webhook: the alarm climbs two levels, the police accept and arrive
with the token of the link the hub sent them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from riverguard.services import ServiceError, free_port
from riverguard.stack import Stack
from simulators.responder_calls import Webhook, receiving
from simulators.scenario import Player, load_scenario
from simulators.stack_info import StackInfo
from tests.conftest import EXAMPLE_CONFIG, stack_logs

# Seconds unacknowledged before each level of the grid path is called: two quick
# levels, the ones above them out of the test's reach.
GRID_PATH_S = (3.0, 3.0, 3600.0, 3600.0)


@pytest.fixture(scope="module")
def responder_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`riverguard up --webhook` on the example sites, its grid path quick."""
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("responders"),
        config_path=EXAMPLE_CONFIG,
        simulators=(),
        ports=None,
        webhook=f"http://127.0.0.1:{free_port()}/calls",
    )
    # The demo's copy climbs in minutes; the same responders, seconds apart.
    copy = json.loads(stack.hub_config_path.read_text(encoding="utf-8"))
    for site in copy["sites"]:
        for level, after_s in zip(site["escalation"], GRID_PATH_S, strict=True):
            level["after_s"] = after_s
    stack.hub_config_path.write_text(json.dumps(copy, ensure_ascii=False), encoding="utf-8")
    try:
        stack.start()
    except ServiceError:
        stack.stop()
        raise
    yield stack
    stack.stop()


@pytest.mark.integration
async def test_the_police_take_the_call_and_arrive_after_two_levels(
    responder_stack: Stack,
) -> None:
    lines: list[str] = []
    player = Player(
        load_scenario("responder-arrives"),
        StackInfo.parse(responder_stack.info()),
        say=lines.append,
    )
    result = await player.play()
    failed = [check for check in result.checks if not check.passed]
    assert [] == failed, "\n".join(lines) + "\n" + stack_logs(responder_stack)
    assert [
        "alarm in danshui-bridge/z1",
        "dispatch of danshui-bridge-grid-officer notified",
        "dispatch of village-police notified",
        "dispatch of village-police on_scene",
        "dispatch of danshui-bridge-grid-officer notified",
        "alarm in danshui-bridge/z1",
        "timeline opened > escalate:1 > dispatch:danshui-bridge-grid-officer:notified"
        " > escalate:2 > dispatch:village-police:notified > dispatch:village-police:accepted"
        " > dispatch:village-police:on_the_way > dispatch:village-police:on_scene",
        "alarm in danshui-bridge/z1",
    ] == [check.what for check in result.checks]
    # The police moved their dispatch with their link, one step at a time.
    assert [
        "village-police accept: accepted",
        "village-police depart: on_the_way",
        "village-police arrive: on_scene",
    ] == [line for line in lines if line.startswith("village-police ")]


@pytest.mark.integration
async def test_the_phone_refuses_a_call_not_signed_with_the_secret() -> None:
    webhook = Webhook(url=f"http://127.0.0.1:{free_port()}/calls", secret="s" * 24)
    body = b'{"type": "responder.call", "responder": "village-police"}'
    async with receiving(webhook) as calls, httpx.AsyncClient() as http:
        answer = await http.post(
            webhook.url,
            content=body,
            headers={
                "X-Riverguard-Timestamp": "1700000000",
                "X-Riverguard-Signature": "sha256=" + "0" * 64,
                "X-Riverguard-Delivery": "n-1",
            },
        )
    assert (401, [], {"signature": 1}) == (answer.status_code, calls.calls, calls.refused)
