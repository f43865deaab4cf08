"""1-minute bars: OHLCV and TDX fenshi files normalise to the same session-minute frame."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zhixing import replay
from zhixing.engine.errors import InputError
from zhixing.replay.bars import (
    FENSHI_COLUMNS,
    OHLCV_COLUMNS,
    OUTPUT_COLUMNS,
    load_minute_bars,
    minute_of_session,
)

BARS = Path(replay.__file__).parent / "sample_data" / "bars_1m"
OHLCV = BARS / "000001.SZ_201801_1m.csv.gz"
FENSHI = BARS / "600000.SH_20181203_20190201_fenshi.csv.gz"


def shanghai(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Shanghai")


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def ohlcv_line(end: str, volume: str = "1000", close: str = "13.38", day: str = "2018-01-02") -> str:
    return f"000001.SZ,{day},{day}T{end}:00+08:00,13.35,13.39,13.35,{close},{volume},13380.0"


def test_ohlcv_file_first_bars_and_session_boundaries() -> None:
    # zcat | sed -n 2p: 000001.SZ,2018-01-02,2018-01-02T09:31:00+08:00,13.35,13.39,13.35,13.38,2003635,...
    bars = load_minute_bars(OHLCV)
    assert tuple(bars.columns) == OUTPUT_COLUMNS
    assert len(bars) == 5040
    first = bars.iloc[0]
    assert first["symbol"] == "000001.SZ"
    assert first["trade_date"] == dt.date(2018, 1, 2)
    assert first["bar_end"] == shanghai("2018-01-02 09:31")
    assert (first["minute_of_session"], first["volume"], first["close"]) == (0, 2_003_635, 13380)
    day = bars[bars["trade_date"] == dt.date(2018, 1, 2)]
    assert day["minute_of_session"].tolist() == list(range(240))
    ends = day.set_index("minute_of_session")["bar_end"]
    assert ends[119] == shanghai("2018-01-02 11:30")
    assert ends[120] == shanghai("2018-01-02 13:01")
    assert ends[239] == shanghai("2018-01-02 15:00")
    # the closing auction is in the 15:00 bar; the 14:59 bar traded nothing
    assert day["volume"].tolist()[-2:] == [0, 1_413_900]


def test_fenshi_volume_is_lots_times_100_and_close_auction_stays_in_minute_239() -> None:
    # line 2: 600000.SH,2018-12-03,09:30,2018-12-03T09:31:00+08:00,10.9,22117
    # line 241: 600000.SH,2018-12-03,14:59,2018-12-03T15:00:00+08:00,11.02,1192 (TDX "14:59" = 15:00 auction)
    bars = load_minute_bars(FENSHI)
    assert tuple(bars.columns) == OUTPUT_COLUMNS
    assert len(bars) == 10320
    first = bars.iloc[0]
    assert first["symbol"] == "600000.SH"
    assert first["bar_end"] == shanghai("2018-12-03 09:31")
    assert (first["minute_of_session"], first["volume"], first["close"]) == (0, 22117 * 100, 10900)
    day = bars[bars["trade_date"] == dt.date(2018, 12, 3)]
    assert len(day) == 240
    last = day.iloc[-1]
    assert (last["minute_of_session"], last["volume"], last["close"]) == (239, 1192 * 100, 11020)
    assert last["bar_end"] == shanghai("2018-12-03 15:00")
    assert day["volume"].tolist()[237:239] == [0, 0]  # 14:57-14:59: closing call, no matches
    assert bool((bars["volume"] % 100 == 0).all())


def test_both_schemas_normalise_to_the_same_columns_and_dtypes() -> None:
    ohlcv, fenshi = load_minute_bars(OHLCV), load_minute_bars(FENSHI)
    assert list(ohlcv.columns) == list(fenshi.columns) == list(OUTPUT_COLUMNS)
    assert ohlcv.dtypes.to_dict() == fenshi.dtypes.to_dict()
    for bars in (ohlcv, fenshi):
        assert bars["minute_of_session"].dtype == np.int64
        assert bars["volume"].dtype == np.int64
        assert bars["close"].dtype == np.int64
        assert str(bars["bar_end"].dt.tz) == "Asia/Shanghai"
        assert bars["minute_of_session"].between(0, 239).all()
        assert isinstance(bars["trade_date"].iloc[0], dt.date)


def test_folder_concatenates_in_file_name_order() -> None:
    bars = load_minute_bars(BARS)
    assert len(bars) == 5040 + 10320
    assert bars["symbol"].iloc[0] == "000001.SZ"
    assert bars["symbol"].iloc[-1] == "600000.SH"
    assert bars.index.tolist() == list(range(len(bars)))


@pytest.mark.parametrize(
    ("hhmm", "expected"),
    [
        ("09:25", -1),
        ("09:30", -1),
        ("09:31", 0),
        ("10:30", 59),
        ("11:30", 119),
        ("11:31", -2),
        ("13:00", -2),
        ("13:01", 120),
        ("14:59", 238),
        ("15:00", 239),
        ("15:05", -2),
    ],
)
def test_minute_of_session_maps_bar_ends(hhmm: str, expected: int) -> None:
    hours, minutes = map(int, hhmm.split(":"))
    assert minute_of_session(np.array([hours * 60 + minutes], dtype=np.int64)).tolist() == [expected]


def test_auction_bar_is_folded_into_the_first_minute_and_off_session_bars_dropped(tmp_path: Path) -> None:
    lines = [
        ",".join(OHLCV_COLUMNS),
        ohlcv_line("09:25", volume="500", close="13.30"),
        ohlcv_line("09:31", volume="1000", close="13.38"),
        ohlcv_line("09:32", volume="700"),
        ohlcv_line("12:00", volume="9"),
        ohlcv_line("15:00", volume="300"),
        ohlcv_line("15:05", volume="200"),
    ]
    bars = load_minute_bars(write_csv(tmp_path / "auction.csv", lines))
    assert bars["minute_of_session"].tolist() == [0, 1, 239]
    assert bars["volume"].tolist() == [1500, 700, 300]
    assert bars["close"].iloc[0] == 13380
    assert bars["bar_end"].iloc[0] == shanghai("2018-01-02 09:31")


def test_unsorted_file_is_sorted_by_time(tmp_path: Path) -> None:
    lines = [
        ",".join(OHLCV_COLUMNS),
        ohlcv_line("09:33", "3"),
        ohlcv_line("09:31", "1"),
        ohlcv_line("09:32", "2"),
    ]
    bars = load_minute_bars(write_csv(tmp_path / "unsorted.csv", lines))
    assert bars["volume"].tolist() == [1, 2, 3]


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_minute_bars(path)
    assert str(path) in str(info.value)
    return info.value


def test_unknown_header_names_the_columns_found(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "odd.csv", ["symbol,when,px,qty", "000001.SZ,09:31,1.0,100"])
    err = error_of(path)
    assert "symbol, when, px, qty" in str(err)
    assert err.row == 1


def test_nan_and_text_volume_name_row_and_field(tmp_path: Path) -> None:
    lines = [",".join(OHLCV_COLUMNS), ohlcv_line("09:31"), ohlcv_line("09:32", volume="")]
    err = error_of(write_csv(tmp_path / "nan.csv", lines))
    assert (err.row, err.field) == (3, "volume")
    lines = [",".join(FENSHI_COLUMNS), "600000.SH,2018-12-03,09:30,2018-12-03T09:31:00+08:00,10.9,lots"]
    err = error_of(write_csv(tmp_path / "text.csv", lines))
    assert (err.row, err.field) == (2, "volume_lots")


def test_fenshi_start_label_must_be_one_minute_before_bar_end(tmp_path: Path) -> None:
    lines = [
        ",".join(FENSHI_COLUMNS),
        "600000.SH,2018-12-03,09:30,2018-12-03T09:31:00+08:00,10.9,22117",
        "600000.SH,2018-12-03,09:32,2018-12-03T09:32:00+08:00,10.94,5094",
    ]
    err = error_of(write_csv(tmp_path / "shift.csv", lines))
    assert (err.row, err.field) == (3, "bar_start_raw")


def test_duplicate_bar_and_wrong_day_are_rejected(tmp_path: Path) -> None:
    lines = [",".join(OHLCV_COLUMNS), ohlcv_line("09:31"), ohlcv_line("09:32"), ohlcv_line("09:31")]
    err = error_of(write_csv(tmp_path / "dup.csv", lines))
    assert (err.row, err.field) == (4, "bar_end")
    lines = [",".join(OHLCV_COLUMNS), ohlcv_line("09:31").replace("2018-01-02,", "2018-01-03,")]
    err = error_of(write_csv(tmp_path / "day.csv", lines))
    assert (err.row, err.field) == (2, "bar_end")


def test_empty_and_header_only_files_are_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in str(error_of(empty))
    assert "header only" in str(error_of(write_csv(tmp_path / "header.csv", [",".join(FENSHI_COLUMNS)])))
