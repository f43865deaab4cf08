"""Level-2 snapshot files -> columnar int64 numpy arrays, one ``SymbolDay`` per symbol and day.

The files follow the ``snapshots`` schema of the shared market data (see ``replay/sample_data/README.md``):
one symbol and one trade date per file, ``ts`` as ISO-8601 with a UTC offset, prices in yuan on the
0.01 grid, book levels as ``bid_px1..L`` / ``bid_qty1..L`` / ``ask_px1..L`` / ``ask_qty1..L`` (L = 10).

Everything is converted once, vectorised, at load time: prices and money to ``int`` milli-yuan,
quantities to ``int`` shares, timestamps to ``int`` ns since the epoch (UTC). No Python loop per row.

Errors are ``InputError`` naming the file, the row and the field. **Rows are file line numbers**: the
header is row 1, so the first data row is row 2 (``row = 0-based data index + FIRST_DATA_ROW``).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.units import NS_PER_SECOND, PRICE_SCALE

NS_PER_DAY = 86_400 * NS_PER_SECOND
CHINA_UTC_OFFSET_NS = 8 * 3600 * NS_PER_SECOND  # Asia/Shanghai has had no DST since 1991
HEADER_ROW = 1
FIRST_DATA_ROW = 2

_STR_COLUMNS = ("symbol", "trade_date", "ts", "phase")
_STRICT = ("last", "cum_volume", "cum_amount")  # NaN or negative -> InputError
_REQUIRED = (*_STR_COLUMNS, "prev_close", *_STRICT)
_OPTIONAL = ("high_limit", "low_limit")  # absent or empty -> 0
_SYMBOL_RE = re.compile(r"\d{6}\.(SH|SZ|BJ)")
_SIDES = ("bid_px", "bid_qty", "ask_px", "ask_qty")

Int64Array = NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SymbolDay:
    """One symbol's snapshots for one day as read-only columnar arrays (row i = snapshot i).

    ``eq=False``: equality and hashing are by identity (numpy arrays have no single truth value).
    """

    symbol: str
    trade_date: dt.date
    ts: Int64Array  # ns since the epoch (UTC), non-decreasing; ties keep file order
    last: Int64Array  # milli-yuan; 0 before the first trade
    bid_px: Int64Array  # (n, levels) milli-yuan; 0 = empty level
    bid_qty: Int64Array  # (n, levels) shares; 0 = empty level
    ask_px: Int64Array
    ask_qty: Int64Array
    cum_volume: Int64Array  # shares traded so far today, non-decreasing
    cum_amount: Int64Array  # milli-yuan traded so far today
    prev_close: int  # milli-yuan, from the first row where it is > 0
    high_limit: int  # milli-yuan; 0 when the file does not carry limits (the SSE files)
    low_limit: int
    phase: NDArray[np.int8]  # raw exchange status per row, as an index into phase_codes
    phase_codes: tuple[str, ...]  # feed-specific codes ("TRADE", "T0", "3", ...) in order of appearance

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def levels(self) -> int:
        return int(self.bid_px.shape[1])

    def index_at(self, ts_ns: int) -> int:
        """Index of the last snapshot with ``ts <= ts_ns``, or -1 if every snapshot is later."""
        return int(self.ts.searchsorted(ts_ns, side="right")) - 1  # the method: no np.* dispatch

    def phase_at(self, index: int) -> str:
        """The raw phase code of row ``index``."""
        return self.phase_codes[int(self.phase[index])]

    def traded_volume(self) -> Int64Array:
        """Shares traded since the previous snapshot; the first element is ``cum_volume[0]``."""
        return np.diff(self.cum_volume, prepend=np.int64(0))

    def vwap_between(self, t0_ns: int, t1_ns: int) -> float | None:
        """Market VWAP (milli-yuan per share) between the snapshots in force at t0 and at t1.

        ``(cum_amount[i1] - cum_amount[i0]) / (cum_volume[i1] - cum_volume[i0])`` with ``i = index_at(t)``
        (both zero before the first snapshot). None when no share traded in between.
        """
        if t1_ns < t0_ns:
            raise ParameterError(f"{t1_ns} is before t0_ns {t0_ns}", name="t1_ns", value=t1_ns)
        i0, i1 = self.index_at(t0_ns), self.index_at(t1_ns)
        if i1 < 0:
            return None
        vol0, amt0 = (int(self.cum_volume[i0]), int(self.cum_amount[i0])) if i0 >= 0 else (0, 0)
        volume = int(self.cum_volume[i1]) - vol0
        return (int(self.cum_amount[i1]) - amt0) / volume if volume > 0 else None


@dataclass(slots=True)
class MarketData:
    """The snapshots of several symbols on one trade date, keyed by canonical symbol (``"600000.SH"``)."""

    days: dict[str, SymbolDay]
    trade_date: dt.date

    @property
    def symbols(self) -> list[str]:
        return sorted(self.days)

    def __getitem__(self, symbol: str) -> SymbolDay:
        return self.days[symbol]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.days

    def __len__(self) -> int:
        return len(self.days)


def clone_symbol_day(day: SymbolDay, new_symbol: str) -> SymbolDay:
    """The same (shared, read-only) arrays under another symbol; benchmarks use it to fake N symbols."""
    return dataclasses.replace(day, symbol=new_symbol)


def shift_market(market: MarketData, day: dt.date) -> MarketData:
    """The same recorded snapshots played as trading day ``day``: every timestamp moved by whole days
    (Shanghai has no DST, so times of day are kept). A week on the simulated exchange replays one
    recorded day as each of its days."""
    delta = np.int64((day - market.trade_date).days * NS_PER_DAY)
    days = {}
    for symbol, sd in market.days.items():
        ts = sd.ts + delta
        ts.setflags(write=False)
        days[symbol] = dataclasses.replace(sd, trade_date=day, ts=ts)
    return MarketData(days=days, trade_date=day)


# --- CSV helpers, shared with replay.bars -------------------------------------------------------------


def open_text(path: Path) -> IO[str]:
    """Open a CSV as UTF-8 text (a leading BOM is skipped), gunzipped if it starts with the gzip magic."""
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        if gzipped:
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot open: {exc}", path=str(path)) from None


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file (reads the first line only)."""
    try:
        with open_text(path) as handle:
            line = handle.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read header: {exc}", path=str(path)) from None
    if not line.strip():
        raise InputError("file is empty", path=str(path), row=HEADER_ROW)
    return [name.strip() for name in next(csv.reader([line]))]


def read_csv_or_raise(path: Path, dtypes: Mapping[str, type], usecols: Sequence[str]) -> pd.DataFrame:
    """``pandas.read_csv`` (C engine, explicit dtypes) whose failures become ``InputError``.

    A cell that does not parse as its dtype is located by a slow second read, so that the error names its
    row and field. A header-only file returns an empty frame.
    """
    try:
        with open_text(path) as handle:
            return pd.read_csv(handle, usecols=list(usecols), dtype=dict(dtypes), engine="c")
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", path=str(path), row=HEADER_ROW) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"cannot parse CSV: {exc}", path=str(path)) from None
    except (ValueError, TypeError) as exc:
        _locate_bad_cell(path, dtypes, usecols)
        raise InputError(f"cannot parse CSV: {exc}", path=str(path)) from None


def _locate_bad_cell(path: Path, dtypes: Mapping[str, type], usecols: Sequence[str]) -> None:
    """Raise for the top-most cell of a numeric column that is neither empty/NA nor a number."""
    with open_text(path) as handle:
        raw = pd.read_csv(handle, usecols=list(usecols), dtype=str, engine="c")
    found: list[tuple[int, int]] = []
    for position, column in enumerate(usecols):
        if dtypes.get(column, str) is not str:
            parsed = pd.to_numeric(raw[column].str.strip(), errors="coerce")
            bad = np.flatnonzero(parsed.isna().to_numpy() & raw[column].notna().to_numpy())
            found += [(int(bad[0]), position)] if bad.size else []
    if found:
        row, position = min(found)
        column = usecols[position]
        message = f"not a number: {raw[column].iloc[row]!r}"
        raise InputError(message, path=str(path), row=row + FIRST_DATA_ROW, field=column)


def raise_first(path: Path, mask: NDArray[np.bool_], fields: Sequence[str], message: str) -> None:
    """Raise ``InputError`` for the first True cell of a (rows, len(fields)) or (rows,) mask, if any."""
    if mask.size == 0:
        return
    grid = mask.reshape(mask.shape[0], -1)
    rows = np.flatnonzero(grid.any(axis=1))
    if rows.size:
        row = int(rows[0])
        field = fields[int(np.argmax(grid[row]))]
        raise InputError(message, path=str(path), row=row + FIRST_DATA_ROW, field=field)


def csv_files(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else its ``*.csv`` and ``*.csv.gz`` files sorted by name."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or folder", path=str(path))
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise InputError("folder has no *.csv or *.csv.gz files", path=str(path))
    return files


# --- snapshots ----------------------------------------------------------------------------------------


def _depth_columns(header: Sequence[str], path: Path) -> list[str]:
    """Book columns, side-major: bid_px1..L, bid_qty1..L, ask_px1..L, ask_qty1..L."""
    levels = 0
    while f"bid_px{levels + 1}" in header:
        levels += 1
    names = [f"{side}{i}" for side in _SIDES for i in range(1, max(levels, 1) + 1)]
    for name in names:
        if name not in header:
            raise InputError("missing column", path=str(path), row=HEADER_ROW, field=name)
    return names


def _single_value(values: NDArray[np.object_], path: Path, field: str) -> str:
    first = values[0]
    if not isinstance(first, str):
        raise InputError("missing value", path=str(path), row=FIRST_DATA_ROW, field=field)
    raise_first(path, values != first, [field], f"one {field} per file expected, first is {first!r}")
    return first.strip()


def _phase_codes(raw: NDArray[np.object_], path: Path) -> tuple[NDArray[np.int8], tuple[str, ...]]:
    """Int-code the raw phase strings (stripped; missing -> ""), codes in order of first appearance."""
    codes, uniques = pd.factorize(raw)
    missing = [""] if bool((codes < 0).any()) else []  # code -1 (NaN) indexes the trailing ""
    label_codes, names = pd.factorize(np.array([str(u).strip() for u in uniques] + missing, dtype=object))
    if len(names) > np.iinfo(np.int8).max:
        raise InputError("more than 127 distinct phase codes", path=str(path), field="phase")
    return label_codes[codes].astype(np.int8), tuple(str(name) for name in names)


def parse_iso_ns(text: pd.Series, path: Path, field: str) -> Int64Array:
    """ISO-8601 strings with a UTC offset (``+08:00``; mixed offsets allowed) -> int ns UTC."""
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # mixed offsets, or offsets and naive times mixed
        has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).to_numpy()
        raise_first(path, ~has_offset, [field], "timestamp has no UTC offset")
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    raise_first(path, parsed.isna().to_numpy(), [field], "missing or not an ISO-8601 timestamp")
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        raise InputError("timestamp has no UTC offset", path=str(path), row=FIRST_DATA_ROW, field=field)
    return np.ascontiguousarray(parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64))


def _first_positive(values: Int64Array) -> int:
    positive = np.flatnonzero(values > 0)
    return int(values[positive[0]]) if positive.size else 0


def load_snapshot_file(path: str | Path) -> SymbolDay:
    """Load one snapshot file (``.csv`` or ``.csv.gz``) into a ``SymbolDay``.

    Rules: the required columns must be present; one symbol and one trade date per file; ``ts`` must parse
    and fall on ``trade_date`` (China time); rows are sorted stably by ``ts`` if they are not already.
    NaN or a negative value in ``ts``, ``last``, ``cum_volume`` or ``cum_amount`` is an error; an empty
    book level or limit (NaN) reads as 0; any negative price or quantity is an error; quantities and
    ``cum_volume`` must be whole shares; ``cum_volume`` must never decrease. ``prev_close`` is taken from
    the first row where it is > 0 (error if none). Error rows are file line numbers (header = row 1).
    """
    path = Path(path)
    header = read_header(path)
    for name in _REQUIRED:
        if name not in header:
            found = ", ".join(header)
            raise InputError(f"missing column (found: {found})", path=str(path), row=HEADER_ROW, field=name)
    depth = _depth_columns(header, path)
    numeric = ["prev_close", *_STRICT, *[c for c in _OPTIONAL if c in header], *depth]
    dtypes: dict[str, type] = {c: str for c in _STR_COLUMNS} | {c: np.float64 for c in numeric}
    frame = read_csv_or_raise(path, dtypes, [*_STR_COLUMNS, *numeric])
    if len(frame) == 0:
        raise InputError("no data rows (header only)", path=str(path), row=FIRST_DATA_ROW)

    symbol = _single_value(frame["symbol"].to_numpy(dtype=object), path, "symbol").upper()
    if not _SYMBOL_RE.fullmatch(symbol):
        message = f"symbol {symbol!r} is not like '600000.SH'"
        raise InputError(message, path=str(path), row=FIRST_DATA_ROW, field="symbol")
    date_text = _single_value(frame["trade_date"].to_numpy(dtype=object), path, "trade_date")
    try:
        trade_date = dt.date.fromisoformat(date_text)
    except ValueError:
        message = f"not a date: {date_text!r}"
        raise InputError(message, path=str(path), row=FIRST_DATA_ROW, field="trade_date") from None
    ts = parse_iso_ns(frame["ts"], path, "ts")
    local_day = (ts + CHINA_UTC_OFFSET_NS) // NS_PER_DAY
    epoch_day = (trade_date - dt.date(1970, 1, 1)).days
    raise_first(path, local_day != epoch_day, ["ts"], f"timestamp is not on trade_date {trade_date}")

    values = frame[numeric].to_numpy(dtype=np.float64)
    raise_first(path, np.isnan(values[:, 1 : 1 + len(_STRICT)]), _STRICT, "missing value")
    raise_first(path, values < 0, numeric, "negative value")
    raise_first(path, np.isinf(values), numeric, "not a finite number")
    values[np.isnan(values)] = 0.0  # empty book level, limit or prev_close
    shares = np.array([c == "cum_volume" or "_qty" in c for c in numeric])
    whole = values[:, shares]
    raise_first(
        path,
        whole != np.rint(whole),
        [c for c, s in zip(numeric, shares, strict=True) if s],
        "not whole shares",
    )

    order: Int64Array | None = None
    if bool(np.any(ts[1:] < ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
    ints = np.rint(values * np.where(shares, 1.0, float(PRICE_SCALE))).astype(np.int64)
    columns = {name: i for i, name in enumerate(numeric)}

    def column(name: str) -> Int64Array:
        return np.ascontiguousarray(ints[:, columns[name]]) if name in columns else np.zeros(0, np.int64)

    def block(side: str) -> Int64Array:
        return np.ascontiguousarray(ints[:, [columns[c] for c in depth if c.rstrip("0123456789") == side]])

    cum_volume = column("cum_volume")
    drops = np.flatnonzero(cum_volume[1:] < cum_volume[:-1]) + 1
    if drops.size:
        row = int(order[drops[0]]) if order is not None else int(drops[0])
        raise InputError("cum_volume decreases", path=str(path), row=row + FIRST_DATA_ROW, field="cum_volume")
    prev_close = _first_positive(column("prev_close"))
    if prev_close == 0:
        raise InputError("no row has prev_close > 0", path=str(path), field="prev_close")
    phase_raw = frame["phase"].to_numpy(dtype=object)
    phase, phase_codes = _phase_codes(phase_raw if order is None else phase_raw[order], path)

    day = SymbolDay(
        symbol=symbol,
        trade_date=trade_date,
        ts=ts,
        last=column("last"),
        bid_px=block("bid_px"),
        bid_qty=block("bid_qty"),
        ask_px=block("ask_px"),
        ask_qty=block("ask_qty"),
        cum_volume=cum_volume,
        cum_amount=column("cum_amount"),
        prev_close=prev_close,
        high_limit=_first_positive(column("high_limit")),
        low_limit=_first_positive(column("low_limit")),
        phase=phase,
        phase_codes=phase_codes,
    )
    arrays: tuple[NDArray[np.generic], ...] = (day.ts, day.last, day.cum_volume, day.cum_amount, day.phase)
    for array in (*arrays, day.bid_px, day.bid_qty, day.ask_px, day.ask_qty):
        array.flags.writeable = False  # shared by clone_symbol_day; nothing may edit history
    return day


def _peek_symbol(path: Path) -> str:
    """The symbol of the first data row, without parsing the file ("" if it cannot be read)."""
    try:
        with open_text(path) as handle:
            rows = csv.reader([handle.readline(), handle.readline()])
            header, first = next(rows), next(rows, [])
        return first[header.index("symbol")].strip().upper()
    except (InputError, OSError, EOFError, UnicodeDecodeError, ValueError, IndexError, StopIteration):
        return ""  # the full load will report the problem


def load_snapshots(path: str | Path, symbols: Iterable[str] | None = None) -> MarketData:
    """Load a snapshot file, or every ``*.csv`` / ``*.csv.gz`` in a folder (sorted by name), of one date.

    ``symbols`` restricts the load (a file is skipped after reading its first data row). All loaded files
    must share one trade date, a symbol may appear only once, and every requested symbol must be found.
    """
    root = Path(path)
    files = csv_files(root)
    wanted = None if symbols is None else {s.strip().upper() for s in symbols}
    days: dict[str, SymbolDay] = {}
    sources: dict[str, Path] = {}
    for file in files:
        if wanted is not None and len(files) > 1 and _peek_symbol(file) not in wanted:
            continue
        day = load_snapshot_file(file)
        if wanted is not None and day.symbol not in wanted:
            continue
        if days and (first := next(iter(days.values()))).trade_date != day.trade_date:
            message = (
                f"trade_date {day.trade_date} differs from {first.trade_date} in {sources[first.symbol]}"
            )
            raise InputError(message, path=str(file), row=FIRST_DATA_ROW, field="trade_date")
        if day.symbol in days:
            message = f"{day.symbol} already loaded from {sources[day.symbol]}"
            raise InputError(message, path=str(file), row=FIRST_DATA_ROW, field="symbol")
        days[day.symbol], sources[day.symbol] = day, file
    missing = sorted(wanted - days.keys()) if wanted is not None else []
    if missing:
        raise InputError(f"symbols not found: {', '.join(missing)}", path=str(root), field="symbol")
    if not days:
        raise InputError("no snapshot files loaded", path=str(root))
    return MarketData(days=days, trade_date=next(iter(days.values())).trade_date)
