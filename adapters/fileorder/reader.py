"""Reading the terminal's output folder: incremental tails and whole-file snapshots.

The terminal appends to ``execution_report.csv`` and ``order_status_change.csv`` and rewrites (or
appends to) ``order_status.csv``, ``cash.csv`` and ``position.csv``, UTF-8 with a BOM (RELIABILITY E6):

- ``TailFile`` reads only the bytes added since the last poll; a last line without its line break is
  left for the next poll, never parsed half; a file that shrank or was replaced is read again from the
  start (the consumer dedupes: fills by exec id, statuses by order).
- ``read_snapshot`` parses a whole file, or returns None while its last line is incomplete (the caller
  keeps the previous snapshot).

Rows become typed records here; a row that does not parse is logged with file and line and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog

from adapters.fileorder.format import (
    SIDE_OF_BIZ,
    Row,
    column_aliases,
    parse_int,
    parse_money,
    parse_ts,
    split_line,
)
from engine.enums import OrderStatus, Side
from engine.events import AccountReport, OrderStatusReport, PositionReport
from engine.market.symbols import from_gm

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
        raise ValueError(f"order_business {biz} is not a stock buy (1) or sell (2)")
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
        raise ValueError("exec_id is empty")
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


def parse_rows(path: Path, rows: list[tuple[int, Row]], parse: Callable[[Row], T]) -> list[T]:
    """Typed records from numbered rows; a bad row is logged (file, line, error) and skipped."""
    out: list[T] = []
    for line_no, row in rows:
        try:
            out.append(parse(row))
        except (ValueError, ArithmeticError) as exc:
            log.warning("fileorder_bad_row", file=str(path), line=line_no, error=str(exc))
    return out


def _decode(raw: bytes, encoding: str) -> str:
    return raw.rstrip(b"\r").decode(encoding, errors="replace").lstrip("\ufeff")


class TailFile:
    """Incremental reader of one append-only CSV file, by byte offset."""

    def __init__(self, path: Path, encoding: str = "utf-8-sig") -> None:
        self.path = path
        self.encoding = encoding
        self.offset = 0
        self._lines = 0
        self._columns: dict[str, int] | None = None
        self._identity: tuple[int, int] | None = None

    def poll(self) -> list[tuple[int, Row]]:
        """Rows completed since the last poll, with their 1-based line numbers."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return []
        identity = (stat.st_dev, stat.st_ino)
        if stat.st_size < self.offset or (self._identity is not None and identity != self._identity):
            log.info("fileorder_file_restarted", file=str(self.path), offset=self.offset, size=stat.st_size)
            self.offset, self._lines, self._columns = 0, 0, None
        self._identity = identity
        if stat.st_size == self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(stat.st_size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return []  # only a partial line so far: wait for its line break
        self.offset += end + 1
        rows: list[tuple[int, Row]] = []
        for raw in data[: end + 1].split(b"\n")[:-1]:
            self._lines += 1
            text = _decode(raw, self.encoding)
            if not text.strip():
                continue
            values = split_line(text)
            if self._columns is None:
                self._columns = column_aliases(values)
                continue
            rows.append((self._lines, Row(self._columns, values)))
        return rows


def read_snapshot(path: Path, encoding: str = "utf-8-sig") -> list[tuple[int, Row]] | None:
    """All rows of a whole-file snapshot; None if the file is missing, empty or mid-write."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.endswith(b"\n"):
        return None
    columns: dict[str, int] | None = None
    rows: list[tuple[int, Row]] = []
    for line_no, raw in enumerate(data.split(b"\n")[:-1], start=1):
        text = _decode(raw, encoding)
        if not text.strip():
            continue
        values = split_line(text)
        if columns is None:
            columns = column_aliases(values)
            continue
        rows.append((line_no, Row(columns, values)))
    return rows if columns is not None else None
