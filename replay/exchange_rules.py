"""What the simulated exchange accepts, and at what cost: per-symbol rules, limits and fees, cached.

``VenueRules.check`` is the exchange's validation of an arriving order, in the exchange's order: known
symbol, session, lot and odd-lot rules, tick and the day's price limits, cash for buys, T+1 sellable
shares for sells. Each check returns a reason string, or None when the order passes (STYLE.md point 10).
"""

from __future__ import annotations

from collections.abc import Callable

from zhixing.engine.account import Account
from zhixing.engine.enums import Side
from zhixing.engine.market import (
    DayRules,
    FeeSchedule,
    Instrument,
    MarketRules,
    Phase,
    TradingCalendar,
    check_order_quantity,
    check_price,
    price_limits,
)
from zhixing.engine.orders import Order
from zhixing.replay.data import MarketData, SymbolDay

CLOSED_PHASES = frozenset({Phase.CLOSED, Phase.PRE_OPEN, Phase.AFTER_HOURS})
"""The exchange takes no orders: before 09:15, from 15:00, and on non-trading days. Orders arriving in
the opening call, 09:25-09:30, lunch or the closing call are accepted and rest."""


class VenueRules:
    def __init__(
        self,
        market: MarketData,
        calendar: TradingCalendar,
        fees: FeeSchedule,
        rules: MarketRules,
        instrument: Callable[[str], Instrument] | None = None,
    ) -> None:
        self._calendar = calendar
        self._account_fees = fees  # the account's commission; stamp duty and transfer fee are the day's
        self._rules = rules
        self._instrument_override = instrument  # a test's own instruments; else the day's from ``rules``
        self._instruments: dict[str, Instrument] = {}
        self._limits: dict[str, tuple[int, int]] = {}
        self.play(market)

    def play(self, market: MarketData) -> None:
        """Another day's data (the next trading day): its fees, instruments and price limits are the
        day's, from the dated rules (``RulesCoverageError`` for a day outside them)."""
        self._market = market
        self.day_rules: DayRules = self._rules.on(market.trade_date)
        self._fees = self.day_rules.fees(self._account_fees)
        self._instrument_fn = self._instrument_override or self.day_rules.instrument
        self._instruments.clear()
        self._limits.clear()

    def instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            instrument = self._instruments[symbol] = self._instrument_fn(symbol)
        return instrument

    def limits(self, day: SymbolDay) -> tuple[int, int]:
        """(low, high) for the day: the file's limits where present, else computed from prev_close;
        0 where neither is known (a symbol without trading rules)."""
        limits = self._limits.get(day.symbol)
        if limits is None:
            low, high = day.low_limit, day.high_limit
            if low <= 0 or high <= 0:
                try:
                    computed = price_limits(self.instrument(day.symbol), day.prev_close)
                except ValueError:
                    computed = (0, 0)
                low = low if low > 0 else computed[0]
                high = high if high > 0 else computed[1]
            limits = self._limits[day.symbol] = (low, high)
        return limits

    def estimate_fees(self, symbol: str, side: Side, price: int, quantity: int) -> int:
        """Total fees of one trade (what a buy freezes on top of its value)."""
        return self._fees.total(self.instrument(symbol), side, price, quantity)

    def fees_on_value(self, symbol: str, side: Side, value: int) -> tuple[int, int, int]:
        """(commission, stamp_duty, transfer_fee) of an order's total filled value (milli-yuan).
        ``FeeSchedule`` charges on traded value, so the value is passed as one "share" priced at it."""
        return self._fees.fees(self.instrument(symbol), side, value, 1)

    def check(self, order: Order, now: int, account: Account) -> str | None:
        """Why the exchange rejects ``order`` arriving at ``now``, or None."""
        day = self._market.days.get(order.symbol)
        if day is None:
            return "unknown_symbol"
        if self._calendar.phase_at(now) in CLOSED_PHASES:
            return "market_closed"
        try:
            instrument = self.instrument(order.symbol)
        except ValueError:
            return "no_trading_rules"
        position = account.positions.get(order.symbol)
        sellable = position.sellable if order.side is Side.SELL and position is not None else 0
        reason = check_order_quantity(
            instrument, order.side, order.quantity, sellable, market=order.order_type.is_market
        )
        # quantity above the sellable position is the T+1 check below, reported in its turn
        if reason is not None and reason != "quantity_above_position":
            return reason
        low, high = self.limits(day)
        reason = check_price(instrument, order.price, low, high)
        if reason is not None:
            return reason
        return account.check(order)  # insufficient_cash / insufficient_sellable
