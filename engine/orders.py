"""The order record and its state machine.

An order changes only through ``Order.apply(event)``. Allowed transitions are data: ``TRANSITIONS``
maps ``(status, event type)`` to the next status. Anything missing from the table raises
``IllegalTransition`` naming both. Fills are idempotent by ``trade_id``; a fill that would take
``filled_quantity`` beyond ``quantity`` raises ``OverfillError`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zhixing.engine.enums import TERMINAL_STATUSES, WORKING_STATUSES, OrderStatus, OrderType, Side
from zhixing.engine.errors import IllegalTransition, OverfillError
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from zhixing.engine.reasons import DenialCode

S = OrderStatus

# A fill maps to PARTIALLY_FILLED here; ``apply`` promotes it to FILLED when nothing is left, except from
# the terminal CANCELED/EXPIRED, where a late fill is a fact to record but does not reopen the order.
_FILL = OrderFilled
# The sentinel meaning "go back to the status before the cancel request" (a cancel reject).
PREVIOUS = "PREVIOUS"

TRANSITIONS: dict[tuple[OrderStatus, type[OrderEvent]], OrderStatus | str] = {
    (S.INITIALIZED, OrderDenied): S.DENIED,
    (S.INITIALIZED, OrderSubmitted): S.SUBMITTED,
    # the adapter refused it synchronously (e.g. disconnected): definitive, nothing reached the broker
    (S.INITIALIZED, OrderRejected): S.REJECTED,
    # cancelled while still in the outbox: it never reached a broker
    (S.INITIALIZED, OrderCanceled): S.CANCELED,
    (S.SUBMITTED, OrderAccepted): S.ACCEPTED,
    (S.SUBMITTED, OrderRejected): S.REJECTED,
    # callbacks are not ordered: a trade can arrive before the ack
    (S.SUBMITTED, _FILL): S.PARTIALLY_FILLED,
    # cancel of an order whose ack has not arrived yet
    (S.SUBMITTED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.SUBMITTED, OrderCanceled): S.CANCELED,
    (S.SUBMITTED, OrderExpired): S.EXPIRED,
    (S.ACCEPTED, OrderAccepted): S.ACCEPTED,  # duplicate ack after reconnect
    (S.ACCEPTED, _FILL): S.PARTIALLY_FILLED,
    (S.ACCEPTED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.ACCEPTED, OrderCanceled): S.CANCELED,  # cancelled at the terminal, or by the broker
    (S.ACCEPTED, OrderExpired): S.EXPIRED,
    # 废单 after 已报: the exchange refused what the broker's system had already acknowledged (QMT 57)
    (S.ACCEPTED, OrderRejected): S.REJECTED,
    (S.PARTIALLY_FILLED, OrderAccepted): S.PARTIALLY_FILLED,  # late ack after a fill: no regression
    (S.PARTIALLY_FILLED, _FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, OrderCanceled): S.CANCELED,
    (S.PARTIALLY_FILLED, OrderExpired): S.EXPIRED,
    (S.PENDING_CANCEL, OrderPendingCancel): S.PENDING_CANCEL,  # a second cancel request is a no-op
    (S.PENDING_CANCEL, OrderAccepted): S.PENDING_CANCEL,  # the ack overtaken by our cancel request
    (S.PENDING_CANCEL, _FILL): S.PENDING_CANCEL,  # fill racing the cancel; FILLED if nothing is left
    (S.PENDING_CANCEL, OrderCanceled): S.CANCELED,
    (S.PENDING_CANCEL, OrderCancelRejected): PREVIOUS,  # cancel refused: back to where it was
    (S.PENDING_CANCEL, OrderRejected): S.REJECTED,  # the order itself was rejected while we cancelled
    (S.PENDING_CANCEL, OrderExpired): S.EXPIRED,
    (S.FILLED, OrderAccepted): S.FILLED,  # late ack
    (S.FILLED, OrderPendingCancel): S.FILLED,  # cancel raced the last fill
    (S.FILLED, OrderCancelRejected): S.FILLED,  # "already completed": never overwrites FILLED
    (S.FILLED, OrderCanceled): S.FILLED,  # a stale cancel confirmation cannot undo trades
    (S.CANCELED, _FILL): S.CANCELED,  # late fill on a cancelled order: applied, order stays cancelled
    (S.CANCELED, OrderPendingCancel): S.CANCELED,  # operator and algo cancel the same order
    (S.CANCELED, OrderCanceled): S.CANCELED,  # duplicate confirmation
    (S.CANCELED, OrderCancelRejected): S.CANCELED,  # reject of a duplicate cancel
    (S.CANCELED, OrderAccepted): S.CANCELED,  # stale ack
    (S.EXPIRED, _FILL): S.EXPIRED,  # a fill reported after the day ended is still a fact
    (S.REJECTED, OrderRejected): S.REJECTED,  # the venue's reject arriving after a restart resolved it
    (S.REJECTED, OrderCancelRejected): S.REJECTED,
    (S.REJECTED, OrderPendingCancel): S.REJECTED,
}

_REASON_EVENTS = (OrderDenied, OrderCancelRejected)  # a tuple: ``A | B`` would build a union per call

_PROMOTE_ON_FULL_FILL = frozenset({S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})


@dataclass(slots=True, kw_only=True)
class Order:
    """One child order as the engine knows it. Mutated only by ``apply``."""

    client_order_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    parent_id: str = ""
    tag: str = ""
    status: OrderStatus = OrderStatus.INITIALIZED
    filled_quantity: int = 0
    filled_value: int = 0  # sum of price * quantity over fills, milli-yuan
    commission: int = 0
    stamp_duty: int = 0
    transfer_fee: int = 0
    broker_order_id: str = ""
    reason: str = ""
    venue_confirmed: bool = True
    ts_created: int = 0
    ts_updated: int = 0
    trade_ids: set[str] = field(default_factory=set)
    status_before_cancel: OrderStatus | None = None
    # why it was denied (``OrderDenied.code``); in memory only: the journal keeps ``reason``
    denial: DenialCode | None = None
    # LIMIT, or a market kind (``price`` is then its protection price, 0 for none)
    order_type: OrderType = OrderType.LIMIT

    @property
    def leaves_quantity(self) -> int:
        """Quantity still open at the broker (0 once terminal)."""
        if self.status in TERMINAL_STATUSES:
            return 0
        return self.quantity - self.filled_quantity

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def avg_fill_price(self) -> float:
        """Average fill price in milli-yuan (float: a ratio, reports only); 0.0 when nothing filled."""
        return self.filled_value / self.filled_quantity if self.filled_quantity else 0.0

    @property
    def fees(self) -> int:
        return self.commission + self.stamp_duty + self.transfer_fee

    def apply(self, event: OrderEvent) -> bool:
        """Apply one event. Returns False when it was a duplicate fill (already applied), else True.

        Raises ``IllegalTransition`` for an event the table does not allow in the current status, and
        ``OverfillError`` for a fill beyond the order quantity; in both cases the order is unchanged.
        """
        if event.client_order_id != self.client_order_id:
            raise IllegalTransition(
                f"event for {event.client_order_id} applied to order {self.client_order_id}"
            )
        if isinstance(event, OrderFilled) and event.trade_id in self.trade_ids:
            return False  # a re-pushed fill is a duplicate in any status, FILLED included
        key = (self.status, type(event))
        nxt = TRANSITIONS.get(key)
        if nxt is None:
            raise IllegalTransition(
                f"order {self.client_order_id}: {type(event).__name__} not allowed in status {self.status}"
            )
        if isinstance(event, OrderFilled):
            if event.quantity <= 0:
                raise IllegalTransition(f"order {self.client_order_id}: fill of {event.quantity} shares")
            if self.filled_quantity + event.quantity > self.quantity:
                raise OverfillError(
                    f"order {self.client_order_id}: fill {event.trade_id} of {event.quantity} would take "
                    f"filled {self.filled_quantity} beyond quantity {self.quantity}"
                )
            self.trade_ids.add(event.trade_id)
            self.filled_quantity += event.quantity
            self.filled_value += event.price * event.quantity
            self.commission += event.commission
            self.stamp_duty += event.stamp_duty
            self.transfer_fee += event.transfer_fee
            if self.filled_quantity == self.quantity and self.status in _PROMOTE_ON_FULL_FILL:
                nxt = S.FILLED
        elif isinstance(event, OrderAccepted):
            self.broker_order_id = event.broker_order_id or self.broker_order_id
        elif isinstance(event, _REASON_EVENTS):
            self.reason = event.reason
            self.denial = getattr(event, "code", self.denial)  # OrderDenied's; a cancel reject has none
        elif isinstance(event, OrderRejected):
            self.reason = event.reason
            self.venue_confirmed = event.venue_confirmed
        if isinstance(event, OrderPendingCancel) and self.status is not S.PENDING_CANCEL:
            self.status_before_cancel = self.status if not self.is_terminal else None
        if nxt == PREVIOUS:
            nxt = self.status_before_cancel or S.ACCEPTED
            if self.filled_quantity and nxt in (S.SUBMITTED, S.ACCEPTED):
                nxt = S.PARTIALLY_FILLED  # fills arrived while the cancel was pending
        if self.status is S.PENDING_CANCEL and nxt is not S.PENDING_CANCEL:
            self.status_before_cancel = None
        self.status = nxt if type(nxt) is OrderStatus else OrderStatus(nxt)
        self.ts_updated = max(self.ts_updated, event.ts_init)
        return True
