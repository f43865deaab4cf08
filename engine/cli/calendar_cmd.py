"""``zhixing calendar [--config FILE]``: until when the trading calendar is known, from which sources,
and the next exchange holidays.

With ``--config`` the config's ``[calendar]`` (holidays file, ``beyond_known``) is applied, as
``zhixing run`` would. The exit status is 0 while the calendar is known for more than 30 days, 1 within
them or past the known range (a check a monitoring job can run), so December's update is not missed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from zhixing.engine.calendar_guard import (
    WARN_DAYS,
    CalendarState,
    calendar_for,
    status_message,
    status_of,
    upcoming_disagreements,
)
from zhixing.engine.cli.routes import load_checked
from zhixing.engine.clock import LiveClock
from zhixing.engine.errors import InputError
from zhixing.engine.market.calendar import TradingCalendar, trading_date_of
from zhixing.engine.market.calendar_sources import chinese_calendar_source

_WEEKDAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def add_parsers(sub: Any) -> None:
    cal = sub.add_parser(
        "calendar", help="until when the trading calendar is known, its sources, the next holidays"
    )
    cal.add_argument(
        "--config", type=Path, help="apply this config's [calendar] (holidays file, beyond_known)"
    )
    cal.add_argument("--date", help="as of this day, YYYY-MM-DD (default: today in Asia/Shanghai)")
    cal.add_argument("-n", type=int, default=8, help="how many coming holidays to list (default 8)")
    cal.set_defaults(handler=run_calendar)


@dataclass(frozen=True, slots=True)
class Holiday:
    """A run of closed weekdays (the weekends between them included)."""

    first: date
    last: date
    weekdays: int
    closed_by: tuple[str, ...]


def coming_holidays(calendar: TradingCalendar, today: date, n: int) -> list[Holiday]:
    """The next ``n`` holidays from ``today`` on, as far as the calendar knows closures."""
    closures = sorted(d for d in calendar.known.closures if d >= today)
    runs: list[list[date]] = []
    for day in closures:
        if runs and all(
            (runs[-1][-1] + timedelta(days=k)).weekday() >= 5 for k in range(1, (day - runs[-1][-1]).days)
        ):
            runs[-1].append(day)
        else:
            if len(runs) == n:
                break
            runs.append([day])
    out = []
    for run in runs:
        names = sorted({name for day in run for name in calendar.known.closed_by(day)})
        out.append(Holiday(run[0], run[-1], len(run), tuple(names)))
    return out


def _short(name: str) -> str:
    return "holidays file" if name.startswith("holidays file") else name.split(" ")[0]


def render(calendar: TradingCalendar, today: date, n: int, console: Console) -> int:
    """Print the calendar's state as of ``today``; the exit status (0 known, 1 ending or past)."""
    status = status_of(calendar, today)
    known = calendar.known
    left = status.days_left
    distance = f"{left} day(s) after {today.isoformat()}" if left >= 0 else f"{-left} day(s) before it"
    console.print(
        f"{calendar.name} trading calendar: known {known.first.isoformat()} to "
        f"[bold]{known.known_until.isoformat()}[/] ({distance}); beyond it: {calendar.beyond_known}",
        highlight=False,
    )
    table = Table(title="sources")
    for column in ("source", "from", "until", "used", "note"):
        table.add_column(column)
    for c in known.coverage:
        table.add_row(
            c.name,
            c.first.isoformat() if c.first else "-",
            c.last.isoformat() if c.last else "-",
            "yes" if c.used else "no",
            c.note,
        )
    if (
        not any(c.name.startswith("chinese-calendar") for c in known.coverage)
        and chinese_calendar_source() is None
    ):
        table.add_row("chinese-calendar", "-", "-", "no", "not installed (pip install chinese-calendar)")
    console.print(table)
    for note in known.notes:
        console.print(f"note: {note}")

    holidays = Table(title=f"next holidays from {today.isoformat()}")
    for column in ("from", "to", "weekdays closed", "closed by"):
        holidays.add_column(column)
    coming = coming_holidays(calendar, today, n)
    for h in coming:
        holidays.add_row(
            f"{h.first.isoformat()} {_WEEKDAY[h.first.weekday()]}",
            f"{h.last.isoformat()} {_WEEKDAY[h.last.weekday()]}",
            str(h.weekdays),
            ", ".join(sorted({_short(name) for name in h.closed_by})),
        )
    if not coming:
        holidays.caption = f"none known: no source lists a closure after {today.isoformat()}"
    console.print(holidays)
    ahead = upcoming_disagreements(calendar, today)
    if ahead:
        disagreements = Table(title="sources disagree (treated as closed)")
        for column in ("day", "closed by", "open by"):
            disagreements.add_column(column)
        for d in ahead:
            disagreements.add_row(d.day.isoformat(), ", ".join(d.closed_by), ", ".join(d.open_by))
        console.print(disagreements)
    message = status_message(calendar, status)
    if message is None:
        console.print(f"[green]OK[/]: known for more than {WARN_DAYS} days")
        return 0
    colour = "red" if status.state is CalendarState.BEYOND else "yellow"
    console.print(f"[bold {colour}]{message.subject.removeprefix('[zhixing] ')}[/]", highlight=False)
    console.print(message.body, highlight=False, markup=False)
    return 1


def run_calendar(args: argparse.Namespace) -> int:
    calendar = calendar_for(load_checked(args.config)) if args.config else TradingCalendar()
    if args.date:
        try:
            today = date.fromisoformat(args.date)
        except ValueError:
            raise InputError(f"not a date: {args.date!r} (expected YYYY-MM-DD)", field="--date") from None
    else:
        today = trading_date_of(LiveClock().now_ns())
    return render(calendar, today, args.n, Console(file=sys.stdout, width=120))
