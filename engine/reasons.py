"""Typed reasons: why an order was denied before reaching any broker, as an enum plus a detail.

Every pre-trade check (``engine.oms``, ``engine.risk``, ``engine.risk_controls``, ``engine.account``, the
link and trading-day gates, ``engine.market``'s order rules) answers ``Denial | None``; ``OrderDenied``
carries the ``code`` and the text (``reason``, ``"code: detail"``) for logs, the journal and people. Who
reacts to a denial (algorithms, the halt and link listeners, the alert digest, the risk counters) reads
the ``code``; nothing parses the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DenialCode(StrEnum):
    # the OrderManager's own
    HALTED = "halted"  # trading halted (kill switch, auto halt, lost order)
    SYMBOL_HALTED = "symbol_halted"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    PRICE_NOT_POSITIVE = "price_not_positive"
    # the link and the trading day
    BROKER_DISCONNECTED = "broker_disconnected"
    DAY_NOT_STARTED = "day_not_started"
    # market rules (engine.risk, engine.market.instruments)
    MARKET_NOT_CONTINUOUS = "market_not_continuous"
    MARKET_CLOSED = "market_closed"
    NO_REFERENCE_QUOTE = "no_reference_quote"
    NO_PRICE_LIMITS = "no_price_limits"
    QUANTITY_ABOVE_POSITION = "quantity_above_position"
    QUANTITY_ABOVE_MAX = "quantity_above_max"
    ODD_LOT_MUST_SELL_ALL = "odd_lot_must_sell_all"
    QUANTITY_BELOW_MINIMUM = "quantity_below_minimum"
    QUANTITY_NOT_LOT_MULTIPLE = "quantity_not_lot_multiple"
    PRICE_OFF_TICK = "price_off_tick"
    PRICE_ABOVE_LIMIT_UP = "price_above_limit_up"
    PRICE_BELOW_LIMIT_DOWN = "price_below_limit_down"
    # the account (engine.account)
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_SELLABLE = "insufficient_sellable"
    # the risk gate (engine.risk_controls)
    SYMBOL_REJECTS = "symbol_rejects"
    MAX_ORDER_QUANTITY = "max_order_quantity"
    MAX_ORDER_VALUE = "max_order_value"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_COLLAR = "price_collar"
    DUPLICATE_ORDER = "duplicate_order"
    SELF_CROSS = "self_cross"
    MAX_ACTIVE_ORDERS = "max_active_orders"
    RATE_PER_SECOND = "rate_per_second"
    RATE_PER_DAY = "rate_per_day"


PERMANENT: frozenset[DenialCode] = frozenset(
    {DenialCode.MAX_ORDER_VALUE, DenialCode.MAX_ORDER_QUANTITY, DenialCode.SYMBOL_REJECTS}
)
"""Codes the same order would meet again (too large for the risk limits; its symbol blocked for the day by
the per-symbol reject breaker): an algorithm stops at once instead of retrying at every step."""


@dataclass(frozen=True, slots=True)
class Denial:
    """Why one order was refused: ``code`` for programs, ``detail`` for people."""

    code: DenialCode
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}" if self.detail else self.code.value
