"""The trade log (流水): ``orders.csv`` and ``fills.csv``, written atomically.

Prices are yuan with 3 decimals (ETF ticks are 0.001), fees with 2; times ISO-8601 in Asia/Shanghai with
milliseconds and ``+08:00`` whatever the host's time zone (``engine.market.calendar.iso8601``). UTF-8,
``\\n`` line endings. Each file is written to a temp file in the same folder, fsynced, renamed over the
target, and the folder fsynced, so a reader sees the old file or the new one, never half of one. The
files are for people and spreadsheets: every cell goes through ``engine.csv_safe`` (a broker's trade id
or a parent id starting with ``=`` is written ``'=...``; numbers stay numbers). The temp file is
``mkstemp``'s (random name, exclusive, owner-only), so the trade log is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine import csv_safe
from engine.market.calendar import iso8601

ORDERS_CSV_COLUMNS = (
    "client_order_id",
    "parent_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "filled_quantity",
    "avg_fill_price",
    "status",
    "created_at",
    "updated_at",
)
FILLS_CSV_COLUMNS = (
    "trade_id",
    "client_order_id",
    "parent_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "commission",
    "stamp_duty",
    "transfer_fee",
    "ts",
)
__all__ = ["FILLS_CSV_COLUMNS", "ORDERS_CSV_COLUMNS", "iso8601", "write_trade_log"]


def yuan3(milli: int) -> str:
    """Milli-yuan as yuan with 3 decimals, exact (same text as ``yuan_str(milli, 3)``)."""
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), 1000)
    return f"{sign}{whole}.{frac:03d}"


def yuan2(milli: int) -> str:
    """Milli-yuan as yuan with 2 decimals, half up (same text as ``yuan_str(milli, 2)``)."""
    sign = "-" if milli < 0 else ""
    fen = (abs(milli) + 5) // 10
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def avg_price3(filled_value: int, filled_quantity: int) -> str:
    """Average fill price (``filled_value`` milli-yuan·shares / shares) as yuan, 3 decimals, half up."""
    if filled_quantity <= 0:
        return "0.000"
    sign = -1 if filled_value < 0 else 1
    milli = (2 * abs(filled_value) + filled_quantity) // (2 * filled_quantity)
    return yuan3(sign * milli)


def order_lines(rows: Iterable[Sequence[Any]]) -> Iterable[tuple[object, ...]]:
    """Rows of ``schema.SELECT_LOG_ORDERS`` as CSV fields."""
    for cid, parent, symbol, side, price, qty, filled, value, status, created, updated in rows:
        yield (
            cid,
            parent,
            symbol,
            side,
            yuan3(price),
            qty,
            filled,
            avg_price3(value, filled),
            status,
            iso8601(created),
            iso8601(updated),
        )


def fill_lines(rows: Iterable[Sequence[Any]]) -> Iterable[tuple[object, ...]]:
    """Rows of ``schema.SELECT_LOG_FILLS`` as CSV fields."""
    for trade, cid, parent, symbol, side, price, qty, commission, stamp, transfer, ts in rows:
        yield (
            trade,
            cid,
            parent,
            symbol,
            side,
            yuan3(price),
            qty,
            yuan2(commission),
            yuan2(stamp),
            yuan2(transfer),
            iso8601(ts),
        )


def write_csv_atomic(path: Path, header: Sequence[str], lines: Iterable[Sequence[object]]) -> None:
    """Temp file in the same folder, fsync, ``os.replace``, fsync the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv_safe.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX; Windows cannot open a folder for fsync and does not need to)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_trade_log(
    out_dir: Path, order_rows: Sequence[Sequence[Any]], fill_rows: Sequence[Sequence[Any]]
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    orders_path = out_dir / "orders.csv"
    fills_path = out_dir / "fills.csv"
    write_csv_atomic(orders_path, ORDERS_CSV_COLUMNS, order_lines(order_rows))
    write_csv_atomic(fills_path, FILLS_CSV_COLUMNS, fill_lines(fill_rows))
    return orders_path, fills_path
