"""``zhixing status`` from the journal alone: account, positions, working orders, algorithm progress,
halt state and risk counters, read-only, next to a running engine; JSON and tables; account ids masked."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from zhixing.algos.basket import Basket
from zhixing.engine.cli.ops_cmd import run_halt, run_status
from zhixing.engine.control import ControlChannel, EngineControl
from zhixing.engine.enums import Side
from zhixing.engine.errors import InputError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.status import collect_status
from zhixing.replay.data import load_snapshots
from zhixing.replay.harness import ReplayConfig, open_session

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data"
SYMBOLS = ["600258.SH", "600446.SH"]
ACCOUNT = "8800123456"


def digest(db: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name)
    }


async def run_engine(
    db: Path, *, halt_at: str | None = None, seen: list[dict[str, Any]] | None = None
) -> None:
    market = load_snapshots(SAMPLE / "snapshots_20211201", symbols=SYMBOLS)
    day = market.trade_date
    start, end = shanghai_ns(day, "09:30"), shanghai_ns(day, "10:15")
    session = await open_session(
        market,
        ReplayConfig(cash=50_000_000_000, positions={SYMBOLS[1]: 30_000}, db_path=db, account_id=ACCOUNT),
        start,
    )
    try:
        basket = Basket(session.ctx)
        risk = session.engine.risk
        control = EngineControl(session.oms, session.store, basket.algos, risk=risk)
        session.engine.add_basket(basket)
        parents = [
            ParentOrder(
                parent_id="BUY1",
                symbol=SYMBOLS[0],
                side=Side.BUY,
                quantity=40_000,
                start_ns=start,
                end_ns=end,
                params={"price_policy": "passive"},
            ),
            ParentOrder(
                parent_id="SELL1",
                symbol=SYMBOLS[1],
                side=Side.SELL,
                quantity=20_000,
                start_ns=start,
                end_ns=end,
            ),
        ]
        for parent in parents:
            session.store.stage_parent(parent.to_row())
            basket.add(parent)
        basket.start()
        await session.store.commit()
        await session.run(shanghai_ns(day, "09:45"), lambda: False, expire=False)
        if halt_at is not None:
            channel = ControlChannel(session.store, session.clock, control, commit=session.oms.flush)
            run_halt(argparse.Namespace(db=db, reason=halt_at))
            await channel.poll()
        await session.oms.flush()
        if seen is not None:  # while the engine still holds the journal open
            seen.append(collect_status(db))
    finally:
        await session.store.close()


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("status") / "j.db"
    asyncio.run(run_engine(db))
    return db


def test_status_shows_account_positions_working_orders_and_algo_progress(journal: Path) -> None:
    status = collect_status(journal)
    account = status["account"]
    assert account["account_id"] == "88******56"
    assert account["cash"] > 0
    assert account["available"] == account["cash"] - account["frozen"]
    positions = {p["symbol"]: p for p in status["positions"]}
    assert positions[SYMBOLS[1]]["quantity"] < 30_000  # the sell parent has filled some
    assert positions[SYMBOLS[1]]["sellable"] <= positions[SYMBOLS[1]]["quantity"]
    assert positions[SYMBOLS[0]]["sellable"] == 0  # bought today: T+1
    algos = {a["parent_id"]: a for a in status["algos"]}
    assert set(algos) == {"BUY1", "SELL1"}
    assert algos["BUY1"]["algo"] == "twap"
    assert algos["BUY1"]["status"] == "RUNNING"
    assert 0 < algos["SELL1"]["filled_quantity"] < 20_000
    assert algos["SELL1"]["progress_pct"] == round(100 * algos["SELL1"]["filled_quantity"] / 20_000, 1)
    assert algos["SELL1"]["filled_quantity"] == 30_000 - positions[SYMBOLS[1]]["quantity"]
    working = status["working_orders"]
    assert working  # passive buy children resting
    assert {o["parent_id"] for o in working} <= {"BUY1", "SELL1"}
    assert sum(1 for o in working if o["parent_id"] == "BUY1") == algos["BUY1"]["working_orders"]
    assert status["halt"]["halted"] is False
    risk = status["risk"]
    assert risk["orders_sent"] > 0
    assert risk["limits"]["max_messages_per_second"] == 50


def test_status_is_read_only(journal: Path) -> None:
    before = digest(journal)
    collect_status(journal)
    assert digest(journal) == before


def test_status_json_cli_and_tables(journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_status(argparse.Namespace(db=journal, json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["account"]["account_id"] == "88******56"
    assert ACCOUNT not in json.dumps(data)
    assert run_status(argparse.Namespace(db=journal, json=False)) == 0
    out = capsys.readouterr().out
    assert "Working orders" in out
    assert "BUY1" in out
    assert "not halted" in out
    assert ACCOUNT not in out


async def test_status_next_to_a_running_engine_shows_the_halt_and_pending_commands(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    seen: list[dict[str, Any]] = []
    await run_engine(db, halt_at="desk call", seen=seen)
    (status,) = seen
    assert collect_status(db) == status  # nothing changed at close
    assert status["halt"]["halted"] is True
    assert status["halt"]["reason"] == "desk call"
    assert sorted(status["halt"]["paused_by_halt"]) == ["BUY1", "SELL1"]
    assert {a["status"] for a in status["algos"] if a["status"] != "DONE"} <= {"PAUSED"}
    assert status["pending_commands"] == []
    run_halt(argparse.Namespace(db=db, reason="again"))  # no engine to apply it: it waits, and shows
    pending = collect_status(db)["pending_commands"]
    assert [(c["command"], c["arg"]) for c in pending] == [("halt", "again")]


def test_status_refuses_a_missing_journal(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="journal database not found"):
        collect_status(tmp_path / "nope.db")
