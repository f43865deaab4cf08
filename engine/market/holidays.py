"""The user's holidays file: exchange closures the libraries do not know yet, and until when it vouches.

Configured as ``[calendar] holidays = FILE``. UTF-8 text (a BOM is fine), in one of two layouts:

- one date per line, ``YYYY-MM-DD`` (``YYYY/M/D`` is accepted too); ``#`` starts a comment, on its own
  line or after the date (``2027-02-08  # 春节``);
- a CSV whose header has a ``date`` column (any other columns, e.g. ``name``, are ignored); whole-line
  ``#`` comments are allowed.

In both, one optional line ``known_until = YYYY-MM-DD`` (or ``known_until,YYYY-MM-DD`` as a CSV row)
says that every closure up to that date is listed: the calendar's known range then reaches that day.

Every date is checked: a real day between 2000-01-01 and 2099-12-31, listed once. Weekend dates are
accepted and change nothing (official holiday lists include the weekends inside a holiday, and A-shares
never trade on a weekend, not even a makeup working weekend). A file that cannot be read this way is
refused whole with an ``InputError`` naming the file, the line and the field; nothing is half-read.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from zhixing.engine.errors import InputError
from zhixing.engine.input_limits import HOLIDAYS

FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 2099
MAX_BYTES: Final = HOLIDAYS.max_bytes  # a holidays list is a few hundred bytes a year; more is not one
MAX_LINE: Final = 4 * HOLIDAYS.max_cell  # a date, a name and a comment
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SLASHED = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})")
_STARTS_WITH_DATE = re.compile(r"[0-9]{4}[-/][0-9]")
_KNOWN_UNTIL = re.compile(r"known_until\s*[=:,]\s*(.*?)[\s,]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HolidayList:
    """The file's dates (ascending) with the line each came from, and its ``known_until`` line if any."""

    path: Path
    dates: tuple[date, ...]
    lines: tuple[int, ...]  # the line number of each date, same order
    known_until: date | None = None
    known_until_line: int | None = None

    def line_of(self, day: date) -> int | None:
        for listed, line in zip(self.dates, self.lines, strict=True):
            if listed == day:
                return line
        return None


def parse_day(text: str, *, path: Path, line: int, field: str) -> date:
    """``YYYY-MM-DD`` or ``YYYY/M/D`` between 2000 and 2099, else an ``InputError`` naming where."""
    cell = text.strip()
    match = _ISO.fullmatch(cell) or _SLASHED.fullmatch(cell)
    if match is None:
        raise InputError(f"not a date: {cell!r} (expected YYYY-MM-DD)", path=str(path), row=line, field=field)
    year, month, day = (int(part) for part in match.groups())
    try:
        parsed = date(year, month, day)
    except ValueError as exc:
        raise InputError(f"no such day {cell!r} ({exc})", path=str(path), row=line, field=field) from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise InputError(
            f"{parsed.isoformat()} is outside {FIRST_YEAR}-{LAST_YEAR} (a typo in the year?)",
            path=str(path),
            row=line,
            field=field,
        )
    return parsed


def _text(path: Path) -> str:
    where = str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_BYTES:  # refused before a byte is read
                raise InputError(f"is {size:,} bytes: too large for a holidays list", path=where)
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError("no such holidays file", path=where) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a holidays file", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", path=where) from None
    if len(data) > MAX_BYTES:  # it grew since
        raise InputError(f"is over {MAX_BYTES:,} bytes: too large for a holidays list", path=where)
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise InputError("contains a NUL byte: not a text file", path=where, row=line)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text (byte {exc.start}); save the file as UTF-8", path=where, row=line
        ) from None


def _cells(line: str, path: Path, number: int) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        raise InputError(f"not readable as CSV: {exc}", path=str(path), row=number) from None


def _check_line_size(raw: str, where: str, number: int) -> None:
    """A file of too many lines, or one over-long line, is not a holidays list."""
    if number > HOLIDAYS.max_rows:
        raise InputError(
            f"more than {HOLIDAYS.max_rows:,} lines: not a holidays list", path=where, row=number
        )
    if len(raw) > MAX_LINE:
        raise InputError(
            f"a line of {len(raw):,} characters (at most {MAX_LINE:,}): not a holidays list",
            path=where,
            row=number,
        )


def _header_date_column(stripped: str, path: Path, number: int) -> int:
    """The index of the one 'date' column of a CSV header line, else an ``InputError``."""
    where = str(path)
    header = [cell.strip().lower() for cell in _cells(stripped, path, number)]
    if "date" not in header:
        raise InputError(
            "neither a date (one per line, YYYY-MM-DD) nor a CSV header with a 'date' column: "
            f"{stripped[:60]!r}",
            path=where,
            row=number,
            field="date",
        )
    if header.count("date") > 1:
        raise InputError("the CSV header has two 'date' columns", path=where, row=number)
    return header.index("date")


def _lone_date(content: str, path: Path, number: int) -> date:
    """The date of a one-date-per-line line (its trailing comment already cut off)."""
    if " " in content or "," in content or "\t" in content:
        raise InputError(
            f"expected one date per line (a name goes after '#'), got {content[:60]!r}",
            path=str(path),
            row=number,
            field="date",
        )
    return parse_day(content, path=path, line=number, field="date")


def _csv_date(raw: str, path: Path, number: int, date_column: int) -> date | None:
    """The date in column ``date_column`` of a CSV row; ``None`` for a spreadsheet's empty row (",,")."""
    cells = _cells(raw, path, number)
    if not any(c.strip() for c in cells):
        return None
    if date_column >= len(cells) or not cells[date_column].strip():
        raise InputError("the date is missing", path=str(path), row=number, field="date")
    return parse_day(cells[date_column], path=path, line=number, field="date")


def read_holidays(path: Path) -> HolidayList:
    """Read and check the whole file; raise ``InputError`` (file, line, field) on the first problem."""
    where = str(path)
    found: dict[date, int] = {}
    known_until: date | None = None
    known_line: int | None = None
    date_column: int | None = None  # set once a CSV header was read
    layout_known = False

    def add(day: date, line: int) -> None:
        if day in found:
            raise InputError(
                f"{day.isoformat()} is listed twice (first on line {found[day]})",
                path=where,
                row=line,
                field="date",
            )
        found[day] = line

    # lines as an editor counts them: \n, \r\n or \r only (``str.splitlines`` also breaks at U+2028,
    # form feeds and others, which would turn text after a ``#`` into a date and shift line numbers)
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", _text(path)), start=1):
        _check_line_size(raw, where, number)
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        content = stripped.split("#", 1)[0].strip()  # without a trailing comment
        directive = _KNOWN_UNTIL.fullmatch(content)
        if directive is not None:
            if known_line is not None:
                raise InputError(
                    f"known_until is given twice (first on line {known_line})",
                    path=where,
                    row=number,
                    field="known_until",
                )
            known_until = parse_day(directive.group(1), path=path, line=number, field="known_until")
            known_line = number
            continue
        if not layout_known:
            layout_known = True
            if _STARTS_WITH_DATE.match(content):
                date_column = None  # one date per line
            else:
                date_column = _header_date_column(stripped, path, number)
                continue
        if date_column is None:
            add(_lone_date(content, path, number), number)
            continue
        day = _csv_date(raw, path, number, date_column)
        if day is not None:
            add(day, number)

    if not found and known_until is None:
        raise InputError("lists no date (one YYYY-MM-DD per line, or a CSV with a 'date' column)", path=where)
    ordered = sorted(found.items())
    return HolidayList(
        path=path,
        dates=tuple(day for day, _ in ordered),
        lines=tuple(line for _, line in ordered),
        known_until=known_until,
        known_until_line=known_line,
    )
