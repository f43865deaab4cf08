"""A script's calls reach a running ``zhixing run`` (zhixing.remote): a real engine process plays the
recorded day on a live clock (``--speed``) holding the account's lock, and ``zhixing.Client.connect`` in
this process places an order and starts a TWAP through the journal's command channel. The orders are in
the engine's journal with the command's tag and fill; a command applied again sends nothing new; a bad or
oversized payload is refused with a recorded result and the engine keeps running."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zhixing
from zhixing.engine.control import queue_command
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import InputError
from zhixing.sync import RemoteSyncClient

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "replay" / "sample_data" / "snapshots_20211201"

CONFIG = """
[account]
id = "8800123456"
cash_yuan = 2000000

[store]
path = "zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"
"""


def rows(db: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []  # not created yet


def wait_for(predicate: object, proc: subprocess.Popen[bytes], what: str, limit_s: float = 60.0) -> None:
    """Poll a condition of the running process (bounded, so a broken engine fails instead of hanging)."""
    assert callable(predicate)
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert proc.poll() is None, f"engine exited before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def result_of(db: Path, command_id: int) -> dict[str, object] | None:
    found = rows(db, "SELECT done, result FROM control_commands WHERE id = ?", (command_id,))
    if not found or found[0][0] != 1:
        return None
    value = json.loads(str(found[0][1]))
    assert isinstance(value, dict)
    return value


@pytest.mark.slow
def test_a_script_reaches_the_running_engine(tmp_path: Path) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    db = tmp_path / "zhixing.db"
    args = ["run", str(config), "--from", "09:30", "--until", "09:50", "--speed", "100"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhixing.engine.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # the engine holds the lock before it opens the journal: a journal with its tables is a held lock
        wait_for(lambda: rows(db, "SELECT 1 FROM meta LIMIT 1"), proc, "the engine's journal")
        client = zhixing.Client.connect(config)
        assert isinstance(client, RemoteSyncClient)

        order = client.order_volume("600258.SH", 100, Side.BUY, price="23.50", tag="mine")
        assert order.tag.startswith("api:")
        assert order.tag.endswith(":mine")
        cid = order.client_order_id
        wait_for(
            lambda: any(o.client_order_id == cid and o.status is OrderStatus.FILLED for o in client.orders()),
            proc,
            "the script's order filled",
        )
        assert any(t.client_order_id == cid for t in client.trades())
        by_value = client.order_value("600258.SH", "5000", Side.BUY, price="23.50")  # 212 shares asked
        assert by_value.quantity == 200  # sized by the engine on the lot grid
        with pytest.raises(zhixing.ParameterError, match="rounds to no shares"):
            client.order_volume("600258.SH", 50, Side.BUY, price="23.50")

        handle = client.twap({"600446.SH": 1000}, Side.BUY, minutes=3, interval_s="10")
        wait_for(lambda: handle.progress().done, proc, "the script's TWAP done")
        progress = handle.progress()
        assert progress.quantity == 1000
        assert progress.filled > 0
        (parent_id,) = handle.parent_ids
        children = [o for o in client.orders() if o.parent_id == parent_id]
        assert children
        assert sum(o.filled_quantity for o in children) == progress.filled

        # applied again (as after a crash before its done mark): the same order, none sent twice
        tag = order.tag.rsplit(":", 1)[0]
        command_id = int(tag.split(":")[1])
        with sqlite3.connect(db, timeout=10) as conn:
            conn.execute("UPDATE control_commands SET done = 0 WHERE id = ?", (command_id,))
        wait_for(lambda: result_of(db, command_id) is not None, proc, "the command applied again")
        again = result_of(db, command_id)
        assert again is not None
        assert again["client_order_id"] == cid
        assert len(rows(db, "SELECT 1 FROM orders WHERE tag LIKE ?", (f"{tag}:%",))) == 1

        # refused with a result, and the engine goes on
        bad = queue_command(
            db, "submit_order", json.dumps({"symbol": 5, "side": "BUY", "quantity": 100, "price": "23.5"})
        )
        with pytest.raises(InputError, match="more than 4096"):
            queue_command(db, "submit_order", "x" * 5000)
        with sqlite3.connect(db, timeout=10) as conn:  # a writer that skips queue_command's bound
            (big,) = conn.execute(
                "INSERT INTO control_commands (ts, command, arg) VALUES (0, 'start_parent', ?) RETURNING id",
                ("{" + " " * 10_000 + "}",),
            ).fetchone()
        wait_for(lambda: result_of(db, bad) is not None, proc, "the bad payload's result")
        wait_for(lambda: result_of(db, int(big)) is not None, proc, "the oversized payload's result")
        refused = result_of(db, bad)
        assert refused is not None
        assert refused["ok"] is False
        assert refused["code"] == "bad_payload"
        assert "'symbol' must be text" in str(refused["text"])
        assert "more than 4096" in str(result_of(db, int(big)))
        # the risk gate's denial and its code come back through the channel: above the day's limit-up
        with pytest.raises(zhixing.OrderDenied) as denied:
            client.order_volume("600258.SH", 100, Side.BUY, price="30.00")
        assert denied.value.code is not None
        assert proc.poll() is None  # the engine runs on
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]


async def test_a_command_no_engine_applies_raises_naming_the_journal_and_stays_queued(tmp_path: Path) -> None:
    from zhixing.engine.store import StateStore
    from zhixing.remote import EngineNotAnswering, RemoteClient

    db = tmp_path / "zhixing.db"
    store = await StateStore.open(db)
    await store.close()
    client = RemoteClient(db, timeout_s=0.2)
    with pytest.raises(EngineNotAnswering, match=str(db)):
        await client.order_volume("600258.SH", 100, Side.BUY, price="23.50")
    assert rows(db, "SELECT command, done FROM control_commands") == [("submit_order", 0)]
