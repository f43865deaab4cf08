"""Paper trading: recorded snapshots played as a live feed on the session's clock.

``RecordedFeed`` is a ``QuoteFeed``: each subscribed symbol's next snapshot is pushed when the clock
reaches its recorded time, so on a ``ScaledClock`` the day plays at 1x (or Nx for a demo) with real
timers, while the simulated exchange matches against the same data. ``stalls`` silences a symbol for
a time range, to rehearse a feed that stops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import FeedError
from zhixing.engine.feed import QuoteSink, Reference
from zhixing.engine.marketdata import QuoteSource
from zhixing.replay.data import MarketData


class RecordedFeed:
    name = "paper"

    def __init__(
        self,
        market: MarketData,
        quotes: QuoteSource,
        clock: Clock,
        *,
        stalls: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        """``quotes`` turns the recorded row in force into a ``Quote`` (the simulated exchange does, with
        the venue's limit prices); ``stalls`` maps a symbol to a ``[from_ns, to_ns)`` range of silence."""
        self.market = market
        self.quotes = quotes
        self.clock = clock
        self.stalls = dict(stalls or {})
        self.pushed = 0
        self.suppressed = 0
        self._sink: QuoteSink | None = None
        self._timers: dict[str, TimerHandle] = {}
        self._subscribed: set[str] = set()  # also those whose recorded day has no snapshot left
        self._connected = False

    def bind(self, sink: QuoteSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._subscribed.clear()

    async def subscribe(self, symbols: Sequence[str]) -> None:
        if not self._connected or self._sink is None:
            raise FeedError("RecordedFeed: bind() and connect() before subscribing")
        for symbol in symbols:
            if symbol not in self.market:
                raise FeedError(f"RecordedFeed: no recorded data for {symbol}")
            self._subscribed.add(symbol)
            if symbol in self._timers:
                continue
            self._emit(symbol)  # the quote in force now, as a live feed's first snapshot
            self._arm(symbol)

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            self._subscribed.discard(symbol)
            timer = self._timers.pop(symbol, None)
            if timer is not None:
                timer.cancel()

    async def reference(self, symbol: str) -> Reference:
        if symbol not in self.market:
            raise FeedError(f"RecordedFeed: no recorded data for {symbol}")
        day = self.market[symbol]
        quote = self.quotes.latest(symbol)
        return Reference(
            symbol=symbol,
            prev_close=day.prev_close,
            high_limit=quote.high_limit if quote else day.high_limit,
            low_limit=quote.low_limit if quote else day.low_limit,
            last=quote.last if quote else 0,
            bid_price=quote.bid_price if quote else 0,
            ask_price=quote.ask_price if quote else 0,
        )

    def play(self, market: MarketData) -> None:
        """Another recorded day from now on (the next trading day): each subscribed symbol's next
        snapshot is taken from it."""
        self.market = market
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for symbol in sorted(self._subscribed):
            if symbol in market:
                self._arm(symbol)

    def _arm(self, symbol: str) -> None:
        day = self.market[symbol]
        nxt = day.index_at(self.clock.now_ns()) + 1
        if nxt >= len(day):
            self._timers.pop(symbol, None)
            return
        self._timers[symbol] = self.clock.call_at(int(day.ts[nxt]), lambda: self._tick(symbol), "paper_feed")

    def _tick(self, symbol: str) -> None:
        self._emit(symbol)
        self._arm(symbol)

    def _emit(self, symbol: str) -> None:
        quote = self.quotes.latest(symbol)
        if quote is None or self._sink is None:
            return
        if self._stalled(symbol):
            self.suppressed += 1
            return
        self.pushed += 1
        self._sink(quote)

    def _stalled(self, symbol: str) -> bool:
        window = self.stalls.get(symbol)
        return window is not None and window[0] <= self.clock.now_ns() < window[1]
