"""``zhixing submit FILE --config CFG``: a user's 掘金 order or cancel file, through the configured route.

The file is read as the terminal defines it (``adapters.fileorder.order_file``) and validated whole before
anything is sent: every row's account id is the config's ``[account] id``, its symbol a gm code, its volume
on the lot grid (STAR: 200, then steps of 1) and at most the board's limit-order cap, its price on the tick,
its side a stock buy or sell and its ``order_type`` a kind the symbol's exchange takes (1 limit; SZSE 20-24,
SSE 24-25: the market kinds, whose ``price`` is the protection bound, required on STAR and ChiNext, 0
elsewhere meaning the day's limit-up / limit-down; their volume within the market-order cap). With the
session open, sells are checked against the sellable position and
prices against the day's limits, still before the first order goes out. Then every order goes through the
one engine (``zhixing.assembly.build_engine``): the same journal, market rules and risk gate as a run. A
row's ``sid`` is kept as the order's tag (``gm:<sid>``) so a cancel file can name it; a cancel row may also
name an engine client order id. ``--dry-run`` stops after the file checks; a bad file exits 2, nothing sent;
an order denied by the engine's checks or rejected by the broker exits 1. The command waits until every
order is done or ``--end``; what still works then is cancelled or left as the config's ``shutdown`` says.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhixing.adapters.fileorder.format import FILE_ORDER_TYPE
from zhixing.adapters.fileorder.order_file import GmFile, GmOrderRow, read_gm_file
from zhixing.engine.cli.routes import load_checked, run_route
from zhixing.engine.config import ROUTES, Config
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import InputError
from zhixing.engine.events import SubmitOrder
from zhixing.engine.input_kinds import FileKind
from zhixing.engine.instance_lock import InstanceLock
from zhixing.engine.market import PROTECTED_BOARDS, check_order_quantity, instrument_for, is_on_tick
from zhixing.engine.no_feed import NO_QUOTES
from zhixing.engine.orders import Order

if TYPE_CHECKING:
    from zhixing.engine.cli.run_cmd import ConfiguredSession
    from zhixing.engine.cli.runner import DayRunner

TAG_PREFIX = "gm:"
_REFUSED = frozenset({OrderStatus.DENIED, OrderStatus.REJECTED})  # exit 1: an order did not go out


def add_parsers(sub: Any) -> None:
    submit = sub.add_parser(
        "submit", help="send a 掘金 order file or cancel file through the configured route"
    )
    submit.add_argument("file", type=Path, help="掘金 文件单 order file (*.order.csv) or cancel file")
    submit.add_argument("--config", type=Path, required=True, help="the live-run config whose account trades")
    submit.add_argument("--adapter", choices=ROUTES, help="the route to use instead of the config's")
    submit.add_argument("--dry-run", action="store_true", help="validate the file only; send nothing")
    submit.add_argument("--start", default="09:30", help="sim route: the recorded day's time to send at")
    submit.add_argument("--end", default="14:57", help="wait for the orders' outcome until HH:MM today")
    submit.set_defaults(handler=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    config = load_checked(args.config, adapter=args.adapter)
    gm = read_gm_file(args.file)
    check_file(gm, config)
    if args.dry_run:
        print(f"{gm.path}: {len(gm.orders) + len(gm.cancels)} row(s) valid; nothing sent (--dry-run)")
        return 0
    config.store.path.parent.mkdir(parents=True, exist_ok=True)
    with InstanceLock.for_store(config.store.path):
        return run_route(config, lambda bridge: _run(args, config, gm, gm_bridge=bridge))


def check_file(gm: GmFile, config: Config) -> None:
    """Every order row tradeable by the rules a file alone can show; ``InputError`` naming the row."""
    where = str(gm.path)
    if gm.orders and config.feed.kind == "none":  # a cancel file needs no quotes; an order does
        raise InputError(
            f"{NO_QUOTES} (config {config.path}; a cancel file runs without a feed)",
            path=where,
            row=gm.orders[0].row,
        )
    for order in gm.orders:
        if order.account_id != config.account.id:
            raise InputError(
                f"account_id {order.account_id!r} is not this config's account {config.account.id!r}",
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


@dataclass(frozen=True, slots=True)
class Sent:
    row: int
    sid: str
    order: Order
    action: str  # "order" or "cancel"


async def _run(args: argparse.Namespace, config: Config, gm: GmFile, *, gm_bridge: Any = None) -> int:
    from zhixing.engine.cli.run_cmd import open_configured, print_shutdown

    run = await open_configured(config, start=args.start, until=args.end, gm_bridge=gm_bridge)
    sent: list[Sent] = []
    try:
        if run.session.oms.halted_reason is not None:
            print(f"zhixing: halted ({run.session.oms.halted_reason}); nothing is sent")
            return 1
        sent = await send_file(run, gm)
        await run.drive(asyncio.Event(), done=lambda: all(s.order.is_terminal for s in sent))
    finally:
        shutdown = await run.close()
        print_shutdown(shutdown)
    print(outcome_table(sent))
    refused = [s for s in sent if s.action == "order" and s.order.status in _REFUSED]
    return 0 if not refused and (shutdown is None or shutdown.ok) else 1


async def send_file(run: ConfiguredSession, gm: GmFile) -> list[Sent]:
    """Check what needs the session (sellable shares, the day's limits, the orders a cancel names) for
    every row, then send them all: an order per order row, a cancel per cancel row. ``run``: an open
    ``run_cmd.ConfiguredSession``. The symbols are subscribed first and their first quotes awaited (the
    risk gate prices every order against one; without it the order is denied ``no_reference_quote``)."""
    runner = run.runner
    session = runner.session
    oms = session.oms
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
            targets.append((cancel.row, cancel.sid, order))
        out = []
        for row, sid, order in targets:
            oms.cancel(order.client_order_id)
            out.append(Sent(row, sid, order, "cancel"))
        await oms.flush()
        return out
    symbols = sorted({o.symbol for o in gm.orders} - session.symbols)
    if symbols:
        await session.feed.subscribe(symbols)
        session.book.watch(symbols)
        session.symbols.update(symbols)
    await run.drive(asyncio.Event(), done=lambda: all(session.book.latest(s) for s in symbols))
    for order_row in gm.orders:
        await _check_in_session(runner, order_row, where)
    known = {o.tag for o in oms.orders.values()}
    for order_row in gm.orders:
        if TAG_PREFIX + order_row.sid in known:
            raise InputError(
                f"sid {order_row.sid!r} was sent before; a sid is sent once",
                path=where,
                row=order_row.row,
                field="sid",
            )
    out = []
    for order_row in gm.orders:
        command = SubmitOrder(
            symbol=order_row.symbol,
            side=order_row.side,
            quantity=order_row.volume,
            price=order_row.price,
            order_type=kind_of(order_row.symbol, order_row.order_type, where, order_row.row),
            tag=TAG_PREFIX + order_row.sid,
        )
        out.append(Sent(order_row.row, order_row.sid, oms.submit(command), "order"))
    await oms.flush()
    return out


async def _check_in_session(runner: DayRunner, order: GmOrderRow, where: str) -> None:
    session = runner.session
    instrument = session.engine.rules.instrument(order.symbol)  # the clock's day
    if order.side is Side.SELL:
        sellable = session.account.position(order.symbol).sellable
        problem = check_order_quantity(instrument, Side.SELL, order.volume, sellable)
        if problem is not None:
            raise InputError(
                f"sell of {order.volume} with {sellable} sellable: {problem.value}",
                path=where,
                row=order.row,
                field="volume",
            )
    ref = await runner.reference(order.symbol)
    if order.price == 0:  # a market order bounded by the day's limits themselves (checked in check_file)
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


def outcome_table(sent: list[Sent]) -> str:
    lines = [
        f"{'row':>4}  {'sid':<16} {'action':<6} {'symbol':<10} {'side':<4} {'qty':>8} {'filled':>8}  status"
    ]
    for s in sent:
        o = s.order
        status = o.status.value + (f" ({o.reason})" if o.reason else "")
        lines.append(
            f"{s.row:>4}  {s.sid:<16} {s.action:<6} {o.symbol:<10} {o.side.value:<4} {o.quantity:>8} "
            f"{o.filled_quantity:>8}  {status}"
        )
    return "\n".join(lines)
