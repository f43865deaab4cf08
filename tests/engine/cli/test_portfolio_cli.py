"""The portfolio commands on the simulated exchange over real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhixing.engine.cli import main

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data"
COMMON = [
    "--replay-data", str(SAMPLE / "snapshots_20211201"), "--positions", str(SAMPLE / "demo_positions.csv"),
    "--start", "09:30", "--end", "10:15",
]  # fmt: skip


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def executed(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run([*args, *COMMON, "--json"], capsys)
    assert code == 0, err
    return dict(json.loads(out))


def traded(result: dict[str, object]) -> dict[str, tuple[str, int]]:
    plan = result["plan"]
    assert isinstance(plan, list)
    return {r["symbol"]: (r["side"], r["quantity"]) for r in plan if r["quantity"]}


def test_plan_is_a_dry_run_table_with_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = tmp_path / "t.csv"
    targets.write_text("symbol,weight\n600258.SH,0.1\n688218.SH,0.0\n", encoding="utf-8")
    code, out, _ = run(["plan", str(targets), *COMMON, "--cash", "100000"], capsys)
    assert code == 0
    assert "SELL 6150" in out  # 688218.SH to zero: the STAR odd holding sold whole
    assert "BUY" in out
    assert "600103.SH" in out  # not in the targets: liquidated


def test_sell_where_sells_only_matching_holdings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text("symbol,market_cap\n600103.SH,3.2e9\n600566.SH,9e9\n603602.SH,4e9\n688218.SH,2e10\n")
    result = executed(["sell-where", "market_cap < 5e9", "--ref", str(ref)], capsys)
    assert traded(result) == {"600103.SH": ("SELL", 1_500_000), "603602.SH": ("SELL", 30_050)}
    report = result["report"]
    assert isinstance(report, dict)
    assert report["total_filled_quantity"] == 1_530_050


def test_liquidate_sells_every_holding(capsys: pytest.CaptureFixture[str]) -> None:
    result = executed(["liquidate"], capsys)
    assert traded(result) == {
        "600103.SH": ("SELL", 1_500_000), "600566.SH": ("SELL", 40_000),
        "603602.SH": ("SELL", 30_050), "688218.SH": ("SELL", 6_150),
    }  # fmt: skip


def test_sell_fraction_sells_lot_multiples(capsys: pytest.CaptureFixture[str]) -> None:
    result = executed(["sell-fraction", "0.3"], capsys)
    sells = traded(result)
    assert sells["600103.SH"] == ("SELL", 450_000)
    assert sells["600566.SH"] == ("SELL", 12_000)
    assert all(side == "SELL" for side, _ in sells.values())


def test_to_percent_and_target_buy_with_the_cash(capsys: pytest.CaptureFixture[str]) -> None:
    result = executed(["to-percent", "10", "600258.SH", "SHSE.603299", "--cash", "1000000"], capsys)
    buys = traded(result)
    assert set(buys) == {"600258.SH", "603299.SH"}  # holdings not named are left alone
    one = executed(["target", "600566.SH", "--volume", "10000"], capsys)
    assert traded(one) == {"600566.SH": ("SELL", 30_000)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sell-where", "market_cap <", "--ref", "REF"], "cannot evaluate"),
        (["sell-fraction", "1.5"], "between 0 and 1"),
        (["target", "600566", "--volume", "100"], "600566"),
        (["rebalance", "BADTARGETS"], "row 3"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_refused_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text("symbol,market_cap\n600103.SH,3.2e9\n", encoding="utf-8")
    bad = tmp_path / "targets.csv"
    bad.write_text("symbol,weight\n600258.SH,0.1\n600446.SH,nan\n", encoding="utf-8")
    args = [str(ref) if a == "REF" else str(bad) if a == "BADTARGETS" else a for a in args]
    db = tmp_path / "never.db"
    code, _, err = run([*args, *COMMON, "--db", str(db)], capsys)
    assert code == 2
    assert message in err
    assert not db.exists()
