"""``zhixing chaos``: the seeded chaos suite over a TWAP basket on the built-in real data."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.cli.replay_cmd import sample_data_dir
from replay.chaos import SeedOutcome, run_seed
from replay.data import load_snapshots
from replay.faults import FAULTS


def add_parsers(sub: Any) -> None:
    chaos = sub.add_parser("chaos", help="seeded fault injection over a TWAP basket; checks the books")
    chaos.add_argument("--seeds", type=int, default=20, help="number of seeds, 0..N-1 (default 20)")
    chaos.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    chaos.add_argument("--symbols", type=int, default=6, help="symbols in the basket (max 20, default 6)")
    chaos.add_argument("--data", type=Path, help="snapshot folder (default: built-in 2021-12-01 set)")
    chaos.add_argument("--json", action="store_true", help="print the summary as JSON")
    chaos.set_defaults(handler=run_chaos)


def summarise(outcomes: list[SeedOutcome]) -> dict[str, Any]:
    injected: Counter[str] = Counter()
    survived: Counter[str] = Counter()
    for o in outcomes:
        for fault, n in o.injected.items():
            injected[fault] += n
            if o.survived:
                survived[fault] += n
    return {
        "seeds": len(outcomes),
        "seeds_survived": sum(o.survived for o in outcomes),
        "failing_seeds": [o.seed for o in outcomes if not o.survived],
        "faults": {f: {"injected": injected[f], "survived": survived[f]} for f in FAULTS},
        "orders": sum(o.orders for o in outcomes),
        "fills": sum(o.fills for o in outcomes),
        "orders_lost": sum(o.lost_orders for o in outcomes),
        "duplicate_orders": sum(o.duplicate_orders for o in outcomes),
        "overfills": sum(o.order_overfills + o.parent_overfills for o in outcomes),
        "fill_mismatches": sum(o.fill_mismatches for o in outcomes),
        "position_mismatches": sum(o.position_mismatches for o in outcomes),
        "unresolved_orders": sum(o.unresolved for o in outcomes),
        "duplicate_fills_received_and_ignored": sum(o.duplicate_fills_ignored for o in outcomes),
        "unacked_orders_resolved_by_fills": sum(o.unacked_resolved_by_fills for o in outcomes),
        "in_flight_resolved_by_query": sum(o.inflight_resolved_by_query for o in outcomes),
        "in_flight_resolved_by_policy": sum(o.inflight_resolved_by_policy for o in outcomes),
        "problems": {str(o.seed): o.problems for o in outcomes if o.problems},
    }


def _git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, timeout=5
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def run_chaos(args: argparse.Namespace) -> int:
    market = load_snapshots(args.data or sample_data_dir() / "snapshots_20211201")
    symbols = max(1, min(args.symbols, len(market.symbols)))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    outcomes = [asyncio.run(run_seed(market, seed, symbols)) for seed in seeds]
    summary = summarise(outcomes)
    summary["symbols"] = symbols
    summary["git_sha"] = _git_sha()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        table = Table(title=f"chaos: {summary['seeds']} seeds x {symbols} symbols (git {summary['git_sha']})")
        for col in ("fault", "injected", "survived"):
            table.add_column(col, justify="left" if col == "fault" else "right")
        for fault, row in summary["faults"].items():
            table.add_row(fault, f"{row['injected']:,}", f"{row['survived']:,}")
        console = Console(width=120)
        console.print(table)
        for key in (
            "seeds_survived",
            "orders",
            "fills",
            "orders_lost",
            "duplicate_orders",
            "overfills",
            "fill_mismatches",
            "position_mismatches",
            "unresolved_orders",
            "duplicate_fills_received_and_ignored",
            "unacked_orders_resolved_by_fills",
        ):
            console.print(f"{key}: {summary[key]:,}")
        for seed, problems in summary["problems"].items():
            console.print(
                f"[red]seed {seed} FAILED[/red] (replay: zhixing chaos --first-seed {seed} --seeds 1 "
                f"--symbols {symbols}): {'; '.join(problems)}"
            )
    return 0 if not summary["failing_seeds"] else 1
