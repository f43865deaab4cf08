"""In-flight checks: unanswered orders are asked about, resolved by the broker's truth or, after a
bounded number of queries, by policy — and never resent (RELIABILITY B1, B8, C4)."""

from __future__ import annotations

from pathlib import Path

from tests.engine.test_oms import SYMBOL, RecordingBroker, buy, make_oms
from tests.replay.test_replay_exchange import SYM, at
from tests.replay.test_replay_faults import make_venue, run_until
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderStatusReport, SubmitOrder
from zhixing.engine.inflight import CANCEL_UNCONFIRMED, NO_RESPONSE, InflightChecker
from zhixing.engine.oms import OrderManager
from zhixing.engine.store import StateStore
from zhixing.replay.faults import FaultPlan

SECOND = 1_000_000_000


class AnsweringBroker(RecordingBroker):
    """Takes orders, never pushes anything, but answers queries with what the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[OrderStatusReport] = []

    async def query_orders(self) -> list[OrderStatusReport]:
        return list(self.reports)


def report(cid: str, status: OrderStatus, filled: int = 0) -> OrderStatusReport:
    return OrderStatusReport(
        client_order_id=cid,
        broker_order_id="B-" + cid,
        symbol=SYMBOL,
        side=Side.BUY,
        price=10_000,
        quantity=1000,
        filled_quantity=filled,
        status=status,
    )


def advance(oms: OrderManager, seconds: int) -> None:
    clock = oms.clock
    assert isinstance(clock, SimClock)
    clock.advance_to(clock.now_ns() + seconds * SECOND)


async def test_silent_broker_order_is_resolved_by_policy_after_bounded_queries(tmp_path: Path) -> None:
    broker = AnsweringBroker()
    oms, store, _ = await make_oms(tmp_path, broker)
    order = oms.submit(buy())
    await oms.flush()
    checker = InflightChecker(oms, broker, timeout_ns=5 * SECOND, max_queries=3)
    assert await checker.check() == 0  # not overdue yet: nothing is asked
    assert checker.stats.checks == 0
    for _ in range(2):
        advance(oms, 5)
        assert await checker.check() == 0
        assert order.status is OrderStatus.SUBMITTED  # unknown outcome stays in flight
    advance(oms, 5)
    assert await checker.check() == 1
    assert order.status is OrderStatus.REJECTED
    assert order.reason == NO_RESPONSE
    assert not order.venue_confirmed  # policy-resolved, flagged
    assert broker.submitted == [order.client_order_id]  # never resent
    assert checker.stats.resolved_by_policy == [order.client_order_id]
    assert order.client_order_id not in oms.in_flight
    await store.close()


async def test_lost_ack_is_found_by_query(tmp_path: Path) -> None:
    broker = AnsweringBroker()
    oms, store, _ = await make_oms(tmp_path, broker)
    order = oms.submit(buy())
    await oms.flush()
    broker.reports = [report(order.client_order_id, OrderStatus.PARTIALLY_FILLED, filled=0)]
    advance(oms, 6)
    checker = InflightChecker(oms, broker, timeout_ns=5 * SECOND)
    assert await checker.check() == 1
    assert order.status is OrderStatus.ACCEPTED
    assert order.broker_order_id == "B-" + order.client_order_id
    assert checker.stats.resolved_by_query == 1
    await store.close()


async def test_unanswered_cancel_is_released_after_bounded_queries_without_a_cancel_storm(
    tmp_path: Path,
) -> None:
    broker = AnsweringBroker()
    oms, store, _ = await make_oms(tmp_path, broker)
    order = oms.submit(buy())
    await oms.flush()
    broker.reports = [report(order.client_order_id, OrderStatus.ACCEPTED)]
    checker = InflightChecker(oms, broker, timeout_ns=5 * SECOND, max_queries=2)
    advance(oms, 6)
    await checker.check()
    assert order.status is OrderStatus.ACCEPTED
    oms.cancel(order.client_order_id)
    await oms.flush()
    assert order.status is OrderStatus.PENDING_CANCEL
    for _ in range(2):
        advance(oms, 6)
        await checker.check()
    assert order.status is OrderStatus.ACCEPTED  # back to where it was: its owner may decide again
    assert order.reason == CANCEL_UNCONFIRMED
    assert broker.cancelled == [order.client_order_id]  # one cancel, bounded queries
    await store.close()


async def test_reject_without_a_callback_is_found_at_the_venue(tmp_path: Path) -> None:
    """B8 on the simulated exchange: the venue rejects (no cash there), the callback is dropped."""
    clock, exchange, adapter = make_venue(FaultPlan(seed=1, drop_reject_callback=1.0))
    exchange._account.cash = 0  # the venue has no cash: it will reject the buy
    store = await StateStore.open(tmp_path / "journal.db")
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=adapter, store=store)
    await oms.open()
    run_until(clock, at("09:30:01"))
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=1000, price=10020))
    await oms.flush()
    run_until(clock, at("09:30:02"))
    assert adapter.injected["drop_reject_callback"] == 1
    assert order.status is OrderStatus.SUBMITTED  # the reject never arrived
    run_until(clock, at("09:30:10"))
    checker = InflightChecker(oms, adapter, timeout_ns=5 * SECOND)
    assert await checker.check() == 1
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "insufficient_cash"
    assert order.venue_confirmed
    await store.close()
