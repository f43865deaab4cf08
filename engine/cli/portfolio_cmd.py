"""Portfolio operations: ``plan``, ``rebalance``, ``liquidate``, ``sell-where``, ``sell-fraction``,
``to-percent`` and ``target``. Each turns the account and the market into targets, plans them (sells
first, buys sized from confirmed cash) and, except ``plan``, executes them through an algorithm on the
simulated exchange over a historical day (``--replay-data``) or, with ``--config``, through the
configured route on the live account (``engine.cli.live_ops``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from zhixing.algos.registry import ALGOS
from zhixing.engine.cli.live_ops import run_live
from zhixing.engine.cli.replay_cmd import _params, _print_report
from zhixing.engine.config import ROUTES
from zhixing.engine.errors import InputError
from zhixing.engine.input_limits import REFERENCE, csv_records, decode_text, read_bounded
from zhixing.engine.inputs import parse_cash, read_positions_file, window_ns
from zhixing.engine.market import TradingCalendar, normalize_symbol
from zhixing.engine.portfolio.planner import (
    Holding,
    Plan,
    fee_warnings,
    targets_liquidate_all,
    targets_sell_fraction,
    targets_sell_where,
    targets_to_percent,
)
from zhixing.engine.portfolio.targets import Target, TargetKind, read_targets
from zhixing.engine.target_snapshots import copy_file, todays_targets
from zhixing.engine.units import MAX_SHARES, MAX_YUAN, price_from_yuan
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.harness import ReplayConfig
from zhixing.replay.rebalance_run import RebalanceOptions, plan_for, run_rebalance


def add_parsers(sub: Any) -> None:
    plan = sub.add_parser("plan", help="dry run: what a targets file would trade, and why not")
    plan.add_argument("targets", type=Path, help="targets file (CSV, JSON or Parquet)")
    _targets_flags(plan)
    _account(plan, execute=False)
    plan.set_defaults(handler=run_plan, build=_from_file, liquidate_unlisted=True)

    rebalance = sub.add_parser("rebalance", help="rebalance to a targets file: sells first, then buys")
    rebalance.add_argument("targets", type=Path, help="targets file (CSV, JSON or Parquet)")
    _targets_flags(rebalance)
    _account(rebalance, execute=True)
    rebalance.set_defaults(handler=run_targets_command, build=_from_file, liquidate_unlisted=True)

    liquidate = sub.add_parser("liquidate", help="sell every holding")
    _account(liquidate, execute=True)
    liquidate.set_defaults(handler=run_targets_command, build=_liquidate, liquidate_unlisted=False)

    where = sub.add_parser("sell-where", help='sell every holding matching a filter, e.g. "market_cap < 5e9"')
    where.add_argument("expression", help="a pandas query over the reference file's columns")
    where.add_argument("--ref", type=Path, required=True, help="reference CSV with a symbol column")
    _account(where, execute=True)
    where.set_defaults(handler=run_targets_command, build=_sell_where, liquidate_unlisted=False)

    fraction = sub.add_parser("sell-fraction", help="sell a fraction of every holding (e.g. 0.3 = 30%%)")
    fraction.add_argument("fraction", help="0..1")
    _account(fraction, execute=True)
    fraction.set_defaults(handler=run_targets_command, build=_sell_fraction, liquidate_unlisted=False)

    percent = sub.add_parser("to-percent", help="bring these names to PERCENT of equity in total")
    percent.add_argument("percent", help="0..100, e.g. 80")
    percent.add_argument("symbols", nargs="+", help="symbols (600000.SH or SHSE.600000)")
    _account(percent, execute=True)
    percent.set_defaults(handler=run_targets_command, build=_to_percent, liquidate_unlisted=False)

    one = sub.add_parser("target", help="buy or sell one symbol to a target volume, value or percent")
    one.add_argument("symbol")
    group = one.add_mutually_exclusive_group(required=True)
    group.add_argument("--volume", help="target shares")
    group.add_argument("--value", help="target value in CNY")
    group.add_argument("--percent", help="target percent of equity (0..100)")
    _account(one, execute=True)
    one.set_defaults(handler=run_targets_command, build=_one, liquidate_unlisted=False)


def _targets_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--normalize", action="store_true", help="scale weights summing above 1 down to 1")
    parser.add_argument("--aggregate", action="store_true", help="sum duplicate symbols instead of refusing")
    parser.add_argument("--encoding", help="file encoding, e.g. gbk (default: UTF-8, BOM accepted)")
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="with --config: trade an undated file last written before the previous trading day's close",
    )


def _account(parser: argparse.ArgumentParser, *, execute: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--replay-data", type=Path, help="simulate on this recorded day (snapshot file or folder)"
    )
    source.add_argument(
        "--config", type=Path, help="trade the account of this live-run config, through its route, now"
    )
    parser.add_argument(
        "--adapter",
        choices=ROUTES,
        help="with --config: the route to use instead of the config's [route] kind",
    )
    parser.add_argument("--cash", default="10000000", help="cash in CNY (default 10,000,000)")
    parser.add_argument("--positions", type=Path, help="CSV symbol,quantity held from before (sellable)")
    parser.add_argument("--start", default="09:30", help="window start HH:MM (plan prices are taken here)")
    parser.add_argument("--end", default="14:57", help="window end HH:MM")
    parser.add_argument("--min-trade-value", default="0", help="leave differences below this (CNY) alone")
    if execute:
        parser.add_argument("--sell-end", help="end of the sell leg HH:MM (default: middle of the window)")
        parser.add_argument("--algo", default="twap", help="algorithm for both legs (default twap)")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--db", type=Path, help="journal SQLite file (must not exist)")
        parser.add_argument("--json", action="store_true", help="print plan and report as JSON")


def _decimal(text: str, field: str, low: Decimal, high: Decimal) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"not a number: {text!r}", field=field) from None
    if not value.is_finite() or not low <= value <= high:
        raise InputError(f"must be between {low} and {high}, got {text!r}", field=field)
    return value


def _holdings(args: argparse.Namespace) -> list[Holding]:
    positions = read_positions_file(args.positions) if args.positions else {}
    return [Holding(symbol=s, quantity=q, sellable=q) for s, q in sorted(positions.items())]


@dataclass(frozen=True, slots=True)
class Today:
    """The trading day a command trades on: the recorded day (``--replay-data``) or the engine clock's
    (``--config``, with its calendar: an undated targets file must then be from after the last close)."""

    day: date
    calendar: TradingCalendar | None = None


def _from_file(args: argparse.Namespace, holdings: list[Holding], today: Today) -> list[Target]:
    """A targets file for ``today``: a date column must name it (``engine.target_snapshots``)."""
    if today.calendar is None:
        return read_targets(
            args.targets,
            normalize=args.normalize,
            aggregate=args.aggregate,
            encoding=args.encoding,
            trade_date=today.day,
        )
    return todays_targets(
        copy_file(args.targets),
        today.day,
        today.calendar,
        allow_stale=args.allow_stale,
        normalize=args.normalize,
        aggregate=args.aggregate,
        encoding=args.encoding,
    )


def _liquidate(args: argparse.Namespace, holdings: list[Holding], today: Today) -> list[Target]:
    return targets_liquidate_all(holdings)


def _sell_fraction(args: argparse.Namespace, holdings: list[Holding], today: Today) -> list[Target]:
    return targets_sell_fraction(holdings, _decimal(args.fraction, "fraction", Decimal(0), Decimal(1)))


def _to_percent(args: argparse.Namespace, holdings: list[Holding], today: Today) -> list[Target]:
    symbols = [_symbol(s) for s in args.symbols]
    return targets_to_percent(symbols, _decimal(args.percent, "percent", Decimal(0), Decimal(100)))


def _one(args: argparse.Namespace, holdings: list[Holding], today: Today) -> list[Target]:
    symbol = _symbol(args.symbol)
    if args.volume is not None:
        volume = _decimal(args.volume, "volume", Decimal(0), Decimal(MAX_SHARES))
        if volume != volume.to_integral_value():
            raise InputError(f"volume must be whole shares, got {args.volume!r}", field="volume")
        return [Target(symbol=symbol, kind=TargetKind.VOLUME, volume=int(volume))]
    if args.value is not None:
        value = _decimal(args.value, "value", Decimal(0), Decimal(MAX_YUAN))
        return [Target(symbol=symbol, kind=TargetKind.VALUE, value=price_from_yuan(value))]
    percent = _decimal(args.percent, "percent", Decimal(0), Decimal(100))
    return [Target(symbol=symbol, kind=TargetKind.WEIGHT, weight=percent / 100)]


def _sell_where(args: argparse.Namespace, holdings: list[Holding], today: Today) -> list[Target]:
    path: Path = args.ref
    if not path.is_file():
        raise InputError("reference file not found", path=str(path))
    text = decode_text(path, read_bounded(path, REFERENCE), hint="save it as UTF-8")
    for _ in csv_records(path, text, REFERENCE):  # rows and cells bounded before pandas sees it
        pass
    try:
        ref = pd.read_csv(io.StringIO(text), dtype={"symbol": str})
    except (ValueError, pd.errors.ParserError) as exc:  # pandas' parser errors: the file is named
        raise InputError(f"not a readable CSV: {exc}", path=str(path)) from None
    if "symbol" not in ref.columns:
        raise InputError(f"no symbol column; found {', '.join(map(str, ref.columns))}", path=str(path))
    try:
        matched = ref.query(args.expression, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression: report them all the same way
        raise InputError(
            f"cannot evaluate {args.expression!r}: {exc}", path=str(path), field="expression"
        ) from None
    symbols = {_symbol(str(s)) for s in matched["symbol"]}
    return targets_sell_where(holdings, lambda s: s in symbols)


def _symbol(text: str) -> str:
    try:
        return normalize_symbol(text)
    except ValueError as exc:
        raise InputError(str(exc), field="symbol") from None


def _config(args: argparse.Namespace, db: Path) -> ReplayConfig:
    positions = read_positions_file(args.positions) if args.positions else {}
    return ReplayConfig(cash=parse_cash(args.cash), positions=positions, db_path=db)


def _options(args: argparse.Namespace, market: MarketData, liquidate_unlisted: bool) -> RebalanceOptions:
    start, end = window_ns(market.trade_date, args.start, args.end)
    sell_end = (
        window_ns(market.trade_date, args.start, args.sell_end)[1]
        if getattr(args, "sell_end", None)
        else None
    )
    algo = getattr(args, "algo", "twap")
    params = _params(getattr(args, "param", []))
    if algo not in ALGOS:
        raise InputError(f"unknown algo {algo!r}; known: {', '.join(sorted(ALGOS))}", field="algo")
    try:
        ALGOS[algo].params_type.parse(params, algo=algo)
    except ValueError as exc:
        raise InputError(str(exc), field="param") from None
    return RebalanceOptions(
        start_ns=start,
        end_ns=end,
        sell_end_ns=sell_end,
        algo=algo,
        params=params,
        min_trade_value=parse_cash(args.min_trade_value, flag="--min-trade-value"),
        liquidate_unlisted=liquidate_unlisted,
    )


def run_plan(args: argparse.Namespace) -> int:
    if args.config is not None:
        return run_live(args, execute=False)
    market = load_snapshots(args.replay_data)
    targets = _from_file(args, _holdings(args), Today(market.trade_date))
    config = _config(args, Path("unused.db"))
    options = _options(args, market, True)
    plan = plan_for(market, targets, config, options)
    print(plan.table())
    _print_fee_warnings(plan, market, config, options)
    return 0


def _print_fee_warnings(
    plan: Plan, market: MarketData, config: ReplayConfig, options: RebalanceOptions
) -> None:
    """The plan's rows whose sliced commission would exceed the budget (``planner.fee_warnings``), with
    the algorithm's ``min_child_value`` when set (else the account's default)."""
    rules = config.market_rules.on(market.trade_date)
    value = ALGOS[options.algo].params_type.parse(options.params, algo=options.algo).min_child_value
    minimum = (lambda _inst: round(value * 1000)) if value >= 0 else None
    warnings = fee_warnings(
        plan, rules.fees(config.fees), min_child_value=minimum, instrument=rules.instrument
    )
    for warning in warnings:
        print(f"warning: {warning}")


def run_targets_command(args: argparse.Namespace) -> int:
    if args.config is not None:
        return run_live(args, execute=True)
    if args.db is not None and args.db.exists():
        raise InputError("journal file already exists; a replay writes a fresh journal", path=str(args.db))
    market = load_snapshots(args.replay_data)
    targets = args.build(args, _holdings(args), Today(market.trade_date))
    options = _options(args, market, args.liquidate_unlisted)
    with tempfile.TemporaryDirectory(prefix="zhixing-") as tmp:
        config = _config(args, args.db or Path(tmp) / "rebalance.db")
        result = asyncio.run(run_rebalance(market, targets, config, options))
    if args.json:
        rows = [
            {
                "symbol": r.symbol,
                "current": r.current,
                "target": r.target,
                "side": r.side.value if r.side else None,
                "quantity": r.quantity,
                "reason": r.reason,
            }
            for r in result.plan.rows
        ]
        print(
            json.dumps(
                {
                    "plan": rows,
                    "confirmed_cash": result.rebalance.confirmed_cash,
                    "report": result.replay.report.to_dict(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(result.plan.table())
    _print_fee_warnings(result.plan, market, config, options)
    if result.rebalance.confirmed_cash is not None:
        print(
            f"\nbuy leg sized from confirmed cash {result.rebalance.confirmed_cash / 1000:,.2f} CNY",
            file=sys.stdout,
        )
    _print_report(result.replay, False, args.db)
    return 0
