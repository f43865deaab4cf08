"""The start of a trading day (``engine.trading_day``) on a real journal and the simulated exchange kept
across days (``replay.sim_days``): T+1 in an engine left running overnight, no order of a day before
its start, yesterday's orders ended by the reconciliation rules, the day's counters reset, a holiday
between two days, identifiers that never cross days, and the calendar's known range ending."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.calendar_fixtures import unupdated_exchange_calendar
from tests.replay.test_replay_exchange import CALENDAR, DAY, SYM, tiny_day
from zhixing.algos.base import AlgoContext
from zhixing.algos.basket import Basket
from zhixing.assembly import EngineSettings, build_engine
from zhixing.engine.account import Account
from zhixing.engine.cli.runner import DayRunner
from zhixing.engine.cli.session import open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.market import TradingCalendar, shanghai_ns, trading_date_of
from zhixing.engine.oms import OmsCounters, OrderManager
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import DenialCode, Unfilled, UnfilledCode
from zhixing.engine.risk_controls import RiskControls, RiskLimits
from zhixing.engine.store import StateStore
from zhixing.engine.trading_day import DayStart, TradingDay, day_key
from zhixing.replay.data import MarketData
from zhixing.replay.exchange import SimExchange
from zhixing.replay.sim_days import SimDays

CASH = 10**10
THURSDAY = dt.date(2022, 6, 2)
MONDAY = dt.date(2022, 6, 6)  # Friday 2022-06-03 is the Dragon Boat holiday


def at(day: dt.date, hhmmss: str) -> int:
    return shanghai_ns(day, hhmmss)


@dataclass
class Engine:
    clock: SimClock
    exchange: SimExchange
    store: StateStore
    account: Account
    oms: OrderManager
    day: TradingDay
    risk: RiskControls | None = None

    async def run_until(self, when: int) -> None:
        """The engine's loop on a virtual clock: every timer due by ``when``, the OMS flushed and a day's
        start let finish after each step."""
        while self.clock.step(until_ns=when):
            await self.day.idle()
            await self.oms.flush()
        self.clock.advance_to(max(when, self.clock.now_ns()))
        await self.oms.flush()

    async def order(self, side: Side, quantity: int, price: int) -> Any:
        """Submit a child and send it (the OMS flushes)."""
        order = self.oms.submit(
            SubmitOrder(symbol=SYM, side=side, quantity=quantity, price=price, parent_id="x")
        )
        await self.oms.flush()
        return order


async def start_engine(
    tmp_path: Path,
    exchange: SimExchange,
    clock: SimClock,
    *,
    calendar: TradingCalendar = CALENDAR,
    risk: bool = False,
    held: int = 0,
) -> Engine:
    store = await StateStore.open(tmp_path / "journal.db")
    account = Account(CASH)
    if held:
        account.load_position(SYM, held)
    limits = RiskLimits(max_order_quantity=10_000) if risk else RiskLimits()
    engine = build_engine(
        EngineSettings(risk=limits),
        clock=clock,
        calendar=calendar,
        store=store,
        adapter=exchange,
        quotes=exchange,
        account=account,
    )
    oms = engine.oms
    await oms.open()
    controls = engine.risk if risk else None
    day = TradingDay(
        clock=clock,
        calendar=calendar,
        oms=oms,
        adapter=exchange,
        store=store,
        account=account,
        gate=engine.day,
        risk=engine.risk,
    )
    await day.start(trading_date_of(clock.now_ns()))
    return Engine(clock, exchange, store, account, oms, day, controls)


def week(clock: SimClock, *, held: int = 0, opens_at: str = "00:00") -> SimDays:
    market = MarketData(days={SYM: tiny_day()}, trade_date=DAY)
    return SimDays(
        market, CALENDAR, clock, cash=CASH, positions={SYM: held} if held else {}, opens_at=opens_at
    )


async def test_an_engine_left_running_overnight_sells_on_day_two_what_it_bought_on_day_one(
    tmp_path: Path,
) -> None:
    clock = SimClock(at(DAY, "09:00"))
    days = week(clock)
    engine = await start_engine(tmp_path, days.exchange, clock)
    engine.day.watch()
    await engine.run_until(at(DAY, "09:30:01"))
    bought = await engine.order(Side.BUY, 500, 10020)
    await engine.run_until(at(DAY, "09:30:02"))
    assert bought.filled_quantity == 500
    assert engine.account.positions[SYM].sellable == 0  # T+1
    assert (await engine.order(Side.SELL, 500, 9990)).status is OrderStatus.DENIED  # not today

    await engine.run_until(at(THURSDAY, "09:30:01"))
    assert engine.day.day == THURSDAY  # started by the engine's own midnight timer
    assert engine.account.positions[SYM].sellable == 500
    sold = await engine.order(Side.SELL, 500, 9990)
    await engine.run_until(at(THURSDAY, "09:30:02"))
    assert sold.status is OrderStatus.FILLED, sold.reason
    assert [p.quantity for p in await days.exchange.query_positions()] == [0]
    # journaled: the day and the rolled positions
    assert '"day": "2022-06-02"' in str(await engine.store.get_meta("trading_day"))
    await engine.store.close()


async def test_no_order_of_a_new_day_goes_out_before_the_day_has_started(tmp_path: Path) -> None:
    """The machine slept through midnight (the start timer has not fired): the day's first order is
    denied until the day has started, then goes out."""
    clock = SimClock(at(DAY, "09:00"))
    days = week(clock, held=1000)
    engine = await start_engine(tmp_path, days.exchange, clock, held=1000)
    await engine.run_until(at(THURSDAY, "09:30:01"))  # no watch: nobody started Thursday
    early = await engine.order(Side.SELL, 100, 9990)
    assert early.status is OrderStatus.DENIED
    assert early.reason.startswith(DenialCode.DAY_NOT_STARTED)
    await engine.day.ensure(THURSDAY)
    late = await engine.order(Side.SELL, 100, 9990)
    assert late.status is not OrderStatus.DENIED, late.reason
    await engine.store.close()


async def test_a_holiday_between_two_days_starts_the_next_trading_day_only(tmp_path: Path) -> None:
    clock = SimClock(at(THURSDAY, "09:00"))
    days = week(clock)
    engine = await start_engine(tmp_path, days.exchange, clock)
    engine.day.watch()
    await engine.run_until(at(THURSDAY, "09:30:01"))
    await engine.order(Side.BUY, 500, 10020)
    await engine.run_until(at(MONDAY, "09:30:01"))
    assert [s.day for s in engine.day.starts] == [THURSDAY, MONDAY]  # no start on the holiday or weekend
    assert days.opened == [THURSDAY, MONDAY]
    assert engine.account.positions[SYM].sellable == 500
    assert engine.day.starts[-1].previous == THURSDAY
    await engine.store.close()


async def test_yesterdays_order_a_broker_still_lists_as_working_ends_with_its_day(tmp_path: Path) -> None:
    """A broker that has not rolled its books still lists yesterday's order as working at midnight: the
    day order is expired at the start of the next day and its frozen cash given back."""
    clock = SimClock(at(DAY, "09:00"))
    exchange = SimExchange(
        MarketData(days={SYM: tiny_day()}, trade_date=DAY), clock, calendar=CALENDAR, cash=CASH
    )
    engine = await start_engine(tmp_path, exchange, clock)
    await engine.run_until(at(DAY, "09:30:01"))
    resting = await engine.order(Side.BUY, 500, 9000)  # far below the market: rests all day
    await engine.run_until(at(DAY, "15:30"))
    assert resting.status is OrderStatus.ACCEPTED
    assert engine.account.frozen > 0
    (listed,) = await exchange.query_orders()
    assert listed.status is OrderStatus.ACCEPTED  # the broker never ended it

    started = await engine.day.start(THURSDAY)
    assert resting.status is OrderStatus.EXPIRED
    assert started.expired == (resting.client_order_id,)
    assert engine.account.frozen == 0
    await engine.store.close()


async def test_a_parent_of_an_earlier_day_is_finished_at_the_start_and_a_days_parent_kept(
    tmp_path: Path,
) -> None:
    """A job at 23:59 whose window runs past midnight: its parent belongs to its day and ends with it."""
    clock = SimClock(at(DAY, "23:59"))
    days = week(clock)
    engine = await start_engine(tmp_path, days.exchange, clock)

    @dataclass
    class Algo:
        parent: ParentOrder
        done: bool = False
        stops: list[str] = field(default_factory=list)
        why: list[Unfilled | None] = field(default_factory=list)

        def stop(self, why: Unfilled | None = None) -> None:
            self.done = True
            self.stops.append(self.parent.parent_id)
            self.why.append(why)

    def parent(created: int, pid: str) -> ParentOrder:
        return ParentOrder(
            parent_id=pid,
            symbol=SYM,
            side=Side.BUY,
            quantity=100,
            start_ns=created,
            end_ns=created + 30 * 60 * 10**9,
            created_ns=created,
        )

    late = Algo(parent(at(DAY, "23:59"), f"{day_key(DAY)}-late-1-0001"))
    engine.day.algos = {late.parent.parent_id: late}
    await engine.run_until(at(THURSDAY, "00:00:01"))
    fresh = Algo(parent(at(THURSDAY, "00:00:01"), f"{day_key(THURSDAY)}-late-1-0001"))
    engine.day.algos = {late.parent.parent_id: late, fresh.parent.parent_id: fresh}
    started = await engine.day.start(THURSDAY)
    assert started.stopped == (late.parent.parent_id,)
    assert late.stops == [late.parent.parent_id]
    assert [w.code if w else None for w in late.why] == [UnfilledCode.WINDOW_ENDED]  # never an empty reason
    assert not fresh.stops
    await engine.store.close()


async def test_the_days_counters_start_from_zero(tmp_path: Path) -> None:
    clock = SimClock(at(DAY, "09:00"))
    days = week(clock)
    engine = await start_engine(tmp_path, days.exchange, clock, risk=True)
    engine.day.watch()
    await engine.run_until(at(DAY, "09:30:01"))
    await engine.order(Side.BUY, 500, 10020)
    assert (await engine.order(Side.BUY, 20_000, 10020)).status is OrderStatus.DENIED  # max_order_quantity
    await engine.run_until(at(DAY, "09:30:02"))
    assert engine.risk is not None
    before = engine.risk.report()
    assert (before["orders_sent"], before["messages_today"]) == (1, 1)
    assert before["denials"] == {"max_order_quantity": 1}
    heard: list[DayStart] = []
    engine.day.on_new_day.append(heard.append)
    await engine.run_until(at(THURSDAY, "09:00"))
    after = engine.risk.report()
    assert (after["orders_sent"], after["messages_today"], after["denials"]) == (0, 0, {})
    assert [s.day for s in heard] == [THURSDAY]
    await engine.store.close()


def test_the_job_runner_starts_a_new_day_afresh() -> None:
    session = SimpleNamespace(oms=SimpleNamespace(counters=OmsCounters(denied=7)))
    runner = DayRunner(config=cast(Any, None), session=cast(Any, session), notify=lambda m: None)
    runner.outcomes.append(cast(Any, object()))
    runner.missed.append(("signal", 1))
    runner.arrival["p"] = 1
    runner.rebalances.append(cast(Any, object()))
    runner.on_new_day(cast(DayStart, None))
    assert (runner.outcomes, runner.missed, runner.arrival, runner.rebalances) == ([], [], {}, [])
    assert runner.denied_before_today == 7  # the summary counts today's denials only


@pytest.mark.parametrize(("beyond", "started"), [("refuse", False), ("weekdays", True)])
async def test_a_running_engine_past_the_calendars_known_range(
    tmp_path: Path, beyond: str, started: bool
) -> None:
    """Known until 2026-12-31: refused, the next weekday is closed (no start, no crash, nothing sent);
    with ``beyond_known = "weekdays"`` it starts."""
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()], beyond_known=beyond)  # type: ignore[arg-type]
    last = dt.date(2026, 12, 31)
    clock = SimClock(at(last, "09:00"))
    exchange = SimExchange(
        MarketData(days={SYM: tiny_day()}, trade_date=DAY), clock, calendar=calendar, cash=CASH
    )
    engine = await start_engine(tmp_path, exchange, clock, calendar=calendar)
    engine.day.watch()
    await engine.run_until(at(dt.date(2027, 1, 4), "09:30"))
    assert engine.day.failures == 0
    assert (engine.day.day == dt.date(2027, 1, 4)) is started
    order = await engine.order(Side.BUY, 100, 10000)
    assert not order.reason.startswith(DenialCode.DAY_NOT_STARTED)
    if not started:  # refused: the calendar answers closed, nothing is sent
        assert order.status is OrderStatus.DENIED
        assert order.reason.startswith("market_closed")
    await engine.store.close()


async def test_a_new_parent_id_that_already_has_orders_is_refused(tmp_path: Path) -> None:
    clock = SimClock(at(DAY, "09:00"))
    days = week(clock)
    engine = await start_engine(tmp_path, days.exchange, clock)
    await engine.run_until(at(DAY, "09:30:01"))
    engine.oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=100, price=10020, parent_id="P1"))
    ctx = AlgoContext(
        clock=clock, oms=engine.oms, bus=engine.oms.bus, quotes=days.exchange, calendar=CALENDAR
    )
    basket = Basket(ctx)
    again = ParentOrder(
        parent_id="P1",
        symbol=SYM,
        side=Side.SELL,
        quantity=100,
        start_ns=clock.now_ns(),
        end_ns=at(DAY, "10:00"),
    )
    with pytest.raises(ValueError, match="already has orders"):
        basket.add(again)
    await engine.store.close()


async def test_rebalance_ids_carry_the_day_and_number_on_past_the_journal(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "journal.db")
    for pid in (
        "20211201-rebalance-1-0001",
        "20211202-rebalance-1-0001",
        "20211202-rebalance-1-0002",
        "20211202-rebalance-2-0001",
        "20211202-other-7-0001",
        "rebalance-9-0001",  # an id of an older version: no day, never in the way
    ):
        store.stage_parent(
            ParentOrder(parent_id=pid, symbol=SYM, side=Side.BUY, quantity=100, start_ns=0, end_ns=1).to_row()
        )
    await store.commit()
    session = SimpleNamespace(store=store, algos={"20211202-rebalance-3-0001": None})
    runner = DayRunner(config=cast(Any, None), session=cast(Any, session), notify=lambda m: None)
    d2 = shanghai_ns(dt.date(2021, 12, 2), "13:30")
    assert await runner.rebalance_prefix("rebalance", d2) == "20211202-rebalance-4-"  # a restart numbers on
    assert await runner.rebalance_prefix("other", d2) == "20211202-other-8-"
    d3 = shanghai_ns(dt.date(2021, 12, 3), "09:30")
    assert await runner.rebalance_prefix("rebalance", d3) == "20211203-rebalance-1-"
    await store.close()


async def test_a_restart_after_midnight_resumes_todays_parents_only(tmp_path: Path) -> None:
    """A parent created at 23:59 whose window runs to 00:29 is of its day: a restart at 00:10 the next
    day does not resume it; a parent created that day is resumed."""
    path = tmp_path / "journal.db"
    store = await StateStore.open(path)
    yesterday = ParentOrder(
        parent_id=f"{day_key(DAY)}-late-1-0001",
        symbol=SYM,
        side=Side.BUY,
        quantity=100,
        start_ns=at(DAY, "23:59"),
        end_ns=at(THURSDAY, "00:29"),
        created_ns=at(DAY, "23:59"),
        status=ParentStatus.RUNNING,
    )
    today = ParentOrder(
        parent_id=f"{day_key(THURSDAY)}-early-1-0001",
        symbol=SYM,
        side=Side.BUY,
        quantity=100,
        start_ns=at(THURSDAY, "09:30"),
        end_ns=at(THURSDAY, "10:00"),
        created_ns=at(THURSDAY, "00:05"),
        status=ParentStatus.RUNNING,
    )
    for parent in (yesterday, today):
        store.stage_parent(parent.to_row())
    await store.commit()
    await store.close()
    clock = SimClock(at(THURSDAY, "00:10"))
    days = week(clock)
    exchange, feed = days.attach(clock)
    session = await open_live_session(
        clock=clock,
        adapter=exchange,
        feed=feed,
        store_path=path,
        account=Account(CASH),
        calendar=CALENDAR,
        trading_day_start_ns=at(THURSDAY, "00:00"),
    )
    try:
        assert set(session.basket.algos) == {today.parent_id}
    finally:
        await session.close()


async def test_two_starts_of_a_day_at_once_start_it_once_and_the_day_never_goes_back(tmp_path: Path) -> None:
    """The midnight timer and a job due at 00:00 ask together; a late timer of yesterday asks after."""
    clock = SimClock(at(DAY, "23:00"))
    days = week(clock)
    engine = await start_engine(tmp_path, days.exchange, clock)
    heard: list[DayStart] = []
    engine.day.on_new_day.append(heard.append)
    await engine.run_until(at(THURSDAY, "00:00"))
    first, second = await asyncio.gather(engine.day.start(THURSDAY), engine.day.ensure(THURSDAY))
    assert first is second
    assert [s.day for s in heard] == [THURSDAY]
    again = await engine.day.start(DAY)  # yesterday's late timer
    assert again is first
    assert engine.day.day == THURSDAY
    assert [s.day for s in engine.day.starts] == [DAY, THURSDAY]
    await engine.store.close()


def test_t_plus_1_keeps_what_a_working_sell_holds() -> None:
    account = Account(CASH)
    account.day = DAY
    account.load_position(SYM, 1000)
    sell = SimpleNamespace(client_order_id="Z1", symbol=SYM, side=Side.SELL, price=10000, quantity=300)
    account.reserve(cast(Any, sell))
    fill = SimpleNamespace(  # no trade time said: counted today
        symbol=SYM, side=Side.BUY, price=10000, quantity=500, fees=0, client_order_id="Z2", ts_event=0
    )
    buy = SimpleNamespace(client_order_id="Z2", symbol=SYM, side=Side.BUY, price=10000, quantity=500)
    account.on_fill(cast(Any, buy), cast(Any, fill))
    assert account.positions[SYM].sellable == 700  # bought today: not sellable; 300 held by the sell
    account.start_day(DAY)  # a restart on the same day changes nothing
    assert account.positions[SYM].sellable == 700
    account.start_day(THURSDAY)
    assert account.positions[SYM].sellable == 1200  # 1500 held, 300 still held by the working sell
    account.release(cast(Any, sell))
    assert account.positions[SYM].sellable == 1500
