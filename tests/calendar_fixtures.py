"""Shared calendar fixtures: an exchange calendar that ends 2026-12-31 whatever version is installed,
a made-up set of 2027 exchange holidays, a stand-in for the ``chinese_calendar`` package."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from zhixing.engine.market.calendar_sources import CalendarSource, exchange_calendars_source

END_2026 = date(2026, 12, 31)

# 2027's closures as a user would enter them from the exchange's notice (made up for the tests; the
# real notice is published in November or December): 18 weekdays, and the weekends inside the holidays.
HOLIDAYS_2027 = (
    [date(2027, 1, 1)]
    + [date(2027, 2, 5) + timedelta(days=k) for k in range(8)]  # 春节 Fri 02-05 .. Fri 02-12
    + [date(2027, 4, 5)]
    + [date(2027, 5, 1) + timedelta(days=k) for k in range(5)]  # Sat 05-01 .. Wed 05-05
    + [date(2027, 6, 9), date(2027, 9, 15)]
    + [date(2027, 10, 1) + timedelta(days=k) for k in range(7)]  # Fri 10-01 .. Thu 10-07
)
MAKEUP_SATURDAY_2027 = date(2027, 2, 20)  # a makeup working Saturday: offices work, exchanges do not


@lru_cache(maxsize=1)
def unupdated_exchange_calendar() -> CalendarSource:
    """exchange-calendars as a user who did not upgrade has it: known until 2026-12-31."""
    return exchange_calendars_source().clipped(END_2026)


def fake_chinese_calendar(
    holidays: Sequence[date], workdays: Sequence[date] = (), version: str = "9.9.9"
) -> object:
    """The part of ``chinese_calendar``'s layout the source reads: ``holidays`` (date -> name)."""
    return SimpleNamespace(
        holidays={d: "holiday" for d in holidays},
        workdays={d: "makeup" for d in workdays},
        __version__=version,
    )


def holidays_file(
    folder: Path, *, known_until: str | None = "2027-12-31", days: list[date] | None = None
) -> Path:
    lines = ["# exchange holidays 2027 (SSE notice)"]
    if known_until is not None:
        lines.append(f"known_until = {known_until}")
    lines += [d.isoformat() for d in (HOLIDAYS_2027 if days is None else days)]
    path = folder / "holidays.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
