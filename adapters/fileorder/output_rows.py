"""Rows of the terminal's output files, as the terminal writes them (used by the emulator and tests).

Each builder returns the values in the column order of its header in ``format.py``; money as yuan text,
symbols in the gm spelling, timestamps ISO 8601 with ``+08:00``.
"""

from __future__ import annotations

from zhixing.adapters.fileorder.format import BIZ_OF_SIDE, ORDER_TYPE_LIMIT, price_text, ts_text
from zhixing.engine.enums import Side
from zhixing.engine.events import AccountReport, PositionReport
from zhixing.engine.market.symbols import to_gm

SCAN_NAME = "zhixing-terminal-emulator"


def _money(value: int) -> str:
    return price_text(value) if value > 0 else "0"


def status_values(
    *,
    account_id: str,
    sid: str,
    cl_ord_id: str,
    order_id: str,
    symbol: str,
    side: Side,
    status: int,
    reject_code: int,
    reject_detail: str,
    price: int,
    volume: int,
    filled: int,
    created_ns: int,
    updated_ns: int,
    recv_ns: int,
) -> list[object]:
    """A row of ``order_status.csv`` / ``order_status_change.csv`` (``ORDER_STATUS_HEADER``)."""
    return [
        account_id,
        sid,
        SCAN_NAME,
        cl_ord_id,
        order_id,
        to_gm(symbol) if symbol else "",
        ORDER_TYPE_LIMIT,
        BIZ_OF_SIDE[side],
        status,
        reject_code,
        reject_detail,
        _money(price),
        volume,
        filled,
        ts_text(created_ns),
        ts_text(updated_ns),
        ts_text(created_ns),
        ts_text(recv_ns),
    ]


def exec_values(
    *,
    account_id: str,
    sid: str,
    cl_ord_id: str,
    order_id: str,
    exec_id: str,
    symbol: str,
    side: Side,
    exec_type: int,
    price: int,
    volume: int,
    detail: str,
    created_ns: int,
    recv_ns: int,
) -> list[object]:
    """A row of ``execution_report.csv`` (``EXECUTION_REPORT_HEADER``)."""
    return [
        account_id,
        sid,
        SCAN_NAME,
        cl_ord_id,
        order_id,
        exec_id,
        to_gm(symbol) if symbol else "",
        ORDER_TYPE_LIMIT,
        BIZ_OF_SIDE[side],
        0,
        detail,
        exec_type,
        _money(price),
        volume,
        ts_text(created_ns),
        ts_text(recv_ns),
    ]


def cash_values(account_id: str, account: AccountReport, now_ns: int) -> list[object]:
    """The row of ``cash.csv`` (``CASH_HEADER``); pnl columns are not modelled (0)."""
    now = ts_text(now_ns)
    return [
        account_id,
        _money(account.total_asset),
        "0",
        "0",
        "0",
        _money(account.frozen),
        _money(account.cash - account.frozen),
        _money(account.cash),
        _money(account.market_value),
        now,
        now,
        now,
    ]


def position_values(account_id: str, position: PositionReport, now_ns: int) -> list[object]:
    """A row of ``position.csv`` (``POSITION_HEADER``), valued at the average cost; long side (1)."""
    now = ts_text(now_ns)
    value = position.avg_cost * position.quantity
    return [
        account_id,
        to_gm(position.symbol),
        1,
        position.quantity,
        0,
        _money(position.avg_cost),
        _money(value),
        _money(position.avg_cost),
        "0",
        _money(value),
        position.sellable,
        now,
        now,
        now,
    ]
