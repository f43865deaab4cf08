"""``zhixing replay`` orders CSV: an optional ``order_type`` column (limit, b5tc, b5tl, boc, bop, fak,
fok) makes each parent's scheduled children orders of that kind; a bad name is an InputError naming
the file, row and column."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from zhixing import replay
from zhixing.engine.cli import main

DATA = Path(replay.__file__).parent / "sample_data" / "snapshots_20220601"


def test_children_carry_the_kind_of_their_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "symbol,side,quantity,algo,order_type\n300122.SZ,buy,2000,twap,boc\n000400.SZ,buy,2000,twap,\n",
        encoding="utf-8",
    )
    db = tmp_path / "j.db"
    argv = ["replay", "--data", str(DATA), "--orders", str(orders), "--start", "10:00", "--end", "10:10"]
    assert main([*argv, "--db", str(db)]) == 0
    capsys.readouterr()
    conn = sqlite3.connect(db)
    try:
        kinds = dict(
            conn.execute("SELECT DISTINCT symbol, order_type FROM orders ORDER BY symbol").fetchall()
        )
        filled = conn.execute("SELECT SUM(filled_quantity) FROM orders WHERE symbol = '300122.SZ'").fetchone()
    finally:
        conn.close()
    assert kinds == {"000400.SZ": "LIMIT", "300122.SZ": "BOC"}
    assert filled == (2000,)


def test_an_unknown_kind_names_the_row_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("symbol,side,quantity,order_type\n000400.SZ,buy,2000,market\n", encoding="utf-8")
    assert main(["replay", "--data", str(DATA), "--orders", str(orders)]) != 0
    err = capsys.readouterr().err
    assert "unknown order_type 'market'" in err
    assert "row 2" in err
    assert "order_type" in err
