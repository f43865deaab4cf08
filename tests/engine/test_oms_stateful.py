"""Stateful property test of the OrderManager against a scripted broker (RELIABILITY I1-I4, B2-B4, B9,
C1-C3, A1-A4).

The broker keeps its own truth per client order id and never delivers an event by itself: every event
it produces waits in a pending list, and the rules decide when (in order, out of order, twice, or only
after a crash of the engine) it reaches the OrderManager's sink. A crash drops the OrderManager without
committing what it staged since its last flush; the restart opens a new OrderManager + Account on the
same journal file and runs ``recover`` against the same broker.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zhixing.engine.account import Account
from zhixing.engine.broker import EventSink
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import TERMINAL_STATUSES, OrderStatus, Side
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    PositionReport,
    SubmitOrder,
)
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import recover
from zhixing.engine.store import StateStore

T = TypeVar("T")
S = OrderStatus

T0 = 1_750_000_000 * 10**9
DAY_START = T0 - 1  # before every order of the run
CASH = 10**13  # milli-yuan: ample for any sequence of buys here
PRICE = 10_000
SYMBOLS = ("600000.SH", "000001.SZ")
STEP_NS = 1_000_000


@dataclass
class BrokerOrder:
    cid: str
    broker_order_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    filled: int = 0
    status: OrderStatus = S.SUBMITTED  # received, not yet acknowledged
    cancel_requested: bool = False
    trades: list[FillReport] = field(default_factory=list)

    @property
    def leaves(self) -> int:
        return self.quantity - self.filled

    @property
    def working(self) -> bool:
        return self.status in (S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED)


class ScriptedBroker:
    """A BrokerAdapter whose events are queued, never delivered until a rule says so."""

    name = "scripted"

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.sink: EventSink | None = None
        self.orders: dict[str, BrokerOrder] = {}
        self.submits: dict[str, int] = {}  # client order id -> times submitted (I1)
        self.cancel_requests: dict[str, int] = {}
        self.pending: list[OrderEvent] = []
        self.fill_events: list[OrderFilled] = []  # every fill produced today, for replays
        self._seq = 0

    # ---------------------------------------------------------------------------- BrokerAdapter
    def bind(self, sink: EventSink) -> None:
        self.sink = sink

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: Order) -> None:
        cid = order.client_order_id
        self.submits[cid] = self.submits.get(cid, 0) + 1
        if cid not in self.orders:
            self._seq += 1
            self.orders[cid] = BrokerOrder(
                cid=cid,
                broker_order_id=f"B{self._seq}",
                symbol=order.symbol,
                side=order.side,
                price=order.price,
                quantity=order.quantity,
            )

    async def cancel(self, order: Order) -> None:
        cid = order.client_order_id
        self.cancel_requests[cid] = self.cancel_requests.get(cid, 0) + 1
        if cid in self.orders:
            self.orders[cid].cancel_requested = True

    async def query_account(self) -> AccountReport:
        # every fill is at PRICE and free of fees here, so cash is the start minus what was bought
        cash = CASH - sum(q * PRICE for q in self.positions().values())
        return AccountReport(cash=cash, frozen=0, total_asset=CASH, market_value=CASH - cash)

    async def query_positions(self) -> list[PositionReport]:
        return [
            PositionReport(symbol=s, quantity=q, sellable=0, avg_cost=PRICE)
            for s, q in self.positions().items()
        ]

    async def query_orders(self) -> list[OrderStatusReport]:
        return [
            OrderStatusReport(
                client_order_id=o.cid,
                broker_order_id=o.broker_order_id,
                symbol=o.symbol,
                side=o.side,
                price=o.price,
                quantity=o.quantity,
                filled_quantity=o.filled,
                status=o.status,
                reason="venue_reject" if o.status is S.REJECTED else "",
            )
            for o in self.orders.values()
        ]

    async def query_trades(self) -> list[FillReport]:
        return [t for o in self.orders.values() for t in o.trades]

    # ---------------------------------------------------------------------------- truth
    def positions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.orders.values():
            if o.filled:
                sign = 1 if o.side is Side.BUY else -1
                out[o.symbol] = out.get(o.symbol, 0) + sign * o.filled
        return {s: q for s, q in out.items() if q}

    def _now(self) -> int:
        return self.clock.now_ns()

    def ack(self, o: BrokerOrder) -> None:
        o.status = S.ACCEPTED
        now = self._now()
        self.pending.append(
            OrderAccepted(
                ts_event=now,
                ts_init=now,
                client_order_id=o.cid,
                symbol=o.symbol,
                broker_order_id=o.broker_order_id,
            )
        )

    def reject(self, o: BrokerOrder) -> None:
        o.status = S.REJECTED
        now = self._now()
        self.pending.append(
            OrderRejected(
                ts_event=now, ts_init=now, client_order_id=o.cid, symbol=o.symbol, reason="venue_reject"
            )
        )

    def fill(self, o: BrokerOrder, quantity: int) -> None:
        assert 0 < quantity <= o.leaves
        self._seq += 1
        now = self._now()
        trade_id = f"T{self._seq}"
        o.filled += quantity
        o.status = S.FILLED if o.filled == o.quantity else S.PARTIALLY_FILLED
        o.trades.append(
            FillReport(
                trade_id=trade_id,
                client_order_id=o.cid,
                broker_order_id=o.broker_order_id,
                symbol=o.symbol,
                side=o.side,
                price=o.price,
                quantity=quantity,
                commission=0,
                stamp_duty=0,
                transfer_fee=0,
                ts_event=now,
            )
        )
        event = OrderFilled(
            ts_event=now,
            ts_init=now,
            client_order_id=o.cid,
            symbol=o.symbol,
            trade_id=trade_id,
            side=o.side,
            price=o.price,
            quantity=quantity,
        )
        self.fill_events.append(event)
        self.pending.append(event)

    def cancel_ack(self, o: BrokerOrder) -> None:
        o.status = S.CANCELED
        now = self._now()
        # the broker's filled count at the end: the pushes may be delivered in any order, so the end
        # may overtake the rows of its last fills (the OrderManager holds it until they are in)
        self.pending.append(
            OrderCanceled(
                ts_event=now, ts_init=now, client_order_id=o.cid, symbol=o.symbol, filled_qty=o.filled
            )
        )

    def cancel_reject(self, o: BrokerOrder) -> None:
        now = self._now()
        self.pending.append(
            OrderCancelRejected(
                ts_event=now, ts_init=now, client_order_id=o.cid, symbol=o.symbol, reason="already_completed"
            )
        )

    def deliver(self, index: int = 0) -> None:
        event = self.pending.pop(index)
        assert self.sink is not None
        self.sink(event)


@settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
class OmsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="zhixing-oms-stateful-"))
        self.db = self.dir / "journal.db"
        self.clock = SimClock(T0)
        self.broker = ScriptedBroker(self.clock)
        self.connected = True
        self.restarts = 0
        self.store: StateStore | None = None
        self.oms: OrderManager | None = None
        self.account: Account | None = None
        self.prev_filled: dict[str, int] = {}
        self._start(Account(CASH))

    # ---------------------------------------------------------------------------- plumbing
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def _start(self, account: Account) -> None:
        self.store = self.run(StateStore.open(self.db))
        self.account = account
        self.oms = OrderManager(
            clock=self.clock, bus=EventBus(), adapter=self.broker, store=self.store, account=account
        )
        self.run(self.oms.open())

    def teardown(self) -> None:
        try:
            if self.store is not None:
                self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def tick(self) -> None:
        self.clock.advance_to(self.clock.now_ns() + STEP_NS)

    @property
    def o(self) -> OrderManager:
        assert self.oms is not None
        return self.oms

    def _pick(self, items: list[T], index: int) -> T:
        return items[index % len(items)]

    def _broker_orders(self, pred: Any) -> list[BrokerOrder]:
        return [o for o in self.broker.orders.values() if pred(o)]

    # ---------------------------------------------------------------------------- commands
    @rule(
        symbol=st.sampled_from(SYMBOLS),
        lots=st.integers(min_value=1, max_value=10),
        flush=st.booleans(),
    )
    def submit(self, symbol: str, lots: int, flush: bool) -> None:
        self.tick()
        order = self.o.submit(SubmitOrder(symbol=symbol, side=Side.BUY, quantity=lots * 100, price=PRICE))
        if self.o.halted_reason is None:
            assert order.status is S.INITIALIZED, order.reason
        if flush:
            self.run(self.o.flush())

    @rule()
    def flush(self) -> None:
        self.run(self.o.flush())

    @precondition(
        lambda self: any(
            not o.is_terminal and o.status is not S.PENDING_CANCEL for o in self.o.orders.values()
        )
    )
    @rule(index=st.integers(min_value=0, max_value=1000))
    def cancel_request(self, index: int) -> None:
        self.tick()
        candidates = [
            o for o in self.o.orders.values() if not o.is_terminal and o.status is not S.PENDING_CANCEL
        ]
        order = self._pick(candidates, index)
        self.o.cancel(order.client_order_id)
        self.run(self.o.flush())

    # ---------------------------------------------------------------------------- the broker acts
    @precondition(lambda self: any(o.status is S.SUBMITTED for o in self.broker.orders.values()))
    @rule(index=st.integers(min_value=0, max_value=1000))
    def ack(self, index: int) -> None:
        self.tick()
        self.broker.ack(self._pick(self._broker_orders(lambda o: o.status is S.SUBMITTED), index))

    @precondition(lambda self: any(o.status is S.SUBMITTED for o in self.broker.orders.values()))
    @rule(index=st.integers(min_value=0, max_value=1000))
    def reject(self, index: int) -> None:
        self.tick()
        self.broker.reject(self._pick(self._broker_orders(lambda o: o.status is S.SUBMITTED), index))

    @precondition(
        lambda self: any(o.status in (S.ACCEPTED, S.PARTIALLY_FILLED) for o in self.broker.orders.values())
    )
    @rule(index=st.integers(min_value=0, max_value=1000), full=st.booleans(), lots=st.integers(1, 10))
    def fill(self, index: int, full: bool, lots: int) -> None:
        self.tick()
        o = self._pick(self._broker_orders(lambda o: o.status in (S.ACCEPTED, S.PARTIALLY_FILLED)), index)
        quantity = o.leaves if full else min(o.leaves, lots * 100)
        self.broker.fill(o, quantity)

    @precondition(lambda self: bool(self.broker.fill_events))
    @rule(index=st.integers(min_value=0, max_value=1000))
    def dup_fill(self, index: int) -> None:
        self.broker.pending.append(self._pick(self.broker.fill_events, index))

    @precondition(lambda self: any(o.working and o.cancel_requested for o in self.broker.orders.values()))
    @rule(index=st.integers(min_value=0, max_value=1000))
    def cancel_ack(self, index: int) -> None:
        self.tick()
        self.broker.cancel_ack(
            self._pick(self._broker_orders(lambda o: o.working and o.cancel_requested), index)
        )

    @precondition(
        lambda self: any(
            o.cancel_requested and o.status in (S.FILLED, S.CANCELED) for o in self.broker.orders.values()
        )
    )
    @rule(index=st.integers(min_value=0, max_value=1000))
    def cancel_reject(self, index: int) -> None:
        self.tick()
        self.broker.cancel_reject(
            self._pick(
                self._broker_orders(lambda o: o.cancel_requested and o.status in (S.FILLED, S.CANCELED)),
                index,
            )
        )

    # ---------------------------------------------------------------------------- delivery
    @precondition(lambda self: self.connected and bool(self.broker.pending))
    @rule()
    def deliver_next(self) -> None:
        self.broker.deliver(0)

    @precondition(lambda self: self.connected and bool(self.broker.pending))
    @rule(index=st.integers(min_value=0, max_value=1000))
    def deliver_random(self, index: int) -> None:
        self.broker.deliver(index % len(self.broker.pending))

    @precondition(lambda self: self.connected)
    @rule()
    def disconnect(self) -> None:
        self.connected = False

    @precondition(lambda self: not self.connected)
    @rule()
    def reconnect_replay(self) -> None:
        self.connected = True
        self.broker.pending.extend(self.broker.fill_events)  # re-login re-pushes the day's trades
        while self.broker.pending:
            self.broker.deliver(0)
        self.run(self.o.flush())

    @precondition(lambda self: self.restarts < 4)  # keep room for the other rules in 30 steps
    @rule(commit_first=st.booleans())
    def crash_restart(self, commit_first: bool) -> None:
        """kill -9: what was staged since the last flush is lost, unless ``commit_first`` (the crash came
        right after a journal write, e.g. between committing an intent and sending it: A1)."""
        self.tick()
        assert self.store is not None
        if commit_first:
            self.run(self.store.commit())
        self.run(self.store.close())
        self.oms = None
        self.store = None
        self.restarts += 1

        store = self.run(StateStore.open(self.db))
        positions = self.run(store.load_positions())
        self.run(store.close())
        account = Account(CASH)
        for symbol, (quantity, sellable, avg_cost) in positions.items():
            account.load_position(symbol, quantity, avg_cost, sellable=sellable)
        self._start(account)
        report = self.run(recover(self.o, self.store, self.broker, trading_day_start_ns=DAY_START))
        assert report.ok, report.mismatches
        assert report.external == []
        assert self.o.halted_reason is None
        self.run(self.o.flush())

    @precondition(lambda self: self.connected)
    @rule()
    def sync(self) -> None:
        """Deliver everything pending, flush, then the OMS must agree with the broker (I3, I4)."""
        while self.broker.pending:
            self.broker.deliver(0)
        self.run(self.o.flush())
        for cid, bo in self.broker.orders.items():
            order = self.o.orders[cid]
            assert order.filled_quantity == bo.filled, (cid, order.filled_quantity, bo.filled)
            if bo.status in TERMINAL_STATUSES:
                assert order.is_terminal, (cid, order.status, bo.status)
            if bo.status is S.FILLED:
                assert order.status is S.FILLED, (cid, order.status)
        assert self.account is not None
        mine = {s: p.quantity for s, p in self.account.positions.items() if p.quantity}
        assert mine == self.broker.positions()
        broker_cash = CASH - sum(q * PRICE for q in self.broker.positions().values())
        assert self.account.cash == broker_cash, (self.account.cash, broker_cash)

    # ---------------------------------------------------------------------------- invariants
    @invariant()
    def i1_each_client_order_id_sent_at_most_once(self) -> None:
        assert all(n == 1 for n in self.broker.submits.values()), self.broker.submits

    @invariant()
    def nothing_sent_is_unknown_to_the_engine(self) -> None:
        if self.oms is None:
            return
        missing = [cid for cid in self.broker.orders if cid not in self.o.orders]
        assert not missing, missing

    @invariant()
    def i2_filled_bounded_monotone_never_beyond_broker(self) -> None:
        if self.oms is None:
            return
        assert self.o.counters.overfill_alarms == 0
        assert not self.o.halted_symbols
        # an end never came ahead of fills the broker counted in it (engine.held_ends)
        assert self.o.counters.fills_after_end == 0
        for cid, order in self.o.orders.items():
            assert 0 <= order.filled_quantity <= order.quantity
            bo = self.broker.orders.get(cid)
            trades = bo.trades if bo else []
            # filled is exactly the sum of the unique broker trades applied (dedupe by trade id)
            assert order.filled_quantity == sum(t.quantity for t in trades if t.trade_id in order.trade_ids)
            assert order.filled_quantity <= (bo.filled if bo else 0)
            assert order.filled_quantity >= self.prev_filled.get(cid, 0), cid
            self.prev_filled[cid] = order.filled_quantity


TestOmsStateful = OmsMachine.TestCase


async def test_restart_reserves_cash_for_adopted_working_buy(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock = SimClock(T0)
    broker = ScriptedBroker(clock)
    store = await StateStore.open(db)
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=broker, store=store, account=Account(CASH))
    await oms.open()
    order = oms.submit(SubmitOrder(symbol=SYMBOLS[0], side=Side.BUY, quantity=1000, price=PRICE))
    await oms.flush()
    broker.ack(broker.orders[order.client_order_id])
    broker.deliver()
    await oms.flush()
    assert oms.account is not None
    assert oms.account.frozen == 1000 * PRICE
    await store.close()

    store2 = await StateStore.open(db)
    account2 = Account(CASH)
    oms2 = OrderManager(clock=clock, bus=EventBus(), adapter=broker, store=store2, account=account2)
    await oms2.open()
    report = await recover(oms2, store2, broker, trading_day_start_ns=DAY_START)
    try:
        assert report.ok
        assert oms2.orders[order.client_order_id].status is S.ACCEPTED
        assert account2.frozen == 1000 * PRICE  # the adopted working buy still holds its cash
    finally:
        await store2.close()
