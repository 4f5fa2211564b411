"""Tests of actial_ros.timeline.TimelineGuard: outlier stamps dropped, real jumps confirmed, nothing lost."""

from __future__ import annotations

import pytest

from actial_ros.errors import ConfigError
from actial_ros.timeline import Jump, TimelineGuard

S = 1_000_000_000


def offer_all(guard: TimelineGuard[str], stamps: list[float]) -> tuple[list[str], list[str], list[Jump]]:
    accepted: list[str] = []
    outliers: list[str] = []
    jumps: list[Jump] = []
    for stamp in stamps:
        verdict = guard.offer(int(stamp * S), f'{stamp:g}')
        accepted += [item for _, item in verdict.accepted]
        outliers += verdict.outliers
        if verdict.jump is not Jump.NONE:
            jumps.append(verdict.jump)
    return accepted, outliers, jumps


def test_ordinary_stream_passes_untouched() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=3)
    stamps = [10.0, 10.1, 10.05, 10.2, 11.1]  # jitter and a 0.9 s gap are ordinary
    assert offer_all(guard, stamps) == ([f'{s:g}' for s in stamps], [], [])
    assert guard.newest_ns == int(11.1 * S)


@pytest.mark.parametrize('bogus', [5.0, 15.0, 0.0, 1e9])
def test_an_isolated_stamp_is_an_outlier(bogus: float) -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=3)
    accepted, outliers, jumps = offer_all(guard, [10.0, 10.1, bogus, 10.2, 10.3])
    assert accepted == ['10', '10.1', '10.2', '10.3'] and outliers == [f'{bogus:g}'] and jumps == []


def test_two_outliers_in_a_row_are_both_dropped() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=3)
    accepted, outliers, _ = offer_all(guard, [10.0, 3.0, 4.0, 10.1])
    assert accepted == ['10', '10.1'] and outliers == ['3', '4']


def test_disagreeing_suspects_restart_the_run() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=2)
    # 3.0 then 50.0: one behind, one ahead of 10: not one run; 50.0 and 50.1 then confirm a forward jump.
    accepted, outliers, jumps = offer_all(guard, [10.0, 3.0, 50.0, 50.1])
    assert outliers == ['3'] and accepted == ['10', '50', '50.1'] and jumps == [Jump.FORWARD]


def test_a_real_reset_is_confirmed_and_loses_nothing() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=3)
    accepted, outliers, jumps = offer_all(guard, [100.0, 100.1, 0.0, 0.1, 0.05, 0.2])
    assert accepted == ['100', '100.1', '0', '0.1', '0.05', '0.2'] and outliers == [] and jumps == [Jump.BACKWARD]
    assert guard.newest_ns == int(0.2 * S)


def test_a_slow_stream_is_delivered_in_runs() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=2)
    accepted, outliers, jumps = offer_all(guard, [0.0, 2.0, 4.0, 6.0, 8.0])
    assert accepted == ['0', '2', '4', '6', '8'] and outliers == [] and jumps == [Jump.FORWARD, Jump.FORWARD]


def test_one_confirmation_acts_at_once() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=1)
    assert offer_all(guard, [100.0, 0.0]) == (['100', '0'], [], [Jump.BACKWARD])


def test_reset_releases_the_held_suspects() -> None:
    guard: TimelineGuard[str] = TimelineGuard(jump_s=1.0, confirmations=3)
    offer_all(guard, [100.0, 0.0])
    assert guard.held == 1
    assert guard.reset() == [(0, '0')]
    assert guard.newest_ns is None and guard.held == 0


def test_invalid_thresholds() -> None:
    with pytest.raises(ConfigError):
        TimelineGuard(jump_s=-1.0, confirmations=3)
    with pytest.raises(ConfigError):
        TimelineGuard(jump_s=1.0, confirmations=0)
