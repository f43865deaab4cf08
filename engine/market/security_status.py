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
is ``normal``. Bad rows raise ``InputError`` naming the file, the row (file line, header = 1) and field.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from zhixing.engine.errors import InputError
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


def _date(text: str, path: Path, row: int, name: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"not an ISO date (YYYY-MM-DD): {text!r}", path=str(path), row=row, field=name
        ) from None


def load_status_file(path: str | Path) -> StatusBook:
    """Read a status CSV (see the module docstring)."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read the status file: {exc.strerror}", path=str(path)) from None
    book = StatusBook()
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InputError(f"missing columns {missing}; expected {list(_COLUMNS)}", path=str(path), row=1)
        for row_number, record in enumerate(reader, start=2):
            raw_symbol = (record.get("symbol") or "").strip()
            try:
                symbol = normalize_symbol(raw_symbol)
            except ValueError as exc:
                raise InputError(str(exc), path=str(path), row=row_number, field="symbol") from None
            raw_status = (record.get("status") or "").strip().lower()
            try:
                status = SecurityStatus(raw_status)
            except ValueError:
                allowed = ", ".join(s.value for s in SecurityStatus)
                raise InputError(
                    f"unknown status {raw_status!r}; one of {allowed}",
                    path=str(path),
                    row=row_number,
                    field="status",
                ) from None
            start = _date(record.get("from") or "", path, row_number, "from")
            end = _date(record.get("to") or "", path, row_number, "to")
            if start is not None and end is not None and end < start:
                raise InputError(
                    f"'to' {end} is before 'from' {start}", path=str(path), row=row_number, field="to"
                )
            listed = _date(record.get("listing_date") or "", path, row_number, "listing_date")
            if listed is not None:
                known = book.listings.setdefault(symbol, listed)
                if known != listed:
                    raise InputError(
                        f"{symbol} listed {known} in an earlier row, {listed} here",
                        path=str(path),
                        row=row_number,
                        field="listing_date",
                    )
            book.spans.setdefault(symbol, []).append(StatusSpan(status, start, end))
    return book
