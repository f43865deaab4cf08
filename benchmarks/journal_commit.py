"""Journal commit cost: one order (write-ahead latency of a tick) and 1,000 orders (a basket tick),
under synchronous=FULL (live) and NORMAL. Run by hand: ``python benchmarks/journal_commit.py``."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from zhixing.engine.enums import Side
from zhixing.engine.orders import Order
from zhixing.engine.store import StateStore


def orders(start: int, count: int) -> list[Order]:
    return [
        Order(
            client_order_id=f"Z{start + i:09d}",
            symbol="600000.SH",
            side=Side.BUY,
            price=10_000,
            quantity=100,
            parent_id="P1",
            ts_created=i,
            ts_updated=i,
        )
        for i in range(count)
    ]


async def measure(synchronous: str, batch: int, rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = await StateStore.open(Path(tmp) / "bench.db", synchronous=synchronous)
        times = []
        for r in range(rounds):
            for order in orders(r * batch, batch):
                store.stage_order(order)
            t0 = time.perf_counter()
            await store.commit()
            times.append(time.perf_counter() - t0)
        await store.close()
    return times


def main() -> None:
    print(f"{'synchronous':>11} {'batch':>6} {'p50 ms':>8} {'p99 ms':>8} {'rows/s':>10}")
    for synchronous in ("FULL", "NORMAL"):
        for batch, rounds in ((1, 300), (1000, 50)):
            times = sorted(asyncio.run(measure(synchronous, batch, rounds)))
            p50 = statistics.median(times)
            p99 = times[int(len(times) * 0.99) - 1]
            print(f"{synchronous:>11} {batch:>6} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {batch / p50:>10,.0f}")


if __name__ == "__main__":
    main()
