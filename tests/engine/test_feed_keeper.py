"""A symbol whose subscription the data service forgot (xtdata restarted, a server-side drop): the book
marks it stale and its slicing pauses; the keeper re-subscribes it after ``resubscribe_after_ns``, quotes
return, slicing resumes. Without the keeper it would stay silent. A feed that refuses is tried again on a
doubling backoff; quotes coming back end it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from zhixing.engine.account import Account
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.errors import FeedError
from zhixing.engine.feed import QuoteBook
from zhixing.engine.feed_keeper import FeedKeeper
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600258.SH"
CASH = 10**10


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE, symbols=[SYMBOL])


async def run_to(clock: SimClock, session: LiveSession, until_ns: int) -> None:
    while clock.step(until_ns=until_ns):
        await session.oms.flush()
        await session.poll()
    clock.advance_to(until_ns)


async def forgotten_subscription_day(
    tmp_path: Path, market: MarketData, *, keeper: bool
) -> tuple[LiveSession, SimClock, RecordedFeed, list[int]]:
    day = market.trade_date
    clock = SimClock(shanghai_ns(day, "09:59"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=CASH)
    feed = RecordedFeed(market, exchange, clock)
    session = await open_live_session(
        clock=clock,
        adapter=exchange,
        feed=feed,
        store_path=tmp_path / "live.db",
        account=Account(CASH),
        trading_day_start_ns=shanghai_ns(day, "00:00"),
        synchronous="NORMAL",
        stale_after_ns=30 * NS_PER_SECOND,
        resubscribe_after_ns=30 * NS_PER_SECOND,
    )
    if not keeper:
        session.keeper = None
    parent = ParentOrder(
        parent_id="P1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=30_000,
        start_ns=shanghai_ns(day, "10:00"),
        end_ns=shanghai_ns(day, "10:30"),
        params={"interval_s": "30"},
    )
    await session.start_parents([parent])
    filled: list[int] = []

    def progress() -> int:
        return sum(o.filled_quantity for o in session.oms.children_of("P1"))

    await run_to(clock, session, shanghai_ns(day, "10:05"))
    filled.append(progress())
    await feed.unsubscribe([SYMBOL])  # the data service forgets us; nobody tells the engine
    await run_to(clock, session, shanghai_ns(day, "10:08"))
    filled.append(progress())
    await run_to(clock, session, shanghai_ns(day, "10:30"))
    filled.append(progress())
    return session, clock, feed, filled


async def test_a_forgotten_subscription_is_renewed_and_slicing_resumes(
    tmp_path: Path, market: MarketData
) -> None:
    session, _, feed, filled = await forgotten_subscription_day(tmp_path, market, keeper=True)
    try:
        assert session.keeper is not None
        assert session.keeper.counters.resubscribes == 1
        assert session.keeper.counters.recovered == 1
        assert session.book.counters.stale_events == 1
        assert (session.guard.pauses, session.guard.resumes) == (1, 1)
        assert not session.book.is_stale(SYMBOL)
        assert filled[0] > 0
        assert filled[2] > filled[1]  # the parent went on filling after the quotes came back
        assert feed.pushed > 0
    finally:
        await session.close()


async def test_without_the_keeper_the_symbol_stays_silent(tmp_path: Path, market: MarketData) -> None:
    session, _, _, filled = await forgotten_subscription_day(tmp_path, market, keeper=False)
    try:
        assert session.book.is_stale(SYMBOL)
        assert (session.guard.pauses, session.guard.resumes) == (1, 0)
        assert filled[2] == filled[1]  # paused for good: nothing prices without quotes
    finally:
        await session.close()


class RefusingFeed:
    """A feed whose re-subscriptions fail ``failures`` times (its service is still coming back)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        self.calls.append(("unsubscribe", tuple(symbols)))

    async def subscribe(self, symbols: Sequence[str]) -> None:
        self.calls.append(("subscribe", tuple(symbols)))
        if self.failures:
            self.failures -= 1
            raise FeedError("xtdata: not connected")


async def test_a_refusing_feed_is_retried_on_a_doubling_backoff() -> None:
    clock = SimClock(0)
    book = QuoteBook(clock, stale_after_ns=10 * NS_PER_SECOND)
    book.watch(["600000.SH"])
    feed = RefusingFeed(failures=2)
    keeper = FeedKeeper(feed, book, clock, resubscribe_after_ns=5 * NS_PER_SECOND)  # type: ignore[arg-type]
    tried_at: list[int] = []
    for second in range(0, 200):
        while clock.step(until_ns=second * NS_PER_SECOND):
            pass
        clock.advance_to(second * NS_PER_SECOND)
        if await keeper.check():
            tried_at.append(second)
        if len(tried_at) == 4:
            break
    # stale from ~10 s; first try 5 s later, then 5, 10, 20 s apart
    first = tried_at[0]
    assert [t - first for t in tried_at] == [0, 5, 15, 35]
    assert keeper.counters.failures == 2
    assert keeper.counters.resubscribes == 4
    assert feed.calls[:2] == [("unsubscribe", ("600000.SH",)), ("subscribe", ("600000.SH",))]


def test_bad_settings_are_refused() -> None:
    clock = SimClock(0)
    book = QuoteBook(clock)
    with pytest.raises(ValueError, match="resubscribe_after_ns"):
        FeedKeeper(RefusingFeed(0), book, clock, resubscribe_after_ns=0)  # type: ignore[arg-type]
