"""Typed, immutable records that flow around the loop.

Three families, kept apart on purpose:
- **events** are facts, past tense (``OrderAccepted``, ``OrderFilled``);
- **commands** are intents, imperative (``SubmitOrder``, ``CancelOrder``);
- **reports** are broker snapshots used for reconciliation (``OrderStatusReport``, ``FillReport``).

Every event carries two int-nanosecond timestamps: ``ts_event`` (when it happened at the broker or
exchange) and ``ts_init`` (when zhixing saw it). Prices and money are int milli-yuan, quantities int
shares (see ``engine.units``).
"""

from __future__ import annotations

from dataclasses import dataclass

from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.reasons import DenialCode

_RECORD = {"frozen": True, "slots": True, "kw_only": True}


@dataclass(**_RECORD)
class Event:
    ts_event: int
    ts_init: int


# ---------------------------------------------------------------------------------------- market data
@dataclass(**_RECORD)
class Quote(Event):
    """Level-1 view of one symbol. A price of 0 means the level is empty."""

    symbol: str
    last: int
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int
    cum_volume: int
    cum_amount: int
    prev_close: int
    high_limit: int
    low_limit: int

    @property
    def mid(self) -> int | None:
        """Midpoint in milli-yuan, or None if either side is empty or the book is crossed."""
        if self.bid_price <= 0 or self.ask_price <= 0 or self.bid_price > self.ask_price:
            return None
        return (self.bid_price + self.ask_price) // 2


@dataclass(**_RECORD)
class TimerFired(Event):
    name: str


# ---------------------------------------------------------------------------------------- trading halts
@dataclass(**_RECORD)
class HaltRequested(Event):
    """Someone other than the operator asks trading to halt (the risk gate's auto-halt after consecutive
    broker rejects). The OrderManager halts; the kill switch (``engine.control``), where there is one,
    also pauses the algorithms and cancels what works."""

    reason: str
    source: str


@dataclass(**_RECORD)
class HaltChanged(Event):
    """Trading halted (``reason``) or resumed (``reason`` None), whoever did it: told by the OrderManager
    once per change (a second reason while halted is not a new halt)."""

    reason: str | None


# ---------------------------------------------------------------------------------------- order events
@dataclass(**_RECORD)
class OrderEvent(Event):
    client_order_id: str
    symbol: str


@dataclass(**_RECORD)
class OrderDenied(OrderEvent):
    """Refused locally (risk or market rules) before reaching any broker: ``code`` says why (read it,
    never parse ``reason``), ``reason`` is the text for logs and people (``"code: detail"``)."""

    reason: str
    code: DenialCode


@dataclass(**_RECORD)
class OrderSubmitted(OrderEvent):
    """Journaled and handed to the adapter."""


@dataclass(**_RECORD)
class OrderAccepted(OrderEvent):
    broker_order_id: str


@dataclass(**_RECORD)
class OrderRejected(OrderEvent):
    reason: str
    venue_confirmed: bool = True


@dataclass(**_RECORD)
class OrderPendingCancel(OrderEvent):
    """A cancel request was sent for the order."""


@dataclass(**_RECORD)
class OrderCanceled(OrderEvent):
    """The order ended cancelled. ``filled_qty`` is the broker's cumulative filled quantity at the end
    (None: the broker did not say). An end that says more than the fills we hold does not finish the
    order until their trade rows are in (``engine.held_ends``)."""

    filled_qty: int | None = None


@dataclass(**_RECORD)
class OrderCancelRejected(OrderEvent):
    reason: str


@dataclass(**_RECORD)
class OrderExpired(OrderEvent):
    """The order ended unfilled at the end of its day; ``filled_qty`` as for ``OrderCanceled``."""

    filled_qty: int | None = None


@dataclass(**_RECORD)
class OrderFilled(OrderEvent):
    """One trade. ``trade_id`` is the broker's and is the idempotency key for fills."""

    trade_id: str
    side: Side
    price: int
    quantity: int
    commission: int = 0
    stamp_duty: int = 0
    transfer_fee: int = 0

    @property
    def fees(self) -> int:
        return self.commission + self.stamp_duty + self.transfer_fee


@dataclass(**_RECORD)
class AccountUpdated(Event):
    cash: int
    frozen: int
    total_asset: int


# ---------------------------------------------------------------------------------------- commands
@dataclass(**_RECORD)
class SubmitOrder:
    """Send a new order. ``client_order_id`` is assigned by the OrderManager when empty. ``price`` is the
    limit of a ``LIMIT`` order; for a market kind it is the protection price (buy at most, sell at least;
    required on STAR and ChiNext) or 0 for none, and what a buy reserves cash at."""

    symbol: str
    side: Side
    quantity: int
    price: int
    parent_id: str = ""
    tag: str = ""
    order_type: OrderType = OrderType.LIMIT


@dataclass(**_RECORD)
class CancelOrder:
    client_order_id: str


# ---------------------------------------------------------------------------------------- reports
@dataclass(**_RECORD)
class AccountReport:
    cash: int
    frozen: int
    total_asset: int
    market_value: int


@dataclass(**_RECORD)
class PositionReport:
    symbol: str
    quantity: int
    sellable: int
    avg_cost: int


@dataclass(**_RECORD)
class OrderStatusReport:
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    filled_quantity: int
    status: OrderStatus
    reason: str = ""
    ts_event: int = 0


@dataclass(**_RECORD)
class FillReport:
    trade_id: str
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    commission: int
    stamp_duty: int
    transfer_fee: int
    ts_event: int
