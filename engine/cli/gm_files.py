"""A 掘金 order or cancel file checked and sent through one engine: the rules ``zhixing submit`` and the
API's ``submit_file`` share (one place, so the two cannot drift). The file is read by the file-order
route's reader (``adapters.fileorder.order_file``, which refuses a file of another kind); ``read_checked``
reads it and applies ``check_file``.

``check_file`` is what the file alone can show against the account's id and the board rules: every row's
account id is the session's, its ``order_type`` a kind the symbol's exchange takes (1 limit; SZSE 20-24,
SSE 24-25: the market kinds, whose ``price`` is the protection bound, required on STAR and ChiNext, 0
elsewhere meaning the day's limit-up / limit-down), its price on the tick, its volume within the board's
limit- or market-order cap and a buy's on the lot grid (STAR: 200, then steps of 1). ``send_checked``
then checks what needs the open session for every row (a sell against the sellable position, a price
against the day's limits, a sid not sent before, the order a cancel names) and only then sends them all.
A row's ``sid`` is kept as the order's tag (``gm:<sid>``) so a cancel file can name it; a cancel row may
also name an engine client order id. Every refusal is an ``InputError`` naming the file, row and field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from zhixing.adapters.fileorder.format import FILE_ORDER_TYPE
from zhixing.adapters.fileorder.order_file import GmFile, GmOrderRow, read_gm_file
from zhixing.engine.enums import OrderType, Side
from zhixing.engine.errors import InputError
from zhixing.engine.events import SubmitOrder
from zhixing.engine.input_kinds import FileKind
from zhixing.engine.market import PROTECTED_BOARDS, check_order_quantity, instrument_for, is_on_tick
from zhixing.engine.market.instruments import Instrument
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.portfolio.planner import MarketRef

TAG_PREFIX = "gm:"


@dataclass(frozen=True, slots=True)
class Sent:
    """One row of the file and the engine's order it became (an order row) or cancelled (a cancel row)."""

    row: int
    sid: str
    order: Order
    action: str  # "order" or "cancel"


def read_checked(path: str | Path, account_id: str) -> GmFile:
    """The file at ``path`` read (another kind refused naming it) and every row checked by ``check_file``."""
    gm = read_gm_file(path)
    check_file(gm, account_id)
    return gm


def check_file(gm: GmFile, account_id: str) -> None:
    """Every order row tradeable by the rules a file alone can show; ``InputError`` naming the row."""
    where = str(gm.path)
    for order in gm.orders:
        if order.account_id != account_id:
            raise InputError(
                f"account_id {order.account_id!r} is not this session's account {account_id!r} "
                "(the config's [account] id)",
                path=where,
                row=order.row,
                field="account_id",
            )
        kind = kind_of(order.symbol, order.order_type, where, order.row)
        instrument = instrument_for(order.symbol)
        protected = instrument.board in PROTECTED_BOARDS
        if kind.is_market and order.price == 0 and protected:
            raise InputError(
                f"a market order on {order.symbol} needs a protection price (STAR and ChiNext)",
                path=where,
                row=order.row,
                field="price",
            )
        # a limit order's price; a market order's protection bound (0: the day's limit-up / limit-down)
        if (order.price <= 0 and not kind.is_market) or not is_on_tick(instrument, order.price):
            raise InputError(
                f"price must be a positive multiple of the tick {instrument.tick / 1000:g}",
                path=where,
                row=order.row,
                field="price",
            )
        cap = instrument.max_market_order_qty if kind.is_market else instrument.max_limit_order_qty
        if order.volume > cap:
            raise InputError(
                f"volume {order.volume} is more than the {cap} a {'market' if kind.is_market else 'limit'} "
                f"order may carry on {order.symbol}",
                path=where,
                row=order.row,
                field="volume",
            )
        # a buy must be on the lot grid; a sell may also be the whole (odd-lot) position, checked in session
        grid = check_order_quantity(instrument, Side.BUY, order.volume, 0)
        if order.side is Side.BUY and grid is not None:
            raise InputError(
                f"volume {order.volume} is not a buy size on {order.symbol}: at least "
                f"{instrument.buy_min}, in steps of {instrument.buy_step} ({grid.value})",
                path=where,
                row=order.row,
                field="volume",
            )


_KIND_OF_CODE: dict[tuple[str, int], OrderType] = {
    (ex, code): kind for (ex, kind), code in FILE_ORDER_TYPE.items()
}


def kind_of(symbol: str, code: int, where: str, row: int) -> OrderType:
    """The kind a row's ``order_type`` code means on the symbol's exchange (the terminal's data dictionary:
    1 limit; SZSE 20-24, SSE 24-25); a code the exchange does not take is refused naming the row."""
    exchange = symbol[-2:]
    kind = _KIND_OF_CODE.get((exchange, code))
    if kind is None:
        takes = ", ".join(
            f"{c} ({k.value.lower()})" for (ex, c), k in sorted(_KIND_OF_CODE.items()) if ex == exchange
        )
        raise InputError(
            f"order_type {code} is not an order kind {exchange} takes; it takes {takes}",
            path=where,
            row=row,
            field="order_type",
        )
    return kind


def check_in_session(
    order: GmOrderRow, instrument: Instrument, sellable: int, ref: MarketRef, where: str
) -> None:
    """What a row needs the session for: a sell within the sellable position (or the whole odd-lot
    tail), a limit price inside the day's limits (a market row's 0 bound is the limits themselves)."""
    if order.side is Side.SELL:
        problem = check_order_quantity(instrument, Side.SELL, order.volume, sellable)
        if problem is not None:
            raise InputError(
                f"sell of {order.volume} with {sellable} sellable: {problem.value}",
                path=where,
                row=order.row,
                field="volume",
            )
    if order.price == 0:
        return
    if (ref.high_limit and order.price > ref.high_limit) or (ref.low_limit and order.price < ref.low_limit):
        raise InputError(
            f"price {order.price / 1000:.3f} is outside today's limits "
            f"{ref.low_limit / 1000:.3f}..{ref.high_limit / 1000:.3f}",
            path=where,
            row=order.row,
            field="price",
        )


def find_order(orders: Iterable[Order], sid: str) -> Order | None:
    """The order a cancel row names: by the sid a submit kept as its tag, else by client order id."""
    by_id = None
    for order in orders:
        if order.tag == TAG_PREFIX + sid:
            return order
        if order.client_order_id == sid:
            by_id = order
    return by_id


async def send_checked(
    oms: OrderManager,
    gm: GmFile,
    *,
    instrument: Callable[[str], Instrument],
    sellable: Callable[[str], int],
    reference: Callable[[str], Awaitable[MarketRef]],
) -> list[Sent]:
    """Check every row against the open session, then send them all: an order per order row, a cancel
    per cancel row; nothing is sent when a row fails. ``instrument``: the day's rules for a symbol;
    ``sellable``: the account's T+1 sellable shares; ``reference``: the symbol's day limits (its quote
    already awaited: the risk gate prices every order against one)."""
    where = str(gm.path)
    if gm.kind is FileKind.GM_CANCEL:
        targets = []
        for cancel in gm.cancels:
            order = find_order(oms.orders.values(), cancel.sid)
            if order is None:
                raise InputError(
                    f"no order of this account has sid or client order id {cancel.sid!r}",
                    path=where,
                    row=cancel.row,
                    field="sid",
                )
            targets.append(Sent(cancel.row, cancel.sid, order, "cancel"))
        for sent in targets:
            oms.cancel(sent.order.client_order_id)
        await oms.flush()
        return targets
    for row in gm.orders:
        check_in_session(
            row, instrument(row.symbol), sellable(row.symbol), await reference(row.symbol), where
        )
    known = {o.tag for o in oms.orders.values()}
    for row in gm.orders:
        if TAG_PREFIX + row.sid in known:
            raise InputError(
                f"sid {row.sid!r} was sent before; a sid is sent once",
                path=where,
                row=row.row,
                field="sid",
            )
    out = []
    for row in gm.orders:
        command = SubmitOrder(
            symbol=row.symbol,
            side=row.side,
            quantity=row.volume,
            price=row.price,
            order_type=kind_of(row.symbol, row.order_type, where, row.row),
            tag=TAG_PREFIX + row.sid,
        )
        out.append(Sent(row.row, row.sid, oms.submit(command), "order"))
    await oms.flush()
    return out
