"""A live session killed mid-TWAP and started again from its journal against a broker that kept running:
startup reconciliation first, then the algorithm resumes where it was, sized from confirmed fills. No
order is sent twice, none is lost, nothing is overfilled, and the parent still completes."""

from __future__ import annotations

from pathlib import Path

from zhixing.engine.account import Account
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.recovery import ProcessClock, run_exchange_alone

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
CASH = 10**10


async def open_on(
    clock: SimClock, exchange: SimExchange, market: MarketData, db: Path
) -> tuple[LiveSession, ProcessClock]:
    process = ProcessClock(clock)
    session = await open_live_session(
        clock=process,
        adapter=exchange,
        feed=RecordedFeed(market, exchange, process),
        store_path=db,
        account=Account(CASH),
        trading_day_start_ns=shanghai_ns(market.trade_date, "00:00"),
        synchronous="NORMAL",
    )
    return session, process


async def step(clock: SimClock, session: LiveSession, until_ns: int) -> None:
    while clock.step(until_ns=until_ns):
        await session.oms.flush()
        await session.inflight.check()


async def test_a_killed_live_session_resumes_its_twap_from_the_journal(tmp_path: Path) -> None:
    market = load_snapshots(SAMPLE, symbols=["600258.SH"])
    day = market.trade_date
    clock = SimClock(shanghai_ns(day, "09:59"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=CASH)
    sent: list[str] = []
    original_submit = exchange.submit

    async def counting_submit(order: Order) -> None:
        sent.append(order.client_order_id)
        await original_submit(order)

    exchange.submit = counting_submit  # type: ignore[method-assign]
    db = tmp_path / "live.db"
    session, process = await open_on(clock, exchange, market, db)
    parent = ParentOrder(
        parent_id="P1",
        symbol="600258.SH",
        side=Side.BUY,
        quantity=30_000,
        start_ns=shanghai_ns(day, "10:00"),
        end_ns=shanghai_ns(day, "10:30"),
    )
    await session.start_parents([parent])
    await step(clock, session, shanghai_ns(day, "10:12"))
    before = sum(o.filled_quantity for o in session.oms.children_of("P1"))
    assert 0 < before < 30_000
    # kill -9: timers die, pushes go nowhere, nothing staged survives; the exchange keeps running
    process.kill()
    exchange.bind(lambda event: None)
    if session.oms._flusher is not None:
        session.oms._flusher.cancel()
    await session.store.close()
    run_exchange_alone(clock, shanghai_ns(day, "10:14"))

    session2, _ = await open_on(clock, exchange, market, db)
    assert session2.reconcile.ok, session2.reconcile.mismatches
    assert "P1" in session2.basket.algos  # resumed from the journal, not re-created
    await step(clock, session2, shanghai_ns(day, "10:35"))
    children = session2.oms.children_of("P1")
    assert len(sent) == len(set(sent))  # no client order id reached the broker twice
    assert {o.client_order_id for o in children} == set(sent)  # every order the broker saw is in the books
    filled = sum(o.filled_quantity for o in children)
    assert filled == 30_000  # completed, not overfilled
    broker = {r.client_order_id: r.filled_quantity for r in await exchange.query_orders()}
    assert {o.client_order_id: o.filled_quantity for o in children} == broker
    await session2.close(cancel_working=False)
