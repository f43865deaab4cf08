"""Pre-trade risk controls per account (RELIABILITY.md category J, rules 7-8).

``RiskControls`` is a gate, not an alert. The composition root (``zhixing.assembly``) gives it to the
``OrderManager`` as its flow gate and one of its checks; it watches the bus it is built with:

- ``check(order)`` joins the OMS's pre-trade checks; a reason means the OMS publishes ``OrderDenied`` and
  nothing reaches the adapter. Checks, in order: max order quantity, max order value, price collar against
  the reference price (no reference: deny), duplicate orders, self-cross against our own working
  orders, active-order cap, message rate per day (the day cap denies: it does not refill before the
  next day, so waiting cannot help).
- **The per-second cap shapes, it does not deny** (issue 20). Every accepted order goes through the fair
  queue (``engine.rate_queue``: round-robin across parents, FIFO within one); the OMS asks
  ``next_order`` at send time and sends it only when the rolling second has room, so a burst is spread
  over the seconds that follow instead of starving the parents that came last. An order queued longer
  than ``rate_queue_timeout_ns`` (default 30 s) is denied ``rate_queue_timeout`` by the OMS, its
  reservation released. A queued order is INITIALIZED and already journaled (write-ahead: the intent is
  on disk before it can be sent), so a crash with a queue leaves journaled-never-sent orders that
  reconciliation resolves (``not_found_at_broker``); nothing is sent again by itself.
- The OMS tells it (``FlowGate``) what passed every check and what it hands the adapter; the rate windows
  count messages (orders + cancels) at the moment they are sent, and every send is decided under the
  OMS's flush lock just before it (``next_order``, ``cancel_wait_ns``), so no 1-second window ever sees
  more messages than the cap (invariant I5). The day cap also counts orders accepted but not yet sent
  (queued included), so no day does either.
- Orders may use the caps minus the cancel reserve; cancels may use the whole cap (and at most
  ``max_cancels_per_symbol_per_second`` per symbol, RELIABILITY J7) and go before any queued order.
  A cancel over even that is **held** by the OMS (never dropped, never sent over the cap) and retried on
  a clock timer at the instant the oldest message leaves the window. When the day cap itself is spent,
  cancels are held until the next day (Asia/Shanghai): day orders expire at the close anyway, and the
  cap is a hard line (declared to the broker under the CSRC programmatic-trading rules). ``report()``
  counts held cancels.
- Consecutive broker rejects (``OrderRejected`` on the bus, reset by an ack or a fill) reach
  ``max_consecutive_rejects`` → a ``HaltRequested`` on the bus, once (the OMS halts; the kill switch in
  ``engine.control``, where there is one, also pauses and cancels).
- Per symbol, broker rejects that will repeat (``engine.reject_reasons``: all but the transient ones and
  our own local refusals) since that symbol's last fill reach ``max_rejects_per_symbol`` → the symbol is
  blocked for the rest of the Shanghai day: its new orders are denied (``symbol_rejects``), told once to
  ``on_symbol_blocked(symbol, reason)``. Only a fill of that symbol resets its count (an ack does not:
  a counter may take an order the exchange then refuses; a fill elsewhere says nothing about this name).
  An operator's resume (``reset_rejects``) and the next day clear the blocks; a restart keeps them
  (``restore``).
- Every denial on the bus is counted per reason code (the text before ``:``), whatever check made it.

Windows run on the injected clock (int ns). Days are Asia/Shanghai calendar days (UTC+8, no DST).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import structlog

from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import ConfigError
from zhixing.engine.events import HaltRequested, OrderAccepted, OrderDenied, OrderFilled, OrderRejected
from zhixing.engine.marketdata import QuoteSource
from zhixing.engine.orders import Order
from zhixing.engine.rate_queue import FairQueue, QueueCounters
from zhixing.engine.reasons import Denial, DenialCode
from zhixing.engine.reject_reasons import classify_reject

if TYPE_CHECKING:
    pass

log = structlog.get_logger("zhixing.risk")

SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS
SHANGHAI_OFFSET_NS = 8 * 3_600 * SECOND_NS

HFT_PER_SECOND = 300
"""SSE/SZSE/BSE (2025-07-07): >= 300 orders+cancels in one second on one account is high-frequency."""
HFT_PER_DAY = 20_000
"""... or >= 20,000 in one day."""

RISK_META_KEY = "risk_report"
"""Where the engine journals ``report()`` (``engine.status.StatusRecorder``) and ``restore`` reads it."""

_CANCEL_EVIDENCE = frozenset({OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED})

LOCAL_REJECT_REASONS = frozenset({"journal_write_failed"})
"""Rejects that are ours, not the broker's: they do not count toward the auto-halt."""


HELD_LOG_MAX = 1_000
"""How many held cancels a day ``RiskControls.held_log`` keeps (each is also counted in ``cancel_holds``)."""


@dataclass(frozen=True, slots=True)
class HeldCancel:
    """A cancel the message-rate caps held (never dropped): when, for how long at first, and which cap."""

    client_order_id: str
    symbol: str
    held_ns: int
    wait_ns: int
    cap: str  # "per_second", "per_symbol_per_second" or "per_day"


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """Per-account limits. Money in int milli-yuan, times in int ns; 0 disables a limit where noted."""

    max_messages_per_second: int = 50  # orders + cancels, rolling 1 s
    max_messages_per_day: int = 10_000  # orders + cancels, Asia/Shanghai day
    warn_at_pct: int = 80  # warn once per window at this share of a cap
    cancel_reserve_pct: int = 10  # share of each cap only cancels may use
    max_order_value: int = 1_000_000_000  # price x quantity; 1,000,000 yuan
    max_order_quantity: int = 1_000_000  # shares
    price_collar_bp: int = 1_000  # |price - reference| / reference, basis points
    duplicate_window_ns: int = SECOND_NS  # 0 disables the duplicate-order rule
    duplicate_max: int = 1  # identical orders (symbol, side, price, qty) allowed inside the window,
    # not counting completely filled ones
    max_active_orders: int = 500  # accepted, not yet terminal
    max_cancels_per_symbol_per_second: int = 10  # more are held (never dropped); 0 disables
    max_consecutive_rejects: int = 10  # broker rejects in a row -> auto-halt; 0 disables
    max_rejects_per_symbol: int = 5  # will-repeat rejects of one symbol since its last fill -> that
    # symbol's new orders denied for the day; 0 disables
    deny_self_cross: bool = True  # an order that would trade against our own working order (wash trade)
    allow_hft_rates: bool = False  # caps at or above the HFT lines are refused unless set
    rate_queue_timeout_ns: int = 30 * SECOND_NS  # an order queued for the per-second cap longer than
    # this is denied (rate_queue_timeout): at the default cap 1,350 orders would be ahead of it, a runaway
    # or a cap far too low for the basket; and a limit price set 30 s ago is stale (the algorithm prices
    # its next child afresh)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("allow_hft_rates", "deny_self_cross"):
                if not isinstance(value, bool):
                    raise ConfigError(f"risk.{f.name}: expected true or false, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"risk.{f.name}: expected a non-negative integer, got {value!r}")
        for name in (
            "max_messages_per_second",
            "max_messages_per_day",
            "max_order_quantity",
            "duplicate_max",
            "rate_queue_timeout_ns",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"risk.{name}: must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.warn_at_pct <= 100:
            raise ConfigError(f"risk.warn_at_pct: must be within 1..100, got {self.warn_at_pct}")
        if self.cancel_reserve_pct >= 100:
            raise ConfigError(f"risk.cancel_reserve_pct: must be below 100, got {self.cancel_reserve_pct}")
        if not self.allow_hft_rates:
            if self.max_messages_per_second >= HFT_PER_SECOND:
                raise ConfigError(
                    f"risk.max_messages_per_second: {self.max_messages_per_second} is at or above the "
                    f"high-frequency line ({HFT_PER_SECOND}/s); set allow_hft_rates if that is declared"
                )
            if self.max_messages_per_day >= HFT_PER_DAY:
                raise ConfigError(
                    f"risk.max_messages_per_day: {self.max_messages_per_day} is at or above the "
                    f"high-frequency line ({HFT_PER_DAY}/day); set allow_hft_rates if that is declared"
                )
        for label, cap in (("second", self.max_messages_per_second), ("day", self.max_messages_per_day)):
            if _order_cap(cap, self.cancel_reserve_pct) < 1:
                raise ConfigError(
                    f"risk.cancel_reserve_pct: leaves no room for orders in the per-{label} cap"
                )

    @property
    def order_cap_per_second(self) -> int:
        return _order_cap(self.max_messages_per_second, self.cancel_reserve_pct)

    @property
    def order_cap_per_day(self) -> int:
        return _order_cap(self.max_messages_per_day, self.cancel_reserve_pct)


def _order_cap(cap: int, reserve_pct: int) -> int:
    reserve = -(-cap * reserve_pct // 100)  # ceil: a reserve of at least one message when asked for
    return cap - reserve


def shanghai_day(ts_ns: int) -> int:
    """Days since the epoch in Asia/Shanghai (UTC+8, no DST)."""
    return (ts_ns + SHANGHAI_OFFSET_NS) // DAY_NS


class RiskControls:
    """The pre-trade gate of one account. See the module docstring."""

    def __init__(
        self,
        limits: RiskLimits,
        clock: Clock,
        quotes: QuoteSource,
        *,
        bus: EventBus,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.quotes = quotes
        self.bus = bus
        self._window: deque[int] = deque()  # send times inside the last second
        self._day = shanghai_day(clock.now_ns())
        self._day_count = 0
        self._unsent: dict[str, Order] = {}  # accepted orders not yet handed to the adapter
        self.queue = FairQueue()  # accepted orders waiting for room in the rolling second
        self._active: dict[str, Order] = {}  # accepted orders not yet terminal
        self._held: set[str] = set()  # cancels currently held (by client order id)
        self.held_log: list[HeldCancel] = []  # the first HELD_LOG_MAX cancels held today, for the reports
        self._symbol_cancels: dict[str, deque[int]] = {}  # cancel send times per symbol, last second
        self._recent: dict[tuple[str, str, int, int], deque[tuple[int, Order]]] = {}  # duplicate rule
        self._second_warned_until = 0
        self._day_warned = False
        self.orders_sent = 0
        self.cancels_sent = 0
        self.peak_per_second = 0
        self.denials: dict[str, int] = {}
        self.warnings = 0
        self.cancel_holds = 0
        self.consecutive_rejects = 0
        self.auto_halts = 0
        self._halted_by_rejects = False
        self._symbol_rejects: dict[str, int] = {}  # will-repeat rejects since the symbol's last fill
        self.blocked_symbols: dict[str, str] = {}  # symbol -> why its new orders are denied today
        self.symbol_blocks = 0
        self.on_symbol_blocked: Callable[[str, str], object] | None = None
        self.dirty = True  # report changed since last journaled
        bus.subscribe(OrderRejected, self.on_rejected)
        bus.subscribe(OrderAccepted, self.on_confirmed)
        bus.subscribe(OrderFilled, self.on_confirmed)
        bus.subscribe(OrderDenied, self.on_denied)

    # ------------------------------------------------------------------------------------- the check
    def check(self, order: Order) -> Denial | None:
        """The pre-trade check: why ``order`` is denied, or None."""
        lim = self.limits
        blocked = self.blocked_symbols.get(order.symbol)
        if blocked is not None:
            self._roll(self.clock.now_ns())  # a block lasts the day it was set
            blocked = self.blocked_symbols.get(order.symbol)
        if blocked is not None:
            return Denial(DenialCode.SYMBOL_REJECTS, f"{order.symbol} {blocked}")
        if order.quantity > lim.max_order_quantity:
            return Denial(DenialCode.MAX_ORDER_QUANTITY, f"{order.quantity} > {lim.max_order_quantity}")
        value = order.price * order.quantity
        if lim.max_order_value and value > lim.max_order_value:
            return Denial(DenialCode.MAX_ORDER_VALUE, f"{value} > {lim.max_order_value} milli-yuan")
        denial = self._collar(order) or self._duplicate(order)
        if denial is not None:
            return denial
        active = self._active_count()
        if lim.deny_self_cross:
            denial = self._self_cross(order)
            if denial is not None:
                return denial
        if lim.max_active_orders and active >= lim.max_active_orders:
            return Denial(DenialCode.MAX_ACTIVE_ORDERS, f"{active} active, cap {lim.max_active_orders}")
        # the per-second cap is not a denial: the order queues (``next_order``); the day cap is
        self._roll(self.clock.now_ns())
        today = self._day_count + self._unsent_count()
        if today + 1 > lim.order_cap_per_day:
            return Denial(
                DenialCode.RATE_PER_DAY, f"{today} messages today, order cap {lim.order_cap_per_day}"
            )
        return None

    def _collar(self, order: Order) -> Denial | None:
        quote = self.quotes.latest(order.symbol)
        reference = 0
        if quote is not None:
            if quote.last > 0:
                reference = quote.last
            elif quote.bid_price > 0 and quote.ask_price > 0:
                reference = (quote.bid_price + quote.ask_price) // 2
            elif quote.prev_close > 0:
                reference = quote.prev_close
        if reference <= 0:
            return Denial(DenialCode.NO_REFERENCE_PRICE)
        if order.order_type.is_market:
            return None  # its price is a bound (limit-up, a protection price), not where it trades
        if abs(order.price - reference) * 10_000 > self.limits.price_collar_bp * reference:
            off = abs(order.price - reference) * 10_000 // reference
            return Denial(
                DenialCode.PRICE_COLLAR,
                f"{off}bp from reference {reference} > {self.limits.price_collar_bp}bp",
            )
        return None

    def _duplicate(self, order: Order) -> Denial | None:
        window = self.limits.duplicate_window_ns
        if window <= 0:
            return None
        key = (order.symbol, order.side.value, order.price, order.quantity)
        recent = self._recent.get(key)
        if recent is None:
            return None
        now = self.clock.now_ns()
        while recent and recent[0][0] <= now - window:
            recent.popleft()
        if not recent:
            del self._recent[key]
            return None
        # a completely filled one is not duplicated by its successor (an iceberg's next show); a
        # working, rejected or cancelled one is (a loop resending the same order)
        count = sum(1 for _, o in recent if o.status is not OrderStatus.FILLED)
        if count >= self.limits.duplicate_max:
            return Denial(DenialCode.DUPLICATE_ORDER, f"{count} identical within {window // 1_000_000} ms")
        return None

    def _self_cross(self, order: Order) -> Denial | None:
        for other in self._active.values():
            if other.symbol != order.symbol or other.side is order.side or other.leaves_quantity <= 0:
                continue
            buy, sell = (order, other) if order.side is Side.BUY else (other, order)
            if buy.price >= sell.price:
                return Denial(
                    DenialCode.SELF_CROSS, f"would trade against our {other.client_order_id} at {other.price}"
                )
        return None

    def _active_count(self) -> int:
        for cid in [cid for cid, o in self._active.items() if o.is_terminal]:
            del self._active[cid]
        return len(self._active)

    def _unsent_count(self) -> int:
        # an accepted order that is no longer INITIALIZED and was not reported sent was dropped
        # locally (cancelled before sending, or a failed journal write): it will never be sent
        for cid in [cid for cid, o in self._unsent.items() if o.status is not OrderStatus.INITIALIZED]:
            del self._unsent[cid]
        return len(self._unsent)

    # ------------------------------------------------------------------------------------- flow gate
    def order_accepted(self, order: Order) -> None:
        self._unsent[order.client_order_id] = order
        self._active[order.client_order_id] = order
        if self.limits.duplicate_window_ns > 0:
            key = (order.symbol, order.side.value, order.price, order.quantity)
            self._recent.setdefault(key, deque()).append((self.clock.now_ns(), order))
        if len(self._recent) > 4 * max(1, self.limits.max_active_orders):
            self._prune_recent()

    def order_adopted(self, order: Order) -> None:
        self._active[order.client_order_id] = order

    def order_sent(self, order: Order) -> None:
        self._unsent.pop(order.client_order_id, None)
        self.orders_sent += 1
        self._record_message()

    # ------------------------------------------------------------------------------------- the queue
    def queue_order(self, order: Order) -> None:
        """``order`` is journaled and may be sent: it takes its turn in the fair queue."""
        self.queue.push(order, self.clock.now_ns())

    def next_order(self) -> Order | None:
        """The queued order whose turn it is, taken out of the queue, if the rolling second has room for
        it now (orders: the cap less the cancel reserve); else None. Orders no longer INITIALIZED
        (ended locally meanwhile) are dropped from the queue on the way."""
        now = self.clock.now_ns()
        self._roll(now)
        while (head := self.queue.peek()) is not None and head.status is not OrderStatus.INITIALIZED:
            self.queue.remove(head)
        if head is None:
            return None
        if len(self._window) + 1 > self.limits.order_cap_per_second:
            self.queue.blocked()
            self.dirty = True
            return None
        self.dirty = True
        return self.queue.pop(now)

    def unqueue(self, order: Order) -> bool:
        """Take a queued ``order`` out (its cancel): it is never sent, no message is counted."""
        removed = self.queue.remove(order)
        if removed:
            self.dirty = True
        return removed

    def queue_expired(self) -> list[Order]:
        """Queued orders that waited longer than ``rate_queue_timeout_ns``, taken out (the OMS denies
        them ``rate_queue_timeout``)."""
        out = self.queue.expired(self.clock.now_ns(), self.limits.rate_queue_timeout_ns)
        if out:
            self.dirty = True
            log.warning("rate_queue_timeout", orders=len(out), bound_ns=self.limits.rate_queue_timeout_ns)
        return out

    def queue_retry_ns(self) -> int | None:
        """When the queue should be looked at again (the oldest message leaves the window, or the oldest
        queued order reaches its bound), None when nothing is queued."""
        oldest = self.queue.oldest_since_ns()
        if oldest is None:
            return None
        deadline = oldest + self.limits.rate_queue_timeout_ns
        now = self.clock.now_ns()
        self._roll(now)
        over = len(self._window) + 1 - self.limits.order_cap_per_second
        if over <= 0:
            return now
        return min(deadline, self._window[over - 1] + SECOND_NS)

    def queue_report(self) -> dict[str, int]:
        c = self.queue.counters
        return {
            "queued_now": len(self.queue),
            "orders_queued": c.queued,
            "queued_sent": c.sent,
            "queued_cancelled": c.removed,
            "queue_timeouts": c.timed_out,
            "max_queue_wait_ns": max(c.max_wait_ns, self.queue.wait_of_oldest_ns(self.clock.now_ns())),
            "peak_queue_depth": c.peak_depth,
        }

    def cancel_sent(self, order: Order) -> None:
        self.cancels_sent += 1
        self._held.discard(order.client_order_id)
        if self.limits.max_cancels_per_symbol_per_second:
            recent = self._symbol_cancels.setdefault(order.symbol, deque())
            recent.append(self.clock.now_ns())
            if len(self._symbol_cancels) > 4 * max(1, self.limits.max_active_orders):
                horizon = self.clock.now_ns() - SECOND_NS
                for symbol in [k for k, d in self._symbol_cancels.items() if not d or d[-1] <= horizon]:
                    del self._symbol_cancels[symbol]
        self._record_message()

    def cancel_wait_ns(self, order: Order) -> int:
        """0 if a cancel of ``order`` fits the full caps now, else how long until it does."""
        now = self.clock.now_ns()
        self._roll(now)
        unsent = self._unsent_count()
        wait = 0
        per_symbol = self.limits.max_cancels_per_symbol_per_second
        if per_symbol:
            recent = self._symbol_cancels.get(order.symbol)
            if recent is not None:
                while recent and recent[0] <= now - SECOND_NS:
                    recent.popleft()
                if len(recent) >= per_symbol:
                    wait = recent[len(recent) - per_symbol] + SECOND_NS - now
        # queued orders do not count in the second: a cancel goes before every one of them
        over = len(self._window) + 1 - self.limits.max_messages_per_second
        if over > 0:  # the message whose leaving the window makes room
            wait = max(wait, self._window[over - 1] + SECOND_NS - now)
        day_full = self._day_count + unsent + 1 > self.limits.max_messages_per_day
        if day_full:
            next_day = (self._day + 1) * DAY_NS - SHANGHAI_OFFSET_NS
            wait = max(wait, next_day - now)
        if wait > 0 and order.client_order_id not in self._held:
            self._held.add(order.client_order_id)  # counted once per cancel, however often retried
            self.cancel_holds += 1
            self.dirty = True
            if len(self.held_log) < HELD_LOG_MAX:
                why = "per_day" if day_full else "per_second" if over > 0 else "per_symbol_per_second"
                self.held_log.append(HeldCancel(order.client_order_id, order.symbol, now, wait, why))
            if day_full:
                log.error(
                    "daily_cap_cancel_held",
                    client_order_id=order.client_order_id,
                    cap=self.limits.max_messages_per_day,
                )
        return wait

    def _roll(self, now: int) -> None:
        window = self._window
        while window and window[0] <= now - SECOND_NS:
            window.popleft()
        day = shanghai_day(now)
        if day != self._day:
            self._day = day
            self._day_count = 0
            self._day_warned = False
            self._symbol_rejects.clear()
            self.blocked_symbols.clear()
            self.dirty = True

    def _record_message(self) -> None:
        now = self.clock.now_ns()
        self._roll(now)
        self._window.append(now)
        self._day_count += 1
        self.dirty = True
        lim = self.limits
        count = len(self._window)
        if count > self.peak_per_second:
            self.peak_per_second = count
        if count * 100 >= lim.warn_at_pct * lim.max_messages_per_second and now >= self._second_warned_until:
            self._second_warned_until = now + SECOND_NS  # once per window
            self.warnings += 1
            log.warning(
                "message_rate_warning", window="second", messages=count, cap=lim.max_messages_per_second
            )
        if not self._day_warned and self._day_count * 100 >= lim.warn_at_pct * lim.max_messages_per_day:
            self._day_warned = True
            self.warnings += 1
            log.warning(
                "message_rate_warning", window="day", messages=self._day_count, cap=lim.max_messages_per_day
            )

    def _prune_recent(self) -> None:
        horizon = self.clock.now_ns() - self.limits.duplicate_window_ns
        for key in [k for k, recent in self._recent.items() if not recent or recent[-1][0] <= horizon]:
            del self._recent[key]

    # ------------------------------------------------------------------------------------- bus
    def on_denied(self, event: OrderDenied) -> None:
        code = event.code.value
        self.denials[code] = self.denials.get(code, 0) + 1
        self.dirty = True

    def on_rejected(self, event: OrderRejected) -> None:
        if event.reason in LOCAL_REJECT_REASONS:
            return
        self._count_symbol_reject(event)
        self.consecutive_rejects += 1
        self.dirty = True
        limit = self.limits.max_consecutive_rejects
        if limit and self.consecutive_rejects >= limit and not self._halted_by_rejects:
            self._halted_by_rejects = True
            self.auto_halts += 1
            reason = f"auto_halt: {self.consecutive_rejects} consecutive broker rejects"
            log.error("auto_halt", consecutive_rejects=self.consecutive_rejects, last_reason=event.reason)
            now = self.clock.now_ns()
            self.bus.publish(HaltRequested(ts_event=now, ts_init=now, reason=reason, source="risk"))

    def _count_symbol_reject(self, event: OrderRejected) -> None:
        limit = self.limits.max_rejects_per_symbol
        verdict = classify_reject(event.reason, venue_confirmed=event.venue_confirmed)
        if not limit or not verdict.will_repeat:
            return
        self._roll(self.clock.now_ns())
        symbol = event.symbol
        count = self._symbol_rejects.get(symbol, 0) + 1
        self._symbol_rejects[symbol] = count
        self.dirty = True
        if count < limit or symbol in self.blocked_symbols:
            return
        why = f"blocked after {count} broker rejects since its last fill ({verdict.category}: {event.reason})"
        self.blocked_symbols[symbol] = why
        self.symbol_blocks += 1
        log.error("symbol_blocked_by_rejects", symbol=symbol, rejects=count, last_reason=event.reason)
        if self.on_symbol_blocked is not None:
            self.on_symbol_blocked(symbol, why)

    def on_confirmed(self, event: OrderAccepted | OrderFilled) -> None:
        if self.consecutive_rejects:
            self.consecutive_rejects = 0
            self.dirty = True
        # a fill proves the name trades (an ack does not: the exchange may still refuse the order)
        if isinstance(event, OrderFilled) and self._symbol_rejects.pop(event.symbol, None) is not None:
            self.dirty = True

    def reset_rejects(self) -> None:
        """After an operator's resume: count rejects afresh (a new auto-halt may follow), the per-symbol
        counts and blocks included."""
        self.consecutive_rejects = 0
        self._halted_by_rejects = False
        self._symbol_rejects.clear()
        self.blocked_symbols.clear()
        self.dirty = True

    def start_day(self) -> None:
        """A new trading day (``engine.trading_day``): the day's counters start from zero (the message
        count, its warning, the denials and the daily report's figures); consecutive rejects are not a
        day's count and carry on."""
        self._day = shanghai_day(self.clock.now_ns())
        self._day_count = 0
        self._day_warned = False
        self.denials.clear()
        self.orders_sent = self.cancels_sent = self.peak_per_second = 0
        self.warnings = self.cancel_holds = 0
        self.held_log.clear()
        self.queue.counters = QueueCounters()
        self.dirty = True

    # ------------------------------------------------------------------------------------- restart
    def restore(self, report_json: str | None, orders: Iterable[Order] = ()) -> int:
        """After a restart, so the day cap holds across restarts: today's message count is the larger
        of the last journaled report's (meta ``risk_report``, same Shanghai day) and what the journaled
        orders prove (each order created today and not denied; each cancel evidenced today by
        PENDING_CANCEL or CANCELED). Over-counts rather than under-counts. Returns the count."""
        now = self.clock.now_ns()
        self._roll(now)
        today = self._day
        from_report = 0
        if report_json:
            try:
                saved = json.loads(report_json)
            except json.JSONDecodeError:
                saved = {}
            if isinstance(saved, dict) and saved.get("day") == today:
                from_report = int(saved.get("messages_today", 0) or 0)
                for key in ("peak_per_second", "orders_sent", "cancels_sent"):
                    setattr(self, key, max(getattr(self, key), int(saved.get(key, 0) or 0)))
                self._restore_symbol_rejects(saved)
        proven = 0
        for order in orders:
            if order.status is OrderStatus.DENIED:
                continue
            if shanghai_day(order.ts_created) == today:
                proven += 1
            if order.status in _CANCEL_EVIDENCE and shanghai_day(order.ts_updated) == today:
                proven += 1
        self._day_count = max(self._day_count, from_report, proven)
        self.dirty = True
        log.info(
            "risk_counts_restored", messages_today=self._day_count, from_report=from_report, proven=proven
        )
        return self._day_count

    def _restore_symbol_rejects(self, saved: Mapping[str, object]) -> None:
        """Today's per-symbol counts and blocks, as journaled (a restart does not unblock a name)."""
        counts, blocked = saved.get("symbol_rejects"), saved.get("blocked_symbols")
        if isinstance(counts, dict):
            for symbol, count in counts.items():
                if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                    self._symbol_rejects[str(symbol)] = max(count, self._symbol_rejects.get(str(symbol), 0))
        if isinstance(blocked, dict):
            for symbol, why in blocked.items():
                self.blocked_symbols.setdefault(str(symbol), str(why))

    # ------------------------------------------------------------------------------------- report
    def report(self) -> dict[str, object]:
        """Counters for status, logs and the daily report (JSON-ready)."""
        now = self.clock.now_ns()
        self._roll(now)
        lim = self.limits
        return {
            "limits": asdict(lim),
            "messages_last_second": len(self._window),
            "day": self._day,
            "messages_today": self._day_count,
            "orders_sent": self.orders_sent,
            "cancels_sent": self.cancels_sent,
            "peak_per_second": self.peak_per_second,
            "peak_margin_to_hft_pct": 100 * (HFT_PER_SECOND - self.peak_per_second) // HFT_PER_SECOND,
            "day_margin_to_hft_pct": 100 * (HFT_PER_DAY - self._day_count) // HFT_PER_DAY,
            "active_orders": self._active_count(),
            "denials": dict(sorted(self.denials.items())),
            "warnings": self.warnings,
            "cancel_holds": self.cancel_holds,
            "consecutive_rejects": self.consecutive_rejects,
            "auto_halts": self.auto_halts,
            "symbol_rejects": dict(sorted(self._symbol_rejects.items())),
            "blocked_symbols": dict(sorted(self.blocked_symbols.items())),
            "symbol_blocks": self.symbol_blocks,
            **self.queue_report(),
        }
