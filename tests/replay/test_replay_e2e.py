"""End to end on real data: the demo TWAP basket through the engine and the simulated exchange.

Asserts what a desk would check in a trade log: every child valid for the market, nothing overfilled,
the exported trade log equal to the journal's fills, and a second run identical byte for byte.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from tests.tradelog_checks import assert_children_valid, assert_export_matches_journal, read_csv
from zhixing.algos.basket import Basket
from zhixing.engine.cli import main
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.store import StateStore
from zhixing.replay.data import load_snapshots
from zhixing.replay.harness import ReplayConfig, open_session

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def demo_args(db: Path) -> list[str]:
    return [
        "replay",
        "--data",
        str(SAMPLE / "snapshots_20211201"),
        "--orders",
        str(SAMPLE / "demo_orders.csv"),
        "--positions",
        str(SAMPLE / "demo_positions.csv"),
        "--start",
        "09:30",
        "--end",
        "10:15",
        "--cash",
        "6000000",
        "--db",
        str(db),
        "--json",
    ]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run the demo basket twice through the CLI, export both trade logs."""
    out: dict[str, object] = {}
    for run in ("a", "b"):
        tmp = tmp_path_factory.mktemp(f"run_{run}")
        db = tmp / "journal.db"
        code = main(demo_args(db))
        assert code == 0
        assert main(["journal", "export", "--db", str(db), "--out", str(tmp / "log")]) == 0
        out[run] = tmp
    return out


def _report(capsys: pytest.CaptureFixture[str], tmp: Path) -> dict[str, object]:
    code, out, _ = run_cli(demo_args(tmp / "again.db"), capsys)
    assert code == 0
    return dict(json.loads(out))


@pytest.mark.slow
async def test_every_child_is_valid_for_the_market_and_inside_its_window(demo_run: dict[str, object]) -> None:
    tmp = demo_run["a"]
    assert isinstance(tmp, Path)
    positions = {r["symbol"]: int(r["quantity"]) for r in read_csv(SAMPLE / "demo_positions.csv")}
    await assert_children_valid(tmp / "journal.db", SAMPLE / "snapshots_20211201", positions, min_orders=51)


async def test_exported_trade_log_matches_the_journal_fills(demo_run: dict[str, object]) -> None:
    tmp = demo_run["a"]
    assert isinstance(tmp, Path)
    await assert_export_matches_journal(tmp / "journal.db", tmp / "log2")


def test_two_runs_are_identical_byte_for_byte(demo_run: dict[str, object]) -> None:
    a, b = demo_run["a"], demo_run["b"]
    assert isinstance(a, Path)
    assert isinstance(b, Path)
    for name in ("orders.csv", "fills.csv"):
        assert (a / "log" / name).read_bytes() == (b / "log" / name).read_bytes()


@pytest.mark.slow
def test_json_report_has_the_documented_fields_and_fills_most_of_the_basket(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = _report(capsys, tmp_path)
    parents = report["parents"]
    assert isinstance(parents, list)
    assert len(parents) == 10
    for p in parents:
        for key in (
            "filled_quantity",
            "avg_price",
            "arrival_price",
            "interval_vwap",
            "slippage_arrival_bps",
            "slippage_vwap_bps",
            "child_orders",
            "cancels",
        ):
            assert key in p
        assert p["filled_quantity"] <= p["quantity"]
    assert report["total_filled_quantity"] > 0.9 * report["total_quantity"]  # type: ignore[operator]


@pytest.mark.slow
def test_bad_orders_file_is_refused_naming_file_row_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("symbol,side,quantity\n600258.SH,buy,1000\n60025.SH,buy,100\n", encoding="utf-8")
    code, _, err = run_cli(
        [
            "replay",
            "--data",
            str(SAMPLE / "snapshots_20211201"),
            "--orders",
            str(orders),
            "--db",
            str(tmp_path / "j.db"),
        ],
        capsys,
    )
    assert code == 2
    assert str(orders) in err
    assert "row 3" in err
    assert "'symbol'" in err
    assert not (tmp_path / "j.db").exists()  # nothing was run


@pytest.mark.parametrize(
    ("algo", "params"),
    [
        ("vwap", ["--param", "profile=u_shape"]),
        ("pov", ["--param", "target_rate=0.05"]),
        ("iceberg", ["--param", "display_qty=2000"]),
    ],
)
@pytest.mark.slow
def test_algo_chosen_by_name_with_params_runs_on_real_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, algo: str, params: list[str]
) -> None:
    args = [*demo_args(tmp_path / f"{algo}.db"), "--algo", algo, *params]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    report = json.loads(out)
    assert {p["algo"] for p in report["parents"]} == {algo}
    assert all(p["filled_quantity"] <= p["quantity"] for p in report["parents"])
    assert report["total_filled_quantity"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "interval=5"], "unknown twap parameter 'interval'"),
        (["--algo", "sniper"], "unknown algo 'sniper'"),
        (["--algo", "vwap"], "'profile' is required"),
    ],
)
@pytest.mark.slow
def test_bad_algo_or_parameter_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    db = tmp_path / "never.db"
    code, _, err = run_cli(demo_args(db) + extra, capsys)
    assert code == 2
    assert message in err
    assert "row 2" in err
    assert not db.exists()


@pytest.mark.slow
def test_report_dir_gets_the_json_report_and_two_png_charts_per_parent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    code, stdout, _ = run_cli([*demo_args(tmp_path / "r.db"), "--report", str(out)], capsys)
    assert code == 0
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == json.loads(stdout)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 * 10
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000  # a real drawing, not an empty canvas
    assert {p.name.split("_")[0] for p in pngs} == {f"P{i:04d}" for i in range(1, 11)}


def test_cancel_all_at_a_time_stops_every_algo_and_leaves_nothing_working(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = [a if a != "replay" else "cancel-all" for a in demo_args(tmp_path / "c.db")]
    code, out, err = run_cli([*args, "--at", "09:50", "--param", "price_policy=passive"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["total_filled_quantity"] < report["total_quantity"]  # stopped early
    assert report["total_cancels"] > 0
    orders = asyncio.run(_orders(tmp_path / "c.db"))
    cutoff = shanghai_ns(date(2021, 12, 1), "09:50")
    assert all(o.ts_created <= cutoff for o in orders)  # nothing new after the cancel-all
    assert all(o.is_terminal for o in orders)
    assert all(o.status is not OrderStatus.FILLED or o.filled_quantity == o.quantity for o in orders)


async def _orders(db: Path) -> list[Order]:
    store = await StateStore.open(db)
    try:
        return await store.load_orders()
    finally:
        await store.close()


async def test_algo_state_is_journaled_as_it_changes_not_only_at_the_end(tmp_path: Path) -> None:
    """Stopped mid-window (no final save), the journal already holds each TWAP's progress."""

    market = load_snapshots(SAMPLE / "snapshots_20211201", symbols=["600258.SH", "600446.SH"])
    day = market.trade_date
    start, end = shanghai_ns(day, "09:30"), shanghai_ns(day, "10:15")
    session = await open_session(market, ReplayConfig(cash=10**12, db_path=tmp_path / "j.db"), start)
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    for i, symbol in enumerate(market.symbols):
        basket.add(
            ParentOrder(
                parent_id=f"P{i}", symbol=symbol, side=Side.BUY, quantity=20_000, start_ns=start, end_ns=end
            )
        )
    basket.start()
    await session.run(shanghai_ns(day, "09:50"), lambda: basket.done, expire=False)
    states = await session.store.load_algo_states()
    await session.store.close()
    assert set(states) == {"P0", "P1"}
    for parent_id, (algo, state) in states.items():
        assert algo == "twap"
        live = basket.algos[parent_id].state()
        assert state["next_slice"] == live["next_slice"] > 10  # about 20 slices in, not the initial state
