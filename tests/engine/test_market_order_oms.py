"""A market order through the OrderManager: it carries its kind to the adapter and the journal, and a
buy without a protection price reserves cash at the day's limit-up (the bound the market rules set)."""

from __future__ import annotations

import datetime as dt
from typing import cast

from tests.fakes import FakeBroker, FakeQuotes, FakeStore, calendar
from zhixing.engine.account import Account, no_fees
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.market import instrument_for, shanghai_ns
from zhixing.engine.oms import OrderManager
from zhixing.engine.reasons import DenialCode
from zhixing.engine.risk import market_rules_check
from zhixing.engine.store import StateStore

CASH = 100_000_000  # 100,000 yuan


async def manager(checks: bool = True) -> tuple[OrderManager, FakeBroker, Account]:
    clock = SimClock(shanghai_ns(dt.date(2022, 6, 1), "10:00"))
    quotes = FakeQuotes(clock)
    quotes.set("000001.SZ", bid=10_000, ask=10_010)  # prev close 10.00: limits 9.00 / 11.00
    account = Account(CASH, no_fees)
    broker = FakeBroker(clock)
    rules = market_rules_check(
        clock=clock, calendar=calendar(), quotes=quotes, instrument=instrument_for, account=account
    )
    oms = OrderManager(
        clock=clock,
        bus=EventBus(),
        adapter=broker,
        store=cast(StateStore, FakeStore()),
        checks=[rules] if checks else [],
        account=account,
    )
    await oms.open()
    return oms, broker, account


async def test_an_unprotected_market_buy_reserves_at_limit_up() -> None:
    oms, broker, account = await manager()
    order = oms.submit(
        SubmitOrder(symbol="000001.SZ", side=Side.BUY, quantity=1_000, price=0, order_type=OrderType.FAK)
    )
    await oms.flush()
    assert order.status is OrderStatus.ACCEPTED  # the fake broker acks at once
    assert (order.order_type, order.price) == (OrderType.FAK, 11_000)
    assert account.frozen == 11_000 * 1_000
    (sent,) = broker.submitted
    assert sent.order_type is OrderType.FAK


async def test_the_reservation_at_limit_up_bounds_what_cash_can_buy() -> None:
    oms, _, _ = await manager()
    # 9,100 shares at 11.00 is 100,100 yuan: more than the cash, though at 10.01 it would fit
    order = oms.submit(
        SubmitOrder(symbol="000001.SZ", side=Side.BUY, quantity=9_100, price=0, order_type=OrderType.FAK)
    )
    assert order.denial is DenialCode.INSUFFICIENT_CASH


async def test_a_market_order_without_any_bound_is_denied() -> None:
    oms, broker, _ = await manager(checks=False)
    order = oms.submit(
        SubmitOrder(symbol="000001.SZ", side=Side.BUY, quantity=100, price=0, order_type=OrderType.FAK)
    )
    assert order.denial is DenialCode.PRICE_NOT_POSITIVE
    assert broker.submitted == []
