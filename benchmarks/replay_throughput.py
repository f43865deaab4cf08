"""Replay throughput: N symbols x one full real trading day of ~3 s snapshots, a TWAP parent on each.

Run by hand: ``python benchmarks/replay_throughput.py [N ...]`` (default 10 100 500). Each N runs in a
fresh subprocess so peak memory (ru_maxrss) belongs to that N alone. Load time (CSV parse of N files:
the three full-day 2022-06-01 files of the shared data, parsed again for every clone) is reported apart
from zhixing.replay time (the engine, algorithms and simulated exchange over the day).
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zhixing.engine.parents import ParentOrder
    from zhixing.replay.data import MarketData

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SOURCES = sorted((ROOT / "replay" / "sample_data" / "snapshots_20220601").glob("*.csv.gz"))


def clone_code(template: str, i: int) -> str:
    """A distinct code on the template's board: 000400.SZ -> 001xxx.SZ, 300122.SZ -> 300xxx.SZ etc."""
    code, suffix = template.split(".")
    if code.startswith("30"):
        return f"30{(i % 10_000):04d}.{suffix}"
    return f"00{(i % 10_000):04d}.{suffix}"


def load_market(n: int) -> MarketData:
    """N symbols: the source files parsed again for every clone (a real parse per symbol), renamed."""
    from zhixing.replay.data import MarketData, clone_symbol_day, load_snapshot_file

    days = {}
    for i in range(n):
        day = load_snapshot_file(SOURCES[i % len(SOURCES)])
        symbol = clone_code(day.symbol, i)
        days[symbol] = clone_symbol_day(day, symbol)
    return MarketData(days=days, trade_date=next(iter(days.values())).trade_date)


def benchmark_parents(market: MarketData) -> list[ParentOrder]:
    """A TWAP buy of ~0.5% of the day's volume on every symbol, 09:30-14:57."""
    from zhixing.engine.enums import Side
    from zhixing.engine.market import shanghai_ns
    from zhixing.engine.parents import ParentOrder

    start, end = shanghai_ns(market.trade_date, "09:30"), shanghai_ns(market.trade_date, "14:57")
    return [
        ParentOrder(
            parent_id=f"P{i:04d}",
            symbol=symbol,
            side=Side.BUY,
            quantity=max(100, int(day.cum_volume[-1]) // 200 // 100 * 100),
            start_ns=start,
            end_ns=end,
            algo="twap",
        )
        for i, (symbol, day) in enumerate(sorted(market.days.items()))
    ]


def run_one(n: int) -> dict[str, float]:
    from zhixing.replay.harness import ReplayConfig, run_replay

    t0 = time.perf_counter()
    market = load_market(n)
    load_s = time.perf_counter() - t0
    snapshots = sum(len(d) for d in market.days.values())
    parents = benchmark_parents(market)
    with tempfile.TemporaryDirectory() as tmp:
        config = ReplayConfig(cash=10**15, db_path=Path(tmp) / "bench.db", synchronous="OFF")
        t1, c1 = time.perf_counter(), time.process_time()
        result = asyncio.run(run_replay(market, parents, config))
        replay_s, replay_cpu_s = time.perf_counter() - t1, time.process_time() - c1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "symbols": n,
        "snapshots": snapshots,
        "child_orders": result.report.total_child_orders,
        "fills": result.exchange.stats.fills if hasattr(result.exchange.stats, "fills") else -1,
        "load_s": round(load_s, 2),
        "replay_s": round(replay_s, 2),
        "replay_cpu_s": round(replay_cpu_s, 2),
        "snapshots_per_s": round(snapshots / replay_s),
        "us_per_child_order": round(replay_s / max(1, result.report.total_child_orders) * 1e6, 1),
        "peak_rss_mb": round(peak_mb),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(run_one(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 500]
    print(
        f"{'N':>5} {'snapshots':>10} {'children':>9} {'load s':>7} {'replay s':>9} {'cpu s':>7} "
        f"{'snaps/s':>10} {'us/child':>9} {'peak MB':>8}"
    )
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n)], check=True, capture_output=True, text=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['symbols']:>5} {r['snapshots']:>10,} {r['child_orders']:>9,} {r['load_s']:>7} "
            f"{r['replay_s']:>9} {r['replay_cpu_s']:>7} {r['snapshots_per_s']:>10,} "
            f"{r['us_per_child_order']:>9} "
            f"{r['peak_rss_mb']:>8}"
        )


if __name__ == "__main__":
    main()
