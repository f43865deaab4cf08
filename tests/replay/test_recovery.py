"""Crash and restart of algorithms in a replay (``replay.recovery``, ``Basket.restore``): the engine dies,
the simulated exchange survives, a new engine reconciles and resumes each parent where it was."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from zhixing.algos.basket import Basket
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import InputError
from zhixing.engine.events import SubmitOrder
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.store import StateStore
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.faults import BROKER_REJECT_REASON, FaultPlan, FaultyAdapter
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session
from zhixing.replay.recovery import (
    DurableSimBroker,
    ProcessClock,
    build_session,
    crash,
    restart_session,
    resume,
    run_exchange_alone,
    use_process_clock,
)

DATA = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOLS = ["600258.SH", "600446.SH"]
S = 1_000_000_000


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(DATA, symbols=SYMBOLS)


def hhmm(market: MarketData, text: str) -> int:
    return shanghai_ns(market.trade_date, text)


def parents_for(market: MarketData) -> list[ParentOrder]:
    start, end = hhmm(market, "09:30"), hhmm(market, "09:50")
    return [
        ParentOrder(
            parent_id=f"P{i}",
            symbol=symbol,
            side=side,
            quantity=quantity,
            start_ns=start,
            end_ns=end,
            params={"interval_s": "30"},
        )
        for i, (symbol, side, quantity) in enumerate(
            [("600258.SH", Side.BUY, 12_000), ("600446.SH", Side.SELL, 8_000)]
        )
    ]


def config_for(tmp_path: Path) -> ReplayConfig:
    return ReplayConfig(cash=10**11, positions={"600446.SH": 10_000}, db_path=tmp_path / "j.db")


async def start_basket(market: MarketData, config: ReplayConfig) -> tuple[ReplaySession, Basket]:
    parents = parents_for(market)
    session = await open_session(market, config, parents[0].start_ns)
    use_process_clock(session)
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    for parent in parents:
        session.store.stage_parent(parent.to_row())
        basket.add(parent)
    basket.start()
    await session.store.commit()
    return session, basket


async def crash_and_restart(
    market: MarketData, config: ReplayConfig, session: ReplaySession, downtime_ns: int
) -> ReplaySession:
    await crash(session)
    run_exchange_alone(session.clock, session.clock.now_ns() + downtime_ns)
    return await restart_session(
        market, config, clock=session.clock, exchange=session.exchange, adapter=session.oms.adapter
    )


async def assert_books_agree(session: ReplaySession, basket: Basket) -> None:
    oms = session.oms
    venue = await session.exchange.query_orders()
    counts = Counter(r.client_order_id for r in venue)
    assert max(counts.values()) == 1  # I1
    for report in venue:
        assert oms.orders[report.client_order_id].filled_quantity == report.filled_quantity  # I2
        assert oms.orders[report.client_order_id].status is report.status
    for parent_id, algo in basket.algos.items():
        children = sum(o.filled_quantity for o in oms.children_of(parent_id))
        assert algo.filled_quantity == children <= algo.parent.quantity
    engine_pos = {s: p.quantity for s, p in session.account.positions.items() if p.quantity}
    venue_pos = {p.symbol: p.quantity for p in await session.exchange.query_positions() if p.quantity}
    assert engine_pos == venue_pos  # I3
    assert all(o.is_terminal for o in oms.orders.values())  # I4
    assert not any(o.reason.startswith("adapter:") for o in oms.orders.values())  # nothing resent


async def test_a_crashed_basket_resumes_where_it_was_and_finishes_without_duplicates(
    market: MarketData, tmp_path: Path
) -> None:
    config = config_for(tmp_path)
    session, basket = await start_basket(market, config)
    await session.run(hhmm(market, "09:38"), lambda: basket.done, expire=False)
    before = {pid: (a.filled_quantity, a.children_sent) for pid, a in basket.algos.items()}
    slices = {pid: a.next_slice for pid, a in basket.algos.items() if isinstance(a, TwapAlgo)}
    assert all(n > 10 for n in slices.values())
    session = await crash_and_restart(market, config, session, 45 * S)
    resumed = await resume(session, trading_day_start_ns=hhmm(market, "09:15"))
    assert resumed.report.ok
    assert resumed.report.rebuilt == sum(n for _, n in before.values())
    for pid, algo in resumed.basket.algos.items():
        assert isinstance(algo, TwapAlgo)
        assert algo.next_slice >= slices[pid] + 1  # resumed after the downtime's slices, not from zero
        assert algo.filled_quantity >= before[pid][0]  # confirmed fills, downtime's included
        assert algo.children_sent >= before[pid][1]
    await session.run(hhmm(market, "09:51"), lambda: resumed.basket.done)
    await session.store.close()
    assert resumed.basket.done
    await assert_books_agree(session, resumed.basket)
    for algo in resumed.basket.algos.values():
        assert algo.filled_quantity == algo.parent.quantity


async def test_parents_finished_before_the_crash_stay_finished(market: MarketData, tmp_path: Path) -> None:
    config = config_for(tmp_path)
    session, basket = await start_basket(market, config)
    session.clock.call_at(hhmm(market, "09:33"), basket.algos["P1"].cancel, "operator_cancel")
    await session.run(hhmm(market, "09:36"), lambda: basket.done, expire=False)
    assert basket.algos["P1"].done
    p1_children = len(session.oms.children_of("P1"))
    session = await crash_and_restart(market, config, session, 5 * S)
    resumed = await resume(session, trading_day_start_ns=hhmm(market, "09:15"))
    p1 = resumed.basket.algos["P1"]
    assert p1.done
    assert p1.parent.status is ParentStatus.CANCELED
    await session.run(hhmm(market, "09:51"), lambda: resumed.basket.done)
    await session.store.close()
    assert len(session.oms.children_of("P1")) == p1_children  # nothing sent for it after the restart
    assert resumed.basket.algos["P0"].filled_quantity == 12_000
    await assert_books_agree(session, resumed.basket)


async def test_restore_without_states_keeps_a_done_parent_done_and_starts_a_pending_one(
    market: MarketData, tmp_path: Path
) -> None:
    session = await open_session(market, config_for(tmp_path), hhmm(market, "09:30"))
    done, pending = parents_for(market)
    done.status = ParentStatus.DONE
    basket = Basket.restore(session.ctx, [done.to_row(), pending.to_row()], {})
    basket.start()
    await session.store.close()
    assert basket.algos["P0"].done
    assert basket.algos["P0"].parent.status is ParentStatus.DONE
    assert not basket.algos["P1"].done
    assert basket.algos["P1"].parent.status is ParentStatus.RUNNING


async def test_restore_refuses_a_state_of_another_algorithm(market: MarketData, tmp_path: Path) -> None:
    session = await open_session(market, config_for(tmp_path), hhmm(market, "09:30"))
    parent = parents_for(market)[0]
    await session.store.close()
    with pytest.raises(ValueError, match="algo 'pov'"):
        Basket.restore(session.ctx, [parent.to_row()], {"P0": ("pov", {})})


async def test_engine_timers_die_with_the_process(market: MarketData, tmp_path: Path) -> None:
    config = config_for(tmp_path)
    session, basket = await start_basket(market, config)
    await session.run(hhmm(market, "09:31"), lambda: basket.done, expire=False)
    clock = session.ctx.clock
    assert isinstance(clock, ProcessClock)
    assert await crash(session) == 2  # one armed slice timer per algorithm
    run_exchange_alone(session.clock, hhmm(market, "09:31") + S)  # what was sent at 09:31 arrives
    sent = session.exchange.stats.orders_received
    assert sent > 0
    run_exchange_alone(session.clock, hhmm(market, "09:45"))
    assert session.exchange.stats.orders_received == sent  # no slice fired while the engine was down
    with pytest.raises(RuntimeError, match="dead"):
        clock.call_at(hhmm(market, "09:46"), lambda: None)


@pytest.mark.parametrize(("grace_ns", "pending"), [(5 * S, True), (0, False)])
async def test_an_order_sent_just_before_the_crash_is_left_in_flight_within_the_grace(
    market: MarketData, tmp_path: Path, grace_ns: int, pending: bool
) -> None:
    config = config_for(tmp_path)
    session = await open_session(market, config, hhmm(market, "09:40"))
    use_process_clock(session)
    session.clock.advance_to(hhmm(market, "09:40"))
    quote = session.exchange.latest("600258.SH")
    assert quote is not None
    order = session.oms.submit(
        SubmitOrder(symbol="600258.SH", side=Side.BUY, quantity=500, price=quote.ask_price, parent_id="X")
    )
    await session.oms.flush()
    assert order.status is OrderStatus.SUBMITTED
    session = await crash_and_restart(market, config, session, 1_000_000)  # back before it arrives
    resumed = await resume(session, trading_day_start_ns=hhmm(market, "09:15"), in_flight_grace_ns=grace_ns)
    cid = order.client_order_id
    await session.run(hhmm(market, "09:41"), lambda: True)
    await session.store.close()
    venue = {r.client_order_id: r for r in await session.exchange.query_orders()}
    assert venue[cid].filled_quantity > 0  # it did reach the exchange, a moment after the restart
    if pending:
        assert resumed.report.pending == [cid]
        assert session.oms.orders[cid].status is venue[cid].status  # books agree
        assert session.oms.orders[cid].filled_quantity == venue[cid].filled_quantity
    else:  # the strict policy calls it never sent: the books then disagree (why the grace exists)
        assert resumed.report.never_sent == [cid]
        assert session.oms.orders[cid].filled_quantity != venue[cid].filled_quantity


async def test_the_durable_broker_rebuilds_the_exchange_from_its_journal(
    market: MarketData, tmp_path: Path
) -> None:
    config = config_for(tmp_path)
    start = hhmm(market, "09:30")
    broker = await DurableSimBroker.open(tmp_path / "broker.db", market, config, start_ns=start)
    store = await StateStore.open(tmp_path / "engine.db")
    session = await build_session(
        market, config, clock=broker.clock, exchange=broker.exchange, adapter=broker, store=store
    )
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    for parent in parents_for(market):
        store.stage_parent(parent.to_row())
        basket.add(parent)
    basket.start()
    stop = hhmm(market, "09:42")
    await session.run(stop, lambda: basket.done, expire=False)
    run_exchange_alone(broker.clock, stop)
    expected = (
        await broker.query_orders(),
        await broker.query_trades(),
        await broker.query_positions(),
        await broker.query_account(),
    )
    await store.close()
    await broker.close()
    assert len(expected[1]) > 10

    again = await DurableSimBroker.open(tmp_path / "broker.db", market, config, start_ns=start)
    run_exchange_alone(again.clock, stop)
    rebuilt = (
        await again.query_orders(),
        await again.query_trades(),
        await again.query_positions(),
        await again.query_account(),
    )
    await again.close()
    assert rebuilt == expected  # same orders, states, trade ids, fees, positions and cash
    assert again.stats.replayed == broker.stats.requests
    assert set(again.stats.submits.values()) == {1}


async def test_a_broker_journal_row_of_unknown_kind_is_an_input_error_naming_file_row_and_field(
    market: MarketData, tmp_path: Path
) -> None:
    path = tmp_path / "broker.db"
    start = hhmm(market, "09:30")
    broker = await DurableSimBroker.open(path, market, config_for(tmp_path), start_ns=start)
    broker.expire_all()  # request 1, a known kind
    await broker.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO requests (seq, ts, kind, body) VALUES (2, ?, 'amend', '{}')", (start,))

    with pytest.raises(InputError) as caught:
        await DurableSimBroker.open(path, market, config_for(tmp_path), start_ns=start)
    assert (caught.value.path, caught.value.row, caught.value.field) == (str(path), 2, "kind")
    assert str(caught.value) == (
        f"{path}, row 2, field 'kind': unknown request kind 'amend'; known: cancel, expire, submit"
    )


async def test_a_broker_reject_is_listed_by_the_broker_and_never_reaches_the_exchange(
    market: MarketData, tmp_path: Path
) -> None:
    plan = FaultPlan(seed=1, broker_reject=1.0, drop_reject_callback=1.0)
    holder: list[FaultyAdapter] = []

    def wrap(exchange: object, clock: object) -> FaultyAdapter:
        holder.append(FaultyAdapter(exchange, plan, clock))  # type: ignore[arg-type]
        return holder[0]

    session = await open_session(market, config_for(tmp_path), hhmm(market, "09:40"), wrap=wrap)
    session.clock.advance_to(hhmm(market, "09:40"))
    quote = session.exchange.latest("600258.SH")
    assert quote is not None
    order = session.oms.submit(
        SubmitOrder(symbol="600258.SH", side=Side.BUY, quantity=500, price=quote.ask_price, parent_id="X")
    )
    await session.oms.flush()
    await session.run(hhmm(market, "09:41"), lambda: True)
    await session.store.close()
    adapter = holder[0]
    assert adapter.injected["broker_reject"] == adapter.injected["drop_reject_callback"] == 1
    assert session.exchange.stats.orders_received == 0
    # the reject callback was dropped: the in-flight check found the broker's REJECTED report
    assert order.status is OrderStatus.REJECTED
    assert order.reason == BROKER_REJECT_REASON
    assert session.inflight.stats.resolved_by_query == 1
