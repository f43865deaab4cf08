"""A rebalance plan asks the dated table for its day (issue 20): on the sample day 2021-12-01 the sell leg
pays 0.1% stamp duty and 0.002% transfer fee, on the same snapshots re-dated to 2024-03-01 0.05% and
0.001%, and the buy leg is sized from what those sells bring. Both are checked against a hand
computation (Decimal, half up to the fen); the commission stays the account's."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from zhixing.engine.enums import Side
from zhixing.engine.market import FeeSchedule, RulesCoverageError, shanghai_ns
from zhixing.engine.portfolio.planner import Plan
from zhixing.engine.portfolio.targets import Target, TargetKind
from zhixing.replay.data import MarketData, load_snapshots, shift_market
from zhixing.replay.harness import ReplayConfig
from zhixing.replay.rebalance_run import RebalanceOptions, plan_for

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SELL, BUY = "600103.SH", "600107.SH"
SELL_PRICE, BUY_PRICE = 2790, 6390  # milli-yuan: their last prices at 09:31 on the sample day
HELD = 500_000  # shares of SELL, all sold
COMMISSION = FeeSchedule(commission_ppm=300, min_commission=5000)  # the account's
BUFFER_BP = 10


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE, symbols=(SELL, BUY))


def fen(value_milli: int, ppm: int) -> int:
    """``value * ppm / 1e6`` rounded half up to the fen, in milli-yuan (the hand computation)."""
    yuan = Decimal(value_milli) / 1000 * ppm / 1_000_000
    return int(yuan.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 1000)


def hand_fees(side: Side, value: int, stamp_ppm: int, transfer_ppm: int) -> int:
    duty = fen(value, stamp_ppm) if side is Side.SELL else 0
    return max(5000, fen(value, 300)) + duty + fen(value, transfer_ppm)


def hand_buy(budget: int, stamp_ppm: int, transfer_ppm: int) -> int:
    """The most lots of BUY whose value, fees and 10 bp buffer (rounded up) fit ``budget``."""
    lots = 0
    while True:
        value = (lots + 1) * 100 * BUY_PRICE
        cost = value + hand_fees(Side.BUY, value, stamp_ppm, transfer_ppm) + -(-value * BUFFER_BP // 10_000)
        if cost > budget:
            return lots * 100
        lots += 1


def plan_of(market: MarketData, day: date) -> Plan:
    """Sell every share of SELL, buy BUY for more than the sells bring, from no cash, on ``day``."""
    data = market if day == market.trade_date else shift_market(market, day)
    config = ReplayConfig(cash=0, positions={SELL: HELD}, fees=COMMISSION)
    targets = [
        Target(symbol=SELL, kind=TargetKind.VOLUME, volume=0),
        Target(symbol=BUY, kind=TargetKind.VALUE, value=300_000 * BUY_PRICE),
    ]
    options = RebalanceOptions(
        start_ns=shanghai_ns(day, "09:31"), end_ns=shanghai_ns(day, "10:31"), fee_buffer_bp=BUFFER_BP
    )
    return plan_for(data, targets, config, options)


@pytest.mark.parametrize(
    ("day", "stamp_ppm", "transfer_ppm"),
    [(date(2021, 12, 1), 1000, 20), (date(2024, 3, 1), 500, 10)],
)
def test_a_plan_sizes_its_buys_from_sells_charged_the_days_stamp_duty(
    market: MarketData, day: date, stamp_ppm: int, transfer_ppm: int
) -> None:
    plan = plan_of(market, day)
    sell_value = HELD * SELL_PRICE
    proceeds = sell_value - hand_fees(Side.SELL, sell_value, stamp_ppm, transfer_ppm)
    (sell,) = plan.sells()
    assert (sell.quantity, sell.price) == (HELD, SELL_PRICE)
    assert sell.est_fees == hand_fees(Side.SELL, sell_value, stamp_ppm, transfer_ppm)
    assert plan.sell_proceeds == proceeds
    (buy,) = plan.buys()
    assert buy.price == BUY_PRICE
    assert buy.quantity == hand_buy(proceeds, stamp_ppm, transfer_ppm)
    assert buy.est_fees == hand_fees(Side.BUY, buy.quantity * BUY_PRICE, stamp_ppm, transfer_ppm)


def test_the_halved_stamp_duty_buys_one_more_lot_from_the_same_sells(market: MarketData) -> None:
    """711.45 CNY more from the same sells in 2024 than in 2021: one more lot of BUY at 6.39."""
    in_2021, in_2024 = plan_of(market, date(2021, 12, 1)), plan_of(market, date(2024, 3, 1))
    assert in_2024.sell_proceeds - in_2021.sell_proceeds == 697_500 + 13_950  # duty 697.50, fee 13.95 less
    assert in_2024.buys()[0].quantity - in_2021.buys()[0].quantity == 100


def test_a_day_outside_the_table_is_refused_not_planned_on_todays_rates(market: MarketData) -> None:
    with pytest.raises(RulesCoverageError, match="2014-06-03"):
        plan_of(market, date(2014, 6, 3))
