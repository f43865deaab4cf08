"""Units used everywhere in the engine.

Prices and money are ``int`` milli-yuan (0.001 CNY): stock ticks are 10, fund and ETF ticks are 1.
Quantities are ``int`` shares. Timestamps are ``int`` nanoseconds since the Unix epoch (UTC).
Floats and ``Decimal`` appear only at the edges (file parsing, reports); convert with these helpers.

A number the user gives (a config key, a CLI flag, a cell of an input file) is bounded by its kind before
it is converted: finite and at most ``MAX_YUAN`` (money), ``MAX_SECONDS`` (durations), ``MAX_SHARES``
(quantities) or ``MAX_MINUTES`` (windows), so every converted value fits a signed 64-bit integer (the
journal's SQLite ``INTEGER``) with room to add and multiply. ``money``, ``duration_ns`` and ``shares``
check and convert in one step and raise ``ParameterError`` (a ``ValueError``) naming the value; each
reader re-raises it naming its file and row, config key or flag.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, DecimalException

from zhixing.engine.errors import ParameterError

PRICE_SCALE = 1000
"""Milli-yuan per yuan."""

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND

MAX_YUAN = 10**12
"""The largest amount of money (yuan) any input may name: a trillion yuan, above any account's equity;
``MAX_YUAN * PRICE_SCALE`` is 1e15 milli-yuan, far inside int64 (9.2e18)."""
MAX_SECONDS = 7 * 86_400
"""The longest duration (seconds) any input may name: a week (timeouts, windows, latencies)."""
MAX_MINUTES = MAX_SECONDS // 60
"""The longest window (minutes) any input may name: the same week."""
MAX_SHARES = 10**12
"""The largest quantity (shares) any input may name: above the share count of any listed company."""
MAX_COUNT = 10**9
"""The largest count any input may name (messages, orders, rejects, days kept)."""

_Number = int | float | str | Decimal


def price_from_yuan(value: float | str | Decimal) -> int:
    """Convert a yuan amount (as read from a file) to integer milli-yuan, rounding half up.

    Floats go through ``repr`` so ``10.01`` becomes exactly 10010, not 10009. For a value the user gave,
    use ``money``, which bounds it first.
    """
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    return int((dec * PRICE_SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _decimal(value: _Number, what: str) -> Decimal:
    """``value`` as a finite Decimal, or ``ParameterError`` naming it."""
    if isinstance(value, bool):
        raise ParameterError(f"expected a number of {what}, got {value!r}", value=value)
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (DecimalException, ValueError):
        raise ParameterError(f"not a number: {value!r}", value=value) from None
    if not dec.is_finite():
        raise ParameterError(f"not a finite number: {value!r}", value=value)
    return dec


def _bounded(value: _Number, dec: Decimal, maximum: int, what: str) -> None:
    if dec < 0:
        raise ParameterError(f"must be >= 0, got {value!r}", value=value)
    if dec > maximum:
        raise ParameterError(f"must be at most {maximum:,} {what}, got {value!r}", value=value)


def money(value: _Number) -> int:
    """A user's yuan amount (``"2000000"``, ``12.5``) to milli-yuan: finite, 0 to ``MAX_YUAN``."""
    dec = _decimal(value, "yuan")
    _bounded(value, dec, MAX_YUAN, "yuan")
    return price_from_yuan(dec)


def duration_ns(value: _Number, *, per_second: int = 1) -> int:
    """A user's duration to nanoseconds: finite, 0 to ``MAX_SECONDS``. ``per_second``: the unit's count per
    second (1 for seconds, 1000 for milliseconds); the bound is named in that unit."""
    dec = _decimal(value, "seconds")
    _bounded(value, dec, MAX_SECONDS * per_second, "seconds" if per_second == 1 else "ms")
    return int((dec * NS_PER_SECOND / per_second).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def shares(value: _Number) -> int:
    """A user's quantity to whole shares: finite, a whole number, 0 to ``MAX_SHARES``."""
    dec = _decimal(value, "shares")
    if dec != dec.to_integral_value():
        raise ParameterError(f"not a whole number of shares: {value!r}", value=value)
    _bounded(value, dec, MAX_SHARES, "shares")
    return int(dec)


def yuan(value: int) -> float:
    """Milli-yuan to yuan as a float (reports and vendor payloads only)."""
    return value / PRICE_SCALE


def yuan_str(value: int, decimals: int = 2) -> str:
    """Milli-yuan formatted as a yuan string with ``decimals`` places (``10010`` -> ``"10.01"``)."""
    dec = (Decimal(value) / PRICE_SCALE).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{dec:.{decimals}f}"
