"""Adversary round 2, class "broker answers that lag or contradict" (issue 13, item 3).

A scripted broker on a SimClock, the real OrderManager on a real SQLite journal, the real in-flight
checker / connection monitor / resync. Each query answers what the test scripted, or raises.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.virtual_time import at
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.connection import ConnectionMonitor, LinkAwareInflightChecker, LinkGate, LinkState
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderStatusReport,
    PositionReport,
    SubmitOrder,
)
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.store import StateStore

NS = 1_000_000_000
SYM = "600000.SH"


class ScriptedBroker:
    name = "scripted"

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.sink = None
        self.orders: dict[str, OrderStatusReport] = {}
        self.trades: list[FillReport] = []
        self.positions: dict[str, int] = {}
        self.raise_on: dict[str, BaseException] = {}
        self.queries: list[tuple[str, int]] = []

    def bind(self, sink: Any) -> None:
        self.sink = sink

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, order: Any) -> None:
        return None

    async def cancel(self, order: Any) -> None:
        return None

    def _q(self, what: str) -> None:
        self.queries.append((what, self.clock.now_ns()))
        exc = self.raise_on.get(what)
        if exc is not None:
            raise exc

    async def query_account(self) -> AccountReport:
        self._q("account")
        return AccountReport(cash=0, frozen=0, total_asset=0, market_value=0)

    async def query_positions(self) -> list[PositionReport]:
        self._q("positions")
        return [
            PositionReport(symbol=s, quantity=q, sellable=q, avg_cost=0) for s, q in self.positions.items()
        ]

    async def query_orders(self) -> list[OrderStatusReport]:
        self._q("orders")
        return list(self.orders.values())

    async def query_trades(self) -> list[FillReport]:
        self._q("trades")
        return list(self.trades)


async def _engine(tmp_path: Path) -> tuple[SimClock, ScriptedBroker, StateStore, OrderManager]:
    clock = SimClock(at("10:00"))
    broker = ScriptedBroker(clock)
    store = await StateStore.open(tmp_path / "j.db")
    account = Account(10_000_000_000)
    oms = OrderManager(
        clock=clock, bus=EventBus(), adapter=broker, store=store, account=account, checks=[LinkGate().check]
    )
    await oms.open()
    return clock, broker, store, oms


def _link(oms: OrderManager) -> LinkGate:
    """The broker link's check the OrderManager was built with (a ConnectionMonitor moves it)."""
    return next(c.__self__ for c in oms.checks if isinstance(getattr(c, "__self__", None), LinkGate))


async def _working_order(
    clock: SimClock, broker: ScriptedBroker, oms: OrderManager, qty: int = 1000
) -> Order:
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, price=10_000, quantity=qty))
    await oms.flush()
    now = clock.now_ns()
    oms.on_event(
        OrderAccepted(
            ts_event=now, ts_init=now, client_order_id=order.client_order_id, symbol=SYM, broker_order_id="B1"
        )
    )
    await oms.flush()
    broker.orders[order.client_order_id] = OrderStatusReport(
        client_order_id=order.client_order_id,
        broker_order_id="B1",
        symbol=SYM,
        side=Side.BUY,
        price=10_000,
        quantity=qty,
        filled_quantity=0,
        status=OrderStatus.ACCEPTED,
    )
    return order


async def test_was_finding_a_resync_whose_query_raises_a_non_broker_error_is_retried_not_paused_for_good(
    tmp_path: Path,
) -> None:
    """The link drops and comes back; the resync's trade query raises a ValueError (a malformed row:
    the QMT adapter converts rows outside its BrokerError wrapper, ``int(xo.traded_volume)`` on None).
    The resync task dies ("task_failed" in the log) and the monitor stays RESYNCING: no retry is armed,
    nobody is told, and every new order is denied as "link down" for the rest of the day. The rule:
    re-query after a grace period; the operator is told what the engine cannot resolve."""
    clock, broker, store, oms = await _engine(tmp_path)
    await _working_order(clock, broker, oms)
    monitor = ConnectionMonitor(oms, {}, link=_link(oms), auto_resync=True)
    monitor.connected(False, "test")
    broker.raise_on["trades"] = ValueError("invalid literal for int() with base 10: 'None'")
    monitor.connected(True)
    for _ in range(5):
        await asyncio.sleep(0)
    del broker.raise_on["trades"]  # the next answer would be fine
    # a minute later (the monitor's retry is 'RESYNC_RETRY_NS'): nothing asked again, still not up
    while clock.step(until_ns=at("10:01")):
        for _ in range(5):
            await asyncio.sleep(0)
    asked = [t for w, t in broker.queries if w == "orders"]
    await store.close()
    assert monitor.state is LinkState.UP or len(asked) > 1, (
        f"resync never retried after a non-BrokerError: state {monitor.state}, order queries {len(asked)}"
    )


async def test_was_finding_an_in_flight_check_whose_query_raises_a_non_broker_error_stays_in_the_check(
    tmp_path: Path,
) -> None:
    """The same malformed answer during a routine in-flight check: ``LinkAwareInflightChecker`` catches
    only BrokerError, so the exception leaves ``LiveSession.poll`` and with it ``zhixing run``'s drive
    loop: one bad row ends the trading day (the run closes and exits). It should count as an unanswered
    query (asked again after the grace), like a BrokerError."""
    clock, broker, store, oms = await _engine(tmp_path)
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, price=10_000, quantity=1000))
    await oms.flush()  # SUBMITTED, no ack: due for an in-flight check after the timeout
    monitor = ConnectionMonitor(oms, {}, link=_link(oms))
    checker = LinkAwareInflightChecker(oms, broker, monitor, timeout_ns=5 * NS)
    clock.advance_to(clock.now_ns() + 6 * NS)
    broker.raise_on["orders"] = TypeError("int() argument must be a string, not 'NoneType'")
    try:
        await checker.check()
        escaped = None
    except Exception as exc:
        escaped = exc
    await store.close()
    assert order.client_order_id in oms.in_flight
    assert escaped is None, f"the in-flight check let {escaped!r} escape (the run loop dies with it)"


async def test_held_a_query_that_raises_half_way_changes_nothing(tmp_path: Path) -> None:
    """Orders answered (showing a fill), then the trades query raises BrokerError: nothing is applied
    from the half answer, the order is asked again later."""
    clock, broker, store, oms = await _engine(tmp_path)
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, price=10_000, quantity=1000))
    await oms.flush()
    monitor = ConnectionMonitor(oms, {}, link=_link(oms))
    checker = LinkAwareInflightChecker(oms, broker, monitor, timeout_ns=5 * NS)
    broker.orders[order.client_order_id] = OrderStatusReport(
        client_order_id=order.client_order_id,
        broker_order_id="B1",
        symbol=SYM,
        side=Side.BUY,
        price=10_000,
        quantity=1000,
        filled_quantity=400,
        status=OrderStatus.PARTIALLY_FILLED,
    )
    broker.raise_on["trades"] = BrokerError("link")
    clock.advance_to(clock.now_ns() + 6 * NS)
    await checker.check()
    assert order.status is OrderStatus.SUBMITTED
    assert order.filled_quantity == 0
    del broker.raise_on["trades"]
    broker.trades.append(
        FillReport(
            trade_id="T1",
            client_order_id=order.client_order_id,
            broker_order_id="B1",
            symbol=SYM,
            side=Side.BUY,
            price=10_000,
            quantity=400,
            commission=0,
            stamp_duty=0,
            transfer_fee=0,
            ts_event=clock.now_ns(),
        )
    )
    clock.advance_to(clock.now_ns() + 6 * NS)
    await checker.check()
    await oms.flush()
    await store.close()
    assert order.filled_quantity == 400


async def test_held_a_snapshot_fill_then_the_same_fill_pushed_counts_once(tmp_path: Path) -> None:
    """The broker's trade list has a fill we never got pushed (its view is newer than ours): applied
    by the check; the push arrives afterwards with the same trade id: a duplicate, position +400 once."""
    clock, broker, store, oms = await _engine(tmp_path)
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, price=10_000, quantity=1000))
    await oms.flush()
    monitor = ConnectionMonitor(oms, {}, link=_link(oms))
    checker = LinkAwareInflightChecker(oms, broker, monitor, timeout_ns=5 * NS)
    cid = order.client_order_id
    broker.orders[cid] = OrderStatusReport(
        client_order_id=cid,
        broker_order_id="B1",
        symbol=SYM,
        side=Side.BUY,
        price=10_000,
        quantity=1000,
        filled_quantity=400,
        status=OrderStatus.PARTIALLY_FILLED,
    )
    broker.trades.append(
        FillReport(
            trade_id="T1",
            client_order_id=cid,
            broker_order_id="B1",
            symbol=SYM,
            side=Side.BUY,
            price=10_000,
            quantity=400,
            commission=0,
            stamp_duty=0,
            transfer_fee=0,
            ts_event=clock.now_ns(),
        )
    )
    clock.advance_to(clock.now_ns() + 6 * NS)
    await checker.check()
    now = clock.now_ns()
    oms.on_event(
        OrderFilled(
            ts_event=now,
            ts_init=now,
            client_order_id=cid,
            symbol=SYM,
            trade_id="T1",
            side=Side.BUY,
            price=10_000,
            quantity=400,
        )
    )
    await oms.flush()
    await store.close()
    assert order.filled_quantity == 400
    assert oms.account is not None
    assert oms.account.positions[SYM].quantity == 400


async def test_held_a_pushed_status_regression_canceled_to_accepted_is_refused(tmp_path: Path) -> None:
    clock, broker, store, oms = await _engine(tmp_path)
    order = await _working_order(clock, broker, oms)
    now = clock.now_ns()
    oms.on_event(  # the broker says how much was filled (0): the end is not held for late fill rows
        OrderCanceled(
            ts_event=now, ts_init=now, client_order_id=order.client_order_id, symbol=SYM, filled_qty=0
        )
    )
    oms.on_event(
        OrderAccepted(
            ts_event=now, ts_init=now, client_order_id=order.client_order_id, symbol=SYM, broker_order_id="B1"
        )
    )
    await oms.flush()
    await store.close()
    assert order.status is OrderStatus.CANCELED
    assert oms.account is not None
    assert oms.account.is_reserved(order.client_order_id) is False
