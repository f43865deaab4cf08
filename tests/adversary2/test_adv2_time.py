"""Adversary round 2, class "time" (issue 13, item 1). The real LiveClock on the virtual loop
(``tests.virtual_time``): no wall time read, nothing sleeps."""

from __future__ import annotations

import asyncio

from tests.fakes import calendar
from tests.virtual_time import MINUTE, NS, VirtualLoop, at, host_at, live_world, run_virtual
from zhixing.algos.base import AlgoContext
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.clock_watch import ClockWatch
from zhixing.engine.enums import Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import RiskLimits

SYMBOL = "600000.SH"


def _twap_children(suspend_at_s: float | None, suspend_ns: int) -> list[tuple[int, int]]:
    """A 6,000-share TWAP 10:00-10:30, a slice every 30 s (100 shares each), every child filled at once;
    the machine suspended ``suspend_ns`` at ``suspend_at_s`` loop seconds. (engine ns, quantity) of each
    child."""
    parent = ParentOrder(
        parent_id="P1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=6_000,
        start_ns=at("10:00"),
        end_ns=at("10:30"),
        params={"interval_s": "30", "final_sweep_s": "0"},
    )

    async def main(loop: VirtualLoop) -> list[tuple[int, int]]:
        host = host_at(loop, "09:59:59")
        clock = host.live_clock()
        world = await live_world(clock, fill_on_submit=lambda o: o.quantity)
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000)
        sent: list[tuple[int, int]] = []
        submit = world.broker.submit

        async def recording(order: Order) -> None:
            sent.append((clock.now_ns(), order.quantity))
            await submit(order)

        world.broker.submit = recording  # type: ignore[method-assign]
        if suspend_at_s is not None:
            loop.call_later(suspend_at_s, host.suspend, suspend_ns)
        ctx = AlgoContext(clock=clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar())
        TwapAlgo(parent, ctx).start()
        await asyncio.sleep((at("10:31") - at("09:59:59")) / NS)
        await world.oms.stop()
        return sent

    return run_virtual(main)


def test_was_finding_a_suspend_mid_twap_bursts_the_missed_slices_into_one_child() -> None:
    """The machine sleeps 10 minutes at 10:05 (lid closed, a VM paused). On the wake the engine's time
    has moved on (CLOCK_BOOTTIME) and the slice timer fires within a second, as T12 says; but the TWAP
    then works the *latest* due slice's cumulative target: one child of ~2,000 shares (20 slices' worth)
    at once, in a market it has not quoted for 10 minutes. A paused algorithm resumes without a
    catch-up burst (``_skip_missed``, ``algos/base.py``: "No catch-up burst"); a suspended one bursts.
    The rule: no wall or clock event "bursts any algorithm"."""
    baseline = _twap_children(None, 0)
    assert max(q for _, q in baseline) == 100
    children = _twap_children(5 * 60 + 1.5, 10 * MINUTE)
    wake = at("10:15:00")
    after = [q for t, q in children if t >= wake]
    assert after, children
    assert max(after) <= 200, (
        f"first child after the wake: {after[0]} shares (a slice is 100): the missed slices burst"
    )


def test_held_a_wall_step_after_midnight_does_not_reset_the_day_cap_and_a_real_day_does() -> None:
    """The day's message cap follows the engine's days: after a real midnight (engine time) it resets,
    a +20 h host step alone does not."""

    async def main(loop: VirtualLoop) -> tuple[int, int]:
        host = host_at(loop, "14:59")
        clock = host.live_clock()
        world = await live_world(clock, risk=RiskLimits(max_messages_per_day=10, cancel_reserve_pct=10))
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000)
        for _ in range(9):
            world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, price=10_000, quantity=100))
            await asyncio.sleep(2)  # past the duplicate window
        host.step_wall(20 * 3_600 * NS)
        denied = world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, price=10_000, quantity=100))
        await asyncio.sleep((at("00:00") + 86_400 * NS - clock.now_ns()) / NS + 1)
        allowed = world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, price=10_000, quantity=100))
        await world.oms.stop()
        return int(denied.status.value == "DENIED"), int(allowed.status.value != "DENIED")

    assert run_virtual(main) == (1, 1)


def test_held_a_slow_drift_of_small_steps_is_told_once_when_it_adds_up() -> None:
    """30 steps of +0.5 s a minute apart (each under the 2 s threshold): told when the sum passes 2 s,
    then again each time another 2 s accumulate, never at every check."""

    async def main(loop: VirtualLoop) -> list[int]:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        watch = ClockWatch(clock, clock.system_ns)
        watch.start(reference_offset_ns=0)
        for k in range(30):
            host.step_wall_after(60 * (k + 1), NS // 2)
        await asyncio.sleep(31 * 60)
        watch.stop()
        return [s.step_ns for s in watch.steps]

    steps = run_virtual(main)
    assert steps
    assert all(2 * NS < s <= 3 * NS for s in steps), steps
    assert sum(steps) <= 15 * NS
    assert len(steps) >= 5
