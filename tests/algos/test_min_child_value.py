"""Cost-aware slicing (issue 15 item 6): ``min_child_value`` on every algorithm.

The issue's case on the real full-day sample (2022-06-01, 000400.SZ, 300122.SZ, 300274.SZ): a full-day
TWAP of each at the default 60 s interval and a 5 CNY minimum commission sent 350 children and paid 1,766
CNY of fees, nearly all minimum commissions; with the default minimum child value (5 CNY / 3 bps =
16,666.67 CNY) it sends 83 and every parent's commission is within the 3 bps budget. Every algorithm sends
no child below the minimum but a final remainder; ``min_child_value=0`` is today's slicing exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from zhixing.algos.params import AlgoParams
from zhixing.algos.registry import ALGOS
from zhixing.engine.cli import main
from zhixing.engine.enums import Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.market import COMMISSION_BUDGET_BPS, FeeSchedule, fees_bps, instrument_for, shanghai_ns
from zhixing.engine.market import round_buy_quantity as lots
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import Plan, PlanRow, fee_warnings, sliced_commission
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.harness import ReplayConfig, ReplayResult, run_replay

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20220601"
BUYS = {"000400.SZ": 20_000, "300122.SZ": 5_000, "300274.SZ": 10_000}
MIN_CHILD = 16_666_667  # milli-yuan: 5 CNY / 0.0003, rounded up
ALGO_PARAMS: dict[str, dict[str, str]] = {
    "twap": {},
    "vwap": {"profile": "u_shape"},
    "pov": {"target_rate": "0.002", "closing_auction": "0.2"},
    "iceberg": {"display_qty": "200"},
    "chase": {"reprice_s": "20"},
}


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE)


def with_params(parent: ParentOrder, **params: str) -> ParentOrder:
    return dataclasses.replace(parent, params={**parent.params, **params})


def parents(market: MarketData, algo: str, end: str = "15:00", side: Side = Side.BUY) -> list[ParentOrder]:
    """A full-day buy of each name (09:30-``end``), or a sell of as much (plus an odd tail) held."""
    day = market.trade_date
    out = []
    for i, (symbol, quantity) in enumerate(sorted(BUYS.items())):
        out.append(
            ParentOrder(
                parent_id=f"{side.value[0]}{i}",
                symbol=symbol,
                side=side,
                quantity=quantity + (37 if side is Side.SELL else 0),  # a sell's odd tail
                start_ns=shanghai_ns(day, "09:30"),
                end_ns=shanghai_ns(day, end),
                algo=algo,
                params=dict(ALGO_PARAMS[algo]),
            )
        )
    return out


def replay(
    market: MarketData, rows: list[ParentOrder], tmp: Path, fees: FeeSchedule | None = None
) -> ReplayResult:
    positions = {p.symbol: p.quantity for p in rows if p.side is Side.SELL}
    config = ReplayConfig(
        cash=10**12, positions=positions, db_path=tmp / "j.db", synchronous="OFF", fees=fees or FeeSchedule()
    )
    return asyncio.run(run_replay(market, rows, config))


def children(result: ReplayResult, parent_id: str) -> list[Order]:
    return sorted(result.oms.children_of(parent_id), key=lambda o: o.client_order_id)


def commission(result: ReplayResult, parent_id: str) -> tuple[int, int]:
    """(commission, filled value) of a parent's children, milli-yuan."""
    kids = children(result, parent_id)
    return sum(c.commission for c in kids), sum(c.filled_value for c in kids)


# ------------------------------------------------------------------------------------------ the default
def test_default_minimum_is_the_minimum_commission_over_the_budget() -> None:
    stock, fund = instrument_for("600000.SH"), instrument_for("510300.SH")
    assert COMMISSION_BUDGET_BPS == 3
    assert FeeSchedule().min_child_value(stock) == MIN_CHILD
    assert FeeSchedule(min_commission=0).min_child_value(stock) == 0
    assert FeeSchedule(min_commission_applies_to_funds=False).min_child_value(fund) == 0
    assert FeeSchedule().min_child_value(fund) == MIN_CHILD
    assert FeeSchedule(min_commission=1000).min_child_value(stock, budget_bps=2) == 5_000_000
    # at the minimum child value the minimum commission is exactly the budget
    assert fees_bps(5000, MIN_CHILD) == 3.0


def test_parameter_parses_on_every_algorithm() -> None:
    for name, cls in ALGOS.items():
        params = cls.params_type.parse({**ALGO_PARAMS.get(name, {}), "min_child_value": "20000"}, algo=name)
        assert isinstance(params, AlgoParams)
        assert params.min_child_value == 20_000.0
        assert cls.params_type.parse(ALGO_PARAMS.get(name, {}), algo=name).min_child_value == -1.0
    with pytest.raises(ParameterError, match="min_child_value"):
        ALGOS["twap"].params_type.parse({"min_child_value": "lots"}, algo="twap")


# ------------------------------------------------------------------------------------------ the case
@pytest.mark.slow
def test_full_day_twap_of_three_names_within_the_budget(market: MarketData, tmp_path: Path) -> None:
    buys = parents(market, "twap", end="14:57")
    before = replay(market, [with_params(p, min_child_value="0") for p in buys], tmp_path / "before")
    after = replay(market, buys, tmp_path / "after")
    sent_before = sum(len(children(before, p.parent_id)) for p in buys)
    sent_after = sum(len(children(after, p.parent_id)) for p in buys)
    paid_before = sum(commission(before, p.parent_id)[0] for p in buys)
    paid_after = sum(commission(after, p.parent_id)[0] for p in buys)
    assert (sent_before, paid_before) == (350, 1_750_000)  # one 5 CNY minimum per child
    assert sent_after == 83
    assert paid_after < paid_before / 3
    for p in buys:
        paid, value = commission(after, p.parent_id)
        assert value > 0
        assert fees_bps(paid, value) <= COMMISSION_BUDGET_BPS, p.symbol
        row = next(r for r in after.report.parents if r.parent_id == p.parent_id)
        assert row.commission_bps == fees_bps(paid, value)
        assert not row.over_fee_budget()
    for row in before.report.parents:  # today's slicing is over the budget, and the report says so
        assert row.over_fee_budget()
        assert "exceeds the 3 bps budget" in row.fee_warning()
    # by hand, 000400.SZ: 20,000 shares at ~19.93 CNY; a child is at least 16,666.67 CNY, so at least 900
    # shares (836.x rounded up to the lot); every child stays below 20,000 CNY, where 2.5 bps of it would
    # pass 5 CNY, so each pays exactly the minimum; 23 children -> 115 CNY on ~398,660 CNY = 2.88 bps
    kids = children(after, "B0")
    assert [c.symbol for c in kids[:1]] == ["000400.SZ"]
    assert all(c.quantity >= 900 or c is kids[-1] for c in kids)
    assert all(c.commission == 5000 for c in kids if c.filled_quantity)
    assert len(kids) == 23
    assert commission(after, "B0")[0] == 23 * 5000
    assert 2.8 < fees_bps(*commission(after, "B0")) < 2.9


# ------------------------------------------------------------------------------------------ every algorithm
def _check_no_small_child(result: ReplayResult, parent: ParentOrder, minimum: int) -> int:
    """Every child of ``parent`` but a final remainder (all the continuous part had left when it was
    sent, on the lot grid for a buy) and the closing-auction order is worth at least ``minimum``.
    Children are sent one at a time (the base's invariant), so what an earlier child filled is known."""
    inst = instrument_for(parent.symbol)
    filled = small = 0
    auction = sum(c.quantity for c in children(result, parent.parent_id) if c.tag.endswith("auction"))
    for child in children(result, parent.parent_id):
        if child.tag.endswith("auction"):
            continue
        room = parent.quantity - auction - filled
        last = room if parent.side is Side.SELL else lots(inst, room)
        if child.price * child.quantity < minimum:
            assert child.quantity >= last, (parent.parent_id, child.tag, child.quantity, child.price, room)
            small += 1
        filled += child.filled_quantity
    return small


@pytest.mark.slow
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("algo", sorted(ALGO_PARAMS))
def test_no_child_below_the_minimum_but_the_last(
    market: MarketData, tmp_path: Path, algo: str, side: Side
) -> None:
    rows = parents(market, algo, side=side)
    result = replay(market, rows, tmp_path)
    sent = 0
    for parent in rows:
        _check_no_small_child(result, parent, MIN_CHILD)
        sent += len(children(result, parent.parent_id))
    assert sent > len(rows) or algo == "chase"  # they did slice (chase fills at its first price here)
    # a larger minimum: fewer children still, the same rule
    bigger = [with_params(p, min_child_value="50000") for p in rows]
    result = replay(market, bigger, tmp_path / "bigger")
    for parent in bigger:
        _check_no_small_child(result, parent, 50_000_000)
    if algo != "chase":  # chase sends what is left as one child whatever the minimum
        assert sum(len(children(result, p.parent_id)) for p in bigger) < sent


@pytest.mark.slow
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("algo", sorted(ALGO_PARAMS))
def test_zero_is_todays_slicing(market: MarketData, tmp_path: Path, algo: str, side: Side) -> None:
    """``min_child_value=0`` sends exactly the children an account without a minimum commission (so no
    default minimum child value, as before this parameter) sends: same tags, sizes, prices, times."""
    rows = parents(market, algo, side=side)
    off = replay(market, [with_params(p, min_child_value="0") for p in rows], tmp_path / "off")
    no_minimum = replay(market, rows, tmp_path / "none", FeeSchedule(min_commission=0))

    def sent(result: ReplayResult) -> list[tuple[str, str, int, int, int]]:
        return [
            (c.parent_id, c.tag, c.quantity, c.price, c.ts_created)
            for p in rows
            for c in children(result, p.parent_id)
        ]

    assert sent(off) == sent(no_minimum)
    assert len(sent(off)) > 2 * len(rows) or algo == "chase"


# ------------------------------------------------------------------------------------------ plan warning
def _row(symbol: str, quantity: int, price: int) -> PlanRow:
    return PlanRow(
        symbol=symbol,
        current=0,
        target=quantity,
        difference=quantity,
        side=Side.BUY,
        quantity=quantity,
        price=price,
        est_value=quantity * price,
        est_fees=0,
        reason="",
    )


def test_sliced_commission_by_hand() -> None:
    fees, inst = FeeSchedule(), instrument_for("600000.SH")
    # 10,000 shares at 10 CNY: children of 1,700 shares (16,667 / 10 -> 1,667, up to the lot): 5 of them
    # and a last of 1,500 -> 6 minimum commissions = 30 CNY on 100,000 CNY = 3 bps
    assert sliced_commission(fees, inst, 10_000, 10_000, MIN_CHILD) == 30_000
    # no minimum child value: one child, 2.5 bps of 100,000 CNY = 25 CNY
    assert sliced_commission(fees, inst, 10_000, 10_000, 0) == 25_000
    # below one child's minimum: one child at the 5 CNY minimum
    assert sliced_commission(fees, inst, 10_000, 500, MIN_CHILD) == 5_000


def test_plan_warns_about_a_row_over_the_budget() -> None:
    plan = Plan(
        rows=[
            _row("600000.SH", 10_000, 10_000),
            _row("600036.SH", 500, 10_000),
            _row("601318.SH", 3_400, 10_000),
        ],
        equity=0,
        cash=0,
        sell_proceeds=0,
        buy_cost=0,
    )
    warnings = fee_warnings(plan, FeeSchedule())
    # 10,000 shares: 3.0 bps (within); 500 shares: 5 CNY on 5,000 CNY = 10 bps; 3,400 shares: two children
    # of 1,700 -> 10 CNY on 34,000 CNY = 2.94 bps (within)
    assert warnings == [
        "600036.SH BUY 500: commission ~5.00 CNY = 10.0 bps of 5000.00 CNY exceeds the 3 bps budget "
        "(minimum commission 5.00 CNY per child)"
    ]
    # a minimum child value of 1,000 CNY: the 10,000-share row now pays 100 minimums
    small = fee_warnings(plan, FeeSchedule(), min_child_value=lambda _inst: 1_000_000)
    assert any(w.startswith("600000.SH BUY 10000: commission ~500") for w in small)


def test_zhixing_plan_prints_the_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``zhixing plan`` on the full-day sample: 0.2% of 10,000,000 CNY in 000400.SZ (~20,000 CNY: one
    child of the minimum and a small last, over the budget) is warned about; 10% in 300274.SZ is not."""
    targets = tmp_path / "t.csv"
    targets.write_text("symbol,weight\n000400.SZ,0.002\n300274.SZ,0.1\n", encoding="utf-8")
    code = main(["plan", str(targets), "--replay-data", str(SAMPLE), "--start", "09:30", "--end", "14:57"])
    out = capsys.readouterr().out
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, out
    assert warnings[0].startswith("warning: 000400.SZ BUY ")
    assert "exceeds the 3 bps budget" in warnings[0]
