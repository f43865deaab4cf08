"""The chaos suite's clock-step fault: the host's wall clock steps ± seconds to hours at seeded instants;
the engine's algorithms run on a clock anchored as a ``LiveClock`` is, each step is told exactly once by
the clock watch, and the books are those of the same seed with zero-size steps at the same instants."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from zhixing.engine.clock import AnchoredTime, SimClock
from zhixing.engine.market import shanghai_ns
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.chaos import CLOCK_CHECK_NS, clock_step_plan, crash_plan, run_seed
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.faults import SteppedWall, WallStep
from zhixing.replay.recovery import ProcessClock

DATA = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
HOUR = 3_600 * NS_PER_SECOND


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(DATA)


def _window(market: MarketData) -> tuple[int, int]:
    return shanghai_ns(market.trade_date, "09:30"), shanghai_ns(market.trade_date, "10:15")


def test_the_step_plan_keeps_every_step_where_a_running_engine_watches(market: MarketData) -> None:
    start, end = _window(market)
    sizes: set[int] = set()
    for seed in range(300):
        crashes = crash_plan(seed, start, end)
        steps = clock_step_plan(seed, start, end, crashes)
        assert steps == clock_step_plan(seed, start, end, crashes)  # a pure function of the seed
        last_restart = max(c.at_ns + c.downtime_ns for c in crashes)
        for step in steps:
            assert start <= step.at_ns
            assert 3 * NS_PER_SECOND <= abs(step.step_ns) < 10 * HOUR
            for c in crashes:  # never while an engine is dead or restarting
                assert (
                    not c.at_ns - 3 * CLOCK_CHECK_NS
                    < step.at_ns
                    < c.at_ns + c.downtime_ns + 150 * NS_PER_SECOND
                )
            sizes.add(abs(step.step_ns) // NS_PER_SECOND)
        for a, b in itertools.pairwise(steps):  # told one by one
            assert b.at_ns - a.at_ns >= 3 * CLOCK_CHECK_NS
        if sum(s.step_ns for s in steps):  # a step left in place comes after the last restart
            assert max(s.at_ns for s in steps) > last_restart
    assert {3, 30, 600, 3_600, 32_400} <= sizes  # seconds to hours


def test_a_stepped_wall_adds_the_steps_fired_so_far_and_stops_stepping_when_stopped() -> None:
    clock = SimClock(0)
    wall = SteppedWall(clock, (WallStep(10, HOUR), WallStep(20, 0), WallStep(30, -HOUR), WallStep(40, 5)))
    clock.step()
    assert wall() == 10 + HOUR
    clock.step()
    clock.step()
    assert wall() == 30
    wall.stop()
    assert not clock.step()  # the step at 40 was called off
    assert wall.injected == 2  # the zero step changes nothing and is not counted


async def test_the_engine_view_is_anchored_a_step_of_the_wall_never_reaches_it() -> None:
    clock = SimClock(1_000)
    wall = SteppedWall(clock, (WallStep(2_000, -HOUR),))
    process = ProcessClock(clock, wall)
    fired: list[int] = []
    process.call_at(5_000, lambda: fired.append(process.now_ns()))
    while clock.step():
        pass
    assert fired == [5_000]
    assert process.now_ns() == clock.now_ns() == 5_000
    assert process.system_ns() == 5_000 - HOUR


@pytest.mark.parametrize("seed", [1, 5, 14, 18])  # +1 h kept; ±30 min and ±3 h; ±3 h; -9 h kept
@pytest.mark.slow
async def test_wall_steps_leave_the_books_as_the_same_seed_without_them(
    market: MarketData, seed: int
) -> None:
    stepped = await run_seed(market, seed, 6)
    baseline = await run_seed(market, seed, 6, clock_steps=False)
    assert stepped.problems == []
    assert stepped.clock_steps_injected == stepped.clock_steps_reported > 0
    assert stepped.injected["clock_step"] == stepped.clock_steps_injected
    assert baseline.clock_steps_injected == baseline.clock_steps_reported == 0
    assert stepped.books_digest == baseline.books_digest
    assert (stepped.orders, stepped.fills) == (baseline.orders, baseline.fills)


@pytest.mark.slow
async def test_an_engine_that_followed_the_wall_would_trade_differently(
    market: MarketData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison has teeth: with the anchor removed (the engine's time is the host's wall clock, as
    the old LiveClock had it) seed 18's -9 h step stalls the basket and the books differ."""
    baseline = await run_seed(market, 18, 6, clock_steps=False)
    monkeypatch.setattr(AnchoredTime, "now_ns", AnchoredTime.system_ns)
    followed = await run_seed(market, 18, 6)
    assert followed.books_digest != baseline.books_digest
