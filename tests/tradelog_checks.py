"""The checks a desk runs on a day's trade log, shared by replay, paper and route tests."""

from __future__ import annotations

import asyncio
import csv
import gzip
from pathlib import Path

from zhixing.engine.cli import main
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.market import TradingCalendar, check_price, instrument_for, is_on_tick, price_limits
from zhixing.engine.market.instruments import check_order_quantity
from zhixing.engine.store import StateStore


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def prev_closes(data_dir: Path) -> dict[str, int]:
    out = {}
    for path in data_dir.glob("*.csv.gz"):
        with gzip.open(path, "rt") as fh:
            row = next(csv.DictReader(fh))
        out[row["symbol"]] = round(float(row["prev_close"]) * 1000)
    return out


async def assert_children_valid(
    db: Path, data_dir: Path, positions: dict[str, int], *, min_orders: int = 1
) -> None:
    """Every child: on tick, inside the price limits, sent in continuous trading inside its parent's
    window, a valid lot against what was sellable, never denied, never overfilled; parents not overfilled."""
    store = await StateStore.open(db)
    orders = await store.load_orders()
    parents = {str(p["parent_id"]): p for p in await store.load_parents()}
    await store.close()
    calendar = TradingCalendar()
    prev_close = prev_closes(data_dir)
    assert len(orders) >= min_orders
    sold: dict[str, int] = {}
    for order in sorted(orders, key=lambda o: (o.ts_created, o.client_order_id)):
        inst = instrument_for(order.symbol)
        parent = parents[order.parent_id]
        assert is_on_tick(inst, order.price), order
        low, high = price_limits(inst, prev_close[order.symbol])
        assert check_price(inst, order.price, low, high) is None, order
        assert calendar.is_continuous(order.ts_created), order
        assert int(str(parent["start_ns"])) <= order.ts_created < int(str(parent["end_ns"])), order
        position = positions.get(order.symbol, 0) - sold.get(order.symbol, 0)
        assert check_order_quantity(inst, order.side, order.quantity, position) is None, order
        assert order.status is not OrderStatus.DENIED, order
        assert 0 <= order.filled_quantity <= order.quantity
        if order.side is Side.SELL:
            sold[order.symbol] = sold.get(order.symbol, 0) + order.filled_quantity
    for parent_id, parent in parents.items():
        children = [o for o in orders if o.parent_id == parent_id]
        assert sum(o.filled_quantity for o in children) <= int(str(parent["quantity"]))


async def assert_export_matches_journal(db: Path, out: Path) -> None:
    """``zhixing journal export`` writes fills.csv and orders.csv that agree with the journal."""
    assert await asyncio.to_thread(main, ["journal", "export", "--db", str(db), "--out", str(out)]) == 0
    store = await StateStore.open(db)
    fills = await store.load_fills()
    orders = await store.load_orders()
    await store.close()
    rows = read_csv(out / "fills.csv")
    assert len(rows) == len(fills) > 0
    assert {r["trade_id"] for r in rows} == {f.trade_id for f, _ in fills}
    by_order: dict[str, int] = {}
    for r in rows:
        by_order[r["client_order_id"]] = by_order.get(r["client_order_id"], 0) + int(r["quantity"])
        assert r["ts"].endswith("+08:00")
    order_rows = read_csv(out / "orders.csv")
    assert len(order_rows) == len(orders)
    for r in order_rows:
        assert int(r["filled_quantity"]) == by_order.get(r["client_order_id"], 0)
        assert r["created_at"].endswith("+08:00")
