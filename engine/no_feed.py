"""``NoFeed``: the feed of ``[feed] kind = "none"`` (a file route with no live market data).

It delivers no quote and knows no day's facts. What that leaves (``docs/routes/fileorder.md``, "Without
QMT"): the config refuses execute jobs at load (``engine.config.NO_FEED_REFUSED_JOBS``); an order needs
prev close for the price limits and a quote for the pre-trade check, so ``reference`` refuses with the feed
to configure instead, and the risk gate denies an order with no reference quote. Signal, summary and
backup jobs, the account and status read from the terminal's output files, and cancels run as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

from zhixing.engine.errors import FeedError
from zhixing.engine.feed import QuoteSink, Reference

NO_QUOTES = (
    "[feed] kind = 'none' gives no prev close, price limits or quotes, which pricing and checking an order "
    "need; set [feed] kind = 'qmt' or 'gm' to trade"
)


class NoFeed:
    name = "none"

    def bind(self, sink: QuoteSink) -> None:
        del sink  # nothing is ever delivered

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def subscribe(self, symbols: Sequence[str]) -> None:
        del symbols  # no quotes will come: the book stays empty and orders are denied for want of one

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        del symbols

    async def reference(self, symbol: str) -> Reference:
        raise FeedError(f"{symbol}: {NO_QUOTES}")
