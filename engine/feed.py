"""Live market data: the feed protocol adapters implement, and the engine side that consumes it.

A ``QuoteFeed`` (``adapters/qmt``, ``adapters/gm``, the paper player in ``replay``) pushes ``Quote``
events into the sink it was bound to; thread-based SDKs hop onto the loop with
``loop.call_soon_threadsafe`` first. ``reference`` answers the static facts of the day for a symbol.

``QuoteBook`` is what the engine plugs the sink into. It conflates by symbol (a newer quote replaces an
older one that nobody has processed yet, so a flood never grows a queue), refuses quotes that must never
price an order (zero, negative, crossed, older than the last one), serves ``latest`` to the algorithms
(``engine.marketdata.QuoteSource``), and watches staleness: a symbol with no *new* quote for
``stale_after_ns`` is reported through ``on_stale`` and again through ``on_fresh`` when quotes return.
A quote is new when its ``ts_event`` is later than the last one's: the same snapshot delivered again
(a feed's re-send, the snapshot a re-subscription hands out for a suspended stock) is counted as
``repeated`` and neither keeps a symbol fresh nor ends its staleness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import ParameterError
from zhixing.engine.events import Quote
from zhixing.engine.marketdata import usable_for_pricing

log = structlog.get_logger("zhixing.feed")

QuoteSink = Callable[[Quote], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """The day's facts for one symbol (prices int milli-yuan). ``tick`` 0 means unknown."""

    symbol: str
    name: str = ""
    prev_close: int
    high_limit: int
    low_limit: int
    last: int = 0
    bid_price: int = 0
    ask_price: int = 0
    tick: int = 0
    suspended: bool = False


class QuoteFeed(Protocol):
    name: str

    def bind(self, sink: QuoteSink) -> None:
        """Where the feed delivers quotes (called once, before connect)."""
        ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, symbols: Sequence[str]) -> None: ...

    async def unsubscribe(self, symbols: Sequence[str]) -> None: ...

    async def reference(self, symbol: str) -> Reference:
        """Prev close, limit prices, tick and suspension for today; raises ``FeedError`` if unknown."""
        ...


@dataclass(slots=True)
class FeedCounters:
    received: int = 0
    conflated: int = 0  # replaced before being processed
    refused: int = 0  # zero, negative, crossed or out of order
    delivered: int = 0
    repeated: int = 0  # the same snapshot again (same ts_event): not new, not delivered
    stale_events: int = 0


class QuoteBook:
    """Latest good quote per symbol; conflation, bad-quote refusal and staleness (see module doc)."""

    def __init__(
        self,
        clock: Clock,
        *,
        stale_after_ns: int = 30_000_000_000,
        on_quote: Callable[[Quote], None] | None = None,
        on_stale: Callable[[str], None] | None = None,
        on_fresh: Callable[[str], None] | None = None,
        is_trading: Callable[[int], bool] | None = None,
    ) -> None:
        """``is_trading(ts_ns)``: when the market is expected to quote (continuous trading); silence
        outside it (lunch, after the close) is not staleness. None: always."""
        if stale_after_ns <= 0:
            raise ParameterError(
                f"must be > 0, got {stale_after_ns}", name="stale_after_ns", value=stale_after_ns
            )
        self.clock = clock
        self.stale_after_ns = stale_after_ns
        self.on_quote = on_quote
        self.on_stale = on_stale
        self.on_fresh = on_fresh
        self.is_trading = is_trading
        self.counters = FeedCounters()
        self._latest: dict[str, Quote] = {}
        self._pending: dict[str, Quote] = {}  # arrived, not yet processed: at most one per symbol
        self._last_seen: dict[str, int] = {}
        self._stale: set[str] = set()
        self._watched: set[str] = set()
        self._drain_armed = False
        self._watch_timer: TimerHandle | None = None
        self.refusals: dict[str, int] = {}

    # ------------------------------------------------------------------------------------- intake
    def push(self, quote: Quote) -> None:
        """The feed's sink. Conflates: processing happens in one timer callback per burst."""
        self.counters.received += 1
        if quote.symbol in self._pending:
            self.counters.conflated += 1
        self._pending[quote.symbol] = quote
        if not self._drain_armed:
            self._drain_armed = True
            self.clock.call_at(self.clock.now_ns(), self._drain, "quote_book_drain")

    def _drain(self) -> None:
        self._drain_armed = False
        pending, self._pending = self._pending, {}
        for quote in pending.values():
            self._process(quote)

    def _process(self, quote: Quote) -> None:
        reason = _refusal(quote, self._latest.get(quote.symbol))
        if reason is not None:
            self.counters.refused += 1
            self.refusals[reason] = self.refusals.get(reason, 0) + 1
            log.warning("quote_refused", symbol=quote.symbol, reason=reason)
            return
        symbol = quote.symbol
        previous = self._latest.get(symbol)
        if previous is not None and quote.ts_event == previous.ts_event:
            self.counters.repeated += 1
            return
        self._latest[symbol] = quote
        self._last_seen[symbol] = self.clock.now_ns()
        self.counters.delivered += 1
        if symbol in self._stale:
            self._stale.discard(symbol)
            log.info("feed_fresh", symbol=symbol)
            if self.on_fresh is not None:
                self.on_fresh(symbol)
        if self.on_quote is not None:
            self.on_quote(quote)

    # ------------------------------------------------------------------------------------- reading
    def latest(self, symbol: str) -> Quote | None:
        """The latest good quote; None while the symbol is stale or has had none."""
        if symbol in self._stale:
            return None
        return self._latest.get(symbol)

    def is_stale(self, symbol: str) -> bool:
        return symbol in self._stale

    def stale_symbols(self) -> frozenset[str]:
        """The symbols that are stale now."""
        return frozenset(self._stale)

    @property
    def pending_count(self) -> int:
        """Quotes waiting to be processed: never more than one per symbol."""
        return len(self._pending)

    # ------------------------------------------------------------------------------------- staleness
    def watch(self, symbols: Sequence[str]) -> None:
        """Start the staleness watch for ``symbols`` (their clock starts now)."""
        now = self.clock.now_ns()
        for symbol in symbols:
            self._watched.add(symbol)
            self._last_seen.setdefault(symbol, now)
        if self._watch_timer is None:
            self._arm_watch()

    def stop_watch(self) -> None:
        if self._watch_timer is not None:
            self._watch_timer.cancel()
            self._watch_timer = None

    def _arm_watch(self) -> None:
        step = max(1, self.stale_after_ns // 4)
        self._watch_timer = self.clock.call_at(self.clock.now_ns() + step, self._check_stale, "quote_stale")

    def _check_stale(self) -> None:
        now = self.clock.now_ns()
        if self.is_trading is not None and not self.is_trading(now):
            for symbol in self._watched:  # a quiet market is not a stale feed: the silence clock restarts
                self._last_seen[symbol] = now
            self._arm_watch()
            return
        for symbol in sorted(self._watched):
            if symbol in self._stale:
                continue
            if now - self._last_seen.get(symbol, now) >= self.stale_after_ns:
                self._stale.add(symbol)
                self.counters.stale_events += 1
                log.warning("feed_stale", symbol=symbol, silent_ns=now - self._last_seen[symbol])
                if self.on_stale is not None:
                    self.on_stale(symbol)
        self._arm_watch()


def _refusal(quote: Quote, previous: Quote | None) -> str | None:
    if not usable_for_pricing(quote):
        return "unusable (zero, negative or crossed)"
    if previous is not None and quote.ts_event < previous.ts_event:
        return "out of order"
    return None
