"""The per-second cap shapes, it does not deny (issue 20): orders over it wait in a fair queue
(``engine.rate_queue``: round-robin across parents, FIFO within one) and go when the rolling second has
room; cancels keep their reserve and go first; an order queued past the bound is denied
``rate_queue_timeout`` with its reservation released; a cancel of a queued order sends nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from tests.fakes import World, make_world
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderDenied, SubmitOrder
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.rate_queue import FairQueue
from zhixing.engine.reasons import DenialCode
from zhixing.engine.risk_controls import SECOND_NS, RiskLimits

SYMBOL = "600000.SH"
T0 = shanghai_ns(date(2024, 3, 4), "10:00")
CAP = RiskLimits(max_messages_per_second=10, cancel_reserve_pct=0, duplicate_window_ns=0)


async def world_with(limits: RiskLimits = CAP) -> World:
    world = await make_world(T0, risk=limits)
    world.quotes.set(SYMBOL, bid=10_000, ask=10_010, last=10_000)
    return world


def buy(world: World, parent: str | None = None, price: int = 10_000) -> Order:
    order = world.oms.submit(
        SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=price, parent_id=parent)
    )
    assert order.status is OrderStatus.INITIALIZED, order.reason  # accepted: never denied for the rate
    return order


def order(cid: str, parent: str | None) -> Order:
    return Order(
        client_order_id=cid, symbol=SYMBOL, side=Side.BUY, price=10_000, quantity=100, parent_id=parent
    )


# ---------------------------------------------------------------------------------------- the queue
def test_the_queue_takes_parents_in_turn_and_each_parent_first_in_first_out() -> None:
    queue = FairQueue()
    a1, a2, a3, b1, c1 = (
        order("a1", "A"),
        order("a2", "A"),
        order("a3", "A"),
        order("b1", "B"),
        order("c1", None),
    )
    for o in (a1, a2, a3, b1, c1):
        queue.push(o, T0)
    assert [queue.pop(T0).client_order_id for _ in range(5)] == ["a1", "b1", "c1", "a2", "a3"]
    assert len(queue) == 0


def test_an_order_without_a_parent_is_its_own_lane() -> None:
    queue = FairQueue()
    for cid in ("x", "y"):
        queue.push(order(cid, None), T0)
    queue.push(order("a1", "A"), T0)
    assert [queue.pop(T0).client_order_id for _ in range(3)] == ["x", "y", "a1"]


def test_expired_takes_out_the_orders_past_the_bound_oldest_first() -> None:
    queue = FairQueue()
    queue.push(order("a1", "A"), T0)
    queue.push(order("b1", "B"), T0 + 1)
    queue.push(order("a2", "A"), T0 + 2 * SECOND_NS)
    out = queue.expired(T0 + 2 * SECOND_NS, 2 * SECOND_NS - 1)
    assert [o.client_order_id for o in out] == ["a1", "b1"]
    assert [queue.pop(T0 + 3 * SECOND_NS).client_order_id] == ["a2"]
    assert queue.counters.timed_out == 2


# ---------------------------------------------------------------------------------------- in the OMS
async def test_an_order_over_the_cap_waits_and_goes_when_the_window_has_room() -> None:
    world = await world_with()
    orders = [buy(world, "P", price=10_000 - 10 * i) for i in range(15)]
    await world.oms.flush()
    assert len(world.broker.submitted) == 10
    assert all(o.status is OrderStatus.INITIALIZED for o in orders[10:])  # queued: working, not denied
    await world.run_until(T0 + SECOND_NS)
    assert world.broker.submitted == orders  # first in, first out within the parent
    assert world.broker.submit_times[10:] == [T0 + SECOND_NS] * 5
    assert world.risk is not None
    report = world.risk.report()
    assert report["denials"] == {}
    assert report["orders_queued"] == 5
    assert report["queued_sent"] == 5
    assert report["queued_now"] == 0
    assert report["max_queue_wait_ns"] == SECOND_NS
    assert report["peak_per_second"] == 10


async def test_a_parent_with_a_single_order_goes_within_one_window_of_one_with_a_hundred_queued() -> None:
    limits = replace(CAP, max_active_orders=0)
    world = await world_with(limits)
    many = [buy(world, "BIG", price=10_000 - i) for i in range(100)]
    await world.oms.flush()
    single = buy(world, "SMALL", price=9_500)
    await world.oms.flush()
    assert single.status is OrderStatus.INITIALIZED  # the window is full of BIG's orders
    await world.run_until(T0 + SECOND_NS)
    ids = [o.client_order_id for o in world.broker.submitted]
    sent_at = dict(zip(ids, world.broker.submit_times, strict=True))
    assert sent_at[single.client_order_id] == T0 + SECOND_NS  # in the very next window
    assert [o for o in world.broker.submitted if o.parent_id == "BIG"] == many[: len(sent_at) - 1]


async def test_a_cancel_goes_before_every_queued_order() -> None:
    world = await world_with()  # no cancel reserve: only the order of sending keeps the cancel first
    sent = [buy(world, "P", price=10_000 - 10 * i) for i in range(10)]
    queued = [buy(world, "Q", price=9_500 - 10 * i) for i in range(12)]
    await world.oms.flush()
    assert world.oms.cancel(sent[0].client_order_id)
    await world.oms.flush()
    assert world.broker.cancel_requests == []  # held: the window is full
    await world.run_until(T0 + SECOND_NS)
    assert world.broker.cancel_requests == [sent[0].client_order_id]
    assert world.broker.cancel_times == [T0 + SECOND_NS]
    # the cancel took one of the ten places of the new window; nine queued orders took the rest
    second_window = [t for t in world.broker.submit_times if t == T0 + SECOND_NS]
    assert len(second_window) == 9
    await world.run_until(T0 + 2 * SECOND_NS)
    assert [o for o in world.broker.submitted if o.parent_id == "Q"] == queued


async def test_an_order_queued_past_the_bound_is_denied_and_its_reservation_released() -> None:
    limits = replace(CAP, rate_queue_timeout_ns=2 * SECOND_NS)
    world = await world_with(limits)
    denied: list[OrderDenied] = []
    world.bus.subscribe(OrderDenied, denied.append)
    orders = [buy(world, "P", price=10_000 - 10 * i) for i in range(25)]
    await world.oms.flush()
    await world.run_until(T0 + 3 * SECOND_NS)
    assert world.broker.submitted == orders[:20]  # 10 at T0, 10 at T0 + 1 s
    late = orders[20:]
    assert [o.status for o in late] == [OrderStatus.DENIED] * 5  # at T0 + 2 s: 2 s in the queue
    assert [o.denial for o in late] == [DenialCode.RATE_QUEUE_TIMEOUT] * 5
    assert [e.client_order_id for e in denied] == [o.client_order_id for o in late]
    assert all(e.ts_event == T0 + 2 * SECOND_NS for e in denied)
    assert world.store.orders[late[0].client_order_id].status is OrderStatus.DENIED  # journaled
    assert world.risk is not None
    assert world.risk.report()["queue_timeouts"] == 5
    assert world.risk.report()["denials"] == {"rate_queue_timeout": 5}


async def test_a_cancel_of_a_queued_order_sends_nothing_and_counts_no_message() -> None:
    world = await world_with()
    orders = [buy(world, "P", price=10_000 - 10 * i) for i in range(12)]
    await world.oms.flush()
    assert world.risk is not None
    before = world.risk.report()["messages_today"]
    assert world.oms.cancel(orders[11].client_order_id)
    assert orders[11].status is OrderStatus.CANCELED
    assert not world.oms.cancel(orders[11].client_order_id)  # idempotent
    await world.run_until(T0 + 2 * SECOND_NS)
    assert world.broker.cancel_requests == []
    assert orders[11] not in world.broker.submitted
    assert world.broker.submitted == orders[:11]
    report = world.risk.report()
    assert report["messages_today"] == before + 1  # orders[10] only
    assert report["queued_cancelled"] == 1


async def test_the_day_cap_still_denies_and_counts_the_queued_orders() -> None:
    limits = replace(CAP, max_messages_per_day=15, cancel_reserve_pct=0)
    world = await world_with(limits)
    orders = [
        world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=10_000 - i))
        for i in range(16)
    ]
    assert [o.status for o in orders[:15]] == [OrderStatus.INITIALIZED] * 15  # 10 to send, 5 to queue
    assert orders[15].denial is DenialCode.RATE_PER_DAY  # the day does not refill: waiting cannot help


async def test_a_halt_while_queued_denies_the_queued_orders_instead_of_sending_them() -> None:
    world = await world_with()
    orders = [buy(world, "P", price=10_000 - 10 * i) for i in range(13)]
    await world.oms.flush()
    world.oms.halt("operator")
    await world.run_until(T0 + SECOND_NS)
    assert world.broker.submitted == orders[:10]
    assert [o.denial for o in orders[10:]] == [DenialCode.HALTED] * 3
