"""A user's own 掘金 文件单 input files, an order file and a cancel file, read as the terminal defines them.

The columns are the terminal's (``format.ORDER_HEADER``, ``format.CANCEL_HEADER``, either spelling of
``order_business(order_biz)``); symbols are the gm spelling (``SHSE.600000``, ``SZSE.000001``); ``volume``
is shares, ``price`` yuan, ``order_type`` and ``order_business`` the gm codes. What a row means is checked
here, whole file first: a file with one bad row gives nothing, and the ``InputError`` names the file, the
row (header = 1) and the field. Whether the row is tradeable (account, lots, tick, limit orders only) is
the caller's (``engine.cli.submit_cmd``), which knows the account and the day's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhixing.adapters.fileorder.format import SIDE_OF_BIZ, parse_int
from zhixing.engine.enums import Side
from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.input_kinds import FileKind, column_names, describe, sniff, taken_by
from zhixing.engine.input_limits import ORDERS, csv_records, decode_text, read_bounded
from zhixing.engine.market.symbols import from_gm
from zhixing.engine.units import money


@dataclass(frozen=True, slots=True, kw_only=True)
class GmOrderRow:
    """One row of a 掘金 order file; ``price`` in milli-yuan, ``symbol`` canonical (``600000.SH``)."""

    row: int
    sid: str
    account_id: str
    symbol: str
    volume: int
    order_type: int
    side: Side
    price: int
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GmCancelRow:
    row: int
    sid: str
    comment: str


@dataclass(frozen=True, slots=True)
class GmFile:
    path: Path
    kind: FileKind  # GM_ORDER or GM_CANCEL
    orders: tuple[GmOrderRow, ...] = ()
    cancels: tuple[GmCancelRow, ...] = ()


def read_gm_file(path: str | Path) -> GmFile:
    """A 掘金 order or cancel file, every row checked; a file of any other kind is refused naming what it
    looks like (``engine.input_kinds``)."""
    path = Path(path)
    text = decode_text(path, read_bounded(path, ORDERS), hint="save as UTF-8, or convert from GBK first")
    records = csv_records(path, text, ORDERS)
    _, header = next(records, (1, []))
    found = sniff(header, path.name)
    if found.kind not in (FileKind.GM_ORDER, FileKind.GM_CANCEL):
        what = found.reason if found.kind is FileKind.AMBIGUOUS else f"this is {describe(found.kind)}"
        taker = taken_by(found.kind)
        hint = f"; {taker}" if taker else ""
        raise InputError(
            f"{what}, not a 掘金 order file (sid,account_id,symbol,volume,order_type,order_business,price,"
            f"comment) or cancel file (sid,comment){hint}",
            path=str(path),
        )
    index = _index(header)
    rows = []
    for row, cells in records:
        if len(cells) > len(header):
            raise InputError(f"{len(cells)} cells, the header has {len(header)}", path=str(path), row=row)

        def cell(name: str, cells: list[str] = cells) -> str:
            i = index.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        rows.append((row, cell))
    if not rows:
        raise InputError("no data rows (header only)", path=str(path))
    seen: dict[str, int] = {}
    orders: list[GmOrderRow] = []
    cancels: list[GmCancelRow] = []
    for row, cell in rows:
        sid = cell("sid")
        if not sid:
            raise InputError("empty sid", path=str(path), row=row, field="sid")
        if sid in seen:
            raise InputError(f"sid {sid!r} repeats row {seen[sid]}", path=str(path), row=row, field="sid")
        seen[sid] = row
        if found.kind is FileKind.GM_CANCEL:
            cancels.append(GmCancelRow(row=row, sid=sid, comment=cell("comment")))
        else:
            orders.append(_order(path, row, sid, cell))
    return GmFile(path, found.kind, tuple(orders), tuple(cancels))


def _index(header: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, raw in enumerate(header):
        for name in column_names([raw]):
            index.setdefault(name, i)
    return index


def _order(path: Path, row: int, sid: str, cell: Callable[[str], str]) -> GmOrderRow:

    def number(name: str) -> int:
        try:
            return parse_int(cell(name))
        except InputError as exc:
            raise InputError(str(exc), path=str(path), row=row, field=name) from None

    text = cell("symbol")
    try:
        symbol = from_gm(text)
    except ParameterError as exc:
        raise InputError(str(exc), path=str(path), row=row, field="symbol") from None
    volume = number("volume")
    if volume <= 0:
        raise InputError(
            f"volume must be positive, got {cell('volume')!r}", path=str(path), row=row, field="volume"
        )
    biz = number("order_business")
    side = SIDE_OF_BIZ.get(biz)
    if side is None:
        raise InputError(
            f"{biz} is not a stock buy (1) or sell (2)", path=str(path), row=row, field="order_business"
        )
    raw_price = cell("price")
    try:
        price = money(raw_price) if raw_price else 0  # finite and bounded first (engine.units)
    except ParameterError:
        raise InputError(f"not a price: {raw_price!r}", path=str(path), row=row, field="price") from None
    return GmOrderRow(
        row=row,
        sid=sid,
        account_id=cell("account_id"),
        symbol=symbol,
        volume=volume,
        order_type=number("order_type"),
        side=side,
        price=price,
        comment=cell("comment"),
    )
