"""Pre-trade checks: small pure functions ``(order) -> reason | None``, chained by the OrderManager.

``market_rules_check`` makes sure every order that reaches an adapter is valid for the market (DESIGN
invariant 3): trading session, lot and odd-lot rules against the position, tick, and the daily price
limits of the latest quote. Rate caps, collars and the kill switch live beside it (operations issue).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.account import Account
from engine.clock import Clock
from engine.enums import Side
from engine.market import Instrument, Phase, TradingCalendar, check_order_quantity, check_price, price_limits
from engine.marketdata import QuoteSource
from engine.orders import Order

PreTradeCheck = Callable[[Order], str | None]

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

    def check(order: Order) -> str | None:
        phase = calendar.phase_at(clock.now_ns())
        if continuous_only and phase is not Phase.CONTINUOUS:
            return f"market_not_continuous: {phase.value}"
        if not continuous_only and phase not in _ORDER_PHASES:
            return f"market_closed: {phase.value}"
        inst = instrument(order.symbol)
        position = 0
        if account is not None and order.side is Side.SELL:
            pos = account.positions.get(order.symbol)
            position = pos.sellable if pos is not None else 0  # T+1: what may be sold today
        reason = check_order_quantity(inst, order.side, order.quantity, position)
        if reason is not None:
            return reason
        quote = quotes.latest(order.symbol)
        if quote is None:
            return "no_reference_quote"
        low, high = quote.low_limit, quote.high_limit
        if low <= 0 or high <= 0:
            if quote.prev_close <= 0:
                return "no_price_limits"
            low, high = price_limits(inst, quote.prev_close)
        return check_price(inst, order.price, low, high)

    return check
