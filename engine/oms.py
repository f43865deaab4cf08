"""The OrderManager: the only way an order reaches a broker.

- ``submit`` (sync) assigns the client order id, runs the pre-trade checks (each a pure function
  returning a reason or None; a denial is an ``OrderDenied`` event, never a silent drop), reserves cash or
  shares, stages the intent in the journal and queues it.
- ``flush`` (async) commits every staged intent in ONE transaction, then hands each to the adapter.
  Write-ahead: nothing is sent that is not on disk first. A failed journal write sends nothing and halts.
- ``on_event`` is the adapter's sink: it applies broker events to the order state machine (idempotent
  for fills by trade id, never an overfill), updates the account, stages the change and publishes the
  event on the bus.

Live runs call ``start()`` so a background task flushes whenever something is queued; the replay harness
calls ``flush()`` itself after each clock step.

A cancel that comes back without effect while its order still works is sent again on a bounded
backoff, and the operator told after the bound (``cancel_retry``, ``engine.cancels``).

An order's end (cancelled, expired) never releases quantity the broker may still have filled: an end
whose reported filled quantity is above the fills we hold, or that does not say, is held with the order
PENDING_CANCEL and its leaves reserved until the trade rows (or the broker's answer to a query) bring the
fills to the figure (``held_ends``, ``engine.held_ends``).

Every collaborator is given to the constructor (the pre-trade checks, the flow gate, the before-commit
hooks) by the one composition root (``zhixing.assembly``); nothing is wired onto a built OrderManager.
Halts and resumes are told on the bus (``HaltChanged``); a ``HaltRequested`` on the bus halts.

An optional ``gate`` (``engine.risk_controls.RiskControls``) sees every order that passed the checks, every
order and cancel handed to the adapter, and decides when each may go. After the commit, every order takes
its turn in the gate's fair queue (``engine.rate_queue``) and is sent when the rolling second has room;
cancels go first (they keep their reserve), and a cancel the caps do not allow yet is held (never
dropped). Both are retried on one clock timer at the instant the window allows. A queued order is working
for its algorithm (INITIALIZED, journaled); one queued longer than the gate's bound is denied
``rate_queue_timeout``, one whose trading or symbol was halted meanwhile is denied ``halted`` /
``symbol_halted``, and a cancel of a queued order takes it out locally (nothing sent, nothing counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.bus import EventBus
from zhixing.engine.cancels import CancelRetry
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import BrokerError, IllegalTransition, OverfillError, StoreError
from zhixing.engine.events import (
    CancelOrder,
    HaltChanged,
    HaltRequested,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
    SubmitOrder,
)
from zhixing.engine.freshness import AlertCallback, FreshnessTracker
from zhixing.engine.held_ends import ENDS, End, HeldEnds, end_waits
from zhixing.engine.order_ids import LEGACY_IDS, OrderIds
from zhixing.engine.orders import Order
from zhixing.engine.reasons import Denial, DenialCode
from zhixing.engine.store import StateStore

PreTradeCheck = Callable[[Order], Denial | None]


class FlowGate(Protocol):
    """What the OrderManager tells a message-rate gate (``engine.risk_controls.RiskControls``)."""

    def order_accepted(self, order: Order) -> None:
        """``order`` passed every check and is queued to be sent."""
        ...

    def order_sent(self, order: Order) -> None:
        """``order`` is being handed to the adapter now."""
        ...

    def order_adopted(self, order: Order) -> None:
        """A working order rebuilt from the store (restart) is tracked again."""
        ...

    def cancel_sent(self, order: Order) -> None:
        """A cancel for ``order`` is being handed to the adapter now."""
        ...

    def cancel_wait_ns(self, order: Order) -> int:
        """0 when a cancel of ``order`` may be sent now, else how long to hold it (ns)."""
        ...

    def queue_order(self, order: Order) -> None:
        """``order`` is journaled: it waits its turn for the rate window."""
        ...

    def next_order(self) -> Order | None:
        """The queued order whose turn it is, taken out, when the window has room for it now."""
        ...

    def unqueue(self, order: Order) -> bool:
        """Take a queued ``order`` out without sending it; False when it was not queued."""
        ...

    def queue_expired(self) -> list[Order]:
        """Queued orders past the bound, taken out (to be denied ``rate_queue_timeout``)."""
        ...

    def queue_retry_ns(self) -> int | None:
        """When to look at the queue again (ns since the epoch), None when it is empty."""
        ...


log = structlog.get_logger("zhixing.oms")

_ID_BLOCK = 10_000
_IN_FLIGHT = frozenset({OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL})
_SENT_EVENTS = (OrderSubmitted, OrderPendingCancel)  # a tuple: ``A | B`` would build a union per call
_TAKES_LATE_FILLS = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED})  # ends that still take fills


@dataclass(slots=True)
class OmsCounters:
    submitted: int = 0
    denied: int = 0
    cancels_sent: int = 0
    duplicate_fills: int = 0
    illegal_transitions: int = 0
    overfill_alarms: int = 0
    unknown_order_events: int = 0
    journal_failures: int = 0
    fills_after_end: int = 0  # fills applied to an order already CANCELED/EXPIRED: its end came too early


class OrderManager:
    def __init__(
        self,
        *,
        clock: Clock,
        bus: EventBus,
        adapter: BrokerAdapter,
        store: StateStore,
        account: Account | None = None,
        checks: Sequence[PreTradeCheck] = (),
        gate: FlowGate | None = None,
        before_commit: Sequence[Callable[[], object]] = (),
        ids: OrderIds = LEGACY_IDS,
        on_alert: AlertCallback | None = None,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.adapter = adapter
        self.store = store
        self.account = account
        # the pre-trade checks, in order (the first denial wins), fixed at construction
        self.checks: tuple[PreTradeCheck, ...] = tuple(checks)
        # the account's client order ids (``engine.order_ids``): keyed by the account on a live route
        self.ids = ids
        self.orders: dict[str, Order] = {}
        self.counters = OmsCounters()
        self.halted_reason: str | None = None
        self.journal_error: str | None = None  # the last journal write failure (told with its halt)
        self.halted_symbols: dict[str, str] = {}
        self._by_parent: dict[str, list[Order]] = {}
        # called before every journal commit, so what they stage goes out in the same transaction
        # (e.g. a basket's algorithm states next to the child intents they just produced)
        self.before_commit: tuple[Callable[[], object], ...] = tuple(before_commit)
        # orders waiting for the broker to say something (SUBMITTED: no ack yet; PENDING_CANCEL: no answer
        # to our cancel), with the time they started waiting: what the in-flight checker looks at
        self.in_flight: dict[str, int] = {}
        # differences between the broker's answers and our books still being asked about (one rule for
        # reconciliation, resync and the in-flight checks: ``engine.freshness``)
        self.freshness = FreshnessTracker(clock)
        # a cancel that came back without effect while its order works is sent again, bounded
        self.cancel_retry = CancelRetry(clock, self.cancel, self.freshness, on_alert=on_alert)
        # ends (cancelled, expired) that said more filled than we hold, or did not say: not applied yet
        self.held_ends = HeldEnds()
        self._outbox: list[Order] = []
        self._cancel_outbox: list[Order] = []
        # message-rate gate (optional) and the cancels it holds until the window allows them (its
        # queue holds the orders); one timer retries both
        self.gate = gate
        self._held_cancels: list[Order] = []
        self._rate_retry: TimerHandle | None = None
        self._next_seq = 0
        self._seq_end = 0
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        adapter.bind(self.on_event)
        bus.subscribe(HaltRequested, self._on_halt_requested)

    # ------------------------------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Reserve a block of client order ids (persisted, never reused)."""
        await self._refill_ids()

    async def start(self) -> None:
        """Live mode: flush in the background whenever something is queued."""
        await self.open()
        self._wake = asyncio.Event()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="oms:flusher")
        self._flusher.add_done_callback(_log_task_failure)

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # the task we just cancelled, not ours
                await self._flusher
            self._flusher = None
        await self.flush()

    async def _flush_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _refill_ids(self) -> None:
        if self._seq_end - self._next_seq < _ID_BLOCK // 2:
            first = await self.store.reserve_order_ids(_ID_BLOCK)
            if self._next_seq >= self._seq_end:
                self._next_seq = first
            self._seq_end = first + _ID_BLOCK
            # ids between the old block's end and this block's start are simply skipped

    async def skip_ids_through(self, seq: int) -> None:
        """Never issue a sequence number at or below ``seq`` (ids the broker has seen but the journal
        lost, see ``engine.lost_orders``): the persisted counter is moved past it, a fresh block taken."""
        if self._next_seq > seq:
            return
        first = await self.store.reserve_order_ids(1)
        if first < seq:
            await self.store.reserve_order_ids(seq - first)
        self._next_seq = self._seq_end = 0
        await self._refill_ids()

    def _new_client_order_id(self) -> str:
        if self._next_seq >= self._seq_end:
            raise StoreError("client order id block exhausted before refill; call flush() more often")
        seq = self._next_seq
        self._next_seq += 1
        return self.ids.make(seq)

    # ------------------------------------------------------------------------------------- queries
    def children_of(self, parent_id: str) -> list[Order]:
        return self._by_parent.get(parent_id, [])

    def working_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_working or o.status is OrderStatus.INITIALIZED]

    def adopt(self, order: Order) -> None:
        """Track an order rebuilt from the store (restart) without sending anything."""
        self.orders[order.client_order_id] = order
        if order.parent_id:
            self._by_parent.setdefault(order.parent_id, []).append(order)
        if order.status in _IN_FLIGHT:
            self.in_flight[order.client_order_id] = order.ts_updated
        if self.gate is not None and order.is_working:
            self.gate.order_adopted(order)

    # ------------------------------------------------------------------------------------- commands
    def submit(self, command: SubmitOrder) -> Order:
        now = self.clock.now_ns()
        order = Order(
            client_order_id=self._new_client_order_id(),
            symbol=command.symbol,
            side=command.side,
            price=command.price,
            quantity=command.quantity,
            parent_id=command.parent_id,
            tag=command.tag,
            ts_created=now,
            ts_updated=now,
            order_type=command.order_type,
        )
        self.adopt(order)
        denial = self._pre_trade_denial(order)
        if denial is not None:
            self.counters.denied += 1
            reason = str(denial)
            self._apply(
                OrderDenied(
                    ts_event=now,
                    ts_init=now,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    reason=reason,
                    code=denial.code,
                )
            )
            log.info(
                "order_denied", client_order_id=order.client_order_id, symbol=order.symbol, reason=reason
            )
            return order
        if self.account is not None:
            self.account.reserve(order)
        if self.gate is not None:
            self.gate.order_accepted(order)
        self.store.stage_order(order)
        self._outbox.append(order)
        self._kick()
        return order

    def _pre_trade_denial(self, order: Order) -> Denial | None:
        if self.halted_reason is not None:
            return Denial(DenialCode.HALTED, self.halted_reason)
        if order.symbol in self.halted_symbols:
            return Denial(DenialCode.SYMBOL_HALTED, self.halted_symbols[order.symbol])
        if order.quantity <= 0:
            return Denial(DenialCode.QUANTITY_NOT_POSITIVE)
        if order.price < 0 or (order.price == 0 and not order.order_type.is_market):
            return Denial(DenialCode.PRICE_NOT_POSITIVE)
        for check in self.checks:
            denial = check(order)
            if denial is not None:
                return denial
        if order.price <= 0:  # a market order whose bound no check set (``engine.risk``)
            return Denial(DenialCode.PRICE_NOT_POSITIVE, "a market order needs a price bound")
        if self.account is not None:
            code = self.account.check(order)
            if code is not None:
                return Denial(code)
        return None

    def cancel(self, command: CancelOrder | str) -> bool:
        """Queue a cancel. Idempotent: returns False when there is nothing (more) to cancel."""
        cid = command if isinstance(command, str) else command.client_order_id
        order = self.orders.get(cid)
        if order is None or order.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
            return False
        if _holds(self._cancel_outbox, order) or _holds(self._held_cancels, order):
            return False
        if order.status is OrderStatus.INITIALIZED and self._take_unsent(order):
            self._cancel_locally(order)  # never sent: it will not be, and no message is counted
            return True
        self._cancel_outbox.append(order)
        self._kick()
        return True

    def _take_unsent(self, order: Order) -> bool:
        """Take ``order`` out of the outbox or the gate's queue; False when it is in neither."""
        if _holds(self._outbox, order):
            self._outbox.remove(order)
            return True
        return self.gate is not None and self.gate.unqueue(order)

    def _cancel_locally(self, order: Order) -> None:
        now = self.clock.now_ns()
        self._apply(
            OrderCanceled(
                ts_event=now,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                filled_qty=0,
            )
        )

    def cancel_all(self, symbol: str | None = None) -> list[str]:
        """Queue a cancel for every working order (of ``symbol``, if given); returns their client ids.

        Orders still in the outbox are cancelled locally and never sent. Idempotent: an order already
        pending cancel is not asked twice.
        """
        targets = [
            o
            for o in list(self.orders.values())
            if (symbol is None or o.symbol == symbol)
            and (o.is_working or o.status is OrderStatus.INITIALIZED)
        ]
        return [o.client_order_id for o in targets if self.cancel(o.client_order_id)]

    def halt(self, reason: str) -> None:
        """Kill switch: deny every new order until ``resume``; cancels still go out."""
        newly = self.halted_reason is None
        self.halted_reason = reason
        log.warning("trading_halted", reason=reason)
        if newly:
            self._tell_halt(reason)

    def resume(self) -> None:
        was_halted = self.halted_reason is not None
        self.halted_reason = None
        if was_halted:
            self._tell_halt(None)

    def _tell_halt(self, reason: str | None) -> None:
        # on the bus: whoever halted (the operator, the reject breaker, reconciliation, the in-flight
        # checks, a journal that cannot be written); a failing listener is isolated by the bus
        now = self.clock.now_ns()
        self.bus.publish(HaltChanged(ts_event=now, ts_init=now, reason=reason))

    def _on_halt_requested(self, event: HaltRequested) -> None:
        self.halt(event.reason)

    @property
    def held_cancels(self) -> list[Order]:
        """Cancels waiting for the message-rate window (sent by a later flush, never dropped)."""
        return list(self._held_cancels)

    @property
    def pending(self) -> bool:
        return bool(self._outbox or self._cancel_outbox or self.store.has_staged)

    # ------------------------------------------------------------------------------------- flushing
    async def flush(self) -> None:
        """Journal every queued intent in one transaction, then send them and queued cancels."""
        async with self._flush_lock:
            if self._held_cancels:  # retry held cancels first, oldest first
                self._cancel_outbox[:0], self._held_cancels = self._held_cancels, []
            while True:
                intents, self._outbox = self._outbox, []
                cancels, self._cancel_outbox = self._cancel_outbox, []
                if intents:
                    self._before_commit()
                    try:
                        await self.store.commit()
                    except StoreError as exc:
                        self._journal_failed(intents, exc)
                        intents = []
                await self._send_cancels(cancels)  # cancels first: before any queued order
                await self._send_orders(intents)
                if not (self._outbox or self._cancel_outbox):
                    break
            self._before_commit()
            try:
                if self.store.has_staged:
                    await self.store.commit()
                await self._refill_ids()
            except StoreError as exc:  # a full disk: halted and told, never a dead flusher
                self._journal_failed([], exc)

    def _before_commit(self) -> None:
        for hook in self.before_commit:
            hook()

    def _journal_failed(self, intents: list[Order], exc: StoreError) -> None:
        """The journal refused a write (disk full, read-only, failing): halt, so nothing new is sent;
        what was staged stays staged and is written by the next commit that succeeds."""
        self.counters.journal_failures += 1
        self.journal_error = str(exc)
        if self.halted_reason != "journal_write_failed":
            self.halt("journal_write_failed")
        if self.counters.journal_failures % 100 == 1:  # the first of a full disk, then one in a hundred
            log.error(
                "journal_write_failed",
                error=str(exc),
                unsent_orders=len(intents),
                failures=self.counters.journal_failures,
            )
        now = self.clock.now_ns()
        for order in intents:
            self._apply(
                OrderRejected(
                    ts_event=now,
                    ts_init=now,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    reason="journal_write_failed",
                    venue_confirmed=False,
                )
            )

    async def _send_orders(self, intents: list[Order]) -> None:
        """Send the journaled ``intents``: without a gate at once; with one, each takes its turn in the
        gate's fair queue and the queue is sent as far as the window allows."""
        gate = self.gate
        if gate is None:
            for order in intents:
                await self._send(order)
            return
        for order in intents:
            if order.status is OrderStatus.INITIALIZED:
                gate.queue_order(order)
        for order in gate.queue_expired():
            bound = self.clock.now_ns() - order.ts_created
            self._deny_unsent(order, Denial(DenialCode.RATE_QUEUE_TIMEOUT, f"queued {bound // 1_000_000} ms"))
        while (queued := gate.next_order()) is not None:
            denial = self._halt_denial(queued)
            if denial is not None:
                self._deny_unsent(queued, denial)
                continue
            await self._send(queued)
        when = gate.queue_retry_ns()
        if when is not None:
            self._arm_retry(when)

    def _halt_denial(self, order: Order) -> Denial | None:
        """A halt that came while ``order`` was queued: it is not sent."""
        if self.halted_reason is not None:
            return Denial(DenialCode.HALTED, self.halted_reason)
        if order.symbol in self.halted_symbols:
            return Denial(DenialCode.SYMBOL_HALTED, self.halted_symbols[order.symbol])
        return None

    def _deny_unsent(self, order: Order, denial: Denial) -> None:
        """Deny an accepted, journaled order that was never sent (its reservation is released)."""
        now = self.clock.now_ns()
        self.counters.denied += 1
        reason = str(denial)
        self._apply(
            OrderDenied(
                ts_event=now,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                reason=reason,
                code=denial.code,
            )
        )
        self.store.stage_order(order)  # journaled INITIALIZED: the journal learns how it ended
        log.warning("queued_order_denied", client_order_id=order.client_order_id, reason=reason)

    async def _send(self, order: Order) -> None:
        if order.status is not OrderStatus.INITIALIZED:
            return  # cancelled locally meanwhile
        now = self.clock.now_ns()
        self._apply(
            OrderSubmitted(
                ts_event=now, ts_init=now, client_order_id=order.client_order_id, symbol=order.symbol
            )
        )
        self.counters.submitted += 1
        if self.gate is not None:
            self.gate.order_sent(order)
        try:
            await self.adapter.submit(order)
        except BrokerError as exc:
            now = self.clock.now_ns()
            self._apply(
                OrderRejected(
                    ts_event=now,
                    ts_init=now,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    reason=f"adapter: {exc}",
                    venue_confirmed=False,
                )
            )

    async def _send_cancels(self, cancels: list[Order]) -> None:
        soonest = 0
        for order in cancels:
            if order.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
                continue
            if order.status is OrderStatus.INITIALIZED:  # asked while its intent was being journaled
                if self._take_unsent(order):
                    self._cancel_locally(order)
                continue
            wait = self.gate.cancel_wait_ns(order) if self.gate is not None else 0
            if wait > 0:  # held in order, retried when the window allows; others may still go
                self._held_cancels.append(order)
                soonest = min(soonest, wait) if soonest else wait
                continue
            await self._send_cancel(order)
        if soonest:
            self._arm_retry(self.clock.now_ns() + soonest)
            log.warning("cancels_held", count=len(self._held_cancels), wait_ns=soonest)

    def _arm_retry(self, when_ns: int) -> None:
        timer = self._rate_retry
        if timer is not None and not timer.cancelled and timer.when <= when_ns:
            return
        if timer is not None:
            timer.cancel()
        self._rate_retry = self.clock.call_at(when_ns, self._retry_rate, "oms:rate_retry")

    def _retry_rate(self) -> None:
        self._rate_retry = None
        self._kick()

    async def _send_cancel(self, order: Order) -> None:
        if order.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
            return
        now = self.clock.now_ns()
        self._apply(
            OrderPendingCancel(
                ts_event=now, ts_init=now, client_order_id=order.client_order_id, symbol=order.symbol
            )
        )
        self.counters.cancels_sent += 1
        if self.gate is not None:
            self.gate.cancel_sent(order)
        try:
            await self.adapter.cancel(order)
        except BrokerError as exc:
            log.warning("cancel_failed", client_order_id=order.client_order_id, error=str(exc))

    # ------------------------------------------------------------------------------------- events in
    def on_event(self, event: OrderEvent) -> None:
        """Sink for adapter events (call on the loop thread)."""
        order = self.orders.get(event.client_order_id)
        if order is None:
            self.counters.unknown_order_events += 1
            log.warning(
                "unknown_order_event", client_order_id=event.client_order_id, event_type=type(event).__name__
            )
            return
        self._apply(event, order)
        self._kick()

    def _apply(self, event: OrderEvent, order: Order | None = None) -> None:
        order = order or self.orders[event.client_order_id]
        if isinstance(event, ENDS) and self._end_waits(order, event):
            return
        if isinstance(event, OrderCancelRejected) and self._end_held(order):
            # the broker already said the order ended: a reject of a cancel (sent again, or unconfirmed)
            # cannot reopen it while its fills are on their way
            self.held_ends.counters.cancel_rejects_ignored += 1
            log.info("cancel_reject_ignored_end_held", client_order_id=order.client_order_id)
            return
        was_terminal = order.is_terminal
        try:
            applied = order.apply(event)
        except OverfillError as exc:
            self.counters.overfill_alarms += 1
            self.halted_symbols[order.symbol] = "overfill_reported"
            log.error("overfill_alarm", client_order_id=order.client_order_id, error=str(exc))
            return
        except IllegalTransition as exc:
            self.counters.illegal_transitions += 1
            log.warning("illegal_transition", client_order_id=order.client_order_id, error=str(exc))
            return
        if not applied:
            self.counters.duplicate_fills += 1
            return
        if isinstance(event, OrderFilled):
            if was_terminal:
                self.counters.fills_after_end += 1
                log.warning("fill_after_end", client_order_id=order.client_order_id, status=str(order.status))
            if self.account is not None:
                self.account.on_fill(order, event)
                pos = self.account.positions[event.symbol]  # journaled with the fill: a restart rebuilds it
                self.store.stage_position(event.symbol, pos.quantity, pos.sellable, pos.avg_cost)
            self.store.stage_fill(event, order.parent_id)
        if order.is_terminal and not was_terminal:
            self.cancel_retry.ended(order.client_order_id)
            if self.account is not None:
                self.account.release(order)
        elif isinstance(event, OrderCancelRejected) and not order.is_terminal:
            self.cancel_retry.failed(order, event.reason)
        if order.status is not OrderStatus.DENIED:
            self.store.stage_order(order)
        self._track_in_flight(order, event)
        self.bus.publish(event)
        if order.client_order_id in self.held_ends:
            self._settle_held_end(order)

    # ------------------------------------------------------------------------------------- held ends
    def _end_held(self, order: Order) -> bool:
        return not order.is_terminal and order.client_order_id in self.held_ends

    def _end_waits(self, order: Order, event: End) -> bool:
        """Hold ``event`` when it would release quantity the broker may still have filled (see
        ``engine.held_ends``); True when held (nothing applied, nothing published)."""
        cid = order.client_order_id
        if order.is_terminal:
            self._late_figure(order, event)
            return False
        if order.status is OrderStatus.INITIALIZED:
            return False  # never sent (a local cancel): nothing can have filled
        figure = self.held_ends.figure(event)
        if not end_waits(order, figure):
            self.held_ends.release(cid, answered=True)  # a later push or an answer says the rows are in
            return False
        now = self.clock.now_ns()
        first = self.held_ends.hold(event, now)
        if order.status is not OrderStatus.PENDING_CANCEL:
            # ended at the broker (its own cancel, the day's end): nobody may cancel it again meanwhile
            self._apply(
                OrderPendingCancel(
                    ts_event=event.ts_event, ts_init=now, client_order_id=cid, symbol=order.symbol
                )
            )
        if first:
            self.in_flight[cid] = now  # the in-flight checks ask after their timeout if the rows do not come
            log.warning(
                "end_waits_for_fills",
                client_order_id=cid,
                end=type(event).__name__,
                broker_filled=figure,
                local_filled=order.filled_quantity,
            )
        return True

    def _settle_held_end(self, order: Order) -> None:
        """After an event on an order whose end is held: apply the end once the fills reach its figure;
        forget it when the order ended otherwise (the last fill, a reject)."""
        if order.is_terminal:
            self.held_ends.release(order.client_order_id, answered=False)
            return
        event = self.held_ends.due(order)
        if event is None:
            return
        log.info(
            "held_end_applied",
            client_order_id=order.client_order_id,
            end=type(event).__name__,
            filled=order.filled_quantity,
        )
        self._apply(dataclasses.replace(event, ts_init=self.clock.now_ns()), order)

    def _late_figure(self, order: Order, event: End) -> None:
        """An end for an order already finished that says more filled than we hold: fills we have not
        heard of. The order is asked about (``engine.freshness``): its late trades are applied, and a
        difference that persists halts."""
        reported = event.filled_qty
        if reported is None or reported <= order.filled_quantity or order.status not in _TAKES_LATE_FILLS:
            return
        self.held_ends.counters.late_figures += 1
        self.freshness.ask_about(order.client_order_id, "end reports more filled")
        log.warning(
            "end_reports_unheld_fills",
            client_order_id=order.client_order_id,
            broker_filled=reported,
            local_filled=order.filled_quantity,
        )

    def _track_in_flight(self, order: Order, event: OrderEvent) -> None:
        cid = order.client_order_id
        if order.status in _IN_FLIGHT:
            if isinstance(event, _SENT_EVENTS) or cid not in self.in_flight:
                self.in_flight[cid] = event.ts_init
        else:
            self.in_flight.pop(cid, None)


def _holds(orders: list[Order], order: Order) -> bool:
    """``order in orders`` by identity (one ``Order`` object per client order id), without the
    dataclass ``__eq__`` field-by-field comparison against every other queued order."""
    return id(order) in map(id, orders)


def _log_task_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_failed", task=task.get_name(), exc_info=task.exception())
