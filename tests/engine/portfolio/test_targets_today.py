"""A targets file must be today's: the date column in the shared reader (every path), and the one-shot
``--config`` commands (a dated file must name today; an undated one written before the previous trading
day's close is refused unless ``--allow-stale``). The sim route's recorded 2021-12-01 is "today"."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.engine.errors import InputError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.portfolio.targets import load_targets, read_targets
from zhixing.engine.store import StateStore

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
TODAY = date(2021, 12, 1)
YESTERDAY_CLOSE = shanghai_ns(date(2021, 11, 30), "15:00")


def write(folder: Path, text: str, name: str = "targets.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as info:
        read_targets(path, trade_date=TODAY, **kwargs)  # type: ignore[arg-type]
    assert str(path) in str(info.value)
    return info.value


# ------------------------------------------------------------------------------------------- the reader


@pytest.mark.parametrize("column", ["date", "as_of", "trade_date", "Trade_Date"])
@pytest.mark.parametrize("value", ["2021-12-01", "20211201", "2021/12/01", "2021-12-01 08:55:00"])
def test_a_date_column_naming_today_is_accepted(tmp_path: Path, column: str, value: str) -> None:
    path = write(tmp_path, f"symbol,weight,{column}\n600000.SH,0.3,{value}\n")
    parsed = load_targets(path, trade_date=TODAY)
    assert [t.symbol for t in parsed.targets] == ["600000.SH"]
    assert parsed.date_column == column.lower()


def test_a_date_column_naming_yesterday_is_refused_with_file_row_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight,date\n600000.SH,0.3,2021-11-30\n")
    err = refused(path)
    assert (err.row, err.field) == (2, "date")
    assert "dated 2021-11-30, but today's trading day is 2021-12-01" in str(err)


def test_mixed_dates_name_the_first_row_of_another_day(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "symbol,weight,as_of\n600000.SH,0.3,2021-12-01\n000001.SZ,0.3,2021-12-01\n600519.SH,0.1,2021-11-29\n",
    )
    err = refused(path)
    assert (err.row, err.field) == (4, "as_of")


@pytest.mark.parametrize("value", ["", "yesterday", "2021-02-30", "2021-1201", "12/01/2021"])
def test_a_date_that_is_not_a_date_is_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"symbol,weight,trade_date\n600000.SH,0.3,{value}\n")
    err = refused(path)
    assert (err.row, err.field) == (2, "trade_date")
    assert "not a date" in str(err)


def test_json_dates_are_checked_too(tmp_path: Path) -> None:
    records = [{"symbol": "600000.SH", "weight": 0.3, "date": 20211130}]
    path = write(tmp_path, json.dumps(records), name="targets.json")
    err = refused(path)
    assert (err.row, err.field) == (1, "date")
    records[0]["date"] = 20211201
    path.write_text(json.dumps(records), encoding="utf-8")
    assert len(read_targets(path, trade_date=TODAY)) == 1


def test_the_journaled_bytes_are_parsed_not_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.9\n")
    planned = b"symbol,weight\n000001.SZ,0.2\n"
    (target,) = read_targets(path, data=planned, trade_date=TODAY)
    assert target.symbol == "000001.SZ"


def test_the_replay_path_checks_the_date_against_the_recorded_day(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight,date\n600258.SH,0.1,2021-11-30\n")
    assert main(["plan", str(path), "--replay-data", str(SAMPLE)]) == 2


# ------------------------------------------------------------------------------- one-shot --config


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
    return path


def journaled_orders(tmp_path: Path) -> int:
    async def count() -> int:
        store = await StateStore.open(tmp_path / "zhixing.db")
        try:
            return len(await store.load_orders())
        finally:
            await store.close()

    return asyncio.run(count())


def rebalance(tmp_path: Path, targets: Path, *extra: str) -> int:
    argv = [
        "rebalance",
        str(targets),
        "--config",
        str(config(tmp_path)),
        "--start",
        "09:30",
        "--end",
        "10:00",
    ]
    return main([*argv, *extra])


def test_one_shot_with_a_stale_file_is_refused_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write(tmp_path, "symbol,weight\n600258.SH,0.1\n")
    os.utime(targets, ns=(YESTERDAY_CLOSE - 10**9,) * 2)
    assert rebalance(tmp_path, targets) == 2
    err = capsys.readouterr().err
    assert str(targets) in err
    assert "left over from an earlier day" in err
    assert journaled_orders(tmp_path) == 0


@pytest.mark.slow
def test_one_shot_with_allow_stale_trades_the_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write(tmp_path, "symbol,weight\n600258.SH,0.1\n")
    os.utime(targets, ns=(YESTERDAY_CLOSE - 10**9,) * 2)
    assert rebalance(tmp_path, targets, "--allow-stale") == 0
    assert journaled_orders(tmp_path) > 0


def test_one_shot_plan_refuses_a_stale_file_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = write(tmp_path, "symbol,weight\n600258.SH,0.1\n")
    os.utime(targets, ns=(YESTERDAY_CLOSE - 10**9,) * 2)
    assert main(["plan", str(targets), "--config", str(config(tmp_path)), "--start", "09:30"]) == 2
    assert "left over from an earlier day" in capsys.readouterr().err


def test_one_shot_with_yesterdays_date_is_refused_even_with_allow_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write(tmp_path, "symbol,weight,date\n600258.SH,0.1,2021-11-30\n")
    assert rebalance(tmp_path, targets, "--allow-stale") == 2
    err = capsys.readouterr().err
    assert "row 2" in err
    assert "field 'date'" in err
    assert journaled_orders(tmp_path) == 0


@pytest.mark.slow
def test_one_shot_with_todays_date_trades(tmp_path: Path) -> None:
    targets = write(tmp_path, "symbol,weight,date\n600258.SH,0.1,2021-12-01\n")
    os.utime(targets, ns=(YESTERDAY_CLOSE - 10**9,) * 2)  # the date decides, not the mtime
    assert rebalance(tmp_path, targets) == 0
    assert journaled_orders(tmp_path) > 0
