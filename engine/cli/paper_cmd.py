"""``zhixing paper``: rehearse the live path on recorded data at market speed (or N times faster).

Recorded snapshots play on a ``ScaledClock`` (real timers), through a ``RecordedFeed`` into the real
engine; orders go to the simulated exchange directly (``--route sim``) or through another route. The
trade log passes the same checks as a replay's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, cast

from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.cli.replay_cmd import build_parents
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import ScaledClock, SimClock
from zhixing.engine.errors import InputError
from zhixing.engine.inputs import parse_cash, read_positions_file, window_ns
from zhixing.engine.market import MarketRules, TradingCalendar, load_status_file, shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.harness import ReplayConfig, replay_account, replay_settings
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.report import ReplayReport, build_report
from zhixing.replay.terminal import TerminalEmulator

PAPER_ACCOUNT = "paper"


def add_parsers(sub: Any) -> None:
    paper = sub.add_parser(
        "paper",
        help="paper trading: recorded data played on a live clock (1x, or --speed N) through the engine",
    )
    paper.add_argument("--data", required=True, type=Path, help="snapshot file or folder of one day")
    paper.add_argument("--orders", required=True, type=Path, help="orders CSV, as for replay")
    paper.add_argument(
        "--speed", type=float, default=1.0, help="clock speed: 1 = market speed (default), 60 = demo"
    )
    paper.add_argument("--start", default="09:30", help="window start HH:MM (Asia/Shanghai)")
    paper.add_argument("--end", default="14:57", help="window end HH:MM")
    paper.add_argument("--algo", default="twap", help="default algorithm (twap)")
    paper.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="algorithm parameter"
    )
    paper.add_argument("--cash", default="10000000", help="starting cash in CNY")
    paper.add_argument("--positions", type=Path, help="CSV symbol,quantity held from before")
    paper.add_argument(
        "--status",
        type=Path,
        metavar="FILE",
        help="CSV symbol,status,from,to[,listing_date]: ST/*ST/delisting periods and listing dates "
        "(the snapshot data carry none); every other name is normal",
    )
    paper.add_argument("--db", type=Path, help="journal SQLite file (must not exist); default: a temp file")
    paper.add_argument(
        "--stall",
        action="append",
        default=[],
        metavar="SYMBOL@HH:MM-HH:MM",
        help="silence a symbol's feed for a time range (rehearse a stalled feed)",
    )
    paper.add_argument("--stale-after", type=float, default=30.0, help="seconds without a quote = stale (30)")
    paper.add_argument(
        "--route",
        choices=("sim", "fileorder"),
        default="sim",
        help="sim: orders straight to the simulated exchange; fileorder: order files into a folder that the "
        "terminal emulator scans, results read back from its output files",
    )
    paper.add_argument(
        "--folder", type=Path, help="fileorder: the root of the input/output folders (default temp)"
    )
    paper.add_argument("--json", action="store_true", help="print the report as JSON")
    paper.set_defaults(handler=run_paper_command)


def parse_stalls(items: list[str], market: MarketData) -> dict[str, tuple[int, int]]:
    stalls: dict[str, tuple[int, int]] = {}
    for item in items:
        symbol, sep, span = item.partition("@")
        start, dash, end = span.partition("-")
        if not sep or not dash or symbol not in market:
            raise InputError(
                f"--stall wants SYMBOL@HH:MM-HH:MM with a symbol in the data, got {item!r}", field="stall"
            )
        stalls[symbol] = window_ns(market.trade_date, start, end, where="--stall")
    return stalls


def run_paper_command(args: argparse.Namespace) -> int:
    if args.db is not None and args.db.exists():
        raise InputError("journal file already exists; a paper run writes a fresh journal", path=str(args.db))
    market = load_snapshots(args.data)
    parents = build_parents(args, market)
    stalls = parse_stalls(args.stall, market)
    positions = read_positions_file(args.positions) if args.positions else {}
    statuses = load_status_file(args.status) if args.status is not None else None
    with tempfile.TemporaryDirectory(prefix="zhixing-paper-") as tmp:
        db = args.db or Path(tmp) / "paper.db"
        config = ReplayConfig(
            cash=parse_cash(args.cash),
            positions=positions,
            db_path=db,
            market_rules=MarketRules(statuses=statuses),  # the exchange, the checks and the account's
        )
        outcome = asyncio.run(
            run_paper(
                market,
                parents,
                config,
                speed=args.speed,
                stalls=stalls,
                stale_after_s=args.stale_after,
                route=args.route,
                folder=args.folder or Path(tmp) / "fileorder",
            )
        )
    report = outcome.report
    if args.json:
        print(json.dumps(report.to_dict() | {"paper": outcome.summary()}, ensure_ascii=False, indent=2))
    else:
        for row in report.parents:
            print(
                f"{row.parent_id} {row.symbol} {row.side} filled {row.filled_quantity}/{row.quantity} "
                f"children {row.child_orders}"
            )
        print(json.dumps(outcome.summary(), ensure_ascii=False), file=sys.stderr)
    return 0


class PaperOutcome:
    def __init__(
        self,
        report: ReplayReport,
        session: LiveSession,
        feed: RecordedFeed,
        terminal: TerminalEmulator | None = None,
    ) -> None:
        self.report = report
        self.session = session
        self.feed = feed
        self.terminal = terminal

    def summary(self) -> dict[str, object]:
        book = self.session.book.counters
        return {
            "quotes_pushed": self.feed.pushed,
            "quotes_suppressed_by_stall": self.feed.suppressed,
            "quotes_conflated": book.conflated,
            "quotes_refused": book.refused,
            "stale_events": book.stale_events,
            "algo_pauses_for_stale_feed": self.session.guard.pauses,
            "algo_resumes": self.session.guard.resumes,
            "reconciliation_ok": self.session.reconcile.ok,
        }


async def run_paper(
    market: MarketData,
    parents: list[ParentOrder],
    config: ReplayConfig,
    *,
    speed: float,
    stalls: dict[str, tuple[int, int]] | None = None,
    stale_after_s: float = 30.0,
    route: str = "sim",
    folder: Path | None = None,
) -> PaperOutcome:
    """Run ``parents`` on a ``ScaledClock`` against the simulated exchange, fed by the recorded data.

    ``route="fileorder"`` sends the orders as 掘金 order files into ``folder/input``, where the terminal
    emulator picks them up for the exchange and writes its output files under ``folder/output``."""
    day = market.trade_date
    calendar = TradingCalendar()
    start = min(p.start_ns for p in parents) - 5_000_000_000
    end = max(p.end_ns for p in parents) + 60_000_000_000
    clock = ScaledClock(start, speed)
    exchange = SimExchange(
        market,
        cast(SimClock, clock),  # the exchange only schedules timers and reads the time
        calendar=calendar,
        fees=config.fees,
        rules=config.market_rules,
        latency_ns=config.latency_ns,
        cash=config.cash,
        positions=dict(config.positions),
    )
    account = replay_account(config, clock)
    feed = RecordedFeed(market, exchange, clock, stalls=stalls)
    assert config.db_path is not None
    adapter: BrokerAdapter = exchange
    terminal: TerminalEmulator | None = None
    if route == "fileorder":
        if folder is None:
            raise InputError("the fileorder route needs a folder", field="folder")
        terminal = TerminalEmulator(folder / "input", folder / "output", PAPER_ACCOUNT, exchange, clock)
        (folder / "input").mkdir(parents=True, exist_ok=True)
        terminal.start()
        adapter = FileOrderAdapter(
            FileOrderConfig(
                input_dir=folder / "input",
                output_dir=folder / "output",
                account_id=PAPER_ACCOUNT,
                state_dir=folder / "state",
            ),
            clock,
        )
    session = await open_live_session(
        clock=clock,
        adapter=adapter,
        feed=feed,
        store_path=config.db_path,
        account=account,
        calendar=calendar,
        trading_day_start_ns=shanghai_ns(day, "00:00"),
        settings=replay_settings(config),
        synchronous=config.synchronous,
        stale_after_ns=int(stale_after_s * 1e9),
    )
    try:
        arrival: dict[str, int | None] = {}
        for parent in parents:  # arrival price = mid (or last) when the parent's window opens
            clock.call_at(parent.start_ns, partial(_record_arrival, session, parent, arrival), "arrival")
        await session.start_parents(parents)
        await session.run_until(end)
        exchange.expire_all()
        await session.run_until(clock.now_ns() + 2 * config.latency_ns + 1, done=lambda: True)
        report = build_report(parents, session.basket, session.oms, market, arrival, session.risk)
    finally:
        await session.close(cancel_working=False)
        if terminal is not None:
            terminal.stop()
    return PaperOutcome(report, session, feed, terminal)


def _record_arrival(session: LiveSession, parent: ParentOrder, arrival: dict[str, int | None]) -> None:
    quote = session.book.latest(parent.symbol)
    arrival[parent.parent_id] = None if quote is None else (quote.mid or quote.last or None)
