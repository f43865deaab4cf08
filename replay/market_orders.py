"""What a market order does on arrival at the simulated exchange, by its kind, against the recorded book.

The exchange rules (SSE 交易规则 3.3.4, SZSE 交易规则 3.3.4; docs/MARKET_RULES_BY_DATE.md, "Market
orders") as the simulation applies them to the latest snapshot of the arrival's continuous window:

- ``B5TC`` (best five, rest cancelled): takes the opposite side's best five price levels in turn; what
  is left is cancelled.
- ``B5TL`` (best five, rest to limit, SSE): takes five levels; what is left becomes a limit order at the
  price of its last fill, or, when nothing filled, at the best own-side price; with no own-side quote
  either, it is cancelled.
- ``BOC`` (counterparty best): a limit order at the best opposite price (it takes that level, the rest
  rests there); cancelled when the opposite side is empty.
- ``BOP`` (own-side best): a limit order at the best own-side price, resting; cancelled when that side
  is empty.
- ``FAK`` (immediate or cancel, SZSE): takes every opposite level in turn; the rest is cancelled.
- ``FOK`` (fill or kill, SZSE): fills in full from the opposite levels at once, or is cancelled whole.

``bound`` is the worst price the order may trade or rest at: its protection price (STAR, ChiNext), else
the day's limit-up for a buy and limit-down for a sell. A level beyond it is not taken, and a limit
price beyond it cancels the rest. The snapshot shows ten levels: FAK and FOK see those, not the
exchange's whole book, so they fill no more than the data shows (never more than the real one would).
"""

from __future__ import annotations

from dataclasses import dataclass

from zhixing.engine.enums import OrderType
from zhixing.engine.errors import ParameterError
from zhixing.replay.matching import SymbolBook

BEST_FIVE = 5
"""Price levels a best-five order takes."""


@dataclass(frozen=True, slots=True)
class MarketArrival:
    """The outcome of a market order's arrival: the fills it takes at once and where the rest goes."""

    fills: list[tuple[int, int]]  # (level price, shares), best level first
    rest_price: int  # > 0: the remainder rests as a limit at this price; 0: it is cancelled


def _beyond(price: int, bound: int, is_buy: bool) -> bool:
    return price > bound if is_buy else price < bound


def market_arrival(
    book: SymbolBook, k: int, is_buy: bool, order_type: OrderType, bound: int, want: int
) -> MarketArrival:
    """What a market order of ``order_type`` for ``want`` shares does at snapshot ``k`` (taking the depth
    it fills from the book)."""
    if order_type is OrderType.BOP:
        own = book.best(k, is_buy_side=is_buy)
        return MarketArrival([], own if own > 0 and not _beyond(own, bound, is_buy) else 0)
    if order_type is OrderType.BOC:
        opposite = book.best(k, is_buy_side=not is_buy)
        if opposite <= 0 or _beyond(opposite, bound, is_buy):
            return MarketArrival([], 0)
        return MarketArrival(book.take_depth(k, is_buy, opposite, want, fresh_only=False), opposite)
    if order_type is OrderType.FOK:
        probe = book.take_depth(k, is_buy, bound, want, fresh_only=False, dry_run=True)
        if sum(q for _, q in probe) < want:
            return MarketArrival([], 0)
        return MarketArrival(book.take_depth(k, is_buy, bound, want, fresh_only=False), 0)
    if order_type is OrderType.FAK:
        return MarketArrival(book.take_depth(k, is_buy, bound, want, fresh_only=False), 0)
    if order_type in (OrderType.B5TC, OrderType.B5TL):
        fills = book.take_depth(k, is_buy, bound, want, fresh_only=False, max_levels=BEST_FIVE)
        if order_type is OrderType.B5TC or sum(q for _, q in fills) >= want:
            return MarketArrival(fills, 0)
        rest = fills[-1][0] if fills else book.best(k, is_buy_side=is_buy)
        return MarketArrival(fills, rest if rest > 0 and not _beyond(rest, bound, is_buy) else 0)
    raise ParameterError(f"not a market order type: {order_type}", value=order_type)
