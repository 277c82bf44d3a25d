"""Event history from InfluxDB: paging and counts per hour and day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest

from riverguard.testing import wait_for
from riverguard.wire import topics
from riverguard.wire.times import format_ts, utcnow
from tests.hub.conftest import SITE, RunningHub, event_payload, mqtt_inbox, unique_seq

pytestmark = pytest.mark.integration


async def _publish_at(
    running: RunningHub, edge: aiomqtt.Client, times: list[datetime], site: str = SITE
) -> list[str]:
    """One fence event at each time (device clock), committed and written to InfluxDB."""
    sent = []
    for ts in times:
        event = event_payload(unique_seq(), ts=format_ts(ts), edge_ts=format_ts(utcnow()))
        sent.append(event)
    written = await running.metric("riverguard_hub_influx_written_total")
    async with mqtt_inbox(edge, topics.committed(SITE)) as acks:
        for event in sent:
            await edge.publish(topics.events(site), json.dumps(event).encode(), qos=1)
        ids = {e["id"] for e in sent}
        await wait_for(lambda: ids <= {i for m in acks.items for i in m[1]["ids"]}, what="acks")
    await running.wait_metric("riverguard_hub_influx_written_total", written + len(sent))
    return [e["id"] for e in sent]


async def test_events_page_by_offset_and_by_before_without_gaps_or_repeats(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    now = utcnow().replace(microsecond=0)
    ids = await _publish_at(running_hub, edge, [now - timedelta(seconds=s) for s in range(7)])
    headers = await running_hub.auth("viewer")
    get = running_hub.http.get

    by_offset: list[str] = []
    for offset in (0, 3, 6):
        page = (await get(f"/api/events?limit=3&offset={offset}", headers=headers)).json()
        by_offset.extend(e["id"] for e in page)
    by_before: list[str] = []
    params: dict[str, str | int] = {"limit": 3}
    while True:
        page = (await get("/api/events", params=params, headers=headers)).json()
        if not page:
            break
        by_before.extend(e["id"] for e in page)
        params["before"] = page[-1]["ts"]

    # Newest first: the event at `now` was sent first.
    assert ids == by_offset
    assert ids == by_before
    bad = await get("/api/events?offset=-1", headers=headers)
    assert 422 == bad.status_code


async def test_event_counts_per_hour_and_day_with_empty_buckets(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    hour = datetime(2026, 7, 27, 12, tzinfo=UTC)
    times = [hour + timedelta(minutes=5), hour + timedelta(minutes=50)]
    times += [hour + timedelta(hours=2, minutes=m) for m in (1, 2, 3)]
    await _publish_at(running_hub, edge, times)
    headers = await running_hub.auth("viewer")
    window = {"from": format_ts(hour), "to": format_ts(hour + timedelta(hours=4))}

    hourly = (
        await running_hub.http.get(
            "/api/stats/events", params={**window, "site": SITE}, headers=headers
        )
    ).json()
    daily = (
        await running_hub.http.get(
            "/api/stats/events",
            params={
                "from": "2026-07-26T00:00:00Z",
                "to": "2026-07-29T00:00:00Z",
                "interval": "day",
            },
            headers=headers,
        )
    ).json()
    shanghai = (
        await running_hub.http.get(
            "/api/stats/events",
            params={
                "from": "2026-07-26T16:00:00Z",
                "to": "2026-07-28T16:00:00Z",
                "interval": "day",
                "tz": "Asia/Shanghai",
            },
            headers=headers,
        )
    ).json()
    other_site = (
        await running_hub.http.get(
            "/api/stats/events", params={**window, "site": "xiyong-wharf"}, headers=headers
        )
    ).json()

    assert [2, 0, 3, 0] == [b["count"] for b in hourly["buckets"]]
    assert (5, "hour", SITE, format_ts(hour)) == (
        hourly["total"],
        hourly["interval"],
        hourly["site"],
        hourly["buckets"][0]["start"],
    )
    assert [0, 5, 0] == [b["count"] for b in daily["buckets"]]
    # Local days: 27 July in Shanghai starts at 16:00 UTC on the 26th.
    assert ([5, 0], "2026-07-26T16:00:00.000Z") == (
        [b["count"] for b in shanghai["buckets"]],
        shanghai["buckets"][0]["start"],
    )
    assert 0 == other_site["total"]


@pytest.mark.parametrize(
    "query",
    [
        "interval=week",
        "tz=Mars/Olympus",
        "site=a'b",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ],
)
async def test_bad_stats_queries_are_422(running_hub: RunningHub, query: str) -> None:
    response = await running_hub.http.get(
        f"/api/stats/events?{query}", headers=await running_hub.auth("viewer")
    )
    assert (422, "invalid_request") == (response.status_code, response.json()["error"])


async def test_a_point_that_is_not_an_event_is_skipped_and_counted(
    running_hub: RunningHub, edge: aiomqtt.Client
) -> None:
    """A foreign point in the database (here: no zone tag) leaves the history readable."""
    ids = await _publish_at(running_hub, edge, [utcnow().replace(microsecond=0)])
    settings = running_hub.settings
    foreign = f'events,site={SITE},device=x,kind=fence.breach,severity=warning id="foreign"'
    written = await running_hub.hub.influx.http.post(
        f"{settings.influx_url}/write",
        params={"db": settings.influx_database},
        content=foreign.encode(),
    )
    assert 204 == written.status_code
    before = await running_hub.metric("riverguard_hub_influx_unreadable_points_total")

    page = await running_hub.http.get(
        "/api/events?limit=50", headers=await running_hub.auth("viewer")
    )

    assert 200 == page.status_code
    assert ids[0] in {e["id"] for e in page.json()}
    assert "foreign" not in {e["id"] for e in page.json()}
    assert before + 1 == await running_hub.metric("riverguard_hub_influx_unreadable_points_total")
