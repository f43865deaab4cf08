"""Pre-trade checks: small pure functions ``(order) -> Denial | None``, chained by the OrderManager.

``market_rules_check`` makes sure every order that reaches an adapter is valid for the market (DESIGN
invariant 3): trading session, lot and odd-lot rules against the position, tick, and the daily price
limits of the latest quote. Rate caps, collars and the kill switch live beside it (operations issue).

A market order (``Order.order_type`` not ``LIMIT``) is checked for its kind too: one the symbol's exchange
takes (``ACCEPTED_ORDER_TYPES``), in continuous trading only, on a symbol with daily price limits, with
a protection price on STAR and ChiNext, and within the board's market-order cap. Its ``price`` is its
bound: the protection price when given, else the check sets it to the day's limit-up (a buy) or
limit-down (a sell), which is what the account then reserves cash (or checks) at.
"""

from __future__ import annotations

from collections.abc import Callable

from zhixing.engine.account import Account
from zhixing.engine.clock import Clock
from zhixing.engine.enums import ACCEPTED_ORDER_TYPES, Side
from zhixing.engine.market import (
    PROTECTED_BOARDS,
    Instrument,
    Phase,
    TradingCalendar,
    check_order_quantity,
    check_price,
    price_limits,
)
from zhixing.engine.marketdata import QuoteSource
from zhixing.engine.oms import PreTradeCheck
from zhixing.engine.orders import Order
from zhixing.engine.reasons import Denial, DenialCode

_ORDER_PHASES = frozenset({Phase.OPENING_CALL, Phase.PRE_CONTINUOUS, Phase.CONTINUOUS, Phase.CLOSING_CALL})


def market_rules_check(
    *,
    clock: Clock,
    calendar: TradingCalendar,
    quotes: QuoteSource,
    instrument: Callable[[str], Instrument],
    account: Account | None = None,
    continuous_only: bool = True,
) -> PreTradeCheck:
    """Build the check. ``continuous_only`` (the default for algorithms) refuses orders outside
    continuous trading; otherwise call-auction phases are allowed too."""

    def check(order: Order) -> Denial | None:
        phase = calendar.phase_at(clock.now_ns())
        market = order.order_type.is_market
        if market and order.order_type not in ACCEPTED_ORDER_TYPES.get(order.symbol[-2:], frozenset()):
            return Denial(DenialCode.ORDER_TYPE_NOT_ACCEPTED, f"{order.order_type.value} on {order.symbol}")
        if (continuous_only or market) and phase is not Phase.CONTINUOUS:
            return Denial(DenialCode.MARKET_NOT_CONTINUOUS, phase.value)
        if not continuous_only and phase not in _ORDER_PHASES:
            return Denial(DenialCode.MARKET_CLOSED, phase.value)
        inst = instrument(order.symbol)
        position = 0
        if account is not None and order.side is Side.SELL:
            pos = account.positions.get(order.symbol)
            position = pos.sellable if pos is not None else 0  # T+1: what may be sold today
        code = check_order_quantity(inst, order.side, order.quantity, position, market=market)
        if code is not None:
            return Denial(code)
        if market and inst.no_price_limit:
            return Denial(DenialCode.MARKET_ORDER_WITHOUT_LIMITS)
        if market and order.price <= 0 and inst.board in PROTECTED_BOARDS:
            return Denial(DenialCode.PROTECTION_PRICE_REQUIRED, inst.board.value)
        quote = quotes.latest(order.symbol)
        if quote is None:
            return Denial(DenialCode.NO_REFERENCE_QUOTE)
        low, high = quote.low_limit, quote.high_limit
        if low <= 0 or high <= 0:
            if quote.prev_close <= 0:
                return Denial(DenialCode.NO_PRICE_LIMITS)
            low, high = price_limits(inst, quote.prev_close)
        if market and order.price <= 0:
            order.price = high if order.side is Side.BUY else low  # the bound the account reserves at
        code = check_price(inst, order.price, low, high)
        return None if code is None else Denial(code)

    return check
