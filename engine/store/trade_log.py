"""The trade log (流水): ``orders.csv`` and ``fills.csv``, written atomically.

Prices are yuan with 3 decimals (ETF ticks are 0.001), fees with 2; times ISO-8601 in Asia/Shanghai with
milliseconds and ``+08:00`` whatever the host's time zone (``engine.market.calendar.iso8601``). UTF-8,
``\\n`` line endings. The two files are one set (``engine.store.file_set``): written into a temporary
folder beside the output folder, fsynced, renamed into place, so a reader sees the previous two files or
the new two, never half of one nor a new ``orders.csv`` beside an old ``fills.csv`` (a disk that filled
between them). The files are for people and spreadsheets: every cell goes through ``engine.csv_safe``
(a broker's trade id or a parent id starting with ``=`` is written ``'=...``; numbers stay numbers).
They are created exclusive and owner-only, so the trade log is readable by its owner only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from zhixing.engine import csv_safe
from zhixing.engine.market.calendar import iso8601
from zhixing.engine.store.file_set import fsync_dir, write_file_set

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
TRADE_LOG_FILES = ("orders.csv", "fills.csv")
__all__ = ["FILLS_CSV_COLUMNS", "ORDERS_CSV_COLUMNS", "fsync_dir", "iso8601", "write_trade_log"]


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


def write_csv(path: Path, header: Sequence[str], lines: Iterable[Sequence[object]]) -> None:
    """A new file at ``path`` (exclusive, owner-only), every cell through ``csv_safe``, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = csv_safe.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(lines)
        handle.flush()
        os.fsync(handle.fileno())


def is_trade_log_file(name: str) -> bool:
    """A name a trade log folder holds: the two files (and the temp files of older versions)."""
    if name in TRADE_LOG_FILES:
        return True
    return any(name.startswith(f".{n}.") for n in TRADE_LOG_FILES) and name.endswith(".tmp")


def write_trade_log_files(
    folder: Path, order_rows: Iterable[Sequence[Any]], fill_rows: Iterable[Sequence[Any]]
) -> tuple[Path, Path]:
    """``orders.csv`` and ``fills.csv`` into ``folder``, an empty folder of a set being written."""
    orders_path = folder / "orders.csv"
    fills_path = folder / "fills.csv"
    write_csv(orders_path, ORDERS_CSV_COLUMNS, order_lines(order_rows))
    write_csv(fills_path, FILLS_CSV_COLUMNS, fill_lines(fill_rows))
    return orders_path, fills_path


def write_trade_log(
    out_dir: Path, order_rows: Sequence[Sequence[Any]], fill_rows: Sequence[Sequence[Any]]
) -> tuple[Path, Path]:
    """The trade log into ``out_dir`` as one set (``engine.store.file_set``): both new files or, after
    any failure (a full disk), the previous two as they were. ``out_dir`` holds the trade log only: a
    folder with other files is refused (``FileSetError``), nothing written."""
    out = Path(out_dir)
    write_file_set(
        out,
        lambda folder: write_trade_log_files(folder, order_rows, fill_rows),
        ours=is_trade_log_file,
        what="trade log (orders.csv and fills.csv)",
    )
    return out / "orders.csv", out / "fills.csv"
