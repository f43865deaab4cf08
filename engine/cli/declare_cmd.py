"""``zhixing declare CONFIG --replay-data DAY``: the numbers of the broker's programmatic-trading report.

The config's trading day (its signal and execute jobs, with their targets, algorithms and parameters, and
its ``[risk]`` limits) is run by ``zhixing run``'s own driver (``run_cmd.run_config``) on a sim route over
the recorded day, with a fresh journal in a temporary folder and no notifications. Every order and cancel
the engine hands the simulated exchange is recorded where it is handed over (``SendLog``), so the rates
and sizes printed are those of what was actually sent, not of the plan: peak orders + cancels in any
rolling second, the day's count, the largest order by value and by size, and the capital the day used,
beside the regulator's high-frequency lines (300/s, 20,000/day) and the configured caps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from zhixing.engine.broker import BrokerAdapter, EventSink
from zhixing.engine.calendar_guard import calendar_for
from zhixing.engine.cli.routes import Route, build_route, load_checked
from zhixing.engine.cli.run_cmd import ConfiguredSession, engine_settings, run_config
from zhixing.engine.clock import Clock, SimClock
from zhixing.engine.config import Config, JobConfig, StoreConfig, TableConfig
from zhixing.engine.enums import Side
from zhixing.engine.errors import ConfigError, InputError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderFilled,
    OrderStatusReport,
    OrderSubmitted,
    PositionReport,
)
from zhixing.engine.inputs import parse_cash, read_positions_file
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.risk_controls import HFT_PER_DAY, HFT_PER_SECOND, SECOND_NS
from zhixing.engine.units import yuan
from zhixing.replay.data import MarketData, load_snapshots

TRADING_KINDS = frozenset({"execute"})  # the jobs that send orders
REPLAYED_KINDS = frozenset({"signal", "execute"})  # a signal job writes the targets an execute job trades

ROUTE_METHODS = {
    "sim": "simulated exchange (replay)",
    "fileorder": "file orders: CSV order files scanned by the broker terminal (掘金/QMT 文件单)",
    "qmt": "QMT (xtquant) trading API of the broker terminal",
    "gm": "掘金 (gm) trading API of the broker terminal",
}
"""``[route] kind`` as the report's 指令执行方式."""


def add_parsers(sub: Any) -> None:
    declare = sub.add_parser(
        "declare",
        help="the programmatic-trading report's numbers: replay the config's day and count what was sent",
    )
    declare.add_argument("config", type=Path, help="the TOML config of the account (docs/OPERATIONS.md)")
    declare.add_argument(
        "--replay-data", required=True, type=Path, help="the recorded day to replay (snapshot file or folder)"
    )
    declare.add_argument("--from", dest="start", default="08:30", help="the replayed day starts at HH:MM")
    declare.add_argument("--until", default="15:30", help="and ends at HH:MM (Asia/Shanghai)")
    declare.add_argument(
        "--cash",
        help="starting cash in CNY instead of [account] cash_yuan (a live account's config has none)",
    )
    declare.add_argument(
        "--positions", type=Path, help="CSV symbol,quantity held from before, instead of [account] positions"
    )
    declare.add_argument("--json", action="store_true", help="print the numbers as JSON")
    declare.set_defaults(handler=run_declare_command)


@dataclass(frozen=True, slots=True, kw_only=True)
class SentMessage:
    """An order or a cancel as it was handed to the route: when (int ns), and the order it is about."""

    ts: int
    kind: str  # "order" or "cancel"
    client_order_id: str
    symbol: str
    side: Side
    price: int  # milli-yuan
    quantity: int


class SendLog:
    """A broker route that records every order and cancel handed to it, then hands it on unchanged.

    It wraps the simulated exchange only: that route names no ``order_ids`` and reports no link state, so
    the wrapper hides nothing the session would ask the route for."""

    def __init__(self, route: BrokerAdapter, clock: Clock) -> None:
        self.route = route
        self.name = route.name
        self.clock = clock
        self.sent: list[SentMessage] = []

    def _record(self, kind: str, order: Order) -> None:
        self.sent.append(
            SentMessage(
                ts=self.clock.now_ns(),
                kind=kind,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                price=order.price,
                quantity=order.quantity,
            )
        )

    def bind(self, sink: EventSink) -> None:
        self.route.bind(sink)

    async def connect(self) -> None:
        await self.route.connect()

    async def close(self) -> None:
        await self.route.close()

    async def submit(self, order: Order) -> None:
        self._record("order", order)
        await self.route.submit(order)

    async def cancel(self, order: Order) -> None:
        self._record("cancel", order)
        await self.route.cancel(order)

    async def query_account(self) -> AccountReport:
        return await self.route.query_account()

    async def query_positions(self) -> list[PositionReport]:
        return await self.route.query_positions()

    async def query_orders(self) -> list[OrderStatusReport]:
        return await self.route.query_orders()

    async def query_trades(self) -> list[FillReport]:
        return await self.route.query_trades()


def peak_per_second(times: list[int]) -> tuple[int, int | None]:
    """The most messages in any rolling second ``[t, t + 1 s)`` and the ``t`` it starts at (None: none)."""
    ordered = sorted(times)
    best, at, first = 0, None, 0
    for last, ts in enumerate(ordered):
        while ts - ordered[first] >= SECOND_NS:
            first += 1
        if last - first + 1 > best:
            best, at = last - first + 1, ordered[first]
    return best, at


@dataclass(frozen=True, slots=True, kw_only=True)
class Declaration:
    """What the report asks, from one replayed day. Money in milli-yuan."""

    account: str
    trade_date: str
    strategy: str
    algos: tuple[str, ...]
    jobs: tuple[str, ...]  # how each trading job of the replayed day went (``zhixing run``'s lines)
    symbols: tuple[str, ...]
    execution_method: str
    software: str
    orders: int
    cancels: int
    peak_per_second: int
    peak_second_at_ns: int | None
    largest_order_value: int
    largest_order_quantity: int
    starting_cash: int
    peak_buy_committed: int  # the most cash in buys at once: bought so far + frozen for working buys
    peak_net_drawn: int  # starting cash minus the lowest available cash (sells' proceeds offset buys)
    bought_value: int  # gross value of the buys filled
    sold_value: int
    cap_per_second: int
    cap_per_day: int
    cap_order_value: int
    cap_order_quantity: int

    @property
    def per_day(self) -> int:
        return self.orders + self.cancels

    def to_dict(self) -> dict[str, object]:
        return {
            "account": self.account,
            "trade_date": self.trade_date,
            "strategy": self.strategy,
            "algos": list(self.algos),
            "jobs": list(self.jobs),
            "symbols": list(self.symbols),
            "execution_method": self.execution_method,
            "software": self.software,
            "orders": self.orders,
            "cancels": self.cancels,
            "peak_messages_per_second": self.peak_per_second,
            "peak_second_at_ns": self.peak_second_at_ns,
            "messages_per_day": self.per_day,
            "largest_order_value_yuan": _yuan(self.largest_order_value),
            "largest_order_quantity": self.largest_order_quantity,
            "capital": {
                "starting_cash_yuan": _yuan(self.starting_cash),
                "peak_buy_committed_yuan": _yuan(self.peak_buy_committed),
                "peak_net_drawn_yuan": _yuan(self.peak_net_drawn),
                "bought_value_yuan": _yuan(self.bought_value),
                "sold_value_yuan": _yuan(self.sold_value),
            },
            "thresholds": {"hft_per_second": HFT_PER_SECOND, "hft_per_day": HFT_PER_DAY},
            "caps": {
                "max_messages_per_second": self.cap_per_second,
                "max_messages_per_day": self.cap_per_day,
                "max_order_value_yuan": _yuan(self.cap_order_value),
                "max_order_quantity": self.cap_order_quantity,
            },
        }


def _yuan(milli: int) -> float:
    return round(yuan(milli), 2)


def trading_jobs(config: Config) -> list[JobConfig]:
    """The config's jobs that send orders; a config with none has nothing to declare."""
    jobs = [j for j in config.jobs if j.kind in TRADING_KINDS]
    if not jobs:
        kinds = ", ".join(sorted({j.kind for j in config.jobs})) or "no jobs"
        raise ConfigError(
            f"{config.path}: key 'jobs': no job trades ({kinds}); zhixing declare replays the "
            'jobs that send orders ([[jobs]] with kind = "execute") and this config has none'
        )
    return jobs


def strategy_of(jobs: list[JobConfig]) -> str:
    algos = "/".join(dict.fromkeys(j.algo.upper() for j in jobs))
    return f"{algos} execution of target portfolios (rebalance: sells first, then buys)"


def with_account(config: Config, *, cash: str | None, positions: Path | None) -> Config:
    """``config`` with the account's starting cash (CNY) and holdings replaced where given."""
    account = config.account
    if cash is not None:
        account = replace(account, cash=parse_cash(cash, flag="--cash"))
    if positions is not None:
        account = replace(account, positions=read_positions_file(positions))
    return replace(config, account=account)


def replay_config(config: Config, data: Path, journal: Path) -> Config:
    """``config`` on a sim route over ``data``: its signal and execute jobs, its account and ``[risk]``;
    a fresh journal at ``journal``; no notifications and no backup (a rehearsal tells nobody)."""
    latency = config.route.settings.get("latency_ms", 20) if config.route.kind == "sim" else 20
    return replace(
        config,
        route=TableConfig(kind="sim", settings={"data": str(data.resolve()), "latency_ms": latency}),
        feed=TableConfig(kind="sim", settings={}),
        store=StoreConfig(path=journal, synchronous="OFF"),
        notify=(),
        backup=None,
        jobs=tuple(j for j in config.jobs if j.kind in REPLAYED_KINDS),
    )


async def declare_day(
    config: Config, data: Path, journal: Path, *, start: str = "08:30", until: str = "15:30"
) -> tuple[Declaration, SendLog]:
    """Replay ``config``'s trading day on the recorded day ``data`` and count what it sent (see the module
    docstring). ``journal``: the replay's journal file (fresh)."""
    jobs = trading_jobs(config)
    market = load_snapshots(data)
    replayed = replay_config(config, data, journal)
    calendar = calendar_for(replayed)
    clock = SimClock(shanghai_ns(market.trade_date, start))
    rules = engine_settings(replayed, calendar).market_rules
    built = build_route(replayed, clock, calendar, market=market, rules=rules)
    log = SendLog(built.adapter, clock)
    low, peak_buy = [config.account.cash], [0]
    filled = {Side.BUY: 0, Side.SELL: 0}  # gross value of the trades, by side

    def on_open(run: ConfiguredSession) -> None:
        account = run.session.account

        def watch(_: object) -> None:
            low[0] = min(low[0], account.available_cash)
            peak_buy[0] = max(peak_buy[0], filled[Side.BUY] + account.frozen)

        def on_fill(fill: OrderFilled) -> None:
            filled[fill.side] += fill.price * fill.quantity
            watch(fill)

        run.session.oms.bus.subscribe(OrderSubmitted, watch)
        run.session.oms.bus.subscribe(OrderFilled, on_fill)

    result = await run_config(
        replayed,
        start=start,
        until=until,
        clock=clock,
        calendar=calendar,
        route=Route(adapter=log, feed=built.feed, closers=built.closers),
        on_open=on_open,
    )
    outcomes = tuple(
        f"{o.job} ({o.kind}): {o.label} {o.detail}" for o in result.runner.outcomes if o.kind in TRADING_KINDS
    )
    if not log.sent:  # a job that never fired, or refused its targets: no day to declare
        ran = "; ".join(outcomes) or f"no execute job fired between {start} and {until}"
        raise InputError(
            f"nothing was sent on the replayed day {market.trade_date}: {ran}", path=str(config.path)
        )
    declaration = summarize(
        config,
        market,
        jobs,
        log,
        outcomes=outcomes,
        filled=filled,
        peak_buy_committed=peak_buy[0],
        peak_net_drawn=config.account.cash - low[0],
    )
    return declaration, log


def summarize(
    config: Config,
    market: MarketData,
    jobs: list[JobConfig],
    log: SendLog,
    *,
    outcomes: tuple[str, ...],
    filled: dict[Side, int],
    peak_buy_committed: int,
    peak_net_drawn: int,
) -> Declaration:
    orders = [m for m in log.sent if m.kind == "order"]
    peak, at = peak_per_second([m.ts for m in log.sent])
    risk = config.risk
    return Declaration(
        account=config.account.id,
        trade_date=market.trade_date.isoformat(),
        strategy=strategy_of(jobs),
        algos=tuple(dict.fromkeys(j.algo for j in jobs)),
        jobs=outcomes,
        symbols=tuple(sorted({m.symbol for m in orders})),
        execution_method=f"{config.route.kind}: {ROUTE_METHODS.get(config.route.kind, config.route.kind)}",
        software=f"zhixing {metadata.version('zhixing')}",
        orders=len(orders),
        cancels=len(log.sent) - len(orders),
        peak_per_second=peak,
        peak_second_at_ns=at,
        largest_order_value=max((m.price * m.quantity for m in orders), default=0),
        largest_order_quantity=max((m.quantity for m in orders), default=0),
        starting_cash=config.account.cash,
        peak_buy_committed=peak_buy_committed,
        peak_net_drawn=max(peak_net_drawn, 0),
        bought_value=filled[Side.BUY],
        sold_value=filled[Side.SELL],
        cap_per_second=risk.max_messages_per_second,
        cap_per_day=risk.max_messages_per_day,
        cap_order_value=risk.max_order_value,
        cap_order_quantity=risk.max_order_quantity,
    )


def run_declare_command(args: argparse.Namespace) -> int:
    config = with_account(load_checked(args.config), cash=args.cash, positions=args.positions)
    with tempfile.TemporaryDirectory(prefix="zhixing-declare-") as tmp:
        declaration, _ = asyncio.run(
            declare_day(
                config, args.replay_data, Path(tmp) / "declare.db", start=args.start, until=args.until
            )
        )
    if args.json:
        print(json.dumps(declaration.to_dict(), ensure_ascii=False, indent=2))
    else:
        Console().print(declaration_table(declaration))
    return 0


def declaration_table(d: Declaration) -> Table:
    """The report's rows: what the form asks, the replayed day's figure, the line or cap beside it."""
    table = Table(title=f"programmatic-trading report: account {d.account}, replayed day {d.trade_date}")
    table.add_column("report field (报告内容)")
    table.add_column("this strategy")
    table.add_column("regulator's line", justify="right")
    table.add_column("configured cap", justify="right")
    table.add_row("account (账户)", d.account, "", "")
    table.add_row("funds (资金): starting cash", _cny(d.starting_cash), "", "")
    table.add_row("  peak cash in buys at once", _cny(d.peak_buy_committed), "", "")
    table.add_row("  peak net cash drawn", _cny(d.peak_net_drawn), "", "")
    table.add_row("  bought / sold (filled)", f"{_cny(d.bought_value)} / {_cny(d.sold_value)}", "", "")
    table.add_row("strategy type (策略类型)", d.strategy, "", "")
    for line in d.jobs:
        table.add_row("  replayed job", line, "", "")
    table.add_row("symbols", f"{len(d.symbols)}: {' '.join(d.symbols)}", "", "")
    table.add_row("order-execution method (指令执行方式)", d.execution_method, "", "")
    table.add_row(
        "max order rate (最高申报速率): orders + cancels in any 1 s",
        str(d.peak_per_second),
        f"{HFT_PER_SECOND}/s",
        f"{d.cap_per_second}/s",
    )
    table.add_row(
        "max daily count (单日最高申报笔数): orders + cancels",
        f"{d.per_day} ({d.orders} orders, {d.cancels} cancels)",
        f"{HFT_PER_DAY:,}/day",
        f"{d.cap_per_day:,}/day",
    )
    table.add_row("largest order value", _cny(d.largest_order_value), "", _cny(d.cap_order_value))
    table.add_row(
        "largest order size", f"{d.largest_order_quantity:,} shares", "", f"{d.cap_order_quantity:,}"
    )
    table.add_row("software (软件)", d.software, "", "")
    return table


def _cny(milli: int) -> str:
    return f"{yuan(milli):,.2f} CNY"
