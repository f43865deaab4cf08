"""``zhixing account CONFIG``: the broker's view of the account, asked through the configured route.

Cash, frozen, total asset and market value; positions with the quantity sellable today (T+1 is the
broker's call); today's orders and trades. It connects the route (waiting up to ``--connect-timeout``
for it to answer), queries, prints and disconnects: it sends nothing and writes no journal. A route
session belongs to one process at a time (a second QMT session may displace the first; a second file
route would share the engine's sid ledger), so while an engine runs on the account this refuses and
points to ``zhixing status``, which reads the running engine's own view from its journal.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.cli.routes import build_route, load_checked, load_sim_market, run_route
from zhixing.engine.clock import Clock, LiveClock, SimClock
from zhixing.engine.config import ROUTES, Config
from zhixing.engine.events import AccountReport, FillReport, OrderStatusReport, PositionReport
from zhixing.engine.instance_lock import AlreadyRunning, InstanceLock
from zhixing.engine.logs import mask_account
from zhixing.engine.market import TradingCalendar, iso8601, shanghai_ns
from zhixing.engine.readiness import connect_broker
from zhixing.engine.units import NS_PER_SECOND, yuan_str


def add_parsers(sub: Any) -> None:
    account = sub.add_parser(
        "account",
        help="the broker's view: cash, frozen, total asset, positions (T+1 sellable), orders, trades",
    )
    account.add_argument("config", type=Path, help="the TOML config (its [route] is asked)")
    account.add_argument(
        "--adapter", choices=ROUTES, help="route to use instead of the config's [route] kind"
    )
    account.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the route to answer (default 30)",
    )
    account.add_argument("--json", action="store_true", help="print JSON (money in yuan) instead of tables")
    account.set_defaults(handler=run_account)


@dataclass(frozen=True, slots=True)
class BrokerView:
    account: AccountReport
    positions: list[PositionReport]
    orders: list[OrderStatusReport]
    trades: list[FillReport]


def run_account(args: argparse.Namespace) -> int:
    config = load_checked(args.config, adapter=args.adapter)
    config.store.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with InstanceLock.for_store(config.store.path):
            view = run_route(config, lambda bridge: query_broker(config, args.connect_timeout, bridge))
    except AlreadyRunning:
        print(
            "zhixing: an engine is running on this account; its view: "
            f"zhixing status --db {config.store.path}"
        )
        return 2
    if args.json:
        print(json.dumps(to_json(view, config.account.id), ensure_ascii=False, indent=2))
    else:
        print_view(view, config.account.id)
    return 0


async def query_broker(config: Config, timeout_s: float, gm_bridge: Any = None) -> BrokerView:
    """Connect the route, ask it everything, disconnect. A sim route's broker is a fresh simulated
    exchange holding the config's cash and positions."""
    market = load_sim_market(config) if config.route.kind == "sim" else None
    clock: Clock = SimClock(shanghai_ns(market.trade_date, "09:30")) if market is not None else LiveClock()
    route = build_route(config, clock, TradingCalendar(), market=market, gm_bridge=gm_bridge)
    adapter = route.adapter
    account = await connect_broker(adapter, clock=clock, timeout_ns=int(timeout_s * NS_PER_SECOND))
    try:
        return await _the_rest(adapter, account)
    finally:
        await adapter.close()


async def _the_rest(adapter: BrokerAdapter, account: AccountReport) -> BrokerView:
    positions = sorted(await adapter.query_positions(), key=lambda p: p.symbol)
    orders = sorted(await adapter.query_orders(), key=lambda o: (o.ts_event, o.client_order_id))
    trades = sorted(await adapter.query_trades(), key=lambda t: (t.ts_event, t.trade_id))
    return BrokerView(account, positions, orders, trades)


def to_json(view: BrokerView, account_id: str) -> dict[str, object]:
    a = view.account
    return {
        "account": mask_account(account_id),
        "cash": yuan_str(a.cash),
        "frozen": yuan_str(a.frozen),
        "market_value": yuan_str(a.market_value),
        "total_asset": yuan_str(a.total_asset),
        "positions": [
            {
                "symbol": p.symbol,
                "quantity": p.quantity,
                "sellable": p.sellable,
                "avg_cost": yuan_str(p.avg_cost, 3),
            }
            for p in view.positions
        ],
        "orders": [
            {
                "client_order_id": o.client_order_id,
                "broker_order_id": o.broker_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "price": yuan_str(o.price, 3),
                "quantity": o.quantity,
                "filled": o.filled_quantity,
                "status": o.status.value,
                "reason": o.reason,
                "time": iso8601(o.ts_event) if o.ts_event else "",
            }
            for o in view.orders
        ],
        "trades": [
            {
                "trade_id": t.trade_id,
                "client_order_id": t.client_order_id,
                "symbol": t.symbol,
                "side": t.side.value,
                "price": yuan_str(t.price, 3),
                "quantity": t.quantity,
                "fees": yuan_str(t.commission + t.stamp_duty + t.transfer_fee),
                "time": iso8601(t.ts_event) if t.ts_event else "",
            }
            for t in view.trades
        ],
    }


def print_view(view: BrokerView, account_id: str) -> None:
    data = to_json(view, account_id)
    console = Console(width=140)
    console.print(
        f"account {data['account']}: cash {data['cash']}  frozen {data['frozen']}  "
        f"market value {data['market_value']}  total asset {data['total_asset']}"
    )
    for title, key, columns in (
        ("positions", "positions", ("symbol", "quantity", "sellable", "avg_cost")),
        (
            "today's orders",
            "orders",
            ("time", "client_order_id", "symbol", "side", "price", "quantity", "filled", "status", "reason"),
        ),
        (
            "today's trades",
            "trades",
            ("time", "trade_id", "client_order_id", "symbol", "side", "price", "quantity", "fees"),
        ),
    ):
        rows = data[key]
        assert isinstance(rows, list)
        table = Table(title=f"{title} ({len(rows)})")
        for column in columns:
            table.add_column(
                column, justify="right" if column in ("quantity", "sellable", "filled") else "left"
            )
        for row in rows:
            table.add_row(*(str(row[column]) for column in columns))
        console.print(table)
