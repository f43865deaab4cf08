"""Seeded fault injection (RELIABILITY rule 9, B3/B4/B8): exact replay from the seed, and the OMS holding
its invariants under duplicated fills and lost acks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replay.test_replay_exchange import CALENDAR, DAY, LATENCY, SYM, at, tiny_day
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerDisconnected
from zhixing.engine.events import (
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    SubmitOrder,
)
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.store import StateStore
from zhixing.replay.data import MarketData
from zhixing.replay.exchange import SimExchange
from zhixing.replay.faults import FaultPlan, FaultyAdapter

Trace = list[tuple[int, str, str, str]]


def make_venue(plan: FaultPlan) -> tuple[SimClock, SimExchange, FaultyAdapter]:
    clock = SimClock(at("09:00:00"))
    exchange = SimExchange(
        MarketData(days={SYM: tiny_day()}, trade_date=DAY),
        clock,
        calendar=CALENDAR,
        latency_ns=LATENCY,
        cash=10**10,
    )
    return clock, exchange, FaultyAdapter(exchange, plan, clock)


def run_until(clock: SimClock, when: int) -> None:
    while clock.step(until_ns=when):
        pass
    clock.advance_to(max(when, clock.now_ns()))


def describe(event: OrderEvent) -> str:
    if isinstance(event, OrderFilled):
        return f"{event.trade_id}:{event.quantity}@{event.price}"
    if isinstance(event, OrderRejected):
        return event.reason
    return ""


async def scripted_scenario(plan: FaultPlan) -> tuple[Trace, dict[str, int]]:
    """A few orders: aggressive and resting buys, a rejected one, a cancel. Returns the delivered trace."""
    clock, _, adapter = make_venue(plan)
    trace: Trace = []

    def sink(event: OrderEvent) -> None:
        assert event.ts_init == clock.now_ns()
        trace.append((clock.now_ns(), type(event).__name__, event.client_order_id, describe(event)))

    adapter.bind(sink)
    script: list[tuple[str, str, int, int]] = [
        ("09:30:01", "A", 10020, 1000),  # takes two ask levels, rests the rest
        ("09:30:01", "B", 9990, 1000),  # rests, fills on trade-through
        ("09:30:02", "R", 10001, 100),  # off tick: rejected
        ("09:30:04", "C", 9900, 500),  # rests, later cancelled
    ]
    for when, cid, price, quantity in script:
        run_until(clock, at(when))
        order = Order(client_order_id=cid, symbol=SYM, side=Side.BUY, price=price, quantity=quantity)
        await adapter.submit(order)
    run_until(clock, at("09:30:05"))
    await adapter.cancel(Order(client_order_id="C", symbol=SYM, side=Side.BUY, price=9900, quantity=500))
    while clock.step():
        pass
    return trace, dict(adapter.injected)


def stormy(seed: int) -> FaultPlan:
    return FaultPlan(
        seed=seed,
        drop_ack=0.3,
        duplicate_fill=0.5,
        delay_ns_max=50_000_000,
        reorder=0.3,
        drop_reject_callback=0.5,
    )


async def test_clean_plan_is_transparent() -> None:
    trace, injected = await scripted_scenario(FaultPlan(seed=1))
    assert set(injected.values()) == {0}
    kinds = [kind for _, kind, _, _ in trace]
    assert "OrderAccepted" in kinds
    assert "OrderFilled" in kinds
    assert "OrderRejected" in kinds
    assert "OrderCanceled" in kinds


async def test_same_seed_replays_the_exact_same_delivered_sequence() -> None:
    first, injected_first = await scripted_scenario(stormy(7))
    second, injected_second = await scripted_scenario(stormy(7))
    assert first == second
    assert injected_first == injected_second
    assert sum(injected_first.values()) > 0


async def test_different_seeds_give_different_schedules() -> None:
    clean, _ = await scripted_scenario(FaultPlan(seed=0))
    traces = {tuple((await scripted_scenario(stormy(s)))[0]) for s in range(5)}
    assert len(traces) > 1
    assert tuple(clean) not in traces


async def test_global_random_is_never_touched() -> None:
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    await scripted_scenario(stormy(3))
    assert random.random() == expected


async def test_drop_reject_callback_drops_only_rejects() -> None:
    trace, injected = await scripted_scenario(FaultPlan(seed=2, drop_reject_callback=1.0))
    assert injected["drop_reject_callback"] == 1
    assert not [t for t in trace if t[1] == "OrderRejected"]
    assert [t for t in trace if t[1] == "OrderAccepted"]


def test_fault_plan_validates_probabilities() -> None:
    with pytest.raises(ValueError, match="drop_ack"):
        FaultPlan(seed=0, drop_ack=1.5)
    with pytest.raises(ValueError, match="delay_ns_max"):
        FaultPlan(seed=0, delay_ns_max=-1)


# ----------------------------------------------------------------------------------------- with the OMS
async def oms_run(tmp_path: Path, plan: FaultPlan) -> tuple[OrderManager, SimExchange, FaultyAdapter, Order]:
    clock, exchange, adapter = make_venue(plan)
    store = await StateStore.open(tmp_path / "journal.db")
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=adapter, store=store)
    await oms.open()
    run_until(clock, at("09:30:01"))
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=1000, price=10020))
    await oms.flush()
    while clock.step():
        await oms.flush()
    await oms.flush()
    await store.close()
    return oms, exchange, adapter, order


async def test_duplicated_fills_are_counted_and_never_double_counted(tmp_path: Path) -> None:
    oms, exchange, adapter, order = await oms_run(tmp_path, FaultPlan(seed=11, duplicate_fill=1.0))
    (report,) = await exchange.query_orders()
    trades = await exchange.query_trades()
    assert len(trades) >= 2
    assert adapter.injected["duplicate_fill"] == len(trades)
    assert oms.counters.duplicate_fills == len(trades)
    assert oms.counters.illegal_transitions == 0
    assert order.filled_quantity == report.filled_quantity == sum(t.quantity for t in trades) == 1000
    assert order.status is OrderStatus.FILLED
    assert oms.counters.overfill_alarms == 0


async def test_duplicate_of_the_completing_fill_counts_as_duplicate(tmp_path: Path) -> None:
    oms, exchange, _, _ = await oms_run(tmp_path, FaultPlan(seed=11, duplicate_fill=1.0))
    trades = await exchange.query_trades()
    assert oms.counters.illegal_transitions == 0
    assert oms.counters.duplicate_fills == len(trades)


async def test_fills_drive_the_order_to_filled_without_any_ack(tmp_path: Path) -> None:
    oms, exchange, adapter, order = await oms_run(tmp_path, FaultPlan(seed=5, drop_ack=1.0))
    assert adapter.injected["drop_ack"] == 1
    assert not [e for e in adapter.delivered if isinstance(e, OrderAccepted)]
    (report,) = await exchange.query_orders()
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == report.filled_quantity == 1000
    assert oms.counters.illegal_transitions == 0


async def test_stormy_wire_keeps_oms_consistent_with_the_exchange(tmp_path: Path) -> None:
    plan = FaultPlan(seed=42, duplicate_fill=0.7, delay_ns_max=30_000_000, reorder=0.4, drop_ack=0.5)
    oms, exchange, adapter, order = await oms_run(tmp_path, plan)
    (report,) = await exchange.query_orders()
    assert order.filled_quantity == report.filled_quantity
    assert order.status is report.status
    assert oms.counters.duplicate_fills <= adapter.injected["duplicate_fill"]
    assert sum(adapter.injected.values()) > 0
    assert oms.counters.overfill_alarms == 0


# ----------------------------------------------------------------------------------------- link outages
async def test_an_outage_loses_pushes_refuses_requests_and_repushes_the_days_trades() -> None:
    """A is sent at 09:30:01 and fills at once (two trades) and rests; B is sent at 09:30:01 and fills
    later on a trade-through. The link is down 09:30:01.5-09:30:30: what the broker pushes meanwhile is lost,
    requests raise, and at the reconnect the listener hears of it only after every trade was re-pushed."""
    down, up = at("09:30:01") + 500_000_000, at("09:30:30")
    clock, exchange, adapter = make_venue(FaultPlan(seed=1, outages=((down, up - down),)))
    heard: list[tuple[int, bool, int]] = []
    trace: list[OrderEvent] = []
    adapter.bind(trace.append)
    adapter.set_connection_listener(
        lambda connected, *_: heard.append((clock.now_ns(), connected, len(trace)))
    )
    run_until(clock, at("09:30:01"))
    await adapter.submit(Order(client_order_id="A", symbol=SYM, side=Side.BUY, price=10020, quantity=1000))
    await adapter.submit(Order(client_order_id="B", symbol=SYM, side=Side.BUY, price=9990, quantity=1000))
    run_until(clock, down + 1)
    assert not adapter.connected
    with pytest.raises(BrokerDisconnected):
        await adapter.submit(Order(client_order_id="C", symbol=SYM, side=Side.BUY, price=9990, quantity=100))
    with pytest.raises(BrokerDisconnected):
        await adapter.cancel(Order(client_order_id="B", symbol=SYM, side=Side.BUY, price=9990, quantity=1000))
    with pytest.raises(BrokerDisconnected):
        await adapter.query_orders()
    run_until(clock, up - 1)
    delivered_before_up = len(trace)
    run_until(clock, at("09:31:00"))
    assert adapter.connected
    assert adapter.injected["disconnect"] == 1
    assert adapter.refused_while_down == {"submit": 1, "cancel": 1, "query": 1}
    assert "C" not in {r.client_order_id for r in await exchange.query_orders()}  # nothing reached it
    trades = await exchange.query_trades()
    lost_fills = [t for t in trades if down <= t.ts_event < up]
    assert lost_fills  # B filled while the link was down
    assert adapter.lost_while_down >= len(lost_fills)
    assert adapter.repushed == len([t for t in trades if t.ts_event < up])
    # the re-push came before the "up" notice, and carried every trade of the day so far
    (_, went_down, _), (up_at, came_up, seen_at_up) = heard
    assert (went_down, came_up, up_at) == (False, True, up)
    repushed = [e for e in trace[delivered_before_up:seen_at_up] if isinstance(e, OrderFilled)]
    assert {e.trade_id for e in repushed} == {t.trade_id for t in trades if t.ts_event < up}


def status_of(order: Order) -> OrderStatus:
    return order.status


async def test_a_venue_cancel_reject_leaves_the_order_working(tmp_path: Path) -> None:
    clock, exchange, adapter = make_venue(FaultPlan(seed=3, cancel_reject=1.0))
    store = await StateStore.open(tmp_path / "journal.db")
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=adapter, store=store)
    await oms.open()
    run_until(clock, at("09:30:01"))
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=500, price=9900))
    await oms.flush()
    run_until(clock, at("09:30:02"))
    assert order.status is OrderStatus.ACCEPTED
    assert oms.cancel(order.client_order_id)
    await oms.flush()
    assert status_of(order) is OrderStatus.PENDING_CANCEL
    run_until(clock, at("09:30:03"))
    await store.close()
    assert adapter.injected["cancel_reject"] == 1
    assert status_of(order) is OrderStatus.ACCEPTED  # back where it was: the venue still works it
    (report,) = await exchange.query_orders()
    assert report.status is OrderStatus.ACCEPTED


def test_fault_plan_validates_outages() -> None:
    with pytest.raises(ValueError, match="outages"):
        FaultPlan(seed=0, outages=((10, 0),))
    with pytest.raises(ValueError, match="outages"):
        FaultPlan(seed=0, outages=((10, 5), (12, 5)))
    with pytest.raises(ValueError, match="cancel_reject"):
        FaultPlan(seed=0, cancel_reject=2.0)
