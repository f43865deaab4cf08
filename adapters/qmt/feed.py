"""``QmtQuoteFeed``: live quotes from miniQMT through ``xtquant.xtdata`` (an ``engine.feed.QuoteFeed``).

Subscriptions: ``mode = "whole"`` uses one ``subscribe_whole_quote(code_list, callback)`` per subscribe call
(callback data ``{code: tick}``); ``mode = "tick"`` uses ``subscribe_quote(code, period="tick", count=0,
callback)`` per symbol (callback data ``{code: [tick, ...]}``). Both callbacks run on xtdata's thread and
hop onto the loop with ``loop.call_soon_threadsafe`` before anything is converted or delivered.

A tick dict becomes an ``engine.events.Quote``:
- prices are float yuan → int milli-yuan (``price_from_yuan``); NaN, inf, None, negative → 0, so the
  ``QuoteBook`` refuses a quote that must not price an order;
- ``bidVol[0]``/``askVol[0]`` and ``volume`` are in 手 for stocks (the xtdata doc's example: ``volume``
  758613 with ``pvolume`` 75861284) → shares with ``lot_size``; ``pvolume`` (raw shares) is preferred when
  present; ``amount`` is yuan; ``time`` is epoch milliseconds;
- limit prices come from ``get_instrument_detail`` (``UpStopPrice``, ``DownStopPrice``), fetched when the
  symbol is subscribed; ``lastClose`` is the previous close (``PreClose`` when the tick lacks it).

``reference`` combines ``get_instrument_detail`` (PreClose, UpStopPrice, DownStopPrice, PriceTick,
InstrumentStatus: <= 0 trading, >= 1 days suspended) and ``get_full_tick`` (last, best bid and ask).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from zhixing.adapters.qmt.config import QmtFeedConfig
from zhixing.engine.clock import Clock
from zhixing.engine.errors import FeedError
from zhixing.engine.events import Quote
from zhixing.engine.feed import QuoteSink, Reference
from zhixing.engine.units import price_from_yuan

log = structlog.get_logger("zhixing.qmt.feed")

_NS_PER_MS = 1_000_000
# tick 'stockStatus' values that mean no continuous trading for the symbol (xtdata.md, 证券状态)
SUSPENDED_STOCK_STATUS = frozenset({17, 20})  # 17 临时停牌, 20 暂停交易至闭市


def _number(value: Any) -> float:
    """A finite, non-negative float or 0.0 (None, NaN, inf, strings and negatives become 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return 0.0
    return number


def _price(value: Any) -> int:
    number = _number(value)
    return price_from_yuan(number) if number > 0 else 0


def _first(values: Any) -> Any:
    if isinstance(values, list | tuple) and values:
        return values[0]
    return None


class QmtQuoteFeed:
    """``engine.feed.QuoteFeed`` over ``xtquant.xtdata`` (see the module doc)."""

    name = "qmt"

    def __init__(self, config: QmtFeedConfig, *, clock: Clock, xtdata: Any | None = None) -> None:
        self.config = config
        self.clock = clock
        self._xtdata = xtdata
        self._sink: QuoteSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted: set[str] = set()
        self._seqs: dict[int, set[str]] = {}  # subscription number -> the symbols it covers
        self._limits: dict[str, Reference] = {}
        self.ticks_received = 0
        self.ticks_dropped = 0  # for symbols no longer subscribed, or not convertible

    # ------------------------------------------------------------------------------------- lifecycle
    def bind(self, sink: QuoteSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._xtdata is None:
            try:
                self._xtdata = importlib.import_module("xtquant.xtdata")
            except ImportError as exc:
                raise FeedError(f"xtquant.xtdata cannot be imported here (Windows only): {exc}") from exc
        await self._call("connect", ip=self.config.ip, port=self.config.port or None)
        log.info("qmt_feed_connected", mode=self.config.mode)

    async def close(self) -> None:
        for seq in list(self._seqs):
            await self._unsubscribe_seq(seq)
        self._wanted.clear()

    # ------------------------------------------------------------------------------------- subscriptions
    async def subscribe(self, symbols: Sequence[str]) -> None:
        new = [s for s in dict.fromkeys(symbols) if s not in self._wanted]
        if not new:
            return
        for symbol in new:
            self._limits[symbol] = await self.reference(symbol)
        self._wanted.update(new)
        if self.config.mode == "whole":
            seq = await self._call("subscribe_whole_quote", new, callback=self._on_data)
            self._register(seq, new)
        else:
            for symbol in new:
                seq = await self._call(
                    "subscribe_quote", symbol, period="tick", count=0, callback=self._on_data
                )
                self._register(seq, [symbol])

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        self._wanted.difference_update(symbols)
        for seq, covered in list(self._seqs.items()):
            if not covered & self._wanted:
                await self._unsubscribe_seq(seq)

    def _register(self, seq: Any, symbols: list[str]) -> None:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            self._wanted.difference_update(symbols)
            raise FeedError(f"xtdata subscription of {', '.join(symbols)} returned {seq!r}")
        self._seqs[seq] = set(symbols)

    async def _unsubscribe_seq(self, seq: int) -> None:
        self._seqs.pop(seq, None)
        try:
            await self._call("unsubscribe_quote", seq)
        except FeedError as exc:
            log.warning("qmt_feed_unsubscribe_failed", seq=seq, error=str(exc))

    # ------------------------------------------------------------------------------------- reference
    async def reference(self, symbol: str) -> Reference:
        detail = await self._call("get_instrument_detail", symbol)
        if not detail:
            raise FeedError(f"xtdata knows no instrument {symbol!r}")
        ticks = await self._call("get_full_tick", [symbol]) or {}
        tick = ticks.get(symbol) or {}
        status = detail.get("InstrumentStatus")
        suspended = (isinstance(status, int) and status >= 1) or tick.get(
            "stockStatus"
        ) in SUSPENDED_STOCK_STATUS
        return Reference(
            symbol=symbol,
            name=str(detail.get("InstrumentName") or ""),
            prev_close=_price(detail.get("PreClose")) or _price(tick.get("lastClose")),
            high_limit=_price(detail.get("UpStopPrice")),
            low_limit=_price(detail.get("DownStopPrice")),
            last=_price(tick.get("lastPrice")),
            bid_price=_price(_first(tick.get("bidPrice"))),
            ask_price=_price(_first(tick.get("askPrice"))),
            tick=_price(detail.get("PriceTick")),
            suspended=bool(suspended),
        )

    # ------------------------------------------------------------------------------------- ticks
    def _on_data(self, datas: Any) -> None:
        """xtdata's callback, on xtdata's thread: hop, nothing else."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the process is shutting down
            loop.call_soon_threadsafe(self._deliver, datas)

    def _deliver(self, datas: Any) -> None:
        if not isinstance(datas, dict) or self._sink is None:
            return
        for code, data in datas.items():
            items = data if isinstance(data, list) else [data]
            for tick in items:
                self.ticks_received += 1
                if code not in self._wanted or not isinstance(tick, dict):
                    self.ticks_dropped += 1
                    continue
                self._sink(self.to_quote(code, tick))

    def to_quote(self, symbol: str, tick: dict[str, Any]) -> Quote:
        """One xtdata tick dict as an engine ``Quote`` (see the module doc for units)."""
        lot = self.config.lot_size
        limits = self._limits.get(symbol)
        pvolume = _number(tick.get("pvolume"))
        cum_volume = int(pvolume) if pvolume > 0 else int(_number(tick.get("volume"))) * lot
        time_ms = _number(tick.get("time"))
        now = self.clock.now_ns()
        return Quote(
            ts_event=int(time_ms) * _NS_PER_MS if time_ms > 0 else now,
            ts_init=now,
            symbol=symbol,
            last=_price(tick.get("lastPrice")),
            bid_price=_price(_first(tick.get("bidPrice"))),
            bid_quantity=int(_number(_first(tick.get("bidVol")))) * lot,
            ask_price=_price(_first(tick.get("askPrice"))),
            ask_quantity=int(_number(_first(tick.get("askVol")))) * lot,
            cum_volume=cum_volume,
            cum_amount=_price(tick.get("amount")),
            prev_close=_price(tick.get("lastClose")) or (limits.prev_close if limits else 0),
            high_limit=limits.high_limit if limits else 0,
            low_limit=limits.low_limit if limits else 0,
        )

    # ------------------------------------------------------------------------------------- plumbing
    async def _call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """One xtdata function in the default executor; its failures become ``FeedError``."""
        xtdata = self._xtdata
        if xtdata is None:
            raise FeedError("QMT feed is not connected")
        loop = self._loop or asyncio.get_running_loop()
        target: Callable[..., Any] = getattr(xtdata, function)
        try:
            return await loop.run_in_executor(None, lambda: target(*args, **kwargs))
        except FeedError:
            raise
        except Exception as exc:
            raise FeedError(f"xtdata.{function} failed: {exc!r}") from exc
