"""The risk gate runs in a replay exactly as in a live run (issue 14): the composition root
(``zhixing.assembly``) builds both engines with it, so a backtest shows what live trading would have
refused or throttled. A replayed basket whose bursts exceed the per-second cap reports the peak against
the cap, the orders queued for the window (issue 20: the cap shapes, it does not deny) and the cancels
held; the same burst through a live session meets the same gate and is counted the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhixing.assembly import EngineSettings
from zhixing.engine.account import Account
from zhixing.engine.cli.session import open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.oms import OrderManager
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import RiskControls, RiskLimits
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.harness import ReplayConfig, open_session, run_replay
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.report import gate_report

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
CAP = 5  # messages per second: far below what ten parents slicing on the same instants send
LIMITS = RiskLimits(max_messages_per_second=CAP, cancel_reserve_pct=20, duplicate_window_ns=0)


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE)


def basket(market: MarketData) -> list[ParentOrder]:
    day = market.trade_date
    return [
        ParentOrder(
            parent_id=f"P{i}",
            symbol=symbol,
            side=Side.BUY,
            quantity=2_000,
            start_ns=shanghai_ns(day, "09:31"),
            end_ns=shanghai_ns(day, "09:41"),
            algo="twap",
            params={"interval_s": "30", "price_policy": "passive"},
        )
        for i, symbol in enumerate(sorted(market.symbols))
    ]


@pytest.mark.slow
async def test_a_replayed_basket_over_the_cap_reports_its_peak_queued_orders_and_held_cancels(
    market: MarketData, tmp_path: Path
) -> None:
    config = ReplayConfig(cash=10**12, db_path=tmp_path / "capped.db", risk=LIMITS)
    result = await run_replay(market, basket(market), config)
    gate = result.report.gate
    assert gate is not None
    assert gate.max_messages_per_second == CAP
    assert 0 < gate.peak_per_second <= CAP  # the cap held in every 1 s window
    assert gate.denials == {}  # the bursts met the cap and waited: nothing denied for the rate
    assert gate.queue is not None
    assert gate.queue.orders_queued > 0
    assert gate.queue.queue_timeouts == 0
    assert gate.queue.queued_sent + gate.queue.queued_cancelled == gate.queue.orders_queued
    assert 0 < gate.queue.max_wait_ms < gate.queue.timeout_s * 1_000
    assert all(algo.children_denied == 0 for algo in result.basket.algos.values())
    assert gate.cancel_holds > 0  # the slice-end cancels of ten parents at one instant: held, never lost
    assert len(gate.held) == gate.cancel_holds
    assert {h.cap for h in gate.held} <= {"per_second", "per_symbol_per_second", "per_day"}
    assert gate.messages_today == gate.orders_sent + gate.cancels_sent
    assert not [o for o in result.oms.orders.values() if o.status is OrderStatus.PENDING_CANCEL]
    # the same basket under the default limits: nothing denied, nothing held
    loose = await run_replay(market, basket(market), ReplayConfig(cash=10**12, db_path=tmp_path / "loose.db"))
    assert loose.report.gate is not None
    assert loose.report.gate.denials == {}
    assert loose.report.gate.cancel_holds == 0


async def burst(oms: OrderManager, clock: SimClock, risk: RiskControls, symbol: str, bid: int) -> tuple:
    """Twelve buys at one instant, then their cancels at one instant; the gate's figures after."""
    orders = [
        oms.submit(SubmitOrder(symbol=symbol, side=Side.BUY, quantity=100, price=bid - 10 * (i + 1)))
        for i in range(12)
    ]
    await oms.flush()
    for _ in range(3):
        clock.step(until_ns=clock.now_ns() + NS_PER_SECOND // 10)
        await oms.flush()
    for order in orders:
        oms.cancel(order.client_order_id)
    await oms.flush()
    while clock.step(until_ns=clock.now_ns() + 5 * NS_PER_SECOND):
        await oms.flush()
    gate = gate_report(risk, oms)
    return (
        [(d.code, d.price) for d in gate.denied],
        gate.cancel_holds,
        gate.peak_per_second,
        gate.orders_sent,
        gate.cancels_sent,
        [o.status for o in orders],
        gate.queue,
    )


async def test_the_same_burst_meets_the_same_gate_in_a_replay_and_in_a_live_session(
    market: MarketData, tmp_path: Path
) -> None:
    day = market.trade_date
    symbol = sorted(market.symbols)[0]
    start = shanghai_ns(day, "09:40")

    replay = await open_session(
        market, ReplayConfig(cash=10**12, db_path=tmp_path / "r.db", risk=LIMITS), start
    )
    try:
        replay.clock.advance_to(start)
        quote = replay.exchange.latest(symbol)
        assert quote is not None
        in_replay = await burst(replay.oms, replay.clock, replay.engine.risk, symbol, quote.bid_price)
    finally:
        await replay.store.close()

    clock = SimClock(start)
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**12)
    live = await open_live_session(
        clock=clock,
        adapter=exchange,
        feed=RecordedFeed(market, exchange, clock),
        store_path=tmp_path / "live.db",
        account=Account(10**12),
        settings=EngineSettings(risk=LIMITS),
        trading_day_start_ns=shanghai_ns(day, "00:00"),
        synchronous="NORMAL",
    )
    try:
        await live.feed.subscribe([symbol])
        while clock.step(until_ns=clock.now_ns() + NS_PER_SECOND):
            await live.oms.flush()
        assert live.risk is not None
        in_live = await burst(live.oms, clock, live.risk, symbol, quote.bid_price)
    finally:
        await live.close(cancel_working=False)

    denied, holds, peak, sent, cancels, statuses, queue = in_live
    assert in_replay == in_live
    assert denied == []  # over the cap: queued, not denied
    assert sent == LIMITS.order_cap_per_second  # orders may use the cap less the reserve...
    assert queue.orders_queued == 12 - sent  # ...the rest waited for the window
    assert queue.queued_cancelled == 12 - sent  # and their cancels took them out: never sent
    assert holds > 0
    assert peak <= CAP
    assert cancels == sent  # every sent order's cancel went out in the end: held, never dropped
    assert statuses.count(OrderStatus.CANCELED) == 12
