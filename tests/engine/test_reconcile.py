"""Startup reconciliation across a crash (RELIABILITY A1-A4, A7, A8): a real journal on disk, the
SimExchange as the broker that survives while the engine restarts with a new OrderManager + Account."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import passing_time
from tests.replay.test_replay_exchange import CALENDAR, DAY, LATENCY, SYM, at, tiny_day
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderEvent, SubmitOrder
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import HALT_REASON, NOT_FOUND_REASON, recover
from zhixing.engine.store import StateStore
from zhixing.replay.data import MarketData
from zhixing.replay.exchange import SimExchange

CASH = 10**10
DAY_START = at("09:00:00")
ONE_DAY_NS = 86_400 * 10**9


def make_broker(positions: dict[str, int] | None = None) -> tuple[SimClock, SimExchange]:
    clock = SimClock(DAY_START)
    exchange = SimExchange(
        MarketData(days={SYM: tiny_day()}, trade_date=DAY),
        clock,
        calendar=CALENDAR,
        latency_ns=LATENCY,
        cash=CASH,
        positions=positions,
    )
    return clock, exchange


async def start_engine(
    path: Path, clock: SimClock, exchange: SimExchange, account: Account | None = None
) -> tuple[OrderManager, StateStore]:
    store = await StateStore.open(path)
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=exchange, store=store, account=account)
    await oms.open()
    return oms, store


def run_until(clock: SimClock, when: int) -> None:
    while clock.step(until_ns=when):
        pass
    clock.advance_to(max(when, clock.now_ns()))


def run_all(clock: SimClock) -> None:
    while clock.step():
        pass


def buy(quantity: int = 1000, price: int = 10020) -> SubmitOrder:
    return SubmitOrder(symbol=SYM, side=Side.BUY, quantity=quantity, price=price, parent_id="P1")


async def test_a1_intent_committed_but_never_sent_is_rejected_not_resent(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock, exchange = make_broker()
    oms, store = await start_engine(db, clock, exchange)
    run_until(clock, at("09:30:01"))
    cid = oms.submit(buy()).client_order_id
    await store.commit()  # the intent is on disk; kill -9 before flush sends it
    await store.close()
    del oms

    oms2, store2 = await start_engine(db, clock, exchange, Account(CASH))
    report = await recover(oms2, store2, exchange, trading_day_start_ns=DAY_START)
    order = oms2.orders[cid]
    assert order.status is OrderStatus.REJECTED
    assert order.reason == NOT_FOUND_REASON
    assert order.venue_confirmed is False
    assert report.never_sent == [cid]
    assert report.ok
    assert oms2.halted_reason is None
    run_all(clock)
    assert await exchange.query_orders() == []  # nothing was resent
    assert exchange.stats.orders_received == 0
    await store2.close()

    store3 = await StateStore.open(db)  # the resolution is journaled
    (saved,) = await store3.load_orders()
    assert saved.status is OrderStatus.REJECTED
    assert saved.venue_confirmed is False
    await store3.close()


async def test_a2_order_filled_while_engine_was_down_is_adopted_once(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock, exchange = make_broker()
    oms, store = await start_engine(db, clock, exchange, Account(CASH))
    lost: list[OrderEvent] = []
    exchange.bind(lost.append)  # the engine dies after send: no event ever reaches it
    run_until(clock, at("09:30:01"))
    cid = oms.submit(buy()).client_order_id
    await oms.flush()
    assert oms.orders[cid].status is OrderStatus.SUBMITTED
    run_all(clock)
    await store.close()
    del oms
    assert lost  # the broker did things the engine never saw

    (broker_order,) = await exchange.query_orders()
    trades = await exchange.query_trades()
    assert trades
    oms2, store2 = await start_engine(db, clock, exchange, Account(CASH))
    report = await recover(oms2, store2, exchange, trading_day_start_ns=DAY_START)
    order = oms2.orders[cid]
    assert report.adopted == [cid]
    assert report.fills_applied == len(trades)
    assert order.status is broker_order.status
    assert order.filled_quantity == broker_order.filled_quantity == sum(t.quantity for t in trades)
    assert order.broker_order_id == broker_order.broker_order_id != ""
    assert report.ok, report.mismatches
    assert oms2.halted_reason is None
    assert oms2.account is not None
    assert oms2.account.position(SYM).quantity == order.filled_quantity
    assert exchange.stats.orders_received == 1  # no resend

    again = await recover(oms2, store2, exchange, trading_day_start_ns=DAY_START)
    assert again.fills_applied == 0
    assert order.filled_quantity == broker_order.filled_quantity
    await store2.close()
    store3 = await StateStore.open(db)
    assert len(await store3.load_fills()) == len(trades)
    await store3.close()


async def test_a3_order_rejected_while_engine_was_down_takes_venue_reason(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock, exchange = make_broker()
    oms, store = await start_engine(db, clock, exchange)
    exchange.bind([].append)
    run_until(clock, at("09:30:01"))
    cid = oms.submit(buy(quantity=100, price=10001)).client_order_id  # off tick: the venue rejects it
    await oms.flush()
    run_all(clock)
    await store.close()

    (broker_order,) = await exchange.query_orders()
    assert broker_order.status is OrderStatus.REJECTED
    assert broker_order.reason
    oms2, store2 = await start_engine(db, clock, exchange, Account(CASH))
    report = await recover(oms2, store2, exchange, trading_day_start_ns=DAY_START)
    order = oms2.orders[cid]
    assert order.status is OrderStatus.REJECTED
    assert order.reason == broker_order.reason
    assert order.venue_confirmed is True
    assert report.ok
    assert report.never_sent == []
    await store2.close()


async def test_a4_fills_seen_before_the_crash_are_not_applied_twice(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock, exchange = make_broker()
    account = Account(CASH)
    oms, store = await start_engine(db, clock, exchange, account)
    run_until(clock, at("09:30:01"))
    cid = oms.submit(buy()).client_order_id
    await oms.flush()
    while clock.step(until_ns=at("09:30:02")):
        await oms.flush()
    await oms.flush()
    seen = set(oms.orders[cid].trade_ids)
    assert seen  # some fills reached the engine and the journal
    exchange.bind([].append)  # crash: the rest happens while the engine is down
    run_all(clock)
    held = account.position(SYM).quantity
    await store.close()
    del oms

    trades = await exchange.query_trades()
    unseen = [t for t in trades if t.trade_id not in seen]
    assert unseen
    (broker_order,) = await exchange.query_orders()
    account2 = Account(CASH)
    account2.load_position(SYM, held, sellable=0)  # what the engine held when it died
    oms2, store2 = await start_engine(db, clock, exchange, account2)
    report = await recover(oms2, store2, exchange, trading_day_start_ns=DAY_START)
    order = oms2.orders[cid]
    assert report.fills_applied == len(unseen)
    assert order.filled_quantity == broker_order.filled_quantity
    assert order.status is broker_order.status
    assert account2.position(SYM).quantity == broker_order.filled_quantity
    assert report.ok, report.mismatches

    # a reconnect re-pushing every trade changes nothing
    before = oms2.counters.duplicate_fills
    await recover(oms2, store2, exchange, trading_day_start_ns=DAY_START)
    assert oms2.counters.duplicate_fills == before
    await store2.close()
    store3 = await StateStore.open(db)
    fill_ids = [f.trade_id for f, _ in await store3.load_fills()]
    assert sorted(fill_ids) == sorted(t.trade_id for t in trades)  # each exactly once
    await store3.close()


async def test_a7_position_mismatch_fails_closed(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock, exchange = make_broker(positions={SYM: 1500})
    account = Account(CASH)
    account.load_position(SYM, 1000)
    oms, store = await start_engine(db, clock, exchange, account)
    report = await recover(oms, store, exchange, trading_day_start_ns=DAY_START, wait=passing_time(clock))
    assert not report.ok
    # asked again over the grace before it was called a mismatch (engine.freshness)
    assert report.requeries == oms.freshness.answers - 1
    assert clock.now_ns() - DAY_START == (oms.freshness.answers - 1) * oms.freshness.grace_ns
    assert any(SYM in m and "local=1000" in m and "broker=1500" in m for m in report.mismatches)
    assert oms.halted_reason == HALT_REASON
    run_until(clock, at("09:30:01"))
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.SELL, quantity=100, price=10000))
    assert order.status is OrderStatus.DENIED
    assert HALT_REASON in order.reason
    await oms.flush()
    run_all(clock)
    assert exchange.stats.orders_received == 0
    await store.close()


async def test_a8_yesterdays_working_order_expires(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    store = await StateStore.open(db)
    yesterday = DAY_START - ONE_DAY_NS
    store.stage_order(
        Order(
            client_order_id="Z000000001",
            symbol=SYM,
            side=Side.BUY,
            price=10000,
            quantity=100,
            status=OrderStatus.ACCEPTED,
            broker_order_id="S1",
            ts_created=yesterday,
            ts_updated=yesterday,
        )
    )
    await store.commit()
    await store.close()

    clock, exchange = make_broker()
    oms, store2 = await start_engine(db, clock, exchange, Account(CASH))
    report = await recover(oms, store2, exchange, trading_day_start_ns=DAY_START)
    assert report.expired == ["Z000000001"]
    assert oms.orders["Z000000001"].status is OrderStatus.EXPIRED
    assert report.ok
    await store2.close()


async def test_unknown_accepted_order_today_is_a_mismatch(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    store = await StateStore.open(db)
    store.stage_order(
        Order(
            client_order_id="Z000000002",
            symbol=SYM,
            side=Side.BUY,
            price=10000,
            quantity=100,
            status=OrderStatus.ACCEPTED,
            ts_created=DAY_START + 1,
        )
    )
    await store.commit()
    await store.close()
    clock, exchange = make_broker()
    oms, store2 = await start_engine(db, clock, exchange)
    report = await recover(oms, store2, exchange, trading_day_start_ns=DAY_START, wait=passing_time(clock))
    assert not report.ok
    assert "Z000000002" in report.mismatches[0]
    assert oms.orders["Z000000002"].status is OrderStatus.ACCEPTED  # left for the operator
    assert oms.halted_reason == HALT_REASON
    await store2.close()


async def test_broker_orders_we_never_sent_are_external_and_not_adopted(tmp_path: Path) -> None:
    clock, exchange = make_broker()
    exchange.bind([].append)
    run_until(clock, at("09:30:01"))
    manual = Order(client_order_id="MANUAL1", symbol=SYM, side=Side.BUY, price=10001, quantity=100)
    await exchange.submit(manual)  # placed at the terminal; off tick, so rejected (no position)
    run_all(clock)
    oms, store = await start_engine(tmp_path / "journal.db", clock, exchange, Account(CASH))
    report = await recover(oms, store, exchange, trading_day_start_ns=DAY_START)
    assert report.external == ["MANUAL1"]
    assert "MANUAL1" not in oms.orders
    assert report.ok
    await store.close()
