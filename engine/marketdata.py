"""How the engine asks for the market: the latest quote of a symbol, as of the clock's now.

Live feeds and the replay's historical arrays both implement ``QuoteSource``.
"""

from __future__ import annotations

from typing import Protocol

from zhixing.engine.events import Quote


class QuoteSource(Protocol):
    def latest(self, symbol: str) -> Quote | None:
        """The most recent quote at or before now, or None if there is none yet."""
        ...


def usable_for_pricing(quote: Quote | None) -> bool:
    """A quote may price an order only if it has a positive, uncrossed two-sided book or a last price."""
    if quote is None:
        return False
    if quote.bid_price < 0 or quote.ask_price < 0 or quote.last < 0:
        return False
    if quote.bid_price > 0 and quote.ask_price > 0 and quote.bid_price > quote.ask_price:
        return False
    return quote.bid_price > 0 or quote.ask_price > 0 or quote.last > 0
