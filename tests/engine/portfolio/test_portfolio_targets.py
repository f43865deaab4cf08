"""Targets files (RELIABILITY.md section G): fail closed, every error names file, row, column, value."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from zhixing.engine.errors import InputError
from zhixing.engine.portfolio import targets as targets_mod
from zhixing.engine.portfolio.targets import Target, TargetKind, read_targets


def write(tmp_path: Path, text: str, name: str = "targets.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def rejected(path: Path, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as info:
        read_targets(path, **kwargs)
    message = str(info.value)
    assert str(path) in message  # the file is always named
    return info.value


def assert_names(err: InputError, *, row: int | None, field: str | None, value: str | None) -> None:
    message = str(err)
    if row is not None:
        assert err.row == row
        assert f"row {row}" in message
    if field is not None:
        assert err.field == field
        assert f"field {field!r}" in message
    if value is not None:
        assert value in message


# ---------------------------------------------------------------------------------------------- happy


def test_weights_csv_is_read_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight,name\n600000.SH,0.3,浦发银行\n000001.SZ,0.5,平安银行\n")
    assert read_targets(path) == [
        Target(symbol="600000.SH", kind=TargetKind.WEIGHT, weight=Decimal("0.3")),
        Target(symbol="000001.SZ", kind=TargetKind.WEIGHT, weight=Decimal("0.5")),
    ]


def test_value_in_cny_becomes_milli_yuan(tmp_path: Path) -> None:
    path = write(tmp_path, "code,target_value\n600000.SH,10000.01\n000001.SZ,0\n")
    assert read_targets(path) == [
        Target(symbol="600000.SH", kind=TargetKind.VALUE, value=10_000_010),
        Target(symbol="000001.SZ", kind=TargetKind.VALUE, value=0),
    ]


def test_volume_in_shares(tmp_path: Path) -> None:
    path = write(tmp_path, "Symbol,Volume\n600000.SH,1000\n688001.SH,201.0\n")
    assert read_targets(path) == [
        Target(symbol="600000.SH", kind=TargetKind.VOLUME, volume=1000),
        Target(symbol="688001.SH", kind=TargetKind.VOLUME, volume=201),
    ]


def test_gm_spelling_is_accepted_and_canonicalised(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\nSHSE.600000,0.5\nszse.000001,0.5\n")
    assert [t.symbol for t in read_targets(path)] == ["600000.SH", "000001.SZ"]


def test_leading_zeros_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,volume\n000001.SZ,100\n002594.SZ,100\n")
    assert [t.symbol for t in read_targets(path)] == ["000001.SZ", "002594.SZ"]


def test_tab_separated_txt(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol\tweight\n600000.SH\t0.25\n", name="targets.txt")
    assert read_targets(path) == [Target(symbol="600000.SH", kind=TargetKind.WEIGHT, weight=Decimal("0.25"))]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffsymbol,weight,name\n600000.SH,0.5,浦发银行\n")
    assert [t.symbol for t in read_targets(path)] == ["600000.SH"]
    assert [t.symbol for t in read_targets(path, encoding="utf-8")] == ["600000.SH"]


def test_gbk_file_accepted_with_declared_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight,名称\n600000.SH,0.5,浦发银行\n", encoding="gbk")
    assert [t.symbol for t in read_targets(path, encoding="gbk")] == ["600000.SH"]


def test_gbk_file_rejected_with_hint_otherwise(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight,名称\n600000.SH,0.5,浦发银行\n", encoding="gbk")
    err = rejected(path)
    assert "looks like GBK? pass encoding='gbk'" in str(err)


def test_unknown_encoding_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.5\n")
    assert "unknown encoding" in str(rejected(path, encoding="no-such-codec"))


def test_normalize_scales_weights_to_one(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,3\n000001.SZ,1\n")
    got = read_targets(path, normalize=True)
    assert [t.weight for t in got] == [Decimal("0.75"), Decimal("0.25")]


def test_normalize_scales_up_a_partial_book(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.2\n000001.SZ,0.2\n")
    assert [t.weight for t in read_targets(path, normalize=True)] == [Decimal("0.5"), Decimal("0.5")]


def test_normalize_keeps_a_zero_sum_at_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0\n000001.SZ,0\n")
    assert [t.weight for t in read_targets(path, normalize=True)] == [Decimal(0), Decimal(0)]


def test_weights_within_tolerance_pass(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.5000005\n000001.SZ,0.5\n")
    assert len(read_targets(path)) == 2


def test_aggregate_sums_duplicates_across_spellings(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,volume\n600000.SH,100\n000001.SZ,200\nSHSE.600000,300\n")
    assert read_targets(path, aggregate=True) == [
        Target(symbol="600000.SH", kind=TargetKind.VOLUME, volume=400),
        Target(symbol="000001.SZ", kind=TargetKind.VOLUME, volume=200),
    ]


def test_aggregate_then_weight_sum_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.6\n600000.SH,0.6\n")
    err = rejected(path, aggregate=True)
    assert_names(err, row=None, field="weight", value="1.2")


@pytest.mark.parametrize("wrapped", [False, True])
def test_json_both_shapes(tmp_path: Path, wrapped: bool) -> None:
    records = [{"symbol": "000001.SZ", "weight": 0.1}, {"symbol": "SHSE.600000", "weight": "0.2"}]
    doc: object = {"targets": records} if wrapped else records
    path = write(tmp_path, json.dumps(doc), name="t.json")
    assert read_targets(path) == [
        Target(symbol="000001.SZ", kind=TargetKind.WEIGHT, weight=Decimal("0.1")),
        Target(symbol="600000.SH", kind=TargetKind.WEIGHT, weight=Decimal("0.2")),
    ]


def test_json_numeric_code_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"symbol": "600000.SH", "volume": 100}, {"symbol": 1, "volume": 100}]', "t.json")
    assert_names(rejected(path), row=2, field="symbol", value="1")


def test_json_nan_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"symbol": "600000.SH", "weight": NaN}]', "t.json")
    assert_names(rejected(path), row=1, field="weight", value="NaN")


def test_json_wrong_shape_is_rejected(tmp_path: Path) -> None:
    assert "list of objects" in str(rejected(write(tmp_path, '{"rows": []}', "t.json")))
    assert "empty list" in str(rejected(write(tmp_path, "[]", "u.json")))
    assert "not valid JSON" in str(rejected(write(tmp_path, "[{", "v.json")))
    assert_names(rejected(write(tmp_path, '[["600000.SH", 1]]', "w.json")), row=1, field=None, value=None)


# ---------------------------------------------------------------------------------- failing closed


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
def test_nan_or_inf_is_rejected(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"symbol,weight\n600000.SH,0.1\n000001.SZ,{value}\n")
    assert_names(rejected(path), row=3, field="weight", value=repr(value))


def test_empty_value_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,\n")
    err = rejected(path)
    assert_names(err, row=2, field="weight", value=None)
    assert "empty" in str(err)


def test_truncated_row_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.1\n000001.SZ")
    assert_names(rejected(path), row=3, field="weight", value=None)


def test_non_numeric_value_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,value\n600000.SH,一万\n")
    assert_names(rejected(path), row=2, field="value", value="'一万'")


@pytest.mark.parametrize(("column", "value"), [("weight", "-0.1"), ("value", "-100"), ("volume", "-100")])
def test_negative_target_is_rejected(tmp_path: Path, column: str, value: str) -> None:
    path = write(tmp_path, f"symbol,{column}\n600000.SH,{value}\n")
    err = rejected(path)
    assert_names(err, row=2, field=column, value=repr(value))
    assert "negative" in str(err)


def test_weights_summing_above_one_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.6\n000001.SZ,0.5\n")
    err = rejected(path)
    assert_names(err, row=None, field="weight", value="1.1")
    assert "normalize=True" in str(err)


def test_fractional_volume_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,volume\n600000.SH,100.5\n")
    err = rejected(path)
    assert_names(err, row=2, field="volume", value="'100.5'")
    assert "whole number" in str(err)


def test_duplicate_symbol_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,0.1\n000001.SZ,0.1\nSHSE.600000,0.1\n")
    err = rejected(path)
    assert_names(err, row=4, field="symbol", value="'SHSE.600000'")
    assert "first at row 2" in str(err)
    assert "aggregate=True" in str(err)


@pytest.mark.parametrize(
    "code",
    [
        "600000.XX",  # wrong suffix
        "60000.SH",  # five digits
        "600000",  # no suffix
        "000001",  # no suffix, zeros kept but exchange still unknown
        "1",  # int-looking code that lost its zeros
        "1.SZ",
        "000300.SH",  # an index: instrument_for refuses it
        "900901.SH",  # B share: no trading rules
    ],
)
def test_bad_symbol_is_rejected(tmp_path: Path, code: str) -> None:
    path = write(tmp_path, f"symbol,weight\n600000.SH,0.1\n{code},0.1\n")
    assert_names(rejected(path), row=3, field="symbol", value=repr(code))


def test_empty_symbol_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n,0.1\n")
    assert "empty symbol" in str(rejected(path))


def test_every_bad_symbol_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n1,0.1\n600000.SH,0.1\n000300.SH,0.1\nABC,0.1\n")
    err = rejected(path)
    assert_names(err, row=2, field="symbol", value="'1'")
    message = str(err)
    for row, code in ((4, "000300.SH"), (5, "ABC")):
        assert f"row {row}, field 'symbol'" in message
        assert repr(code) in message


def test_symbol_and_value_problems_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,weight\n600000.SH,abc\n1,0.1\n")
    message = str(rejected(path))
    assert "'abc'" in message
    assert "'1'" in message


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    assert "empty file" in str(rejected(write(tmp_path, "")))
    assert "empty file" in str(rejected(write(tmp_path, "\ufeff\n\n", name="b.csv")))


def test_header_only_is_rejected(tmp_path: Path) -> None:
    assert "header only" in str(rejected(write(tmp_path, "symbol,weight\n")))


def test_missing_symbol_column_is_rejected(tmp_path: Path) -> None:
    err = rejected(write(tmp_path, "ticker,weight\n600000.SH,0.1\n"))
    assert "missing column 'symbol'" in str(err)
    assert "ticker" in str(err)


def test_no_target_column_is_rejected(tmp_path: Path) -> None:
    assert "no target column" in str(rejected(write(tmp_path, "symbol,qty\n600000.SH,100\n")))


def test_mixed_kinds_are_rejected(tmp_path: Path) -> None:
    err = rejected(write(tmp_path, "symbol,weight,target_volume\n600000.SH,0.1,100\n"))
    assert "mixes target kinds" in str(err)
    assert "weight" in str(err)
    assert "target_volume" in str(err)


def test_mixed_kinds_in_json_are_rejected(tmp_path: Path) -> None:
    doc = [{"symbol": "600000.SH", "weight": 0.1}, {"symbol": "000001.SZ", "value": 1000}]
    assert "mixes target kinds" in str(rejected(write(tmp_path, json.dumps(doc), "t.json")))


def test_alias_and_name_together_are_rejected(tmp_path: Path) -> None:
    assert "keep one" in str(rejected(write(tmp_path, "symbol,weight,target_weight\n600000.SH,0.1,0.1\n")))
    assert "keep one" in str(
        rejected(write(tmp_path, "symbol,code,weight\n600000.SH,600000.SH,0.1\n", "b.csv"))
    )


def test_too_many_rows_are_rejected(tmp_path: Path) -> None:
    body = "".join(f"{600000 + i}.SH,1\n" for i in range(4))
    err = rejected(write(tmp_path, "symbol,volume\n" + body), max_rows=3)
    assert "more than 3" in str(err)


def test_too_many_bytes_are_rejected(tmp_path: Path) -> None:
    err = rejected(write(tmp_path, "symbol,volume\n600000.SH,100\n"), max_bytes=10)
    assert "more than the limit of 10" in str(err)


def test_extra_values_are_rejected(tmp_path: Path) -> None:
    assert_names(
        rejected(write(tmp_path, "symbol,weight\n600000.SH,0.1,oops\n")), row=2, field=None, value="oops"
    )


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    assert "file not found" in str(rejected(tmp_path / "nope.csv"))
    assert "unsupported file type" in str(rejected(write(tmp_path, "x", name="t.xlsx")))


# ---------------------------------------------------------------------------------------------- parquet


def test_parquet_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"symbol": ["000001.SZ", "SHSE.600000"], "value": [1000.5, 2000.0]}).to_parquet(path)
    assert read_targets(path) == [
        Target(symbol="000001.SZ", kind=TargetKind.VALUE, value=1_000_500),
        Target(symbol="600000.SH", kind=TargetKind.VALUE, value=2_000_000),
    ]


def test_parquet_integer_codes_are_rejected(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"symbol": [1, 600000], "volume": [100, 100]}).to_parquet(path)
    err = rejected(path)
    assert_names(err, row=1, field="symbol", value="1")
    assert "600000" in str(err)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets_mod, "_pyarrow_available", lambda: False)
    path = write(tmp_path, "PAR1", name="t.parquet")
    assert "pip install pyarrow" in str(rejected(path))


def test_parquet_frame_checks_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records-to-rows path (typed cells: int codes, float NaN, None) checked with a stub reader."""
    records = [
        (1, {"Symbol": "600000.SH", "weight": 0.1}),
        (2, {"Symbol": 1, "weight": float("nan")}),  # 1: an int code, zeros lost
        (3, {"Symbol": None, "weight": 0.1}),
    ]
    monkeypatch.setattr(targets_mod, "_pyarrow_available", lambda: True)
    monkeypatch.setattr(
        targets_mod, "parquet_records", lambda path, data, limits, pick: (["Symbol", "weight"], records)
    )
    err = rejected(write(tmp_path, "PAR1", name="t.parquet"))
    assert_names(err, row=2, field="symbol", value="1")
    message = str(err)
    assert "stored as a number" in message
    assert "row 2, field 'weight': not a finite number: nan" in message
    assert "row 3, field 'symbol': empty symbol" in message
