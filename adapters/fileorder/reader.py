"""Reading the terminal's output folder: typed rows, whole-file snapshots, the account filter.

The terminal appends to ``execution_report.csv`` and ``order_status_change.csv`` (read incrementally by
``tail.TailFile``) and rewrites (or appends to) ``order_status.csv``, ``cash.csv`` and ``position.csv``,
UTF-8 with a BOM (RELIABILITY E6). ``read_snapshot`` parses a whole file, or returns None while its last
line is incomplete (the caller keeps the previous snapshot).

Rows become typed records here; a row that does not parse is logged with file and line and skipped.
``of_account`` keeps the rows of one account: a folder the terminal shares between accounts (or a
wrongly configured ``output_dir``) never makes one account's engine act on another's orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog

from zhixing.adapters.fileorder import trust
from zhixing.adapters.fileorder.format import (
    SIDE_OF_BIZ,
    Row,
    column_aliases,
    parse_int,
    parse_money,
    parse_ts,
    split_line,
)
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import InputError
from zhixing.engine.events import AccountReport, OrderStatusReport, PositionReport
from zhixing.engine.input_limits import TERMINAL_OUTPUT
from zhixing.engine.logs import mask_account
from zhixing.engine.market.symbols import from_gm

log = structlog.get_logger("zhixing.fileorder")

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRow:
    """One line of ``order_status.csv`` / ``order_status_change.csv``."""

    sid: str
    cl_ord_id: str  # the terminal's own id of this order (one per order row it processed)
    order_id: str
    symbol: str
    side: Side
    status: int  # GM OrderStatus code
    price: int
    volume: int
    filled: int
    reject_code: int
    reject_detail: str
    ts_event: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecRow:
    """One line of ``execution_report.csv``. Fees are read when the terminal writes them
    (``fees_reported``); the columns observed so far carry none, and the tracker then estimates them."""

    sid: str
    order_id: str
    exec_id: str
    symbol: str
    side: Side
    exec_type: int  # GM ExecType code
    price: int
    volume: int
    reject_code: int
    reject_detail: str
    commission: int
    stamp_duty: int
    transfer_fee: int
    ts_event: int
    fees_reported: bool = True


def _side(row: Row) -> Side:
    biz = parse_int(row.get("order_business"))
    side = SIDE_OF_BIZ.get(biz)
    if side is None:
        raise InputError(f"{biz} is not a stock buy (1) or sell (2)", field="order_business")
    return side


def _event_ts(row: Row, *names: str) -> int:
    for name in names:
        ts = parse_ts(row.get(name))
        if ts:
            return ts
    return 0


def status_row(row: Row) -> StatusRow:
    return StatusRow(
        sid=row.get("sid"),
        cl_ord_id=row.get("cl_ord_id"),
        order_id=row.get("order_id"),
        symbol=from_gm(row.get("symbol")),
        side=_side(row),
        status=parse_int(row.get("status")),
        price=parse_money(row.get("price")),
        volume=parse_int(row.get("volume")),
        filled=parse_int(row.get("filled_volume")),
        reject_code=parse_int(row.get("ord_rej_reason")),
        reject_detail=row.get("ord_rej_reason_detail"),
        ts_event=_event_ts(row, "updated_at", "recv_at", "created_at"),
    )


FEE_COLUMNS = ("commission", "stamp_duty", "transfer_fee")


def exec_row(row: Row) -> ExecRow:
    exec_id = row.get("exec_id")
    if not exec_id:
        raise InputError("empty", field="exec_id")
    return ExecRow(
        sid=row.get("sid"),
        order_id=row.get("order_id"),
        exec_id=exec_id,
        symbol=from_gm(row.get("symbol")),
        side=_side(row),
        exec_type=parse_int(row.get("exec_type")),
        price=parse_money(row.get("price")),
        volume=parse_int(row.get("volume")),
        reject_code=parse_int(row.get("ord_rej_reason")),
        reject_detail=row.get("ord_rej_reason_detail"),
        commission=parse_money(row.get("commission")),
        stamp_duty=parse_money(row.get("stamp_duty")),
        transfer_fee=parse_money(row.get("transfer_fee")),
        ts_event=_event_ts(row, "created_at", "recv_at"),
        fees_reported=any(row.get(name) for name in FEE_COLUMNS),
    )


def account_report(row: Row) -> AccountReport:
    """``cash.csv``: balance is the cash (available + frozen for orders), as ``AccountReport`` means it."""
    balance = parse_money(row.get("balance"))
    available = parse_money(row.get("available"))
    market_value = parse_money(row.get("market_value"))
    nav = parse_money(row.get("nav")) or balance + market_value
    return AccountReport(
        cash=balance, frozen=max(0, balance - available), total_asset=nav, market_value=market_value
    )


def position_report(row: Row) -> PositionReport:
    """``position.csv``: ``available_now`` is what may be sold now (the T+1 rule applied by the terminal)."""
    return PositionReport(
        symbol=from_gm(row.get("symbol")),
        quantity=parse_int(row.get("volume")),
        sellable=parse_int(row.get("available_now")),
        avg_cost=parse_money(row.get("vwap")),
    )


def dropped_order_report(row: Row) -> OrderStatusReport:
    """A row of one of our own ``*.order.csv`` files, as an order handed over but not yet answered."""
    return OrderStatusReport(
        client_order_id=row.get("sid"),
        broker_order_id="",
        symbol=from_gm(row.get("symbol")),
        side=_side(row),
        price=parse_money(row.get("price")),
        quantity=parse_int(row.get("volume")),
        filled_quantity=0,
        status=OrderStatus.SUBMITTED,
    )


def of_account(
    path: Path, rows: list[tuple[int, Row]], account_id: str, skipped: dict[str, int]
) -> list[tuple[int, Row]]:
    """The rows of ``account_id``. A row naming another account is left out and counted in
    ``skipped`` (by file name; logged the first time per file); a row without an account column or
    with it empty is kept: a terminal that writes none has one account per folder."""
    mine: list[tuple[int, Row]] = []
    for line_no, row in rows:
        owner = row.get("account_id")
        if owner and owner != account_id:
            if path.name not in skipped:
                log.warning(
                    "fileorder_other_account_rows", file=str(path), line=line_no, account=mask_account(owner)
                )
            skipped[path.name] = skipped.get(path.name, 0) + 1
            continue
        mine.append((line_no, row))
    return mine


def parse_rows(path: Path, rows: list[tuple[int, Row]], parse: Callable[[Row], T]) -> list[T]:
    """Typed records from numbered rows; a bad row is logged (file, line, error) and skipped."""
    out: list[T] = []
    for line_no, row in rows:
        try:
            out.append(parse(row))
        except (InputError, ValueError, ArithmeticError) as exc:  # ValueError: a symbol (ParameterError)
            log.warning("fileorder_bad_row", file=str(path), line=line_no, error=str(exc))
    return out


_TOO_LARGE_TOLD: set[tuple[str, int]] = set()


def read_snapshot(
    path: Path, encoding: str = "utf-8-sig", *, max_bytes: int = TERMINAL_OUTPUT.max_bytes
) -> list[tuple[int, Row]] | None:
    """All rows of a whole-file snapshot; None if the file is missing, empty, mid-write or larger than
    ``max_bytes`` (refused before it is read, and logged). Opened as ``trust.open_for_reading`` does (a
    symlink raises ``UntrustedPathError``). A line too long or malformed is logged and skipped."""
    try:
        data = trust.read_bytes(path, limit=max_bytes)
    except trust.FileTooLarge as exc:
        if (str(path), exc.size) not in _TOO_LARGE_TOLD:  # once per size, not at every poll
            _TOO_LARGE_TOLD.add((str(path), exc.size))
            log.error("fileorder_file_too_large", file=str(path), bytes=exc.size, limit=exc.limit)
        return None
    if data is None or not data.endswith(b"\n"):
        return None
    columns: dict[str, int] | None = None
    rows: list[tuple[int, Row]] = []
    for line_no, raw in enumerate(data.split(b"\n")[:-1], start=1):
        text = raw.rstrip(b"\r").decode(encoding, errors="replace").lstrip("\ufeff")
        if not text.strip():
            continue
        try:
            values = split_line(text)
        except InputError as exc:
            log.warning("fileorder_bad_line", file=str(path), line=line_no, error=str(exc))
            continue
        if columns is None:
            columns = column_aliases(values)
            continue
        rows.append((line_no, Row(columns, values)))
    return rows if columns is not None else None
