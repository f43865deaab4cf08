"""Broker disconnect and reconnect (RELIABILITY D1-D3) on a replay session: a TWAP basket on real data,
the simulated exchange behind a ``FaultyAdapter`` whose link drops at planned instants, and the engine's
``ConnectionMonitor`` pausing, denying, resynchronising and resuming."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zhixing.algos.basket import Basket
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.account import Account
from zhixing.engine.cli.session import open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.connection import (
    DISCONNECTED,
    ConnectionIncident,
    ConnectionMonitor,
    LinkAwareInflightChecker,
    LinkState,
    attach_to_adapter,
)
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderFilled, OrderSubmitted, SubmitOrder
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.chaos import basket_for, check
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.faults import FaultPlan, FaultyAdapter, LinkedRun
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.recovery import ProcessClock

DATA = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOLS = 4
S = NS_PER_SECOND


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(DATA)


def at(market: MarketData, hhmmss: str) -> int:
    hh, mm, ss = hhmmss.split(":")
    return shanghai_ns(market.trade_date, f"{hh}:{mm}") + int(ss) * S


@dataclass
class Run:
    session: ReplaySession
    basket: Basket
    linked: LinkedRun
    adapter: FaultyAdapter
    submitted: list[OrderSubmitted] = field(default_factory=list)
    fills: list[OrderFilled] = field(default_factory=list)
    notified: list[int] = field(default_factory=list)
    targets_at_start: dict[str, list[int]] = field(default_factory=dict)

    @property
    def monitor(self) -> ConnectionMonitor:
        return self.linked.monitor


async def run_basket(
    market: MarketData,
    tmp_path: Path,
    outages: tuple[tuple[int, int], ...],
    *,
    during: Callable[[Run], None] | None = None,
    passive: bool = False,
) -> Run:
    """The basket 09:30-10:15 through a link that drops at ``outages``; ``during(run)`` is called once
    the session is wired (to arm probes on the clock); ``passive``: children rest at their own best
    (so some are working, and fill, while the link is down). The run is checked by the chaos oracle."""
    parents, positions = basket_for(market, SYMBOLS, 1)
    for parent in parents:
        if passive:
            parent.params["price_policy"] = "passive"
    plan = FaultPlan(seed=1, outages=outages)
    adapters: list[FaultyAdapter] = []

    def wrap(exchange: object, clock: object) -> FaultyAdapter:
        adapter = FaultyAdapter(exchange, plan, clock)  # type: ignore[arg-type]
        adapters.append(adapter)
        return adapter

    config = ReplayConfig(
        cash=10**13, positions=positions, db_path=tmp_path / "journal.db", synchronous="OFF"
    )
    session = await open_session(market, config, parents[0].start_ns, wrap=wrap)
    try:
        basket = Basket(session.ctx)
        session.engine.add_basket(basket)
        for parent in parents:
            parent.created_ns = session.clock.now_ns()
            session.store.stage_parent(parent.to_row())
            basket.add(parent)
        notified: list[int] = []

        def on_incident(incident: ConnectionIncident) -> None:
            notified.append(incident.number)

        run = Run(session, basket, LinkedRun(session, basket.algos, on_incident=on_incident), adapters[0])
        run.notified = notified
        session.bus.subscribe(OrderSubmitted, run.submitted.append)
        session.bus.subscribe(OrderFilled, run.fills.append)
        basket.start()
        await session.store.commit()
        for parent_id, algo in basket.algos.items():
            assert isinstance(algo, TwapAlgo)
            run.targets_at_start[parent_id] = algo.targets
        if during is not None:
            during(run)
        await run.linked.run(parents[0].end_ns + 60 * S, lambda: basket.done)
        journaled = [o.client_order_id for o in await session.store.load_orders()]
        venue_reports = await session.exchange.query_orders()
        venue_positions = await session.exchange.query_positions()
    finally:
        await session.store.close()
    outcome = check(session, parents, run.adapter, journaled, venue_reports, venue_positions, 1)
    assert outcome.problems == []  # I1-I4: one broker order per client id, fills, positions, resolved
    assert Counter(r.client_order_id for r in venue_reports).most_common(1)[0][1] == 1
    return run


def state_of(monitor: ConnectionMonitor) -> LinkState:
    return monitor.state


def assert_complete(run: Run) -> None:
    """Every parent done and filled (a buy may leave an odd rest below one lot: passive partial fills)."""
    for algo in run.basket.algos.values():
        assert algo.done
        rest = algo.parent.quantity - algo.filled_quantity
        assert 0 <= rest < (algo.instrument.buy_min if algo.parent.side is Side.BUY else 1)


def children_per_window(submits: list[OrderSubmitted], start: int, end: int, width: int) -> list[int]:
    counts = Counter((s.ts_event - start) // width for s in submits if start <= s.ts_event < end)
    return [counts.get(i, 0) for i in range((end - start) // width)]


@pytest.mark.slow
async def test_a_60s_disconnect_pauses_resyncs_before_resuming_and_the_basket_completes(
    market: MarketData, tmp_path: Path
) -> None:
    drop, back = at(market, "09:50:05"), at(market, "09:51:05")
    paused_mid_outage: list[bool] = []

    def probe(run: Run) -> None:
        def look() -> None:
            paused_mid_outage.extend(a.paused or a.done for a in run.basket.algos.values())

        run.session.clock.call_at(drop + 30 * S, look, "probe")

    run = await run_basket(market, tmp_path, ((drop, back - drop),), during=probe, passive=True)
    (incident,) = run.monitor.incidents
    assert incident.down_ns == drop
    assert incident.up_ns == back
    assert incident.resumed_ns == back  # resynchronised at the instant the link came back
    assert run.notified == [1]
    # paused: every running algorithm, and each was resumed by the monitor
    assert paused_mid_outage
    assert all(paused_mid_outage)
    assert incident.algos_paused == incident.algos_resumed == SYMBOLS
    assert run.monitor.paused_by_monitor == set()
    # no child sent while down or resynchronising
    assert not [s for s in run.submitted if drop <= s.ts_event < incident.resumed_ns]
    # the pause's cancels were refused by the dead link, and sent again after the resync
    # (those the broker filled meanwhile need none: the re-pushed trades completed them)
    assert 0 < incident.cancels_resent <= incident.cancels_refused
    # what the broker did meanwhile was lost on the wire and adopted before any new child
    assert run.adapter.lost_while_down > 0
    assert incident.orders_adopted > 0
    first_new = min(s.ts_event for s in run.submitted if s.ts_event >= back)
    outage_fills = [f for f in run.fills if drop <= f.ts_event < back]
    assert outage_fills
    assert all(f.ts_init <= first_new for f in outage_fills)
    assert run.adapter.repushed > 0  # the day's trades re-pushed: all deduplicated
    assert run.session.oms.counters.duplicate_fills >= run.adapter.repushed - len(outage_fills)
    # no burst: per 10 s after the reconnect, no more children than the schedule sent before the drop
    before = children_per_window(run.submitted, drop - 300 * S, drop, 10 * S)
    after = children_per_window(run.submitted, back, back + 300 * S, 10 * S)
    assert max(after) <= max(before) <= SYMBOLS
    # ... and the slices skipped while down are re-spread, not caught up
    for parent_id, algo in run.basket.algos.items():
        assert isinstance(algo, TwapAlgo)
        step_before = max(
            b - a
            for a, b in zip(
                run.targets_at_start[parent_id], run.targets_at_start[parent_id][1:], strict=False
            )
        )
        now_targets = algo.targets
        resumed_from = next(i for i, t in enumerate(algo.slice_times) if t >= back)
        step_after = max(
            b - a for a, b in zip(now_targets[resumed_from:], now_targets[resumed_from + 1 :], strict=False)
        )
        assert step_after <= step_before + algo.instrument.buy_step * 2
    # every parent completes
    assert_complete(run)
    assert run.session.oms.halted_reason is None


async def test_an_order_submitted_while_down_is_denied_with_the_reason_and_never_sent_later(
    market: MarketData, tmp_path: Path
) -> None:
    drop, back = at(market, "09:40:00"), at(market, "09:40:30")
    denied: list[Order] = []
    cancels_while_down: list[bool] = []
    late_parent = basket_for(market, SYMBOLS + 1, 1)[0][-1]  # a buy of a fifth symbol

    def probe(run: Run) -> None:
        def submit_while_down() -> None:
            assert run.monitor.state is LinkState.DOWN
            symbol = run.basket.algos["C0000"].parent.symbol
            quote = run.session.exchange.latest(symbol)
            assert quote is not None
            denied.append(
                run.session.oms.submit(
                    SubmitOrder(symbol=symbol, side=Side.BUY, quantity=100, price=quote.bid_price)
                )
            )
            cancels_while_down.append(run.session.oms.cancel(denied[-1].client_order_id))

        def parent_joins_while_down() -> None:  # not paused at the drop: it asks, is denied, is paused
            run.basket.add(late_parent)

        run.session.clock.call_at(drop + 10 * S, submit_while_down, "operator_order")
        run.session.clock.call_at(drop + 15 * S, parent_joins_while_down, "late_parent")

    run = await run_basket(market, tmp_path, ((drop, back - drop),), during=probe)
    (order, *_) = denied
    assert order.status is OrderStatus.DENIED
    assert order.reason == str(DISCONNECTED)
    assert cancels_while_down == [False]  # nothing to cancel: it never existed at the broker
    venue = {r.client_order_id for r in await run.session.exchange.query_orders()}
    assert order.client_order_id not in venue  # no silent queue, no replay after the reconnect
    assert run.adapter.refused_while_down["submit"] == 0  # denied before the adapter, nothing raced
    (incident,) = run.monitor.incidents
    assert incident.orders_denied == 2  # the operator's order and the late parent's first child
    assert incident.algos_paused == incident.algos_resumed == SYMBOLS + 1
    # the late parent was paused at its first denial, not stopped by the repeated-denial breaker
    late = run.basket.algos[late_parent.parent_id]
    assert late.children_denied == 1
    assert [
        s
        for s in run.submitted
        if s.ts_event >= back and run.session.oms.orders[s.client_order_id].parent_id == late_parent.parent_id
    ]
    assert_complete(run)


async def test_ten_drops_in_a_minute_are_ten_incidents_one_notice_each_no_order_duplicated(
    market: MarketData, tmp_path: Path
) -> None:
    first = at(market, "10:00:02")
    outages = tuple((first + i * 6 * S, (1 + i % 3) * S) for i in range(10))

    def probe(run: Run) -> None:
        def repeat_down() -> None:  # an adapter that says "down" again during the same outage
            run.monitor.connected(False, "again")
            run.monitor.connected(False, "and again")

        run.session.clock.call_at(first + 500_000_000, repeat_down, "repeat")

    run = await run_basket(market, tmp_path, outages, during=probe)
    assert run.monitor.counters.incidents == 10
    assert len(run.monitor.incidents) == 10
    assert run.notified == list(range(1, 11))  # one notification per incident, none for the repeats
    assert run.monitor.counters.repeated_notices == 2
    assert run.adapter.injected["disconnect"] == 10
    for incident, (start, duration) in zip(run.monitor.incidents, outages, strict=True):
        assert incident.down_ns == start
        assert incident.resumed_ns == start + duration
        assert not [s for s in run.submitted if start <= s.ts_event < start + duration]
    cids = [s.client_order_id for s in run.submitted]
    assert len(cids) == len(set(cids))  # every client id sent once
    assert_complete(run)


async def test_a_drop_during_the_resync_keeps_trading_denied_until_a_clean_resync(
    market: MarketData, tmp_path: Path
) -> None:
    """The link comes back and drops again before the engine resynchronised: still one pause, a second
    incident, the algorithms resume only after the second reconnect's resync."""
    parents, positions = basket_for(market, 2, 1)
    config = ReplayConfig(cash=10**13, positions=positions, db_path=tmp_path / "j.db", synchronous="OFF")
    plan = FaultPlan(seed=2)
    session = await open_session(
        market, config, parents[0].start_ns, wrap=lambda e, c: FaultyAdapter(e, plan, c)
    )
    try:
        basket = Basket(session.ctx)
        for parent in parents:
            basket.add(parent)
        basket.start()
        linked = LinkedRun(session, basket.algos)
        monitor = linked.monitor
        await linked.run(at(market, "09:35:00"), lambda: False, expire=False)
        monitor.connected(False, "drop")
        assert all(a.paused for a in basket.algos.values())
        monitor.connected(True)
        monitor.connected(False, "drop again")  # before settle(): the resync never ran
        assert await monitor.settle() is False
        assert monitor.state is LinkState.DOWN
        assert all(a.paused for a in basket.algos.values())
        assert monitor.link.check(session.oms.orders[next(iter(session.oms.orders))]) == DISCONNECTED
        monitor.connected(True)
        assert await monitor.settle() is True
        assert monitor.counters.incidents == 2
        assert monitor.counters.resyncs == 1
        assert not any(a.paused for a in basket.algos.values())
    finally:
        await session.store.close()


async def test_a_polled_adapter_flag_drives_the_monitor(market: MarketData, tmp_path: Path) -> None:
    """Routes without a listener (``connected`` property only) are watched on the clock."""
    parents, positions = basket_for(market, 2, 1)
    config = ReplayConfig(cash=10**13, positions=positions, db_path=tmp_path / "p.db", synchronous="OFF")
    session = await open_session(market, config, parents[0].start_ns)
    try:

        class Flagged:
            def __init__(self) -> None:
                self.up = True

            @property
            def connected(self) -> bool:
                return self.up

        flag = Flagged()
        monitor = ConnectionMonitor(session.oms, {}, link=session.engine.link)
        assert attach_to_adapter(monitor, flag) == "poll"
        assert attach_to_adapter(monitor, object()) is None
        flag.up = False
        session.clock.step()
        assert state_of(monitor) is LinkState.DOWN
        flag.up = True
        session.clock.step()
        assert state_of(monitor) is LinkState.RESYNCING
        assert await monitor.settle() is True
        checker = LinkAwareInflightChecker(session.oms, session.oms.adapter, monitor)
        assert checker.next_due_ns() is None  # nothing in flight
        monitor.stop()
    finally:
        await session.store.close()


async def test_a_live_session_wires_the_monitor_to_a_route_that_reports_its_link(tmp_path: Path) -> None:
    """``open_live_session`` hooks the monitor to the adapter's listener; the resync runs as a task."""
    market = load_snapshots(DATA, symbols=["600258.SH"])
    day = market.trade_date
    clock = SimClock(shanghai_ns(day, "09:59"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**10)
    drop = shanghai_ns(day, "10:05")
    adapter = FaultyAdapter(exchange, FaultPlan(seed=0, outages=((drop, 30 * S),)), clock)
    process = ProcessClock(clock)
    session = await open_live_session(
        clock=process,
        adapter=adapter,
        feed=RecordedFeed(market, exchange, process),
        store_path=tmp_path / "live.db",
        account=Account(10**10),
        trading_day_start_ns=shanghai_ns(day, "00:00"),
        synchronous="NORMAL",
    )
    sent: list[int] = []
    session.bus.subscribe(OrderSubmitted, lambda e: sent.append(e.ts_event))
    parent = ParentOrder(
        parent_id="P1",
        symbol="600258.SH",
        side=Side.BUY,
        quantity=20_000,
        start_ns=shanghai_ns(day, "10:00"),
        end_ns=shanghai_ns(day, "10:15"),
    )
    monitor = session.connection
    assert monitor is not None
    await session.start_parents([parent])
    seen: list[LinkState] = []
    clock.call_at(drop + 10 * S, lambda: seen.append(monitor.state), "probe")
    while clock.step(until_ns=shanghai_ns(day, "10:20")):
        await monitor.settle()  # the task may not have had its turn yet on a virtual clock
        await session.oms.flush()
        await session.inflight.check()
    assert seen == [LinkState.DOWN]
    (incident,) = monitor.incidents
    assert incident.resumed_ns == drop + 30 * S
    assert not [t for t in sent if drop <= t < drop + 30 * S]
    assert session.basket.done
    assert sum(o.filled_quantity for o in session.oms.children_of("P1")) == 20_000
    await session.close()
