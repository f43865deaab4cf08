"""The pre-trade market rules for market orders (``engine.risk.market_rules_check``): the exchange's
kinds, continuous trading only, STAR/ChiNext protection prices, the per-board market-order caps, and the
bound an unprotected order gets (what the account reserves cash at)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.fakes import FakeQuotes, calendar
from zhixing.engine.account import Account
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderType, Side
from zhixing.engine.market import MarketRules, instrument_for, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.reasons import DenialCode
from zhixing.engine.risk import market_rules_check

DAY = dt.date(2022, 6, 1)
T = OrderType


def check_at(hhmm: str, order: Order, prev_close: int = 10_000) -> DenialCode | None:
    clock = SimClock(shanghai_ns(DAY, hhmm))
    quotes = FakeQuotes(clock)
    quotes.set(order.symbol, bid=prev_close, ask=prev_close + 10, prev_close=prev_close)
    account = Account(10**12)
    account.load_position(order.symbol, 1_000_000, avg_cost=prev_close)
    check = market_rules_check(
        clock=clock, calendar=calendar(), quotes=quotes, instrument=instrument_for, account=account
    )
    denial = check(order)
    return None if denial is None else denial.code


def order(
    symbol: str, kind: OrderType, quantity: int = 1_000, price: int = 0, side: Side = Side.BUY
) -> Order:
    return Order(
        client_order_id="C1", symbol=symbol, side=side, price=price, quantity=quantity, order_type=kind
    )


@pytest.mark.parametrize(
    ("symbol", "kind", "price", "code"),
    [
        ("600000.SH", T.FAK, 0, DenialCode.ORDER_TYPE_NOT_ACCEPTED),  # SZSE only
        ("600000.SH", T.FOK, 0, DenialCode.ORDER_TYPE_NOT_ACCEPTED),
        ("000001.SZ", T.B5TL, 0, DenialCode.ORDER_TYPE_NOT_ACCEPTED),  # SSE only
        ("688001.SH", T.B5TC, 0, DenialCode.PROTECTION_PRICE_REQUIRED),
        ("300001.SZ", T.BOC, 0, DenialCode.PROTECTION_PRICE_REQUIRED),
        ("688001.SH", T.B5TC, 10_200, None),
        ("300001.SZ", T.FAK, 10_100, None),
        ("600000.SH", T.B5TL, 0, None),
        ("000001.SZ", T.FOK, 0, None),
    ],
)
def test_kinds_and_protection(symbol: str, kind: OrderType, price: int, code: DenialCode | None) -> None:
    quantity = 1_000
    assert check_at("10:00", order(symbol, kind, quantity, price)) == code


def test_market_orders_only_in_continuous_trading() -> None:
    assert check_at("09:20", order("000001.SZ", T.FAK)) == DenialCode.MARKET_NOT_CONTINUOUS
    assert check_at("14:58", order("000001.SZ", T.FAK)) == DenialCode.MARKET_NOT_CONTINUOUS


@pytest.mark.parametrize(
    ("symbol", "cap"), [("688001.SH", 50_000), ("300001.SZ", 150_000), ("600000.SH", 500_000)]
)
def test_market_order_caps_by_board(symbol: str, cap: int) -> None:
    price = 10_100 if symbol[:3] in ("688", "300") else 0
    assert check_at("10:00", order(symbol, T.B5TC if symbol.endswith(".SH") else T.FAK, cap, price)) is None
    over = order(symbol, T.B5TC if symbol.endswith(".SH") else T.FAK, cap + 100, price)
    assert check_at("10:00", over) == DenialCode.QUANTITY_ABOVE_MAX
    # the same size as a limit order is within the limit-order cap
    assert check_at("10:00", order(symbol, T.LIMIT, cap + 100, 10_000)) is None


def test_the_dated_rules_carry_the_market_caps() -> None:
    rules = MarketRules()
    caps = {s: rules.instrument(s, DAY).max_market_order_qty for s in ("688001.SH", "300001.SZ", "600000.SH")}
    assert caps == {"688001.SH": 50_000, "300001.SZ": 150_000, "600000.SH": 500_000}


def test_an_unprotected_order_is_bounded_at_the_day_limit() -> None:
    buy = order("600000.SH", T.B5TC)
    sell = order("000001.SZ", T.FAK, side=Side.SELL)
    assert check_at("10:00", buy) is None
    assert check_at("10:00", sell) is None
    assert (buy.price, sell.price) == (11_000, 9_000)  # limit-up, limit-down of a 10.00 close


def test_a_protection_price_beyond_the_limits_is_refused() -> None:
    assert check_at("10:00", order("688001.SH", T.B5TC, 1_000, 12_010)) == DenialCode.PRICE_ABOVE_LIMIT_UP
