"""The QMT feed against the fake xtdata: ticks pushed from xtdata's own thread reach the QuoteBook on
the loop, converted to milli-yuan and shares; reference() maps limits, tick and suspension."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.qmt_fake import FakeXtData
from zhixing.adapters.qmt import QmtFeedConfig, QmtQuoteFeed
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import ConfigError, FeedError
from zhixing.engine.events import Quote
from zhixing.engine.feed import QuoteBook

SYM = "600000.SH"
BJ = "430047.BJ"
START = 1_764_000_000 * 1_000_000_000


def detail(
    pre_close: float, up: float, down: float, *, status: int = 0, tick: float = 0.01
) -> dict[str, Any]:
    return {
        "InstrumentName": "浦发银行",
        "PreClose": pre_close,
        "UpStopPrice": up,
        "DownStopPrice": down,
        "PriceTick": tick,
        "InstrumentStatus": status,
        "IsTrading": status <= 0,
    }


def tick(
    last: float = 10.02,
    bid: float = 10.01,
    ask: float = 10.02,
    *,
    time_ms: int = 1_764_000_003_000,
    volume: int = 758_613,
    pvolume: int | None = 75_861_284,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "time": time_ms,
        "lastPrice": last,
        "open": 10.0,
        "high": 10.1,
        "low": 9.9,
        "lastClose": 10.0,
        "amount": 862_127_800.0,
        "volume": volume,
        "stockStatus": 3,
        "askPrice": [ask, ask + 0.01, 0.0, 0.0, 0.0],
        "bidPrice": [bid, bid - 0.01, 0.0, 0.0, 0.0],
        "askVol": [10_929, 12_401, 0, 0, 0],
        "bidVol": [2_429, 7_127, 0, 0, 0],
    }
    if pvolume is not None:
        data["pvolume"] = pvolume
    return data


@dataclass
class FeedRig:
    xtdata: FakeXtData
    feed: QmtQuoteFeed
    book: QuoteBook
    clock: SimClock
    sink_threads: set[int]

    async def push(self, code: str, data: dict[str, Any]) -> None:
        self.xtdata.push(code, data)  # runs the callback on xtdata's thread and waits for it
        await asyncio.sleep(0)  # one loop turn: the hopped delivery runs (no timing involved)
        while self.clock.step():  # the QuoteBook drains on its clock
            pass


async def make_rig(mode: str = "whole") -> FeedRig:
    xtdata = FakeXtData()
    xtdata.details[SYM] = detail(10.0, 11.0, 9.0)
    xtdata.details[BJ] = detail(5.0, 6.5, 3.5)
    xtdata.ticks[SYM] = tick()
    clock = SimClock(START)
    feed = QmtQuoteFeed(QmtFeedConfig(mode=mode), clock=clock, xtdata=xtdata)
    book = QuoteBook(clock)
    threads: set[int] = set()

    def sink(quote: Quote) -> None:
        threads.add(threading.get_ident())
        book.push(quote)

    feed.bind(sink)
    await feed.connect()
    return FeedRig(xtdata, feed, book, clock, threads)


@pytest.fixture(params=["whole", "tick"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[FeedRig]:
    r = await make_rig(request.param)
    yield r
    await r.feed.close()
    r.xtdata.close()


async def test_tick_from_the_xtdata_thread_reaches_the_quote_book_in_engine_units(rig: FeedRig) -> None:
    await rig.feed.subscribe([SYM])
    assert rig.xtdata.connected
    await rig.push(SYM, tick())
    quote = rig.book.latest(SYM)
    assert quote is not None
    assert rig.sink_threads == {threading.get_ident()}  # delivered on the loop thread, not xtdata's
    assert (quote.last, quote.bid_price, quote.ask_price) == (10_020, 10_010, 10_020)
    assert (quote.bid_quantity, quote.ask_quantity) == (242_900, 1_092_900)  # 手 → shares
    assert quote.cum_volume == 75_861_284  # pvolume: raw shares
    assert quote.cum_amount == 862_127_800_000
    assert (quote.prev_close, quote.high_limit, quote.low_limit) == (10_000, 11_000, 9_000)
    assert quote.ts_event == 1_764_000_003_000 * 1_000_000
    assert quote.ts_init == START


async def test_volume_in_lots_is_converted_when_pvolume_is_absent(rig: FeedRig) -> None:
    await rig.feed.subscribe([SYM])
    await rig.push(SYM, tick(volume=1_234, pvolume=None))
    quote = rig.book.latest(SYM)
    assert quote is not None
    assert quote.cum_volume == 123_400


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (tick(last=math.nan, bid=math.nan, ask=math.nan), "nan"),
        (tick(last=math.inf, bid=math.inf, ask=math.inf), "inf"),
        (tick(last=0.0, bid=0.0, ask=0.0), "zero"),
        (tick(last=-1.0, bid=-1.0, ask=-1.0), "negative"),
        (tick(bid=10.05, ask=10.02), "crossed"),
    ],
)
async def test_bad_ticks_never_become_the_latest_quote(
    rig: FeedRig, bad: dict[str, Any], reason: str
) -> None:
    await rig.feed.subscribe([SYM])
    await rig.push(SYM, tick(time_ms=1_764_000_003_000))
    good = rig.book.latest(SYM)
    bad["time"] = 1_764_000_006_000
    await rig.push(SYM, bad)
    assert rig.book.counters.refused == 1, reason
    assert rig.book.latest(SYM) is good


async def test_a_nan_side_becomes_an_empty_level_not_a_price(rig: FeedRig) -> None:
    await rig.feed.subscribe([SYM])
    quote = rig.feed.to_quote(SYM, tick(bid=math.nan) | {"bidVol": [math.nan]})
    assert (quote.bid_price, quote.bid_quantity, quote.ask_price) == (0, 0, 10_020)


async def test_unsubscribed_symbols_are_dropped_and_the_subscription_released(rig: FeedRig) -> None:
    await rig.feed.subscribe([SYM, BJ])
    await rig.push(BJ, tick(last=5.1, bid=5.09, ask=5.1))
    quote = rig.book.latest(BJ)
    assert quote is not None
    assert (quote.symbol, quote.high_limit) == (BJ, 6_500)
    await rig.feed.unsubscribe([SYM, BJ])
    assert rig.xtdata.subscriptions == {}
    assert rig.book.counters.received == 1


async def test_reference_maps_limits_tick_prev_close_and_suspension() -> None:
    r = await make_rig()
    ref = await r.feed.reference(SYM)
    assert (ref.prev_close, ref.high_limit, ref.low_limit, ref.tick) == (10_000, 11_000, 9_000, 10)
    assert (ref.last, ref.bid_price, ref.ask_price) == (10_020, 10_010, 10_020)
    assert ref.name == "浦发银行"
    assert ref.suspended is False

    r.xtdata.details["000002.SZ"] = detail(20.0, 22.0, 18.0, status=3)  # suspended 3 days
    assert (await r.feed.reference("000002.SZ")).suspended is True
    r.xtdata.details["000004.SZ"] = detail(20.0, 22.0, 18.0, status=-1)  # resumed today
    assert (await r.feed.reference("000004.SZ")).suspended is False
    r.xtdata.details["510300.SH"] = detail(4.0, 4.4, 3.6, tick=0.001)  # an ETF: 1 milli-yuan tick
    assert (await r.feed.reference("510300.SH")).tick == 1
    with pytest.raises(FeedError, match=r"999999\.SH"):
        await r.feed.reference("999999.SH")
    r.xtdata.close()


async def test_a_failed_subscription_raises_and_is_not_remembered() -> None:
    r = await make_rig()

    def refuse(code_list: list[str], callback: Any = None) -> int:
        return -1

    r.xtdata.subscribe_whole_quote = refuse  # type: ignore[method-assign]
    with pytest.raises(FeedError, match="-1"):
        await r.feed.subscribe([SYM])
    await r.push(SYM, tick())
    assert r.book.latest(SYM) is None
    r.xtdata.close()


def test_feed_config_keys_are_validated_by_name() -> None:
    config = QmtFeedConfig.from_settings({"mode": "tick", "port": 58610}, where="live.toml")
    assert (config.mode, config.port, config.lot_size) == ("tick", 58610, 100)
    with pytest.raises(ConfigError, match=r"feed\.qmt\.mode"):
        QmtFeedConfig.from_settings({"mode": "level2"}, where="live.toml")
    with pytest.raises(ConfigError, match=r"feed\.qmt\.prot"):
        QmtFeedConfig.from_settings({"prot": 1}, where="live.toml")
