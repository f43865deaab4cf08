"""The market's rules as of a trading day: one dated table, as data, and the object that reads it.

Every rule that changed over time or differs by board or security status is a row of ``RULE_TABLE``:
``(rule, board, status, since) -> value``, with its source and its status (V confirmed, U unverified;
docs/MARKET_RULES_BY_DATE.md cites each row). A day's value is the row with the latest ``since`` on or
before the day. The table covers ``COVERAGE_FROM`` .. ``COVERAGE_TO``: a day outside it, or a board asked
about before it opened (STAR before 2019-07-22), raises ``RulesCoverageError`` naming the day; nothing
falls back to today's values.

What the table does not hold: the broker's commission (the account's ``FeeSchedule``); the exchange
handling fee and the regulatory fee, which the engine does not charge apart (brokers fold them into the
commission, U); tick sizes (0.01 / 0.001 since before the coverage).

``MarketRules`` answers for a day (``on(day)`` -> ``DayRules``: the fee schedule for an account, each
instrument with its band for its status on the day) and ``RulesNow`` for the day of a clock (what the
engine's checks and the algorithms ask). Both are built in one place, the composition root.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

from zhixing.engine.clock import Clock
from zhixing.engine.errors import ZhixingError
from zhixing.engine.market.calendar import TradingCalendar, trading_date_of
from zhixing.engine.market.fees import FeeSchedule
from zhixing.engine.market.instruments import Instrument, instrument_for
from zhixing.engine.market.security_status import SecurityStatus, StatusBook
from zhixing.engine.market.symbols import Board

COVERAGE_FROM: Final = date(2015, 8, 1)
"""The first day every rule has a row for (the transfer fee by value on both exchanges starts here; before
it SSE charged by share count, which ``FeeSchedule`` cannot express)."""
COVERAGE_TO: Final = date(2027, 12, 31)
"""The last day the table was reviewed for: re-check the announcements and move it on, never past a rule
change that is not in the table."""


class RulesCoverageError(ZhixingError):
    """A day outside the dated rules table's coverage, or a rule asked of a board before it existed.

    Not a ``ValueError`` on purpose: code that turns a bad symbol's ``ValueError`` into a reason
    (``no_trading_rules``) must not turn a missing rule into a silent default."""


class Rule(StrEnum):
    STAMP_DUTY_PPM = "stamp_duty_ppm"  # sells only; never on funds (FeeSchedule)
    TRANSFER_FEE_PPM = "transfer_fee_ppm"  # both sides, of traded value
    LIMIT_PCT_BP = "limit_pct_bp"  # the daily band, by board and status
    BUY_MIN = "buy_min"  # shares: the smallest buy order
    BUY_STEP = "buy_step"  # shares: buy sizes are buy_min + k * buy_step
    MAX_LIMIT_ORDER_QTY = "max_limit_order_qty"  # shares per limit order
    MAX_MARKET_ORDER_QTY = "max_market_order_qty"  # shares per market order
    # new listings, keyed by the LISTING date (the rule in force when the stock listed applies to its
    # first days): trading days without a band, then (if > 0) the first-day band around the IPO price
    LISTING_FREE_DAYS = "listing_free_days"
    LISTING_FIRST_DAY_UP_BP = "listing_first_day_up_bp"  # 0: no separate first-day band
    LISTING_FIRST_DAY_DOWN_BP = "listing_first_day_down_bp"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatedRule:
    """One row: ``rule`` is ``value`` from ``since`` on, for ``board`` (None: every board) and ``status``."""

    rule: Rule
    since: date
    value: int
    source: str  # the announcement, and the MARKET_RULES.md row
    verified: bool = True  # V (True) or U (False)
    board: Board | None = None
    status: SecurityStatus = SecurityStatus.NORMAL


_MAIN, _GEM, _STAR, _BSE, _FUND = Board.MAIN, Board.CHINEXT, Board.STAR, Board.BSE, Board.FUND
_ST, _STAR_ST, _DELIST = SecurityStatus.ST, SecurityStatus.STAR_ST, SecurityStatus.DELISTING
_GEM_REFORM = date(2020, 8, 24)  # ChiNext registration reform: first trading day under the new rules
_STAR_OPEN = date(2019, 7, 22)  # STAR market's first trading day
_BSE_OPEN = date(2021, 11, 15)  # BSE's first trading day
_LONG_AGO = date(1996, 12, 16)  # the 10% band (and 5% ST, 1998) long predate the coverage

_MOF_2008 = "MOF/SAT 2008-09-18: stamp duty 0.1% on the seller only, from 2008-09-19"
_MOF_2023 = "MOF/SAT announcement 2023 No. 39: stamp duty halved to 0.05%, from 2023-08-28 (MARKET_RULES.md)"
_CSDC_2015 = "CSDC 2015-07: transfer fee 0.02 per mille of value, SH and SZ A-shares, from 2015-08-01"
_CSDC_2022 = "CSDC 2022-04: transfer fee halved to 0.01 per mille of value, from 2022-04-29 (MARKET_RULES.md)"
_BAND = "SSE/SZSE trading rules: +-10% daily limit (1996-12-16), ST/*ST +-5% (MARKET_RULES.md)"
_GEM_RULES = "SZSE ChiNext trading special provisions 2020-06-12: +-20% and no limit in the first 5 days"
_STAR_RULES = "SSE STAR trading special provisions 2019-03-01: +-20%, 200-share minimum then steps of 1"
_BSE_RULES = "BSE trading rules 2021-10-30: +-30%, no limit on the first day (MARKET_RULES.md)"
_MAIN_REG = (
    "SSE/SZSE main-board registration reform 2023-02-17: no limit in the first 5 days of IPOs from 2023-04-10"
)
_FIRST_DAY = (
    "SSE/SZSE IPO first-day rules (2014): opening within +-20%, close within +44% / -36% of the IPO price"
)
_MAX_QTY = "SSE/SZSE trading rules: a limit order at most 1,000,000 shares (MARKET_RULES.md)"

_MAX_MARKET_QTY = (
    "main-board market order cap: often quoted 500,000 shares, no primary source found (MARKET_RULES.md)"
)

RULE_TABLE: Final[tuple[DatedRule, ...]] = (
    # --- fees ------------------------------------------------------------------------------------
    DatedRule(rule=Rule.STAMP_DUTY_PPM, since=date(2008, 9, 19), value=1000, source=_MOF_2008),
    DatedRule(rule=Rule.STAMP_DUTY_PPM, since=date(2023, 8, 28), value=500, source=_MOF_2023),
    DatedRule(rule=Rule.TRANSFER_FEE_PPM, since=date(2015, 8, 1), value=20, source=_CSDC_2015),
    DatedRule(rule=Rule.TRANSFER_FEE_PPM, since=date(2022, 4, 29), value=10, source=_CSDC_2022),
    # --- daily price bands -------------------------------------------------------------------------
    DatedRule(rule=Rule.LIMIT_PCT_BP, since=_LONG_AGO, value=1000, board=_MAIN, source=_BAND),
    DatedRule(rule=Rule.LIMIT_PCT_BP, since=_LONG_AGO, value=500, board=_MAIN, status=_ST, source=_BAND),
    DatedRule(rule=Rule.LIMIT_PCT_BP, since=_LONG_AGO, value=500, board=_MAIN, status=_STAR_ST, source=_BAND),
    # delisting period (退市整理期) on the main board: the normal 10% after its first day (U; the first day
    # without a limit is not modelled)
    DatedRule(
        rule=Rule.LIMIT_PCT_BP,
        since=_LONG_AGO,
        value=1000,
        board=_MAIN,
        status=_DELIST,
        source=_BAND,
        verified=False,
    ),
    DatedRule(rule=Rule.LIMIT_PCT_BP, since=date(2009, 10, 30), value=1000, board=_GEM, source=_BAND),
    # ChiNext risk warnings before the reform: the main board's 5% (U)
    DatedRule(
        rule=Rule.LIMIT_PCT_BP,
        since=date(2009, 10, 30),
        value=500,
        board=_GEM,
        status=_ST,
        source=_BAND,
        verified=False,
    ),
    DatedRule(
        rule=Rule.LIMIT_PCT_BP,
        since=date(2009, 10, 30),
        value=500,
        board=_GEM,
        status=_STAR_ST,
        source=_BAND,
        verified=False,
    ),
    DatedRule(
        rule=Rule.LIMIT_PCT_BP,
        since=date(2009, 10, 30),
        value=1000,
        board=_GEM,
        status=_DELIST,
        source=_BAND,
        verified=False,
    ),
    DatedRule(rule=Rule.LIMIT_PCT_BP, since=_GEM_REFORM, value=2000, board=_GEM, source=_GEM_RULES),
    DatedRule(
        rule=Rule.LIMIT_PCT_BP, since=_GEM_REFORM, value=2000, board=_GEM, status=_ST, source=_GEM_RULES
    ),
    DatedRule(
        rule=Rule.LIMIT_PCT_BP, since=_GEM_REFORM, value=2000, board=_GEM, status=_STAR_ST, source=_GEM_RULES
    ),
    DatedRule(
        rule=Rule.LIMIT_PCT_BP, since=_GEM_REFORM, value=2000, board=_GEM, status=_DELIST, source=_GEM_RULES
    ),
    *(
        DatedRule(
            rule=Rule.LIMIT_PCT_BP, since=_STAR_OPEN, value=2000, board=_STAR, status=s, source=_STAR_RULES
        )
        for s in SecurityStatus
    ),
    *(
        DatedRule(
            rule=Rule.LIMIT_PCT_BP, since=_BSE_OPEN, value=3000, board=_BSE, status=s, source=_BSE_RULES
        )
        for s in SecurityStatus
    ),
    DatedRule(rule=Rule.LIMIT_PCT_BP, since=_LONG_AGO, value=1000, board=_FUND, source=_BAND),
    # --- lots and order sizes ---------------------------------------------------------------------
    DatedRule(rule=Rule.BUY_MIN, since=_LONG_AGO, value=100, source=_BAND),
    DatedRule(rule=Rule.BUY_STEP, since=_LONG_AGO, value=100, source=_BAND),
    DatedRule(rule=Rule.BUY_MIN, since=_STAR_OPEN, value=200, board=_STAR, source=_STAR_RULES),
    DatedRule(rule=Rule.BUY_STEP, since=_STAR_OPEN, value=1, board=_STAR, source=_STAR_RULES),
    DatedRule(rule=Rule.BUY_MIN, since=_BSE_OPEN, value=100, board=_BSE, source=_BSE_RULES, verified=False),
    DatedRule(rule=Rule.BUY_STEP, since=_BSE_OPEN, value=1, board=_BSE, source=_BSE_RULES, verified=False),
    DatedRule(rule=Rule.MAX_LIMIT_ORDER_QTY, since=_LONG_AGO, value=1_000_000, source=_MAX_QTY),
    DatedRule(rule=Rule.MAX_LIMIT_ORDER_QTY, since=_GEM_REFORM, value=300_000, board=_GEM, source=_GEM_RULES),
    DatedRule(
        rule=Rule.MAX_LIMIT_ORDER_QTY, since=_STAR_OPEN, value=100_000, board=_STAR, source=_STAR_RULES
    ),
    DatedRule(
        rule=Rule.MAX_LIMIT_ORDER_QTY,
        since=_BSE_OPEN,
        value=1_000_000,
        board=_BSE,
        source=_BSE_RULES,
        verified=False,
    ),
    DatedRule(
        rule=Rule.MAX_MARKET_ORDER_QTY,
        since=_LONG_AGO,
        value=500_000,
        source=_MAX_MARKET_QTY,
        verified=False,
    ),
    DatedRule(
        rule=Rule.MAX_MARKET_ORDER_QTY, since=_GEM_REFORM, value=150_000, board=_GEM, source=_GEM_RULES
    ),
    DatedRule(
        rule=Rule.MAX_MARKET_ORDER_QTY, since=_STAR_OPEN, value=50_000, board=_STAR, source=_STAR_RULES
    ),
    DatedRule(
        rule=Rule.MAX_MARKET_ORDER_QTY,
        since=_BSE_OPEN,
        value=1_000_000,
        board=_BSE,
        source=_BSE_RULES,
        verified=False,
    ),
    # --- new listings (by listing date) -------------------------------------------------------------
    # main board and ChiNext before their registration reforms: a first-day band of +44% / -36% around
    # the IPO price, then the normal band from day 2 (exact start of the 44/36 rule: U, 2014)
    DatedRule(rule=Rule.LISTING_FREE_DAYS, since=_LONG_AGO, value=0, board=_MAIN, source=_FIRST_DAY),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_UP_BP,
        since=_LONG_AGO,
        value=4400,
        board=_MAIN,
        source=_FIRST_DAY,
        verified=False,
    ),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_DOWN_BP,
        since=_LONG_AGO,
        value=3600,
        board=_MAIN,
        source=_FIRST_DAY,
        verified=False,
    ),
    DatedRule(rule=Rule.LISTING_FREE_DAYS, since=date(2023, 4, 10), value=5, board=_MAIN, source=_MAIN_REG),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_UP_BP, since=date(2023, 4, 10), value=0, board=_MAIN, source=_MAIN_REG
    ),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_DOWN_BP, since=date(2023, 4, 10), value=0, board=_MAIN, source=_MAIN_REG
    ),
    DatedRule(rule=Rule.LISTING_FREE_DAYS, since=date(2009, 10, 30), value=0, board=_GEM, source=_FIRST_DAY),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_UP_BP,
        since=date(2009, 10, 30),
        value=4400,
        board=_GEM,
        source=_FIRST_DAY,
        verified=False,
    ),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_DOWN_BP,
        since=date(2009, 10, 30),
        value=3600,
        board=_GEM,
        source=_FIRST_DAY,
        verified=False,
    ),
    DatedRule(rule=Rule.LISTING_FREE_DAYS, since=_GEM_REFORM, value=5, board=_GEM, source=_GEM_RULES),
    DatedRule(rule=Rule.LISTING_FIRST_DAY_UP_BP, since=_GEM_REFORM, value=0, board=_GEM, source=_GEM_RULES),
    DatedRule(rule=Rule.LISTING_FIRST_DAY_DOWN_BP, since=_GEM_REFORM, value=0, board=_GEM, source=_GEM_RULES),
    DatedRule(rule=Rule.LISTING_FREE_DAYS, since=_STAR_OPEN, value=5, board=_STAR, source=_STAR_RULES),
    DatedRule(rule=Rule.LISTING_FIRST_DAY_UP_BP, since=_STAR_OPEN, value=0, board=_STAR, source=_STAR_RULES),
    DatedRule(
        rule=Rule.LISTING_FIRST_DAY_DOWN_BP, since=_STAR_OPEN, value=0, board=_STAR, source=_STAR_RULES
    ),
    DatedRule(rule=Rule.LISTING_FREE_DAYS, since=_BSE_OPEN, value=1, board=_BSE, source=_BSE_RULES),
    DatedRule(rule=Rule.LISTING_FIRST_DAY_UP_BP, since=_BSE_OPEN, value=0, board=_BSE, source=_BSE_RULES),
    DatedRule(rule=Rule.LISTING_FIRST_DAY_DOWN_BP, since=_BSE_OPEN, value=0, board=_BSE, source=_BSE_RULES),
)

_TRADED_BOARDS: Final = frozenset({_MAIN, _GEM, _STAR, _BSE, _FUND})


@dataclass(frozen=True, slots=True)
class RuleTable:
    """``RULE_TABLE`` indexed for lookup: rows per (rule, board, status), latest first."""

    rows: tuple[DatedRule, ...] = RULE_TABLE
    coverage: tuple[date, date] = (COVERAGE_FROM, COVERAGE_TO)
    _index: dict[tuple[Rule, Board | None, SecurityStatus], list[DatedRule]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[Rule, Board | None, SecurityStatus], list[DatedRule]] = {}
        for row in self.rows:
            index.setdefault((row.rule, row.board, row.status), []).append(row)
        for rows in index.values():
            rows.sort(key=lambda r: r.since, reverse=True)
        object.__setattr__(self, "_index", index)

    def check_covered(self, day: date) -> None:
        first, last = self.coverage
        if not first <= day <= last:
            raise RulesCoverageError(
                f"{day} is outside the dated market rules table ({first} .. {last}): "
                "no stamp duty, transfer fee or price band is known for it (engine/market/dated_rules.py)"
            )

    def row(
        self, rule: Rule, day: date, board: Board, status: SecurityStatus = SecurityStatus.NORMAL
    ) -> DatedRule:
        """The row in force on ``day``: the board's own rows first, then the every-board rows."""
        for key in ((rule, board, status), (rule, None, status)):
            for row in self._index.get(key, ()):
                if row.since <= day:
                    return row
        raise RulesCoverageError(
            f"no {rule.value} rule for board {board.value} ({status.value}) on {day}: "
            "the board did not trade then, or the table lacks the row"
        )

    def value(
        self, rule: Rule, day: date, board: Board, status: SecurityStatus = SecurityStatus.NORMAL
    ) -> int:
        return self.row(rule, day, board, status).value


DEFAULT_TABLE: Final = RuleTable()


@dataclass(frozen=True, slots=True, kw_only=True)
class DayRules:
    """The rules of one trading day: what the simulated exchange, the checks and the algorithms use."""

    day: date
    stamp_duty_ppm: int
    transfer_fee_ppm: int
    rules: MarketRules

    def fees(self, account: FeeSchedule) -> FeeSchedule:
        """The account's schedule (commission, minimum, fund waivers) with the day's stamp duty and
        transfer fee."""
        return dataclasses.replace(
            account, stamp_duty_ppm=self.stamp_duty_ppm, transfer_fee_ppm=self.transfer_fee_ppm
        )

    def instrument(self, symbol: str) -> Instrument:
        """``symbol``'s lot, order cap and band for its status on the day (``ParameterError`` for a
        code without trading rules, as ``instrument_for``)."""
        return self.rules.instrument(symbol, self.day)


class MarketRules:
    """The dated table plus the securities' statuses: the rules of any covered day.

    ``calendar`` counts a new listing's trading days (only asked when the status book gives listing
    dates). Instruments are cached per (symbol, day)."""

    def __init__(
        self,
        table: RuleTable = DEFAULT_TABLE,
        *,
        statuses: StatusBook | None = None,
        calendar: TradingCalendar | None = None,
    ) -> None:
        self.table = table
        self.statuses = statuses if statuses is not None else StatusBook()
        self._calendar = calendar
        self._days: dict[date, DayRules] = {}
        self._instruments: dict[tuple[str, date], Instrument] = {}

    def on(self, day: date) -> DayRules:
        rules = self._days.get(day)
        if rules is None:
            self.table.check_covered(day)
            board = Board.MAIN  # fees are the same on every traded board
            rules = self._days[day] = DayRules(
                day=day,
                stamp_duty_ppm=self.table.value(Rule.STAMP_DUTY_PPM, day, board),
                transfer_fee_ppm=self.table.value(Rule.TRANSFER_FEE_PPM, day, board),
                rules=self,
            )
        return rules

    def instrument(self, symbol: str, day: date) -> Instrument:
        key = (symbol, day)
        cached = self._instruments.get(key)
        if cached is None:
            cached = self._instruments[key] = self._build(symbol, day)
        return cached

    def _build(self, symbol: str, day: date) -> Instrument:
        self.table.check_covered(day)
        base = instrument_for(symbol)  # board, exchange, tick; ParameterError for untradable codes
        board = base.board
        if board not in _TRADED_BOARDS:  # pragma: no cover - instrument_for refuses these already
            raise RulesCoverageError(f"no rules for board {board.value}")
        status = self.statuses.status(base.symbol, day)
        value = self.table.value
        limit = value(Rule.LIMIT_PCT_BP, day, board, status)
        limit_down: int | None = None
        no_limit = False
        listed = self.statuses.listing_date(base.symbol)
        if listed is not None and board is not Board.FUND:
            nth = self._trading_day_number(listed, day)  # 1 = the listing day
            if nth is not None:
                free = value(Rule.LISTING_FREE_DAYS, listed, board)
                up = value(Rule.LISTING_FIRST_DAY_UP_BP, listed, board)
                if nth <= free:
                    no_limit = True
                elif nth == 1 and up > 0:
                    limit, limit_down = up, value(Rule.LISTING_FIRST_DAY_DOWN_BP, listed, board)
        return dataclasses.replace(
            base,
            buy_min=value(Rule.BUY_MIN, day, board),
            buy_step=value(Rule.BUY_STEP, day, board),
            max_limit_order_qty=value(Rule.MAX_LIMIT_ORDER_QTY, day, board),
            max_market_order_qty=value(Rule.MAX_MARKET_ORDER_QTY, day, board),
            limit_pct_bp=limit,
            limit_down_pct_bp=limit_down,
            is_st=status in (SecurityStatus.ST, SecurityStatus.STAR_ST),
            no_price_limit=no_limit,
        )

    _NEW_LISTING_DAYS: Final = 5  # the longest first-days rule in the table

    def _trading_day_number(self, listed: date, day: date) -> int | None:
        """1 when ``day`` is the listing day, 2 the next trading day, ...; None before the listing or
        beyond the longest new-listing rule."""
        if day < listed:
            return None
        if self._calendar is None:
            self._calendar = TradingCalendar()
        current = listed if self._calendar.is_trading_day(listed) else self._calendar.next_trading_day(listed)
        for nth in range(1, self._NEW_LISTING_DAYS + 1):
            if current == day:
                return nth
            if current > day:
                return None
            current = self._calendar.next_trading_day(current)
        return None


class RulesNow:
    """The rules of the day of ``clock`` (Shanghai date): what a session's checks and algorithms ask."""

    def __init__(self, rules: MarketRules, clock: Clock) -> None:
        self.rules = rules
        self._clock = clock

    def today(self) -> DayRules:
        return self.rules.on(trading_date_of(self._clock.now_ns()))

    def instrument(self, symbol: str) -> Instrument:
        return self.rules.instrument(symbol, trading_date_of(self._clock.now_ns()))
