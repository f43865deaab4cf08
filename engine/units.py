"""Units used everywhere in the engine.

Prices and money are ``int`` milli-yuan (0.001 CNY): stock ticks are 10, fund and ETF ticks are 1.
Quantities are ``int`` shares. Timestamps are ``int`` nanoseconds since the Unix epoch (UTC).
Floats and ``Decimal`` appear only at the edges (file parsing, reports); convert with these helpers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PRICE_SCALE = 1000
"""Milli-yuan per yuan."""

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND


def price_from_yuan(value: float | str | Decimal) -> int:
    """Convert a yuan amount (as read from a file) to integer milli-yuan, rounding half up.

    Floats go through ``repr`` so ``10.01`` becomes exactly 10010, not 10009.
    """
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    return int((dec * PRICE_SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(value: int) -> float:
    """Milli-yuan to yuan as a float (reports and vendor payloads only)."""
    return value / PRICE_SCALE


def yuan_str(value: int, decimals: int = 2) -> str:
    """Milli-yuan formatted as a yuan string with ``decimals`` places (``10010`` -> ``"10.01"``)."""
    dec = (Decimal(value) / PRICE_SCALE).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{dec:.{decimals}f}"
