"""``zhixing chaos``: the seeded chaos suite over a TWAP basket on the built-in real data."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from zhixing.engine.cli.replay_cmd import sample_data_dir
from zhixing.replay.chaos import CHAOS_FAULTS, SeedOutcome, run_seed
from zhixing.replay.data import load_snapshots


def add_parsers(sub: Any) -> None:
    chaos = sub.add_parser("chaos", help="seeded fault injection over a TWAP basket; checks the books")
    chaos.add_argument("--seeds", type=int, default=20, help="number of seeds, 0..N-1 (default 20)")
    chaos.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    chaos.add_argument("--symbols", type=int, default=6, help="symbols in the basket (max 20, default 6)")
    chaos.add_argument("--data", type=Path, help="snapshot folder (default: built-in 2021-12-01 set)")
    chaos.add_argument("--json", action="store_true", help="print the summary as JSON")
    chaos.add_argument(
        "--no-crash", action="store_true", help="no crash-and-restart (faults on the wire only)"
    )
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
        "faults": {f: {"injected": injected[f], "survived": survived[f]} for f in CHAOS_FAULTS},
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
        "algo_progress_mismatches": sum(o.algo_mismatches for o in outcomes),
        "ends_held_for_fill_rows": sum(o.ends_held for o in outcomes),
        "fills_after_end": sum(o.fills_after_end for o in outcomes),
        "clock_steps_injected": sum(o.clock_steps_injected for o in outcomes),
        "clock_steps_reported": sum(o.clock_steps_reported for o in outcomes),
        "recovery": _recovery_summary(outcomes),
        "link": _link_summary(outcomes),
        "broker_view": {
            key: sum(getattr(o.broker_view, key) for o in outcomes)
            for key in (
                "differences_seen",
                "differences_settled",
                "differences_persisted",
                "requeries",
                "reconcile_requeries",
                "cancels_failed",
                "cancels_resent",
                "cancels_escalated",
                "cancels_unanswered",
            )
        },
        "problems": {str(o.seed): o.problems for o in outcomes if o.problems},
    }


def _percentiles(values: list[int]) -> dict[str, int]:
    """p50 / p95 / max by the nearest-rank method (0 for an empty list)."""
    if not values:
        return {"p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)

    def rank(p: int) -> int:
        return ordered[max(0, -(-p * len(ordered) // 100) - 1)]

    return {"p50": rank(50), "p95": rank(95), "max": ordered[-1]}


def _recovery_summary(outcomes: list[SeedOutcome]) -> dict[str, Any]:
    """Crash-restart figures: counts, and p50/p95/max of each recovery time."""
    recoveries = [r for o in outcomes for r in o.recoveries]
    settled = [r.settle_ns for r in recoveries if r.settle_ns >= 0]
    return {
        "restarts": len(recoveries),
        "killed_between_commit_and_send": sum(r.in_flush for r in recoveries),
        "orders_rebuilt": sum(r.rebuilt for r in recoveries),
        "orders_adopted_from_broker": sum(r.adopted for r in recoveries),
        "missed_fills_applied": sum(r.fills_applied for r in recoveries),
        "never_sent_resolved": sum(r.never_sent for r in recoveries),
        "left_in_flight_for_checks": sum(r.pending for r in recoveries),
        "reconcile_mismatches": sum(r.mismatches for r in recoveries),
        "never_settled": sum(1 for r in recoveries if r.settle_ns < 0),
        "restarts_that_waited_for_the_link": sum(1 for r in recoveries if r.link_wait_ns > 0),
        "link_wait_at_restart_virtual_ms": {
            k: v // 1_000_000
            for k, v in _percentiles([r.link_wait_ns for r in recoveries if r.link_wait_ns > 0]).items()
        },
        "downtime_ms": {
            k: v // 1_000_000 for k, v in _percentiles([r.downtime_ns for r in recoveries]).items()
        },
        "restart_to_ready_virtual_ms": {
            k: v // 1_000_000 for k, v in _percentiles([r.virtual_ns for r in recoveries]).items()
        },
        "restart_to_settled_virtual_ms": {k: v // 1_000_000 for k, v in _percentiles(settled).items()},
        "recover_and_resume_wall_ms": {
            k: round(v / 1_000_000, 2) for k, v in _percentiles([r.wall_ns for r in recoveries]).items()
        },
    }


def _link_summary(outcomes: list[SeedOutcome]) -> dict[str, Any]:
    """Broker-link outages: what the monitors did, and reconnect -> resumed (virtual) p50/p95/max."""
    links = [o.link for o in outcomes]
    totals = {
        key: sum(getattr(link, key) for link in links)
        for key in (
            "incidents",
            "resumed",
            "algos_paused",
            "algos_resumed",
            "orders_denied",
            "cancels_refused",
            "cancels_resent",
            "orders_adopted",
            "fills_applied_by_resync",
            "events_lost",
            "fills_repushed",
            "submits_refused_by_adapter",
            "sent_while_down",
        )
    }
    return {
        **totals,
        "outage_ms": {
            k: v // 1_000_000 for k, v in _percentiles([n for x in links for n in x.outage_ns]).items()
        },
        "reconnect_to_resumed_virtual_ms": {
            k: v // 1_000_000
            for k, v in _percentiles([n for x in links for n in x.reconnect_to_resumed_ns]).items()
        },
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
    # wall time is read here, at the entry point, only for the printed recovery figure
    outcomes = [
        asyncio.run(run_seed(market, seed, symbols, wall=time.perf_counter_ns, crashes=not args.no_crash))
        for seed in seeds
    ]
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
            "in_flight_resolved_by_query",
            "in_flight_resolved_by_policy",
            "algo_progress_mismatches",
            "clock_steps_injected",
            "clock_steps_reported",
        ):
            console.print(f"{key}: {summary[key]:,}")
        for key, value in summary["recovery"].items():
            if isinstance(value, dict):
                value = " / ".join(f"{k} {v:,}" for k, v in value.items())
            console.print(f"recovery {key}: {value}")
        for key, value in summary["link"].items():
            if isinstance(value, dict):
                value = " / ".join(f"{k} {v:,}" for k, v in value.items())
            console.print(f"link {key}: {value}")
        for key, value in summary["broker_view"].items():
            console.print(f"broker view {key}: {value:,}")
        for seed, problems in summary["problems"].items():
            console.print(
                f"[red]seed {seed} FAILED[/red] (replay: zhixing chaos --first-seed {seed} --seeds 1 "
                f"--symbols {symbols}): {'; '.join(problems)}"
            )
    return 0 if not summary["failing_seeds"] else 1
