"""Trading days and intraday phases, always in Asia/Shanghai whatever the host time zone.

Trading days come from the sources in ``engine.market.calendar_sources``: the ``exchange_calendars``
XSHG calendar (it covers SZSE and BSE days too), ``chinese-calendar`` when installed, and the user's
holidays file; there is no hand-written holiday list here. The calendar knows its days up to
``known_until``. Past it, ``beyond_known`` decides: ``"refuse"`` (the default) makes every question about
such a day a ``CalendarError`` that says what to update (and the intraday questions answer CLOSED, so
nothing is sent on a day nobody vouched for); ``"weekdays"`` takes every weekday that no source closes
as a trading day (the operator's explicit choice; ``engine.calendar_guard`` warns each such day).

Intraday boundaries (MARKET_RULES.md, V, D):

==============  ===============  =============================================================
phase           Shanghai time    notes
==============  ===============  =============================================================
PRE_OPEN        00:00-09:15      trading day, before the opening call
OPENING_CALL    09:15-09:25      no cancels accepted 09:20-09:25
PRE_CONTINUOUS  09:25-09:30      orders and cancels accepted and queued, no matching
CONTINUOUS      09:30-11:30
LUNCH           11:30-13:00
CONTINUOUS      13:00-14:57
CLOSING_CALL    14:57-15:00      one match at 15:00; SZSE takes no cancels (SSE: U, assumed the same)
AFTER_HOURS     15:00-24:00      includes STAR/ChiNext fixed-price trading 15:05-15:30
CLOSED          all day          non-trading days
==============  ===============  =============================================================

Each boundary is start-inclusive, end-exclusive. The times are today's rules; SSE had no closing call
auction before 2018-08-20, which this module does not model.

``phase_at`` sits on hot paths: the day's boundaries are computed once as int ns, then a call is a
range check and a ``bisect`` over eight ints.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

from zhixing.engine.errors import CalendarError, ParameterError
from zhixing.engine.market.calendar_sources import CalendarSource, KnownDays, library_sources, merge
from zhixing.engine.market.holidays import HolidayList

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
BEYOND_KNOWN: Final = ("refuse", "weekdays")
BeyondKnown = Literal["refuse", "weekdays"]
HOW_TO_UPDATE: Final = (
    "To go on: upgrade the calendar packages (pip install -U exchange-calendars chinese-calendar) once a "
    "release knows the coming year, or list the coming year's exchange holidays in the [calendar] "
    "holidays file with a known_until line (docs/OPERATIONS.md, 'Updating the trading calendar'); check "
    "with 'zhixing calendar --config FILE'. Or set [calendar] beyond_known = \"weekdays\" to trade every "
    "weekday beyond the known range (holidays not listed anywhere would then be taken for trading days)."
)
_HHMM = re.compile(r"[0-9]{2}:[0-9]{2}(:[0-9]{2})?")


class Phase(StrEnum):
    CLOSED = "CLOSED"
    PRE_OPEN = "PRE_OPEN"
    OPENING_CALL = "OPENING_CALL"
    PRE_CONTINUOUS = "PRE_CONTINUOUS"
    CONTINUOUS = "CONTINUOUS"
    LUNCH = "LUNCH"
    CLOSING_CALL = "CLOSING_CALL"
    AFTER_HOURS = "AFTER_HOURS"


# Each segment of a trading day, in order: (start time, phase, exchange takes new orders, takes cancels).
# Before the first start the phase is PRE_OPEN (no orders, no cancels).
_SEGMENTS: Final[tuple[tuple[str, Phase, bool, bool], ...]] = (
    ("09:15", Phase.OPENING_CALL, True, True),
    ("09:20", Phase.OPENING_CALL, True, False),  # V, D: no cancels 09:20-09:25
    ("09:25", Phase.PRE_CONTINUOUS, True, True),  # queued until 09:30
    ("09:30", Phase.CONTINUOUS, True, True),
    ("11:30", Phase.LUNCH, False, False),  # brokers may queue; the exchange takes nothing
    ("13:00", Phase.CONTINUOUS, True, True),
    ("14:57", Phase.CLOSING_CALL, True, False),  # no cancels: SZSE V; SSE U, assumed the same
    ("15:00", Phase.AFTER_HOURS, False, False),  # fixed-price after-hours trading is not modelled
)
_PHASES: Final = (Phase.PRE_OPEN, *(segment[1] for segment in _SEGMENTS))
_ORDERS: Final = (False, *(segment[2] for segment in _SEGMENTS))
_CANCELS: Final = (False, *(segment[3] for segment in _SEGMENTS))


def _to_ns(moment: datetime) -> int:
    delta = moment - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000


def shanghai_ns(day: date, hhmm: str) -> int:
    """``day`` at ``hhmm`` (``"09:30"`` or ``"09:30:15"``) Shanghai time, as int ns since the epoch (UTC)."""
    try:
        clock = time.fromisoformat(hhmm) if _HHMM.fullmatch(hhmm) else None
    except ValueError:  # 25:00
        clock = None
    if clock is None:
        raise ParameterError(f"bad time of day {hhmm!r}: expected 'HH:MM' or 'HH:MM:SS'", value=hhmm)
    return _to_ns(datetime.combine(day, clock, tzinfo=SHANGHAI))


def ns_to_shanghai(ts_ns: int) -> datetime:
    """An aware Shanghai datetime (microsecond precision; the sub-microsecond rest is dropped)."""
    return (_EPOCH + timedelta(microseconds=ts_ns // 1_000)).astimezone(SHANGHAI)


def trading_date_of(ts_ns: int) -> date:
    """The Shanghai calendar date of ``ts_ns`` (A-shares have no night session); holidays are not checked."""
    return ns_to_shanghai(ts_ns).date()


def iso8601(ts_ns: int) -> str:
    """``2022-06-01T09:15:00.000+08:00``: Shanghai time, milliseconds, explicit offset."""
    return ns_to_shanghai(ts_ns).isoformat(timespec="milliseconds")


@lru_cache(maxsize=8)
def _default_known(name: str) -> KnownDays:
    """The installed sources merged, once per process per calendar name."""
    return merge(library_sources(name))


@dataclass(frozen=True, slots=True)
class _Day:
    start_ns: int  # Shanghai midnight
    end_ns: int  # next Shanghai midnight
    trading: bool
    boundaries: tuple[int, ...]  # segment start times, ns; empty on non-trading days


class TradingCalendar:
    """Trading days and phases for the A-share market, from the sources of ``calendar_sources``.

    ``sources`` defaults to the installed libraries; ``holidays`` is the user's file; ``beyond_known``
    is what a day past ``known_until`` is (module docstring)."""

    def __init__(
        self,
        name: str = "XSHG",
        *,
        sources: Sequence[CalendarSource] | None = None,
        holidays: HolidayList | None = None,
        beyond_known: BeyondKnown = "refuse",
    ) -> None:
        if beyond_known not in BEYOND_KNOWN:
            raise ParameterError(
                f"must be one of {', '.join(BEYOND_KNOWN)}, got {beyond_known!r}",
                name="beyond_known",
                value=beyond_known,
            )
        self.name = name
        self.beyond_known: BeyondKnown = beyond_known
        if sources is None and holidays is None:
            self.known = _default_known(name)
        else:
            self.known = merge(library_sources(name) if sources is None else sources, holidays)
        self._sessions = self.known.sessions
        self._session_set = frozenset(self._sessions)
        self._first, self._last = self.known.first, self.known.known_until
        self._days: dict[date, _Day] = {}
        self._last_day: _Day | None = None

    @property
    def known_until(self) -> date:
        """The last day whose trading status every source vouches for."""
        return self._last

    @property
    def first_day(self) -> date:
        return self._first

    def is_known(self, day: date) -> bool:
        return self._first <= day <= self._last

    def beyond_known_message(self, day: date) -> str:
        sources = ", ".join(c.name for c in self.known.coverage if c.used)
        return (
            f"{day.isoformat()} is past the end of the known {self.name} trading calendar "
            f"({self._last.isoformat()}; sources: {sources}). {HOW_TO_UPDATE}"
        )

    # --- days -------------------------------------------------------------------------------------

    def _check_bounds(self, day: date) -> bool:
        """True when ``day`` is inside the known range; False past it with ``beyond_known = "weekdays"``."""
        if day < self._first:
            raise ParameterError(  # not a CalendarError: that one means "past the end", refused
                f"{day.isoformat()} is outside the {self.name} calendar "
                f"(it starts {self._first.isoformat()})",
                value=day,
            )
        if day <= self._last:
            return True
        if self.beyond_known == "refuse":
            raise CalendarError(self.beyond_known_message(day))
        return False

    def _weekday_open(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.known.closures

    def is_trading_day(self, day: date) -> bool:
        if self._check_bounds(day):
            return day in self._session_set
        return self._weekday_open(day)

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after ``day``."""
        if self._check_bounds(day):
            index = bisect.bisect_right(self._sessions, day)
            if index < len(self._sessions):
                return self._sessions[index]
            day = self._last
        following = day + timedelta(days=1)
        while not self.is_trading_day(following):  # past the known range: refuses, or weekdays
            following += timedelta(days=1)
        return following

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before ``day``."""
        if not self._check_bounds(day):
            before = day - timedelta(days=1)
            while before > self._last and not self._weekday_open(before):
                before -= timedelta(days=1)
            if before > self._last:
                return before
            day = self._last + timedelta(days=1)
        index = bisect.bisect_left(self._sessions, day)
        if index == 0:
            raise ParameterError(
                f"no {self.name} trading day before {day.isoformat()} in the calendar", value=day
            )
        return self._sessions[index - 1]

    # --- intraday ---------------------------------------------------------------------------------

    def _day(self, day: date) -> _Day:
        cached = self._days.get(day)
        if cached is None:
            try:
                trading = self.is_trading_day(day)
            except CalendarError:  # past the known range, refused: closed, nothing is sent that day
                trading = False
            boundaries = tuple(shanghai_ns(day, segment[0]) for segment in _SEGMENTS) if trading else ()
            start_ns = _to_ns(datetime.combine(day, time(0), tzinfo=SHANGHAI))
            end_ns = _to_ns(datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI))
            cached = self._days[day] = _Day(start_ns, end_ns, trading, boundaries)
        return cached

    def _day_of(self, ts_ns: int) -> _Day:
        last = self._last_day
        if last is not None and last.start_ns <= ts_ns < last.end_ns:
            return last
        day = self._day(trading_date_of(ts_ns))
        self._last_day = day
        return day

    def _segment(self, ts_ns: int) -> int:
        """Index into ``_PHASES``/``_CANCELS``/``_ORDERS``, or -1 on a non-trading day."""
        day = self._day_of(ts_ns)
        if not day.trading:
            return -1
        return bisect.bisect_right(day.boundaries, ts_ns)

    def phase_at(self, ts_ns: int) -> Phase:
        segment = self._segment(ts_ns)
        return Phase.CLOSED if segment < 0 else _PHASES[segment]

    def is_continuous(self, ts_ns: int) -> bool:
        return self.phase_at(ts_ns) is Phase.CONTINUOUS

    def accepts_cancel(self, ts_ns: int) -> bool:
        """Whether the exchange takes a cancel now: not 09:20-09:25, not in the closing call, not at lunch
        and not outside 09:15-15:00 (brokers may queue cancels; the exchange does not see them)."""
        segment = self._segment(ts_ns)
        return segment >= 0 and _CANCELS[segment]

    def accepts_orders(self, ts_ns: int) -> bool:
        """Whether the exchange takes new orders now: 09:15-11:30 and 13:00-15:00 on a trading day."""
        segment = self._segment(ts_ns)
        return segment >= 0 and _ORDERS[segment]

    def continuous_windows(self, day: date) -> list[tuple[int, int]]:
        """The two continuous-trading windows of ``day`` as (start_ns, end_ns); empty on a non-trading day."""
        if not self._day(day).trading:
            return []
        return [
            (shanghai_ns(day, "09:30"), shanghai_ns(day, "11:30")),
            (shanghai_ns(day, "13:00"), shanghai_ns(day, "14:57")),
        ]
