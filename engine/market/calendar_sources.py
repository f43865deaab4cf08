"""Where the trading days come from, until when each source knows them, and how they are combined.

A-shares trade Monday to Friday except on closures. A weekend never trades, not even a makeup working
weekend (调休上班日, when offices work to make up a holiday): the exchanges stay shut. So every source is
described the same way: the days it covers and the weekdays among them on which the market is closed.

- ``exchange-calendars`` (XSHG): the exchange's own sessions, precomputed up to the last year the
  installed version has (``bound_max``). Its whole range is asked for explicitly, so the answer does not
  depend on today's date (its default end is today plus one year).
- ``chinese-calendar`` (optional, guarded by its import): the State Council's official holidays, whole
  years up to the last one its installed version knows. The exchanges close on every official holiday
  that falls on a weekday, and have closed on a few extra days it does not list (New Year's Eve before
  2025, e.g. 2024-02-09): where it extends the range beyond exchange-calendars, add such days to the
  holidays file.
- the user's holidays file (``engine.market.holidays``): extra closures anywhere, and with
  ``known_until`` an extension of the known range past the libraries'.

The rule: a weekday is a session only if no source says it is closed (a closure from any source wins:
nothing is sent on a day one of them calls a holiday). The known range starts at the first source's
first day and ends where the sources' coverage stops being contiguous. Where two sources cover the same
day and disagree, the day is reported (``zhixing calendar``; a warning at start when still ahead).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Final

import exchange_calendars

from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.market.holidays import HolidayList

CALENDAR_START: Final = date(2000, 1, 4)  # first session of 2000; XSHG holidays are precomputed from 1999
MIN_CLOSURES_PER_YEAR: Final = 10  # weekday closures of a whole year; every year since 2000 had 16 to 24
# The holidays every year has, with where they fall and the weekday closures each has had at least
# (every year since 2000; a weekend holiday moves its closure to the Monday or Friday next to it):
# a ``known_until`` that covers a whole window must list its closures.
HOLIDAY_WINDOWS: Final = (
    ("New Year (元旦)", (1, 1), (1, 3), 1),
    ("Spring Festival (春节)", (1, 20), (2, 22), 3),
    ("Labour Day (劳动节)", (5, 1), (5, 5), 1),
    ("National Day (国庆节)", (10, 1), (10, 8), 3),
)
_ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CalendarSource:
    """One source: the days ``first``..``last`` it covers and the weekdays among them that are closed."""

    name: str  # "exchange-calendars 4.13.2 (XSHG)"
    first: date
    last: date
    closed: frozenset[date]

    def clipped(self, last: date) -> CalendarSource:
        """The same source as if it knew only up to ``last`` (an older version; tests)."""
        return replace(self, last=last, closed=frozenset(d for d in self.closed if d <= last))


@dataclass(frozen=True, slots=True)
class Disagreement:
    day: date
    closed_by: tuple[str, ...]
    open_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Coverage:
    """A source as the merged calendar uses it (shown by ``zhixing calendar``)."""

    name: str
    first: date | None
    last: date | None
    used: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class KnownDays:
    """The sources merged: sessions from ``first`` to ``known_until`` and every closure known."""

    first: date
    known_until: date
    sessions: tuple[date, ...]
    closures: frozenset[date]  # weekday closures, including holidays-file dates past ``known_until``
    coverage: tuple[Coverage, ...]
    disagreements: tuple[Disagreement, ...]
    notes: tuple[str, ...]
    closed_by_source: tuple[tuple[str, frozenset[date]], ...] = ()

    def closed_by(self, day: date) -> tuple[str, ...]:
        """The sources (and the holidays file) that close ``day``."""
        return tuple(name for name, closed in self.closed_by_source if day in closed)


# --- the library sources ------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def exchange_calendars_source(name: str = "XSHG") -> CalendarSource:
    """The ``exchange_calendars`` calendar ``name`` over its whole precomputed range."""
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads Series.values on tz-aware data, which pandas 3 deprecates.
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        calendar = exchange_calendars.get_calendar(name, start=CALENDAR_START.isoformat())
        bound = type(calendar).bound_max()
        if bound is not None and calendar.last_session < bound:
            calendar = exchange_calendars.get_calendar(name, start=CALENDAR_START.isoformat(), end=bound)
        sessions = {session.date() for session in calendar.sessions}
    first, last = min(sessions), max(sessions)
    if bound is not None:
        last = max(last, bound.date())  # the holidays after the last session are known too
    closed = frozenset(d for d in _weekdays(first, last) if d not in sessions)
    return CalendarSource(
        f"exchange-calendars {_version('exchange-calendars')} ({name})", first, last, closed
    )


def chinese_calendar_source(module: Any = None) -> CalendarSource | None:
    """The official holidays of ``chinese_calendar`` (whole years), or None when it is not installed.

    ``module`` stands in for the package (tests); its ``holidays`` maps each official rest day to a
    name. Its makeup working days (``workdays``) are deliberately not used: they fall on weekends, and
    A-shares do not trade on weekends."""
    if module is None:
        try:
            module = importlib.import_module("chinese_calendar")
        except ImportError:
            return None
    try:
        rest_days = {d for d in module.holidays if isinstance(d, date)}
        version = str(getattr(module, "__version__", "")) or _version("chinese-calendar")
    except (AttributeError, TypeError):  # a release that changed its layout: not used, not guessed
        return None
    if not rest_days:
        return None
    first, last = date(min(rest_days).year, 1, 1), date(max(rest_days).year, 12, 31)
    closed = frozenset(d for d in rest_days if d.weekday() < 5)
    return CalendarSource(f"chinese-calendar {version} (official holidays)", first, last, closed)


@lru_cache(maxsize=4)
def library_sources(name: str = "XSHG") -> tuple[CalendarSource, ...]:
    """The installed sources for calendar ``name``: exchange-calendars, then chinese-calendar (XSHG only)."""
    sources = [exchange_calendars_source(name)]
    if name == "XSHG":
        official = chinese_calendar_source()
        if official is not None:
            sources.append(official)
    return tuple(sources)


# --- merging ------------------------------------------------------------------------------------------


def _weekdays(first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += _ONE_DAY
    return days


def _check_extension(holidays: HolidayList, libraries_end: date) -> None:
    """A ``known_until`` past the libraries vouches for every closure up to it: refuse a file that
    plainly does not list them: a holiday window (``HOLIDAY_WINDOWS``) it covers without its weekday
    closures, or a whole year with fewer than ``MIN_CLOSURES_PER_YEAR``. Weekend dates count for nothing
    (A-shares never trade on a weekend)."""
    assert holidays.known_until is not None
    start = libraries_end + _ONE_DAY
    weekdays = sorted(d for d in holidays.dates if d.weekday() < 5)
    for year in range(start.year, holidays.known_until.year + 1):
        lo, hi = max(start, date(year, 1, 1)), min(holidays.known_until, date(year, 12, 31))
        listed = [d for d in weekdays if lo <= d <= hi]
        missing = ""
        for name, (m1, d1), (m2, d2), least in HOLIDAY_WINDOWS:
            w_lo, w_hi = date(year, m1, d1), date(year, m2, d2)
            if lo <= w_lo and w_hi <= hi and sum(w_lo <= d <= w_hi for d in listed) < least:
                missing = f"no {name} closures ({least}+ weekdays between {w_lo} and {w_hi})"
                break
        whole = lo == date(year, 1, 1) and hi == date(year, 12, 31)
        if not missing and whole and len(listed) < MIN_CLOSURES_PER_YEAR:
            missing = f"{len(listed)} weekday closure(s) for the whole of {year}"
            missing += f" (every year has {MIN_CLOSURES_PER_YEAR}+)"
        if missing:
            raise InputError(
                f"known_until {holidays.known_until.isoformat()} vouches for every exchange closure up to it "
                f"beyond {libraries_end.isoformat()} (where the installed libraries stop), but the file "
                f"lists {missing}; enter {year}'s exchange holidays from the SSE/SZSE notice, or lower "
                "known_until",
                path=str(holidays.path),
                row=holidays.known_until_line,
                field="known_until",
            )


def merge(sources: Sequence[CalendarSource], holidays: HolidayList | None = None) -> KnownDays:
    """Combine ``sources`` and the user's ``holidays`` (module docstring: closures win, contiguous range)."""
    if not sources:
        raise ParameterError("a trading calendar needs at least one source", name="sources", value=sources)
    ordered = sorted(sources, key=lambda s: s.first)
    first, end = ordered[0].first, ordered[0].last
    coverage: list[Coverage] = []
    notes: list[str] = []
    used: list[CalendarSource] = []
    for source in ordered:
        if source.first > end + _ONE_DAY:
            coverage.append(Coverage(source.name, source.first, source.last, False, "after a gap"))
            notes.append(f"{source.name} starts {source.first.isoformat()}, after a gap; not used")
            continue
        end = max(end, source.last)
        used.append(source)
        coverage.append(Coverage(source.name, source.first, source.last, True))
    closures: set[date] = set().union(*(s.closed for s in used))
    if holidays is not None:
        closures.update(d for d in holidays.dates if d.weekday() < 5)
        file_name = f"holidays file {holidays.path}"
        extension: tuple[date | None, date | None] = (None, None)
        note = "extra closures only (no known_until)"
        if holidays.known_until is not None and holidays.known_until > end:
            _check_extension(holidays, end)
            extension, note = (end + _ONE_DAY, holidays.known_until), "known_until"
            end = holidays.known_until
        elif holidays.known_until is not None:
            note = f"known_until {holidays.known_until.isoformat()} adds nothing (already known)"
            notes.append(
                f"{file_name}: known_until {holidays.known_until.isoformat()} adds nothing: the libraries "
                f"already know until {end.isoformat()}"
            )
        coverage.append(Coverage(file_name, extension[0], extension[1], True, note))
    sessions = tuple(d for d in _weekdays(first, end) if d not in closures)
    return KnownDays(
        first=first,
        known_until=end,
        sessions=sessions,
        closures=frozenset(closures),
        coverage=tuple(coverage),
        disagreements=_disagreements(used, holidays),
        notes=tuple(notes),
        closed_by_source=tuple((s.name, s.closed) for s in used)
        + (() if holidays is None else ((_file_label(holidays), frozenset(holidays.dates)),)),
    )


def _file_label(holidays: HolidayList) -> str:
    return f"holidays file {holidays.path.name}"


def _disagreements(
    sources: Sequence[CalendarSource], holidays: HolidayList | None
) -> tuple[Disagreement, ...]:
    """Days that one source (or the holidays file) closes and another source, covering them, keeps open."""
    named: list[tuple[str, date, date, frozenset[date]]] = [
        (s.name, s.first, s.last, s.closed) for s in sources
    ]
    claims: dict[date, set[str]] = {}
    for name, _, _, closed in named:
        for day in closed:
            claims.setdefault(day, set()).add(name)
    if holidays is not None:
        for day in holidays.dates:
            if day.weekday() < 5:
                claims.setdefault(day, set()).add(_file_label(holidays))
    found = []
    for day in sorted(claims):
        open_by = tuple(name for name, lo, hi, closed in named if lo <= day <= hi and day not in closed)
        if open_by:
            found.append(Disagreement(day, tuple(sorted(claims[day])), open_by))
    return tuple(found)
