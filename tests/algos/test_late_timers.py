"""A timer that fires an interval or more late (the machine suspended, the loop blocked) re-plans like a
resume: TWAP and VWAP spread the missed slices over the ones ahead, POV gives the missed intervals'
volume no share; nothing is sent in one burst, the window's end does not move and the parent still
completes. ``algo_timer_late`` is logged. The real LiveClock on the virtual loop: nothing sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator, MutableMapping
from typing import Any, cast

import pytest

from tests.fakes import calendar
from tests.virtual_time import MINUTE, NS, VirtualLoop, at, host_at, live_world, run_virtual
from zhixing.algos import base as algos_base
from zhixing.algos.base import AlgoContext, ExecAlgo
from zhixing.algos.pov import PovAlgo
from zhixing.algos.twap import TwapAlgo
from zhixing.algos.vwap import VwapAlgo
from zhixing.engine.enums import Side
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus

SYMBOL = "600000.SH"
VOLUME_PER_SECOND = 1_000  # the market trades steadily: POV's reference


class _Recorder:
    """Stands in for ``algos.base.log`` (whatever logging an earlier test configured and cached)."""

    def __init__(self) -> None:
        self.events: list[MutableMapping[str, Any]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.events.append({"event": event, "level": level, **fields})

        return record


@contextlib.contextmanager
def _algo_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    recorder, saved = _Recorder(), algos_base.log
    algos_base.log = recorder
    try:
        yield recorder.events
    finally:
        algos_base.log = saved


@dataclasses.dataclass
class Run:
    children: list[tuple[int, int]]  # (engine ns, quantity) of each child sent
    filled: int
    status: ParentStatus
    end_at: int
    late_logs: list[MutableMapping[str, Any]]


def _run(kind: type[ExecAlgo], params: dict[str, str], quantity: int, suspend_at_s: float | None) -> Run:
    parent = ParentOrder(
        parent_id="P1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=quantity,
        start_ns=at("10:00"),
        end_ns=at("10:30"),
        params=params,
    )

    async def main(loop: VirtualLoop) -> Run:
        host = host_at(loop, "09:59:59")
        clock = host.live_clock()
        world = await live_world(clock, fill_on_submit=lambda o: o.quantity)
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000)

        def tick() -> None:  # cum_volume follows engine time (a suspend counts: the market ran on)
            quote = world.quotes.quotes[SYMBOL]
            traded = max(0, (clock.now_ns() - at("09:59:59")) // NS) * VOLUME_PER_SECOND
            world.quotes.quotes[SYMBOL] = dataclasses.replace(
                quote, cum_volume=traded, ts_event=clock.now_ns()
            )
            loop.call_later(1, tick)

        tick()
        sent: list[tuple[int, int]] = []
        submit = world.broker.submit

        async def recording(order: Order) -> None:
            sent.append((clock.now_ns(), order.quantity))
            await submit(order)

        world.broker.submit = recording  # type: ignore[method-assign]
        if suspend_at_s is not None:
            loop.call_later(suspend_at_s, host.suspend, 10 * MINUTE)
        ctx = AlgoContext(clock=clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar())
        algo = kind(parent, ctx)
        with _algo_logs() as logs:
            algo.start()
            await asyncio.sleep((at("10:31") - at("09:59:59")) / NS)
        await world.oms.stop()
        late = [e for e in logs if e["event"] == "algo_timer_late"]
        return Run(sent, algo.filled_quantity, algo.parent.status, cast(Any, algo).end_at, late)

    return run_virtual(main)


TWAP = {"interval_s": "30", "final_sweep_s": "0"}
CASES = [
    pytest.param(TwapAlgo, TWAP, 6_000, 100, id="twap"),
    pytest.param(VwapAlgo, {**TWAP, "profile": "u_shape", "max_participation": "1"}, 6_000, 400, id="vwap"),
    pytest.param(
        PovAlgo, {"interval_s": "30", "target_rate": "0.01", "catch_up_lots": "1"}, 100_000, 600, id="pov"
    ),
]
SUSPEND_AT_S = 5 * 60 + 1.5  # 10:05:00.5: between two slices
WAKE = at("10:15:00")


@pytest.mark.parametrize(("kind", "params", "quantity", "slice_cap"), CASES)
def test_a_late_timer_sends_no_burst_and_logs_it(
    kind: type[ExecAlgo], params: dict[str, str], quantity: int, slice_cap: int
) -> None:
    baseline = _run(kind, params, quantity, None)
    assert baseline.children
    assert max(q for _, q in baseline.children) <= slice_cap
    assert baseline.late_logs == []
    run = _run(kind, params, quantity, SUSPEND_AT_S)
    after = [q for t, q in run.children if t >= WAKE]
    assert after, run.children
    # the first child after the wake is one slice's worth, not the 20 missed slices'
    assert after[0] <= 2 * slice_cap, (after[0], slice_cap)
    assert max(after) <= 2 * slice_cap
    (late,) = run.late_logs
    assert late["missed_slices"] == 19
    assert late["parent_id"] == "P1"
    assert late["algo"] == kind.name
    assert 570 <= float(str(late["late_s"])) <= 600
    assert run.end_at == baseline.end_at  # the window's end is where it was


@pytest.mark.parametrize(("kind", "params", "quantity", "slice_cap"), CASES[:2])
def test_a_late_schedule_algo_still_completes_the_parent_by_its_end(
    kind: type[ExecAlgo], params: dict[str, str], quantity: int, slice_cap: int
) -> None:
    run = _run(kind, params, quantity, SUSPEND_AT_S)
    assert run.filled == quantity
    assert run.status is ParentStatus.DONE
    assert all(t < at("10:30") for t, _ in run.children)


def test_a_slightly_late_timer_is_not_a_missed_slice() -> None:
    """A suspend shorter than an interval delays one slice; nothing is re-planned, nothing logged."""
    parent_params = {"interval_s": "30", "final_sweep_s": "0"}

    async def main(loop: VirtualLoop) -> tuple[list[int], int]:
        host = host_at(loop, "09:59:59")
        clock = host.live_clock()
        world = await live_world(clock, fill_on_submit=lambda o: o.quantity)
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000)
        parent = ParentOrder(
            parent_id="P1",
            symbol=SYMBOL,
            side=Side.BUY,
            quantity=6_000,
            start_ns=at("10:00"),
            end_ns=at("10:30"),
            params=parent_params,
        )
        ctx = AlgoContext(clock=clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar())
        algo = TwapAlgo(parent, ctx)
        loop.call_later(5 * 60 + 1.5, host.suspend, 20 * NS)
        with _algo_logs() as logs:
            algo.start()
            await asyncio.sleep(31 * 60)
        await world.oms.stop()
        return algo.targets, sum(e["event"] == "algo_timer_late" for e in logs)

    targets, late = run_virtual(main)
    assert targets == [100 * (k + 1) for k in range(60)]  # the plan was never re-spread
    assert late == 0
