"""Cleaning: debounce, device restarts and seq wraps, clock skew."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.dedup import Sequences
from edge.errors import Rejected
from edge.normalizer import Normalizer
from riverguard.config import Config
from riverguard.testing import camera_report, fence_report, wait_for
from riverguard.wire import topics
from riverguard.wire.models import Event
from riverguard.wire.times import format_ts
from riverguard.wire.topics import FieldTopic
from tests.conftest import Broker
from tests.edge.support import SITE, edge_settings, keyed, publisher, recording, running_edge

T0 = datetime(2026, 7, 27, 21, 0, 0, tzinfo=UTC)
FENCE = FieldTopic(SITE, "fence", "db-fence-01", "report")
CAMERA = FieldTopic(SITE, "camera", "db-cam-01", "report")


def _raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _with_debounce(config: Config, seconds: float) -> Config:
    data = config.model_dump()
    for site in data["sites"]:
        site["debounce_s"] = seconds
    return Config.model_validate(data)


def _reason(call: Any) -> str:
    with pytest.raises(Rejected) as caught:
        call()
    return caught.value.reason


# --- debounce ----------------------------------------------------------------------------


def test_repeated_trigger_of_a_device_and_zone_within_the_window_is_debounced(
    example_config: Config,
) -> None:
    normalizer = Normalizer.for_site(_with_debounce(example_config, 2.0), SITE)
    at = T0
    normalizer.report(FENCE, _raw(fence_report(1, "z1", ts=at)), at)
    again = at + timedelta(seconds=1)
    assert "debounced" == _reason(
        lambda: normalizer.report(FENCE, _raw(fence_report(2, "z1", ts=again)), again)
    )
    # Another kind is news, and so is the same trigger once the window has passed.
    clear = normalizer.report(FENCE, _raw(fence_report(3, "z1", "clear", ts=again)), again)
    assert "fence.clear" == clear.event.kind
    later = at + timedelta(seconds=2.5)
    assert "db-fence-01:4" == (
        normalizer.report(FENCE, _raw(fence_report(4, "z1", ts=later)), later).event.id
    )


def test_debounce_is_per_device(example_config: Config) -> None:
    normalizer = Normalizer.for_site(_with_debounce(example_config, 2.0), SITE)
    normalizer.report(CAMERA, _raw(camera_report(1, "z1", ts=T0)), T0)
    other = FieldTopic(SITE, "camera", "db-cam-02", "report")
    adapted = normalizer.report(other, _raw(camera_report(1, "z2", ts=T0)), T0)
    assert "db-cam-02:1" == adapted.event.id


def test_a_debounced_report_still_counts_as_seen_for_duplicates(example_config: Config) -> None:
    normalizer = Normalizer.for_site(_with_debounce(example_config, 2.0), SITE)
    normalizer.report(FENCE, _raw(fence_report(1, "z1", ts=T0)), T0)
    second = _raw(fence_report(2, "z1", ts=T0))
    assert "debounced" == _reason(lambda: normalizer.report(FENCE, second, T0))
    later = T0 + timedelta(seconds=10)
    assert "duplicate" == _reason(lambda: normalizer.report(FENCE, second, later))


def test_no_debounce_by_default(example_config: Config) -> None:
    assert 0.0 == example_config.site(SITE).debounce_s


# --- device restarts and seq wraps --------------------------------------------------------


def test_a_device_restart_gives_new_ids_with_a_boot_suffix() -> None:
    seqs = Sequences()
    for offset, seq in enumerate((100, 101, 102)):
        assert 0 == seqs.accept("fence", seq, T0 + timedelta(seconds=offset)).boot
    restart_at = T0 + timedelta(seconds=60)
    first = seqs.accept("fence", 1, restart_at)
    assert (int(restart_at.timestamp()), True) == (first.boot, first.restarted)
    second = seqs.accept("fence", 2, restart_at + timedelta(seconds=1))
    assert (first.boot, False) == (second.boot, second.restarted)


def test_a_restart_reusing_a_seen_seq_is_not_a_duplicate() -> None:
    """The device sent seq 1..3, restarted and sends seq 1 again: a new report, new time."""
    seqs = Sequences()
    for seq in (1, 2, 3):
        seqs.accept("fence", seq, T0 + timedelta(seconds=seq))
    again = seqs.accept("fence", 1, T0 + timedelta(seconds=30))
    assert again.restarted
    assert again.boot > 0


def test_a_redelivery_is_a_duplicate_and_a_late_report_keeps_its_boot() -> None:
    seqs = Sequences()
    seqs.accept("fence", 10, T0)
    seqs.accept("fence", 12, T0 + timedelta(seconds=2))
    with pytest.raises(Rejected):
        seqs.accept("fence", 12, T0 + timedelta(seconds=2))
    late = seqs.accept("fence", 11, T0 + timedelta(seconds=1))  # sent before 12, delivered after
    assert (0, False) == (late.boot, late.restarted)


def test_a_backwards_jump_to_a_large_seq_is_not_a_restart() -> None:
    """Another sender using the device's id, or a device starting at a random number."""
    seqs = Sequences()
    seqs.accept("fence", 900_000_000, T0)
    other = seqs.accept("fence", 500_000_000, T0 + timedelta(seconds=1))
    assert (0, False) == (other.boot, other.restarted)


def test_a_seq_wrap_starts_a_new_boot() -> None:
    seqs = Sequences()
    seqs.accept("fence", 2**31 - 1, T0)
    wrapped = seqs.accept("fence", 0, T0 + timedelta(seconds=1))
    assert wrapped.restarted


def test_boots_survive_an_edge_restart_through_state_and_load() -> None:
    seqs = Sequences()
    seqs.accept("fence", 500, T0)
    restored = Sequences()
    restored.load(json.loads(json.dumps(seqs.state())))
    after = restored.accept("fence", 1, T0 + timedelta(minutes=5))  # restarted meanwhile
    assert after.restarted


def test_restarted_devices_events_get_the_boot_suffix(normalizer_config: Config) -> None:
    normalizer = Normalizer.for_site(normalizer_config, SITE)
    normalizer.report(FENCE, _raw(fence_report(50, "z1", ts=T0)), T0)
    at = T0 + timedelta(seconds=40)
    adapted = normalizer.report(FENCE, _raw(fence_report(1, "z1", ts=at)), at)
    assert f"db-fence-01:1:b{int(at.timestamp())}" == adapted.event.id
    assert adapted.restarted


@pytest.fixture
def normalizer_config(example_config: Config) -> Config:
    return example_config


# --- clock skew ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device_offset", "replaced"),
    [
        (timedelta(minutes=10), True),  # ahead: a future report is always wrong
        (timedelta(days=-2), True),  # far behind: a clock that was never set
        (timedelta(minutes=-10), False),  # behind a little: buffered during an outage
        (timedelta(seconds=30), False),
    ],
)
def test_device_time_out_of_bounds_is_replaced_by_edge_time_and_kept_in_attrs(
    example_config: Config, device_offset: timedelta, replaced: bool
) -> None:
    normalizer = Normalizer(
        example_config.site(SITE),
        example_config.device_by_id,
        clock_ahead_max_s=60,
        clock_behind_max_s=24 * 3600,
    )
    device_ts = T0 + device_offset
    adapted = normalizer.report(FENCE, _raw(fence_report(1, "z1", ts=device_ts)), T0)
    assert replaced == adapted.clock_replaced
    if replaced:
        assert T0 == adapted.event.ts
        assert format_ts(device_ts) == adapted.event.attrs["device_ts"]
    else:
        assert device_ts == adapted.event.ts
        assert "device_ts" not in adapted.event.attrs


@pytest.mark.parametrize(
    ("ts", "kept"),
    [
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        (1785187265, "1970-01-21T15:53:07.265Z"),  # seconds, not milliseconds
        (0, "1970-01-01T00:00:00.000Z"),  # a clock never set
    ],
)
def test_a_device_time_the_wire_cannot_carry_keeps_the_event_with_the_edge_time(
    example_config: Config, ts: object, kept: str
) -> None:
    """Even with no skew bounds: year 9999 was accepted, then refused by InfluxDB."""
    normalizer = Normalizer(example_config.site(SITE), example_config.device_by_id)
    report = {**fence_report(1, "z1", "breach"), "ts": ts}
    adapted = normalizer.report(FENCE, _raw(report), T0)
    assert (T0, kept, True) == (
        adapted.event.ts,
        adapted.event.attrs["device_ts"],
        adapted.clock_replaced,
    )
    assert T0 == Event.model_validate_json(adapted.event.model_dump_json()).ts


# --- through a running edge ---------------------------------------------------------------


@pytest.mark.integration
async def test_restart_skew_and_debounce_through_the_edge_and_the_boot_survives_it(
    own_broker: Broker, tmp_path: Path, example_config: Config
) -> None:
    config = _with_debounce(example_config, 5.0)
    events = topics.events(SITE)
    fence = topics.field_report(SITE, "fence", "db-fence-01")
    now = datetime.now(UTC).replace(microsecond=0)
    restart = now - timedelta(seconds=30)

    def agent() -> EdgeAgent:
        return EdgeAgent(edge_settings(own_broker.settings(f"edge-{SITE}"), tmp_path), config)

    async with (
        recording(own_broker.settings("hub"), events) as hub_view,
        publisher(own_broker.settings("sim")) as device,
    ):
        async with running_edge(agent()) as edge:
            reports = [
                fence_report(700, "z1", "breach", ts=restart - timedelta(seconds=10)),
                fence_report(701, "z1", "breach", ts=restart - timedelta(seconds=9)),  # debounced
                fence_report(1, "z1", "clear", ts=restart),  # the controller restarted
                fence_report(2, "z1", "tamper", ts=now + timedelta(hours=1)),  # clock ahead
            ]
            for report in reports:
                await device.publish(fence, json.dumps(report), qos=1)
            payloads = await hub_view.wait_count(events, 3)
            registry = edge.metrics.registry
            assert 1.0 == registry.get_sample_value("riverguard_edge_device_restarts_total")
            assert 1.0 == registry.get_sample_value("riverguard_edge_clock_skew_total")
            debounced = {"reason": "debounced"}
            assert 1.0 == registry.get_sample_value("riverguard_edge_rejected_total", debounced)
        boot = int(restart.timestamp())
        first = [Event.model_validate_json(payload) for payload in payloads]
        derived = ["db-fence-01:700", f"db-fence-01:1:b{boot}", f"db-fence-01:2:b{boot}"]
        assert keyed(edge, *derived) == [event.id for event in first]
        assert format_ts(now + timedelta(hours=1)) == first[2].attrs["device_ts"]
        assert abs((first[2].ts - first[2].edge_ts).total_seconds()) < 1

        # A new edge process on the same data: the device's boot is remembered.
        def ids() -> list[str]:
            return [Event.model_validate_json(payload).id for payload in hub_view.on(events)]

        async with running_edge(agent()) as again:
            later = fence_report(3, "z1", "breach", ts=restart + timedelta(seconds=5))
            await device.publish(fence, json.dumps(later), qos=1)
            await wait_for(
                lambda: any(i.startswith("db-fence-01:3") for i in ids()), what="the next event"
            )
        # The same key after the restart: the same report would get the same id.
        assert keyed(edge, *derived) == keyed(again, *derived)
        assert keyed(again, f"db-fence-01:3:b{boot}")[0] in ids()
        assert [] == [i for i in ids() if i.startswith("db-fence-01:3:k")]
