"""Cost report of every algorithm on the demo basket (real SSE snapshots, 2021-12-01 09:30-10:15).

Run by hand: ``python benchmarks/algo_costs.py`` — prints a Markdown table per algorithm for
docs/ALGORITHMS.md (same data, orders, positions and cash as ``zhixing demo``).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from zhixing.engine.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "replay" / "sample_data"
RUNS = [
    ("twap", []),
    ("vwap", ["--param", "profile=u_shape"]),
    ("pov", ["--param", "target_rate=0.05"]),
    ("iceberg", ["--param", "display_qty=2000"]),
    ("chase", ["--param", "reprice_s=20"]),
]


def run(algo: str, params: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "replay",
            "--data",
            str(SAMPLE / "snapshots_20211201"),
            "--orders",
            str(SAMPLE / "demo_orders.csv"),
            "--positions",
            str(SAMPLE / "demo_positions.csv"),
            "--start",
            "09:30",
            "--end",
            "10:15",
            "--cash",
            "6000000",
            "--db",
            str(Path(tmp) / "j.db"),
            "--json",
            "--algo",
            algo,
            *params,
        ]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(args) == 0
    return dict(json.loads(out.getvalue()))


def main_() -> None:
    for algo, params in RUNS:
        r = run(algo, params)
        print(f"### {algo} {' '.join(params[1::2]) or '(defaults)'}\n")
        print(
            "| symbol | side | qty | filled | fill ratio | avg px | slip arrival bps | slip VWAP bps | "
            "participation | children | cancels | fees CNY | unfilled |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for p in r["parents"]:  # type: ignore[attr-defined]
            print(
                f"| {p['symbol']} | {p['side']} | {p['quantity']:,} | {p['filled_quantity']:,} | "
                f"{p['fill_ratio']:.2%} | {p['avg_price'] or '-'} | {p['slippage_arrival_bps']} | "
                f"{p['slippage_vwap_bps']} | {p['participation']} | {p['child_orders']} | {p['cancels']} | "
                f"{p['fees']:,.2f} | {p['unfilled_reason']} |"
            )
        print(
            f"\nTotal: filled {r['total_filled_quantity']:,} of {r['total_quantity']:,}; "
            f"{r['total_child_orders']} children, {r['total_cancels']} cancels; "
            f"fees {r['total_fees']:,.2f} CNY; "
            f"slippage {r['slippage_arrival_bps']} bps vs arrival, {r['slippage_vwap_bps']} bps vs VWAP "
            "(notional-weighted).\n"
        )


if __name__ == "__main__":
    main_()
