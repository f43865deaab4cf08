"""Getting quotes back when a symbol's feed goes silent while the market trades.

The ``QuoteBook`` notices the silence (a symbol is *stale* after ``stale_after_ns`` without a good quote
during continuous trading) and the stale guard pauses that symbol's slicing. What brings the quotes
back is often a new subscription: a terminal's data service that restarted forgets its subscribers
(xtdata), or a subscription was dropped on the server's side. ``FeedKeeper.check`` (called from the
session's poll loop) re-subscribes each symbol that has been stale for ``resubscribe_after_ns``:
``unsubscribe`` then ``subscribe`` (a feed delivers the snapshot in force on subscribing), and again
after a doubling backoff (up to ``max_backoff_ns``) while it stays silent. A suspended stock stays
silent whatever is done; the backoff keeps that to a handful of requests a day. A feed that refuses
(``FeedError``) is logged and counted, and tried again on the same backoff. Quotes returning end it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from zhixing.engine.clock import Clock
from zhixing.engine.errors import FeedError, ParameterError
from zhixing.engine.feed import QuoteBook, QuoteFeed
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.feed")

MAX_BACKOFF_NS = 600 * NS_PER_SECOND


@dataclass(slots=True)
class KeeperCounters:
    resubscribes: int = 0  # symbol re-subscriptions sent
    failures: int = 0  # re-subscriptions the feed refused
    recovered: int = 0  # stale symbols whose quotes came back after a re-subscription


class FeedKeeper:
    def __init__(
        self,
        feed: QuoteFeed,
        book: QuoteBook,
        clock: Clock,
        *,
        resubscribe_after_ns: int = 30 * NS_PER_SECOND,
        max_backoff_ns: int = MAX_BACKOFF_NS,
    ) -> None:
        if resubscribe_after_ns <= 0 or max_backoff_ns < resubscribe_after_ns:
            raise ParameterError(
                "need 0 < resubscribe_after_ns <= max_backoff_ns, "
                f"got {resubscribe_after_ns} and {max_backoff_ns}",
                value=(resubscribe_after_ns, max_backoff_ns),
            )
        self.feed = feed
        self.book = book
        self.clock = clock
        self.resubscribe_after_ns = resubscribe_after_ns
        self.max_backoff_ns = max_backoff_ns
        self.counters = KeeperCounters()
        self._due: dict[str, int] = {}  # stale symbol -> when to re-subscribe it next
        self._backoff: dict[str, int] = {}  # symbols re-subscribed during their current silence -> next wait

    async def check(self) -> int:
        """Re-subscribe the stale symbols that are due; returns how many were re-subscribed."""
        now = self.clock.now_ns()
        stale = self.book.stale_symbols()
        for symbol in [s for s in self._due if s not in stale]:  # quotes are back
            del self._due[symbol]
            if self._backoff.pop(symbol, None) is not None:
                self.counters.recovered += 1
                log.info("feed_recovered_by_resubscribe", symbol=symbol)
        due = []
        for symbol in sorted(stale):
            when = self._due.setdefault(symbol, now + self.resubscribe_after_ns)
            if now >= when:
                due.append(symbol)
        if not due:
            return 0
        for symbol in due:
            backoff = self._backoff.get(symbol, self.resubscribe_after_ns)
            self._due[symbol] = now + backoff
            self._backoff[symbol] = min(backoff * 2, self.max_backoff_ns)
        self.counters.resubscribes += len(due)
        log.warning("feed_resubscribe", symbols=due)
        try:
            await self.feed.unsubscribe(due)
            await self.feed.subscribe(due)
        except FeedError as exc:
            self.counters.failures += len(due)
            log.error("feed_resubscribe_failed", symbols=due, error=str(exc))
        return len(due)
