"""Stable enums. Values are ASCII and never change (they are stored in SQLite and files)."""

from __future__ import annotations

from enum import StrEnum

from zhixing.engine.errors import ParameterError


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(StrEnum):
    INITIALIZED = "INITIALIZED"  # intent created and journaled, not yet handed to the adapter
    DENIED = "DENIED"  # refused locally; never reached a broker
    SUBMITTED = "SUBMITTED"  # handed to the adapter; outcome not yet known
    ACCEPTED = "ACCEPTED"  # broker acknowledged, working
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"  # cancel requested, not yet confirmed
    FILLED = "FILLED"
    CANCELED = "CANCELED"  # may have filled > 0
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"  # day order the broker no longer lists


TERMINAL_STATUSES = frozenset(
    {OrderStatus.DENIED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
WORKING_STATUSES = frozenset(
    {OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL}
)


class OrderType(StrEnum):
    """How an order is priced. ``LIMIT`` carries its own price; the others are the A-share market-order
    kinds (市价委托), priced by the exchange from the book at arrival (``docs/MARKET_RULES_BY_DATE.md``,
    "Market orders"). Which exchange accepts which kind: ``ACCEPTED_ORDER_TYPES``."""

    LIMIT = "LIMIT"
    B5TC = "B5TC"  # 最优五档即时成交剩余撤销: up to five opposite levels, the rest cancelled (SSE, SZSE)
    B5TL = "B5TL"  # 最优五档即时成交剩余转限价: up to five levels, the rest a limit at the last fill (SSE)
    BOC = "BOC"  # 对手方最优: a limit at the best opposite price (SSE, SZSE)
    BOP = "BOP"  # 本方最优: a limit at the best own-side price (SSE, SZSE)
    FAK = "FAK"  # 即时成交剩余撤销: whatever crosses at any level, the rest cancelled (SZSE)
    FOK = "FOK"  # 全额成交或撤销: all at once at any levels, or nothing (SZSE)

    @property
    def is_market(self) -> bool:
        return self is not OrderType.LIMIT


ACCEPTED_ORDER_TYPES: dict[str, frozenset[OrderType]] = {
    # SSE 交易规则 (2023) 3.3.4: B5TC, B5TL, counterparty best and own-side best (the last two since
    # 2019 for STAR, then the main board); STAR orders carry a protection price (科创板交易特别规定).
    "SH": frozenset({OrderType.LIMIT, OrderType.B5TC, OrderType.B5TL, OrderType.BOC, OrderType.BOP}),
    # SZSE 交易规则 (2023) 3.3.4: counterparty best, own-side best, immediate-or-cancel, B5TC and FOK.
    "SZ": frozenset(
        {OrderType.LIMIT, OrderType.BOC, OrderType.BOP, OrderType.FAK, OrderType.B5TC, OrderType.FOK}
    ),
    # BSE: limit orders only here (its market kinds are not modelled).
    "BJ": frozenset({OrderType.LIMIT}),
}
"""Order kinds each exchange (symbol suffix) accepts; a kind not listed is refused before sending."""


ORDER_TYPE_PARAM = "order_type"
"""The parent parameter (and orders-file column) naming the kind of an algorithm's scheduled children."""


def order_type_named(text: str) -> OrderType:
    """The kind named ``text``: limit, b5tc, b5tl, boc, bop, fak or fok (any case)."""
    try:
        return OrderType(text.strip().upper())
    except ValueError:
        known = ", ".join(t.value.lower() for t in OrderType)
        raise ParameterError(f"unknown order_type {text!r}; known: {known}", value=text) from None
