"""Issue 20's burst: 300 parents start at 09:30 under the default cap of 50 messages a second. Every order
over the cap waits in the fair queue instead of being denied, so every parent starts within ~6 s
(300 first children at 45 orders a second, the cap less the cancel reserve), no rolling second carries
more than 50 messages to the exchange (counted at the adapter, as sent), and every parent fills what the
same basket fills without a cap, later by at most its wait."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from tests.replay.test_recovery import DATA, assert_books_agree
from zhixing.algos.basket import Basket
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock, SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.reconcile import NOT_FOUND_REASON
from zhixing.engine.risk_controls import SECOND_NS, RiskLimits
from zhixing.replay.data import MarketData, clone_symbol_day, load_snapshot_file, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.harness import ReplayConfig, open_session
from zhixing.replay.recovery import crash, restart_session, resume, run_exchange_alone, use_process_clock
from zhixing.replay.report import build_report

SOURCES = sorted(
    (Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20220601").glob("*.csv.gz")
)
N = 300
CAPPED = RiskLimits(max_messages_per_second=50)  # the default cap (orders: 45 a second)
UNCAPPED = RiskLimits(max_messages_per_second=100_000, max_messages_per_day=1_000_000, allow_hft_rates=True)


class Recording:
    """The adapter as the engine sees it, recording when each order and cancel was handed to it."""

    def __init__(self, inner: BrokerAdapter, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.sent: list[tuple[int, str, Order]] = []  # (time, "submit" | "cancel", order)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def submit(self, order: Order) -> None:
        self.sent.append((self.clock.now_ns(), "submit", order))
        await self.inner.submit(order)

    async def cancel(self, order: Order) -> None:
        self.sent.append((self.clock.now_ns(), "cancel", order))
        await self.inner.cancel(order)


@pytest.fixture(scope="module")
def market() -> MarketData:
    parsed = [load_snapshot_file(path) for path in SOURCES]
    days = {}
    for i in range(N):
        day = parsed[i % len(parsed)]
        code, suffix = day.symbol.split(".")
        symbol = f"{code[:2]}{i:04d}.{suffix}"
        days[symbol] = clone_symbol_day(day, symbol)
    return MarketData(days=days, trade_date=parsed[0].trade_date)


def parents(market: MarketData) -> list[ParentOrder]:
    day = market.trade_date
    return [
        ParentOrder(
            parent_id=f"P{i:03d}",
            symbol=symbol,
            side=Side.BUY,
            quantity=100,  # one lot: one child, at the start
            start_ns=shanghai_ns(day, "09:30"),
            end_ns=shanghai_ns(day, "09:35"),
            algo="twap",
            params={"interval_s": "60", "price_policy": "aggressive"},
        )
        for i, symbol in enumerate(sorted(market.symbols))
    ]


async def run(market: MarketData, limits: RiskLimits, db: Path) -> tuple[Basket, Recording, Any]:
    basket_parents = parents(market)
    recorder: list[Recording] = []

    def wrap(exchange: SimExchange, clock: SimClock) -> BrokerAdapter:
        recorder.append(Recording(exchange, clock))
        return cast(BrokerAdapter, recorder[0])

    wrapper: Callable[[SimExchange, SimClock], BrokerAdapter] = wrap
    config = ReplayConfig(cash=10**13, db_path=db, risk=limits)
    session = await open_session(market, config, basket_parents[0].start_ns, wrap=wrapper)
    try:
        basket = Basket(session.ctx)
        session.engine.add_basket(basket)
        for parent in basket_parents:
            session.store.stage_parent(parent.to_row())
            basket.add(parent)
            session.record_arrival(parent)
        basket.start()
        await session.store.commit()
        await session.run(shanghai_ns(market.trade_date, "09:36"), lambda: basket.done)
        report = build_report(
            basket_parents, basket, session.oms, market, session.arrival, session.engine.risk
        )
    finally:
        await session.store.close()
    return basket, recorder[0], report


@pytest.mark.slow
async def test_300_parents_at_0930_under_50_a_second_all_start_within_6_s_and_fill_as_uncapped(
    market: MarketData, tmp_path: Path
) -> None:
    open_ns = shanghai_ns(market.trade_date, "09:30")
    capped, sent, report = await run(market, CAPPED, tmp_path / "capped.db")
    free, free_sent, _ = await run(market, UNCAPPED, tmp_path / "free.db")

    # every parent started: its first child handed to the adapter by 09:30:06 + one window
    first: dict[str, int] = {}
    for ts, kind, order in sent.sent:
        if kind == "submit" and order.parent_id:
            first.setdefault(order.parent_id, ts)
    assert len(first) == N
    assert max(first.values()) <= open_ns + 7 * SECOND_NS
    assert max(first.values()) >= open_ns + 6 * SECOND_NS  # 300 at 45 a second: the cap did shape it

    # no rolling second (t - 1 s, t] ever carried more than 50 messages to the exchange
    times = sorted(ts for ts, _, _ in sent.sent)
    lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - SECOND_NS:
            lo += 1
        assert hi - lo + 1 <= CAPPED.max_messages_per_second, t

    # nothing denied for the rate; the report's gate section shows the queue
    gate = report.gate
    assert gate is not None
    assert gate.denials == {}
    assert gate.peak_per_second <= 50
    assert gate.queue is not None
    assert gate.queue.orders_queued == N - CAPPED.order_cap_per_second  # all but the first window's
    assert gate.queue.queued_sent == gate.queue.orders_queued
    assert gate.queue.queue_timeouts == 0
    assert 6 * SECOND_NS <= gate.queue.max_wait_ms * 1e6 < 7 * SECOND_NS

    # each parent fills as the uncapped run does (one lot each, taken at the touch: liquidity allows
    # it in both), and its first child goes no earlier than uncapped (shifted in time, not reordered
    # within a parent)
    free_first = {o.parent_id: ts for ts, kind, o in reversed(free_sent.sent) if kind == "submit"}
    assert max(free_first.values()) == open_ns  # uncapped: all 300 at the open
    for pid, algo in capped.algos.items():
        assert algo.filled_quantity == free.algos[pid].filled_quantity == algo.parent.quantity, pid
        assert first[pid] >= free_first[pid]
        assert algo.unfilled_reason == ""


@pytest.mark.slow
async def test_a_crash_with_orders_queued_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Queued orders are journaled INITIALIZED (the intent is on disk before it may be sent); after a
    crash reconciliation finds the broker never saw them and resolves them (``not_found_at_broker``):
    none is sent twice, none is left working, and the resumed parents size from confirmed fills."""
    market = load_snapshots(DATA, symbols=["600258.SH", "600446.SH"])
    day = market.trade_date
    start = shanghai_ns(day, "09:30")
    config = ReplayConfig(
        cash=10**11,
        db_path=tmp_path / "j.db",
        risk=RiskLimits(max_messages_per_second=5, cancel_reserve_pct=20, duplicate_window_ns=0),
    )
    session = await open_session(market, config, start)
    use_process_clock(session)
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    for i in range(12):
        parent = ParentOrder(
            parent_id=f"C{i:02d}",
            symbol=["600258.SH", "600446.SH"][i % 2],
            side=Side.BUY,
            quantity=200,
            start_ns=start,
            end_ns=shanghai_ns(day, "09:40"),
            algo="twap",
            # today's slicing (no minimum child value): one lot at the first slice
            params={"interval_s": "120", "price_policy": "passive", "min_child_value": "0"},
        )
        session.store.stage_parent(parent.to_row())
        basket.add(parent)
    basket.start()
    await session.store.commit()
    await session.run(start + SECOND_NS // 2, lambda: basket.done, expire=False)
    queued = [o for o in session.oms.orders.values() if o.status is OrderStatus.INITIALIZED]
    assert len(queued) == 12 - 4  # four sent in the first window, the rest waiting for it
    assert session.engine.risk.report()["queued_now"] == len(queued)
    await session.store.commit()  # the last staged rows on disk, as the flush after a step leaves them
    queued_ids = {o.client_order_id for o in queued}

    await crash(session)
    run_exchange_alone(session.clock, session.clock.now_ns() + 10 * SECOND_NS)
    session = await restart_session(
        market, config, clock=session.clock, exchange=session.exchange, adapter=session.oms.adapter
    )
    resumed = await resume(session, trading_day_start_ns=shanghai_ns(day, "09:15"), in_flight_grace_ns=0)
    assert set(resumed.report.never_sent) == queued_ids  # every queued intent found, none lost
    for cid in queued_ids:
        assert session.oms.orders[cid].status is OrderStatus.REJECTED
        assert session.oms.orders[cid].reason == NOT_FOUND_REASON
    await session.run(shanghai_ns(day, "09:41"), lambda: resumed.basket.done)
    await session.store.close()
    venue = {r.client_order_id for r in await session.exchange.query_orders()}
    assert not venue & queued_ids  # never sent, before or after the restart
    await assert_books_agree(session, resumed.basket)
