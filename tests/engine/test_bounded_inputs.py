"""Every input file is bounded before it is loaded, and a parser's failure is an ``InputError`` naming the
file (row and field where known): hostile and broken files of every kind zhixing reads.

Bounded means refused before the expensive part: a Parquet bomb (20 M rows in 160 KB) from its footer
alone, with every row reader of pyarrow patched to fail if it is called and the allocations measured;
an oversized file before a byte of it is read; an endless CSV at its first row past the bound.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.format import EXECUTION_REPORT_HEADER, Row
from zhixing.adapters.fileorder.reader import read_snapshot
from zhixing.adapters.fileorder.tail import MAX_LINE_BYTES, TailFile
from zhixing.algos.profile import load_profile
from zhixing.engine.cli import main
from zhixing.engine.config import load_config
from zhixing.engine.errors import ConfigError, InputError
from zhixing.engine.input_limits import TARGETS, csv_records
from zhixing.engine.inputs import read_orders_file, read_positions_file
from zhixing.engine.market.holidays import read_holidays
from zhixing.engine.portfolio.targets import read_targets

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def refused(call: object, *args: object, **kwargs: object) -> InputError:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return caught.value


# ---------------------------------------------------------------------------------------- Parquet
def parquet_bomb(path: Path, *, groups: int = 20, rows: int = 1_000_000) -> Path:
    """``groups * rows`` rows of one symbol and weight 0: run-length encoded, a few hundred KB."""
    import numpy as np

    symbols = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["600000.SH"])
    )
    table = pa.table({"symbol": symbols, "weight": pa.array(np.zeros(rows))})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(groups):
            writer.write_table(table)
    return path


def no_row_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to decode rows fails the test: only the footer may be read."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("rows were read from a file the footer already refuses")

    for name in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, name, forbidden)
    monkeypatch.setattr(pq, "read_table", forbidden)
    import pandas as pd

    monkeypatch.setattr(pd, "read_parquet", forbidden)


def test_a_parquet_bomb_is_refused_from_its_footer_without_decoding_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = parquet_bomb(tmp_path / "targets.parquet")
    assert bomb.stat().st_size < 1_000_000  # tiny on disk, 20,000,000 rows inside
    no_row_reading(monkeypatch)
    tracemalloc.start()
    try:
        err = refused(read_targets, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "20,000,000 rows (from the file's metadata), more than the 10,000" in str(err)
    assert err.path == str(bomb)
    assert peak < 5_000_000  # the old reader took 826 MB for this file before refusing it


def test_a_dictionary_bomb_one_long_string_in_every_row_is_refused_before_it_is_expanded(
    tmp_path: Path,
) -> None:
    import numpy as np

    rows = 10_000  # within the row bound: expanded, 10,000 copies of 1 MB would be 10 GB
    symbols = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["6" * 1_000_000])
    )
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"symbol": symbols, "weight": pa.array(np.zeros(rows))}), path)
    tracemalloc.start()
    try:
        err = refused(read_targets, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "a cell of 1,000,000 bytes" in str(err)
    assert err.field == "symbol"
    assert peak < 20_000_000
    assert pa.total_allocated_bytes() < 100_000_000


def test_a_parquet_column_nobody_asked_for_is_never_decoded(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"symbol": ["600000.SH"], "weight": [0.5], "notes": ["x" * 100_000]}), path
    )  # a long cell, but in a column a target is not made of
    assert [t.symbol for t in read_targets(path)] == ["600000.SH"]


@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.json"])
def test_binary_garbage_is_an_input_error_naming_the_file(tmp_path: Path, name: str) -> None:
    garbage = bytes(range(256)) * 64 + b"PAR1"
    path = write(tmp_path, name, garbage)
    err = refused(read_targets, path)
    assert err.path == str(path)
    assert any(w in str(err) for w in ("not a readable Parquet file", "NUL byte", "not UTF-8"))


def test_a_truncated_parquet_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"symbol": ["600000.SH"] * 100, "weight": [0.001] * 100}), path)
    path.write_bytes(path.read_bytes()[:-20])  # the footer cut
    assert "not a readable Parquet file" in str(refused(read_targets, path))


# ---------------------------------------------------------------------------------------- CSV
def test_a_huge_csv_cell_names_the_file_row_and_field(tmp_path: Path) -> None:
    """Past the csv module's own field limit (131,072): that used to end in a csv.Error traceback."""
    path = write(
        tmp_path, "t.csv", "symbol,weight,comment\n600000.SH,0.1,ok\n600036.SH,0.1," + "x" * 300_000 + "\n"
    )
    err = refused(read_targets, path)
    assert (err.path, err.row, err.field) == (str(path), 3, "comment")
    assert "a cell of 300,000 characters" in str(err)


def test_a_cell_over_the_bound_but_under_csvs_limit_is_refused_too(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "symbol,weight\n" + "6" * (TARGETS.max_cell + 1) + ",0.1\n")
    err = refused(read_targets, path)
    assert (err.row, err.field) == (2, "symbol")


def test_an_unclosed_quote_running_to_the_end_of_a_huge_file_is_one_cell_and_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", 'symbol,weight\n600000.SH,"0.1\n' + "600000.SH,0.1\n" * 50_000)
    err = refused(read_targets, path)
    assert err.row is not None
    assert err.field == "weight"


def test_too_many_rows_stop_the_parse_at_the_first_row_past_the_bound(tmp_path: Path) -> None:
    rows = "".join(f"{600000 + i % 1000:06d}.SH,1\n" for i in range(TARGETS.max_rows + 1))
    # what follows the bound is never parsed: a malformed row there is not what is reported
    path = write(tmp_path, "t.csv", "symbol,volume\n" + rows + '"unclosed,' + "x" * 200_000 + "\n")
    err = refused(read_targets, path)
    assert err.row == TARGETS.max_rows + 2
    assert f"more than {TARGETS.max_rows:,} data rows" in str(err)


def test_a_file_over_the_size_bound_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    with path.open("wb") as handle:  # a sparse file: 60 MB by its size, nothing written
        handle.truncate(TARGETS.max_bytes + 10_000_000)
    real_open = open

    def guarded_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if str(file) == str(path):
            raise AssertionError("an oversized file was opened for reading")
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", guarded_open)
    err = refused(read_targets, path)
    assert "more than the limit of 50,000,000" in str(err)


def test_csv_records_restores_the_process_wide_field_limit(tmp_path: Path) -> None:
    import csv

    before = csv.field_size_limit()
    list(
        csv_records(
            tmp_path / "t.csv",
            "a,b\n" + "x" * 200_000 + ",1\n",
            dataclasses.replace(TARGETS, max_cell=300_000),
        )
    )
    assert csv.field_size_limit() == before


# ---------------------------------------------------------------------------------------- JSON
def test_json_nested_too_deeply_is_an_input_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json", "[" * 200_000 + "]" * 200_000)
    err = refused(read_targets, path)
    assert "nested too deeply" in str(err)
    assert err.path == str(path)


def test_json_with_a_number_of_a_million_digits_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json", '[{"symbol": "600000.SH", "volume": ' + "9" * 1_000_000 + "}]")
    err = refused(read_targets, path)
    assert err.path == str(path)


def test_a_json_string_over_the_cell_bound_names_row_and_field(tmp_path: Path) -> None:
    doc = [{"symbol": "600000.SH", "weight": 0.1}, {"symbol": "6" * 10_000, "weight": 0.1}]
    err = refused(read_targets, write(tmp_path, "t.json", json.dumps(doc)))
    assert (err.row, err.field) == (2, "symbol")


# ---------------------------------------------------------------------------------------- the other inputs
def test_orders_and_positions_files_are_bounded_and_name_file_row_field(tmp_path: Path) -> None:
    orders = write(
        tmp_path, "orders.csv", "symbol,side,quantity,note\n600000.SH,buy,100," + "x" * 200_000 + "\n"
    )
    err = refused(read_orders_file, orders)
    assert (err.path, err.row, err.field) == (str(orders), 2, "note")
    positions = write(tmp_path, "positions.csv", b"symbol,quantity\n600000.SH,100\n\x00\x01\x02\xff")
    err = refused(read_positions_file, positions)
    assert (err.path, err.row) == (str(positions), 3)
    assert "NUL byte" in str(err)


def test_replay_with_a_garbage_orders_file_exits_2_with_the_file_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = write(tmp_path, "orders.csv", os.urandom(4096) + b"\x00")
    data = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
    assert main(["replay", "--data", str(data), "--orders", str(orders)]) == 2
    err = capsys.readouterr().err
    assert f"zhixing: error: {orders}" in err
    assert "Traceback" not in err


def test_a_holidays_file_with_an_endless_line_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "holidays.csv", "date,name\n2027-02-08,春节\n2027-02-09," + '"' + "x" * 200_000 + "\n"
    )
    err = refused(read_holidays, path)
    assert (err.path, err.row) == (str(path), 3)


def test_a_config_nested_too_deeply_or_too_large_is_a_config_error(tmp_path: Path) -> None:
    deep = write(tmp_path, "deep.toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.toml"):
        load_config(deep)
    large = tmp_path / "large.toml"
    with large.open("wb") as handle:
        handle.truncate(5 << 20)
    with pytest.raises(ConfigError, match="more than the limit of 1,048,576"):
        load_config(large)
    binary = write(tmp_path, "binary.toml", b'[account]\nid = "\x00\x9f\x92"\n')
    with pytest.raises(ConfigError, match=r"binary.toml, row 2: contains a NUL byte"):
        load_config(binary)


def test_a_volume_profile_that_is_not_utf8_or_nested_too_deeply_names_the_file(tmp_path: Path) -> None:
    gbk = write(tmp_path, "p.json", '{"schema": "量"}'.encode("gbk"))
    err = refused(load_profile, gbk)
    assert err.path == str(gbk)
    assert "not UTF-8" in str(err)
    deep = write(tmp_path, "deep.json", '{"a":' * 100_000 + "1" + "}" * 100_000)
    assert "nested too deeply" in str(refused(load_profile, deep))


# ---------------------------------------------------------------------------------------- the file route
def exec_line(exec_id: str, detail: str = "") -> bytes:
    values = dict.fromkeys(EXECUTION_REPORT_HEADER, "")
    values.update({"sid": "Z1", "exec_id": exec_id, "symbol": "SHSE.600000", "volume": "100"})
    values["ord_rej_reason_detail(rej_detail)"] = detail
    return (",".join(values[k] for k in EXECUTION_REPORT_HEADER) + "\r\n").encode("utf-8")


HEADER_LINE = (",".join(EXECUTION_REPORT_HEADER) + "\r\n").encode("utf-8")


def exec_ids(rows: list[tuple[int, Row]]) -> list[str]:
    return [row.get("exec_id") for _, row in rows]


def test_a_terminal_line_longer_than_any_row_is_skipped_and_the_rows_after_it_are_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "execution_report.csv"
    tail = TailFile(path, max_read=1 << 20)
    path.write_bytes(HEADER_LINE + exec_line("E1") + b"A" * (3 << 20))  # 3 MB, no line break yet
    assert exec_ids(tail.poll()) == ["E1"]
    for _ in range(4):  # consumed unparsed, a bounded amount a poll
        assert tail.poll() == []
    with path.open("ab") as handle:
        handle.write(b"\r\n" + exec_line("E2") + exec_line("E3"))
    seen = exec_ids(tail.poll()) + exec_ids(tail.poll())
    assert seen == ["E2", "E3"]
    assert tail.stats.long_lines == 1
    assert tail.offset == path.stat().st_size


def test_a_terminal_cell_past_csvs_field_limit_skips_that_row_only(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_bytes(HEADER_LINE + exec_line("E1") + exec_line("E2", "x" * 200_000) + exec_line("E3"))
    tail = TailFile(path)
    assert exec_ids(tail.poll()) == ["E1", "E3"]
    assert tail.stats.bad_lines == 1
    assert MAX_LINE_BYTES >= 200_000


def test_a_terminal_snapshot_over_its_bound_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "position.csv"
    path.write_bytes(b"symbol,volume\r\nSHSE.600000,100\r\n" + b"x" * 2_000 + b"\r\n")
    assert read_snapshot(path, max_bytes=1_000) is None
    rows = read_snapshot(path, max_bytes=10_000)
    assert rows is not None
    assert len(rows) == 2


def test_bounds_keep_legit_files_working(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "\ufeffsymbol,weight\r\n600000.SH,0.5\r\n\r\n000001.SZ,0.25\r\n")
    assert [t.symbol for t in read_targets(path)] == ["600000.SH", "000001.SZ"]
    buffer = io.BytesIO()
    pq.write_table(pa.table({"Symbol": ["600000.SH"], "weight": [0.5], "date": ["2021-12-01"]}), buffer)
    assert [t.symbol for t in read_targets(write(tmp_path, "t.parquet", buffer.getvalue()))] == ["600000.SH"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "symbol,market_cap\n600103.SH,3.2e9\n600566.SH," + "9" * 200_000 + "\n",
            "row 3, field 'market_cap'",
        ),
        ("symbol,名称\n600103.SH,浦发\n".encode("gbk"), "not UTF-8 text"),
        (b"symbol,market_cap\n600103.SH,\x00\x00\n", "NUL byte"),
    ],
)
def test_a_sell_where_reference_table_is_bounded_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str
) -> None:
    from tests.engine.cli.test_portfolio_cli import COMMON

    ref = write(tmp_path, "ref.csv", content)
    db = tmp_path / "never.db"
    assert main(["sell-where", "market_cap < 5e9", "--ref", str(ref), *COMMON, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"zhixing: error: {ref}" in err
    assert message in err
    assert not db.exists()
