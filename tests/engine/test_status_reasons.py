"""``zhixing status`` states why a parent ended short (issue 20): the reason its algorithm journaled, in
the JSON and in the algorithms table's ``reason`` column; a parent that filled shows none."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from zhixing.algos.basket import Basket
from zhixing.engine.cli.ops_cmd import run_status
from zhixing.engine.enums import Side
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import RiskLimits
from zhixing.engine.status import collect_status
from zhixing.replay.data import load_snapshots
from zhixing.replay.harness import ReplayConfig, open_session

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOLS = ["600258.SH", "600446.SH"]


async def run_short_day(db: Path) -> dict[str, str]:
    """A passive buy far larger than its 5-minute window trades ends short; a one-lot aggressive sell
    fills. Returns each algorithm's own reason at the end."""
    market = load_snapshots(SAMPLE, symbols=SYMBOLS)
    day = market.trade_date
    start, end = shanghai_ns(day, "09:31"), shanghai_ns(day, "09:36")
    risk = RiskLimits(max_order_value=0)  # 0: off, so the big slices go out
    config = ReplayConfig(cash=10**12, positions={SYMBOLS[1]: 1_000}, db_path=db, risk=risk)
    session = await open_session(market, config, start)
    try:
        basket = Basket(session.ctx)
        session.engine.add_basket(basket)
        parents = [
            ParentOrder(
                parent_id="SHORT",
                symbol=SYMBOLS[0],
                side=Side.BUY,
                quantity=2_000_000,
                start_ns=start,
                end_ns=end,
                params={"price_policy": "passive", "interval_s": "60"},
            ),
            ParentOrder(
                parent_id="FULL",
                symbol=SYMBOLS[1],
                side=Side.SELL,
                quantity=100,
                start_ns=start,
                end_ns=end,
                params={"price_policy": "aggressive", "interval_s": "60"},
            ),
        ]
        for parent in parents:
            session.store.stage_parent(parent.to_row())
            basket.add(parent)
        basket.start()
        await session.store.commit()
        await session.run(end + 60_000_000_000, lambda: basket.done)
        await session.save_algos(basket)
        await session.oms.flush()
        return {pid: algo.unfilled_reason for pid, algo in basket.algos.items()}
    finally:
        await session.store.close()


def test_status_shows_the_reason_a_parent_ended_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the tables at full width: no cell cut short
    db = tmp_path / "j.db"
    reasons = asyncio.run(run_short_day(db))
    assert reasons["SHORT"].startswith("window_ended"), reasons
    assert reasons["FULL"] == ""

    algos = {a["parent_id"]: a for a in collect_status(db)["algos"]}
    assert algos["SHORT"]["filled_quantity"] < 2_000_000
    assert algos["SHORT"]["unfilled_reason"] == reasons["SHORT"]  # the journal says what the algorithm said
    assert algos["FULL"]["filled_quantity"] == 100
    assert algos["FULL"]["unfilled_reason"] == ""

    capsys.readouterr()  # the replay's log lines
    assert run_status(argparse.Namespace(db=db, json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert {a["parent_id"]: a["unfilled_reason"] for a in data["algos"]} == reasons
    assert run_status(argparse.Namespace(db=db, json=False)) == 0
    table = capsys.readouterr().out
    assert "reason" in table
    short_line = next(line for line in table.splitlines() if "SHORT" in line)
    assert "window_ended" in short_line
