"""Trading days and intraday phases, always in Asia/Shanghai whatever the host time zone.

Trading days come from the ``exchange_calendars`` XSHG calendar (it covers SZSE and BSE days too);
there is no hand-written holiday list here. Intraday boundaries (MARKET_RULES.md, V, D):

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
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import exchange_calendars

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CALENDAR_START: Final = "2000-01-04"  # first session of 2000; XSHG holidays are precomputed from 1999
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
        if not _HHMM.fullmatch(hhmm):
            raise ValueError("wrong format")
        clock = time.fromisoformat(hhmm)
    except ValueError as exc:
        raise ValueError(f"bad time of day {hhmm!r}: expected 'HH:MM' or 'HH:MM:SS' ({exc})") from exc
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
def _sessions(name: str) -> tuple[date, ...]:
    """The calendar's session dates, loaded once per process per calendar name."""
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads Series.values on tz-aware data, which pandas 3 deprecates.
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        calendar = exchange_calendars.get_calendar(name, start=_CALENDAR_START)
        return tuple(session.date() for session in calendar.sessions)


@dataclass(frozen=True, slots=True)
class _Day:
    start_ns: int  # Shanghai midnight
    end_ns: int  # next Shanghai midnight
    trading: bool
    boundaries: tuple[int, ...]  # segment start times, ns; empty on non-trading days


class TradingCalendar:
    """Trading days and phases for the A-share market, from an ``exchange_calendars`` calendar."""

    def __init__(self, name: str = "XSHG") -> None:
        self.name = name
        self._sessions = _sessions(name)
        self._session_set = frozenset(self._sessions)
        self._first, self._last = self._sessions[0], self._sessions[-1]
        self._days: dict[date, _Day] = {}
        self._last_day: _Day | None = None

    # --- days -------------------------------------------------------------------------------------

    def _check_bounds(self, day: date) -> None:
        if not self._first <= day <= self._last:
            raise ValueError(
                f"{day.isoformat()} is outside the {self.name} calendar "
                f"({self._first.isoformat()} to {self._last.isoformat()}); update exchange_calendars"
            )

    def is_trading_day(self, day: date) -> bool:
        self._check_bounds(day)
        return day in self._session_set

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after ``day``."""
        self._check_bounds(day)
        index = bisect.bisect_right(self._sessions, day)
        if index == len(self._sessions):
            raise ValueError(f"no {self.name} trading day after {day.isoformat()} in the calendar")
        return self._sessions[index]

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before ``day``."""
        self._check_bounds(day)
        index = bisect.bisect_left(self._sessions, day)
        if index == 0:
            raise ValueError(f"no {self.name} trading day before {day.isoformat()} in the calendar")
        return self._sessions[index - 1]

    # --- intraday ---------------------------------------------------------------------------------

    def _day(self, day: date) -> _Day:
        cached = self._days.get(day)
        if cached is None:
            trading = self.is_trading_day(day)
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
