"""Security status by day (normal, ST, *ST, delisting period) and listing dates, from a user's file.

The shipped market data carry no status: the snapshot files have no name, no ST flag and no listing date
(``replay/sample_data/README.md``; the SZSE files carry ``high_limit`` / ``low_limit``, which the exchange
uses where present). So status comes from a CSV the user supplies (``zhixing replay --status FILE``)::

    symbol,status,from,to,listing_date
    600000.SH,st,2021-01-04,2021-12-31,
    301001.SZ,normal,,,2021-06-01

``status`` is one of ``normal``, ``st``, ``star_st`` (*ST), ``delisting``; ``from`` / ``to`` (ISO dates,
inclusive, either may be empty: open-ended) bound it; ``listing_date`` (optional, any row of the symbol)
is the first trading day, which decides the new-listing rules. A symbol and day the file does not name
is ``normal``. Bad rows raise ``InputError`` naming the file, the row (file line, header = 1) and field:
a row with more or fewer cells than the header, a date not written YYYY-MM-DD, and two periods of one
symbol that overlap (which status would hold on the shared days is not for the engine to guess) among them.
The file is bounded before it is read (``engine.input_limits``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from zhixing.engine.errors import InputError
from zhixing.engine.input_kinds import FileKind, refuse_other_kind
from zhixing.engine.input_limits import Limits, csv_records, decode_text, read_bounded
from zhixing.engine.market.symbols import normalize_symbol


class SecurityStatus(StrEnum):
    NORMAL = "normal"
    ST = "st"
    STAR_ST = "star_st"  # *ST
    DELISTING = "delisting"  # the delisting arrangement period (退市整理期)


@dataclass(frozen=True, slots=True)
class StatusSpan:
    status: SecurityStatus
    start: date | None  # None: since ever
    end: date | None  # None: until further notice

    def covers(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)

    def overlaps(self, other: StatusSpan) -> bool:
        starts_before_other_ends = self.start is None or other.end is None or self.start <= other.end
        ends_after_other_starts = self.end is None or other.start is None or other.start <= self.end
        return starts_before_other_ends and ends_after_other_starts


@dataclass(slots=True)
class StatusBook:
    """Statuses per symbol (spans, in file order) and listing dates. Empty: every security normal."""

    spans: dict[str, list[StatusSpan]] = field(default_factory=dict)
    listings: dict[str, date] = field(default_factory=dict)

    def status(self, symbol: str, day: date) -> SecurityStatus:
        for span in self.spans.get(symbol, ()):
            if span.covers(day):
                return span.status
        return SecurityStatus.NORMAL

    def listing_date(self, symbol: str) -> date | None:
        return self.listings.get(symbol)


_COLUMNS = ("symbol", "status", "from", "to")
STATUS_LIMITS = Limits("status file", max_bytes=20_000_000, max_rows=200_000, max_cell=256)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date(text: str, path: Path, row: int, name: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text) if _ISO_DAY.fullmatch(text) else None
    except ValueError:  # 2021-02-30
        day = None
    if day is None:
        raise InputError(f"not a date written YYYY-MM-DD: {text!r}", path=str(path), row=row, field=name)
    return day


def load_status_file(path: str | Path) -> StatusBook:
    """Read a status CSV (see the module docstring); nothing of a file with a bad row is used."""
    path = Path(path)
    text = decode_text(path, read_bounded(path, STATUS_LIMITS), hint="save the status file as UTF-8")
    book = StatusBook()
    names: list[str] = []
    rows_of: dict[str, list[tuple[StatusSpan, int]]] = {}
    for line, cells in csv_records(path, text, STATUS_LIMITS):
        if not names:
            names = [c.strip().lower() for c in cells]
            refuse_other_kind(path, names, FileKind.STATUS)
            missing = [c for c in _COLUMNS if c not in names]
            if missing:
                raise InputError(
                    f"missing columns {missing}; expected {list(_COLUMNS)}", path=str(path), row=1
                )
            continue
        if len(cells) != len(names):
            raise InputError(
                f"{len(cells)} cells, the header has {len(names)} ({', '.join(names)})",
                path=str(path),
                row=line,
            )
        record = dict(zip(names, cells, strict=True))
        symbol, span, listed = _row(record, path, line)
        if listed is not None:
            known = book.listings.setdefault(symbol, listed)
            if known != listed:
                raise InputError(
                    f"{symbol} listed {known} in an earlier row, {listed} here",
                    path=str(path),
                    row=line,
                    field="listing_date",
                )
        for earlier, earlier_line in rows_of.get(symbol, ()):
            if earlier.overlaps(span):
                raise InputError(
                    f"{symbol}: {span.status} {_period(span)} overlaps {earlier.status} {_period(earlier)} "
                    f"of row {earlier_line}; one status per day",
                    path=str(path),
                    row=line,
                    field="from",
                )
        rows_of.setdefault(symbol, []).append((span, line))
        book.spans.setdefault(symbol, []).append(span)
    return book


def _period(span: StatusSpan) -> str:
    return f"{span.start or '...'} to {span.end or '...'}"


def _row(record: dict[str, str], path: Path, line: int) -> tuple[str, StatusSpan, date | None]:
    raw_symbol = record["symbol"].strip()
    try:
        symbol = normalize_symbol(raw_symbol)
    except ValueError as exc:
        raise InputError(str(exc), path=str(path), row=line, field="symbol") from None
    raw_status = record["status"].strip().lower()
    try:
        status = SecurityStatus(raw_status)
    except ValueError:
        allowed = ", ".join(s.value for s in SecurityStatus)
        raise InputError(
            f"unknown status {raw_status!r}; one of {allowed}", path=str(path), row=line, field="status"
        ) from None
    start = _date(record["from"], path, line, "from")
    end = _date(record["to"], path, line, "to")
    if start is not None and end is not None and end < start:
        raise InputError(f"'to' {end} is before 'from' {start}", path=str(path), row=line, field="to")
    listed = _date(record.get("listing_date", ""), path, line, "listing_date")
    return symbol, StatusSpan(status, start, end), listed
