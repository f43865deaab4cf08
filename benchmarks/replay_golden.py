"""Golden hashes of replay outputs, to show an optimisation changed nothing a user can observe.

Run by hand: ``python benchmarks/replay_golden.py [N]`` (default 30). Two baskets over the benchmark's
data (``replay_throughput.py``): the benchmark's own (N TWAP buys) and a mixed one (buys and sells from
held positions, over TWAP, VWAP, POV, iceberg and chase, some with a limit price). For each it prints a
SHA-256 of every journal table (orders, fills, parents, algo states and plans, positions, meta), of the
exported trade log (``orders.csv``, ``fills.csv``), of the report, and of the fills the bus delivered in
memory, in the order they were delivered. Identical lines before and after a change = byte-identical
results.

Two summary lines: ``TRADES`` covers everything a user sees of the trading (every table but the
algorithms' journaled state, the trade log, the report, the bus fills) and must not change under an
optimisation, and neither must ``loaded_algo_states`` (the complete states a restart resumes from, as
``StateStore.load_algo_states`` returns them, less ``plan_version``); ``ALL`` adds the algorithm-state
tables, whose layout may change by design (e.g. the plan journaled apart from the progress, schema
version 2).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from replay_throughput import benchmark_parents, load_market  # noqa: E402

from zhixing.engine.enums import Side  # noqa: E402
from zhixing.engine.market import shanghai_ns  # noqa: E402
from zhixing.engine.parents import ParentOrder  # noqa: E402
from zhixing.engine.risk_controls import RISK_META_KEY, RiskLimits  # noqa: E402
from zhixing.engine.store.staging import to_json  # noqa: E402
from zhixing.replay.data import MarketData  # noqa: E402
from zhixing.replay.harness import ReplayConfig, run_replay  # noqa: E402

TABLES = {
    "orders": "SELECT * FROM orders ORDER BY client_order_id",
    "fills": "SELECT * FROM fills ORDER BY seq",
    "parents": "SELECT * FROM parents ORDER BY parent_id",
    "algo_states": "SELECT * FROM algo_states ORDER BY parent_id",
    "algo_plans": "SELECT * FROM algo_plans ORDER BY parent_id",
    "positions": "SELECT * FROM positions ORDER BY symbol",
    "meta": "SELECT * FROM meta ORDER BY key",
}
ISSUE_20_RISK_KEYS = frozenset(
    {
        "queued_now",
        "orders_queued",
        "queued_sent",
        "queued_cancelled",
        "queue_timeouts",
        "max_queue_wait_ns",
        "peak_queue_depth",
    }
)
"""Keys the journaled risk report (meta ``risk_report``) gained with the rate queue (issue 20), and the new
limit ``rate_queue_timeout_ns``: hashed without them, so ``meta`` compares with the hashes from before."""

ISSUE_15_ORDER_COLUMNS = frozenset({"order_type"})
"""Columns ``orders`` gained with market orders (issue 15, schema 4): hashed without them, so ``orders``
compares with the hashes from before (every order of these replays is a limit one)."""

ALGO_STATE_TABLES = frozenset({"algo_states", "algo_plans"})
"""Journal tables of algorithm state: left out of the ``TRADES`` hash (their layout may change)."""

MIXED_ALGOS: tuple[tuple[str, dict[str, str]], ...] = (
    ("twap", {"price_policy": "passive", "interval_s": "30"}),
    ("vwap", {"profile": "u_shape"}),
    ("pov", {"target_rate": "0.05", "closing_auction": "0.2"}),
    ("iceberg", {"display_qty": "1000", "jitter_pct": "0.2", "seed": "7"}),
    ("chase", {"price_policy": "mid"}),
)


def mixed_parents(market: MarketData) -> tuple[list[ParentOrder], dict[str, int]]:
    """Odd symbols sell from a held position; algorithms rotate; every third parent has a limit."""
    day0 = market.trade_date
    windows = (("09:30", "11:30"), ("10:00", "14:00"), ("13:00", "15:00"))
    parents, positions = [], {}
    for i, (symbol, day) in enumerate(sorted(market.days.items())):
        algo, params = MIXED_ALGOS[i % len(MIXED_ALGOS)]
        side = Side.SELL if i % 2 else Side.BUY
        quantity = max(100, int(day.cum_volume[-1]) // 100 // 100 * 100)  # ~1% of the day's volume
        if side is Side.SELL:
            positions[symbol] = quantity
        first, last = windows[i % len(windows)]
        limit = 0
        if i % 3 == 0:
            prev = int(day.prev_close)
            limit = prev * 1003 // 1000 if side is Side.BUY else prev * 997 // 1000
        parents.append(
            ParentOrder(
                parent_id=f"M{i:04d}",
                symbol=symbol,
                side=side,
                quantity=quantity,
                start_ns=shanghai_ns(day0, first),
                end_ns=shanghai_ns(day0, last),
                algo=algo,
                limit_price=limit,
                params=dict(params),
            )
        )
    return parents, positions


RISK = RiskLimits(max_order_value=int(os.environ.get("ZHIXING_GOLDEN_MAX_ORDER_VALUE", "1000000000")))
"""The risk gate's limits (the defaults of a live run). ``ZHIXING_GOLDEN_MAX_ORDER_VALUE=0`` lifts the
order-value cap: the one limit the mixed scenario's large children meet (docs/ARCHITECTURE.md)."""


def before_issue_20(risk_report: str) -> str:
    """The journaled risk report without what issue 20 added (``ISSUE_20_RISK_KEYS``)."""
    report = json.loads(risk_report)
    for key in ISSUE_20_RISK_KEYS:
        report.pop(key, None)
    report.get("limits", {}).pop("rate_queue_timeout_ns", None)
    return to_json(report)


def digest(rows: object) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


async def run(
    market: MarketData, parents: list[ParentOrder], positions: dict[str, int], tmp: Path, name: str
) -> dict[str, str]:
    db = tmp / f"{name}.db"
    config = ReplayConfig(cash=10**15, positions=positions, db_path=db, synchronous="OFF", risk=RISK)
    result = await run_replay(market, parents, config)
    out: dict[str, str] = {}
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, sql in TABLES.items():
            if table not in tables:  # a journal older than the table
                continue
            if table == "orders":
                columns = [r[1] for r in conn.execute("PRAGMA table_info(orders)")]
                kept = ", ".join(c for c in columns if c not in ISSUE_15_ORDER_COLUMNS)
                sql = sql.replace("*", kept)
            rows = conn.execute(sql).fetchall()
            if table == "meta":
                rows = [(k, before_issue_20(v) if k == RISK_META_KEY else v) for k, v in rows]
            out[f"{table}[{len(rows)}]"] = digest(rows)
    finally:
        conn.close()
    from zhixing.engine.store import StateStore

    store = await StateStore.open(db, synchronous="OFF")
    try:
        orders_csv, fills_csv = await store.export_trade_log(tmp / f"{name}_log")
        states = await store.load_algo_states()
    finally:
        await store.close()
    out["orders.csv"] = hashlib.sha256(orders_csv.read_bytes()).hexdigest()[:16]
    out["fills.csv"] = hashlib.sha256(fills_csv.read_bytes()).hexdigest()[:16]
    # what a restart resumes from, whatever the tables' layout: the complete states as loaded (joined),
    # less the plan version (a counter of the journal's own; it does not exist before schema 2)
    resumable = {
        parent_id: (algo, sorted((k, v) for k, v in state.items() if k != "plan_version"))
        for parent_id, (algo, state) in sorted(states.items())
    }
    out[f"loaded_algo_states[{len(resumable)}]"] = digest(resumable)
    # the report as it was before it had the risk gate's section (its repr without the new last field)
    # and before its parent rows had ``queued`` (issue 20; a run that ends with nothing queued shows 0)
    # and before its parent rows had their fees in bps (issue 15)
    rows = [dataclasses.replace(r, fees_bps=None, commission_bps=None) for r in result.report.parents]
    report = dataclasses.replace(result.report, gate=None, parents=rows)
    before_gate = repr(report).removesuffix(", gate=None)") + ")"
    before_gate = before_gate.replace(", fees_bps=None, commission_bps=None)", ")")
    before_gate = before_gate.replace(", queued=0)", ")")
    out["report"] = hashlib.sha256(before_gate.encode()).hexdigest()[:16]
    # the risk gate's section of the report, as it was before it had the rate queue's figures (issue 20)
    gate = result.report.gate
    before_queue = repr(gate) if gate is None else repr(dataclasses.replace(gate, queue=None))
    out["gate"] = hashlib.sha256(before_queue.removesuffix(", queue=None)").encode() + b")").hexdigest()[:16]
    out[f"bus_fills[{len(result.fills)}]"] = digest(result.fills)
    return out


def main() -> None:
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: hashes only
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    market = load_market(n)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        runs = {
            "benchmark": (benchmark_parents(market), {}),
            "mixed": mixed_parents(market),
        }
        everything, trades = hashlib.sha256(), hashlib.sha256()
        for name, (parents, positions) in runs.items():
            hashes = asyncio.run(run(market, parents, positions, tmp, name))
            for key, value in hashes.items():
                print(f"{name:<9} {key:<22} {value}")
                line = f"{name}{key}{value}".encode()
                everything.update(line)
                if key.split("[")[0] not in ALGO_STATE_TABLES:
                    trades.update(line)
        print(f"{'TRADES':<9} {'':<22} {trades.hexdigest()[:16]}")
        print(f"{'ALL':<9} {'':<22} {everything.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
