"""Every shortfall has a reason (issue 20 item 3): each algorithm x each way a parent ends short.

A parent that ends (or stands paused) with less than its quantity always states why, typed: what stood in
its way (a sealed limit, a denial by cash / T+1 / the halt, a broker reject for a suspension), or else how
it ended (its window, the operator's cancel, a halt's pause). ``Basket.short_without_reason`` is empty in
every case; the text reads back from the journal to the same reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

import pytest

from tests.fakes import FakeBroker, FakeQuotes, FakeStore, World, calendar, oms_with
from zhixing.algos.base import AlgoContext, ExecAlgo
from zhixing.algos.basket import Basket
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.events import OrderRejected
from zhixing.engine.market import shanghai_ns
from zhixing.engine.oms import PreTradeCheck
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.reasons import Denial, DenialCode, Unfilled, UnfilledCode
from zhixing.engine.store import StateStore
from zhixing.engine.units import NS_PER_SECOND

DAY = date(2021, 12, 1)
SYM = "600000.SH"
BID, ASK = 9_990, 10_000
SUSPENDED = "symbol_suspended: 交易代码停牌"
ALGOS = ("twap", "vwap", "pov", "iceberg", "chase")
PARAMS: dict[str, dict[str, str]] = {
    "twap": {"final_sweep_s": "0"},
    "vwap": {"final_sweep_s": "0", "profile": "u_shape"},
    "pov": {},
    "iceberg": {"display_qty": "500"},
    "chase": {},
}


def at(hhmm: str) -> int:
    return shanghai_ns(DAY, hhmm)


class ScriptedBroker(FakeBroker):
    """Fills a part of every child at once (``fill``), or rejects it (``reject`` names a reason)."""

    def __init__(self, clock: SimClock, fill: Callable[[Order], int], reject: str | None) -> None:
        super().__init__(clock, auto_cancel=True, fill_on_submit=fill)
        self.reject = reject

    async def submit(self, order: Order) -> None:
        if self.reject is None:
            await super().submit(order)
            return
        self.submitted.append(order)
        self.orders[order.client_order_id] = order
        now = self.clock.now_ns()
        self._emit(
            OrderRejected(
                ts_event=now,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=SYM,
                reason=self.reject,
            )
        )


@dataclass
class Ending:
    """One way to end short: the rig, what happens mid-window, the reason expected."""

    name: str
    code: UnfilledCode
    side: Side = Side.BUY
    denial: DenialCode | None = None
    sealed: bool = False  # the quote sealed at the limit (limit-up for a buy)
    reject: str | None = None
    checks: Sequence[PreTradeCheck] = ()
    act: Callable[[World, ExecAlgo], None] | None = None  # at 10:02
    # an algorithm that meets it otherwise: iceberg and chase keep their one child working through a
    # halt that pauses nothing, so they send nothing to be denied and their window ends with it working
    otherwise: frozenset[str] = frozenset()
    otherwise_code: UnfilledCode = UnfilledCode.WINDOW_ENDED


def _half(order: Order) -> int:
    return (order.quantity // 200) * 100  # a part of each child, never all of it


def _cancel(world: World, algo: ExecAlgo) -> None:
    algo.cancel()


def _halt(world: World, algo: ExecAlgo) -> None:
    # what ``engine.control.KillSwitch.on_halt`` does: the OMS halts, every running algorithm pauses
    world.oms.halt("operator: test")
    algo.pause(Unfilled(UnfilledCode.HALTED, "operator: test"))


def _halt_without_pause(world: World, algo: ExecAlgo) -> None:
    world.oms.halt("operator: test")  # the algorithm's children are denied


ENDINGS = [
    Ending("window_end_partial", UnfilledCode.WINDOW_ENDED),
    Ending("operator_cancel", UnfilledCode.CANCELED, act=_cancel),
    Ending("halt", UnfilledCode.HALTED, act=_halt),
    Ending(
        "halt_denials",
        UnfilledCode.DENIED,
        denial=DenialCode.HALTED,
        act=_halt_without_pause,
        otherwise=frozenset({"iceberg", "chase"}),
    ),
    Ending("limit_up", UnfilledCode.LIMIT_UP, sealed=True),
    Ending("limit_down", UnfilledCode.LIMIT_DOWN, side=Side.SELL, sealed=True),
    Ending("suspension", UnfilledCode.REJECTED, reject=SUSPENDED),
    Ending(
        "cash_shortfall",
        UnfilledCode.DENIED,
        denial=DenialCode.INSUFFICIENT_CASH,
        checks=[lambda o: Denial(DenialCode.INSUFFICIENT_CASH, "short of cash")],
    ),
    Ending(
        "t_plus_1",
        UnfilledCode.DENIED,
        side=Side.SELL,
        denial=DenialCode.INSUFFICIENT_SELLABLE,
        checks=[lambda o: Denial(DenialCode.INSUFFICIENT_SELLABLE, "bought today")],
    ),
]


def trading(clock: SimClock, quotes: FakeQuotes) -> None:
    """The market trades 100,000 shares every 5 s from 10:00 (POV sizes from the volume)."""

    def tick(volume: int) -> None:
        quote = quotes.quotes[SYM]
        quotes.quotes[SYM] = dataclasses.replace(quote, cum_volume=volume, ts_event=clock.now_ns())

    for step in range(1, 12 * 10):
        when = at("10:00") + step * 5 * NS_PER_SECOND
        clock.call_at(when, lambda v=step * 100_000: tick(v), "volume")


async def rig(ending: Ending) -> World:
    clock = SimClock(at("09:59:59"))
    bus = EventBus()
    broker = ScriptedBroker(clock, _half, ending.reject)
    store = FakeStore()
    quotes = FakeQuotes(clock)
    if not ending.sealed:
        quotes.set(SYM, bid=BID, ask=ASK)
    elif ending.side is Side.BUY:
        quotes.set(SYM, bid=11_000, ask=0)  # sealed limit-up: no one sells
    else:
        quotes.set(SYM, bid=0, ask=9_000)  # sealed limit-down: no one buys
    trading(clock, quotes)
    oms, gate = oms_with(clock, bus, broker, cast(StateStore, store), quotes, checks=ending.checks)
    await oms.open()
    return World(clock, bus, broker, store, oms, quotes, gate)


def _parent(algo: str, side: Side) -> ParentOrder:
    return ParentOrder(
        parent_id="P1",
        symbol=SYM,
        side=side,
        quantity=40_000,
        start_ns=at("10:00"),
        end_ns=at("10:05"),
        algo=algo,
        params=dict(PARAMS[algo]),
    )


@pytest.mark.parametrize("ending", ENDINGS, ids=lambda e: e.name)
@pytest.mark.parametrize("name", ALGOS)
async def test_a_parent_that_ends_short_always_says_why(name: str, ending: Ending) -> None:
    world = await rig(ending)
    basket = Basket(
        AlgoContext(clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar())
    )
    algo = basket.add(_parent(name, ending.side))
    basket.start()
    act = ending.act
    if act is not None:
        world.clock.call_at(at("10:02"), lambda: act(world, algo), "act")
    await world.run_until(at("10:10"))
    assert algo.filled_quantity < algo.parent.quantity
    assert algo.done or algo.paused
    unfilled = algo.unfilled
    assert unfilled is not None, "short with no reason"
    if name in ending.otherwise:
        assert unfilled.code is ending.otherwise_code, algo.unfilled_reason
    else:
        assert unfilled.code is ending.code, algo.unfilled_reason
        assert unfilled.denial is ending.denial
    assert basket.short_without_reason() == []
    assert Unfilled.from_journal(str(algo.progress_state()["reason"])) in (unfilled, None)


async def test_twap_children_partly_filled_at_the_window_end_report_window_ended_with_the_working() -> None:
    """The issue's case: a TWAP of 400,000 whose children were partly filled when its window ended
    reported 360,732 filled with an empty reason. Now: ``window_ended`` naming what was working then."""
    ending = Ending("window_end_partial", UnfilledCode.WINDOW_ENDED)
    world = await rig(ending)
    sent: list[str] = []

    def fill(order: Order) -> int:  # ten slices of 40,000: the first nine fill, the last only 732
        sent.append(order.client_order_id)
        return order.quantity if len(sent) < 10 else 732

    world.broker.fill_on_submit = fill
    parent = ParentOrder(
        parent_id="T1",
        symbol=SYM,
        side=Side.BUY,
        quantity=400_000,
        start_ns=at("10:00"),
        end_ns=at("10:10"),
        algo="twap",
        params={"final_sweep_s": "0", "interval_s": "60"},
    )
    basket = Basket(
        AlgoContext(clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar())
    )
    algo = basket.add(parent)
    basket.start()
    await world.run_until(at("10:11"))
    assert algo.done
    assert len(sent) == 10
    assert algo.filled_quantity == 360_732
    assert algo.unfilled == Unfilled(
        UnfilledCode.WINDOW_ENDED, "39268 of 400000 working, 360732 filled at the end"
    )
    assert algo.unfilled_reason.startswith("window_ended:")
    assert Unfilled.from_journal(str(algo.progress_state()["reason"])) == algo.unfilled
    assert basket.stats()["by_parent"]["T1"]["unfilled_reason"] == algo.unfilled_reason  # type: ignore[index]
