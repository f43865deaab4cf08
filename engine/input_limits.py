"""Every input file is bounded before it is loaded: its size, its rows and the length of a cell.

A file that a person or another program hands to zhixing (a targets file, an orders or positions file
of a replay, the holidays file, the config, a volume profile, a ``sell-where`` reference table, the
terminal's output files) is read
through this module, so a hostile or broken file costs at most a known amount of memory and time and
fails as an ``InputError`` naming the file (and the row and field where known), never as a traceback,
never after half of it was acted on:

- **size** first: ``stat`` before anything is read, and never more than ``max_bytes + 1`` bytes read
  (a file that grows meanwhile is still refused);
- **text**: a NUL byte (a binary file) and bytes that do not decode are refused naming the line;
- **CSV** is parsed as a stream by the ``csv`` module, row by row: the row count is checked as the rows
  come (the first row past ``max_rows`` stops the parse), and every cell against ``max_cell``
  characters, naming the row and the column. ``csv``'s own field limit is process-wide, so it is raised
  to the size of the text being parsed for the parse only (the text is already bounded) and every cell
  is checked here instead; malformed CSV (``csv.Error``) names the row;
- **JSON**: nesting too deep for the parser (``RecursionError``) and numbers too long to convert are
  refused like a syntax error; strings are checked against ``max_cell`` by the caller (``check_cell``);
- **Parquet** (``parquet_records``): only the footer is read first (``pyarrow.parquet.ParquetFile``):
  the row count, the values per column chunk and the uncompressed size are checked against the limits
  before a single row is decoded. Then only the columns asked for are read, string columns as
  dictionaries (a dictionary-encoded bomb, one long string repeated in every row, is measured before
  it is expanded), and every string cell is checked against ``max_cell``.

One ``Limits`` per kind of file (below); callers may narrow them (``read_targets(max_rows=...)``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from zhixing.engine.errors import InputError

MAX_COLUMNS: Final = 1_000
"""Columns a tabular input may have: more is not a file zhixing reads."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one kind of input file."""

    what: str  # "targets file", named in errors
    max_bytes: int
    max_rows: int  # data rows (the header not counted); records of a JSON list
    max_cell: int  # characters of one cell (a JSON or Parquet string too)

    def narrowed(self, *, max_bytes: int | None = None, max_rows: int | None = None) -> Limits:
        return replace(
            self,
            max_bytes=self.max_bytes if max_bytes is None else max_bytes,
            max_rows=self.max_rows if max_rows is None else max_rows,
        )


TARGETS: Final = Limits("targets file", max_bytes=50_000_000, max_rows=10_000, max_cell=4_096)
ORDERS: Final = Limits("orders file", max_bytes=20_000_000, max_rows=100_000, max_cell=4_096)
POSITIONS: Final = Limits("positions file", max_bytes=20_000_000, max_rows=100_000, max_cell=4_096)
HOLIDAYS: Final = Limits("holidays file", max_bytes=1 << 20, max_rows=20_000, max_cell=256)
CONFIG: Final = Limits("config file", max_bytes=1 << 20, max_rows=100_000, max_cell=65_536)
REFERENCE: Final = Limits("reference file", max_bytes=50_000_000, max_rows=100_000, max_cell=4_096)
"""``zhixing sell-where --ref``: a table of symbols and their figures."""
PROFILE: Final = Limits("volume profile", max_bytes=64 << 20, max_rows=20_000, max_cell=64)
TERMINAL_OUTPUT: Final = Limits(
    "terminal output file", max_bytes=256 << 20, max_rows=2_000_000, max_cell=4_096
)
"""The file route's output files (``order_status.csv``, ``position.csv``, ...): a row is a few hundred
bytes, a cell at most a few dozen characters."""


# ---------------------------------------------------------------------------------------------- bytes
def checked_size(path: Path, limits: Limits) -> int:
    """The size of the regular file ``path``, refused when missing, not a file or over ``max_bytes``."""
    where = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("file not found", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=where) from None
    if not path.is_file():
        raise InputError(f"not a file (a folder or a device?); expected a {limits.what}", path=where)
    check_byte_count(path, size, limits)
    return size


def check_byte_count(path: Path, size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise InputError(
            f"is {size:,} bytes, more than the limit of {limits.max_bytes:,} for a {limits.what}; "
            "nothing was read",
            path=str(path),
        )


def read_bounded(path: Path, limits: Limits) -> bytes:
    """The file's bytes, after its size was checked; never more than ``max_bytes + 1`` are read."""
    size = checked_size(path, limits)
    try:
        with open(path, "rb") as handle:
            data = handle.read(size + 1)  # one byte more: a file that grew since the stat shows it
            if len(data) > size:
                data += handle.read(limits.max_bytes + 1 - len(data))
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    check_byte_count(path, len(data), limits)  # it grew since the stat
    return data


# ---------------------------------------------------------------------------------------------- text
def line_of(data: bytes, offset: int) -> int:
    """The 1-based line holding byte ``offset``."""
    return data.count(b"\n", 0, offset) + 1


def decode_text(path: Path, data: bytes, encoding: str | None = None, *, hint: str = "") -> str:
    """``data`` as text (UTF-8, a BOM allowed, unless ``encoding``); a NUL byte or bytes that do not
    decode are refused naming the line (``hint``: what to do about it)."""
    where = str(path)
    nul = data.find(b"\0") if not (encoding or "").lower().startswith("utf-16") else -1
    if nul >= 0:
        raise InputError(
            f"contains a NUL byte (byte {nul}): a binary file, not text", path=where, row=line_of(data, nul)
        )
    try:
        text = data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}", path=where) from None
    except UnicodeDecodeError as exc:
        name = encoding or "UTF-8"
        raise InputError(
            f"not {name} text (byte {exc.start}){'; ' + hint if hint else ''}",
            path=where,
            row=line_of(data, exc.start),
        ) from None
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------------------------------------- cells
def check_cell(path: Path, value: object, limits: Limits, *, row: int | None, field: str | None) -> None:
    """A text (or bytes) cell is at most ``max_cell`` characters."""
    if isinstance(value, str | bytes) and len(value) > limits.max_cell:
        raise InputError(
            f"a cell of {len(value):,} characters, more than the {limits.max_cell:,} a {limits.what} "
            "may hold (a broken file, or a file of another kind?)",
            path=str(path),
            row=row,
            field=field,
        )


# ---------------------------------------------------------------------------------------------- CSV
_FIELD_LIMIT = threading.Lock()


@contextlib.contextmanager
def csv_field_limit(size: int) -> Iterator[None]:
    """``csv``'s process-wide field limit at least ``size`` while parsing (restored after)."""
    with _FIELD_LIMIT:
        old = csv.field_size_limit()
        csv.field_size_limit(max(old, size + 1))
        try:
            yield
        finally:
            csv.field_size_limit(old)


def csv_records(
    path: Path, text: str, limits: Limits, *, delimiter: str = ",", header: bool = True
) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of every record of ``text`` as ``csv`` parses it, blank lines skipped; the first
    is the header when ``header``. Stops with ``InputError`` at the first row past ``max_rows``, the first
    cell over ``max_cell`` (naming its column from the header), more than ``MAX_COLUMNS`` columns, or
    malformed CSV. ``line`` is where the record ends, as a spreadsheet numbers rows (header: 1)."""
    where = str(path)
    names: list[str] = []
    rows = 0
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            # the process-wide limit is held per record, never across a yield: a caller that stops
            # reading (an error on the header) would otherwise keep the lock and the next read deadlock
            with csv_field_limit(len(text)):
                cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"not readable as CSV: {exc}", path=where, row=reader.line_num) from None
        line = reader.line_num
        if not cells:
            continue  # a blank line
        if len(cells) > MAX_COLUMNS:
            raise InputError(f"{len(cells):,} columns, more than {MAX_COLUMNS:,}", path=where, row=line)
        is_header = header and not names
        if not is_header:
            rows += 1
            if rows > limits.max_rows:
                raise InputError(
                    f"more than {limits.max_rows:,} data rows, the most a {limits.what} may have; "
                    "nothing was read",
                    path=where,
                    row=line,
                )
        for index, cell in enumerate(cells):
            if len(cell) > limits.max_cell:
                field = names[index] if index < len(names) and names[index] else f"column {index + 1}"
                check_cell(path, cell, limits, row=line, field=field)
        if is_header:
            names = [c.strip().lower() for c in cells] or [""]
        yield line, cells


# ---------------------------------------------------------------------------------------------- JSON
def json_document(path: Path, text: str, **options: Any) -> Any:
    """``json.loads(text, **options)``; a syntax error, nesting too deep to parse or a number too long
    to convert is an ``InputError`` naming the file (and the line and column when known)."""
    where = str(path)
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", path=where
        ) from None
    except RecursionError:
        raise InputError("not valid JSON here: nested too deeply", path=where) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InputError(f"not valid JSON here: {exc}", path=where) from None


# ---------------------------------------------------------------------------------------------- Parquet
def parquet_records(
    path: Path,
    data: bytes,
    limits: Limits,
    pick: Callable[[list[str]], Sequence[str]],
) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """The column names of a Parquet file and its rows (1-based record number, column -> value), of the
    columns ``pick(names)`` chooses. Bounded from the footer before any row is decoded (see the module
    text); every problem is an ``InputError`` naming the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = str(path)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        meta = parquet.metadata
        names = [str(n) for n in parquet.schema_arrow.names]
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ValueError... for a damaged file
        raise InputError(f"not a readable Parquet file: {exc}", path=where) from None
    _check_parquet_shape(meta, limits, where)
    wanted = [n for n in pick(names) if n in names]
    indexes = [names.index(n) for n in wanted]
    _check_parquet_columns(meta, wanted, limits, where)
    strings = [
        n
        for n, i in zip(wanted, indexes, strict=True)
        if pa.types.is_string(parquet.schema_arrow.field(i).type)
        or pa.types.is_large_string(parquet.schema_arrow.field(i).type)
        or pa.types.is_binary(parquet.schema_arrow.field(i).type)
    ]
    try:
        reader = pq.ParquetFile(pa.BufferReader(data), read_dictionary=strings)
        table = reader.read(columns=wanted, use_pandas_metadata=False) if wanted else None
    except Exception as exc:
        raise InputError(f"not a readable Parquet file: {exc}", path=where) from None
    if table is None:
        return names, [(i + 1, {}) for i in range(meta.num_rows)]
    if table.num_rows != meta.num_rows:
        raise InputError(
            f"holds {table.num_rows:,} rows where its metadata says {meta.num_rows:,}: a damaged file",
            path=where,
        )
    columns = {name: _parquet_column_values(table, name, limits, where) for name in wanted}
    records = [(i + 1, {n: columns[n][i] for n in wanted}) for i in range(table.num_rows)]
    for row, record in records:
        for name, value in record.items():
            check_cell(path, value, limits, row=row, field=name)
    return names, records


def _check_parquet_shape(meta: Any, limits: Limits, where: str) -> None:
    """The file's footer (``pyarrow.parquet.FileMetaData``) within the column and row bounds."""
    if meta.num_columns > MAX_COLUMNS:
        raise InputError(f"{meta.num_columns:,} columns, more than {MAX_COLUMNS:,}", path=where)
    declared = sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    if meta.num_rows > limits.max_rows or declared > limits.max_rows:
        raise InputError(
            f"{max(meta.num_rows, declared):,} rows (from the file's metadata), more than the "
            f"{limits.max_rows:,} a {limits.what} may have; nothing was read",
            path=where,
        )


def _check_parquet_columns(meta: Any, wanted: list[str], limits: Limits, where: str) -> None:
    """The ``wanted`` columns' chunks, as the footer declares them: values per chunk and the size they
    expand to, both bounded before anything is decoded."""
    expanded = 0
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            top = chunk.path_in_schema.split(".")[0]
            if top not in wanted:
                continue
            if chunk.num_values > limits.max_rows:
                raise InputError(
                    f"column {top!r} holds {chunk.num_values:,} values (from the file's metadata), more "
                    f"than {limits.max_rows:,}; nothing was read",
                    path=where,
                    field=top,
                )
            expanded += chunk.total_uncompressed_size
    if expanded > limits.max_bytes:
        raise InputError(
            f"its columns expand to {expanded:,} bytes (from the file's metadata), more than the "
            f"{limits.max_bytes:,} a {limits.what} may have; nothing was read",
            path=where,
        )


def _parquet_column_values(table: Any, name: str, limits: Limits, where: str) -> list[Any]:
    """Column ``name`` of a read ``pyarrow.Table`` as Python values; a dictionary-encoded chunk whose
    longest entry exceeds ``limits.max_cell`` is refused before the column is expanded."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name)
    for chunk in column.chunks:
        if isinstance(chunk, pa.DictionaryArray):
            lengths = pc.binary_length(chunk.dictionary)
            longest = pc.max(lengths).as_py() if len(lengths) else 0
            if longest is not None and longest > limits.max_cell:
                raise InputError(
                    f"a cell of {longest:,} bytes, more than the {limits.max_cell:,} a {limits.what} "
                    "may hold",
                    path=where,
                    field=name,
                )
    values: list[Any] = column.to_pylist()
    return values


__all__ = [
    "CONFIG",
    "HOLIDAYS",
    "ORDERS",
    "POSITIONS",
    "PROFILE",
    "REFERENCE",
    "TARGETS",
    "TERMINAL_OUTPUT",
    "Limits",
    "check_byte_count",
    "check_cell",
    "checked_size",
    "csv_records",
    "decode_text",
    "json_document",
    "line_of",
    "parquet_records",
    "read_bounded",
]
