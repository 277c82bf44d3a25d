"""Dispatch rules: a responder moves forward only, skipped steps take the same
time, ended dispatches stay ended, timers make no_answer and overdue, and a
level is given up when nobody of it is counted on any more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.dispatch import (
    ENDED,
    FORWARD,
    Dispatch,
    DispatchAction,
    act,
    level_given_up,
    next_timer,
    run_timers,
)
from hub.errors import DispatchTransitionError
from riverguard.config import Config

T0 = datetime(2026, 7, 18, 11, 0, tzinfo=UTC)


def _called(responder: str = "wang") -> Dispatch:
    return Dispatch(
        id=f"d-{responder}",
        alarm_id="a-1",
        responder_id=responder,
        level=1,
        state="notified",
        notified_at=T0,
    )


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_responder_accepts_departs_arrives_and_finishes_with_a_note() -> None:
    dispatch = act(_called(), "accept", _at(30))
    dispatch = act(dispatch, "depart", _at(40))
    dispatch = act(dispatch, "arrive", _at(400))
    dispatch = act(dispatch, "finish", _at(900), note="劝离两名钓鱼者")
    assert "finished" == dispatch.state
    assert (_at(30), _at(40), _at(400), _at(900)) == (
        dispatch.accepted_at,
        dispatch.departed_at,
        dispatch.arrived_at,
        dispatch.ended_at,
    )
    assert "劝离两名钓鱼者" == dispatch.note


def test_pressing_on_scene_from_the_message_accepts_and_departs_at_the_same_time() -> None:
    dispatch = act(_called(), "arrive", _at(300))
    assert "on_scene" == dispatch.state
    assert _at(300) == dispatch.accepted_at == dispatch.departed_at == dispatch.arrived_at


@pytest.mark.parametrize(
    ("actions", "refused"),
    [
        (["accept"], "accept"),
        (["arrive"], "depart"),
        (["accept"], "decline"),
        (["decline"], "accept"),
        (["finish"], "cancel"),
        (["cancel"], "arrive"),
    ],
)
def test_going_back_declining_after_accepting_or_acting_on_an_ended_dispatch_is_refused(
    actions: list[DispatchAction], refused: DispatchAction
) -> None:
    dispatch = _called()
    for action in actions:
        dispatch = act(dispatch, action, _at(10))
    with pytest.raises(DispatchTransitionError):
        act(dispatch, refused, _at(20))


def test_a_note_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(DispatchTransitionError, match="note"):
        act(_called(), "finish", _at(10), note="x" * 2001)


@given(st.lists(st.sampled_from(get_args(DispatchAction)), max_size=8))
def test_any_sequence_of_actions_only_moves_forward_and_never_leaves_an_ended_state(
    actions: list[DispatchAction],
) -> None:
    dispatch = _called()
    for step, action in enumerate(actions, start=1):
        try:
            after = act(dispatch, action, _at(step))
        except DispatchTransitionError:
            continue
        assert not dispatch.ended
        if after.state in FORWARD:
            assert FORWARD.index(after.state) > FORWARD.index(dispatch.state)
        else:
            assert after.state in ENDED
        stamps = [after.accepted_at, after.departed_at, after.arrived_at, after.ended_at]
        present = [stamp for stamp in stamps if stamp is not None]
        assert present == sorted(present)
        dispatch = after


def test_no_accept_within_the_sites_time_is_no_answer(example_config: Config) -> None:
    site = example_config.site("danshui-bridge")
    dispatch = _called()
    assert _at(site.dispatch_accept_s) == next_timer(dispatch, site)
    assert dispatch == run_timers(dispatch, site, _at(site.dispatch_accept_s - 1))
    late = run_timers(dispatch, site, _at(site.dispatch_accept_s + 50))
    assert ("no_answer", _at(site.dispatch_accept_s)) == (late.state, late.ended_at)
    assert next_timer(late, site) is None


def test_not_on_scene_in_time_after_accepting_is_overdue_but_may_still_arrive(
    example_config: Config,
) -> None:
    site = example_config.site("danshui-bridge")
    dispatch = act(_called(), "depart", _at(60))
    due = _at(60 + site.dispatch_arrive_s)
    assert due == next_timer(dispatch, site)
    overdue = run_timers(dispatch, site, due)
    assert ("on_the_way", due) == (overdue.state, overdue.overdue_at)
    assert next_timer(overdue, site) is None
    assert overdue == run_timers(overdue, site, due + timedelta(hours=1))
    assert "on_scene" == act(overdue, "arrive", due + timedelta(minutes=3)).state


def test_a_level_is_given_up_when_nobody_of_it_is_counted_on(example_config: Config) -> None:
    site = example_config.site("danshui-bridge")
    wang, li = _called("wang"), _called("li")
    assert not level_given_up([wang, li])
    declined = act(wang, "decline", _at(10))
    assert not level_given_up([declined, li])
    silent = run_timers(li, site, _at(site.dispatch_accept_s))
    assert level_given_up([declined, silent])
    on_the_way = act(li, "depart", _at(20))
    assert not level_given_up([declined, on_the_way])
    late = run_timers(on_the_way, site, _at(20 + site.dispatch_arrive_s))
    assert level_given_up([declined, late])
    assert not level_given_up([declined, act(late, "arrive", _at(2000))])


def test_a_level_that_called_nobody_or_had_one_called_off_is_not_given_up() -> None:
    declined = act(_called("wang"), "decline", _at(10))
    called_off = act(_called("li"), "cancel", _at(20))
    assert not level_given_up([])
    assert not level_given_up([declined, called_off])
    assert level_given_up([declined])
