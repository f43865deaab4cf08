"""SimClock jumps and ordering; the bus routes by type and symbol and isolates failing handlers."""

from __future__ import annotations

import asyncio

import pytest

from zhixing.engine.bus import EventBus
from zhixing.engine.clock import ScaledClock, SimClock
from zhixing.engine.events import OrderCanceled, OrderEvent, Quote, TimerFired


def test_sim_clock_jumps_to_next_timer_and_fires_in_scheduling_order() -> None:
    clock = SimClock(1_000)
    fired: list[str] = []
    clock.call_at(5_000, lambda: fired.append("b"))
    clock.call_at(3_000, lambda: fired.append("a"))
    clock.call_at(5_000, lambda: fired.append("c"))
    assert clock.step()
    assert clock.now_ns() == 3_000
    assert fired == ["a"]
    assert clock.step()
    assert clock.now_ns() == 5_000
    assert fired == ["a", "b", "c"]
    assert not clock.step()


def test_sim_clock_refuses_to_go_backwards_and_past_timers_fire_now() -> None:
    clock = SimClock(10_000)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance_to(9_999)
    fired: list[int] = []
    clock.call_at(5, lambda: fired.append(clock.now_ns()))
    clock.step()
    assert fired == [10_000]


def test_cancelled_timer_never_fires_and_step_respects_until() -> None:
    clock = SimClock(0)
    fired: list[str] = []
    handle = clock.call_at(10, lambda: fired.append("x"))
    clock.call_at(20, lambda: fired.append("y"))
    handle.cancel()
    assert not clock.step(until_ns=15)
    assert clock.step(until_ns=25)
    assert fired == ["y"]


def test_timer_scheduled_for_now_inside_a_callback_fires_in_the_same_step() -> None:
    clock = SimClock(0)
    fired: list[str] = []
    clock.call_at(10, lambda: clock.call_at(10, lambda: fired.append("inner")))
    clock.step()
    assert fired == ["inner"]


async def test_sleep_until_on_sim_clock_wakes_when_stepped() -> None:
    clock = SimClock(0)
    woke: list[int] = []

    async def sleeper() -> None:
        await clock.sleep_until(100)
        woke.append(clock.now_ns())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    assert woke == []
    clock.step()
    await task
    assert woke == [100]


def _quote(symbol: str) -> Quote:
    return Quote(
        ts_event=1,
        ts_init=1,
        symbol=symbol,
        last=1,
        bid_price=1,
        bid_quantity=1,
        ask_price=2,
        ask_quantity=1,
        cum_volume=0,
        cum_amount=0,
        prev_close=1,
        high_limit=0,
        low_limit=0,
    )


def test_bus_routes_by_type_base_type_and_symbol() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.subscribe(Quote, lambda e: got.append(f"all:{e.symbol}"))
    bus.subscribe(Quote, lambda e: got.append(f"only:{e.symbol}"), symbol="600000.SH")
    bus.subscribe(OrderEvent, lambda e: got.append(f"order:{type(e).__name__}"))
    bus.publish(_quote("600000.SH"))
    bus.publish(_quote("000001.SZ"))
    bus.publish(OrderCanceled(ts_event=1, ts_init=1, client_order_id="A", symbol="600000.SH"))
    bus.publish(TimerFired(ts_event=1, ts_init=1, name="t"))
    assert got == ["all:600000.SH", "only:600000.SH", "all:000001.SZ", "order:OrderCanceled"]


def test_failing_handler_is_isolated_and_counted() -> None:
    bus = EventBus()
    got: list[str] = []

    def bad(event: Quote) -> None:
        raise RuntimeError("boom")

    bus.subscribe(Quote, bad)
    bus.subscribe(Quote, lambda e: got.append(e.symbol))
    bus.publish(_quote("600000.SH"))
    assert got == ["600000.SH"]
    assert bus.handler_errors == 1


async def test_async_handler_runs_as_tracked_task_and_failure_is_logged() -> None:
    bus = EventBus()
    got: list[str] = []

    async def good(event: Quote) -> None:
        got.append(event.symbol)

    async def bad(event: Quote) -> None:
        raise RuntimeError("boom")

    bus.subscribe(Quote, good)
    bus.subscribe(Quote, bad)
    bus.publish(_quote("600000.SH"))
    await bus.drain()
    assert got == ["600000.SH"]
    assert bus.handler_errors == 1


def test_cancelled_error_in_handler_propagates() -> None:
    bus = EventBus()

    def cancel(event: Quote) -> None:
        raise asyncio.CancelledError

    bus.subscribe(Quote, cancel)
    with pytest.raises(asyncio.CancelledError):
        bus.publish(_quote("600000.SH"))


async def test_scaled_clock_fires_overdue_timers_in_the_order_of_their_times() -> None:
    """Timers whose time has already passed when they are set (a backlog, or a process descheduled
    between two ``call_at`` on a loaded machine) fire in the order of their times, not of the calls: the
    order cannot depend on how fast the machine ran the calls."""
    start = 1_700_000_000_000_000_000
    clock = ScaledClock(start, speed=1000.0)
    fired: list[int] = []
    whens = [start - k * 1_000_000_000 for k in (1, 3, 2)]  # all overdue, set latest first
    for when in whens:
        clock.call_at(when, lambda when=when: fired.append(when), "overdue")
    done = asyncio.get_running_loop().create_future()
    clock.call_at(start, lambda: done.set_result(None), "end")
    await done
    assert fired == sorted(whens)


async def test_scaled_clock_fires_timers_in_order_and_never_before_their_time() -> None:
    start = 1_700_000_000_000_000_000
    clock = ScaledClock(start, speed=1000.0)  # one virtual second per wall millisecond
    # 50 ms apart on the clock is 50 us on the wall: the order holds only because each timer is armed
    # at its absolute time (a delay from "now" would order them by how fast the calls ran)
    fired: list[tuple[int, int]] = []
    done = asyncio.get_running_loop().create_future()
    whens = [start + k * 50_000_000 for k in (5, 1, 3, 2, 4)]
    for when in whens:
        clock.call_at(when, lambda when=when: fired.append((when, clock.now_ns())), "t")
    cancelled = clock.call_at(start + 100_000_000, lambda: fired.append((0, 0)), "cancelled")
    cancelled.cancel()
    clock.call_at(start + 300_000_000, lambda: done.set_result(None), "end")
    await done
    assert [w for w, _ in fired] == sorted(whens)
    assert all(now >= when for when, now in fired)
    await clock.sleep_until(start + 400_000_000)
    assert clock.now_ns() >= start + 400_000_000
