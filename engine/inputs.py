"""Reading user input files: parent orders and start-of-day positions.

Every problem is an ``InputError`` naming the file, the row (1-based, counting the header as row 1, as
a spreadsheet shows it) and the field; a bad file yields nothing, so nothing half-done is left behind.
Size, rows and cells are bounded before and while the file is read (``engine.input_limits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from zhixing.engine.enums import Side
from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.input_kinds import FileKind, refuse_other_kind
from zhixing.engine.input_limits import ORDERS, POSITIONS, Limits, csv_records, decode_text, read_bounded
from zhixing.engine.market import normalize_symbol, shanghai_ns
from zhixing.engine.units import duration_ns, money, shares

_SIDES = {"buy": Side.BUY, "b": Side.BUY, "买": Side.BUY, "sell": Side.SELL, "s": Side.SELL, "卖": Side.SELL}


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow:
    """One row of an orders file, validated; times still as HH:MM strings."""

    symbol: str
    side: Side
    quantity: int
    algo: str | None
    start: str | None
    end: str | None
    limit_price: int
    params: dict[str, str]


def _read_rows(
    path: Path, required: tuple[str, ...], limits: Limits, kind: FileKind
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(row, column -> cell)`` of a CSV file of ``kind``, bounded (``engine.input_limits``)
    before and while it is read; a file whose header is another kind's is refused
    (``engine.input_kinds``)."""
    data = read_bounded(path, limits)
    text = decode_text(path, data, hint="save as UTF-8, or convert from GBK first")
    records = csv_records(path, text, limits)
    _, cells = next(records, (1, []))
    header = [h.strip() for h in cells]
    if not any(header):
        raise InputError("empty file (no header)", path=str(path))
    refuse_other_kind(path, header, kind)
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; found {', '.join(header)}", path=str(path))
    rows = []
    for row, values in records:
        if len(values) > len(header):
            raise InputError("more values than header columns", path=str(path), row=row)
        padded = [v.strip() for v in values] + [""] * (len(header) - len(values))
        rows.append((row, dict(zip(header, padded, strict=True))))
    if not rows:
        raise InputError("no data rows (header only)", path=str(path))
    return header, rows


def _symbol(value: str, path: Path, row: int) -> str:
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise InputError(f"bad symbol {value!r}: {exc}", path=str(path), row=row, field="symbol") from None


def _positive_int(value: str, path: Path, row: int, field: str, allow_zero: bool = False) -> int:
    try:
        number = shares(value)  # a whole, bounded number of shares (engine.units)
    except ParameterError as exc:
        raise InputError(str(exc), path=str(path), row=row, field=field) from None
    if number == 0 and not allow_zero:
        raise InputError(f"must be positive: {value!r}", path=str(path), row=row, field=field)
    return number


def _limit_price(value: str, path: Path, row: int) -> int:
    try:
        limit = money(value)  # finite and bounded before the milli-yuan conversion (engine.units)
    except ParameterError as exc:
        limit, problem = 0, str(exc)
    else:
        problem = f"must be a positive number, got {value!r}"
    if limit <= 0:
        raise InputError(f"limit price {problem}", path=str(path), row=row, field="limit_price")
    return limit


def _hhmm(value: str, path: Path, row: int, field: str) -> str:
    parts = value.split(":")
    ok = len(parts) in (2, 3) and all(p.isdigit() and len(p) == 2 for p in parts)
    if not ok or int(parts[0]) > 23 or int(parts[1]) > 59:
        raise InputError(f"time must be HH:MM, got {value!r}", path=str(path), row=row, field=field)
    return value


_ORDER_COLUMNS = {"symbol", "side", "quantity", "algo", "start", "end", "limit_price"}


def read_orders_file(path: str | Path) -> list[OrderRow]:
    """Orders CSV: ``symbol,side,quantity`` and optional ``algo,start,end,limit_price``; any other column
    is an algorithm parameter for that row (empty cells are ignored). Duplicate (symbol, side) rows are
    refused."""
    path = Path(path)
    _, rows = _read_rows(path, ("symbol", "side", "quantity"), ORDERS, FileKind.ORDERS)
    out: list[OrderRow] = []
    seen: dict[tuple[str, Side], int] = {}
    for row, raw in rows:
        symbol = _symbol(raw["symbol"], path, row)
        side = _SIDES.get(raw["side"].lower())
        if side is None:
            raise InputError(
                f"side must be buy or sell, got {raw['side']!r}", path=str(path), row=row, field="side"
            )
        if (symbol, side) in seen:
            raise InputError(
                f"duplicate {symbol} {side.value} (first at row {seen[(symbol, side)]})",
                path=str(path),
                row=row,
                field="symbol",
            )
        seen[(symbol, side)] = row
        quantity = _positive_int(raw["quantity"], path, row, "quantity")
        limit = 0
        if raw.get("limit_price"):
            limit = _limit_price(raw["limit_price"], path, row)
        out.append(
            OrderRow(
                symbol=symbol,
                side=side,
                quantity=quantity,
                algo=raw.get("algo") or None,
                start=_hhmm(raw["start"], path, row, "start") if raw.get("start") else None,
                end=_hhmm(raw["end"], path, row, "end") if raw.get("end") else None,
                limit_price=limit,
                params={k: v for k, v in raw.items() if k not in _ORDER_COLUMNS and v},
            )
        )
    return out


def read_positions_file(path: str | Path) -> dict[str, int]:
    """Positions CSV ``symbol,quantity`` held from before today (so sellable today)."""
    path = Path(path)
    _, rows = _read_rows(path, ("symbol", "quantity"), POSITIONS, FileKind.POSITIONS)
    out: dict[str, int] = {}
    for row, raw in rows:
        symbol = _symbol(raw["symbol"], path, row)
        if symbol in out:
            raise InputError(f"duplicate symbol {symbol}", path=str(path), row=row, field="symbol")
        out[symbol] = _positive_int(raw["quantity"], path, row, "quantity", allow_zero=True)
    return out


def window_ns(day: date, start: str, end: str, *, where: str = "") -> tuple[int, int]:
    """HH:MM strings on ``day`` (Asia/Shanghai) to ns; end must be after start."""
    t0, t1 = shanghai_ns(day, start), shanghai_ns(day, end)
    if t1 <= t0:
        raise InputError(f"end {end} is not after start {start}", path=where or None, field="end")
    return t0, t1


def parse_cash(value: str | float, *, flag: str = "--cash") -> int:
    """A cash amount in yuan given as the CLI flag ``flag`` to milli-yuan: finite, 0 to ``MAX_YUAN``."""
    try:
        return money(value)
    except ParameterError as exc:
        raise InputError(f"{flag} {exc}") from None


def parse_latency_ms(value: str | int, *, flag: str = "--latency-ms") -> int:
    """A one-way latency in milliseconds given as the CLI flag ``flag`` to nanoseconds (bounded)."""
    try:
        return duration_ns(value, per_second=1000)
    except ParameterError as exc:
        raise InputError(f"{flag} {exc}") from None
