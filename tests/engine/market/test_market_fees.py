"""Fees: commission with its minimum, stamp duty on stock sells only, transfer fee, fen rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.engine.enums import Side
from zhixing.engine.market import FeeSchedule, Instrument, instrument_for

STOCK = instrument_for("000400.SZ")
ETF = instrument_for("510300.SH")
DEFAULT = FeeSchedule()


def test_defaults_match_market_rules() -> None:
    assert DEFAULT.commission_ppm == 250
    assert DEFAULT.min_commission == 5_000
    assert DEFAULT.stamp_duty_ppm == 500
    assert DEFAULT.transfer_fee_ppm == 10
    assert DEFAULT.min_commission_applies_to_funds
    assert DEFAULT.transfer_fee_applies_to_funds


def test_small_buy_pays_the_minimum_commission_and_no_stamp_duty() -> None:
    # 1,000 shares at 19.38 = 19,380 CNY: commission 4.845 -> minimum 5.00; transfer 0.1938 -> 0.19
    assert DEFAULT.fees(STOCK, Side.BUY, 19_380, 1_000) == (5_000, 0, 190)


def test_small_sell_adds_stamp_duty() -> None:
    # stamp duty 0.05% of 19,380 = 9.69
    assert DEFAULT.fees(STOCK, Side.SELL, 19_380, 1_000) == (5_000, 9_690, 190)
    assert DEFAULT.total(STOCK, Side.SELL, 19_380, 1_000) == 14_880


def test_large_trade_pays_the_proportional_commission() -> None:
    # 100,000 shares at 10.00 = 1,000,000 CNY: commission 250, stamp 500, transfer 10
    assert DEFAULT.fees(STOCK, Side.BUY, 10_000, 100_000) == (250_000, 0, 10_000)
    assert DEFAULT.fees(STOCK, Side.SELL, 10_000, 100_000) == (250_000, 500_000, 10_000)


def test_commission_crosses_the_minimum_at_20000_yuan() -> None:
    # 0.025% of 20,000 CNY is exactly 5.00
    assert DEFAULT.fees(STOCK, Side.BUY, 20_000, 1_000)[0] == 5_000
    assert DEFAULT.fees(STOCK, Side.BUY, 20_010, 1_000)[0] == 5_000  # 5.0025 -> 5.00
    assert DEFAULT.fees(STOCK, Side.BUY, 20_020, 1_000)[0] == 5_010  # 5.005 -> 5.01 (half up)


def test_each_fee_rounds_half_up_to_the_fen() -> None:
    # transfer fee on 500.00 CNY is 0.005 CNY: half a fen rounds up to one fen; 499.00 -> 0.00499 -> 0
    assert DEFAULT.fees(STOCK, Side.BUY, 5_000, 100)[2] == 10
    assert DEFAULT.fees(STOCK, Side.BUY, 4_990, 100)[2] == 0


def test_funds_pay_no_stamp_duty() -> None:
    # 10,000 units at 4.123 = 41,230 CNY: commission 10.3075 -> 10.31; transfer 0.4123 -> 0.41
    assert DEFAULT.fees(ETF, Side.SELL, 4_123, 10_000) == (10_310, 0, 410)


def test_fund_minimum_commission_and_transfer_fee_are_configurable() -> None:
    schedule = FeeSchedule(min_commission_applies_to_funds=False, transfer_fee_applies_to_funds=False)
    # 1,000 units at 1.234 = 1,234 CNY: commission 0.3085 -> 0.31, no minimum, no transfer fee
    assert schedule.fees(ETF, Side.BUY, 1_234, 1_000) == (310, 0, 0)
    assert DEFAULT.fees(ETF, Side.BUY, 1_234, 1_000) == (5_000, 0, 10)
    assert schedule.fees(STOCK, Side.BUY, 1_230, 1_000) == (5_000, 0, 10)  # stocks keep both


def test_old_stamp_duty_rate_for_replaying_days_before_2023_08_28() -> None:
    assert FeeSchedule(stamp_duty_ppm=1_000).fees(STOCK, Side.SELL, 19_380, 1_000)[1] == 19_380


@pytest.mark.parametrize(("price", "quantity"), [(0, 100), (10_000, 0), (-10, 100), (10_000, -100)])
def test_fees_refuse_non_positive_trades(price: int, quantity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        DEFAULT.fees(STOCK, Side.BUY, price, quantity)


def test_negative_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="commission_ppm"):
        FeeSchedule(commission_ppm=-1)


def _decimal_fee(value: int, ppm: int) -> int:
    fen = Decimal(value) * ppm / 1_000_000 / 10
    return int(fen.quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 10


@given(
    st.sampled_from([STOCK, ETF]),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(min_value=1, max_value=5_000_000),
    st.integers(min_value=1, max_value=2_000_000),
    st.integers(min_value=0, max_value=3_000),
)
def test_fees_agree_with_decimal_arithmetic(
    inst: Instrument, side: Side, price: int, quantity: int, commission_ppm: int
) -> None:
    schedule = FeeSchedule(commission_ppm=commission_ppm)
    commission, stamp_duty, transfer_fee = schedule.fees(inst, side, price, quantity)
    value = price * quantity
    assert commission == max(5_000, _decimal_fee(value, commission_ppm))
    expected_stamp = _decimal_fee(value, 500) if side is Side.SELL and inst is STOCK else 0
    assert stamp_duty == expected_stamp
    assert transfer_fee == _decimal_fee(value, 10)
    assert all(fee % 10 == 0 for fee in (commission, stamp_duty, transfer_fee))
