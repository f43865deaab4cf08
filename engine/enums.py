"""Stable enums. Values are ASCII and never change (they are stored in SQLite and files)."""

from __future__ import annotations

from enum import StrEnum


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
