"""``zhixing submit``: a user's own 掘金 文件单 order and cancel files through the configured route (the sim
route, its recorded day standing in for today). The file is checked whole before anything is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.order_file import read_gm_file
from zhixing.engine.cli import main
from zhixing.engine.cli.run_cmd import open_configured
from zhixing.engine.cli.submit_cmd import send_file
from zhixing.engine.config import load_config
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import InputError
from zhixing.engine.orders import Order
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

HEADER = "sid,account_id,symbol,volume,order_type,order_business(order_biz),price,comment\n"
# 09:30-10:30: 600566.SH trades 18.00..18.28 (prev close 18.09), 600258.SH 23.03..23.39 (23.20): a sell of
# 600566 at 17.00 and a buy of 600258 at 23.50 fill; a buy of 600566 at 16.50 (limit down 16.28) works
GOOD = HEADER + (
    "s1,8800123456,SHSE.600566,5000,1,2,17.00,sell part\r\ns2,8800123456,SHSE.600258,1000,1,1,23.50,buy\r\n"
)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "zhixing.toml"
    path.write_text(CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    return path


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _journaled(tmp_path: Path) -> list[Order]:
    async def orders() -> list[Order]:
        store = await StateStore.open(tmp_path / "zhixing.db")
        try:
            return list(await store.load_orders())
        finally:
            await store.close()

    if not (tmp_path / "zhixing.db").exists():
        return []
    return asyncio.run(orders())


def _submit(tmp_path: Path, file: Path, *extra: str) -> int:
    cfg = _config(tmp_path)
    return main(["submit", str(file), "--config", str(cfg), "--start", "09:30", "--end", "10:00", *extra])


@pytest.mark.slow
def test_a_gm_order_file_is_sent_on_the_sim_route_and_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(tmp_path, "20211201.order.csv", GOOD)
    assert _submit(tmp_path, file) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip().startswith(("2 ", "3 "))]
    assert len(lines) == 2
    assert "s1" in lines[0]
    assert "SELL" in lines[0]
    assert "5000" in lines[0]
    assert "FILLED" in lines[0]
    assert "s2" in lines[1]
    assert "BUY" in lines[1]
    assert "1000" in lines[1]
    assert "FILLED" in lines[1]
    journaled = _journaled(tmp_path)
    assert sorted(o.tag for o in journaled) == ["gm:s1", "gm:s2"]
    assert {o.quantity for o in journaled} == {5000, 1000}


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("s9,8800999999,SHSE.600566,100,1,1,18.00,", "account_id", "not this session's account"),
        ("s9,8800123456,SHSE.60056,100,1,1,18.00,", "symbol", "bad gm symbol"),
        ("s9,8800123456,SHSE.600566,150,1,1,18.00,", "volume", "not a buy size"),
        ("s9,8800123456,SHSE.600566,100,1,1,18.005,", "price", "tick"),
        ("s9,8800123456,SHSE.600566,100,1,3,18.00,", "order_business", "not a stock buy (1) or sell (2)"),
        ("s9,8800123456,SHSE.600566,100,22,1,18.00,", "order_type", "not an order kind SH takes"),
        ("s9,8800123456,SHSE.688218,200,24,1,0,", "price", "needs a protection price"),
        ("s1,8800123456,SHSE.600566,100,1,1,18.00,", "sid", "repeats row 2"),
    ],
)
def test_one_bad_row_anywhere_sends_nothing_and_names_row_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, field: str, words: str
) -> None:
    file = _write(tmp_path, "bad.order.csv", GOOD + row + "\n")
    assert _submit(tmp_path, file) == 2
    err = capsys.readouterr().err
    assert "row 4" in err
    assert f"field {field!r}" in err
    assert words in err
    assert _journaled(tmp_path) == []  # nothing was sent, nothing journaled


@pytest.mark.slow
def test_a_market_order_row_is_sent_as_its_kind_and_fills_from_the_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """order_type 24 on SSE is best-five-then-cancel; price 0: bounded at the day's limit-up."""
    file = _write(tmp_path, "m.order.csv", HEADER + "m1,8800123456,SHSE.600566,1000,24,1,0,\n")
    assert _submit(tmp_path, file) == 0
    (order,) = _journaled(tmp_path)
    assert (order.tag, order.order_type.value, order.quantity) == ("gm:m1", "B5TC", 1000)
    assert order.filled_quantity == 1000
    assert order.price > 0  # the limit-up bound the market rules set


@pytest.mark.slow
def test_a_sell_above_the_sellable_position_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(tmp_path, "big.order.csv", GOOD + "s3,8800123456,SHSE.600566,30000,1,2,17.00,\n")
    assert _submit(tmp_path, file) == 2
    err = capsys.readouterr().err
    assert "row 4" in err
    assert "20000 sellable" in err
    assert _journaled(tmp_path) == []


def test_dry_run_validates_and_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(tmp_path, "20211201.order.csv", GOOD)
    assert _submit(tmp_path, file, "--dry-run") == 0
    assert "2 row(s) valid; nothing sent" in capsys.readouterr().out
    assert _journaled(tmp_path) == []


def test_a_targets_file_given_to_submit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(tmp_path, "targets.csv", "symbol,volume\n600566.SH,5000\n")
    assert _submit(tmp_path, file) == 2
    err = capsys.readouterr().err
    assert "this is a targets file" in err
    assert "zhixing plan" in err


def test_the_issues_case_a_gm_order_file_given_to_plan_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the issue: this file read as targets made "sell 5,000" a SELL of 35,000 (target 5,000 of 40,000)
    file = _write(tmp_path, "orders.csv", HEADER + "s1,8800123456,SHSE.600566,5000,1,2,17.00,\n")
    cfg = _config(tmp_path)
    assert main(["plan", str(file), "--config", str(cfg), "--start", "09:30"]) == 2
    captured = capsys.readouterr()
    assert "this is a 掘金 order file (sid,account_id," in captured.err
    assert "use `zhixing submit" in captured.err
    assert "SELL" not in captured.out


@pytest.mark.slow
async def test_a_cancel_file_cancels_a_working_order_by_its_sid(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    working = _write(tmp_path, "a.order.csv", HEADER + "w1,8800123456,SHSE.600566,1000,1,1,16.50,\n")
    cancel = _write(tmp_path, "a.cancel_order.csv", "sid,comment\nw1,changed my mind\n")
    run = await open_configured(config, start="09:30", until="10:00")
    try:
        [sent] = await send_file(run, read_gm_file(working))
        assert sent.order.is_working  # sent; 16.50 is below the whole day's trading
        [cancelled] = await send_file(run, read_gm_file(cancel))
        assert cancelled.order is sent.order
        await run.drive(asyncio.Event(), done=lambda: sent.order.is_terminal)
        assert sent.order.status is OrderStatus.CANCELED
        assert sent.order.filled_quantity == 0
    finally:
        await run.close()


@pytest.mark.slow
async def test_a_cancel_file_naming_no_order_cancels_nothing(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    cancel = _write(tmp_path, "b.cancel_order.csv", "sid,comment\nnope,\n")
    run = await open_configured(config, start="09:30", until="10:00")
    try:
        with pytest.raises(InputError, match=r"row 2.*no order of this account has sid"):
            await send_file(run, read_gm_file(cancel))
    finally:
        await run.close()


@pytest.mark.slow
def test_an_order_the_risk_gate_denies_is_shown_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the buy at 18.50 would trade against our own sell at 17.00: the same risk gate as a run denies it
    text = HEADER + "s1,8800123456,SHSE.600566,5000,1,2,17.00,\ns2,8800123456,SHSE.600566,1000,1,1,18.50,\n"
    file = _write(tmp_path, "cross.order.csv", text)
    assert _submit(tmp_path, file) == 1
    out = capsys.readouterr().out
    assert "DENIED (self_cross" in out
    assert {o.tag for o in _journaled(tmp_path)} == {"gm:s1"}  # a denied order never reaches the journal
