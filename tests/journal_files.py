"""Real journal files for the integrity and backup tests: a journal with every kind of row the engine
loads at start, and the byte surgery that damages one (pages found by searching for known content)."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderFilled
from zhixing.engine.orders import Order
from zhixing.engine.store import StateStore

T0 = 1638322200_000000000  # 2021-12-01 09:30:00 Asia/Shanghai
SEC = 1_000_000_000
HALT_RECORD = {"halted": True, "reason": "operator", "since_ns": T0, "paused_by_halt": ["P1"]}


def order(seq: int, **overrides: object) -> Order:
    values: dict[str, object] = {
        "client_order_id": f"Z{seq:09d}",
        "symbol": "600258.SH",
        "side": Side.BUY,
        "price": 12_340,
        "quantity": 1_000,
        "parent_id": "P1",
        "status": OrderStatus.FILLED,
        "filled_quantity": 1_000,
        "filled_value": 12_340 * 1_000,
        "broker_order_id": f"B{seq}",
        "ts_created": T0 + seq * SEC,
        "ts_updated": T0 + seq * SEC,
    }
    values.update(overrides)
    return Order(**values)  # type: ignore[arg-type]


def fill(seq: int) -> OrderFilled:
    return OrderFilled(
        ts_event=T0 + seq * SEC,
        ts_init=T0 + seq * SEC,
        client_order_id=f"Z{seq:09d}",
        symbol="600258.SH",
        trade_id=f"T{seq}",
        side=Side.BUY,
        price=12_340,
        quantity=1_000,
        commission=5_000,
        stamp_duty=0,
        transfer_fee=10,
    )


async def make_journal(path: Path, *, orders: int = 3, halted: bool = True) -> Path:
    """A closed (checkpointed, no WAL) journal: orders Z000000001.. with fills, a parent with its plan
    and progress, a position, the halt record, the risk report, an account snapshot, an operator command.
    The order-id counter is where the engine leaves it: past a reserved block."""
    store = await StateStore.open(path, synchronous="NORMAL")
    await store.reserve_order_ids(10_000)
    for seq in range(1, orders + 1):
        store.stage_order(order(seq))
        store.stage_fill(fill(seq), "P1")
    store.stage_parent(
        {
            "parent_id": "P1",
            "symbol": "600258.SH",
            "side": "BUY",
            "quantity": 30_000,
            "algo": "twap",
            "start_ns": T0,
            "end_ns": T0 + 1800 * SEC,
            "params": {"slices": 10},
            "status": "RUNNING",
            "created_ns": T0,
        }
    )
    store.stage_algo_plan("P1", "twap", 1, {"slice_times": [T0 + i * 180 * SEC for i in range(10)]})
    store.stage_algo_progress("P1", "twap", 1, {"filled": orders * 1_000})
    store.stage_position("600258.SH", orders * 1_000, 0, 12_340)
    record = {**HALT_RECORD, "halted": halted}
    store.stage_meta("halt", json.dumps(record))
    store.stage_meta("risk_report", json.dumps({"day": 18962, "messages_today": orders}))
    store.stage_meta("account", json.dumps({"cash": 1_000_000}))
    await store.commit()
    await store.queue_command(T0, "halt", "operator")
    await store.close()
    return path


def page_size(data: bytes) -> int:
    raw = struct.unpack(">H", data[16:18])[0]
    return 65536 if raw == 1 else raw


def page_holding(path: Path, needle: bytes) -> tuple[int, int]:
    """(page number, byte offset of the page) of the one page holding ``needle``."""
    data = path.read_bytes()
    at = data.find(needle)
    assert at >= 0, f"{needle!r} is not in {path}"
    assert data.find(needle, at + 1) < 0, f"{needle!r} occurs more than once in {path}"
    size = page_size(data)
    return at // size + 1, (at // size) * size


def patch(path: Path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + len(new)] = new
    path.write_bytes(bytes(data))


def flip(path: Path, offset: int, count: int = 1) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def execute(path: Path, *statements: str) -> None:
    """Raw SQL on a closed journal (what a careless tool or a half-done manual edit would do)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()
