"""QuoteBook: conflation under a flood, refusal of quotes that must never price an order, staleness."""

from __future__ import annotations

import tracemalloc
from functools import partial

import pytest

from zhixing.engine.clock import SimClock
from zhixing.engine.events import Quote
from zhixing.engine.feed import QuoteBook

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def quote(symbol: str, ts: int, *, bid: int = 10_000, ask: int = 10_010, last: int = 10_000) -> Quote:
    return Quote(
        ts_event=ts,
        ts_init=ts,
        symbol=symbol,
        last=last,
        bid_price=bid,
        bid_quantity=100,
        ask_price=ask,
        ask_quantity=100,
        cum_volume=0,
        cum_amount=0,
        prev_close=10_000,
        high_limit=11_000,
        low_limit=9_000,
    )


def test_a_burst_is_conflated_to_the_newest_quote_per_symbol() -> None:
    clock = SimClock(T0)
    seen: list[Quote] = []
    book = QuoteBook(clock, on_quote=seen.append)
    for i in range(1000):
        book.push(quote("600000.SH", T0 + i, bid=10_000 + i % 5 * 10, ask=10_100))
        book.push(quote("000001.SZ", T0 + i))
    assert book.pending_count == 2  # never more than one waiting per symbol
    assert book.latest("600000.SH") is None  # nothing processed until the loop gets to it
    clock.step()
    assert [q.symbol for q in seen] == ["600000.SH", "000001.SZ"]
    assert seen[0].ts_event == T0 + 999
    assert book.counters.received == 2000
    assert book.counters.conflated == 1998
    assert book.counters.delivered == 2


def test_bad_quotes_never_become_the_latest() -> None:
    clock = SimClock(T0)
    book = QuoteBook(clock)
    good = quote("600000.SH", T0)
    book.push(good)
    clock.step()
    for bad in (
        quote("600000.SH", T0 + 1, bid=0, ask=0, last=0),  # empty
        quote("600000.SH", T0 + 2, bid=10_020, ask=10_010),  # crossed
        quote("600000.SH", T0 + 3, bid=-10, ask=10_010),  # negative
        quote("600000.SH", T0 - 5),  # older than what we have: a stale snapshot must not regress
    ):
        book.push(bad)
        clock.step()
        assert book.latest("600000.SH") == good
    assert book.counters.refused == 4
    assert book.refusals == {"unusable (zero, negative or crossed)": 3, "out of order": 1}


def test_silence_marks_a_symbol_stale_and_a_quote_brings_it_back() -> None:
    clock = SimClock(T0)
    events: list[tuple[str, str, int]] = []
    book = QuoteBook(
        clock,
        stale_after_ns=10 * S,
        on_stale=lambda s: events.append(("stale", s, clock.now_ns())),
        on_fresh=lambda s: events.append(("fresh", s, clock.now_ns())),
    )
    book.watch(["600000.SH", "000001.SZ"])
    # 000001.SZ keeps quoting every 2 s; 600000.SH says nothing
    for i in range(1, 21):
        when = T0 + i * 2 * S
        clock.call_at(when, partial(book.push, quote("000001.SZ", when)))
    clock.call_at(T0 + 31 * S, lambda: book.push(quote("600000.SH", T0 + 31 * S)))
    while clock.step(until_ns=T0 + 40 * S):
        pass
    assert [(kind, symbol) for kind, symbol, _ in events] == [("stale", "600000.SH"), ("fresh", "600000.SH")]
    stale_at = events[0][2]
    assert T0 + 10 * S <= stale_at <= T0 + 13 * S  # checked every stale_after/4
    assert events[1][2] == T0 + 31 * S
    assert not book.is_stale("600000.SH")
    assert book.latest("600000.SH") is not None
    book.stop_watch()


def test_a_stale_symbol_prices_nothing() -> None:
    clock = SimClock(T0)
    book = QuoteBook(clock, stale_after_ns=S)
    book.push(quote("600000.SH", T0))
    clock.step()
    book.watch(["600000.SH"])
    assert book.latest("600000.SH") is not None
    while not book.is_stale("600000.SH"):
        assert clock.step()
    assert clock.now_ns() - T0 >= S
    assert book.latest("600000.SH") is None  # the old quote no longer prices an order
    book.stop_watch()


def test_the_same_snapshot_again_is_not_news() -> None:
    """A feed that re-sends its last snapshot (or a re-subscription handing out a suspended stock's last
    one) neither keeps a symbol fresh nor ends its staleness; only a later snapshot does."""
    clock = SimClock(T0)
    events: list[tuple[str, int]] = []
    book = QuoteBook(
        clock,
        stale_after_ns=10 * S,
        on_stale=lambda s: events.append(("stale", clock.now_ns())),
        on_fresh=lambda s: events.append(("fresh", clock.now_ns())),
    )
    frozen = quote("600000.SH", T0)
    book.push(frozen)
    clock.step()
    book.watch(["600000.SH"])
    for i in range(1, 15):  # the frozen snapshot, re-sent every second
        clock.call_at(T0 + i * S, partial(book.push, frozen))
    while clock.step(until_ns=T0 + 15 * S):
        pass
    assert [kind for kind, _ in events] == ["stale"]
    assert book.counters.repeated == 14
    clock.call_at(T0 + 16 * S, partial(book.push, quote("600000.SH", T0 + 16 * S)))
    while clock.step(until_ns=T0 + 17 * S):
        pass
    assert events[-1] == ("fresh", T0 + 16 * S)
    assert book.latest("600000.SH") == quote("600000.SH", T0 + 16 * S)
    book.stop_watch()


@pytest.mark.slow
def test_a_flood_does_not_grow_memory() -> None:
    """200k quotes across 50 symbols arriving faster than they are processed: memory stays flat."""
    clock = SimClock(T0)
    book = QuoteBook(clock)
    symbols = [f"{600000 + i}.SH" for i in range(50)]

    def burst(start: int) -> None:
        for i in range(start, start + 20_000):
            book.push(quote(symbols[i % 50], T0 + i))

    burst(0)  # warm up: every symbol has a latest and a pending slot
    clock.step()
    tracemalloc.start()
    try:
        burst(20_000)
        clock.step()
        baseline, _ = tracemalloc.get_traced_memory()
        for k in range(2, 10):
            burst(k * 20_000)
            clock.step()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert book.pending_count == 0
    assert book.counters.received == 200_000
    assert current - baseline < 64 * 1024  # bounded by symbols, not by quotes


def test_silence_outside_trading_hours_is_not_staleness() -> None:
    clock = SimClock(T0)
    stale: list[str] = []
    trading = [True]
    book = QuoteBook(clock, stale_after_ns=10 * S, on_stale=stale.append, is_trading=lambda ts: trading[0])
    book.push(quote("600000.SH", T0))
    clock.step()
    book.watch(["600000.SH"])
    trading[0] = False  # lunch: nobody quotes for 90 minutes
    clock.call_at(T0 + 5400 * S, lambda: trading.__setitem__(0, True))
    while clock.step(until_ns=T0 + 5400 * S):
        pass
    assert stale == []
    while clock.step(until_ns=T0 + 5405 * S):  # trading again, 5 s of silence: not yet stale
        pass
    assert stale == []
    while clock.step(until_ns=T0 + 5420 * S):  # 20 s of silence while trading: stale
        pass
    assert stale == ["600000.SH"]
    book.stop_watch()
