"""The journal keeps each order's kind (schema 4): a market order reloads as one, and a journal written
before version 4 opens with every order a limit one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.orders import Order
from zhixing.engine.store import SCHEMA_VERSION, StateStore, ops, schema

T0 = 1_700_000_000_000_000_000


def order(cid: str, order_type: OrderType = OrderType.LIMIT) -> Order:
    return Order(
        client_order_id=cid,
        symbol="000001.SZ",
        side=Side.BUY,
        price=11_000,
        quantity=100,
        ts_created=T0,
        ts_updated=T0,
        order_type=order_type,
    )


async def test_a_market_order_reloads_with_its_kind(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db")
    try:
        store.stage_order(order("C1", OrderType.FAK))
        store.stage_order(order("C2"))
        await store.commit()
        loaded = {o.client_order_id: o.order_type for o in await store.load_orders()}
    finally:
        await store.close()
    assert loaded == {"C1": OrderType.FAK, "C2": OrderType.LIMIT}


async def test_a_version_3_journal_migrates_and_its_orders_are_limit_orders(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        v3 = {v: steps for v, steps in schema.MIGRATIONS.items() if v <= 3}
        assert ops.migrate(conn, v3, str(path), ops.BusyCounter()) == 3
        columns = ", ".join(schema.ORDER_COLUMNS[:-1])
        values = (
            "C1",
            "600000.SH",
            "SELL",
            9_000,
            200,
            "",
            "",
            "ACCEPTED",
            0,
            0,
            0,
            0,
            0,
            "B1",
            "",
            1,
            T0,
            T0,
            None,
        )
        conn.execute(f"INSERT INTO orders ({columns}) VALUES ({', '.join('?' * len(values))})", values)
    finally:
        conn.close()
    store = await StateStore.open(path)
    try:
        assert store.schema_version == SCHEMA_VERSION
        (loaded,) = await store.load_orders()
        assert await store.integrity_check() == []
    finally:
        await store.close()
    assert (loaded.order_type, loaded.status, loaded.quantity) == (OrderType.LIMIT, OrderStatus.ACCEPTED, 200)
