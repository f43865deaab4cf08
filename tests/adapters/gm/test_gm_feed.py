"""The gm tick feed against the gm fake: ticks pushed from a background thread through
``adapters.gm.entry`` and the bridge into a real ``QuoteBook`` on a ``SimClock``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.gm_fake import START, FakeGmApi, instrument, tick
from zhixing.adapters.gm import GmBridge, GmFeedConfig, GmQuoteFeed, install, uninstall
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import ConfigError, FeedError
from zhixing.engine.events import Quote
from zhixing.engine.feed import QuoteBook

T0 = 1_795_000_000 * 10**9
SH = "SHSE.600000"


@dataclass
class Feed:
    api: FakeGmApi
    bridge: GmBridge
    feed: GmQuoteFeed
    book: QuoteBook
    clock: SimClock
    seen: list[Quote]

    async def settle(self) -> None:
        await asyncio.to_thread(self.api.deliver)
        await self.bridge.drain()
        while self.clock.step():  # the QuoteBook processes on the clock
            pass


@pytest.fixture
async def gm() -> AsyncIterator[Feed]:
    api = FakeGmApi()
    api.instruments[SH] = instrument(SH, 10.0, upper=11.0, lower=9.0)
    api.instruments["SZSE.000001"] = instrument("SZSE.000001", 12.5, upper=13.75, lower=11.25, suspended=True)
    api.ticks[SH] = tick(SH, 10.01, 10.0, 10.02)
    clock = SimClock(T0)
    seen: list[Quote] = []
    book = QuoteBook(clock, on_quote=seen.append)
    bridge = GmBridge()
    install(bridge)
    feed = GmQuoteFeed(GmFeedConfig(), clock, api=api, bridge=bridge)
    feed.bind(book.push)
    await feed.connect()
    yield Feed(api, bridge, feed, book, clock, seen)
    await feed.close()
    uninstall(bridge)


async def test_subscribe_asks_gm_for_ticks_and_delivers_the_snapshot(gm: Feed) -> None:
    await gm.feed.subscribe(["600000.SH"])
    assert ("subscribe", {"symbols": SH, "frequency": "tick"}) in gm.api.calls
    assert SH in gm.api.subscribed
    await gm.settle()
    quote = gm.book.latest("600000.SH")
    assert quote is not None
    assert (quote.last, quote.bid_price, quote.ask_price) == (10010, 10000, 10020)
    assert (quote.prev_close, quote.high_limit, quote.low_limit) == (10000, 11000, 9000)


async def test_threaded_tick_reaches_the_quote_book(gm: Feed) -> None:
    await gm.feed.subscribe(["600000.SH"])
    later = START + timedelta(seconds=3)
    gm.api.push_tick(
        tick(
            SH, 10.03, 10.02, 10.04, bid_v=300, ask_v=700, cum_volume=12_300, cum_amount=123_456.78, at=later
        )
    )
    await gm.settle()
    quote = gm.book.latest("600000.SH")
    assert quote is not None
    assert quote.last == 10030
    assert (quote.bid_price, quote.bid_quantity, quote.ask_price, quote.ask_quantity) == (
        10020,
        300,
        10040,
        700,
    )
    assert (quote.cum_volume, quote.cum_amount) == (12_300, 123_456_780)
    assert quote.ts_event == int(later.timestamp()) * 10**9
    assert quote.ts_init == T0
    assert gm.bridge.counters.delivered >= 1


async def test_reference_maps_limits_tick_and_suspension(gm: Feed) -> None:
    ref = await gm.feed.reference("600000.SH")
    assert (ref.prev_close, ref.high_limit, ref.low_limit, ref.tick, ref.suspended) == (
        10000,
        11000,
        9000,
        10,
        False,
    )
    assert ref.name == "浦发银行"
    halted = await gm.feed.reference("000001.SZ")  # found only because we ask with skip_suspended=False
    assert halted.suspended is True
    assert halted.prev_close == 12500
    with pytest.raises(FeedError, match="no instrument data"):
        await gm.feed.reference("600004.SH")


async def test_bad_ticks_are_refused_and_never_price(gm: Feed) -> None:
    await gm.feed.subscribe(["600000.SH"])
    await gm.settle()
    good = gm.book.latest("600000.SH")
    at = START + timedelta(seconds=1)
    bad = [
        tick(SH, 10.0, math.nan, 10.02, at=at),  # NaN: a corrupt tick
        tick(SH, 0.0, 0.0, 0.0, at=at),  # nothing to price from
        tick(SH, 10.0, 10.05, 10.02, at=at),  # crossed
        tick("SHSE.600004", 10.0, 9.99, 10.01, at=at),  # not subscribed
        tick("600000", 10.0, 9.99, 10.01, at=at),  # not a gm symbol
        {**tick(SH, 10.0, 9.99, 10.01), "created_at": None},  # no timestamp
    ]
    for one in bad:
        gm.api.push_tick(one)
        await gm.settle()  # one at a time: the book conflates a burst by symbol
    assert gm.book.latest("600000.SH") == good
    assert gm.feed.stats.refused == 4
    assert gm.feed.stats.refusals == {
        "not_a_number": 1,
        "not_subscribed": 1,
        "bad_symbol": 1,
        "no_timestamp": 1,
    }
    assert gm.book.counters.refused == 2  # zero and crossed: the book's own rule


async def test_one_sided_book_at_a_limit_is_kept_with_an_empty_level(gm: Feed) -> None:
    await gm.feed.subscribe(["600000.SH"])
    gm.api.push_tick(tick(SH, 11.0, 11.0, 0.0, ask_v=0, at=START + timedelta(seconds=5)))  # limit up
    await gm.settle()
    quote = gm.book.latest("600000.SH")
    assert quote is not None
    assert (quote.last, quote.bid_price, quote.ask_price, quote.ask_quantity) == (11000, 11000, 0, 0)


async def test_unsubscribe_stops_ticks(gm: Feed) -> None:
    await gm.feed.subscribe(["600000.SH"])
    await gm.feed.unsubscribe(["600000.SH"])
    assert SH not in gm.api.subscribed
    gm.api.push_tick(tick(SH, 10.05, 10.04, 10.06, at=START + timedelta(seconds=9)))
    await gm.settle()
    assert gm.feed.stats.refusals == {"not_subscribed": 1}


async def test_current_maps_the_snapshot(gm: Feed) -> None:
    await gm.feed.subscribe(["600000.SH"])
    (quote,) = await gm.feed.current(["600000.SH"])
    assert (quote.symbol, quote.last, quote.high_limit) == ("600000.SH", 10010, 11000)


def test_feed_config_names_the_key() -> None:
    assert GmFeedConfig.from_settings({"frequency": "tick"}).frequency == "tick"
    with pytest.raises(ConfigError, match=r"feed\.gm\.frequency"):
        GmFeedConfig.from_settings({"frequency": "1m"})
    with pytest.raises(ConfigError, match=r"feed\.gm\.freq"):
        GmFeedConfig.from_settings({"freq": "tick"})
