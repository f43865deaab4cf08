"""Per-instrument rules: board parameters, daily limits against real feed values, ticks and lots."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.engine.enums import Side
from zhixing.engine.market import (
    PRICE_CEILING,
    Board,
    Exchange,
    Instrument,
    check_order_quantity,
    check_price,
    instrument_for,
    is_on_tick,
    price_limits,
    round_buy_quantity,
    round_price,
)
from zhixing.engine.units import price_from_yuan

MAIN = instrument_for("600000.SH")
CHINEXT = instrument_for("300122.SZ")
STAR = instrument_for("688218.SH")
BSE = instrument_for("830799.BJ")
ETF = instrument_for("510300.SH")
ALL = [MAIN, CHINEXT, STAR, BSE, ETF]

instruments = st.sampled_from(ALL)
sides = st.sampled_from([Side.BUY, Side.SELL])


@pytest.mark.parametrize(
    ("symbol", "board", "tick", "buy_min", "buy_step", "max_qty", "limit_bp"),
    [
        ("600000.SH", Board.MAIN, 10, 100, 100, 1_000_000, 1000),
        ("000400.SZ", Board.MAIN, 10, 100, 100, 1_000_000, 1000),
        ("300122.SZ", Board.CHINEXT, 10, 100, 100, 300_000, 2000),
        ("688218.SH", Board.STAR, 10, 200, 1, 100_000, 2000),
        ("830799.BJ", Board.BSE, 10, 100, 1, 1_000_000, 3000),
        ("510300.SH", Board.FUND, 1, 100, 100, 1_000_000, 1000),
        ("159915.SZ", Board.FUND, 1, 100, 100, 1_000_000, 1000),
    ],
)
def test_instrument_for_board_rules(
    symbol: str, board: Board, tick: int, buy_min: int, buy_step: int, max_qty: int, limit_bp: int
) -> None:
    inst = instrument_for(symbol)
    assert (inst.board, inst.tick, inst.buy_min, inst.buy_step) == (board, tick, buy_min, buy_step)
    assert (inst.max_limit_order_qty, inst.limit_pct_bp, inst.t_plus) == (max_qty, limit_bp, 1)
    assert not inst.is_st
    assert not inst.no_price_limit


def test_instrument_for_normalizes_and_is_frozen() -> None:
    inst = instrument_for("SZSE.000400")
    assert inst.symbol == "000400.SZ"
    assert inst.exchange is Exchange.SZ
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.tick = 1  # type: ignore[misc]
    assert dataclasses.replace(ETF, t_plus=0).t_plus == 0  # T+0 ETFs are built this way


def test_st_narrows_only_the_main_board_limit() -> None:
    assert instrument_for("600000.SH", is_st=True).limit_pct_bp == 500
    assert instrument_for("600000.SH", is_st=True, st_limit_pct_bp=1000).limit_pct_bp == 1000
    assert instrument_for("300122.SZ", is_st=True).limit_pct_bp == 2000
    assert instrument_for("688218.SH", is_st=True).limit_pct_bp == 2000
    assert instrument_for("300122.SZ", is_st=True).is_st


@pytest.mark.parametrize("symbol", ["000001.SH", "399001.SZ", "113050.SH", "600000.SZ", "1.SZ"])
def test_instrument_for_refuses_what_it_has_no_rules_for(symbol: str) -> None:
    with pytest.raises(ValueError, match=symbol.replace(".", r"\.")):
        instrument_for(symbol)


# prev_close, low_limit, high_limit as published in the feed (snapshots/*_20220601.csv.gz, HTSC Insight).
@pytest.mark.parametrize(
    ("symbol", "prev_close", "low", "high"),
    [
        ("000400.SZ", "19.38", "17.44", "21.32"),  # 17.442 down, 21.318 up
        ("300122.SZ", "87.28", "69.82", "104.74"),  # ChiNext ±20%: 69.824, 104.736
        ("300274.SZ", "79.96", "63.97", "95.95"),  # 63.968 up, 95.952 down
    ],
)
def test_price_limits_match_the_real_feed(symbol: str, prev_close: str, low: str, high: str) -> None:
    limits = price_limits(instrument_for(symbol), price_from_yuan(prev_close))
    assert limits == (price_from_yuan(low), price_from_yuan(high))


@pytest.mark.parametrize(
    ("inst", "prev_close", "expected"),
    [
        (MAIN, 19350, (17420, 21290)),  # 17.415 and 21.285: exact halves round up
        (instrument_for("600311.SH", is_st=True), 1930, (1830, 2030)),  # ST ±5%: 1.8335, 2.0265
        (STAR, 15250, (12200, 18300)),
        (BSE, 10010, (7010, 13010)),  # ±30%: 7.007, 13.013
        (ETF, 1234, (1111, 1357)),  # funds round to 0.001: 1.1106, 1.3574
        (MAIN, 10, (10, 10)),  # limit-down never below one tick (0.009 rounds to 0.01)
    ],
)
def test_price_limits_round_half_up_on_the_tick(
    inst: Instrument, prev_close: int, expected: tuple[int, int]
) -> None:
    assert price_limits(inst, prev_close) == expected


def test_no_price_limit_gives_an_open_range() -> None:
    ipo = instrument_for("688218.SH", no_price_limit=True)
    assert price_limits(ipo, 15250) == (10, PRICE_CEILING)
    assert check_price(ipo, 10_000_000, *price_limits(ipo, 15250)) is None


def test_price_limits_refuse_a_non_positive_prev_close() -> None:
    with pytest.raises(ValueError, match="prev_close"):
        price_limits(MAIN, 0)


def _decimal_limit(inst: Instrument, prev_close: int, sign: int) -> int:
    exact = Decimal(prev_close) * (1 + Decimal(sign * inst.limit_pct_bp) / 10_000) / inst.tick
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)) * inst.tick


@given(instruments, st.integers(min_value=100, max_value=5_000_000))
def test_price_limits_agree_with_decimal_rounding(inst: Instrument, prev_close_ticks: int) -> None:
    prev_close = prev_close_ticks * inst.tick
    low, high = price_limits(inst, prev_close)
    assert (low, high) == (_decimal_limit(inst, prev_close, -1), _decimal_limit(inst, prev_close, 1))
    assert low < prev_close < high
    assert is_on_tick(inst, low)
    assert is_on_tick(inst, high)


def test_round_price_moves_to_the_passive_side() -> None:
    assert round_price(MAIN, 10_015, Side.BUY) == 10_010
    assert round_price(MAIN, 10_015, Side.SELL) == 10_020
    assert round_price(MAIN, 10_010, Side.BUY) == 10_010
    assert round_price(MAIN, 10_010, Side.SELL) == 10_010
    assert round_price(ETF, 1_234, Side.BUY) == 1_234
    assert round_price(MAIN, 9, Side.BUY) == 0  # then check_price says price_not_positive
    assert round_price(MAIN, 9, Side.SELL) == 10


@given(instruments, sides, st.integers(min_value=-1_000_000, max_value=10_000_000))
def test_round_price_lands_on_tick_within_one_tick_on_the_conservative_side(
    inst: Instrument, side: Side, price: int
) -> None:
    rounded = round_price(inst, price, side)
    assert is_on_tick(inst, rounded)
    if side is Side.BUY:
        assert price - inst.tick < rounded <= price
    else:
        assert price <= rounded < price + inst.tick


def test_is_on_tick() -> None:
    assert is_on_tick(MAIN, 19_380)
    assert not is_on_tick(MAIN, 19_385)
    assert is_on_tick(ETF, 1_234)


@pytest.mark.parametrize(
    ("inst", "quantity", "expected"),
    [
        (MAIN, 0, 0),
        (MAIN, 99, 0),
        (MAIN, 100, 100),
        (MAIN, 199, 100),
        (MAIN, 12_345, 12_300),
        (STAR, 199, 0),
        (STAR, 200, 200),
        (STAR, 201, 201),
        (STAR, 12_345, 12_345),
        (BSE, 99, 0),
        (BSE, 101, 101),
        (MAIN, 2_000_050, 2_000_000),  # not capped at max_limit_order_qty: splitting is the caller's job
    ],
)
def test_round_buy_quantity(inst: Instrument, quantity: int, expected: int) -> None:
    assert round_buy_quantity(inst, quantity) == expected


@given(instruments, st.integers(min_value=-10, max_value=2_000_000))
def test_round_buy_quantity_is_the_largest_valid_buy_not_above_the_input(
    inst: Instrument, quantity: int
) -> None:
    rounded = round_buy_quantity(inst, quantity)
    assert 0 <= rounded <= max(quantity, 0)
    if rounded == 0:
        assert quantity < inst.buy_min
    else:
        assert quantity - rounded < inst.buy_step
        if rounded <= inst.max_limit_order_qty:
            assert check_order_quantity(inst, Side.BUY, rounded, position=0) is None


@pytest.mark.parametrize(
    ("inst", "side", "quantity", "position", "reason"),
    [
        # buys: on the lot grid, position irrelevant
        (MAIN, Side.BUY, 100, 0, None),
        (MAIN, Side.BUY, 1_000_000, 0, None),
        (MAIN, Side.BUY, 1_000_100, 0, "quantity_above_max"),
        (MAIN, Side.BUY, 150, 0, "quantity_not_lot_multiple"),
        (MAIN, Side.BUY, 50, 0, "quantity_below_minimum"),
        (MAIN, Side.BUY, 0, 0, "quantity_not_positive"),
        (MAIN, Side.BUY, -100, 0, "quantity_not_positive"),
        (CHINEXT, Side.BUY, 300_000, 0, None),
        (CHINEXT, Side.BUY, 300_100, 0, "quantity_above_max"),
        (STAR, Side.BUY, 200, 0, None),
        (STAR, Side.BUY, 201, 0, None),
        (STAR, Side.BUY, 199, 0, "quantity_below_minimum"),
        (STAR, Side.BUY, 100, 0, "quantity_below_minimum"),
        (STAR, Side.BUY, 100_001, 0, "quantity_above_max"),
        (BSE, Side.BUY, 101, 0, None),
        (BSE, Side.BUY, 99, 0, "quantity_below_minimum"),
        (ETF, Side.BUY, 150, 0, "quantity_not_lot_multiple"),
        # main-board sells: round lots, or everything
        (MAIN, Side.SELL, 1_000, 1_050, None),  # leaves an odd 50, sold whole later
        (MAIN, Side.SELL, 1_050, 1_050, None),  # everything, odd lot included
        (MAIN, Side.SELL, 50, 50, None),  # an odd lot alone, sold whole
        (MAIN, Side.SELL, 50, 1_050, "odd_lot_must_sell_all"),
        (MAIN, Side.SELL, 150, 1_050, "odd_lot_must_sell_all"),
        (MAIN, Side.SELL, 30, 50, "odd_lot_must_sell_all"),
        (MAIN, Side.SELL, 150, 1_000, "quantity_not_lot_multiple"),
        (MAIN, Side.SELL, 50, 1_000, "quantity_below_minimum"),
        (MAIN, Side.SELL, 1_100, 1_050, "quantity_above_position"),
        (MAIN, Side.SELL, 100, 0, "quantity_above_position"),
        (MAIN, Side.SELL, 1_000_100, 1_000_100, "quantity_above_max"),  # selling everything is still capped
        # STAR sells: >= 200 in steps of 1; below 200 only the whole position
        (STAR, Side.SELL, 200, 300, None),  # leaves 100, which must later go in one order
        (STAR, Side.SELL, 257, 1_000, None),
        (STAR, Side.SELL, 150, 150, None),
        (STAR, Side.SELL, 100, 150, "odd_lot_must_sell_all"),
        (STAR, Side.SELL, 199, 1_000, "quantity_below_minimum"),
        (STAR, Side.SELL, 100_001, 200_000, "quantity_above_max"),
        # BSE and ETF
        (BSE, Side.SELL, 101, 500, None),
        (BSE, Side.SELL, 50, 50, None),
        (BSE, Side.SELL, 50, 500, "quantity_below_minimum"),
        (ETF, Side.SELL, 50, 1_050, "odd_lot_must_sell_all"),
    ],
)
def test_check_order_quantity(
    inst: Instrument, side: Side, quantity: int, position: int, reason: str | None
) -> None:
    assert check_order_quantity(inst, side, quantity, position) == reason


@given(instruments, st.integers(min_value=1, max_value=200_000))
def test_selling_the_whole_position_is_always_allowed_up_to_the_cap(inst: Instrument, position: int) -> None:
    reason = check_order_quantity(inst, Side.SELL, position, position)
    assert reason == (None if position <= inst.max_limit_order_qty else "quantity_above_max")


@pytest.mark.parametrize(
    ("inst", "price", "reason"),
    [
        (MAIN, 19_380, None),
        (MAIN, 17_440, None),  # limit prices themselves are fine
        (MAIN, 21_320, None),
        (MAIN, 21_330, "price_above_limit_up"),
        (MAIN, 17_430, "price_below_limit_down"),
        (MAIN, 19_385, "price_off_tick"),
        (MAIN, 0, "price_not_positive"),
        (MAIN, -10, "price_not_positive"),
        (ETF, 19_385, None),
    ],
)
def test_check_price(inst: Instrument, price: int, reason: str | None) -> None:
    assert check_price(inst, price, 17_440, 21_320) == reason
