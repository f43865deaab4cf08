"""Portfolio operations through a configured route (``--config``): the sim route stands in for the broker,
its recorded day for today. The journal is the config's; a second run whose broker does not match the
journal halts instead of trading (fail closed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.engine.store import StateStore

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"

CONFIG = """
[account]
id = "8800123456"
cash_yuan = 1000000
positions = {{ "600566.SH" = 20000 }}

[store]
path = "zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"
"""


def config(tmp_path: Path) -> Path:
    path = tmp_path / "zhixing.toml"
    path.write_text(CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    (tmp_path / "targets.csv").write_text("symbol,weight\n600258.SH,0.1\n", encoding="utf-8")
    return path


def test_rebalance_through_the_configured_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path)
    args = [
        "rebalance",
        str(tmp_path / "targets.csv"),
        "--config",
        str(cfg),
        "--start",
        "09:30",
        "--end",
        "10:00",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "600566.SH" in out
    assert "600258.SH" in out
    assert "20000/20000" in out  # the unlisted holding is sold in full

    async def orders() -> list[object]:
        store = await StateStore.open(tmp_path / "zhixing.db")
        try:
            return list(await store.load_orders())
        finally:
            await store.close()

    journaled = asyncio.run(orders())
    assert journaled
    # the sim broker starts afresh from the config, the journal remembers the trades: they disagree
    assert main(["liquidate", "--config", str(cfg), "--start", "10:30", "--end", "11:00"]) == 1
    assert "halted" in capsys.readouterr().out
    assert len(asyncio.run(orders())) == len(journaled)  # nothing new was sent


def test_plan_with_config_prints_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path)
    assert main(["plan", str(tmp_path / "targets.csv"), "--config", str(cfg), "--start", "09:30"]) == 0
    out = capsys.readouterr().out
    assert "SELL 20000" in out
    assert "BUY" in out
