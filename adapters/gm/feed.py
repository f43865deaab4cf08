"""``GmQuoteFeed``: 掘金 ticks (``gm.api.subscribe(frequency="tick")`` + the ``on_tick`` callback) as a
``QuoteFeed``.

A tick (``symbol``, ``price``, ``quotes[0]`` ``bid_p``/``bid_v``/``ask_p``/``ask_v``, ``cum_volume``,
``cum_amount``, ``created_at``) becomes an ``engine.events.Quote``; prev close and limit prices come from the
day's reference (``get_instruments`` with ``skip_suspended=False, skip_st=False``: ``pre_close``,
``upper_limit``, ``lower_limit``, ``price_tick``, ``is_suspended``, ``sec_name``). Float yuan become int
milli-yuan; missing or non-positive values become 0 (an empty level: one-sided books at a price limit are
real), and the ``QuoteBook`` refuses a quote with nothing to price from or a crossed one. A tick this feed
cannot map (a symbol not subscribed, a bad spelling, no timestamp, a NaN or infinite price) is refused here
and counted. ``current(symbols)`` is gm's snapshot query, mapped the same way.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from zhixing.adapters.gm.bridge import GmBridge, Payload
from zhixing.adapters.gm.codes import money, text, timestamp_ns, whole
from zhixing.adapters.gm.config import GmFeedConfig
from zhixing.engine.clock import Clock
from zhixing.engine.errors import FeedError
from zhixing.engine.events import Quote
from zhixing.engine.feed import QuoteSink, Reference
from zhixing.engine.market.symbols import from_gm, normalize_symbol, to_gm
from zhixing.engine.secrets import resolve_secret

log = structlog.get_logger("zhixing.gm.feed")

T = TypeVar("T")


@dataclass(slots=True)
class GmFeedStats:
    ticks: int = 0
    delivered: int = 0
    refused: int = 0
    refusals: dict[str, int] | None = None


class GmQuoteFeed:
    name = "gm"

    def __init__(self, config: GmFeedConfig, clock: Clock, *, api: Any, bridge: GmBridge) -> None:
        self.config = config
        self.stats = GmFeedStats(refusals={})
        self._clock = clock
        self._api = api
        self._bridge = bridge
        self._sink: QuoteSink | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._subscribed: set[str] = set()
        self._references: dict[str, Reference] = {}

    def bind(self, sink: QuoteSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gm-feed")
        if self.config.token:
            token = resolve_secret(self.config.token, key="feed.gm.token")
            await self._call(self._api.set_token, token.reveal())
        if self.config.serv_addr:
            await self._call(self._api.set_serv_addr, self.config.serv_addr)
        self._bridge.attach(asyncio.get_running_loop())
        self._bridge.tick_handlers.append(self._on_tick)

    async def close(self) -> None:
        if self._on_tick in self._bridge.tick_handlers:
            self._bridge.tick_handlers.remove(self._on_tick)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            raise FeedError("gm feed: not connected")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        except FeedError:
            raise
        except Exception as exc:  # the SDK's errors, mapped at the boundary
            raise FeedError(f"gm feed: {getattr(fn, '__name__', 'call')} failed: {exc}") from exc

    # ------------------------------------------------------------------------------------- subscription
    async def subscribe(self, symbols: Sequence[str], frequency: str = "tick") -> None:
        if frequency != "tick":
            raise FeedError(f"gm feed: only frequency='tick' is supported, got {frequency!r}")
        wanted = [normalize_symbol(s) for s in symbols]
        await self._load_references([s for s in wanted if s not in self._references])
        self._subscribed.update(wanted)
        await self._call(
            self._api.subscribe,
            symbols=",".join(to_gm(s) for s in wanted),
            frequency="tick",
            unsubscribe_previous=False,
        )
        for quote in await self.current(wanted):
            self._deliver(quote)

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        gone = [normalize_symbol(s) for s in symbols]
        self._subscribed.difference_update(gone)
        await self._call(self._api.unsubscribe, symbols=",".join(to_gm(s) for s in gone), frequency="tick")

    # ------------------------------------------------------------------------------------- snapshot
    async def current(self, symbols: Sequence[str]) -> list[Quote]:
        """gm's current snapshot for ``symbols`` as quotes (unmappable ticks refused)."""
        wanted = [normalize_symbol(s) for s in symbols]
        ticks = await self._call(self._api.current, symbols=",".join(to_gm(s) for s in wanted))
        quotes = []
        for tick in ticks or []:
            if isinstance(tick, Mapping):
                quote = self._quote(tick, allowed=set(wanted))
                if quote is not None:
                    quotes.append(quote)
        return quotes

    async def reference(self, symbol: str) -> Reference:
        canonical = normalize_symbol(symbol)
        if canonical not in self._references:
            await self._load_references([canonical])
        try:
            return self._references[canonical]
        except KeyError:
            raise FeedError(f"gm feed: no instrument data for {canonical}") from None

    async def refresh_references(self) -> None:
        """Reload the day's facts for every subscribed symbol (call at each session start: limits and
        prev close change daily)."""
        self._references.clear()
        await self._load_references(sorted(self._subscribed))

    async def _load_references(self, symbols: Sequence[str]) -> None:
        if not symbols:
            return
        rows = await self._call(
            self._api.get_instruments,
            symbols=",".join(to_gm(s) for s in symbols),
            skip_suspended=False,
            skip_st=False,
            df=False,
        )
        for row in rows or []:
            if not isinstance(row, Mapping):
                continue
            try:
                canonical = from_gm(text(row.get("symbol")))
            except ValueError:
                continue
            self._references[canonical] = Reference(
                symbol=canonical,
                name=text(row.get("sec_name")),
                prev_close=money(row.get("pre_close")),
                high_limit=money(row.get("upper_limit")),
                low_limit=money(row.get("lower_limit")),
                tick=money(row.get("price_tick")),
                suspended=bool(whole(row.get("is_suspended"))),
            )

    # ------------------------------------------------------------------------------------- ticks
    def _on_tick(self, tick: Payload) -> None:
        self.stats.ticks += 1
        quote = self._quote(tick, allowed=self._subscribed)
        if quote is not None:
            self._deliver(quote)

    def _refuse(self, reason: str, symbol: str) -> None:
        self.stats.refused += 1
        refusals = self.stats.refusals
        assert refusals is not None
        refusals[reason] = refusals.get(reason, 0) + 1
        log.warning("gm_tick_refused", symbol=symbol, reason=reason)

    def _quote(self, tick: Payload, *, allowed: set[str]) -> Quote | None:
        raw_symbol = text(tick.get("symbol"))
        try:
            symbol = from_gm(raw_symbol)
        except ValueError:
            self._refuse("bad_symbol", raw_symbol)
            return None
        if symbol not in allowed:
            self._refuse("not_subscribed", symbol)
            return None
        ts_event = timestamp_ns(tick.get("created_at"))
        if ts_event <= 0:
            self._refuse("no_timestamp", symbol)
            return None
        level: Mapping[str, Any] = {}
        quotes = tick.get("quotes")
        if isinstance(quotes, list | tuple) and quotes and isinstance(quotes[0], Mapping):
            level = quotes[0]
        numbers = (tick.get("price"), tick.get("cum_amount"), level.get("bid_p"), level.get("ask_p"))
        if any(isinstance(n, float) and not math.isfinite(n) for n in numbers):
            self._refuse("not_a_number", symbol)  # a corrupt tick, not an empty level
            return None
        ref = self._references.get(symbol)
        return Quote(
            ts_event=ts_event,
            ts_init=self._clock.now_ns(),
            symbol=symbol,
            last=money(tick.get("price")),
            bid_price=money(level.get("bid_p")),
            bid_quantity=whole(level.get("bid_v")),
            ask_price=money(level.get("ask_p")),
            ask_quantity=whole(level.get("ask_v")),
            cum_volume=whole(tick.get("cum_volume")),
            cum_amount=money(tick.get("cum_amount")),
            prev_close=ref.prev_close if ref else 0,
            high_limit=ref.high_limit if ref else 0,
            low_limit=ref.low_limit if ref else 0,
        )

    def _deliver(self, quote: Quote) -> None:
        if self._sink is None:
            return
        self.stats.delivered += 1
        self._sink(quote)
