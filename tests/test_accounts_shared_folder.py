"""Two engines on two accounts share one file-order input folder and one state directory (two journals,
one sid ledger), end to end: live sessions -> the file route -> real folders -> one terminal emulator
serving both accounts -> a simulated venue per account, on one virtual clock. The account ids are
hostile: one is the start of the other.

Each engine issues ids of its own account (never the other's), sees only its orders and fills, refuses
and cancels nothing of the other's; at a restart each reconciles clean, the other's files in the folder
neither external nor lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from adapters.fileorder import FileOrderAdapter, FileOrderConfig
from engine.account import Account
from engine.cli.session import LiveSession, open_live_session
from engine.clock import SimClock
from engine.enums import OrderStatus, Side
from engine.instance_lock import AlreadyRunning, InstanceLock
from engine.market import TradingCalendar, shanghai_ns
from engine.order_ids import OrderIds
from engine.parents import ParentOrder
from replay.data import MarketData, load_snapshots
from replay.exchange import SimExchange
from replay.paper import RecordedFeed
from replay.recovery import ProcessClock
from replay.terminal import TerminalEmulator, TerminalFaults

SAMPLE = Path(__file__).resolve().parents[1] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600258.SH"
CASH = 10**10
ACCOUNTS = ("1234567", "12345678")  # one is the start of the other
T = TypeVar("T")


class WatchedProcessClock(ProcessClock):
    """An engine process's clock that says when the code waits on it (``sleeping``)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(clock)
        self.sleeping = 0

    async def sleep_until(self, when_ns: int) -> None:
        self.sleeping += 1
        try:
            await super().sleep_until(when_ns)
        finally:
            self.sleeping -= 1


async def stepped(clock: SimClock, process: WatchedProcessClock, work: Awaitable[T]) -> T:
    """Await ``work``, stepping ``clock`` only while the code sleeps on it (never while it is on the
    journal's thread): the same virtual instants whatever the machine's speed."""
    task = asyncio.ensure_future(work)
    while not task.done():
        if process.sleeping and not clock.step():
            clock.advance_to(clock.now_ns() + 100_000_000)
        await asyncio.sleep(0)
    return await task


@dataclass
class Desk:
    """The shared folders, the terminal serving both accounts, and one venue per account."""

    clock: SimClock
    market: MarketData
    input_dir: Path
    output_dir: Path
    state_dir: Path
    venues: dict[str, SimExchange]
    terminal: TerminalEmulator

    def config(self, account: str) -> FileOrderConfig:
        return FileOrderConfig(
            input_dir=self.input_dir,
            output_dir=self.output_dir,
            account_id=account,
            state_dir=self.state_dir,  # shared: one sid ledger for both engines
            poll_interval_ns=250_000_000,
        )

    def journal(self, account: str) -> Path:
        return self.state_dir / f"{account}.db"  # two journals in one state directory

    async def open(self, account: str) -> tuple[LiveSession, WatchedProcessClock]:
        process = WatchedProcessClock(self.clock)
        adapter = FileOrderAdapter(self.config(account), process)
        opening = open_live_session(
            clock=process,
            adapter=adapter,
            feed=RecordedFeed(self.market, self.venues[account], process),
            store_path=self.journal(account),
            account=Account(CASH),
            account_id=account,
            trading_day_start_ns=shanghai_ns(self.market.trade_date, "00:00"),
            synchronous="NORMAL",
        )
        return await stepped(self.clock, process, opening), process

    async def run(self, sessions: list[LiveSession], until: str) -> None:
        """Both engines at once: after every step of the shared clock, each flushes and checks."""
        end = shanghai_ns(self.market.trade_date, until)
        while self.clock.step(until_ns=end):
            for session in sessions:
                await session.oms.flush()
                await session.inflight.check()
                await session.oms.flush()
        self.clock.advance_to(end)


def make_desk(tmp_path: Path, start: str = "09:59") -> Desk:
    market = load_snapshots(SAMPLE, symbols=[SYMBOL])
    clock = SimClock(shanghai_ns(market.trade_date, start))
    input_dir, output_dir, state_dir = tmp_path / "scan", tmp_path / "push", tmp_path / "state"
    input_dir.mkdir()
    venues = {a: SimExchange(market, clock, calendar=TradingCalendar(), cash=CASH) for a in ACCOUNTS}
    terminal = TerminalEmulator(
        input_dir,
        output_dir,
        ACCOUNTS[0],
        venues[ACCOUNTS[0]],
        clock,
        faults=TerminalFaults(scan_interval_ns=500_000_000),
    )
    terminal.serve(ACCOUNTS[1], venues[ACCOUNTS[1]])
    terminal.start()
    return Desk(clock, market, input_dir, output_dir, state_dir, venues, terminal)


def parent(
    parent_id: str, quantity: int, day: object, start: str = "10:00", end: str = "10:04"
) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=quantity,
        start_ns=shanghai_ns(day, start),  # type: ignore[arg-type]
        end_ns=shanghai_ns(day, end),  # type: ignore[arg-type]
    )


async def test_two_engines_on_two_accounts_share_one_folder_and_state_dir_end_to_end(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    day = desk.market.trade_date
    first, second = ACCOUNTS
    # two journals in one state directory: each has its own instance lock, both held at once
    locks = [InstanceLock.for_store(desk.journal(a)) for a in ACCOUNTS]
    for lock in locks:
        desk.state_dir.mkdir(exist_ok=True)
        lock.acquire()
    try:
        with pytest.raises(AlreadyRunning):
            InstanceLock.for_store(desk.journal(first)).acquire()  # a second engine on one journal: refused
        (a, a_clock), (b, b_clock) = [await desk.open(account) for account in ACCOUNTS]
        assert a.reconcile.ok
        assert b.reconcile.ok
        await a.start_parents([parent("P1", 30_000, day)])
        await b.start_parents([parent("P1", 20_000, day)])  # the same parent id: another journal
        await desk.run([a, b], "10:06")

        ids = {account: OrderIds.for_account(account) for account in ACCOUNTS}
        orders = {first: dict(a.oms.orders), second: dict(b.oms.orders)}
        assert orders[first]
        assert orders[second]
        # nothing refused: not by the shared sid ledger, not by the terminal (a duplicate sid)
        assert [o.reason for m in orders.values() for o in m.values() if o.reason] == []
        assert desk.terminal.stats.orders_refused == 0
        assert not set(orders[first]) & set(orders[second])  # ids never collide
        for account, mine in orders.items():
            assert all(ids[account].is_new_form(cid) for cid in mine)  # each issues its account's ids
        # every child reached the terminal once
        assert sorted(desk.terminal.stats.sids) == sorted([*orders[first], *orders[second]])
        # each sees only its fills: exactly its own venue's trades
        for session, account in ((a, first), (b, second)):
            venue_trades = {t.trade_id: t.client_order_id for t in await desk.venues[account].query_trades()}
            engine_trades = {f.trade_id: f.client_order_id for f in session.fills}
            assert engine_trades == venue_trades
            assert set(engine_trades.values()) <= set(orders[account])
        assert sum(o.filled_quantity for o in orders[first].values()) == 30_000
        assert sum(o.filled_quantity for o in orders[second].values()) == 20_000
        assert a.account.positions[SYMBOL].quantity == 30_000
        assert b.account.positions[SYMBOL].quantity == 20_000
        # the folder holds both engines' files, each named by its account's key
        names = [p.name for p in desk.input_dir.glob("*.order.csv")]
        assert {n.split("_")[1] for n in names} == {ids[first].key, ids[second].key}
        for session in (a, b):
            adapter = session.adapter
            assert isinstance(adapter, FileOrderAdapter)
            assert adapter.stats.foreign_sids == 0
            assert adapter.tracker.stats.foreign_rows == 0
        await stepped(desk.clock, a_clock, a.close())
        await stepped(desk.clock, b_clock, b.close())

        # a restart of both: each reconciles its own orders, the other's files are neither external nor lost
        (a2, a2_clock), (b2, b2_clock) = [await desk.open(account) for account in ACCOUNTS]
        for session, account in ((a2, first), (b2, second)):
            report = session.reconcile
            assert report.ok, report.mismatches
            assert report.external == []
            assert session.oms.halted_reason is None
            assert set(session.oms.orders) == set(orders[account])
            assert all(o.status is OrderStatus.FILLED for o in session.oms.orders.values())
        await stepped(desk.clock, a2_clock, a2.close())
        await stepped(desk.clock, b2_clock, b2.close())
    finally:
        for lock in locks:
            lock.release()
        desk.terminal.stop()
