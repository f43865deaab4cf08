"""Market rules for China A-shares: symbols, per-instrument rules, fees, trading calendar.

Everything is pure and integer (prices and money in milli-yuan, quantities in shares, time in ns UTC);
``MARKET_RULES.md`` gives the sources and marks which values are unverified and configurable.
"""

from __future__ import annotations

from zhixing.engine.market.calendar import (
    SHANGHAI,
    Phase,
    TradingCalendar,
    iso8601,
    ns_to_shanghai,
    shanghai_ns,
    trading_date_of,
)
from zhixing.engine.market.fees import FeeSchedule
from zhixing.engine.market.instruments import (
    MAIN_ST_LIMIT_PCT_BP,
    PRICE_CEILING,
    Instrument,
    check_order_quantity,
    check_price,
    instrument_for,
    is_on_tick,
    price_limits,
    round_buy_quantity,
    round_price,
)
from zhixing.engine.market.symbols import (
    Board,
    Exchange,
    board_of,
    exchange_of,
    from_gm,
    normalize_symbol,
    to_gm,
)

__all__ = [
    "MAIN_ST_LIMIT_PCT_BP",
    "PRICE_CEILING",
    "SHANGHAI",
    "Board",
    "Exchange",
    "FeeSchedule",
    "Instrument",
    "Phase",
    "TradingCalendar",
    "board_of",
    "check_order_quantity",
    "check_price",
    "exchange_of",
    "from_gm",
    "instrument_for",
    "is_on_tick",
    "iso8601",
    "normalize_symbol",
    "ns_to_shanghai",
    "price_limits",
    "round_buy_quantity",
    "round_price",
    "shanghai_ns",
    "to_gm",
    "trading_date_of",
]
