"""Rebalance planner: concrete cases and property tests over random accounts and targets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.engine.enums import Side
from zhixing.engine.market import FeeSchedule, check_order_quantity, instrument_for
from zhixing.engine.portfolio.planner import (
    Holding,
    MarketRef,
    Plan,
    PlanRow,
    plan_rebalance,
    size_buys,
    targets_liquidate_all,
    targets_sell_fraction,
    targets_sell_where,
    targets_to_percent,
)
from zhixing.engine.portfolio.targets import Target, TargetKind

MAIN = "600000.SH"
MAIN2 = "000001.SZ"
STAR = "688001.SH"
GEM = "300750.SZ"
YUAN = 1000
FEES = FeeSchedule()


def ref(symbol: str, price: int, **kw: object) -> MarketRef:
    return MarketRef(symbol=symbol, price=price, **kw)  # type: ignore[arg-type]


def row(plan: Plan, symbol: str) -> PlanRow:
    (found,) = [r for r in plan.rows if r.symbol == symbol]
    return found


def volume(symbol: str, shares: int) -> Target:
    return Target(symbol=symbol, kind=TargetKind.VOLUME, volume=shares)


def value(symbol: str, money: int) -> Target:
    return Target(symbol=symbol, kind=TargetKind.VALUE, value=money)


def weight(symbol: str, w: str) -> Target:
    return Target(symbol=symbol, kind=TargetKind.WEIGHT, weight=Decimal(w))


# ------------------------------------------------------------------------------------------ buys
def test_star_buy_rounds_to_200_then_1() -> None:
    market = {STAR: ref(STAR, 50 * YUAN)}
    plan = plan_rebalance(targets=[volume(STAR, 257)], holdings=[], cash=10**9, market=market)
    assert row(plan, STAR).quantity == 257  # >= 200, step 1
    plan = plan_rebalance(targets=[volume(STAR, 199)], holdings=[], cash=10**9, market=market)
    r = row(plan, STAR)
    assert (r.side, r.quantity, r.reason) == (Side.BUY, 0, "rounded_to_lot")
    assert plan.buys() == []


def test_main_board_buy_rounds_down_to_100() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN)}
    plan = plan_rebalance(targets=[volume(MAIN, 1299)], holdings=[], cash=10**9, market=market)
    assert row(plan, MAIN).quantity == 1200


def test_weights_to_shares_on_real_prices() -> None:
    # 1,000,000 CNY, 40% in 600000 at 7.89, 30% in 300750 at 187.45, 20% in 688001 at 38.17.
    market = {MAIN: ref(MAIN, 7890), GEM: ref(GEM, 187_450), STAR: ref(STAR, 38_170)}
    targets = [weight(MAIN, "0.4"), weight(GEM, "0.3"), weight(STAR, "0.2")]
    plan = plan_rebalance(targets=targets, holdings=[], cash=1_000_000 * YUAN, market=market)
    assert plan.equity == 1_000_000 * YUAN
    assert row(plan, MAIN).target == 400_000 * YUAN // 7890 == 50_697
    assert row(plan, MAIN).quantity == 50_600
    assert row(plan, GEM).quantity == 1_600  # 300,000 / 187.45 = 1600.4
    assert row(plan, STAR).quantity == 5_239  # 200,000 / 38.17 = 5239.7, STAR steps of 1
    assert all(r.reason == "" for r in plan.buys())
    assert plan.buy_cost <= plan.cash
    text = plan.table()
    assert "688001.SH" in text
    assert "BUY 5239 @ 38.17" in text
    assert "equity 1000000.00" in text


def test_weights_with_existing_holdings_sell_and_buy() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN), MAIN2: ref(MAIN2, 20 * YUAN)}
    holdings = [Holding(symbol=MAIN, quantity=10_000, sellable=10_000)]
    # equity = 100,000 cash + 100,000 stock; 25/50 -> sell 5000 of MAIN, buy 5000 MAIN2 (~ 100,000 CNY).
    plan = plan_rebalance(
        targets=[weight(MAIN, "0.25"), weight(MAIN2, "0.5")],
        holdings=holdings,
        cash=100_000 * YUAN,
        market=market,
    )
    assert [r.symbol for r in plan.rows] == [MAIN, MAIN2]  # sells first
    assert row(plan, MAIN).side is Side.SELL
    assert row(plan, MAIN).quantity == 5000
    assert row(plan, MAIN2).quantity == 5000
    assert plan.sell_proceeds == 50_000 * YUAN - row(plan, MAIN).est_fees


def test_insufficient_cash_scales_buys_pro_rata() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN), MAIN2: ref(MAIN2, 10 * YUAN)}
    targets = [volume(MAIN, 10_000), volume(MAIN2, 10_000)]  # needs ~200,000 CNY
    plan = plan_rebalance(targets=targets, holdings=[], cash=100_000 * YUAN, market=market)
    a, b = row(plan, MAIN), row(plan, MAIN2)
    assert a.reason == b.reason == "insufficient_cash"
    assert a.quantity == b.quantity == 4900  # 5000 each would leave nothing for fees and buffer
    assert plan.buy_cost <= 100_000 * YUAN


# ------------------------------------------------------------------------------------------ sells
def test_liquidation_sells_odd_tail_whole() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN)}
    plan = plan_rebalance(
        targets=[volume(MAIN, 0)],
        holdings=[Holding(symbol=MAIN, quantity=1_050, sellable=1_050)],
        cash=0,
        market=market,
    )
    r = row(plan, MAIN)
    assert (r.side, r.quantity, r.reason) == (Side.SELL, 1_050, "odd_lot_tail_sold_whole")


def test_partial_sell_is_lot_multiple_and_tail_goes_whole() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN), STAR: ref(STAR, 50 * YUAN)}
    holdings = [Holding(symbol=MAIN, quantity=1_050, sellable=1_050)]
    plan = plan_rebalance(targets=[volume(MAIN, 420)], holdings=holdings, cash=0, market=market)
    assert row(plan, MAIN).quantity == 600  # 630 rounded down to the lot
    plan = plan_rebalance(targets=[volume(MAIN, 30)], holdings=holdings, cash=0, market=market)
    r = row(plan, MAIN)
    assert (r.quantity, r.reason) == (1_050, "odd_lot_tail_sold_whole")  # 1000 would leave 50
    # STAR: a partial sell is >= 200; selling 150 of 250 is impossible, selling 210 leaves 40 -> all.
    star = [Holding(symbol=STAR, quantity=250, sellable=250)]
    plan = plan_rebalance(targets=[volume(STAR, 100)], holdings=star, cash=0, market=market)
    assert (row(plan, STAR).quantity, row(plan, STAR).reason) == (0, "rounded_to_lot")
    plan = plan_rebalance(targets=[volume(STAR, 40)], holdings=star, cash=0, market=market)
    assert (row(plan, STAR).quantity, row(plan, STAR).reason) == (250, "odd_lot_tail_sold_whole")
    plan = plan_rebalance(targets=[volume(STAR, 0)], holdings=star, cash=0, market=market)
    assert (row(plan, STAR).quantity, row(plan, STAR).reason) == (250, "")


def test_t_plus_one_clip() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN)}
    holdings = [Holding(symbol=MAIN, quantity=1_000, sellable=300)]  # 700 bought today
    plan = plan_rebalance(targets=[volume(MAIN, 0)], holdings=holdings, cash=0, market=market)
    r = row(plan, MAIN)
    assert (r.quantity, r.reason) == (300, "clipped_to_sellable")
    assert plan.sells() == [r]


def test_tail_kept_when_t_plus_one_blocks_selling_it_whole() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN)}
    holdings = [Holding(symbol=MAIN, quantity=1_050, sellable=1_000)]
    plan = plan_rebalance(targets=[volume(MAIN, 30)], holdings=holdings, cash=0, market=market)
    assert (row(plan, MAIN).quantity, row(plan, MAIN).reason) == (1_000, "")


def test_liquidate_unlisted() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN), MAIN2: ref(MAIN2, 20 * YUAN)}
    holdings = [Holding(symbol=MAIN2, quantity=500, sellable=500)]
    plan = plan_rebalance(targets=[volume(MAIN, 100)], holdings=holdings, cash=10**7, market=market)
    assert row(plan, MAIN2).side is Side.SELL
    assert row(plan, MAIN2).quantity == 500
    plan = plan_rebalance(
        targets=[volume(MAIN, 100)], holdings=holdings, cash=10**7, market=market, liquidate_unlisted=False
    )
    assert [r.symbol for r in plan.rows] == [MAIN]


# ------------------------------------------------------------------------------------------ skips
def test_suspended_and_no_price_are_skipped() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN, suspended=True)}
    holdings = [
        Holding(symbol=MAIN, quantity=500, sellable=500),
        Holding(symbol=MAIN2, quantity=100, sellable=100),
    ]
    plan = plan_rebalance(targets=[], holdings=holdings, cash=0, market=market)
    assert (row(plan, MAIN).quantity, row(plan, MAIN).reason) == (0, "suspended")
    assert (row(plan, MAIN2).quantity, row(plan, MAIN2).reason) == (0, "no_price")
    assert plan.sells() == []
    assert plan.equity == 5_000 * YUAN


def test_limit_up_skips_buys_and_limit_down_skips_sells() -> None:
    # prev close 10.00 -> limits 9.00 / 11.00 on the main board, computed when not given.
    up = {MAIN: ref(MAIN, 11 * YUAN, prev_close=10 * YUAN)}
    plan = plan_rebalance(targets=[volume(MAIN, 1000)], holdings=[], cash=10**8, market=up)
    assert (row(plan, MAIN).quantity, row(plan, MAIN).reason) == (0, "limit_up")
    holdings = [Holding(symbol=MAIN, quantity=1000, sellable=1000)]
    plan = plan_rebalance(targets=[volume(MAIN, 0)], holdings=holdings, cash=0, market=up)
    assert row(plan, MAIN).quantity == 1000  # selling at limit-up is fine
    down = {MAIN: ref(MAIN, 9 * YUAN, low_limit=9 * YUAN, high_limit=11 * YUAN)}
    plan = plan_rebalance(targets=[volume(MAIN, 0)], holdings=holdings, cash=0, market=down)
    assert (row(plan, MAIN).quantity, row(plan, MAIN).reason) == (0, "limit_down")
    plan = plan_rebalance(targets=[volume(MAIN, 2000)], holdings=holdings, cash=10**8, market=down)
    assert row(plan, MAIN).quantity == 1000  # buying at limit-down is fine


def test_min_trade_value() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN)}
    holdings = [Holding(symbol=MAIN, quantity=1000, sellable=1000)]
    plan = plan_rebalance(
        targets=[volume(MAIN, 1200)],
        holdings=holdings,
        cash=10**8,
        market=market,
        min_trade_value=3000 * YUAN,
    )
    assert (row(plan, MAIN).quantity, row(plan, MAIN).reason) == (0, "below_min_trade_value")
    assert plan.buys() == []


def test_on_target_row_has_no_side() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN)}
    holdings = [Holding(symbol=MAIN, quantity=1000, sellable=1000)]
    plan = plan_rebalance(targets=[volume(MAIN, 1000)], holdings=holdings, cash=0, market=market)
    assert row(plan, MAIN).side is None
    assert plan.sells() == plan.buys() == []


def test_duplicate_target_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        plan_rebalance(targets=[volume(MAIN, 1), volume(MAIN, 2)], holdings=[], cash=0, market={})


# ------------------------------------------------------------------------------------------ size_buys
def test_size_buys_from_confirmed_cash() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN), MAIN2: ref(MAIN2, 10 * YUAN)}
    plan = plan_rebalance(
        targets=[volume(MAIN, 3000), volume(MAIN2, 1000)], holdings=[], cash=100_000 * YUAN, market=market
    )
    assert [r.quantity for r in plan.buys()] == [3000, 1000]
    sized = size_buys(plan, 20_000 * YUAN)  # less cash than planned: scale down
    assert [r.quantity for r in sized] == [1400, 400]
    assert all(r.reason == "insufficient_cash" for r in sized)
    assert sum(r.est_value + r.est_fees for r in sized) <= 20_000 * YUAN
    # more cash than the plan had: back to the full difference, never above it.
    short = plan_rebalance(
        targets=[volume(MAIN, 3000), volume(MAIN2, 1000)], holdings=[], cash=10_000 * YUAN, market=market
    )
    assert [r.quantity for r in size_buys(short, 10**9)] == [3000, 1000]
    assert size_buys(plan, 0) == []


# ------------------------------------------------------------------------------------------ operations
def test_target_operations() -> None:
    holdings = [
        Holding(symbol=MAIN, quantity=1_050, sellable=1_050),
        Holding(symbol=STAR, quantity=333, sellable=333),
        Holding(symbol=MAIN2, quantity=150, sellable=150),
    ]
    assert [t.volume for t in targets_liquidate_all(holdings)] == [0, 0, 0]
    half = targets_sell_fraction(holdings, Decimal("0.5"))
    # 1050: sell 500 keep 550; STAR 333: 166 < 200 sells nothing; 150: sell 0 (75 < 100).
    assert [t.volume for t in half] == [550, 333, 150]
    most = targets_sell_fraction(holdings, Decimal("0.7"))
    # 1050: sell 700 keep 350; STAR: sell 233 keep 100 < 200 -> all; 150: sell 100 keep 50 -> all.
    assert [t.volume for t in most] == [350, 0, 0]
    assert [t.volume for t in targets_sell_fraction(holdings, Decimal(1))] == [0, 0, 0]
    with pytest.raises(ValueError, match="fraction"):
        targets_sell_fraction(holdings, Decimal("1.5"))
    assert [t.symbol for t in targets_sell_where(holdings, lambda s: s.startswith("688"))] == [STAR]
    pct = targets_to_percent([MAIN, GEM], Decimal(30))
    assert [(t.kind, t.weight) for t in pct] == [(TargetKind.WEIGHT, Decimal("0.15"))] * 2


def test_to_percent_plan_leaves_other_holdings() -> None:
    market = {MAIN: ref(MAIN, 10 * YUAN), GEM: ref(GEM, 100 * YUAN), STAR: ref(STAR, 50 * YUAN)}
    holdings = [Holding(symbol=STAR, quantity=2000, sellable=2000)]  # 100,000 CNY
    plan = plan_rebalance(
        targets=targets_to_percent([MAIN, GEM], Decimal(20)),
        holdings=holdings,
        cash=100_000 * YUAN,
        market=market,
        liquidate_unlisted=False,
    )
    assert [(r.symbol, r.quantity) for r in plan.buys()] == [(MAIN, 2000), (GEM, 200)]
    assert STAR not in {r.symbol for r in plan.rows}


# ------------------------------------------------------------------------------------------ properties
SYMBOLS = [MAIN, MAIN2, STAR, GEM, "688981.SH", "601318.SH"]


@st.composite
def accounts(draw: st.DrawFn) -> tuple[list[Target], list[Holding], int, dict[str, MarketRef]]:
    market: dict[str, MarketRef] = {}
    holdings: list[Holding] = []
    targets: list[Target] = []
    for symbol in SYMBOLS:
        price = draw(st.integers(0, 500_000).map(lambda p: p // 10 * 10))
        prev = draw(st.sampled_from([0, price, price * 10 // 11, price * 11 // 10]))
        if draw(st.booleans()) or price == 0:
            market[symbol] = MarketRef(
                symbol=symbol, price=price, prev_close=prev, suspended=draw(st.integers(0, 9)) == 0
            )
        if draw(st.booleans()):
            quantity = draw(st.integers(1, 50_000))
            holdings.append(
                Holding(symbol=symbol, quantity=quantity, sellable=draw(st.integers(0, quantity)))
            )
        kind = draw(st.sampled_from([None, TargetKind.WEIGHT, TargetKind.VALUE, TargetKind.VOLUME]))
        if kind is TargetKind.WEIGHT:
            targets.append(weight(symbol, str(draw(st.decimals(0, 1, places=4)))))
        elif kind is TargetKind.VALUE:
            targets.append(value(symbol, draw(st.integers(0, 10**10))))
        elif kind is TargetKind.VOLUME:
            targets.append(volume(symbol, draw(st.integers(0, 60_000))))
    cash = draw(st.integers(0, 10**10))
    return targets, holdings, cash, market


@settings(max_examples=300, deadline=None)
@given(
    account=accounts(),
    liquidate=st.booleans(),
    min_trade=st.integers(0, 20_000_000),
    confirmed=st.integers(0, 10**10),
)
@pytest.mark.slow
def test_plan_properties(
    account: tuple[list[Target], list[Holding], int, dict[str, MarketRef]],
    liquidate: bool,
    min_trade: int,
    confirmed: int,
) -> None:
    targets, holdings, cash, market = account
    plan = plan_rebalance(
        targets=targets,
        holdings=holdings,
        cash=cash,
        market=market,
        min_trade_value=min_trade,
        liquidate_unlisted=liquidate,
    )
    sellable = {h.symbol: h.sellable for h in holdings}
    for r in plan.rows:
        assert min(r.quantity, r.est_value, r.est_fees) >= 0
        assert r.difference == r.target - r.current
    for r in plan.sells():
        assert r.quantity <= sellable[r.symbol]
        assert r.quantity <= -r.difference or r.reason == "odd_lot_tail_sold_whole"
        assert (
            check_order_quantity(instrument_for(r.symbol), Side.SELL, r.quantity, sellable[r.symbol]) is None
        )
    for r in plan.buys():
        assert 0 < r.quantity <= r.difference
        assert check_order_quantity(instrument_for(r.symbol), Side.BUY, r.quantity, 0) in (
            None,
            "quantity_above_max",  # the planner sizes parents; splitting is the executor's job
        )
    sides = [r.side for r in plan.rows if r.side is not None]
    assert sides == sorted(sides, key=lambda s: s is Side.BUY)  # sells before buys
    assert plan.buy_cost <= cash + plan.sell_proceeds or not plan.buys()
    sized = size_buys(plan, confirmed)
    assert sum(r.est_value + r.est_fees for r in sized) <= confirmed
    for r in sized:
        assert 0 < r.quantity <= r.difference
        assert r.est_fees == FEES.total(instrument_for(r.symbol), Side.BUY, r.price, r.quantity)
        assert check_order_quantity(instrument_for(r.symbol), Side.BUY, r.quantity, 0) in (
            None,
            "quantity_above_max",
        )


@settings(max_examples=200, deadline=None)
@given(
    quantities=st.lists(st.integers(1, 100_000), min_size=1, max_size=4),
    fraction=st.decimals(0, 1, places=3),
)
@pytest.mark.slow
def test_sell_fraction_properties(quantities: list[int], fraction: Decimal) -> None:
    holdings = [Holding(symbol=s, quantity=q, sellable=q) for s, q in zip(SYMBOLS, quantities, strict=False)]
    for h, t in zip(holdings, targets_sell_fraction(holdings, fraction), strict=True):
        inst = instrument_for(h.symbol)
        sell = h.quantity - t.volume
        assert 0 <= t.volume <= h.quantity
        assert sell == 0 or check_order_quantity(inst, Side.SELL, sell, h.quantity) is None
        assert t.volume == 0 or t.volume >= inst.buy_min or sell == 0
