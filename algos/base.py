"""What every execution algorithm shares: context, typed parameters, pricing, child sizing, cancel-replace.

An algorithm is a small state machine driven by its own timers (``ctx.clock.call_at``) and by the
OrderManager's events for its children (``ctx.bus``). It only ever emits ``SubmitOrder`` and cancel
commands to the OrderManager; it never talks to an adapter.

Invariants kept here for every algorithm:

- **Never overfill.** A child is sized from confirmed numbers only:
  ``remaining = parent.quantity - filled - working`` where ``working`` counts every child not yet terminal
  (including one whose cancel is pending). So ``filled + working <= parent.quantity`` at every moment.
- **Cancel-replace waits for the confirmation.** When new work is due while a child is still working,
  the child is cancelled and the replacement is sent only once the ``OrderCanceled`` (or the last fill,
  or a reject) has made it terminal; a fill racing the cancel is counted before the replacement is sized.
  So at most one child per algorithm is working at a time.
- **Market-valid children.** Sent only in continuous trading; quantity on the lot grid (a sell's odd
  tail only as the parent's very last child, sent whole); price on the tick, inside the day's band and
  the parent's limit; nothing priced from an unusable quote; a buy into a sealed limit-up (sell into a
  sealed limit-down) sends nothing and records ``unfilled_reason``.
"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self

from engine.bus import EventBus
from engine.clock import Clock, TimerHandle
from engine.enums import OrderStatus, Side
from engine.events import (
    CancelOrder,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    Quote,
    SubmitOrder,
)
from engine.market import (
    Instrument,
    TradingCalendar,
    instrument_for,
    price_limits,
    round_buy_quantity,
    round_price,
)
from engine.marketdata import QuoteSource, usable_for_pricing
from engine.orders import Order
from engine.parents import ParentOrder, ParentStatus
from engine.units import NS_PER_SECOND

STATE_VERSION = 1

CANCEL_LEAD_NS = 3 * NS_PER_SECOND
"""How long before the close of a continuous window the end-of-parent cancels go out: the exchange takes
no cancels at lunch or in the closing call auction, so a cancel sent at 11:30:00 or 14:57:00 sharp would
arrive too late and leave the child resting into the next session."""


# ---------------------------------------------------------------------------------------- pricing
class PricePolicy(StrEnum):
    PASSIVE = "passive"  # own best: the bid for a buy, the ask for a sell
    MID = "mid"  # midpoint, rounded onto the tick on the passive side
    AGGRESSIVE = "aggressive"  # opposite best, plus ``offset_ticks`` ticks through it


def limit_band(instrument: Instrument, quote: Quote) -> tuple[int, int] | None:
    """The day's (low, high) price limits: from the quote, else derived from its previous close."""
    if quote.low_limit > 0 and quote.high_limit > 0:
        return quote.low_limit, quote.high_limit
    if quote.prev_close > 0:
        return price_limits(instrument, quote.prev_close)
    return None


def blocked_reason(quote: Quote, side: Side, band: tuple[int, int] | None) -> str | None:
    """``"limit_up"`` for a buy when no one sells and the bid sits at the high limit (sealed limit-up);
    ``"limit_down"`` for a sell when no one buys and the ask sits at the low limit; else None."""
    if band is None:
        return None
    low, high = band
    if side is Side.BUY and quote.ask_price <= 0 and quote.bid_price >= high:
        return "limit_up"
    if side is Side.SELL and quote.bid_price <= 0 and 0 < quote.ask_price <= low:
        return "limit_down"
    return None


def _first_positive(*prices: int) -> int:
    for price in prices:
        if price > 0:
            return price
    return 0


def compute_price(
    policy: PricePolicy | str,
    quote: Quote | None,
    side: Side,
    offset_ticks: int,
    *,
    instrument: Instrument,
    limit_price: int = 0,
) -> int | None:
    """The limit price for a child order, or None when the quote cannot price one.

    A missing side of the book falls back to the last price, then to the other side. The result is
    rounded onto the tick on the passive side (buy down, sell up), clamped into the day's band, then to
    the parent's ``limit_price`` (buy <= limit, sell >= limit) when set. None when the quote is unusable
    (``usable_for_pricing``) or the parent's limit lies outside today's band (no valid price exists).
    """
    if quote is None or not usable_for_pricing(quote):
        return None
    policy = PricePolicy(policy)
    buy = side is Side.BUY
    own = quote.bid_price if buy else quote.ask_price
    opposite = quote.ask_price if buy else quote.bid_price
    if policy is PricePolicy.PASSIVE:
        raw = _first_positive(own, quote.last, opposite)
    elif policy is PricePolicy.MID:
        mid = quote.mid
        raw = mid if mid is not None else _first_positive(own, quote.last, opposite)
    else:
        step = offset_ticks * instrument.tick
        raw = _first_positive(opposite, quote.last, own)
        raw = raw + step if buy else raw - step
    price = round_price(instrument, raw, side)
    band = limit_band(instrument, quote)
    if band is not None:
        price = min(max(price, band[0]), band[1])
    if limit_price > 0:
        bound = round_price(instrument, limit_price, side)
        price = min(price, bound) if buy else max(price, bound)
        if band is not None and not band[0] <= price <= band[1]:
            return None
    return price if price > 0 else None


# ---------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoParams:
    """Base of each algorithm's typed parameters. Fields carry ``metadata={"help": ...}``.

    ``ParentOrder.params`` holds strings (from CSV files and the CLI); ``parse`` converts them by the
    field's type and rejects unknown names, naming the parameter and the known ones.
    """

    @classmethod
    def parse(cls, raw: Mapping[str, object], *, algo: str = "") -> Self:
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        label = f"{algo} parameter" if algo else "parameter"
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                raise ValueError(f"unknown {label} {name!r}; known: {', '.join(sorted(known)) or 'none'}")
            values[name] = _convert(label, name, hints[name], value)
        return cls(**values)


def _convert(label: str, name: str, kind: object, value: object) -> object:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value.strip()
    else:
        raise TypeError(f"{label} {name!r}: unsupported type {kind!r}")
    type_name = getattr(kind, "__name__", str(kind))
    raise ValueError(f"{label} {name!r}: expected {type_name}, got {value!r}")


# ---------------------------------------------------------------------------------------- context
class OrderRouter(Protocol):
    """What an algorithm needs from the OrderManager (``engine.oms.OrderManager`` provides it)."""

    def submit(self, command: SubmitOrder) -> Order: ...

    def cancel(self, command: CancelOrder | str) -> bool: ...

    def children_of(self, parent_id: str) -> list[Order]: ...


@dataclass(slots=True, kw_only=True)
class AlgoContext:
    clock: Clock
    oms: OrderRouter
    bus: EventBus
    quotes: QuoteSource
    calendar: TradingCalendar
    instrument: Callable[[str], Instrument] = field(default=instrument_for)


@dataclass(slots=True, frozen=True)
class _Work:
    """Work waiting for a cancel confirmation: bring filled + working up to ``target``."""

    target: int
    policy: PricePolicy
    offset_ticks: int
    label: str


# ---------------------------------------------------------------------------------------- the base
class ExecAlgo(ABC):
    """Base of every execution algorithm. Subclasses build a schedule and call ``work`` when it is due.

    Lifecycle: construct, optionally ``restore(state)``, ``start()``; then ``pause``/``resume``,
    ``stop`` (finish as DONE) or ``cancel`` (finish as CANCELED). ``done`` once finished and nothing of
    ours is working.
    """

    name: ClassVar[str] = ""
    params_type: ClassVar[type[AlgoParams]] = AlgoParams

    def __init__(self, parent: ParentOrder, ctx: AlgoContext, **overrides: object) -> None:
        if parent.quantity <= 0:
            raise ValueError(f"parent {parent.parent_id}: quantity must be positive, got {parent.quantity}")
        self.parent = parent
        self.ctx = ctx
        self.params = self.params_type.parse({**parent.params, **overrides}, algo=self.name)
        self.instrument = ctx.instrument(parent.symbol)
        self.children_sent = 0
        self.children_denied = 0
        self.cancels_sent = 0
        self._reason = ""  # why the latest due work sent nothing (limit_up, no_quote, ...)
        self._child_ids: set[str] = set()
        self._active: dict[str, Order] = {}  # our children not yet terminal
        self._filled = 0
        self._filled_value = 0
        self._pending: _Work | None = None
        self._timer: TimerHandle | None = None
        self._started = False
        self._paused = False
        self.dirty = True  # state not yet journaled (see ``Basket.journal``)
        self._finishing = False
        self._finished = False
        self._final_status = ParentStatus.DONE

    # ------------------------------------------------------------------------------------ views
    @property
    def filled_quantity(self) -> int:
        """Shares filled on our children, as confirmed by the OrderManager (late fills included)."""
        return self._filled

    @property
    def working_quantity(self) -> int:
        """Leaves of our children that are not terminal (a pending cancel still counts)."""
        return sum(order.leaves_quantity for order in self._active.values())

    @property
    def remaining(self) -> int:
        return self.parent.quantity - self._filled - self.working_quantity

    @property
    def done(self) -> bool:
        return self._finished

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def avg_fill_price(self) -> float:
        """Average fill price in milli-yuan (a ratio, reports only); 0.0 when nothing filled."""
        return self._filled_value / self._filled if self._filled else 0.0

    @property
    def unfilled_reason(self) -> str:
        if self._filled >= self.parent.quantity:
            return ""
        if self._reason:
            return self._reason
        if self._unbuyable_rest():
            return "odd_lot_remainder"
        return ""

    def stats(self) -> dict[str, object]:
        return {
            "algo": self.name,
            "parent_id": self.parent.parent_id,
            "status": self.parent.status.value,
            "children_sent": self.children_sent,
            "children_denied": self.children_denied,
            "cancels_sent": self.cancels_sent,
            "filled_quantity": self._filled,
            "working_quantity": self.working_quantity,
            "remaining": self.remaining,
            "avg_fill_price": self.avg_fill_price,
            "unfilled_reason": self.unfilled_reason,
        }

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Subscribe to our children's events and arm the schedule. Idempotent."""
        if self._started:
            return
        self._started = True
        for order in self.ctx.oms.children_of(self.parent.parent_id):  # after a restart: rebuilt orders
            self._track(order)
            self._filled += order.filled_quantity
            self._filled_value += order.filled_value
        self.ctx.bus.subscribe(OrderEvent, self._on_order_event, symbol=self.parent.symbol)
        if self._finished:
            return
        if self._finishing:  # restored mid-finish: finish again (cancels whatever is still working)
            self._finishing = False
            self._finish(self._final_status)
            return
        if self._complete():
            self._finish(ParentStatus.DONE)
            return
        if self._paused:
            self.parent.status = ParentStatus.PAUSED
            return
        self.parent.status = ParentStatus.RUNNING
        self._on_start()

    def stop(self) -> None:
        """Cancel working children and finish as DONE."""
        self.dirty = True
        self._finish(ParentStatus.DONE)

    def cancel(self) -> None:
        """Cancel working children and finish as CANCELED."""
        self.dirty = True
        self._finish(ParentStatus.CANCELED)

    def pause(self) -> None:
        """Stop slicing and cancel working children. Nothing is sent until ``resume``."""
        self.dirty = True
        if self._finishing or self._paused:
            return
        self._paused = True
        self.parent.status = ParentStatus.PAUSED
        self._pending = None
        self._cancel_timer()
        self._cancel_active()

    def resume(self) -> None:
        """Resume slicing. No catch-up burst: the subclass re-plans what the pause skipped."""
        self.dirty = True
        if not self._paused or self._finishing:
            return
        self._paused = False
        if not self._started:
            return
        self.parent.status = ParentStatus.RUNNING
        self._on_resume()

    # ------------------------------------------------------------------------------------ state
    def state(self) -> dict[str, object]:
        """JSON-serialisable state, enough to resume after a restart (children come from the store)."""
        return {
            "version": STATE_VERSION,
            "algo": self.name,
            "parent_id": self.parent.parent_id,
            "children_sent": self.children_sent,
            "children_denied": self.children_denied,
            "cancels_sent": self.cancels_sent,
            "reason": self._reason,
            "paused": self._paused,
            "finishing": self._finishing,
            "finished": self._finished,
            "final_status": self._final_status.value,
            **self._state_extra(),
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Load ``state()`` output (call before ``start``). A work item that was waiting for a cancel
        confirmation is dropped: the next due slice re-sizes from the confirmed numbers."""
        if self._started:
            raise RuntimeError(f"parent {self.parent.parent_id}: restore() must come before start()")
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"parent {self.parent.parent_id}: unsupported algo state version {version!r}")
        if state.get("algo") != self.name:
            raise ValueError(
                f"parent {self.parent.parent_id}: state of algo {state.get('algo')!r} given to {self.name!r}"
            )
        self.children_sent = state_int(state, "children_sent")
        self.children_denied = state_int(state, "children_denied")
        self.cancels_sent = state_int(state, "cancels_sent")
        self._reason = str(state.get("reason", ""))
        self._paused = bool(state.get("paused", False))
        self._finishing = bool(state.get("finishing", False))
        self._finished = bool(state.get("finished", False))
        self._final_status = ParentStatus(str(state.get("final_status", ParentStatus.DONE.value)))
        self._restore_extra(state)

    # ------------------------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _on_start(self) -> None:
        """Build (or take the restored) schedule and arm the first timer."""

    @abstractmethod
    def _on_resume(self) -> None:
        """Re-plan after a pause and arm the next timer."""

    def _state_extra(self) -> dict[str, object]:
        return {}

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        return None

    # ------------------------------------------------------------------------------------ helpers
    def price_for(
        self, policy: PricePolicy | str, quote: Quote | None, side: Side, offset_ticks: int
    ) -> int | None:
        """``compute_price`` for this parent's instrument and limit price."""
        return compute_price(
            policy,
            quote,
            side,
            offset_ticks,
            instrument=self.instrument,
            limit_price=self.parent.limit_price,
        )

    def child_quantity(self, wanted: int) -> int:
        """``wanted`` made valid: never above ``remaining`` or the per-order cap, on the lot grid
        (``round_buy_quantity``: main board multiples of 100, STAR >= 200 in steps of 1). A sell of
        everything the parent has left (nothing working) goes out whole, odd tail included."""
        remaining = self.remaining
        cap = min(wanted, remaining, self.instrument.max_limit_order_qty)
        if cap <= 0:
            return 0
        if self.parent.side is Side.SELL and cap == remaining and not self._active:
            return cap
        return round_buy_quantity(self.instrument, cap)

    def set_timer(self, when_ns: int, callback: Callable[[], None]) -> None:
        """Arm the algorithm's single timer (replacing any armed one)."""
        self._cancel_timer()

        def fire() -> None:
            self.dirty = True  # a timer moves the schedule on: the state is journaled at the next commit
            callback()

        self._timer = self.ctx.clock.call_at(when_ns, fire, f"{self.name}:{self.parent.parent_id}")

    def work(self, target: int, policy: PricePolicy | str, offset_ticks: int, label: str) -> None:
        """Bring ``filled + working`` up to the cumulative ``target`` at ``policy`` now.

        A child still working is cancelled first; the new child goes out once the cancel is confirmed
        (``_on_order_event``), sized from the confirmed fills then.
        """
        if self._finishing or self._paused:
            return
        self._pending = _Work(target, PricePolicy(policy), offset_ticks, label)
        self._cancel_active()  # a synchronous confirmation may send the work from the handler
        if self._active or self._pending is None:
            return
        item, self._pending = self._pending, None
        self._send(item)

    # ------------------------------------------------------------------------------------ internals
    def _send(self, item: _Work) -> None:
        now = self.ctx.clock.now_ns()
        if self._finishing or self._paused or not self.ctx.calendar.is_continuous(now):
            return
        qty = self.child_quantity(item.target - self._filled - self.working_quantity)
        if qty <= 0:
            return
        side = self.parent.side
        quote = self.ctx.quotes.latest(self.parent.symbol)
        if quote is None or not usable_for_pricing(quote):
            self._reason = "no_quote"
            return
        blocked = blocked_reason(quote, side, limit_band(self.instrument, quote))
        if blocked is not None:
            self._reason = blocked
            return
        price = self.price_for(item.policy, quote, side, item.offset_ticks)
        if price is None:
            self._reason = "limit_price_outside_band" if self.parent.limit_price else "no_quote"
            return
        order = self.ctx.oms.submit(
            SubmitOrder(
                symbol=self.parent.symbol,
                side=side,
                quantity=qty,
                price=price,
                parent_id=self.parent.parent_id,
                tag=f"{self.name}:{item.label}",
            )
        )
        if order.status is OrderStatus.DENIED:
            self.children_denied += 1
            self._reason = f"denied:{order.reason}"
            return
        self.children_sent += 1
        self._track(order)
        bounded = self.parent.limit_price > 0 and price != compute_price(
            item.policy, quote, side, item.offset_ticks, instrument=self.instrument
        )
        self._reason = "limit_price" if bounded else ""

    def _track(self, order: Order) -> None:
        self._child_ids.add(order.client_order_id)
        if not order.is_terminal:
            self._active[order.client_order_id] = order

    def _on_order_event(self, event: OrderEvent) -> None:
        cid = event.client_order_id
        if cid not in self._child_ids:
            return
        self.dirty = True
        if isinstance(event, OrderFilled):
            self._filled += event.quantity
            self._filled_value += event.price * event.quantity
        order = self._active.get(cid)
        if order is None or not order.is_terminal:
            if isinstance(event, OrderFilled) and self._complete():
                self._finish(ParentStatus.DONE)
            return
        del self._active[cid]
        if isinstance(event, OrderRejected):
            self._reason = f"rejected:{event.reason}"
        if self._finishing:
            self._maybe_finished()
            return
        if self._complete():
            self._finish(ParentStatus.DONE)
            return
        if self._pending is not None and not self._active:  # the cancel-replace may go out now
            item, self._pending = self._pending, None
            self._send(item)

    def _cancel_active(self) -> None:
        for order in list(self._active.values()):
            if self.ctx.oms.cancel(order.client_order_id):
                self.cancels_sent += 1

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _unbuyable_rest(self) -> bool:
        """A buy whose unfilled rest is below the smallest buy size (odd partial fills)."""
        rest = self.parent.quantity - self._filled
        return self.parent.side is Side.BUY and rest > 0 and round_buy_quantity(self.instrument, rest) == 0

    def _complete(self) -> bool:
        """Everything filled, or (buy) nothing working and the rest cannot be bought."""
        if self._filled >= self.parent.quantity:
            return True
        return not self._active and self._unbuyable_rest()

    def _finish(self, status: ParentStatus, *, cancel_working: bool = True) -> None:
        """Stop scheduling; cancel what is working; finished once nothing is working."""
        if self._finished:
            return
        if self._finishing and status is not ParentStatus.CANCELED:
            return
        self._finishing = True
        self._final_status = status
        self._pending = None
        self._paused = False
        self._cancel_timer()
        if status is ParentStatus.CANCELED:
            self.parent.status = ParentStatus.CANCELED
        if cancel_working:
            self._cancel_active()
        self._maybe_finished()

    def _maybe_finished(self) -> None:
        if self._finished or not self._finishing or self._active:
            return
        self._finished = True
        self.parent.status = self._final_status


def state_int(state: Mapping[str, object], key: str, default: int = 0) -> int:
    value = state.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"algo state {key!r}: expected an integer, got {value!r}")
    return value


def state_ints(state: Mapping[str, object], key: str) -> list[int]:
    value = state.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"algo state {key!r}: expected a list of integers, got {value!r}")
    return list(value)
