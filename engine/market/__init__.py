"""Market rules for China A-shares: symbols, per-instrument rules, fees, the dated rules table,
trading calendar.

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
from zhixing.engine.market.dated_rules import (
    COVERAGE_FROM,
    COVERAGE_TO,
    DayRules,
    MarketRules,
    RulesCoverageError,
    RulesNow,
)
from zhixing.engine.market.fees import COMMISSION_BUDGET_BPS, FeeSchedule, fees_bps
from zhixing.engine.market.instruments import (
    MAIN_ST_LIMIT_PCT_BP,
    PRICE_CEILING,
    PROTECTED_BOARDS,
    Instrument,
    check_order_quantity,
    check_price,
    instrument_for,
    is_on_tick,
    price_limits,
    round_buy_quantity,
    round_price,
)
from zhixing.engine.market.security_status import SecurityStatus, StatusBook, load_status_file
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
    "COMMISSION_BUDGET_BPS",
    "COVERAGE_FROM",
    "COVERAGE_TO",
    "MAIN_ST_LIMIT_PCT_BP",
    "PRICE_CEILING",
    "PROTECTED_BOARDS",
    "SHANGHAI",
    "Board",
    "DayRules",
    "Exchange",
    "FeeSchedule",
    "Instrument",
    "MarketRules",
    "Phase",
    "RulesCoverageError",
    "RulesNow",
    "SecurityStatus",
    "StatusBook",
    "TradingCalendar",
    "board_of",
    "check_order_quantity",
    "check_price",
    "exchange_of",
    "fees_bps",
    "from_gm",
    "instrument_for",
    "is_on_tick",
    "iso8601",
    "load_status_file",
    "normalize_symbol",
    "ns_to_shanghai",
    "price_limits",
    "round_buy_quantity",
    "round_price",
    "shanghai_ns",
    "to_gm",
    "trading_date_of",
]
