"""Broker answers older than our books (engine.freshness), through the real reconciliation, resync and
in-flight checks: a stale view never takes a quantity back or reopens an order, a difference is asked
again after the grace, and only one that persists across the re-queries halts."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import FakeBroker, passing_time
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerDisconnected
from zhixing.engine.events import FillReport, OrderStatusReport, PositionReport, SubmitOrder
from zhixing.engine.freshness import Difference, FreshnessTracker
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import HALT_REASON, recover, resync
from zhixing.engine.store import StateStore

T0 = 1_700_000_000_000_000_000
SYM = "600000.SH"
CASH = 10**10
S = OrderStatus


class ViewBroker(FakeBroker):
    """A ``FakeBroker`` whose answers to queries the test sets (its view, however old)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(clock)
        self.order_view: list[OrderStatusReport] = []
        self.trade_view: list[FillReport] = []
        self.position_view: dict[str, int] = {}
        self.queries = 0

    async def query_orders(self) -> list[OrderStatusReport]:
        self.queries += 1
        return list(self.order_view)

    async def query_trades(self) -> list[FillReport]:
        return list(self.trade_view)

    async def query_positions(self) -> list[PositionReport]:
        return [
            PositionReport(symbol=s, quantity=q, sellable=q, avg_cost=0)
            for s, q in self.position_view.items()
        ]


def report(order: Order, status: OrderStatus, filled: int) -> OrderStatusReport:
    return OrderStatusReport(
        client_order_id=order.client_order_id,
        broker_order_id=f"B{order.client_order_id}",
        symbol=order.symbol,
        side=order.side,
        price=order.price,
        quantity=order.quantity,
        filled_quantity=filled,
        status=status,
    )


def trade(order: Order, trade_id: str, quantity: int) -> FillReport:
    return FillReport(
        trade_id=trade_id,
        client_order_id=order.client_order_id,
        broker_order_id=f"B{order.client_order_id}",
        symbol=order.symbol,
        side=order.side,
        price=order.price,
        quantity=quantity,
        commission=0,
        stamp_duty=0,
        transfer_fee=0,
        ts_event=T0,
    )


async def engine(tmp_path: Path) -> tuple[SimClock, ViewBroker, OrderManager, StateStore]:
    clock = SimClock(T0)
    broker = ViewBroker(clock)
    store = await StateStore.open(tmp_path / "j.db")
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=broker, store=store, account=Account(CASH))
    await oms.open()
    return clock, broker, oms, store


async def working_buy(oms: OrderManager, broker: ViewBroker, quantity: int = 1000) -> Order:
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=quantity, price=10_000))
    await oms.flush()
    assert order.status is S.ACCEPTED  # the fake acks on submit
    return order


def later(clock: SimClock, ns: int) -> None:
    clock.advance_to(clock.now_ns() + ns)


async def test_a_stale_order_snapshot_after_a_fill_push_does_not_take_the_fill_back(tmp_path: Path) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    order = await working_buy(oms, broker)
    broker.fill(order.client_order_id, 400)  # the push
    # the broker's answer was taken before that fill
    broker.order_view = [report(order, S.ACCEPTED, 0)]
    result = await resync(oms, broker)
    assert result.ok
    assert oms.halted_reason is None
    assert order.filled_quantity == 400
    assert order.status is S.PARTIALLY_FILLED
    assert oms.account is not None
    assert oms.account.positions[SYM].quantity == 400
    assert result.differences == [f"order {order.client_order_id} filled: local=400 broker=0"]
    # asked again after the grace: the view has caught up, the difference settles
    checker = InflightChecker(oms, broker)
    assert checker.next_due_ns() == clock.now_ns() + oms.freshness.grace_ns
    later(clock, oms.freshness.grace_ns)
    broker.order_view = [report(order, S.PARTIALLY_FILLED, 400)]
    broker.trade_view = [trade(order, "T1", 400)]
    await checker.check()
    assert not oms.freshness
    assert oms.halted_reason is None
    assert order.filled_quantity == 400  # the trade the view lists is the push we had: applied once
    await store.close()


async def test_a_stale_position_after_a_buy_fill_is_asked_again_not_reverted(tmp_path: Path) -> None:
    """At a restart: the journal has the buy fill (position 1100), the broker's first answer is older."""
    clock, broker, oms, store = await engine(tmp_path)
    assert oms.account is not None
    oms.account.load_position(SYM, 1100)
    broker.position_view = {SYM: 1000}

    async def wait(until_ns: int) -> None:  # the grace passes; the broker's view catches up
        await passing_time(clock)(until_ns)
        broker.position_view = {SYM: 1100}

    result = await recover(oms, store, broker, trading_day_start_ns=T0 - 1, wait=wait)
    assert result.ok, result.mismatches
    assert oms.halted_reason is None
    assert result.requeries == 1
    assert oms.account.positions[SYM].quantity == 1100  # never taken back to the stale 1000
    assert clock.now_ns() == T0 + oms.freshness.grace_ns  # one grace, not more
    await store.close()


async def test_a_snapshot_showing_a_filled_order_as_working_does_not_reopen_it(tmp_path: Path) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    order = await working_buy(oms, broker)
    broker.fill(order.client_order_id, 1000)
    assert order.status is S.FILLED
    broker.order_view = [report(order, S.ACCEPTED, 0)]
    result = await resync(oms, broker)
    assert order.status is S.FILLED
    assert order.filled_quantity == 1000
    assert result.ok
    assert result.working_at_broker == []
    assert {d.what for d in oms.freshness.open} == {"filled", "status"}
    later(clock, oms.freshness.grace_ns)
    broker.order_view = [report(order, S.FILLED, 1000)]
    await InflightChecker(oms, broker).check()
    assert not oms.freshness
    assert oms.freshness.settled == 2
    assert oms.freshness.persisted == []
    await store.close()


async def test_a_real_persistent_difference_halts_after_the_grace_requeries_not_before(
    tmp_path: Path,
) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    alerts: list[tuple[str, str]] = []
    order = await working_buy(oms, broker)
    broker.fill(order.client_order_id, 400)
    broker.order_view = [report(order, S.ACCEPTED, 0)]  # and it stays so: the broker lost our fill
    checker = InflightChecker(oms, broker, on_alert=lambda t, b: alerts.append((t, b)))
    await resync(oms, broker)
    grace, answers = oms.freshness.grace_ns, oms.freshness.answers
    for n in range(2, answers + 1):
        later(clock, grace - 1)
        assert await checker.check() == 0
        assert broker.queries == n - 1
        later(clock, 1)
        await checker.check()
        assert broker.queries == n
        assert (oms.halted_reason is not None) is (n == answers)  # halted at the last answer, not before
    assert oms.halted_reason == HALT_REASON
    assert order.filled_quantity == 400  # the fill stays a fact
    assert checker.stats.persistent == [f"order {order.client_order_id} filled: local=400 broker=0"]
    assert len(alerts) == 1
    assert "local=400 broker=0" in alerts[0][1]
    await checker.check()  # asked again later: still halted, told once
    assert len(alerts) == 1
    await store.close()


async def test_a_cancel_confirmed_ahead_of_its_fill_row_waits_for_it_and_applies_it_once(
    tmp_path: Path,
) -> None:
    """The broker's answer says CANCELED with 400 filled, its trades list has only 300 of them: the end
    waits for the late row (the leaves stay reserved), which is then applied once, never doubled."""
    clock, broker, oms, store = await engine(tmp_path)
    order = await working_buy(oms, broker)
    broker.fill(order.client_order_id, 300)  # pushed as T1
    oms.cancel(order.client_order_id)
    await oms.flush()
    assert order.status is S.PENDING_CANCEL
    broker.order_view = [report(order, S.CANCELED, 400)]
    broker.trade_view = [trade(order, "T1", 300)]
    await resync(oms, broker)
    assert order.status is S.PENDING_CANCEL  # the end waits: 100 more shares are on their way
    assert order.leaves_quantity == 700
    assert oms.halted_reason is None
    later(clock, oms.freshness.grace_ns)
    broker.trade_view = [trade(order, "T1", 300), trade(order, "T2", 100)]
    await InflightChecker(oms, broker).check()
    assert order.status is S.CANCELED
    assert order.filled_quantity == 400
    assert not oms.freshness
    assert oms.account is not None
    assert oms.account.positions[SYM].quantity == 400
    # the same row pushed late changes nothing (trade id), a row beyond the order is an overfill alarm
    await resync(oms, broker)
    assert order.filled_quantity == 400
    assert oms.counters.duplicate_fills == 0
    broker.trade_view.append(trade(order, "T3", 601))
    await resync(oms, broker)
    assert order.filled_quantity == 400  # 400 + 601 > 1000: refused, the symbol halted
    assert oms.counters.overfill_alarms == 1
    assert SYM in oms.halted_symbols
    await store.close()


async def test_an_acknowledged_order_the_broker_stops_listing_halts_only_if_it_stays_unlisted(
    tmp_path: Path,
) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    order = await working_buy(oms, broker)
    broker.order_view = []  # a view from before it arrived
    result = await resync(oms, broker)
    assert result.ok
    assert result.differences == [f"order {order.client_order_id} listed: local=ACCEPTED broker=not listed"]
    checker = InflightChecker(oms, broker)
    later(clock, oms.freshness.grace_ns)
    broker.order_view = [report(order, S.ACCEPTED, 0)]
    await checker.check()
    assert not oms.freshness
    assert oms.halted_reason is None
    # the same with a broker that never lists it again: halted after the grace re-queries
    broker.order_view = []
    await resync(oms, broker)
    for _ in range(oms.freshness.answers - 1):
        later(clock, oms.freshness.grace_ns)
        await checker.check()
    assert oms.halted_reason == HALT_REASON
    await store.close()


def test_a_view_that_moves_on_behind_an_order_still_filling_is_not_stuck() -> None:
    """Each answer shows less than we hold, but more than we held when the difference was first seen:
    the broker is behind, not lost. It never persists, however many answers."""
    clock = SimClock(T0)
    tracker = FreshnessTracker(clock, grace_ns=1_000, answers=3)
    ours, theirs = 100, 0
    for _ in range(20):
        found = [Difference(key="order Z1", what="filled", local=ours, broker=theirs)]
        assert tracker.observe(["order Z1"], found) == []
        theirs, ours = ours, ours + 100
        clock.advance_to(clock.now_ns() + 1_000)
    # a broker that stops where it was persists after (answers - 1) graces
    stuck = [Difference(key="order Z1", what="filled", local=ours, broker=theirs)]
    for n in range(1, 4):
        assert tracker.observe(["order Z1"], stuck) == (stuck if n == 3 else [])
        clock.advance_to(clock.now_ns() + 1_000)


def test_answers_at_one_instant_count_once() -> None:
    clock = SimClock(T0)
    tracker = FreshnessTracker(clock, grace_ns=1_000, answers=2)
    diff = [Difference(key="position X", what="quantity", local=1, broker=0)]
    for _ in range(5):
        assert tracker.observe([], diff) == []
    clock.advance_to(T0 + 999)
    assert tracker.observe([], diff) == []  # two answers, but not a grace apart
    clock.advance_to(T0 + 1_000)
    assert tracker.observe([], diff) == diff


async def test_a_re_query_the_broker_leaves_unanswered_at_start_is_asked_again(tmp_path: Path) -> None:
    """The link drops while reconciliation asks again: the re-query is tried again after the grace (not
    called a mismatch, not given up on at once), and the answer that comes settles the difference."""
    clock, broker, oms, store = await engine(tmp_path)
    assert oms.account is not None
    oms.account.load_position(SYM, 1100)
    broker.position_view = {SYM: 1000}
    down = [True]

    async def flaky_orders() -> list[OrderStatusReport]:
        if broker.queries >= 1 and down[0]:
            down[0] = False
            broker.position_view = {SYM: 1100}
            raise BrokerDisconnected("link down")
        broker.queries += 1
        return []

    broker.query_orders = flaky_orders  # type: ignore[method-assign]
    result = await recover(oms, store, broker, trading_day_start_ns=T0 - 1, wait=passing_time(clock))
    assert result.ok, result.mismatches
    assert result.requeries == 1
    assert clock.now_ns() == T0 + 2 * oms.freshness.grace_ns  # one unanswered, one answered
    await store.close()
