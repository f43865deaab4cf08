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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhixing.adapters.fileorder.order_file import GmFile, read_gm_file
from zhixing.engine.cli.gm_files import Sent, check_file, send_checked
from zhixing.engine.cli.routes import load_checked, run_route
from zhixing.engine.config import ROUTES, Config
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import InputError
from zhixing.engine.instance_lock import InstanceLock
from zhixing.engine.no_feed import NO_QUOTES

if TYPE_CHECKING:
    from zhixing.engine.cli.run_cmd import ConfiguredSession

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
    check_file(gm, config.account.id)
    if gm.orders and config.feed.kind == "none":  # a cancel file needs no quotes; an order does
        raise InputError(
            f"{NO_QUOTES} (config {config.path}; a cancel file runs without a feed)",
            path=str(gm.path),
            row=gm.orders[0].row,
        )
    if args.dry_run:
        print(f"{gm.path}: {len(gm.orders) + len(gm.cancels)} row(s) valid; nothing sent (--dry-run)")
        return 0
    config.store.path.parent.mkdir(parents=True, exist_ok=True)
    with InstanceLock.for_store(config.store.path):
        return run_route(config, lambda bridge: _run(args, config, gm, gm_bridge=bridge))


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
    """Check what needs the session for every row, then send them all (``gm_files.send_checked``).
    ``run``: an open ``run_cmd.ConfiguredSession``. The symbols are subscribed first and their first
    quotes awaited (the risk gate prices every order against one; without it the order is denied
    ``no_reference_quote``)."""
    runner = run.runner
    session = runner.session
    symbols = sorted({o.symbol for o in gm.orders} - session.symbols)
    if symbols:
        await session.feed.subscribe(symbols)
        session.book.watch(symbols)
        session.symbols.update(symbols)
    if gm.orders:
        await run.drive(asyncio.Event(), done=lambda: all(session.book.latest(s) for s in symbols))
    return await send_checked(
        session.oms,
        gm,
        instrument=session.engine.rules.instrument,  # the clock's day
        sellable=lambda symbol: session.account.position(symbol).sellable,
        reference=runner.reference,
    )


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
