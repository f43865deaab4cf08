"""Cancels that stick (engine.cancels): a cancel the broker refuses, answers "not found" or never
confirms while the order still works is sent again on a bounded backoff and told to the operator after
the bound; cancel-all, halt and shutdown verify by query that every order is gone and list the ones that
are not. On the virtual clock: the fake broker and the simulated exchange behind a fault-injecting wire."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from tests.fakes import FakeBroker, World, make_world
from zhixing.algos.basket import Basket
from zhixing.engine.account import Account
from zhixing.engine.cancels import GoneCheck, GoneReport
from zhixing.engine.cli.ops_cmd import _wait_and_print, run_cancel_all_live, run_halt
from zhixing.engine.cli.session import open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.connection import CANCEL_NOT_SENT_REASON
from zhixing.engine.control import CHECKS_META_KEY, ControlChannel, EngineControl, install
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerDisconnected
from zhixing.engine.events import FillReport, OrderStatusReport, SubmitOrder
from zhixing.engine.inflight import CANCEL_UNCONFIRMED, InflightChecker
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.faults import CANCEL_NOT_FOUND_REASON, FaultPlan, FaultyAdapter
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session
from zhixing.replay.paper import RecordedFeed

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "replay" / "sample_data" / "snapshots_20211201"
SYMBOLS = ["600258.SH", "600446.SH"]
T0 = 1_700_000_000_000_000_000
SYM = "600000.SH"
S = OrderStatus


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE, symbols=SYMBOLS)


async def working(world: World) -> Order:
    order = world.oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=1000, price=10_000))
    await world.oms.flush()
    assert order.status is S.ACCEPTED
    return order


# ---------------------------------------------------------------------------------------- re-sends
async def test_a_cancel_answered_not_found_while_working_is_resent_on_a_bounded_backoff_then_escalated() -> (
    None
):
    world = await make_world(T0)
    alerts: list[tuple[str, str]] = []
    retry = world.oms.cancel_retry
    retry.on_alert = lambda title, body: alerts.append((title, body))
    order = await working(world)
    cid = order.client_order_id
    world.oms.cancel(cid)
    await world.oms.flush()
    sent_at = [world.clock.now_ns()]
    for _ in range(retry.max_failures + 1):
        world.broker.reject_cancel(cid, CANCEL_NOT_FOUND_REASON)  # the order works on at the exchange
        await world.oms.flush()
        assert order.status is S.ACCEPTED
        due = world.clock.next_timer_ns()
        if due is None:
            break
        await world.run_until(due)
        sent_at.append(world.broker.cancel_times[-1])
    # 1 cancel + max_failures re-sends, 1, 2, 4, 8, 16 s apart: bounded, then no more
    assert world.broker.cancel_requests == [cid] * (1 + retry.max_failures)
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == [retry.backoff_ns(n) for n in range(1, retry.max_failures + 1)]
    assert gaps[-1] == 16 * NS_PER_SECOND
    assert retry.escalated == [cid]
    assert len(alerts) == 1
    assert cid in alerts[0][1]
    assert CANCEL_NOT_FOUND_REASON in alerts[0][1]
    await world.run_until(world.clock.now_ns() + 600 * NS_PER_SECOND)
    assert len(world.broker.cancel_requests) == 1 + retry.max_failures  # told, and asked no more
    # a cancel someone sends later (the operator's halt) goes once, not on a new backoff, told no more
    world.oms.cancel(cid)
    await world.oms.flush()
    world.broker.reject_cancel(cid, CANCEL_NOT_FOUND_REASON)
    await world.oms.flush()
    await world.run_until(world.clock.now_ns() + 600 * NS_PER_SECOND)
    assert len(world.broker.cancel_requests) == 2 + retry.max_failures
    assert retry.escalated == [cid]
    assert len(alerts) == 1


async def test_a_cancel_never_confirmed_is_found_unconfirmed_by_query_and_sent_again() -> None:
    world = await make_world(T0)
    order = await working(world)
    cid = order.client_order_id

    class Working(FakeBroker):
        async def query_orders(self) -> list[OrderStatusReport]:
            return [
                OrderStatusReport(
                    client_order_id=cid,
                    broker_order_id=f"B{cid}",
                    symbol=SYM,
                    side=Side.BUY,
                    price=10_000,
                    quantity=1000,
                    filled_quantity=0,
                    status=S.ACCEPTED,
                )
            ]

    checker = InflightChecker(world.oms, Working(world.clock), timeout_ns=5 * NS_PER_SECOND)
    world.oms.cancel(cid)
    await world.oms.flush()
    for _ in range(checker.max_queries):  # no answer ever comes; the broker works the order on
        await world.run_until(world.clock.now_ns() + 5 * NS_PER_SECOND)
        await checker.check()
    assert checker.stats.cancels_unconfirmed == [cid]
    assert order.reason == CANCEL_UNCONFIRMED
    assert order.status is S.ACCEPTED
    assert world.broker.cancel_requests == [cid]
    await world.run_until(world.clock.now_ns() + world.oms.cancel_retry.backoff_ns(1))
    assert world.broker.cancel_requests == [cid, cid]  # sent again, after the first backoff
    assert order.status is S.PENDING_CANCEL
    world.broker.confirm_cancel(cid)
    await world.oms.flush()
    assert order.status is S.CANCELED
    assert world.oms.cancel_retry.escalated == []
    await world.run_until(world.clock.now_ns() + 60 * NS_PER_SECOND)
    assert world.broker.cancel_requests == [cid, cid]


async def test_a_not_found_answer_asks_the_broker_and_a_missed_fill_ends_the_re_sends() -> None:
    """ "Not found" because the order filled and the fill never reached us: the query after the grace
    finds the trade; the order is FILLED and its cancel is not sent again."""
    world = await make_world(T0)
    order = await working(world)
    cid = order.client_order_id

    class Filled(FakeBroker):
        async def query_orders(self) -> list[OrderStatusReport]:
            return [
                OrderStatusReport(
                    client_order_id=cid,
                    broker_order_id=f"B{cid}",
                    symbol=SYM,
                    side=Side.BUY,
                    price=10_000,
                    quantity=1000,
                    filled_quantity=1000,
                    status=S.FILLED,
                )
            ]

        async def query_trades(self) -> list[FillReport]:
            return [
                FillReport(
                    trade_id="T-lost",
                    client_order_id=cid,
                    broker_order_id=f"B{cid}",
                    symbol=SYM,
                    side=Side.BUY,
                    price=10_000,
                    quantity=1000,
                    commission=0,
                    stamp_duty=0,
                    transfer_fee=0,
                    ts_event=T0,
                )
            ]

    checker = InflightChecker(world.oms, Filled(world.clock))
    world.oms.cancel(cid)
    await world.oms.flush()
    world.broker.reject_cancel(cid, CANCEL_NOT_FOUND_REASON)
    await world.oms.flush()
    assert checker.next_due_ns() == world.clock.now_ns() + world.oms.freshness.grace_ns
    retry = world.oms.cancel_retry
    await world.run_until(world.clock.now_ns() + retry.backoff_ns(1))  # re-sent once meanwhile
    world.broker.reject_cancel(cid, CANCEL_NOT_FOUND_REASON)
    await world.oms.flush()
    await world.run_until(world.clock.now_ns() + world.oms.freshness.grace_ns)
    await checker.check()
    assert order.status is S.FILLED
    assert order.filled_quantity == 1000
    sends = len(world.broker.cancel_requests)
    await world.run_until(world.clock.now_ns() + 120 * NS_PER_SECOND)
    assert len(world.broker.cancel_requests) == sends
    assert retry.waiting == []
    assert retry.escalated == []


async def test_a_cancel_the_dead_link_never_sent_is_no_failure_of_the_broker() -> None:
    world = await make_world(T0)
    order = await working(world)
    world.oms.cancel(order.client_order_id)
    await world.oms.flush()
    world.broker.reject_cancel(order.client_order_id, CANCEL_NOT_SENT_REASON)  # as the monitor does
    await world.oms.flush()
    assert world.oms.cancel_retry.failures == {}
    assert world.oms.cancel_retry.waiting == []


# ---------------------------------------------------------------------------------------- verification
async def faulty_engine(
    market: MarketData, db: Path, plan: FaultPlan, alerts: list[tuple[str, str]]
) -> tuple[ReplaySession, Basket, EngineControl, ControlChannel]:
    day = market.trade_date
    start = shanghai_ns(day, "09:30")
    session = await open_session(
        market,
        ReplayConfig(cash=10**12, db_path=db),
        start,
        wrap=lambda exchange, clock: FaultyAdapter(exchange, plan, clock),
    )
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    for i, symbol in enumerate(market.symbols):
        basket.add(
            ParentOrder(
                parent_id=f"P{i}",
                symbol=symbol,
                side=Side.BUY,
                quantity=40_000,
                start_ns=start,
                end_ns=shanghai_ns(day, "10:15"),
                params={"price_policy": "passive", "interval_s": "60"},
            )
        )
    control, channel = await install(
        oms=session.oms,
        store=session.store,
        algos=basket.algos,
        on_alert=lambda title, body: alerts.append((title, body)),
    )
    basket.start()
    await session.store.commit()
    return session, basket, control, channel


async def drive(
    session: ReplaySession, channel: ControlChannel, control: EngineControl, until_ns: int
) -> None:
    """The engine's day: the clock stepped, the channel polled every 250 ms (as live), until ``until_ns``
    or the verifications are done."""
    while session.clock.now_ns() < until_ns:
        step_to = session.clock.now_ns() + 250_000_000
        await session.run(step_to, lambda: False, expire=False)
        session.clock.advance_to(max(step_to, session.clock.now_ns()))
        await channel.poll()
        if not control.checks and control.verified:
            return


def journaled_checks(db: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (CHECKS_META_KEY,)).fetchone()
    finally:
        conn.close()
    return list(json.loads(row[0])["checks"]) if row else []


async def test_cancel_all_verifies_by_query_and_lists_the_orders_still_working(
    market: MarketData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The broker loses every cancel (answered "not found" or not at all): cancel-all cancels the
    algorithms and the orders, keeps re-sending, and after the settle and the grace re-queries lists
    every order of ours the broker still works, to the operator, the journal and the command's output."""
    db = tmp_path / "j.db"
    alerts: list[tuple[str, str]] = []
    plan = FaultPlan(seed=3, cancel_not_found=1.0)
    session, basket, control, channel = await faulty_engine(market, db, plan, alerts)
    try:
        await session.run(shanghai_ns(market.trade_date, "09:40"), lambda: False, expire=False)
        working = {o.client_order_id for o in session.oms.working_orders()}
        assert working
        assert run_cancel_all_live(argparse.Namespace(db=db, wait=0)) == 0
        pressed = session.clock.now_ns()
        await drive(session, channel, control, pressed + 120 * NS_PER_SECOND)
        assert all(a.parent.status is ParentStatus.CANCELED for a in basket.algos.values())
        assert session.oms.halted_reason is None  # cancel-all does not halt
        (report,) = control.verified
        assert report.what == "cancel-all"
        assert not report.ok
        assert report.error == ""
        # every survivor is really working at the exchange, every other order of ours is really gone
        at_exchange = {r.client_order_id: r.status for r in await session.exchange.query_orders()}
        listed = {s.client_order_id for s in report.survivors}
        assert listed
        assert listed <= working
        assert listed == {
            cid for cid, status in at_exchange.items() if status in {S.ACCEPTED, S.PARTIALLY_FILLED}
        }
        assert all(s.broker in {"ACCEPTED", "PARTIALLY_FILLED"} for s in report.survivors)
        grace = session.oms.freshness.grace_ns
        # settled for up to 10 s, then asked `answers` times a grace apart: bounded
        assert report.finished_ns - pressed <= 10 * NS_PER_SECOND + 2 * grace + NS_PER_SECOND
        assert report.answers == session.oms.freshness.answers
        assert [t for t, _ in alerts if "cancel-all" in t] == ["cancel-all: orders still working"]
        (record,) = journaled_checks(db)
        assert record["command_id"] == 1
        assert record["ok"] is False
        assert len(record["survivors"]) == len(listed)  # type: ignore[arg-type]
        # meanwhile every lost cancel was sent again, bounded, the not-found ones up to the escalation
        assert session.oms.cancel_retry.resent > 0
        capsys.readouterr()
        assert run_cancel_all_live(argparse.Namespace(db=db, wait=0)) == 0  # a second, not applied
        out = capsys.readouterr().out
        assert "queued cancel-all as command #2" in out
    finally:
        await session.store.close()


async def test_halt_verifies_by_query_that_every_order_is_gone_and_the_cli_prints_it(
    market: MarketData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "j.db"
    alerts: list[tuple[str, str]] = []
    session, _basket, control, channel = await faulty_engine(market, db, FaultPlan(seed=1), alerts)
    try:
        await session.run(shanghai_ns(market.trade_date, "09:40"), lambda: False, expire=False)
        assert session.oms.working_orders()
        assert run_halt(argparse.Namespace(db=db, reason="test", wait=0)) == 0
        pressed = session.clock.now_ns()
        await drive(session, channel, control, pressed + 120 * NS_PER_SECOND)
        (report,) = control.verified
        assert report.ok, report.summary()
        assert report.answers == 1
        assert report.checked > 0
        assert session.oms.working_orders() == []
        assert alerts == []  # all gone: nothing to tell
        (record,) = journaled_checks(db)
        assert record["ok"] is True
        assert record["what"] == "halt"
    finally:
        await session.store.close()
    # the operator's command, waiting for the result, prints what the engine found
    capsys.readouterr()
    args = argparse.Namespace(db=db, reason="again", wait=0.01)
    assert run_halt(args) == 2  # no engine runs: nothing applied
    assert "not applied within" in capsys.readouterr().out
    conn = sqlite3.connect(db)
    try:
        conn.execute("UPDATE control_commands SET done = 1, result = 'halted: x' WHERE id = 2")
        survivor = dict(record, command_id=2, ok=False, headline="halt: 1 order(s) still working")
        survivor["survivors"] = ["Z000000007 600258.SH BUY 0/100 (local ACCEPTED, broker ACCEPTED)"]
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = ?", (json.dumps({"checks": [survivor]}), CHECKS_META_KEY)
        )
        conn.commit()
    finally:
        conn.close()
    assert _wait_and_print(argparse.Namespace(db=db, wait=5), 2) == 1
    out = capsys.readouterr().out
    assert "applied: halted: x" in out
    assert "halt: 1 order(s) still working" in out
    assert "still working: Z000000007 600258.SH BUY 0/100" in out


async def test_shutdown_verifies_by_query_and_lists_the_orders_still_working(
    market: MarketData, tmp_path: Path
) -> None:
    """A live session closing with ``cancel``: one order's cancel is never answered and the broker works
    it on; the close sends it again, asks, and returns it as a survivor (the others are gone)."""
    day = market.trade_date
    clock = SimClock(shanghai_ns(day, "09:40"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**12)
    swallowed: set[str] = set()
    original_cancel = exchange.cancel

    async def cancel(order: Order) -> None:  # the broker loses this one's cancels
        if order.client_order_id in swallowed:
            return
        await original_cancel(order)

    exchange.cancel = cancel  # type: ignore[method-assign]
    session = await open_live_session(
        clock=clock,
        adapter=exchange,
        feed=RecordedFeed(market, exchange, clock),
        store_path=tmp_path / "live.db",
        account=Account(10**12),
        trading_day_start_ns=shanghai_ns(day, "00:00"),
        synchronous="NORMAL",
    )
    await session.feed.subscribe([SYMBOLS[0]])
    while clock.step(until_ns=clock.now_ns() + NS_PER_SECOND):
        await session.oms.flush()
    quote = exchange.latest(SYMBOLS[0])
    assert quote is not None
    orders = [
        session.oms.submit(
            SubmitOrder(symbol=SYMBOLS[0], side=Side.BUY, quantity=100, price=quote.bid_price - 50 - 10 * i)
        )
        for i in range(3)  # three prices: the risk gate's duplicate rule lets them through
    ]
    await session.oms.flush()
    while clock.step(until_ns=clock.now_ns() + NS_PER_SECOND):
        await session.oms.flush()
    assert [o.status for o in orders] == [S.ACCEPTED] * 3, [o.reason for o in orders]
    swallowed.add(orders[0].client_order_id)
    closed_at = clock.now_ns()
    report = await session.close(cancel_working=True)
    assert isinstance(report, GoneReport)
    assert report.what == "shutdown"
    assert [s.client_order_id for s in report.survivors] == [orders[0].client_order_id]
    assert report.survivors[0].broker == "ACCEPTED"
    assert orders[1].status is S.CANCELED
    assert orders[2].status is S.CANCELED
    assert clock.now_ns() - closed_at <= 30 * NS_PER_SECOND  # bounded
    assert "1 order(s) still working" in report.headline()
    assert dataclasses.asdict(report)["survivors"][0]["symbol"] == SYMBOLS[0]


async def test_a_verification_the_broker_does_not_answer_says_so_and_lists_what_works_here() -> None:
    world = await make_world(T0)
    order = await working(world)

    class Silent(FakeBroker):
        async def query_orders(self) -> list[OrderStatusReport]:
            raise BrokerDisconnected("link down")

    check = GoneCheck(
        "halt",
        lambda: world.oms.orders,
        Silent(world.clock),
        world.clock,
        grace_ns=NS_PER_SECOND,
        answers=3,
        settle_ns=NS_PER_SECOND,
    )
    world.oms.cancel(order.client_order_id)  # never confirmed
    await world.oms.flush()
    report = None
    while report is None:
        due = check.next_due_ns()
        assert due is not None
        world.clock.advance_to(max(due, world.clock.now_ns()))
        report = await check.poll()
    assert not report.ok
    assert report.error.startswith("BrokerDisconnected")
    assert [s.client_order_id for s in report.survivors] == [order.client_order_id]
    assert "NOT verified" in report.headline()
    assert world.clock.now_ns() - T0 == 3 * NS_PER_SECOND  # settled 1 s, then 3 tries 1 s apart: bounded
