"""Snapshot loading: real sample files give the values ``zcat`` shows, as integers; bad input is named."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from zhixing import replay
from zhixing.engine.errors import InputError
from zhixing.replay.data import SymbolDay, clone_symbol_day, load_snapshot_file, load_snapshots

SAMPLE = Path(replay.__file__).parent / "sample_data"
DAY_20220601 = SAMPLE / "snapshots_20220601"
FILE_000400 = DAY_20220601 / "000400.SZ_20220601.csv.gz"
FILE_600103 = SAMPLE / "snapshots_20211201" / "600103.SH_20211201_0915-1030.csv.gz"
with gzip.open(FILE_000400, "rt") as _handle:
    HEADER = _handle.readline().strip().split(",")
NS = 1_000_000_000


def utc_ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * NS


def snapshot_row(ts: str = "09:30:00", **values: str) -> dict[str, str]:
    """One valid row of a made-up stock on 2022-06-01; ``values`` override fields."""
    row = {name: "0" for name in HEADER}
    row |= {
        "symbol": "000400.SZ",
        "trade_date": "2022-06-01",
        "ts": f"2022-06-01T{ts}.000+08:00",
        "phase": "3",
        "prev_close": "10.00",
        "last": "10.01",
        "cum_volume": "100",
        "cum_amount": "1001.0",
        "high_limit": "11.00",
        "low_limit": "9.00",
        "bid_px1": "10.00",
        "bid_qty1": "500",
        "ask_px1": "10.02",
        "ask_qty1": "300",
        "source_format": "test",
    }
    return row | values


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = HEADER) -> Path:
    lines = [",".join(columns)] + [",".join(row.get(c, "0") for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_full_day_file_first_row_in_integer_units() -> None:
    # zcat | sed -n 2p: 000400.SZ,2022-06-01,2022-06-01T09:15:00.000+08:00,1,19.38,...,
    #                   21.32,17.44,19.99,6000,...
    day = load_snapshot_file(FILE_000400)
    assert day.symbol == "000400.SZ"  # leading zeros kept
    assert day.trade_date == dt.date(2022, 6, 1)
    assert len(day) == 4921
    assert day.ts[0] == utc_ns("2022-06-01T09:15:00+08:00") == 1_654_046_100 * NS
    assert (day.prev_close, day.high_limit, day.low_limit) == (19380, 21320, 17440)
    assert (day.bid_px[0, 0], day.bid_qty[0, 0], day.ask_px[0, 0], day.ask_qty[0, 0]) == (
        19990,
        6000,
        19990,
        6000,
    )
    assert (day.last[0], day.cum_volume[0], day.cum_amount[0]) == (0, 0, 0)
    assert day.phase_codes == ("1", "2", "3", "4", "5", "6")
    assert day.phase_at(0) == "1"
    assert day.levels == 10
    for array in (day.bid_px, day.bid_qty, day.ask_px, day.ask_qty):
        assert array.shape == (4921, 10)
        assert array.dtype == np.int64
    for array in (day.ts, day.last, day.cum_volume, day.cum_amount):
        assert array.shape == (4921,)
        assert array.dtype == np.int64
    assert bool(np.all(np.diff(day.ts) >= 0))
    assert bool(np.all(np.diff(day.cum_volume) >= 0))


def test_continuous_trading_row_matches_the_file() -> None:
    # line 673: ...T10:00:00.000+08:00,3,19.38,19.16,19.66,19.08,19.38,11543580,223143823.49,,21.32,17.44,
    #           19.38,5400,19.36,21500,19.35,34000,...
    day = load_snapshot_file(FILE_000400)
    i = day.index_at(utc_ns("2022-06-01T10:00:00+08:00"))
    assert i == 673 - 2
    assert (day.last[i], day.cum_volume[i], day.cum_amount[i]) == (19380, 11543580, 223_143_823_490)
    assert day.bid_px[i, :3].tolist() == [19380, 19360, 19350]
    assert day.bid_qty[i, :3].tolist() == [5400, 21500, 34000]
    assert day.phase_at(i) == "3"
    assert day.last[-1] == 20630
    assert day.cum_volume[-1] == 64_458_834


def test_sse_file_without_limits_reads_them_as_zero() -> None:
    day = load_snapshot_file(FILE_600103)
    assert day.symbol == "600103.SH"
    assert (day.prev_close, day.high_limit, day.low_limit) == (2720, 0, 0)
    assert day.phase_codes == ("OCALL", "TRADE")
    assert day.ts[0] == utc_ns("2021-12-01T09:15:02+08:00")
    assert (day.bid_px[0, 0], day.bid_qty[0, 0], day.bid_qty[0, 1]) == (2730, 24400, 8100)


def test_folder_of_twenty_sse_symbols_loads_as_one_day() -> None:
    market = load_snapshots(SAMPLE / "snapshots_20211201")
    assert market.trade_date == dt.date(2021, 12, 1)
    assert len(market.symbols) == 20
    assert market.symbols == sorted(market.symbols)
    assert {"600103.SH", "688218.SH", "688233.SH"} <= set(market.symbols)
    assert isinstance(market["600103.SH"], SymbolDay)
    assert "000400.SZ" not in market


def test_symbols_filter_loads_only_those_and_names_missing_ones() -> None:
    market = load_snapshots(DAY_20220601, symbols=["300274.SZ", "000400.SZ"])
    assert market.symbols == ["000400.SZ", "300274.SZ"]
    with pytest.raises(InputError, match=r"symbols not found: 600000\.SH") as info:
        load_snapshots(DAY_20220601, symbols=["000400.SZ", "600000.SH"])
    assert info.value.path == str(DAY_20220601)


def test_index_at_edges() -> None:
    day = load_snapshot_file(FILE_000400)
    first, last = int(day.ts[0]), int(day.ts[-1])
    assert day.index_at(first - 1) == -1
    assert day.index_at(first) == 0
    assert day.index_at(first + 1) == 0
    assert day.index_at(int(day.ts[1]) - 1) == 0
    assert day.index_at(int(day.ts[1])) == 1
    assert day.index_at(last) == len(day) - 1
    assert day.index_at(last + 10**15) == len(day) - 1


def test_index_at_duplicate_timestamps_picks_the_last_of_the_ties(tmp_path: Path) -> None:
    rows = [
        snapshot_row("09:30:00"),
        snapshot_row("09:30:03", cum_volume="200", cum_amount="2002.0"),
        snapshot_row("09:30:03", cum_volume="300", cum_amount="3003.0"),
    ]
    day = load_snapshot_file(write_csv(tmp_path / "dup.csv", rows))
    assert day.index_at(utc_ns("2022-06-01T09:30:03+08:00")) == 2
    assert day.index_at(utc_ns("2022-06-01T09:30:02+08:00")) == 0


def test_vwap_between_matches_hand_computation() -> None:
    day = load_snapshot_file(FILE_000400)
    # lines 673 (10:00:00) and 773 (10:05:00): cum_amount 223143823.49 -> 234274825.89 CNY,
    # cum_volume 11543580 -> 12115716 shares.
    expected = (234_274_825_890 - 223_143_823_490) / (12_115_716 - 11_543_580)
    vwap = day.vwap_between(utc_ns("2022-06-01T10:00:00+08:00"), utc_ns("2022-06-01T10:05:00+08:00"))
    assert vwap == expected
    assert vwap == pytest.approx(19455.1687, abs=1e-4)  # 19.4552 yuan


def test_vwap_between_is_none_without_volume_and_rejects_reversed_interval() -> None:
    day = load_snapshot_file(FILE_000400)
    assert day.vwap_between(utc_ns("2022-06-01T09:15:00+08:00"), utc_ns("2022-06-01T09:20:00+08:00")) is None
    assert day.vwap_between(int(day.ts[0]) - 2, int(day.ts[0]) - 1) is None
    after_close = utc_ns("2022-06-01T15:01:30+08:00")
    assert day.vwap_between(after_close, after_close + NS) is None
    with pytest.raises(ValueError, match="before"):
        day.vwap_between(utc_ns("2022-06-01T10:05:00+08:00"), utc_ns("2022-06-01T10:00:00+08:00"))


def test_vwap_from_before_the_first_snapshot_counts_from_zero(tmp_path: Path) -> None:
    rows = [snapshot_row("09:30:00"), snapshot_row("09:30:03", cum_volume="300", cum_amount="3010.0")]
    day = load_snapshot_file(write_csv(tmp_path / "two.csv", rows))
    assert day.vwap_between(0, utc_ns("2022-06-01T09:31:00+08:00")) == 3_010_000 / 300


def test_traded_volume_differences_sum_to_the_day() -> None:
    day = load_snapshot_file(FILE_000400)
    traded = day.traded_volume()
    assert traded.dtype == np.int64
    assert traded[0] == day.cum_volume[0]
    assert int(traded.sum()) == int(day.cum_volume[-1])
    assert bool(np.all(traded >= 0))


def test_clone_shares_read_only_arrays_under_a_new_symbol() -> None:
    day = load_snapshot_file(FILE_600103)
    clone = clone_symbol_day(day, "600999.SH")
    assert (clone.symbol, day.symbol) == ("600999.SH", "600103.SH")
    assert clone.ts is day.ts
    assert clone.bid_px is day.bid_px
    with pytest.raises(ValueError, match="read-only"):
        clone.last[0] = 1


def test_plain_csv_unsorted_rows_are_sorted_stably_and_empty_levels_read_as_zero(tmp_path: Path) -> None:
    rows = [
        snapshot_row("09:30:06", cum_volume="300", cum_amount="3003.0", bid_px2="", bid_qty2=""),
        snapshot_row("09:30:00", phase="2"),
        snapshot_row("09:30:03", cum_volume="200", cum_amount="2002.0", high_limit="", low_limit=""),
    ]
    day = load_snapshot_file(write_csv(tmp_path / "unsorted.csv", rows))
    assert day.cum_volume.tolist() == [100, 200, 300]
    assert day.cum_amount.tolist() == [1_001_000, 2_002_000, 3_003_000]
    assert [day.phase_at(i) for i in range(3)] == ["2", "3", "3"]
    assert (day.bid_px[2, 1], day.bid_qty[2, 1]) == (0, 0)
    assert (day.high_limit, day.low_limit) == (11000, 9000)


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_snapshots(path)
    return info.value


def assert_names(err: InputError, path: Path, row: int | None, field: str | None) -> None:
    assert (err.path, err.row, err.field) == (str(path), row, field)
    assert str(path) in str(err)
    if row is not None:
        assert f"row {row}" in str(err)
    if field is not None:
        assert repr(field) in str(err)


def test_missing_column_is_named(tmp_path: Path) -> None:
    columns = [c for c in HEADER if c != "cum_volume"]
    path = write_csv(tmp_path / "nocol.csv", [snapshot_row()], columns)
    assert_names(error_of(path), path, 1, "cum_volume")


def test_missing_depth_column_is_named(tmp_path: Path) -> None:
    columns = [c for c in HEADER if c != "ask_qty7"]
    path = write_csv(tmp_path / "nodepth.csv", [snapshot_row()], columns)
    assert_names(error_of(path), path, 1, "ask_qty7")


def test_nan_last_names_row_and_field(tmp_path: Path) -> None:
    rows = [snapshot_row("09:30:00"), snapshot_row("09:30:03"), snapshot_row("09:30:06", last="")]
    path = write_csv(tmp_path / "nanlast.csv", rows)
    err = error_of(path)
    assert_names(err, path, 4, "last")
    assert "missing value" in str(err)


def test_non_numeric_cum_volume_names_row_and_field(tmp_path: Path) -> None:
    rows = [snapshot_row("09:30:00"), snapshot_row("09:30:03", cum_volume="12x4")]
    path = write_csv(tmp_path / "text.csv", rows)
    err = error_of(path)
    assert_names(err, path, 3, "cum_volume")
    assert "'12x4'" in str(err)


def test_negative_and_fractional_quantities_are_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "neg.csv", [snapshot_row(), snapshot_row(bid_qty3="-100")])
    assert_names(error_of(path), path, 3, "bid_qty3")
    path = write_csv(tmp_path / "frac.csv", [snapshot_row(cum_volume="100.5")])
    assert_names(error_of(path), path, 2, "cum_volume")


def test_decreasing_cum_volume_is_rejected(tmp_path: Path) -> None:
    rows = [snapshot_row("09:30:00", cum_volume="500"), snapshot_row("09:30:03", cum_volume="400")]
    path = write_csv(tmp_path / "down.csv", rows)
    assert_names(error_of(path), path, 3, "cum_volume")


def test_bad_timestamps_are_rejected(tmp_path: Path) -> None:
    rows = [snapshot_row(), snapshot_row(ts="25:99:00")]
    path = write_csv(tmp_path / "badts.csv", rows)
    assert_names(error_of(path), path, 3, "ts")
    rows = [snapshot_row(), snapshot_row(ts="09:30:03") | {"ts": "2022-06-01T09:30:03"}]
    path = write_csv(tmp_path / "naive.csv", rows)
    assert_names(error_of(path), path, 3, "ts")
    rows = [snapshot_row(), snapshot_row() | {"ts": "2022-06-02T09:30:03.000+08:00"}]
    path = write_csv(tmp_path / "otherday.csv", rows)
    assert_names(error_of(path), path, 3, "ts")


def test_two_symbols_in_one_file_are_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "two.csv", [snapshot_row(), snapshot_row(symbol="000401.SZ")])
    assert_names(error_of(path), path, 3, "symbol")


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    err = error_of(path)
    assert_names(err, path, 1, None)
    assert "empty" in str(err)


def test_header_only_file_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "header.csv", [])
    err = error_of(path)
    assert_names(err, path, 2, None)
    assert "header only" in str(err)


def test_mixed_dates_in_a_folder_name_the_odd_file(tmp_path: Path) -> None:
    shutil.copy(FILE_000400, tmp_path / "a_000400.SZ_20220601.csv.gz")
    row = snapshot_row(symbol="600000.SH", trade_date="2022-06-02") | {"ts": "2022-06-02T09:30:00.000+08:00"}
    odd = write_csv(tmp_path / "b_600000.SH_20220602.csv", [row])
    err = error_of(tmp_path)
    assert_names(err, odd, 2, "trade_date")
    assert "trade_date 2022-06-02 differs from 2022-06-01" in str(err)


def test_same_symbol_twice_in_a_folder_is_rejected(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [snapshot_row()])
    second = write_csv(tmp_path / "b.csv", [snapshot_row()])
    assert_names(error_of(tmp_path), second, 2, "symbol")


def test_missing_path_and_empty_folder_are_rejected(tmp_path: Path) -> None:
    assert "no such file" in str(error_of(tmp_path / "nope"))
    assert "no *.csv" in str(error_of(tmp_path))


def test_header_with_byte_order_mark_loads(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bom.csv", [snapshot_row()])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_snapshot_file(path).symbol == "000400.SZ"
