"""Reading a targets file: what the user wants to hold, by weight, by value or by volume.

Formats by suffix: ``.csv`` / ``.txt`` (comma, or tab when the header has tabs and no commas),
``.json`` (a list of objects, or ``{"targets": [...]}``) and ``.parquet`` (needs ``pyarrow``).
Columns: ``symbol`` (alias ``code``) and exactly one of ``weight`` (fraction of equity), ``value``
(CNY) or ``volume`` (shares), each also spelled ``target_<name>``; other columns are ignored, except a
date column (``date``, ``as_of`` or ``trade_date``): when the caller says which trading day it trades
(``trade_date``), every row's date must be that day (``2021-12-01``, ``20211201`` or ``2021/12/01``), or
the file is refused naming the row; a targets file left over from another day is never traded.

Validation fails closed: any problem rejects the whole file with an ``InputError`` naming the file, the
row, the column and the value, and nothing is returned. Rows are counted as a spreadsheet shows them for
CSV (the header is row 1) and as the 1-based record number for JSON and Parquet. Codes are text, always:
``000001.SZ`` keeps its zeros and a bare ``1`` or ``000001`` is an error, never guessed at. Every bad
symbol in the file is listed in one error. Symbols are checked for form and for tradable board
(``instrument_for``); whether a code is listed or suspended today is the pre-trade checks' business.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from zhixing.engine.errors import InputError
from zhixing.engine.input_kinds import FileKind, refuse_other_kind
from zhixing.engine.input_limits import (
    MAX_COLUMNS,
    TARGETS,
    Limits,
    check_byte_count,
    check_cell,
    csv_records,
    decode_text,
    json_document,
    parquet_records,
    read_bounded,
)
from zhixing.engine.market import SHANGHAI, instrument_for, normalize_symbol
from zhixing.engine.units import MAX_SHARES, MAX_YUAN, money, shares

WEIGHT_TOLERANCE = Decimal("1e-6")
"""Weights may sum to at most ``1 + WEIGHT_TOLERANCE`` without ``normalize``."""

_MAX_LISTED = 20  # problems spelled out in one error message


class TargetKind(StrEnum):
    WEIGHT = "WEIGHT"  # fraction of equity
    VALUE = "VALUE"  # milli-yuan
    VOLUME = "VOLUME"  # shares


_MAXIMUM = {TargetKind.VALUE: (MAX_YUAN, "yuan"), TargetKind.VOLUME: (MAX_SHARES, "shares")}
"""The largest value or volume one symbol may have (``engine.units``): it fits the journal's integers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One validated target; only the field of its ``kind`` is meaningful."""

    symbol: str  # canonical, 600000.SH
    kind: TargetKind
    weight: Decimal = Decimal(0)  # fraction of equity, for WEIGHT
    value: int = 0  # milli-yuan, for VALUE
    volume: int = 0  # shares, for VOLUME


_SYMBOL_COLUMNS = ("symbol", "code")
_KIND_COLUMNS: dict[TargetKind, tuple[str, ...]] = {
    TargetKind.WEIGHT: ("weight", "target_weight"),
    TargetKind.VALUE: ("value", "target_value"),
    TargetKind.VOLUME: ("volume", "target_volume"),
}
DATE_COLUMNS = ("date", "as_of", "trade_date")
"""Columns that say which trading day a targets file is for."""
_DATE = re.compile(r"(\d{4})([-/]?)(\d{2})\2(\d{2})")
_ZONE = re.compile(r"[+-]\d{2}:?\d{2}$")  # a time's zone offset at its end
_SUFFIXES = {".csv": "csv", ".txt": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}

_Row = tuple[int, dict[str, Any]]  # (row number, column -> raw cell)


@dataclass(slots=True)
class _Problem:
    row: int | None
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class TargetsFile:
    """A validated targets file: its targets and the date column it carried (None: undated)."""

    targets: list[Target]
    date_column: str | None


def read_targets(
    path: str | Path,
    *,
    normalize: bool = False,
    aggregate: bool = False,
    encoding: str | None = None,
    max_rows: int = TARGETS.max_rows,
    max_bytes: int = TARGETS.max_bytes,
    trade_date: date | None = None,
    data: bytes | None = None,
) -> list[Target]:
    """Read and validate a targets file; see the module docstring for the format.

    ``normalize`` scales weights to sum to 1 (a sum of 0 stays 0); without it weights summing above
    ``1 + 1e-6`` are refused. ``aggregate`` sums rows of the same symbol; without it a repeated symbol is
    refused. ``encoding`` decodes CSV and JSON (default UTF-8, with or without BOM). Targets come back
    in file order (first occurrence when aggregated). ``trade_date``: the trading day these targets are
    traded on; a date column naming another day is refused. ``data``: the file's bytes as already read
    (a journaled snapshot), parsed instead of reading ``path`` again (``path`` names it in errors).
    """
    return load_targets(
        path,
        normalize=normalize,
        aggregate=aggregate,
        encoding=encoding,
        max_rows=max_rows,
        max_bytes=max_bytes,
        trade_date=trade_date,
        data=data,
    ).targets


def load_targets(
    path: str | Path,
    *,
    normalize: bool = False,
    aggregate: bool = False,
    encoding: str | None = None,
    max_rows: int = TARGETS.max_rows,
    max_bytes: int = TARGETS.max_bytes,
    trade_date: date | None = None,
    data: bytes | None = None,
) -> TargetsFile:
    """``read_targets``, also saying whether the file carried a date column."""
    path = Path(path)
    where = str(path)
    limits = TARGETS.narrowed(max_rows=max_rows, max_bytes=max_bytes)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        if data is None and not path.exists():
            raise InputError("file not found", path=where)
        raise InputError(
            f"unsupported file type {path.suffix!r}; expected one of {', '.join(sorted(_SUFFIXES))}",
            path=where,
        )
    if data is None:
        raw = read_bounded(path, limits)  # the size is checked before a byte is read
    else:
        check_byte_count(path, len(data), limits)
        raw = data
    if not raw:
        raise InputError("empty file", path=where)

    if fmt == "csv":
        columns, rows = _csv_rows(path, _decode(path, raw, encoding), limits)
    elif fmt == "json":
        columns, rows = _json_rows(path, _decode(path, raw, encoding), limits)
    else:
        columns, rows = _parquet_rows(path, raw, limits)
    refuse_other_kind(path, columns, FileKind.TARGETS)  # a 掘金 order file is no volume targets file
    symbol_col, kind, value_col = _pick_columns(path, columns)
    date_cols = [c for c in DATE_COLUMNS if c in columns]
    if trade_date is not None:
        _check_dates(path, rows, date_cols, trade_date)
    targets = _validate(path, rows, symbol_col, kind, value_col, normalize=normalize, aggregate=aggregate)
    return TargetsFile(targets, date_cols[0] if date_cols else None)


def _check_dates(path: Path, rows: list[_Row], columns: list[str], trade_date: date) -> None:
    """Every row of every date column names ``trade_date``; the first row that does not is refused."""
    for column in columns:
        for row, record in rows:
            cell = record.get(column)
            day = _date(cell)
            if day is None:
                raise InputError(
                    f"not a date: {cell!r} (write YYYY-MM-DD, the trading day these targets are for)",
                    path=str(path),
                    row=row,
                    field=column,
                )
            if day != trade_date:
                raise InputError(
                    f"targets dated {day.isoformat()}, but today's trading day is {trade_date.isoformat()}; "
                    "a file for another day is not traded (write today's targets)",
                    path=str(path),
                    row=row,
                    field=column,
                )


def _date(cell: Any) -> date | None:
    """The Shanghai date a cell names: a date, or a time (one with a zone, e.g. ``...T20:00:00Z``, is
    taken in Asia/Shanghai: 20:00 UTC is the next day there; one without is Shanghai time already)."""
    if isinstance(cell, datetime):  # a pandas Timestamp too
        return cell.astimezone(SHANGHAI).date() if cell.tzinfo is not None else cell.date()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, bool) or not isinstance(cell, str | int):
        return None
    text = str(cell).strip()
    if isinstance(cell, str) and len(text) > 10 and (text.endswith(("Z", "z")) or _ZONE.search(text[10:])):
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            return None
        return moment.astimezone(SHANGHAI).date() if moment.tzinfo is not None else None
    match = _DATE.fullmatch(text.replace("T", " ").split(" ")[0])
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[3]), int(match[4]))
    except ValueError:  # 2021-02-30
        return None


# ---------------------------------------------------------------------------------------------- reading


def _decode(path: Path, data: bytes, encoding: str | None) -> str:
    hint = "looks like GBK? pass encoding='gbk'" if encoding is None else "wrong encoding?"
    text = decode_text(path, data, encoding, hint=hint)
    if not text.strip():
        raise InputError("empty file", path=str(path))
    return text


def _csv_rows(path: Path, text: str, limits: Limits) -> tuple[list[str], list[_Row]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    records = csv_records(path, text, limits, delimiter=delimiter)
    _, header = next(records, (1, []))
    columns = [h.strip().lower() for h in header]
    if not any(columns):
        raise InputError("empty file (no header)", path=str(path))
    _check_unique_columns(path, columns)
    rows: list[_Row] = []
    for row, cells in records:
        if len(cells) > len(columns):
            raise InputError(
                f"more values than header columns: {cells[len(columns) :]!r}", path=str(path), row=row
            )
        values = [c.strip() for c in cells] + [""] * (len(columns) - len(cells))
        rows.append((row, dict(zip(columns, values, strict=True))))
    if not rows:
        raise InputError("no data rows (header only)", path=str(path))
    return columns, rows


def _json_rows(path: Path, text: str, limits: Limits) -> tuple[list[str], list[_Row]]:
    # Decimal keeps 0.1 exact; NaN/Infinity become Decimal and are refused with the other values.
    doc = json_document(path, text, parse_float=Decimal, parse_constant=Decimal)
    if isinstance(doc, dict) and "targets" in doc:
        doc = doc["targets"]
    if not isinstance(doc, list):
        raise InputError('expected a list of objects or {"targets": [...]}', path=str(path))
    if not doc:
        raise InputError("no targets (empty list)", path=str(path))
    if len(doc) > limits.max_rows:
        raise InputError(f"{len(doc)} records, more than {limits.max_rows}", path=str(path))
    columns: list[str] = []
    rows: list[_Row] = []
    for i, record in enumerate(doc):
        row = i + 1
        if not isinstance(record, dict):
            raise InputError(f"expected an object, got {_shown(record)}", path=str(path), row=row)
        if len(record) > MAX_COLUMNS:
            raise InputError(f"{len(record)} keys, more than {MAX_COLUMNS}", path=str(path), row=row)
        keys = [str(k).strip().lower() for k in record]
        _check_unique_columns(path, keys, row=row)
        for key, value in zip(keys, record.values(), strict=True):
            check_cell(path, key, limits, row=row, field=key[:40])
            check_cell(path, value, limits, row=row, field=key)
            if key not in columns:
                columns.append(key)
        rows.append((row, dict(zip(keys, record.values(), strict=True))))
    return columns, rows


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _parquet_rows(path: Path, data: bytes, limits: Limits) -> tuple[list[str], list[_Row]]:
    if not _pyarrow_available():
        raise InputError("reading Parquet needs pyarrow: pip install pyarrow", path=str(path))

    def needed(names: list[str]) -> list[str]:
        """Only the columns a target is made of: any other column is never decoded."""
        lowered = [n.strip().lower() for n in names]
        keep = {*_SYMBOL_COLUMNS, *DATE_COLUMNS, *(c for cols in _KIND_COLUMNS.values() for c in cols)}
        return [n for n, low in zip(names, lowered, strict=True) if low in keep]

    names, records = parquet_records(path, data, limits, needed)
    columns = [n.strip().lower() for n in names]
    if not columns:
        raise InputError("no columns", path=str(path))
    _check_unique_columns(path, columns)
    if not records:
        raise InputError("no data rows", path=str(path))
    rows: list[_Row] = [
        (row, {name.strip().lower(): value for name, value in record.items()}) for row, record in records
    ]
    return columns, rows


def _pyarrow_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def _check_unique_columns(path: Path, columns: list[str], row: int | None = None) -> None:
    seen: set[str] = set()
    for name in columns:
        if name and name in seen:
            raise InputError(f"column {name!r} appears twice", path=str(path), row=row, field=name)
        seen.add(name)


def _pick_columns(path: Path, columns: list[str]) -> tuple[str, TargetKind, str]:
    found = ", ".join(c for c in columns if c) or "none"
    symbol_cols = [c for c in _SYMBOL_COLUMNS if c in columns]
    if not symbol_cols:
        raise InputError(f"missing column 'symbol' (or 'code'); found {found}", path=str(path))
    if len(symbol_cols) > 1:
        raise InputError("both 'symbol' and 'code' columns; keep one", path=str(path))
    present = {kind: [c for c in names if c in columns] for kind, names in _KIND_COLUMNS.items()}
    kinds = [kind for kind, cols in present.items() if cols]
    if not kinds:
        raise InputError(
            "no target column: expected exactly one of weight, value (CNY) or volume (shares); "
            f"found {found}",
            path=str(path),
        )
    if len(kinds) > 1:
        mixed = ", ".join(c for kind in kinds for c in present[kind])
        raise InputError(f"mixes target kinds ({mixed}); use exactly one kind per file", path=str(path))
    kind = kinds[0]
    if len(present[kind]) > 1:
        raise InputError(f"both {' and '.join(present[kind])} columns; keep one", path=str(path))
    return symbol_cols[0], kind, present[kind][0]


# ------------------------------------------------------------------------------------------- validating


def _symbol(cell: Any) -> tuple[str | None, str | None]:
    """(canonical symbol, None) or (None, problem)."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None, "empty symbol"
    if isinstance(cell, float) and cell != cell:  # a missing string in a pandas frame is NaN
        return None, "empty symbol"
    if not isinstance(cell, str):
        return None, (
            f"code {cell!r} was stored as a number (leading zeros lost?); "
            "write it as text with its exchange, e.g. '000001.SZ'"
        )
    text = cell.strip()
    if text.isdigit():
        return (
            None,
            (
                f"code {text!r} has no exchange suffix; write six digits and the exchange, "
                "e.g. '000001.SZ' (the exchange is never guessed)"
            ),
        )
    try:
        canonical = normalize_symbol(text)
    except ValueError as exc:
        return None, str(exc)
    try:
        instrument_for(canonical)
    except ValueError as exc:
        return None, f"untradable symbol {text!r}: {exc}"
    return canonical, None


def _number(cell: Any) -> tuple[Decimal | None, str | None]:
    """(finite Decimal, None) or (None, problem)."""
    if cell is None or (isinstance(cell, str) and not cell):
        return None, "empty value"
    if isinstance(cell, bool):
        return None, f"not a number: {cell!r}"
    if isinstance(cell, Decimal):
        dec = cell
    elif isinstance(cell, int | float | str):
        try:
            dec = Decimal(repr(cell) if isinstance(cell, float) else str(cell).strip())
        except InvalidOperation:
            return None, f"not a number: {cell!r}"
    else:
        return None, f"not a number: {cell!r}"
    if not dec.is_finite():
        return None, f"not a finite number: {cell!r}"
    if dec < 0:
        return None, f"negative target {cell!r}: a cash account cannot hold less than nothing"
    return dec, None


def _too_large(
    kind: TargetKind, total: Decimal, amount: Decimal, row: int | None, field: str, cell: Any
) -> list[_Problem]:
    """The problem when a symbol's value or volume (``total``, this row's ``amount`` included) is beyond its
    kind's bound (``engine.units``): a journal's integer must hold it."""
    if kind not in _MAXIMUM or total <= _MAXIMUM[kind][0]:
        return []
    maximum, unit = _MAXIMUM[kind]
    summed = " (summed with the symbol's rows above)" if total != amount else ""
    return [_Problem(row, field, f"{cell!r}{summed} is above {maximum:,} {unit}")]


def _validate(
    path: Path,
    rows: Iterable[_Row],
    symbol_col: str,
    kind: TargetKind,
    value_col: str,
    *,
    normalize: bool,
    aggregate: bool,
) -> list[Target]:
    problems: list[_Problem] = []
    bad_symbols: list[_Problem] = []
    amounts: dict[str, Decimal] = {}  # canonical symbol -> weight / yuan / shares, in file order
    first_row: dict[str, int] = {}
    for row, record in rows:
        symbol, why = _symbol(record.get(symbol_col))
        if why is not None:
            shown = repr(record.get(symbol_col))
            bad_symbols.append(_Problem(row, symbol_col, why if shown in why else f"{why} (value {shown})"))
        amount, why = _number(record.get(value_col))
        if why is not None:
            problems.append(_Problem(row, value_col, why))
        elif amount is not None and kind is TargetKind.VOLUME and amount != amount.to_integral_value():
            problems.append(
                _Problem(row, value_col, f"volume is not a whole number of shares: {record[value_col]!r}")
            )
            amount = None
        if symbol is None:
            continue
        if symbol in first_row:
            if not aggregate:
                problems.append(
                    _Problem(
                        row,
                        symbol_col,
                        f"duplicate symbol {record[symbol_col]!r} ({symbol}, first at row "
                        f"{first_row[symbol]}); pass aggregate=True (--aggregate on the command line) to "
                        "sum them",
                    )
                )
                continue
        else:
            first_row[symbol] = row
            amounts[symbol] = Decimal(0)
        if amount is not None:
            amounts[symbol] += amount
            problems += _too_large(kind, amounts[symbol], amount, row, value_col, record[value_col])
    problems = bad_symbols + problems  # every offending symbol listed first
    if problems:
        problems.sort(key=lambda p: (p.row or 0, p.field != symbol_col))
        raise _error(path, problems)

    if kind is TargetKind.WEIGHT:
        total = sum(amounts.values(), Decimal(0))
        if normalize:
            if total > 0:
                amounts = {s: w / total for s, w in amounts.items()}
        elif total > 1 + WEIGHT_TOLERANCE:
            raise InputError(
                f"weights sum to {total}, above 1; fix the file or pass normalize=True (--normalize on the "
                "command line)",
                path=str(path),
                field=value_col,
            )
        return [Target(symbol=s, kind=kind, weight=w) for s, w in amounts.items()]
    if kind is TargetKind.VALUE:
        return [Target(symbol=s, kind=kind, value=money(v)) for s, v in amounts.items()]
    return [Target(symbol=s, kind=kind, volume=shares(v)) for s, v in amounts.items()]


def _error(path: Path, problems: list[_Problem]) -> InputError:
    first, rest = problems[0], problems[1:]
    if not rest:
        return InputError(first.message, path=str(path), row=first.row, field=first.field)
    listed = "; ".join(f"row {p.row}, field {p.field!r}: {p.message}" for p in rest[:_MAX_LISTED])
    more = f"; and {len(rest) - _MAX_LISTED} more" if len(rest) > _MAX_LISTED else ""
    return InputError(
        f"{first.message}; {len(rest)} more problem(s): {listed}{more}",
        path=str(path),
        row=first.row,
        field=first.field,
    )
