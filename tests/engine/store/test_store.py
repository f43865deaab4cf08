"""StateStore: the write-ahead journal on a real SQLite file (tmp_path), no mocks, no sleeps."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import StoreError
from zhixing.engine.events import (
    OrderAccepted,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from zhixing.engine.orders import Order
from zhixing.engine.store import (
    FILLS_CSV_COLUMNS,
    ORDERS_CSV_COLUMNS,
    SCHEMA_VERSION,
    StateStore,
    ops,
    schema,
)
from zhixing.engine.store.trade_log import avg_price3, iso8601, yuan2, yuan3
from zhixing.engine.units import yuan_str

# 2024-03-01 09:30:00.123456789 Asia/Shanghai, as ns since the epoch
T0 = 1709256600_123456789
SEC = 1_000_000_000


# ---------------------------------------------------------------------------------------- factories
def make_order(cid: str, **overrides: Any) -> Order:
    values: dict[str, Any] = {
        "client_order_id": cid,
        "symbol": "600000.SH",
        "side": Side.BUY,
        "price": 10_010,
        "quantity": 1_000,
        "parent_id": "P1",
        "ts_created": T0,
        "ts_updated": T0,
    }
    values.update(overrides)
    return Order(**values)


def make_fill(cid: str, trade_id: str, quantity: int = 100, **overrides: Any) -> OrderFilled:
    values: dict[str, Any] = {
        "ts_event": T0 + SEC,
        "ts_init": T0 + SEC + 1,
        "client_order_id": cid,
        "symbol": "600000.SH",
        "trade_id": trade_id,
        "side": Side.BUY,
        "price": 10_010,
        "quantity": quantity,
        "commission": 5_000,
        "stamp_duty": 0,
        "transfer_fee": 10,
    }
    values.update(overrides)
    return OrderFilled(**values)


def parent_row(parent_id: str = "P1", **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "parent_id": parent_id,
        "symbol": "600000.SH",
        "side": "BUY",
        "quantity": 10_000,
        "algo": "twap",
        "start_ns": T0,
        "end_ns": T0 + 3600 * SEC,
        "limit_price": 10_500,
        "params": {"slices": 12, "note": "尾盘"},
        "status": "RUNNING",
        "created_ns": T0 - SEC,
    }
    row.update(overrides)
    return row


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = await StateStore.open(tmp_path / "journal.db")
    yield s
    await s.close()


def raw_rows(path: Path, sql: str) -> list[Any]:
    """Read committed state through a separate plain connection (what another process would see)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class DiskFullOn:
    """The store's sqlite3 connection, except ``executemany`` into one table fails like a full disk."""

    def __init__(self, real: sqlite3.Connection, table: str) -> None:
        self._real = real
        self._table = table
        self.written: list[str] = []

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        table = sql.split()[2]
        if table == self._table:
            raise sqlite3.OperationalError("database or disk is full")
        cursor = self._real.executemany(sql, rows)
        self.written.append(table)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# ---------------------------------------------------------------------------------------- schema and open
def test_every_order_field_has_a_column() -> None:
    fields = {f.name for f in dataclasses.fields(Order)} - {"trade_ids", "denial"}
    assert set(schema.ORDER_COLUMNS) == fields


async def test_open_creates_file_in_wal_mode_with_requested_durability(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.db"
    for mode, level in (("FULL", 2), ("NORMAL", 1), ("OFF", 0)):
        store = await StateStore.open(path, synchronous=mode)
        try:
            async with store._db.execute("PRAGMA synchronous") as cursor:
                assert (await cursor.fetchone())[0] == level
            async with store._db.execute("PRAGMA journal_mode") as cursor:
                assert (await cursor.fetchone())[0] == "wal"
            assert store.schema_version == SCHEMA_VERSION
        finally:
            await store.close()
    assert raw_rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert raw_rows(path, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]


async def test_fresh_journal_passes_integrity_check(store: StateStore) -> None:
    store.stage_order(make_order("C1"))
    await store.commit()
    assert await store.integrity_check() == []


async def test_open_rejects_unknown_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        await StateStore.open(tmp_path / "j.db", synchronous="SOMETIMES")


async def test_newer_schema_version_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await (await StateStore.open(path)).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    conn.close()
    with pytest.raises(StoreError, match=rf"schema version 99 .*\({SCHEMA_VERSION}\)"):
        await StateStore.open(path)


async def test_foreign_sqlite_file_is_refused_as_unknown_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE quotes (symbol TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="unknown schema version"):
        await StateStore.open(path)
    assert raw_rows(path, "SELECT name FROM sqlite_master") == [("quotes",)]


async def test_migration_killed_halfway_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    nxt = SCHEMA_VERSION + 1
    broken = {
        **schema.MIGRATIONS,
        nxt: ("CREATE TABLE extra (x INTEGER) STRICT", "INSERT INTO missing VALUES (1)"),
    }
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="missing"):
            ops.migrate(conn, broken, str(path), ops.BusyCounter())
        # v0 -> the broken version was one transaction: not even v1's tables are left
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        conn.close()
    store = await StateStore.open(path)
    await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            ops.migrate(conn, broken, str(path), ops.BusyCounter())
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchall() == []
        good = {**schema.MIGRATIONS, nxt: ("CREATE TABLE extra (x INTEGER) STRICT",)}
        assert ops.migrate(conn, good, str(path), ops.BusyCounter()) == nxt
    finally:
        conn.close()
    with pytest.raises(StoreError, match=f"schema version {nxt}"):
        await StateStore.open(path)


# ---------------------------------------------------------------------------------------- round trip
async def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    working = make_order("C1", ts_created=T0 + 2)
    working.apply(OrderSubmitted(ts_event=T0, ts_init=T0 + 5, client_order_id="C1", symbol="600000.SH"))
    working.apply(
        OrderAccepted(
            ts_event=T0, ts_init=T0 + 6, client_order_id="C1", symbol="600000.SH", broker_order_id="B1"
        )
    )
    f1, f2 = make_fill("C1", "T1", 300), make_fill("C1", "T2", 200, price=10_020)
    working.apply(f1)
    working.apply(f2)
    working.apply(OrderPendingCancel(ts_event=T0, ts_init=T0 + 9, client_order_id="C1", symbol="600000.SH"))
    assert working.status_before_cancel is OrderStatus.PARTIALLY_FILLED
    rejected = make_order("C0", symbol="510300.SH", side=Side.SELL, price=3_891, tag="etf", ts_created=T0 + 1)
    rejected.apply(
        OrderRejected(
            ts_event=T0,
            ts_init=T0 + 3,
            client_order_id="C0",
            symbol="510300.SH",
            reason="资金不足",
            venue_confirmed=False,
        )
    )
    store = await StateStore.open(path)
    store.stage_order(working)
    store.stage_order(rejected)
    store.stage_fill(f1, "P1")
    store.stage_fill(f2, "P1")
    store.stage_parent(parent_row("P1"))
    store.stage_parent(parent_row("P0", limit_price=None, params={}, created_ns=T0 - 2 * SEC))
    store.stage_algo_state("P1", "twap", {"next_slice": 3, "done": [1, 2], "remainder": {"600000.SH": 100}})
    store.stage_position("600000.SH", 1_500, 1_000, 9_870)
    store.stage_meta("trading_day", "2024-03-01")
    assert store.has_staged
    await store.commit()
    assert not store.has_staged
    await store.close()

    store = await StateStore.open(path)
    try:
        assert await store.load_orders() == [rejected, working]  # by ts_created, then id
        assert await store.load_fills() == [(f1, "P1"), (f2, "P1")]
        parents = await store.load_parents()
        assert [p["parent_id"] for p in parents] == ["P0", "P1"]
        assert parents[1] == parent_row("P1")
        assert parents[0]["limit_price"] is None
        assert parents[0]["params"] == {}
        assert await store.load_algo_states() == {
            "P1": ("twap", {"next_slice": 3, "done": [1, 2], "remainder": {"600000.SH": 100}})
        }
        assert await store.load_positions() == {"600000.SH": (1_500, 1_000, 9_870)}
        assert await store.get_meta("trading_day") == "2024-03-01"
        assert await store.get_meta("absent") is None
    finally:
        await store.close()
    assert raw_rows(path, "SELECT venue_confirmed, typeof(venue_confirmed) FROM orders ORDER BY 1") == [
        (0, "integer"),
        (1, "integer"),
    ]


async def test_latest_staged_version_of_an_order_wins(store: StateStore) -> None:
    order = make_order("C1")
    store.stage_order(order)
    order.apply(OrderSubmitted(ts_event=T0, ts_init=T0 + 1, client_order_id="C1", symbol="600000.SH"))
    store.stage_order(order)
    await store.commit()
    order.apply(
        OrderAccepted(
            ts_event=T0, ts_init=T0 + 2, client_order_id="C1", symbol="600000.SH", broker_order_id="B9"
        )
    )
    store.stage_order(order)
    store.stage_position("600000.SH", 100, 0, 10_000)
    store.stage_position("600000.SH", 200, 100, 10_005)
    await store.commit()
    (loaded,) = await store.load_orders()
    assert (loaded.status, loaded.broker_order_id, loaded.ts_updated) == (OrderStatus.ACCEPTED, "B9", T0 + 2)
    assert await store.load_positions() == {"600000.SH": (200, 100, 10_005)}


async def test_commit_with_nothing_staged_is_a_no_op(store: StateStore) -> None:
    assert not store.has_staged
    await store.commit()
    assert await store.load_orders() == []


async def test_duplicate_fill_is_journaled_once(store: StateStore) -> None:
    fill = make_fill("C1", "T1")
    store.stage_fill(fill, "P1")
    store.stage_fill(fill, "P1")  # reconnect re-push in the same tick
    await store.commit()
    store.stage_fill(fill, "P1")  # and in a later one
    store.stage_fill(make_fill("C1", "T2"), "P1")
    await store.commit()
    assert [f.trade_id for f, _ in await store.load_fills()] == ["T1", "T2"]
    # the key is (client_order_id, trade_id): the same broker trade id on another order is another trade
    store.stage_fill(make_fill("C2", "T1"), "P2")
    await store.commit()
    assert [(f.client_order_id, f.trade_id) for f, _ in await store.load_fills()] == [
        ("C1", "T1"),
        ("C1", "T2"),
        ("C2", "T1"),
    ]


async def test_bad_rows_are_refused_when_staged_not_at_commit(store: StateStore) -> None:
    with pytest.raises(ValueError, match="missing keys"):
        store.stage_parent({"parent_id": "P1", "symbol": "600000.SH"})
    with pytest.raises(ValueError, match="unknown keys"):
        store.stage_parent(parent_row(filled=5))
    with pytest.raises(TypeError, match="quantity"):
        store.stage_parent(parent_row(quantity=10.5))
    with pytest.raises(TypeError, match="avg_cost"):
        store.stage_position("600000.SH", 100, 100, 10.01)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.stage_algo_state("P1", "twap", {"when": object()})
    assert not store.has_staged


# ---------------------------------------------------------------------------------------- failures
async def test_failed_commit_writes_nothing_and_keeps_the_batch(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "journal.db"
    store = await StateStore.open(path)
    failing = DiskFullOn(store._conn, "positions")
    monkeypatch.setattr(store, "_conn", failing)
    store.stage_order(make_order("C1"))
    store.stage_fill(make_fill("C1", "T1"), "P1")
    store.stage_position("600000.SH", 100, 0, 10_010)
    with pytest.raises(StoreError, match="disk is full") as excinfo:
        await store.commit()
    assert isinstance(excinfo.value.__cause__, sqlite3.OperationalError)
    assert failing.written == ["orders", "fills"]  # failed after the first tables were written
    assert store.has_staged
    assert raw_rows(path, "SELECT COUNT(*) FROM orders") == [(0,)]
    assert raw_rows(path, "SELECT COUNT(*) FROM fills") == [(0,)]
    await store.close()

    store = await StateStore.open(path)
    try:
        assert await store.load_orders() == []
        assert await store.load_fills() == []
        assert await store.load_positions() == {}
    finally:
        await store.close()


async def test_retained_batch_goes_out_with_the_next_commit(store: StateStore, monkeypatch: Any) -> None:
    real = store._conn
    monkeypatch.setattr(store, "_conn", DiskFullOn(real, "fills"))
    order = make_order("C1")
    store.stage_order(order)
    store.stage_fill(make_fill("C1", "T1"), "P1")
    with pytest.raises(StoreError):
        await store.commit()
    order.apply(
        OrderRejected(ts_event=T0, ts_init=T0 + 1, client_order_id="C1", symbol="600000.SH", reason="x")
    )
    store.stage_order(order)  # staged after the failure: newer than the retained copy
    store.stage_fill(make_fill("C1", "T2"), "P1")
    monkeypatch.setattr(store, "_conn", real)
    await store.commit()
    assert not store.has_staged
    assert [o.status for o in await store.load_orders()] == [OrderStatus.REJECTED]
    assert [f.trade_id for f, _ in await store.load_fills()] == ["T1", "T2"]


async def test_real_disk_full_mid_transaction_rolls_back_everything(store: StateStore) -> None:
    async with store._db.execute("PRAGMA page_count") as cursor:
        pages = (await cursor.fetchone())[0]
    await store._db.execute(f"PRAGMA max_page_count = {pages}")
    store.stage_order(make_order("C1"))  # fits in the table's existing page
    store.stage_algo_state("P1", "twap", {"blob": "x" * 200_000})  # needs pages the "disk" does not have
    with pytest.raises(StoreError, match="database or disk is full"):
        await store.commit()
    assert await store.load_orders() == []
    assert store.has_staged
    await store._db.execute("PRAGMA max_page_count = 1073741823")
    await store.commit()
    assert [o.client_order_id for o in await store.load_orders()] == ["C1"]
    assert list(await store.load_algo_states()) == ["P1"]


async def test_write_lock_held_elsewhere_is_waited_out_not_surfaced(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    store = await StateStore.open(path, busy_timeout_ms=20)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        store.stage_order(make_order("C1"))
        task = asyncio.create_task(store.commit())
        # block (in a helper thread, not a sleep) until the commit has found the lock held once
        assert await asyncio.to_thread(store._busy.retried.wait, 30)
        assert not task.done()
        holder.execute("ROLLBACK")
        await task
        assert [o.client_order_id for o in await store.load_orders()] == ["C1"]
    finally:
        holder.close()
        await store.close()


async def test_write_lock_never_released_becomes_store_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    store = await StateStore.open(path, busy_timeout_ms=1)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        store.stage_order(make_order("C1"))
        with pytest.raises(StoreError) as excinfo:
            await store.commit()
        assert "database is locked" not in str(excinfo.value)
        assert store.busy_retries == ops.BUSY_ATTEMPTS
        assert store.has_staged
        holder.execute("ROLLBACK")
        await store.commit()
        assert len(await store.load_orders()) == 1
    finally:
        holder.close()
        await store.close()


async def test_cancelled_commit_keeps_the_batch_and_writes_it_once(store: StateStore) -> None:
    store.stage_order(make_order("C1"))
    store.stage_fill(make_fill("C1", "T1"), "P1")
    task = asyncio.create_task(store.commit())
    await asyncio.sleep(0)  # let it take the batch and hand it to the worker thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.has_staged
    await store.commit()
    assert len(await store.load_orders()) == 1
    assert len(await store.load_fills()) == 1


async def test_commit_waits_for_the_in_flight_commit_holding_its_rows(store: StateStore) -> None:
    store.stage_order(make_order("C1"))
    in_flight = asyncio.create_task(store.commit())
    await asyncio.sleep(0)  # the other commit has taken C1
    assert not store.has_staged
    await store.commit()  # write-ahead: must not return before C1 is durable
    assert in_flight.done()
    await in_flight
    assert raw_rows(store.path, "SELECT client_order_id FROM orders") == [("C1",)]


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "journal.db")
    await store.close()
    await store.close()  # idempotent
    store.stage_order(make_order("C1"))
    with pytest.raises(StoreError, match="closed"):
        await store.commit()
    assert store.has_staged
    with pytest.raises(StoreError, match="closed"):
        await store.reserve_order_ids(1)
    with pytest.raises(StoreError, match="closed"):
        await store.load_orders()


# ---------------------------------------------------------------------------------------- concurrency
async def test_200_concurrent_writers_lose_nothing(store: StateStore) -> None:
    async def writer(n: int) -> None:
        for k in range(3):
            cid = f"C{n:03d}-{k}"
            store.stage_order(make_order(cid, ts_created=T0 + n))
            store.stage_fill(make_fill(cid, f"T{n}-{k}"), "P1")
        store.stage_position(f"{n:06d}.SZ", n, n, 1_000)
        await store.commit()

    await asyncio.gather(*(writer(n) for n in range(200)))
    assert not store.has_staged
    assert len(await store.load_orders()) == 600
    assert len(await store.load_fills()) == 600
    assert len(await store.load_positions()) == 200
    assert store.busy_retries == 0


async def test_two_connections_with_100_writers_each_never_surface_locked(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    a = await StateStore.open(path)
    b = await StateStore.open(path)
    try:

        async def writer(s: StateStore, name: str) -> None:
            s.stage_order(make_order(name))
            await s.commit()

        await asyncio.gather(*(writer(a if n % 2 else b, f"C{n}") for n in range(200)))
        assert len(await a.load_orders()) == 200
    finally:
        await a.close()
        await b.close()


@pytest.mark.slow
async def test_reserved_order_ids_are_unique_under_10k_concurrent_callers_and_across_reopen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    rng = random.Random(7)
    counts = [rng.randint(1, 3) for _ in range(10_000)]
    store = await StateStore.open(path)
    try:
        firsts = await asyncio.gather(*(store.reserve_order_ids(n) for n in counts))
    finally:
        await store.close()
    ids = [first + k for first, n in zip(firsts, counts, strict=True) for k in range(n)]
    assert len(ids) == len(set(ids)) == sum(counts)
    store = await StateStore.open(path)
    try:
        assert await store.reserve_order_ids(5) > max(ids)
        with pytest.raises(ValueError, match="count"):
            await store.reserve_order_ids(0)
    finally:
        await store.close()


async def test_reservation_failure_reaches_every_waiter_and_spends_no_ids(store: StateStore) -> None:
    first = await store.reserve_order_ids(1)
    await store._db.execute("PRAGMA query_only = ON")  # every write now fails inside SQLite
    results = await asyncio.gather(*(store.reserve_order_ids(2) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, StoreError) for r in results)
    await store._db.execute("PRAGMA query_only = OFF")
    assert await store.reserve_order_ids(1) == first + 1


# ---------------------------------------------------------------------------------------- trade log
def test_money_formatting_matches_units_helpers() -> None:
    for value in [*range(-2_100, 2_100, 7), 0, 1, 4, 5, 995, 1_005, 10_010, 123_456_789]:
        assert yuan3(value) == yuan_str(value, 3)
        assert yuan2(value) == yuan_str(value, 2)
    assert avg_price3(10_010 * 300 + 10_020 * 200, 500) == "10.014"
    assert avg_price3(3 * 1_001 + 1_002, 4) == "1.001"  # 1.00125 rounds half up at 0.001
    assert avg_price3(1_001 + 1_002, 2) == "1.002"  # 1.0015 -> 1.002
    assert avg_price3(0, 0) == "0.000"


def test_iso8601_is_shanghai_time_whatever_the_host_zone() -> None:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        assert iso8601(T0) == "2024-03-01T09:30:00.123+08:00"
        assert iso8601(0) == "1970-01-01T08:00:00.000+08:00"
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


async def test_export_trade_log_columns_formatting_and_order(store: StateStore, tmp_path: Path) -> None:
    late = make_order("C2", ts_created=T0 + 60 * SEC, ts_updated=T0 + 61 * SEC)
    etf = make_order("C1", symbol="510300.SH", side=Side.SELL, price=3_891, quantity=300, ts_created=T0)
    tie = make_order("C0", ts_created=T0 + 60 * SEC)
    fills = [
        make_fill("C1", "T9", 100, ts_event=T0 + 2 * SEC, side=Side.SELL, price=3_891, symbol="510300.SH"),
        make_fill("C1", "T8", 200, ts_event=T0 + 2 * SEC, side=Side.SELL, price=3_892, symbol="510300.SH"),
        make_fill("C2", "T1", 100, ts_event=T0 + 90 * SEC, commission=5_000, stamp_duty=505, transfer_fee=5),
    ]
    etf.apply(OrderSubmitted(ts_event=T0, ts_init=T0, client_order_id="C1", symbol="510300.SH"))
    for fill in fills[:2]:
        etf.apply(fill)
    for order in (late, etf, tie):
        store.stage_order(order)
    for fill in fills:
        store.stage_fill(fill, "P1")
    await store.commit()
    out = tmp_path / "log"
    orders_path, fills_path = await store.export_trade_log(out)
    assert (orders_path, fills_path) == (out / "orders.csv", out / "fills.csv")
    assert sorted(p.name for p in out.iterdir()) == ["fills.csv", "orders.csv"]  # no temp files left

    raw = orders_path.read_bytes()
    assert b"\r\n" not in raw
    with orders_path.open(encoding="utf-8", newline="") as handle:
        order_lines = list(csv.reader(handle))
    assert order_lines[0] == list(ORDERS_CSV_COLUMNS)
    assert [line[0] for line in order_lines[1:]] == ["C1", "C0", "C2"]
    assert order_lines[1] == [
        "C1",
        "P1",
        "510300.SH",
        "SELL",
        "3.891",
        "300",
        "300",
        "3.892",  # (100 * 3.891 + 200 * 3.892) / 300 = 3.89167 -> 3.892
        "FILLED",
        "2024-03-01T09:30:00.123+08:00",
        "2024-03-01T09:30:01.123+08:00",  # last ts_init
    ]
    assert order_lines[3][4:8] == ["10.010", "1000", "0", "0.000"]

    with fills_path.open(encoding="utf-8", newline="") as handle:
        fill_lines = list(csv.reader(handle))
    assert fill_lines[0] == list(FILLS_CSV_COLUMNS)
    assert [line[0] for line in fill_lines[1:]] == ["T8", "T9", "T1"]  # by ts, then trade_id
    assert fill_lines[3] == [
        "T1",
        "C2",
        "P1",
        "600000.SH",
        "BUY",
        "10.010",
        "100",
        "5.00",
        "0.51",
        "0.01",
        "2024-03-01T09:31:30.123+08:00",
    ]
    assert all(line[-1].endswith("+08:00") for line in fill_lines[1:])
