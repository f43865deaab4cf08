"""``zhixing replay`` and ``zhixing demo``: run parent orders through algorithms on the simulated
exchange over a historical day, then print the cost report."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from zhixing.algos.registry import ALGOS
from zhixing.engine.config import raw_table, toml_value
from zhixing.engine.config_model import risk_limits
from zhixing.engine.enums import ORDER_TYPE_PARAM, order_type_named
from zhixing.engine.errors import InputError
from zhixing.engine.inputs import (
    parse_cash,
    parse_latency_ms,
    read_orders_file,
    read_positions_file,
    window_ns,
)
from zhixing.engine.market import MarketRules, load_status_file
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import RiskLimits
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.harness import ReplayConfig, ReplayResult, run_replay
from zhixing.replay.report import GateReport, ReplayReport

DEMO_START, DEMO_END = "09:30", "10:15"


def sample_data_dir() -> Path:
    return Path(str(resources.files("zhixing.replay") / "sample_data"))


def add_parsers(sub: Any) -> None:
    replay = sub.add_parser("replay", help="replay parent orders through an algorithm on historical data")
    replay.add_argument("--data", required=True, type=Path, help="snapshot file or folder (CSV, gzip ok)")
    replay.add_argument(
        "--orders",
        required=True,
        type=Path,
        help="CSV: symbol,side,quantity[,algo,start,end,limit_price,...]",
    )
    _common(replay)
    replay.set_defaults(handler=run_replay_command)

    cancel_all = sub.add_parser(
        "cancel-all",
        help="running engine (--db J only): cancel every algorithm and working order, verified by query; "
        "or replay an orders file and, at --at, do the same",
    )
    cancel_all.add_argument(
        "--data",
        "--replay-data",
        dest="data",
        type=Path,
        help="replay: snapshot file or folder of one day",
    )
    cancel_all.add_argument("--orders", type=Path, help="replay: orders CSV, as for replay")
    cancel_all.add_argument("--at", help="replay: HH:MM when everything working is cancelled")
    cancel_all.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="S",
        help="running engine: wait up to S seconds for the result and the verification, and print them",
    )
    _common(cancel_all)
    cancel_all.set_defaults(handler=run_cancel_all)

    demo = sub.add_parser("demo", help="replay the built-in TWAP basket on real 2021-12-01 data")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--db", type=Path, help="keep the journal in this SQLite file")
    demo.add_argument("--report", type=Path, metavar="DIR", help="also write report.json and PNG charts")
    demo.set_defaults(handler=run_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", default="09:30", help="window start HH:MM (Asia/Shanghai), default 09:30")
    parser.add_argument("--end", default="14:57", help="window end HH:MM, default 14:57")
    parser.add_argument("--algo", default="twap", help="default algorithm for rows without one (twap)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm parameter for every row (repeatable)",
    )
    parser.add_argument("--cash", default="10000000", help="starting cash in CNY (default 10,000,000)")
    parser.add_argument(
        "--positions", type=Path, help="CSV symbol,quantity held from before (sellable today)"
    )
    parser.add_argument(
        "--status",
        type=Path,
        metavar="FILE",
        help="CSV symbol,status,from,to[,listing_date]: ST/*ST/delisting periods and listing dates "
        "(the snapshot data carry none); every other name is normal",
    )
    parser.add_argument("--db", type=Path, help="journal SQLite file (must not exist); default: a temp file")
    parser.add_argument("--latency-ms", default="20", help="one-way latency to the exchange, ms (20)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="CFG",
        help="replay under this live config's [risk] limits (the whole file is checked as `run` checks it)",
    )
    parser.add_argument(
        "--risk",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [risk] limit for this replay, e.g. max_messages_per_second=10 (repeatable; over --config)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="also write report.json and PNG charts per parent into DIR"
    )


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param wants KEY=VALUE, got {item!r}", field="param")
        out[key.strip()] = value.strip()
    return out


def replay_risk(args: argparse.Namespace) -> RiskLimits:
    """The risk gate's limits for a replay: the defaults, or ``--config``'s ``[risk]``, then each ``--risk``
    KEY=VALUE over them, validated by the config file's own ``[risk]`` model (same bounds, same regulator
    lines), so a replay meets exactly the gate ``zhixing run`` would."""
    table: dict[str, object] = {}
    source = "--risk"
    config_path = getattr(args, "config", None)
    if config_path is not None:
        from zhixing.engine.cli.routes import load_checked

        load_checked(config_path)  # the whole file, as run checks it
        table.update(raw_table(config_path, "risk"))
        source = f"{config_path} with --risk" if args.risk else str(config_path)
    for item in getattr(args, "risk", []):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--risk wants KEY=VALUE, got {item!r}", field="risk")
        table[key.strip()] = toml_value(value.strip())
    return risk_limits(table, source)


def build_parents(args: argparse.Namespace, market: MarketData) -> list[ParentOrder]:
    rows = read_orders_file(args.orders)
    common = _params(args.param)
    parents = []
    for i, row in enumerate(rows, start=1):
        if row.symbol not in market.days:
            raise InputError(
                f"no market data for {row.symbol} in {args.data}",
                path=str(args.orders),
                row=i + 1,
                field="symbol",
            )
        start, end = window_ns(
            market.trade_date, row.start or args.start, row.end or args.end, where=str(args.orders)
        )
        algo = row.algo or args.algo
        params = {**common, **row.params}
        if algo not in ALGOS:
            raise InputError(
                f"unknown algo {algo!r}; known: {', '.join(sorted(ALGOS))}",
                path=str(args.orders),
                row=i + 1,
                field="algo",
            )
        try:  # the children's kind (an ``order_type`` column or --param): limit unless named
            order_type_named(params.get(ORDER_TYPE_PARAM, "limit"))
        except ValueError as exc:
            raise InputError(str(exc), path=str(args.orders), row=i + 1, field=ORDER_TYPE_PARAM) from None
        try:  # refuse bad parameters before anything runs or any journal is created
            ALGOS[algo].params_type.parse(
                {k: v for k, v in params.items() if k != ORDER_TYPE_PARAM}, algo=algo
            )
        except ValueError as exc:
            raise InputError(str(exc), path=str(args.orders), row=i + 1, field="params") from None
        parents.append(
            ParentOrder(
                parent_id=f"P{i:04d}",
                symbol=row.symbol,
                side=row.side,
                quantity=row.quantity,
                start_ns=start,
                end_ns=end,
                algo=algo,
                limit_price=row.limit_price,
                params=params,
            )
        )
    return parents


def run_cancel_all(args: argparse.Namespace) -> int:
    """``--db J`` alone: the running engine's cancel-all (``engine.control``); else the replayed one."""
    replay = [name for name in ("data", "orders", "at") if getattr(args, name) is not None]
    if not replay:
        if args.db is None:
            raise InputError(
                "cancel-all needs --db JOURNAL (a running engine) or --data/--orders/--at", field="db"
            )
        from zhixing.engine.cli.ops_cmd import run_cancel_all_live

        return run_cancel_all_live(args)
    missing = [f"--{name}" for name in ("data", "orders", "at") if getattr(args, name) is None]
    if missing:
        raise InputError(f"a replayed cancel-all needs {', '.join(missing)} too", field=missing[0][2:])
    return run_replay_command(args)


def run_replay_command(args: argparse.Namespace) -> int:
    if args.db is not None and args.db.exists():
        raise InputError("journal file already exists; a replay writes a fresh journal", path=str(args.db))
    market = load_snapshots(args.data)
    parents = build_parents(args, market)
    positions = read_positions_file(args.positions) if args.positions else {}
    status_file = getattr(args, "status", None)
    statuses = load_status_file(status_file) if status_file is not None else None
    with tempfile.TemporaryDirectory(prefix="zhixing-") as tmp:
        db = args.db or Path(tmp) / "replay.db"
        config = ReplayConfig(
            cash=parse_cash(args.cash),
            positions=positions,
            db_path=db,
            latency_ns=parse_latency_ms(args.latency_ms),
            risk=replay_risk(args),
            market_rules=MarketRules(statuses=statuses),
        )
        at = window_ns(market.trade_date, "00:00", args.at)[1] if getattr(args, "at", None) else None
        result = _run_with_progress(
            market, parents, config, show=not args.json and sys.stdout.isatty(), cancel_all_at=at
        )
    _print_report(result, args.json, args.db)
    if args.report is not None:
        _write_report_dir(args.report, parents, result)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    data = sample_data_dir()
    ns = argparse.Namespace(
        data=data / "snapshots_20211201",
        orders=data / "demo_orders.csv",
        positions=data / "demo_positions.csv",
        start=DEMO_START,
        end=DEMO_END,
        algo="twap",
        param=[],
        cash="6000000",
        db=args.db,
        latency_ms=20,
        config=None,
        risk=[],
        json=args.json,
        report=args.report,
    )
    if not args.json:
        print(
            "zhixing demo: TWAP basket on real SSE snapshots of 2021-12-01, 09:30-10:15, simulated exchange"
        )
        print(
            f"  same as: zhixing replay --data {ns.data} --orders {ns.orders} --positions {ns.positions} "
            f"--start {DEMO_START} --end {DEMO_END} --cash {ns.cash}\n"
        )
    return run_replay_command(ns)


def _run_with_progress(
    market: MarketData,
    parents: list[ParentOrder],
    config: ReplayConfig,
    *,
    show: bool,
    cancel_all_at: int | None = None,
) -> ReplayResult:
    if not show:
        return asyncio.run(run_replay(market, parents, config, cancel_all_at=cancel_all_at))
    with Progress(
        TextColumn("replaying {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        transient=True,
    ) as progress:
        task = progress.add_task(str(market.trade_date), total=1.0)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done / total)

        return asyncio.run(run_replay(market, parents, config, progress=update, cancel_all_at=cancel_all_at))


def _write_report_dir(out: Path, parents: list[ParentOrder], result: ReplayResult) -> None:
    from zhixing.replay.charts import write_charts  # matplotlib is loaded only when charts are asked for

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(
        json.dumps(result.report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    written = write_charts(
        out, parents, dict(result.basket.algos), result.oms, result.market.days, result.fills
    )
    print(f"wrote {out / 'report.json'} and {len(written)} charts", file=sys.stderr)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


SHOWN_ROWS = 20  # denied orders and held cancels listed in the text report (all of them in --json)


def print_gate(gate: GateReport, console: Console) -> None:
    """The risk gate's part of an execution report: messages against the caps, denials, held cancels."""
    console.print(
        f"risk gate: peak {gate.peak_per_second} messages/s (cap {gate.max_messages_per_second}), "
        f"{gate.messages_today:,} messages on the day (cap {gate.max_messages_per_day:,}): "
        f"{gate.orders_sent:,} orders, {gate.cancels_sent:,} cancels sent; "
        f"{len(gate.denied)} orders denied, {gate.cancel_holds} cancels held"
    )
    queue = gate.queue
    if queue is not None and (queue.orders_queued or queue.queue_timeouts):
        console.print(
            f"  rate queue: {queue.orders_queued:,} orders waited for the window (at most "
            f"{queue.peak_depth:,} at once, longest {queue.max_wait_ms:,.1f} ms), {queue.queued_sent:,} "
            f"sent, {queue.queued_cancelled:,} cancelled while queued, {queue.queue_timeouts:,} denied after "
            f"{queue.timeout_s:g} s"
        )
    if gate.denials:
        console.print("  denied by: " + ", ".join(f"{code} {n}" for code, n in gate.denials.items()))
    if gate.denied:
        table = Table(title="orders denied", show_lines=False)
        for col in ("order", "parent", "symbol", "side", "qty", "price", "at", "why"):
            table.add_column(col, justify="right" if col in ("qty", "price") else "left")
        for d in gate.denied[:SHOWN_ROWS]:
            table.add_row(
                d.client_order_id,
                d.parent_id,
                d.symbol,
                d.side,
                f"{d.quantity:,}",
                f"{d.price:.3f}",
                d.at,
                d.detail,
            )
        console.print(table)
        if len(gate.denied) > SHOWN_ROWS:
            console.print(f"  ... {len(gate.denied) - SHOWN_ROWS} more (--json lists every one)")
    if gate.held:
        table = Table(title="cancels held by the rate caps (sent when the window allowed)", show_lines=False)
        for col in ("order", "symbol", "at", "held ms", "cap"):
            table.add_column(col, justify="right" if col == "held ms" else "left")
        for h in gate.held[:SHOWN_ROWS]:
            table.add_row(h.client_order_id, h.symbol, h.at, f"{h.held_ms:,.1f}", h.cap)
        console.print(table)
        if gate.cancel_holds > SHOWN_ROWS:
            console.print(f"  ... {gate.cancel_holds - SHOWN_ROWS} more (--json lists the first ones)")


def _print_report(result: ReplayResult, as_json: bool, db: Path | None) -> None:
    report: ReplayReport = result.report
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, sort_keys=False))
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"Execution report {report.trade_date}", show_lines=False)
    for col in (
        "parent",
        "symbol",
        "side",
        "algo",
        "qty",
        "filled",
        "avg px",
        "arrival",
        "VWAP",
        "slip arr bps",
        "slip VWAP bps",
        "children",
        "cancels",
        "fees",
        "unfilled",
    ):
        table.add_column(col, justify="right" if col not in ("parent", "symbol", "side", "algo") else "left")
    queued = any(r.queued for r in report.parents)  # shares still waiting for the rate window: when any
    if queued:
        table.add_column("queued", justify="right")
    for r in report.parents:
        table.add_row(
            r.parent_id,
            r.symbol,
            r.side,
            r.algo,
            f"{r.quantity:,}",
            f"{r.filled_quantity:,}",
            _fmt(r.avg_price, 3),
            _fmt(r.arrival_price, 3),
            _fmt(r.interval_vwap, 3),
            _fmt(r.slippage_arrival_bps),
            _fmt(r.slippage_vwap_bps),
            str(r.child_orders),
            str(r.cancels),
            _fmt(r.fees),
            r.unfilled_reason,
            *([f"{r.queued:,}"] if queued else []),
        )
    console.print(table)
    console.print(
        f"total: filled {report.total_filled_quantity:,} of {report.total_quantity:,} shares, "
        f"notional {report.total_notional:,.2f} CNY, fees {report.total_fees:,.2f} CNY, "
        f"{report.total_child_orders} child orders, {report.total_cancels} cancels, "
        f"slippage {_fmt(report.slippage_arrival_bps)} bps vs arrival, "
        f"{_fmt(report.slippage_vwap_bps)} bps vs VWAP"
    )
    for r in report.parents:
        if r.over_fee_budget():
            console.print(f"[yellow]warning:[/yellow] {r.fee_warning()}")
    if report.gate is not None:
        print_gate(report.gate, console)
    if db is not None:
        console.print(f"journal: {db}  (export: zhixing journal export --db {db} --out DIR)")
