"""Child prices: the policy (passive, mid, aggressive), the day's band, a sealed limit, the auction price.

Pure functions of a quote and an instrument: prices are integer milli-yuan on the instrument's tick,
rounded on the passive side, clamped into the day's price limits and the parent's limit price.
"""

from __future__ import annotations

from enum import StrEnum

from zhixing.engine.enums import Side
from zhixing.engine.events import Quote
from zhixing.engine.market import Instrument, price_limits, round_price
from zhixing.engine.marketdata import usable_for_pricing
from zhixing.engine.reasons import UnfilledCode


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


def blocked_reason(quote: Quote, side: Side, band: tuple[int, int] | None) -> UnfilledCode | None:
    """``LIMIT_UP`` for a buy when no one sells and the bid sits at the high limit (sealed limit-up);
    ``LIMIT_DOWN`` for a sell when no one buys and the ask sits at the low limit; else None."""
    if band is None:
        return None
    low, high = band
    if side is Side.BUY and quote.ask_price <= 0 and quote.bid_price >= high:
        return UnfilledCode.LIMIT_UP
    if side is Side.SELL and quote.bid_price <= 0 and 0 < quote.ask_price <= low:
        return UnfilledCode.LIMIT_DOWN
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


def auction_price(
    quote: Quote | None, side: Side, offset_ticks: int, *, instrument: Instrument, limit_price: int = 0
) -> int | None:
    """The closing-auction order's limit: the last price (else the previous close) plus (buy) or minus
    (sell) ``offset_ticks`` ticks, on the tick, clamped into the day's band, then to the parent's limit.
    The book is not used: in the call it shows the indicative match and may be crossed. None when there
    is no price or the parent's limit lies outside the band."""
    if quote is None:
        return None
    raw = _first_positive(quote.last, quote.prev_close)
    if raw <= 0:
        return None
    buy = side is Side.BUY
    step = offset_ticks * instrument.tick
    price = round_price(instrument, raw + step if buy else raw - step, side)
    band = limit_band(instrument, quote)
    if band is not None:
        price = min(max(price, band[0]), band[1])
    if limit_price > 0:
        bound = round_price(instrument, limit_price, side)
        price = min(price, bound) if buy else max(price, bound)
        if band is not None and not band[0] <= price <= band[1]:
            return None
    return price if price > 0 else None
