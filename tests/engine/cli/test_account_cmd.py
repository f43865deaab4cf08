"""``zhixing account CONFIG``: the broker's own view through the configured route. Here the route is the
real file route reading the output files a terminal (the emulator) wrote after a real day of orders:
cash, frozen, total asset, positions with T+1 sellable, today's orders and trades. It sends nothing, and
refuses while an engine holds the account."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.adapters.fileorder.test_fileorder_route import ACCOUNT, SNAPSHOTS, SYMBOL, _route
from zhixing.engine.cli import main
from zhixing.engine.enums import Side
from zhixing.engine.instance_lock import InstanceLock
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.terminal import TerminalFaults

CONFIG = """
[account]
id = "8800123456"

[store]
path = "state/zhixing.db"

[route]
kind = "fileorder"
[route.fileorder]
input_dir = "scan"
output_dir = "push"
account_id = "{account}"
state_dir = "query_state"

[feed]
kind = "qmt"
"""


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SNAPSHOTS, symbols=[SYMBOL])


async def a_day_of_file_orders(tmp_path: Path, market: MarketData) -> dict[str, str]:
    """One buy that fills and one that rests, through the file route and the emulator; returns sids."""
    async for route in _route(tmp_path, market, TerminalFaults(scan_interval_ns=500_000_000)):
        filled = route.submit(Side.BUY, 2790, 20_000)
        resting = route.submit(Side.BUY, 2600, 1_000)
        await route.run_until("09:35")
        return {"filled": filled.client_order_id, "resting": resting.client_order_id}
    raise AssertionError("no route")


@pytest.mark.slow
def test_the_broker_view_through_the_file_route(
    tmp_path: Path, market: MarketData, capsys: pytest.CaptureFixture[str]
) -> None:
    sids = asyncio.run(a_day_of_file_orders(tmp_path, market))  # the day, then the command on its own loop
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG.format(account=ACCOUNT), encoding="utf-8")
    orders_before = sorted(p.name for p in (tmp_path / "scan").iterdir())
    capsys.readouterr()  # the day's own log lines

    assert main(["account", str(config), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["account"] == "88******56"  # masked
    assert float(view["frozen"]) > 0  # the resting buy holds cash
    assert float(view["total_asset"]) == pytest.approx(float(view["cash"]) + float(view["market_value"]))
    (position,) = view["positions"]
    assert (position["symbol"], position["quantity"], position["sellable"]) == (SYMBOL, 20_000, 0)  # T+1
    orders = {o["client_order_id"]: o for o in view["orders"]}
    assert orders[sids["filled"]]["status"] == "FILLED"
    assert orders[sids["resting"]]["status"] == "ACCEPTED"
    trades = view["trades"]
    assert {t["client_order_id"] for t in trades} == {sids["filled"]}
    assert sum(t["quantity"] for t in trades) == 20_000
    assert float(trades[0]["fees"]) >= 5  # estimated (the terminal writes no fees): at least the minimum
    # it sent nothing: the terminal's input folder is as it was
    assert sorted(p.name for p in (tmp_path / "scan").iterdir()) == orders_before

    assert main(["account", str(config)]) == 0  # the tables
    text = capsys.readouterr().out
    assert "today's orders (2)" in text
    assert "today's trades" in text
    assert SYMBOL in text


def test_it_refuses_while_an_engine_holds_the_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG.format(account=ACCOUNT), encoding="utf-8")
    (tmp_path / "state").mkdir()
    with InstanceLock.for_store(tmp_path / "state" / "zhixing.db"):
        assert main(["account", str(config)]) == 2
    assert "zhixing status --db" in capsys.readouterr().out


def test_a_route_that_does_not_answer_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG.format(account=ACCOUNT), encoding="utf-8")
    (tmp_path / "scan").mkdir()  # no terminal has written anything
    assert main(["account", str(config), "--connect-timeout", "0"]) != 0
    assert "broker route fileorder not ready after 1 attempt" in capsys.readouterr().err
