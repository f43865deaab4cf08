"""Adversary, issue 14 item 4: a bad targets file or --cash for `zhixing plan` must be exit 2 naming the
file, row and field, never a traceback (exit 70)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhixing.engine.cli import main

DATA = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"


@pytest.mark.parametrize(
    ("targets", "cash"),
    [
        ("symbol,value\n600566.SH,1e300\n", "1000000"),  # decimal.InvalidOperation, exit 70
        ("symbol,value\n600566.SH,1e400\n", "1000000"),  # decimal.InvalidOperation, exit 70
        ("symbol,weight\n600566.SH,0.1\n", "1e300"),  # --cash 1e300: decimal.InvalidOperation, exit 70
    ],
)
def test_was_plan_crashes_on_huge_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], targets: str, cash: str
) -> None:
    path = tmp_path / "targets.csv"
    path.write_text(targets, encoding="utf-8")
    code = main(["plan", str(path), "--replay-data", str(DATA), "--cash", cash, "--allow-stale"])
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err[-500:]}"
