"""A replay charges the replayed day's own stamp duty and transfer fee (issue 20): the sample day
2021-12-01 pays 0.1% stamp duty on sells and 0.002% transfer fee, the same snapshots re-dated to
2024-03-01 pay 0.05% and 0.001%. Each order's fees are checked against a hand computation (Decimal,
half up to the fen) of its total filled value; the commission stays the account's setting."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from zhixing.engine.enums import Side
from zhixing.engine.events import OrderFilled
from zhixing.engine.market import FeeSchedule, shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import RiskLimits
from zhixing.replay.data import MarketData, load_snapshots, shift_market
from zhixing.replay.harness import ReplayConfig, run_replay

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOLS = ("600103.SH", "600107.SH", "600133.SH", "600251.SH")
COMMISSION = FeeSchedule(commission_ppm=300, min_commission=5000)  # the account's; duty and fee are the day's


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE, symbols=SYMBOLS)


def parents(day: date) -> tuple[list[ParentOrder], dict[str, int]]:
    """Sell the first two symbols from a holding, buy the others; aggressive, so every order fills."""
    rows, positions = [], {}
    for i, symbol in enumerate(SYMBOLS):
        side = Side.SELL if i < 2 else Side.BUY
        if side is Side.SELL:
            positions[symbol] = 20_000
        rows.append(
            ParentOrder(
                parent_id=f"D{i}",
                symbol=symbol,
                side=side,
                quantity=3_000,
                start_ns=shanghai_ns(day, "09:31"),
                end_ns=shanghai_ns(day, "09:41"),
                algo="twap",
                params={"interval_s": "60", "price_policy": "aggressive"},
            )
        )
    return rows, positions


def fen_half_up(value_milli: int, ppm: int) -> int:
    """``value * ppm / 1e6`` rounded half up to the fen, in milli-yuan (the hand computation)."""
    yuan = Decimal(value_milli) / 1000 * ppm / 1_000_000
    return int(yuan.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 1000)


def check_each_order(fills: list[OrderFilled], stamp_ppm: int, transfer_ppm: int) -> int:
    """Assert every order's fees; return how many sell orders paid stamp duty."""
    by_order: dict[str, list[OrderFilled]] = defaultdict(list)
    for fill in fills:
        by_order[fill.client_order_id].append(fill)
    sells = 0
    for order_fills in by_order.values():
        value = sum(f.price * f.quantity for f in order_fills)
        side = order_fills[0].side
        assert sum(f.commission for f in order_fills) == max(5000, fen_half_up(value, 300))
        expected_duty = fen_half_up(value, stamp_ppm) if side is Side.SELL else 0
        assert sum(f.stamp_duty for f in order_fills) == expected_duty
        assert sum(f.transfer_fee for f in order_fills) == fen_half_up(value, transfer_ppm)
        sells += side is Side.SELL and expected_duty > 0
    return sells


async def replay(market: MarketData, tmp_path: Path) -> list[OrderFilled]:
    rows, positions = parents(market.trade_date)
    config = ReplayConfig(
        cash=10**12,
        positions=positions,
        db_path=tmp_path / f"{market.trade_date}.db",
        fees=COMMISSION,
        risk=RiskLimits(max_order_value=0),
    )
    result = await run_replay(market, rows, config)
    assert result.fills, "the aggressive basket fills"
    assert {f.side for f in result.fills} == {Side.BUY, Side.SELL}
    return result.fills


@pytest.mark.slow
async def test_a_2021_replay_pays_the_2021_stamp_duty_and_transfer_fee(
    market: MarketData, tmp_path: Path
) -> None:
    fills = await replay(market, tmp_path)
    assert check_each_order(fills, stamp_ppm=1000, transfer_ppm=20) > 0


@pytest.mark.slow
async def test_the_same_day_replayed_as_2024_pays_the_2024_rates(market: MarketData, tmp_path: Path) -> None:
    fills = await replay(shift_market(market, date(2024, 3, 1)), tmp_path)
    assert check_each_order(fills, stamp_ppm=500, transfer_ppm=10) > 0
