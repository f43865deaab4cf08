"""The base of every execution algorithm: context, child sizing, cancel-replace, rejects, the closing call.

What it builds on lives apart, one job each: ``algos.params`` (typed parameters), ``algos.pricing`` (child
prices), ``algos.windows`` (a parent's windows and instants), ``algos.saved_state`` (reading saved state).

An algorithm is a small state machine driven by its own timers (``ctx.clock.call_at``) and by the
OrderManager's events for its children (``ctx.bus``). It only ever emits ``SubmitOrder`` and cancel
commands to the OrderManager; it never talks to an adapter.

Invariants kept here for every algorithm:

- **Never overfill.** A child is sized from confirmed numbers only:
  ``remaining = parent.quantity - filled - working`` where ``working`` counts every child not yet terminal
  (including one whose cancel is pending, and one whose end the OrderManager holds because the broker
  counts more filled than the trade rows we hold: ``engine.held_ends``). So
  ``filled + working <= parent.quantity`` at every moment, and ``_guard_child`` refuses (and logs) any
  child that would break it. A fill the broker reports late on a child already ended that takes
  ``filled + working`` above the parent (a broker that ended the child without its figure) cancels the
  working children at once: the replacement is sized again from the confirmed numbers.
- **Cancel-replace waits for the confirmation.** When new work is due while a child is still working,
  the child is cancelled and the replacement is sent only once the ``OrderCanceled`` (or the last fill,
  or a reject) has made it terminal; a fill racing the cancel is counted before the replacement is sized.
  So at most one child per algorithm is working at a time.
- **A reject that will repeat is not answered with a new child.** Every broker reject of a child is
  classified by its reason (``engine.reject_reasons.classify_reject``): one that will not go away by
  itself (suspended, unknown symbol, insufficient cash or position, not permitted, account restricted,
  an invalid order) stops the parent at once, its reason recorded (``unfilled_reason``
  ``rejected:<reason>``); one that may clear (outside the price limits, outside a session, a broker risk
  rule) or that nobody knows backs off: no child for ``BACKOFF_FIRST_NS``, doubling up to
  ``BACKOFF_MAX_NS``, and the ``MAX_BACKOFF_REJECTS``-th such reject since the parent's last fill stops
  it; a transient one (rate limit, timeout, busy) or our own (not sent, never answered) is retried at the
  next step, and from the ``MAX_FREE_RETRIES + 1``-th since the parent's last fill on it counts as one
  that backs off. A fill
  of the parent resets the counts and the wait. The counts and the wait are journaled with the progress.
- **Market-valid children.** Sent only in continuous trading; quantity on the lot grid (a sell's odd
  tail only as the parent's very last child, sent whole); price on the tick, inside the day's band and
  the parent's limit; nothing priced from an unusable quote; a buy into a sealed limit-up (sell into a
  sealed limit-down) sends nothing and records ``unfilled_reason``.

- **No child below the minimum child value** (``min_child_value``, CNY; default the account's minimum
  commission over ``COMMISSION_BUDGET_BPS``, from ``AlgoContext.fees``), but the last remainder (all the
  continuous part has left) and the closing-auction order: due work whose child would be smaller sends
  and cancels nothing, its quantity carried by the cumulative target of the next; a child that comes out
  just below it at its own price is made up to it from the slices ahead (docs/ALGORITHMS.md).

Optional closing-auction participation (``ClosingAuctionParams``, used by TWAP, VWAP and POV): when
``closing_auction`` > 0 and the parent's window reaches 15:00, that fraction of the parent (whole lots) is
kept out of the continuous schedule, which targets the rest by the end of continuous trading. At the end
of the continuous window (``CANCEL_LEAD_NS`` before 14:57, as for any parent ending at the close) the
working children are cancelled (or left, per ``end_policy``); at 14:57:00 (or the parent's start, if
later, up to ``AUCTION_LAST_SEND``) ONE limit order goes into the closing call: ``min(planned, what the
parent has left)``, priced at the last price plus (buy) / minus (sell) ``auction_offset_ticks`` ticks,
clamped to the day's band and the parent's limit. The uncross is at one price, so the offset only buys
eligibility, not a worse fill. That order is never cancelled (the exchange takes no cancels in the
call; ``pause``/``cancel``/``stop`` leave it to the uncross) and the parent finishes when it fills at
15:00 or expires. A shortfall of the continuous part is not rolled into the auction (no burst into the
close); the planned part is not subject to VWAP's participation cap (the exchange bounds it by the
close's volume).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar, overload

import structlog

from zhixing.algos.lifecycle import ENDING, AlgoPhase, check_transition
from zhixing.algos.params import AlgoParams, parameter_error
from zhixing.algos.pricing import PricePolicy, auction_price, blocked_reason, compute_price, limit_band
from zhixing.algos.saved_state import STATE_VERSION, state_flag, state_int
from zhixing.algos.windows import auction_send_at, latest_due, past_auction_last_send
from zhixing.engine import reasons
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.enums import ORDER_TYPE_PARAM, OrderStatus, OrderType, Side, order_type_named
from zhixing.engine.events import (
    CancelOrder,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    Quote,
    SubmitOrder,
)
from zhixing.engine.market import (
    PROTECTED_BOARDS,
    FeeSchedule,
    Instrument,
    Phase,
    TradingCalendar,
    instrument_for,
    round_buy_quantity,
)
from zhixing.engine.marketdata import QuoteSource, usable_for_pricing
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import DenialCode, Unfilled, UnfilledCode
from zhixing.engine.reject_reasons import RejectAction, classify_reject
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.algos")

PERMANENT_DENIALS = reasons.PERMANENT
"""Denial codes that the same child would meet again (``engine.reasons.PERMANENT``), so the algorithm
stops at once (unfilled: denied:...) instead of retrying at every step."""

BACKOFF_FIRST_NS = 30 * NS_PER_SECOND
"""After a reject that may clear (price limits, session, broker risk rule, unknown text): no child for
this long; each further one since the parent's last fill doubles the wait, up to ``BACKOFF_MAX_NS``."""
BACKOFF_MAX_NS = 240 * NS_PER_SECOND
MAX_BACKOFF_REJECTS = 5
"""Rejects that back off, since the parent's last fill, after which the parent stops (the schedule is
bounded: 30 + 60 + 120 + 240 s of waiting, then the reason is final)."""
MAX_FREE_RETRIES = 3
"""Transient rejects since the parent's last fill retried at once; beyond, each backs off."""

MAX_REPEATED_DENIALS = 20
"""Consecutive denials with one reason code after which an algorithm stops trying."""

AUCTION_TAG = "auction"


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
    # the account's fee schedule, for the default ``min_child_value`` (None: no minimum commission known,
    # no default minimum child value)
    fees: FeeSchedule | None = None


@dataclass(slots=True, frozen=True)
class _Work:
    """Work waiting for a cancel confirmation: bring filled + working up to ``target``."""

    target: int
    policy: PricePolicy
    offset_ticks: int
    label: str


# ---------------------------------------------------------------------------------------- the base
_P = TypeVar("_P")


class PlanField(Generic[_P]):
    """A part of an algorithm's plan (``plan_state``), e.g. its slice times: reads return the value held in
    ``_plan<name>``; every assignment calls ``_plan_changed`` (a new plan version), so nothing can change
    the plan without the journal hearing of it. Hold immutable values (tuples) so nothing changes them in
    place either. The subclass's ``__init__`` sets ``_plan<name>`` directly (the empty plan, version 0)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.storage = f"_plan{name}"

    @overload
    def __get__(self, obj: None, owner: type) -> PlanField[_P]: ...

    @overload
    def __get__(self, obj: ExecAlgo, owner: type) -> _P: ...

    def __get__(self, obj: ExecAlgo | None, owner: type) -> PlanField[_P] | _P:
        if obj is None:
            return self
        value: _P = getattr(obj, self.storage)
        return value

    def __set__(self, obj: ExecAlgo, value: _P) -> None:
        setattr(obj, self.storage, value)
        obj._plan_changed()


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
            raise parameter_error(
                f"parent {parent.parent_id}: quantity must be positive, got {parent.quantity}",
                name="quantity",
                value=parent.quantity,
            )
        self.parent = parent
        self.ctx = ctx
        raw = {**parent.params, **overrides}
        # the kind of the scheduled children (``engine.enums.ORDER_TYPE_PARAM``): limit unless named
        self.child_order_type = order_type_named(str(raw.pop(ORDER_TYPE_PARAM, "limit")))
        self.params = self.params_type.parse(raw, algo=self.name)
        self.instrument = ctx.instrument(parent.symbol)
        self.min_child_value = self._min_child_value()  # milli-yuan; 0: any size
        self.children_sent = 0
        self.children_denied = 0
        self._denial_streak = 0  # consecutive denials with the same reason code
        self._last_denial: DenialCode | None = None
        self.children_rejected = 0
        self._backoff_rejects = 0  # rejects that back off, since the parent's last fill
        self._retry_rejects = 0  # transient rejects since the parent's last fill
        self._backoff_until = 0  # no child before this instant (ns)
        self.cancels_sent = 0
        self.children_refused_over_parent = 0  # children ``_guard_child`` refused (must stay 0)
        self._unfilled: Unfilled | None = None  # why the latest due work sent nothing (limit_up, ...)
        self._paused_by: Unfilled | None = None  # why it is paused (a halt, the operator), while paused
        self._child_ids: set[str] = set()
        self._active: dict[str, Order] = {}  # our children not yet terminal
        self._filled = 0
        self._filled_value = 0
        self._pending: _Work | None = None
        self._timer: TimerHandle | None = None
        self._phase = AlgoPhase.CREATED  # changed only by ``_enter`` (``algos.lifecycle.TRANSITIONS``)
        self._attached = False  # ``start`` adopted the children and subscribed to their events
        self.dirty = True  # state not yet journaled (see ``Basket.journal``)
        self._plan_version = 0  # bumped by ``_plan_changed`` whenever ``plan_state()`` changes
        self.plan_dirty = True  # the plan changed since it was last journaled (see ``Basket.journal``)
        self._final_status = ParentStatus.DONE
        self._auction_qty = 0  # planned for the closing call (0: no closing-auction part)
        self._auction_at = 0  # when it goes out (ns)
        self._auction_sent = False  # sent, or its moment passed: never twice
        self._continuous_over = False  # the continuous window's end was handled (auction pending)
        # told once when the algorithm is finished, whatever finished it: an order event, its own timer
        # (a window that ended during a pause finishes at ``resume`` with no event at all), stop, cancel
        self.on_finished: list[Callable[[], None]] = []

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
    def queued_quantity(self) -> int:
        """Leaves of our children accepted by the checks and the gate but not yet sent: INITIALIZED,
        waiting in the message-rate queue (``engine.rate_queue``) or for the next flush. Part of
        ``working_quantity``: the algorithm sizes from them as working, they are not denied."""
        return sum(o.leaves_quantity for o in self._active.values() if o.status is OrderStatus.INITIALIZED)

    @property
    def remaining(self) -> int:
        return self.parent.quantity - self._filled - self.working_quantity

    @property
    def auction_quantity(self) -> int:
        """Shares planned for the closing call auction (0: none)."""
        return self._auction_qty

    @property
    def auction_at(self) -> int:
        """When the closing-auction order goes out (ns), 0 when none is planned."""
        return self._auction_at

    @property
    def auction_tag(self) -> str:
        return f"{self.name}:{AUCTION_TAG}"

    @property
    def phase(self) -> AlgoPhase:
        return self._phase

    @property
    def done(self) -> bool:
        return self._phase is AlgoPhase.FINISHED

    @property
    def paused(self) -> bool:
        return self._phase is AlgoPhase.PAUSED

    @property
    def ending(self) -> bool:
        """Finishing or finished: nothing new is sent, pause and resume do nothing."""
        return self._phase in ENDING

    @property
    def avg_fill_price(self) -> float:
        """Average fill price in milli-yuan (a ratio, reports only); 0.0 when nothing filled."""
        return self._filled_value / self._filled if self._filled else 0.0

    @property
    def unfilled(self) -> Unfilled | None:
        """Why the parent is not filled (None: filled, or running with nothing in its way). Never None for
        a parent that ended short or stands paused: what stood in its way, or else how it ended
        (``ending_reason``), or why it is paused."""
        if self._filled >= self.parent.quantity:
            return None
        if self._phase is AlgoPhase.PAUSED:
            return self._paused_by or Unfilled(UnfilledCode.PAUSED)
        if self._unfilled is not None:
            return self._unfilled
        if self._unbuyable_rest():
            return Unfilled(UnfilledCode.ODD_LOT_REMAINDER)
        if self._phase in ENDING:  # a journal written before every ending recorded its cause
            return Unfilled(UnfilledCode.ENDED)
        return None

    @property
    def unfilled_reason(self) -> str:
        """``unfilled`` as the text the journal, the reports and the e-mails show ("" : none)."""
        unfilled = self.unfilled
        return "" if unfilled is None else str(unfilled)

    def stats(self) -> dict[str, object]:
        return {
            "algo": self.name,
            "parent_id": self.parent.parent_id,
            "status": self.parent.status.value,
            "children_sent": self.children_sent,
            "children_denied": self.children_denied,
            "children_rejected": self.children_rejected,
            "cancels_sent": self.cancels_sent,
            "filled_quantity": self._filled,
            "working_quantity": self.working_quantity,
            "queued": self.queued_quantity,  # of the working: waiting for the rate window, not sent
            "remaining": self.remaining,
            "avg_fill_price": self.avg_fill_price,
            "unfilled_reason": self.unfilled_reason,
        }

    # ------------------------------------------------------------------------------------ lifecycle
    def _enter(self, phase: AlgoPhase) -> None:
        """The one way the phase changes: the edge must be in ``algos.lifecycle.TRANSITIONS``, else
        ``IllegalPhaseTransition`` (naming both phases) and the phase is unchanged."""
        check_transition(self._phase, phase)
        self._phase = phase

    def start(self) -> None:
        """Subscribe to our children's events and arm the schedule. Idempotent."""
        if self._attached:
            return
        self._attached = True
        children = self.ctx.oms.children_of(self.parent.parent_id)  # after a restart: rebuilt orders
        for order in children:
            self._track(order)
            self._filled += order.filled_quantity
            self._filled_value += order.filled_value
        self.ctx.bus.subscribe(OrderEvent, self._on_order_event, symbol=self.parent.symbol)
        if self._phase is AlgoPhase.FINISHED:
            return
        if self._phase is AlgoPhase.FINISHING:  # restored mid-finish: finish again (cancels what works)
            self._begin_finishing(self._final_status, cancel_working=True)
            return
        if self._missed_a_final_reject(children):
            return
        if self._complete():
            self._finish(ParentStatus.DONE)
            return
        if self._phase is AlgoPhase.PAUSED:
            self.parent.status = ParentStatus.PAUSED
            return
        self._enter(AlgoPhase.RUNNING)
        self.parent.status = ParentStatus.RUNNING
        self._on_start()

    def stop(self, why: Unfilled | None = None) -> None:
        """Cancel working children and finish as DONE. Short, the parent's reason is why it stands paused
        (a halt), else ``why``, else ``stopped``: the stop, not what its last work met."""
        self.dirty = True
        self._finish(ParentStatus.DONE, why=self._paused_by or why or Unfilled(UnfilledCode.STOPPED))

    def cancel(self, why: Unfilled | None = None) -> None:
        """Cancel working children and finish as CANCELED. Short, the parent's reason is ``why`` (default:
        ``canceled``)."""
        self.dirty = True
        self._finish(ParentStatus.CANCELED, why=why or Unfilled(UnfilledCode.CANCELED))

    def pause(self, why: Unfilled | None = None) -> None:
        """Stop slicing and cancel working children. Nothing is sent until ``resume``. ``why`` (default:
        ``paused``) is the parent's reason while it stands paused (``unfilled``)."""
        self.dirty = True
        if self.ending or self.paused:
            return
        self._paused_by = why
        self._enter(AlgoPhase.PAUSED)
        self.parent.status = ParentStatus.PAUSED
        self._pending = None
        self._cancel_timer()
        self._cancel_active()

    def resume(self) -> None:
        """Resume slicing. No catch-up burst: the subclass re-plans what the pause skipped."""
        self.dirty = True
        if not self.paused:
            return
        self._paused_by = None
        if not self._attached:  # paused before it was ever started: ``start`` will run it
            self._enter(AlgoPhase.CREATED)
            return
        self._enter(AlgoPhase.RUNNING)
        self.parent.status = ParentStatus.RUNNING
        self._on_resume()

    # ------------------------------------------------------------------------------------ state
    @property
    def plan_version(self) -> int:
        """Which plan ``plan_state()`` holds: bumped at every change of it (built, re-planned)."""
        return self._plan_version

    def state(self) -> dict[str, object]:
        """JSON-serialisable state, enough to resume after a restart (children come from the store):
        ``progress_state()`` and ``plan_state()`` in one dict (their keys never overlap)."""
        progress, plan = self.progress_state(), self.plan_state()
        overlap = progress.keys() & plan.keys()
        if overlap:
            raise RuntimeError(f"{self.name}: keys {sorted(overlap)} are both progress and plan")
        return {**progress, **plan}

    def plan_state(self) -> dict[str, object]:
        """The large, rarely changing part of ``state()`` (a schedule's slice times and targets), JSON-
        serialisable. It changes only together with ``plan_version``, so a journal stores it once per
        version (``Basket.journal``) instead of with every progress change."""
        return self._plan_extra()

    def progress_state(self) -> dict[str, object]:
        """The small part of ``state()`` that moves on as the algorithm runs (next slice, counters, flags),
        with the ``plan_version`` of the plan it goes with."""
        return {
            "version": STATE_VERSION,
            "plan_version": self._plan_version,
            "algo": self.name,
            "parent_id": self.parent.parent_id,
            "children_sent": self.children_sent,
            "children_denied": self.children_denied,
            "children_rejected": self.children_rejected,
            "backoff_rejects": self._backoff_rejects,
            "retry_rejects": self._retry_rejects,
            "backoff_until": self._backoff_until,
            "cancels_sent": self.cancels_sent,
            "reason": "" if self._unfilled is None else str(self._unfilled),
            # only while paused for a reason (states of old, and of every other phase, read alike)
            **({} if self._paused_by is None else {"paused_reason": str(self._paused_by)}),
            # the phase, in the journal's keys of old (journals written before the phase table read alike)
            "paused": self._phase is AlgoPhase.PAUSED,
            "finishing": self._phase in ENDING,
            "finished": self._phase is AlgoPhase.FINISHED,
            "final_status": self._final_status.value,
            "auction_qty": self._auction_qty,
            "auction_at": self._auction_at,
            "auction_sent": self._auction_sent,
            "continuous_over": self._continuous_over,
            **self._state_extra(),
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Load ``state()`` output (call before ``start``). A work item that was waiting for a cancel
        confirmation is dropped: the next due slice re-sizes from the confirmed numbers."""
        if self._attached:
            raise RuntimeError(f"parent {self.parent.parent_id}: restore() must come before start()")
        version = state.get("version")
        if version != STATE_VERSION:
            raise parameter_error(
                f"parent {self.parent.parent_id}: unsupported algo state version {version!r}",
                name="version",
                value=version,
            )
        if state.get("algo") != self.name:
            raise parameter_error(
                f"parent {self.parent.parent_id}: state of algo {state.get('algo')!r} given to {self.name!r}",
                name="algo",
                value=state.get("algo"),
            )
        self.children_sent = state_int(state, "children_sent")
        self.children_denied = state_int(state, "children_denied")
        self.cancels_sent = state_int(state, "cancels_sent")
        # absent in states written before rejects were classified: none counted, no wait
        self.children_rejected = state_int(state, "children_rejected")
        self._backoff_rejects = state_int(state, "backoff_rejects")
        self._retry_rejects = state_int(state, "retry_rejects")
        self._backoff_until = state_int(state, "backoff_until")
        self._unfilled = Unfilled.from_journal(str(state.get("reason", "")))
        self._restore_phase(state)
        if self._phase is AlgoPhase.PAUSED:
            self._paused_by = Unfilled.from_journal(str(state.get("paused_reason", "")))
        self._final_status = ParentStatus(str(state.get("final_status", ParentStatus.DONE.value)))
        # absent in states written before closing-auction participation existed: none planned
        self._auction_qty = state_int(state, "auction_qty")
        self._auction_at = state_int(state, "auction_at")
        self._auction_sent = state_flag(state, "auction_sent")
        self._continuous_over = state_flag(state, "continuous_over")
        self._restore_extra(state)
        # absent in states written before the plan was journaled apart: version 0. The restored plan is
        # journaled again at the next commit (the journal may be another file, or hold a complete state).
        self._plan_version = state_int(state, "plan_version")
        self.plan_dirty = True

    def _restore_phase(self, state: Mapping[str, object]) -> None:
        """The phase the journal holds (its ``paused`` / ``finishing`` / ``finished`` flags), entered
        through the table from CREATED."""
        if state_flag(state, "finished"):
            phase = AlgoPhase.FINISHED
        elif state_flag(state, "finishing"):
            phase = AlgoPhase.FINISHING
        elif state_flag(state, "paused"):
            phase = AlgoPhase.PAUSED
        else:
            phase = AlgoPhase.CREATED
        if phase is not self._phase:
            self._enter(phase)

    # ------------------------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _on_start(self) -> None:
        """Build (or take the restored) schedule and arm the first timer."""

    @abstractmethod
    def _on_resume(self) -> None:
        """Re-plan after a pause and arm the next timer."""

    def _state_extra(self) -> dict[str, object]:
        """The subclass's progress (small, may change at every step)."""
        return {}

    def _plan_extra(self) -> dict[str, object]:
        """The subclass's plan (large); a subclass with one calls ``_plan_changed`` at every change."""
        return {}

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        """Load the subclass's progress and plan from ``state()`` output."""
        return None

    def _plan_changed(self) -> None:
        """The plan changed: a new ``plan_version``, journaled (plan and progress) at the next commit."""
        self._plan_version += 1
        self.plan_dirty = True
        self.dirty = True

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

    def _min_child_value(self) -> int:
        """``min_child_value`` in milli-yuan: the parameter, or (negative) the account's default."""
        value = self.params.min_child_value
        if value >= 0:
            return round(value * 1000)
        fees = self.ctx.fees
        return fees.min_child_value(self.instrument) if fees is not None else 0

    def min_child_quantity(self, price: int) -> int:
        """The fewest shares on the lot grid worth at least ``min_child_value`` at ``price`` (0: none)."""
        if self.min_child_value <= 0 or price <= 0:
            return 0
        return round_buy_quantity(
            self.instrument, -(-self.min_child_value // price) + self.instrument.buy_step - 1
        )

    def reference_price(self) -> int:
        """The price a child would meet now: the opposite best, else the last price (0: no quote)."""
        quote = self.ctx.quotes.latest(self.parent.symbol)
        if quote is None:
            return 0
        opposite = quote.ask_price if self.parent.side is Side.BUY else quote.bid_price
        return opposite if opposite > 0 else quote.last

    def _continuous_room(self, working: int) -> int:
        """What the continuous schedule has left with ``working`` shares working: the parent less the
        filled, the working and a closing-auction part not yet sent."""
        auction = 0 if self._auction_sent else self._auction_qty
        return self.parent.quantity - self._filled - working - auction

    def _below_minimum(self, qty: int, price: int, room: int) -> bool:
        """A child of ``qty`` at ``price`` is worth less than ``min_child_value`` and is not the last
        remainder (all of ``room``, on the lot grid for a buy): it is not sent."""
        if self.min_child_value <= 0 or qty <= 0 or price <= 0 or qty * price >= self.min_child_value:
            return False
        last = room if self.parent.side is Side.SELL else round_buy_quantity(self.instrument, room)
        return qty < last

    def set_timer(self, when_ns: int, callback: Callable[[], None]) -> None:
        """Arm the algorithm's single timer (replacing any armed one)."""
        self._cancel_timer()

        def fire() -> None:
            self.dirty = True  # a timer moves the schedule on: the state is journaled at the next commit
            callback()

        self._timer = self.ctx.clock.call_at(when_ns, fire, f"{self.name}:{self.parent.parent_id}")

    def due_slice(self, times: tuple[int, ...], next_index: int, now_ns: int) -> int:
        """The latest of ``times`` due at ``now_ns`` (the caller checked ``times[next_index] <= now_ns``).

        When that is past ``next_index`` the timer fired a whole interval or more late (the machine
        suspended, the loop blocked, the process stopped by a debugger): ``algo_timer_late`` is logged and
        the caller re-plans like a resume, so the slices it missed are spread over the ones ahead rather
        than sent at once.
        """
        index = latest_due(times, now_ns)
        if index > next_index:
            log.warning(
                "algo_timer_late",
                algo=self.name,
                parent_id=self.parent.parent_id,
                symbol=self.parent.symbol,
                late_s=round((now_ns - times[next_index]) / NS_PER_SECOND, 3),
                missed_slices=index - next_index,
            )
        return index

    def work(self, target: int, policy: PricePolicy | str, offset_ticks: int, label: str) -> None:
        """Bring ``filled + working`` up to the cumulative ``target`` at ``policy`` now.

        A child still working is cancelled first; the new child goes out once the cancel is confirmed
        (``_on_order_event``), sized from the confirmed fills then.
        """
        if self.ending or self.paused:
            return
        # below the minimum child value even once the working child is replaced: nothing is cancelled or
        # sent, the quantity rides on the next due work (cumulative targets carry it)
        room = self._continuous_room(0)
        if self._below_minimum(min(target - self._filled, room), self.reference_price(), room):
            return
        self._pending = _Work(target, PricePolicy(policy), offset_ticks, label)
        self._cancel_active()  # a synchronous confirmation may send the work from the handler
        if self._active or self._pending is None:
            return
        item, self._pending = self._pending, None
        self._send(item)

    # ------------------------------------------------------------------------------------ closing auction
    def plan_closing_auction(self, total: int) -> int:
        """Plan the closing-auction part of ``total`` (what the schedule aims to fill) and return it.

        Nothing (0) unless ``closing_auction`` > 0 and the parent's window contains the 15:00 match of
        its last day. The part is ``floor(fraction x total)`` on the lot grid (all of ``total`` when the
        fraction is 1), plus a sell's odd tail (the auction order is the parent's last child, the only
        one that may carry it), within the per-order cap.
        """
        self._auction_qty, self._auction_at = 0, 0
        fraction = float(getattr(self.params, "closing_auction", 0.0))
        parent = self.parent
        if fraction <= 0 or total <= 0:
            return 0
        send_at = auction_send_at(self.ctx.calendar, parent)
        if send_at is None:
            return 0
        # a fraction of 1 keeps everything; otherwise whole lots, and a sell's odd tail rides on the
        # auction order, the parent's last child (an odd tail goes out only whole, with the last child)
        qty = total if fraction >= 1 else round_buy_quantity(self.instrument, math.floor(fraction * total))
        if 0 < qty < total and self.parent.side is Side.SELL:
            qty += total % self.instrument.buy_step
        cap = self.instrument.max_limit_order_qty
        if qty > cap:
            qty = round_buy_quantity(self.instrument, cap)
        if qty > 0:
            self._auction_qty, self._auction_at = qty, send_at
        return self._auction_qty

    def end_of_window(self, cancel_working: bool) -> None:
        """The parent's continuous window is over (its end instant): finish, or with a closing-auction
        part still to send, cancel what works (``cancel_working``), wait for ``auction_at``, send it, and
        finish without cancelling anything (the call takes no cancels)."""
        if self.ending:
            return
        if self._auction_qty <= 0 or self._auction_sent:
            self._finish(ParentStatus.DONE, cancel_working=cancel_working, why=self.window_ended())
            return
        if not self._continuous_over:
            self._continuous_over = True
            self.dirty = True
            self._pending = None  # a replacement waiting for its cancel must not go out now
            if cancel_working:
                self._cancel_active()
        if self.ctx.clock.now_ns() < self._auction_at:
            self.set_timer(self._auction_at, lambda: self.end_of_window(cancel_working))
            return
        self._send_auction()
        self._finish(ParentStatus.DONE, cancel_working=False, why=self.window_ended())

    def window_ended(self) -> Unfilled:
        """The reason of a parent whose window ended short: what was still working at that moment."""
        return Unfilled(
            UnfilledCode.WINDOW_ENDED,
            f"{self.working_quantity} of {self.parent.quantity} working, {self._filled} filled at the end",
        )

    def _child_price(self, price: int) -> int:
        """A limit child's price; a market child's protection price: the algorithm's price where the
        venue takes one (STAR, ChiNext) or the parent has a limit, else 0 (the pre-trade check then
        bounds it at the day's limit, as the exchange does)."""
        if self.child_order_type is OrderType.LIMIT:
            return price
        protected = self.parent.limit_price > 0 or self.instrument.board in PROTECTED_BOARDS
        return price if protected else 0

    def _send_auction(self) -> None:
        """Send the closing-auction order once (see the module docstring); record why when it cannot."""
        self._auction_sent = True
        self.dirty = True
        now = self.ctx.clock.now_ns()
        if self.ctx.calendar.phase_at(now) is not Phase.CLOSING_CALL or past_auction_last_send(now):
            self._unfilled = Unfilled(UnfilledCode.CLOSING_AUCTION_MISSED)
            return
        qty = self.child_quantity(self._auction_qty)
        if qty <= 0 or not self._guard_child(qty):
            return
        side = self.parent.side
        quote = self.ctx.quotes.latest(self.parent.symbol)
        price = auction_price(
            quote,
            side,
            int(getattr(self.params, "auction_offset_ticks", 0)),
            instrument=self.instrument,
            limit_price=self.parent.limit_price,
        )
        if price is None:
            self._unfilled = Unfilled(
                UnfilledCode.NO_QUOTE
                if quote is None or not self.parent.limit_price
                else UnfilledCode.LIMIT_PRICE_OUTSIDE_BAND
            )
            return
        order = self.ctx.oms.submit(
            SubmitOrder(
                symbol=self.parent.symbol,
                side=side,
                quantity=qty,
                price=price,
                parent_id=self.parent.parent_id,
                tag=self.auction_tag,
            )
        )
        if order.status is OrderStatus.DENIED:
            self._denied(order)
            return
        self.children_sent += 1
        self._track(order)

    # ------------------------------------------------------------------------------------ internals
    def _send(self, item: _Work) -> None:
        now = self.ctx.clock.now_ns()
        if self.ending or self.paused or not self.ctx.calendar.is_continuous(now):
            return
        if now < self._backoff_until:
            return  # backing off after a reject that may clear: its reason stays the unfilled reason
        qty = self.child_quantity(item.target - self._filled - self.working_quantity)
        if qty <= 0 or not self._guard_child(qty):
            return
        side = self.parent.side
        quote = self.ctx.quotes.latest(self.parent.symbol)
        if quote is None or not usable_for_pricing(quote):
            self._unfilled = Unfilled(UnfilledCode.NO_QUOTE)
            return
        blocked = blocked_reason(quote, side, limit_band(self.instrument, quote))
        if blocked is not None:
            self._unfilled = Unfilled(blocked)
            return
        price = self.price_for(item.policy, quote, side, item.offset_ticks)
        if price is None:
            self._unfilled = Unfilled(
                UnfilledCode.LIMIT_PRICE_OUTSIDE_BAND if self.parent.limit_price else UnfilledCode.NO_QUOTE
            )
            return
        # at the child's own price, under the minimum (a passive price, fills racing the cancel): made up to
        # the minimum from the slices ahead, never beyond the continuous part's room
        room = self._continuous_room(self.working_quantity)
        if self._below_minimum(qty, price, room):
            qty = self.child_quantity(min(self.min_child_quantity(price), room))
            if qty <= 0 or not self._guard_child(qty):
                return
        order = self.ctx.oms.submit(
            SubmitOrder(
                symbol=self.parent.symbol,
                side=side,
                quantity=qty,
                price=self._child_price(price),
                parent_id=self.parent.parent_id,
                tag=f"{self.name}:{item.label}",
                order_type=self.child_order_type,
            )
        )
        if order.status is OrderStatus.DENIED:
            self._denied(order)
            return
        self.children_sent += 1
        self._denial_streak = 0
        self._track(order)
        bounded = self.parent.limit_price > 0 and price != compute_price(
            item.policy, quote, side, item.offset_ticks, instrument=self.instrument
        )
        self._unfilled = Unfilled(UnfilledCode.LIMIT_PRICE) if bounded else None

    def _guard_child(self, qty: int) -> bool:
        """The last check before a child goes out: never more than the parent has room for, counting
        every child not yet terminal (``remaining``). False (nothing sent, logged) when it would."""
        room = self.remaining
        if qty <= room:
            return True
        self.children_refused_over_parent += 1
        log.error(
            "child_over_parent_refused",
            parent_id=self.parent.parent_id,
            quantity=qty,
            room=room,
            filled=self._filled,
            working=self.working_quantity,
        )
        return False

    def _over_committed(self) -> None:
        """A late fill on an ended child took ``filled + working`` above the parent: cancel what works
        (the next work is sized again from the confirmed numbers)."""
        if self._filled + self.working_quantity <= self.parent.quantity or not self._active:
            return
        log.error(
            "late_fill_over_parent",
            parent_id=self.parent.parent_id,
            filled=self._filled,
            working=self.working_quantity,
            quantity=self.parent.quantity,
        )
        self._cancel_active()

    def _denied(self, order: Order) -> None:
        """A child was refused before reaching the broker. Retrying cannot help when the reason is about
        the order itself (too large for the risk limits) or keeps coming back: stop instead of asking
        again at every step, and say why."""
        self.children_denied += 1
        reason, code = order.reason, order.denial
        self._unfilled = Unfilled.denied(code, reason)
        self._denial_streak = self._denial_streak + 1 if code == self._last_denial else 1
        self._last_denial = code
        if code in PERMANENT_DENIALS or self._denial_streak >= MAX_REPEATED_DENIALS:
            log.warning(
                "algo_stopped_after_denials",
                parent_id=self.parent.parent_id,
                reason=reason,
                consecutive=self._denial_streak,
            )
            self.dirty = True
            self._finish(ParentStatus.DONE)  # the denial is the reason, not a stop

    def _rejected(self, event: OrderRejected) -> None:
        """A child was rejected: stop, back off or retry by what its reason says (module docstring)."""
        self.children_rejected += 1
        if self.ending:
            return
        verdict = classify_reject(event.reason, venue_confirmed=event.venue_confirmed)
        action = verdict.action
        if action is RejectAction.RETRY:
            self._retry_rejects += 1
            if self._retry_rejects <= MAX_FREE_RETRIES:
                return
            action = RejectAction.BACK_OFF  # retried enough at once: it keeps coming back
        if action is RejectAction.BACK_OFF:
            self._backoff_rejects += 1
            if self._backoff_rejects < MAX_BACKOFF_REJECTS:
                wait = min(BACKOFF_FIRST_NS << (self._backoff_rejects - 1), BACKOFF_MAX_NS)
                self._backoff_until = self.ctx.clock.now_ns() + wait
                log.info(
                    "algo_backing_off_after_reject",
                    parent_id=self.parent.parent_id,
                    reason=event.reason,
                    category=verdict.category,
                    rejects=self._backoff_rejects,
                    wait_s=wait // NS_PER_SECOND,
                )
                return
        log.warning(
            "algo_stopped_after_reject",
            parent_id=self.parent.parent_id,
            symbol=self.parent.symbol,
            reason=event.reason,
            category=verdict.category,
            rejects=self.children_rejected,
        )
        self._finish(ParentStatus.DONE)  # the reject (recorded by the caller) is the reason

    def _missed_a_final_reject(self, children: list[Order]) -> bool:
        """After a restart: a child rejected for a reason that will not go away, which this algorithm never
        heard of (it came while no engine ran; the restart's reconciliation applied it), stops the parent
        before it sends anything. The first ``children_rejected`` rejected children (by time) were heard."""
        rejected = sorted(
            (o for o in children if o.status is OrderStatus.REJECTED), key=lambda o: o.ts_updated
        )
        for order in rejected[self.children_rejected :]:
            self.children_rejected += 1
            self.dirty = True
            verdict = classify_reject(order.reason, venue_confirmed=order.venue_confirmed)
            if verdict.action is RejectAction.STOP:
                self._unfilled = Unfilled(UnfilledCode.REJECTED, order.reason)
                log.warning(
                    "algo_stopped_after_reject",
                    parent_id=self.parent.parent_id,
                    symbol=self.parent.symbol,
                    reason=order.reason,
                    category=verdict.category,
                    rejects=self.children_rejected,
                    learnt="at restart",
                )
                self.dirty = True
                self._finish(ParentStatus.DONE)  # the reject is the reason
                return True
        return False

    def _track(self, order: Order) -> None:
        self._child_ids.add(order.client_order_id)
        if not order.is_terminal:
            self._active[order.client_order_id] = order

    def _on_order_event(self, event: OrderEvent) -> None:
        cid = event.client_order_id
        if cid not in self._child_ids:
            return
        if isinstance(event, OrderFilled):
            self._filled += event.quantity
            self._filled_value += event.price * event.quantity
            if self._backoff_rejects or self._retry_rejects or self._backoff_until:
                self._backoff_rejects = self._retry_rejects = self._backoff_until = 0
                self.dirty = True
        order = self._active.get(cid)
        if order is None or not order.is_terminal:
            # an ack, a partial fill, a late fill: nothing ``state()`` holds has changed (fills are
            # rebuilt from the store), so the algorithm is not marked dirty unless it finishes now
            if isinstance(event, OrderFilled) and self._complete():
                self.dirty = True
                self._finish(ParentStatus.DONE)
            elif isinstance(event, OrderFilled) and order is None:
                self._over_committed()  # a late fill on a child that already ended
            return
        self.dirty = True  # a child just ended: what follows may change the state
        del self._active[cid]
        if isinstance(event, OrderRejected):
            self._unfilled = Unfilled(UnfilledCode.REJECTED, event.reason)
            self._rejected(event)
        elif isinstance(event, OrderDenied):  # denied after it was accepted: queued past the rate bound
            self._denied(order)
        if self.ending:
            self._maybe_finished()
            return
        if self._complete():
            self._finish(ParentStatus.DONE)
            return
        if self._pending is not None and not self._active:  # the cancel-replace may go out now
            item, self._pending = self._pending, None
            self._send(item)

    def _cancel_active(self) -> None:
        auction = self.auction_tag
        for order in list(self._active.values()):
            if order.tag == auction:
                continue  # the closing-auction order: the call takes no cancels; it uncrosses or expires
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

    def _finish(
        self, status: ParentStatus, *, cancel_working: bool = True, why: Unfilled | None = None
    ) -> None:
        """Stop scheduling; cancel what is working; finished once nothing is working. ``why``: how it
        ended, the reason of a parent that ends short (see ``_record_ending``)."""
        if self._phase is AlgoPhase.FINISHED:
            return
        if self._phase is AlgoPhase.FINISHING and status is not ParentStatus.CANCELED:
            return
        if why is not None:
            self._record_ending(why)
        self._begin_finishing(status, cancel_working=cancel_working)

    def _record_ending(self, why: Unfilled) -> None:
        """A parent that ends short always says why (never an empty reason): the operator's stop or
        cancel says so over what its last work met; its window's end only when nothing else stood in
        its way (a sealed limit, a denial or a reject stays the reason). Recorded as the finish begins,
        so it is journaled with the finishing state and the working quantity is the one at the end."""
        if self._filled >= self.parent.quantity or self._unbuyable_rest():
            return
        if why.code is UnfilledCode.WINDOW_ENDED and self._unfilled is not None:
            return
        if self._unfilled is not None and self._unfilled.code in reasons.ENDINGS:
            return  # already ending (a cancel over a window's end): the first ending stays
        self._unfilled = why
        self.dirty = True

    def _begin_finishing(self, status: ParentStatus, *, cancel_working: bool) -> None:
        self._enter(AlgoPhase.FINISHING)
        self._paused_by = None
        self._final_status = status
        self._pending = None
        self._cancel_timer()
        if status is ParentStatus.CANCELED:
            self.parent.status = ParentStatus.CANCELED
        if cancel_working:
            self._cancel_active()
        self._maybe_finished()

    def _maybe_finished(self) -> None:
        if self._phase is not AlgoPhase.FINISHING or self._active:
            return
        self._enter(AlgoPhase.FINISHED)
        self.parent.status = self._final_status
        for listener in list(self.on_finished):
            listener()
