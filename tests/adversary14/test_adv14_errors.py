"""Adversary, issue 14 item 4: user input must end in ``zhixing: error: ...`` (exit 2) naming the file,
row, field or flag, never a traceback (exit 70) and never an error about a temporary journal.

docs/OPERATIONS.md, Reporting a bug: "What is yours to fix (a bad config key, an unreadable orders file,
a parameter out of range ...) is one line, `zhixing: error: ...`, naming the file, row, key or value,
and exit code 2."
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zhixing.engine.cli import main

DATA = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"


def _replay(tmp_path: Path, orders: str, *extra: str) -> list[str]:
    path = tmp_path / "orders.csv"
    path.write_text(orders, encoding="utf-8")
    return ["replay", "--data", str(DATA), "--orders", str(path), "--end", "09:40", *extra]


@pytest.mark.parametrize(
    ("name", "orders", "extra", "names"),
    [
        # a finite limit price that overflows the milli-yuan conversion: decimal.InvalidOperation, exit 70
        (
            "limit_price_1e300",
            "symbol,side,quantity,limit_price\n600566.SH,buy,100,1e300\n",
            (),
            "limit_price",
        ),
        # a quantity beyond SQLite's INTEGER: the error names the temp journal, not the orders file/row/field
        ("quantity_huge", "symbol,side,quantity\n600566.SH,buy,99999999999999999999999\n", (), "quantity"),
        # --cash 1e300: decimal.InvalidOperation, exit 70
        ("cash_1e300", "symbol,side,quantity\n600566.SH,buy,100\n", ("--cash", "1e300"), "cash"),
        # --latency-ms beyond a C int: OverflowError in a timestamp, exit 70
        (
            "latency_huge",
            "symbol,side,quantity\n600566.SH,buy,100\n",
            ("--latency-ms", "99999999999999999999"),
            "latency",
        ),
    ],
)
def test_was_replay_input_crashes_or_names_the_wrong_thing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    orders: str,
    extra: tuple[str, ...],
    names: str,
) -> None:
    code = main(_replay(tmp_path, orders, *extra))
    err = capsys.readouterr().err
    assert code == 2, f"{name}: exit {code}\n{err[-600:]}"
    assert names in err, f"{name}: the error does not name {names!r}: {err!r}"
    assert "replay.db" not in err, f"{name}: the error is about the temporary journal: {err!r}"


@pytest.mark.parametrize("quantity", ["1e400", "99999999999999999999999"])
def test_was_positions_quantity_huge_reported_as_journal_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quantity: str
) -> None:
    """``--positions`` with a quantity beyond SQLite INTEGER (``1e400`` is even taken as a number): the
    error is "replay.db: journal commit failed", not the positions file, row 2, field 'quantity'."""
    positions = tmp_path / "positions.csv"
    positions.write_text(f"symbol,quantity\n600566.SH,{quantity}\n", encoding="utf-8")
    code = main(
        _replay(tmp_path, "symbol,side,quantity\n600566.SH,sell,100\n", "--positions", str(positions))
    )
    err = capsys.readouterr().err
    assert code == 2, err[-600:]
    assert str(positions) in err, f"the error does not name the positions file: {err!r}"


def test_was_latency_error_names_an_internal_field_not_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--latency-ms -5`` -> "latency_ns: must be >= 0, got -5000000": not the flag nor the value typed."""
    code = main(_replay(tmp_path, "symbol,side,quantity\n600566.SH,buy,100\n", "--latency-ms", "-5"))
    err = capsys.readouterr().err
    assert code == 2
    assert "latency-ms" in err, err
    assert "-5000000" not in err, err
