"""Live-path throughput: quotes through the QuoteBook (conflation, checks) and order files through the
file-order writer (temp file, fsync, rename, fsync the folder, sid ledger commit).
Run by hand: ``python benchmarks/feed_and_files.py``."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

from zhixing.adapters.fileorder.format import BIZ_OF_SIDE, ORDER_TYPE_LIMIT, price_text
from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.events import Quote
from zhixing.engine.feed import QuoteBook

T0 = 1_700_000_000_000_000_000


def quote(symbol: str, ts: int, bid: int) -> Quote:
    return Quote(
        ts_event=ts,
        ts_init=ts,
        symbol=symbol,
        last=bid,
        bid_price=bid,
        bid_quantity=100,
        ask_price=bid + 10,
        ask_quantity=100,
        cum_volume=0,
        cum_amount=0,
        prev_close=10_000,
        high_limit=11_000,
        low_limit=9_000,
    )


def feed_flood(symbols: int = 500, quotes: int = 1_000_000, burst: int = 5_000) -> None:
    clock = SimClock(T0)
    book = QuoteBook(clock)
    names = [f"{600000 + i}.SH" for i in range(symbols)]
    batch = [quote(names[i % symbols], T0 + i, 10_000 + (i % 7) * 10) for i in range(burst)]
    tracemalloc.start()
    start = time.perf_counter()
    for _ in range(quotes // burst):
        for q in batch:
            book.push(q)
        clock.step()  # the loop gets to the book once per burst: everything else was conflated
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    c = book.counters
    print(
        f"QuoteBook: {quotes:,} quotes over {symbols} symbols in bursts of {burst:,}: "
        f"{quotes / elapsed:,.0f} quotes/s, {c.conflated:,} conflated, {c.delivered:,} delivered, "
        f"peak traced memory {peak / 1024:,.0f} KiB"
    )


def file_orders(count: int = 500) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        ledger = SidLedger(folder / "ledger.sqlite")
        writer = OrderFileWriter(folder / "in", ledger, SimClock(T0))
        start = time.perf_counter()
        for i in range(count):
            row = (f"Z{i:09d}", "acct", "SHSE.600000", 100, ORDER_TYPE_LIMIT, BIZ_OF_SIDE[Side.BUY])
            writer.drop_order((*row, price_text(10_000), "bench"))
        elapsed = time.perf_counter() - start
        ledger.close()
    print(
        f"file orders: {count} dropped atomically (fsync file + folder + ledger): "
        f"{count / elapsed:,.0f} orders/s"
    )


if __name__ == "__main__":
    feed_flood()
    file_orders()
