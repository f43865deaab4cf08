"""Restoring an older backup in the middle of a trading day, measured on a live session against the
simulated exchange: what the engine's start-up reconciliation recovers and what it does not.

The backup is taken at 10:05; the engine restarts, trades until 10:12 under a fresh block of client
order ids, and dies with its journal damaged; the 10:05 backup is restored. At the next start the broker
lists orders under this engine's ids that the journal does not have: reconciliation leaves them external
(their fills are not applied), and the journal's id counter is behind them. The start is halted, naming
them, and no id the broker has seen is ever issued again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from zhixing.engine.account import Account
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.store.backup import backup_journal, restore_journal
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.recovery import ProcessClock, run_exchange_alone

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
CASH = 10**10
T = TypeVar("T")


class WatchedProcessClock(ProcessClock):
    """The engine process's clock, also saying when the code is waiting on it (``sleeping``)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(clock)
        self.sleeping = 0

    async def sleep_until(self, when_ns: int) -> None:
        self.sleeping += 1
        try:
            await super().sleep_until(when_ns)
        finally:
            self.sleeping -= 1


async def open_on(
    clock: SimClock, exchange: SimExchange, market: MarketData, db: Path
) -> tuple[LiveSession, WatchedProcessClock]:
    process = WatchedProcessClock(clock)
    opening = open_live_session(
        clock=process,
        adapter=exchange,
        feed=RecordedFeed(market, exchange, process),
        store_path=db,
        account=Account(CASH),
        trading_day_start_ns=shanghai_ns(market.trade_date, "00:00"),
        synchronous="NORMAL",
    )
    return await stepped(clock, process, opening), process


async def step(clock: SimClock, session: LiveSession, until_ns: int) -> None:
    while clock.step(until_ns=until_ns):
        await session.oms.flush()
        await session.inflight.check()


async def stepped(clock: SimClock, process: WatchedProcessClock, work: Awaitable[T]) -> T:
    """Await ``work`` (a start-up that re-asks a differing answer after its grace, a shutdown that
    verifies by query), stepping ``clock`` to its next timer only while the code sleeps on it (never
    while it waits on the journal's thread): the same virtual instants whatever the machine's speed."""
    task = asyncio.ensure_future(work)
    while not task.done():
        if process.sleeping and not clock.step():
            clock.advance_to(clock.now_ns() + 100_000_000)
        await asyncio.sleep(0)
    return await task


async def close(clock: SimClock, process: WatchedProcessClock, session: LiveSession) -> None:
    await stepped(clock, process, session.close())


def parent(parent_id: str, start: str, end: str, day: object) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol="600258.SH",
        side=Side.BUY,
        quantity=30_000,
        start_ns=shanghai_ns(day, start),  # type: ignore[arg-type]
        end_ns=shanghai_ns(day, end),  # type: ignore[arg-type]
    )


async def test_a_mid_day_restore_halts_on_the_lost_orders_and_never_reuses_their_ids(tmp_path: Path) -> None:
    market = load_snapshots(SAMPLE, symbols=["600258.SH"])
    day = market.trade_date
    clock = SimClock(shanghai_ns(day, "09:59"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=CASH)
    sent: list[str] = []
    original_submit = exchange.submit

    async def counting_submit(order: Order) -> None:
        sent.append(order.client_order_id)
        await original_submit(order)

    exchange.submit = counting_submit  # type: ignore[method-assign]
    db = tmp_path / "state" / "zhixing.db"

    # 09:59-10:05: a first session trades, stops; the backup is taken
    first, first_clock = await open_on(clock, exchange, market, db)
    await first.start_parents([parent("P1", "10:00", "10:04", day)])
    await step(clock, first, shanghai_ns(day, "10:05"))
    await close(clock, first_clock, first)
    backup = backup_journal(db, tmp_path / "backups", day=day, now_ns=clock.now_ns())
    before_backup = set(sent)
    assert before_backup

    # 10:05-10:12: the engine restarts (a new block of ids), trades, and dies with the journal damaged
    second, process = await open_on(clock, exchange, market, db)
    assert second.reconcile.ok, second.reconcile.mismatches
    await second.start_parents([parent("P2", "10:06", "10:30", day)])
    await step(clock, second, shanghai_ns(day, "10:12"))
    lost = sorted(set(sent) - before_backup)
    assert lost
    assert min(lost) > max(before_backup)  # the second session's block
    process.kill()
    exchange.bind(lambda event: None)
    if second.oms._flusher is not None:
        second.oms._flusher.cancel()
    await second.store.close()
    run_exchange_alone(clock, shanghai_ns(day, "10:14"))
    db.write_bytes(db.read_bytes()[:-4096])  # the damage that calls for the restore

    # the operator restores the 10:05 backup and starts again
    restore_journal(backup.folder, db, now_ns=clock.now_ns())
    third, third_clock = await open_on(clock, exchange, market, db)
    report = third.reconcile
    assert sorted(report.external) == lost  # not adopted: their fills are not in the journal
    assert third.oms.halted_reason is not None  # fail closed
    assert any("the journal does not have" in m and lost[0] in m for m in report.mismatches)
    assert any(m.startswith("position 600258.SH") for m in report.mismatches)  # the fills it lost
    local = sum(o.filled_quantity for o in third.oms.orders.values())
    broker = {r.client_order_id: r.filled_quantity for r in await exchange.query_orders()}
    assert local == sum(broker[c] for c in before_backup if c in broker)  # only what the backup had

    # the next id the engine issues is past every id the broker has seen (the counter skipped the lost
    # block), whether or not the order may go out: a probe while halted is denied, but takes a fresh id
    probe = third.oms.submit(SubmitOrder(symbol="600258.SH", side=Side.BUY, quantity=100, price=1_000))
    assert probe.client_order_id > max(lost)
    assert probe.client_order_id not in sent
    assert len(sent) == len(set(sent))
    await close(clock, third_clock, third)
