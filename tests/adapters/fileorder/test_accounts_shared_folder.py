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

from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig, OrderFileWriter, SidLedger
from zhixing.adapters.fileorder.format import (
    BIZ_OF_SIDE,
    ORDER_HEADER,
    ORDER_STATUS_CHANGE_FILE,
    ORDER_TYPE_LIMIT,
    STATUS_NEW,
    render_csv,
    render_rows,
)
from zhixing.adapters.fileorder.output_rows import status_values
from zhixing.assembly import EngineSettings
from zhixing.engine.account import Account
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.instance_lock import AlreadyRunning, InstanceLock
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.market.symbols import to_gm
from zhixing.engine.order_ids import JOURNAL_META_KEY, LEGACY_IDS, OrderIds
from zhixing.engine.parents import ParentOrder
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.recovery import ProcessClock
from zhixing.replay.terminal import TerminalEmulator, TerminalFaults

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
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

    async def open(
        self, account: str, ids: OrderIds | None = None
    ) -> tuple[LiveSession, WatchedProcessClock]:
        """A live session of ``account``'s engine (``ids``: instead of the route's own, e.g. the legacy
        form of a version before keyed ids)."""
        process = WatchedProcessClock(self.clock)
        adapter = FileOrderAdapter(self.config(account), process)
        if ids is not None:
            adapter.order_ids = ids
        opening = open_live_session(
            clock=process,
            adapter=adapter,
            feed=RecordedFeed(self.market, self.venues[account], process),
            store_path=self.journal(account),
            account=Account(CASH),
            settings=EngineSettings(account_id=account if ids is None else ""),
            trading_day_start_ns=shanghai_ns(self.market.trade_date, "00:00"),
            synchronous="NORMAL",
        )
        return await stepped(self.clock, process, opening), process

    async def quoted(self, sessions: list[LiveSession], until: str = "10:00") -> None:
        """Subscribe each session to the symbol and run until its quotes are in."""
        for session in sessions:
            await session.feed.subscribe([SYMBOL])
            session.book.watch([SYMBOL])
        await self.run(sessions, until)

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


@pytest.mark.slow
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


# ------------------------------------------------------------------------------------- hostile cases
def drop_file(
    folder: Path, name: str, sid: str, account: str, price: str = "23.50", volume: int = 100
) -> None:
    """An order file another tool wrote into the shared folder (not through zhixing's writer)."""
    row = (sid, account, to_gm(SYMBOL), volume, ORDER_TYPE_LIMIT, BIZ_OF_SIDE[Side.BUY], price, "other-tool")
    (folder / name).write_text(render_csv(ORDER_HEADER, [row]), encoding="utf-8-sig", newline="")


async def test_a_third_partys_files_are_never_listed_as_ours_and_its_orders_stay_external(
    tmp_path: Path,
) -> None:
    desk = make_desk(tmp_path)
    desk.terminal.stop()  # nothing is processed yet: every file still waits in the folder
    first, second = ACCOUNTS
    (a, a_clock), (b, b_clock) = [await desk.open(account) for account in ACCOUNTS]
    await desk.quoted([a, b])
    mine = a.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=21_000))
    theirs = b.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=21_000))
    await a.oms.flush()
    await b.oms.flush()
    drop_file(
        desk.input_dir, "manual-0001.order.csv", "EXT1", first, price="21.00"
    )  # our account, another tool's file
    waiting = {
        account: [r.client_order_id for r in await s.adapter.query_orders()]
        for account, s in ((first, a), (second, b))
    }
    assert waiting == {first: [mine.client_order_id], second: [theirs.client_order_id]}
    await stepped(desk.clock, a_clock, a.close(cancel_working=False))
    await stepped(desk.clock, b_clock, b.close(cancel_working=False))
    # the terminal processes everything; at the restart the other tool's order is external, not adopted
    desk.terminal.start()
    await desk.run([], "10:00:05")  # engines down: the terminal works alone
    a2, a2_clock = await desk.open(first)
    assert a2.reconcile.external == ["EXT1"]
    assert a2.reconcile.ok, a2.reconcile.mismatches  # an external order is told, never a halt
    assert set(a2.oms.orders) == {mine.client_order_id}
    await stepped(desk.clock, a2_clock, a2.close())
    desk.terminal.stop()


async def test_a_sid_another_tool_used_first_is_never_written_nor_adopted(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    first = ACCOUNTS[0]
    a, a_clock = await desk.open(first)
    adapter = a.adapter
    assert isinstance(adapter, FileOrderAdapter)
    await desk.quoted([a])
    taken = a.oms.ids.make(a.oms._next_seq)  # the very id the engine issues next
    drop_file(desk.input_dir, "other-tool-0001.order.csv", taken, first, volume=500)
    await desk.run([a], "10:00:03")  # the terminal executes it, the route reads its rows
    order = a.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=23_500))
    assert order.client_order_id == taken
    await a.oms.flush()
    assert order.status is OrderStatus.REJECTED
    assert "already listed by the terminal" in order.reason
    await desk.run([a], "10:00:10")
    assert order.filled_quantity == 0  # the other tool's fill is never credited to our order
    assert order.trade_ids == set()
    assert a.oms.counters.illegal_transitions == 0
    assert adapter.stats.foreign_sids == 1
    assert desk.terminal.stats.sids == [taken]  # only the other tool's order: ours was never written
    assert len(list(desk.input_dir.glob(f"*_{a.oms.ids.key}_*.order.csv"))) == 0
    assert taken not in {r.client_order_id for r in await adapter.query_orders()}
    await stepped(desk.clock, a_clock, a.close())
    # after a restart the sid is still not ours: its rows are left out, the order stays as it was
    a2, a2_clock = await desk.open(first)
    again = a2.oms.orders[taken]
    assert (again.status, again.filled_quantity) == (OrderStatus.REJECTED, 0)
    assert taken not in a2.reconcile.external
    assert a2.adapter.tracker.stats.disowned_rows > 0  # type: ignore[attr-defined]
    # the other tool's 500 shares are in the account all the same: a position difference, told and halted
    assert any(SYMBOL in m for m in a2.reconcile.mismatches)
    await stepped(desk.clock, a2_clock, a2.close())
    desk.terminal.stop()


async def test_rows_of_another_account_in_our_output_folder_are_left_out(tmp_path: Path) -> None:
    """A terminal that writes several accounts into one folder (or a case-insensitive disk that merges
    two accounts' folders): rows naming the other account, or carrying its ids, are not ours."""
    desk = make_desk(tmp_path)
    first, second = ACCOUNTS
    a, a_clock = await desk.open(first)
    await desk.quoted([a])
    order = a.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=21_000))
    await desk.run([a], "10:00:02")
    assert order.status is OrderStatus.ACCEPTED
    other = OrderIds.for_account(second)
    legacy_twin = "Z" + order.client_order_id[-9:]  # the same sequence, the legacy form
    now = desk.clock.now_ns()
    rows = [
        # the other account's order under its own id, the account column empty
        status_values(
            account_id="",
            sid=other.make(1),
            cl_ord_id="CLX1",
            order_id="SX1",
            symbol=SYMBOL,
            side=Side.BUY,
            status=STATUS_NEW,
            reject_code=0,
            reject_detail="",
            price=21_000,
            volume=100,
            filled=0,
            created_ns=now,
            updated_ns=now,
            recv_ns=now,
        ),
        # a legacy id that an old engine of this account could have issued too, but the other account's row
        status_values(
            account_id=second,
            sid=legacy_twin,
            cl_ord_id="CLX2",
            order_id="SX2",
            symbol=SYMBOL,
            side=Side.BUY,
            status=STATUS_NEW,
            reject_code=0,
            reject_detail="",
            price=21_000,
            volume=100,
            filled=0,
            created_ns=now,
            updated_ns=now,
            recv_ns=now,
        ),
    ]
    changes = desk.output_dir / first / ORDER_STATUS_CHANGE_FILE
    changes.write_text(changes.read_text(encoding="utf-8") + render_rows(rows), encoding="utf-8", newline="")
    await desk.run([a], "10:00:04")
    adapter = a.adapter
    assert isinstance(adapter, FileOrderAdapter)
    listed = {r.client_order_id for r in await adapter.query_orders()}
    assert listed == {order.client_order_id}
    assert adapter.stats.other_account_rows[ORDER_STATUS_CHANGE_FILE] == 2
    await stepped(desk.clock, a_clock, a.close(cancel_working=False))
    a2, a2_clock = await desk.open(first)
    assert a2.reconcile.ok, a2.reconcile.mismatches
    assert a2.reconcile.external == []  # neither is told as an external order nor taken for a lost one
    await stepped(desk.clock, a2_clock, a2.close())
    desk.terminal.stop()


async def test_a_journal_from_before_keyed_ids_reconciles_its_orders_and_goes_on_with_keyed_ids(
    tmp_path: Path,
) -> None:
    desk = make_desk(tmp_path)
    desk.terminal.stop()  # the old engine's file is still waiting when the new version starts
    first = ACCOUNTS[0]
    old, old_clock = await desk.open(first, ids=LEGACY_IDS)  # the version before keyed ids
    await desk.quoted([old])
    legacy = old.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=21_000))
    await old.oms.flush()
    assert legacy.client_order_id == "Z000000001"
    (legacy_file,) = desk.input_dir.glob("*.order.csv")
    assert len(legacy_file.name.split("_")) == 3  # <ns>_<pid>_<seq>: no key in the name
    assert await old.store.get_meta(JOURNAL_META_KEY) is None
    await stepped(desk.clock, old_clock, old.close(cancel_working=False))
    await desk.run([], "10:01")  # long past the in-flight grace: only the file tells it was sent

    new, new_clock = await desk.open(first)  # upgraded
    report = new.reconcile
    assert report.ok, report.mismatches
    assert report.never_sent == []  # its file is waiting in the folder: still ours, still in flight
    assert await new.store.get_meta(JOURNAL_META_KEY) == OrderIds.for_account(first).key  # bound now
    desk.terminal.start()
    await desk.quoted([new], "10:01:05")
    assert new.oms.orders[legacy.client_order_id].status is OrderStatus.ACCEPTED
    fresh = new.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=21_000))
    assert OrderIds.for_account(first).is_new_form(fresh.client_order_id)
    assert (OrderIds.for_account(first).sequence(fresh.client_order_id) or 0) > 1  # the sequence goes on
    new.oms.cancel(legacy.client_order_id)
    await desk.run([new], "10:01:10")
    assert new.oms.orders[legacy.client_order_id].status is OrderStatus.CANCELED
    assert fresh.status is OrderStatus.ACCEPTED
    await stepped(desk.clock, new_clock, new.close())
    desk.terminal.stop()


def test_two_accounts_writers_in_one_process_at_one_instant_never_name_a_file_alike(tmp_path: Path) -> None:
    """Same pid, same virtual nanosecond, same sequence: only the account key tells the names apart."""
    folder = tmp_path / "scan"
    folder.mkdir()
    clock = SimClock(1_000)
    writers = [
        OrderFileWriter(
            folder,
            SidLedger(tmp_path / "state" / "sids.sqlite"),
            clock,
            tag=OrderIds.for_account(a).key or "",
        )
        for a in ACCOUNTS
    ]
    paths = [
        w.drop_order(
            (OrderIds.for_account(a).make(1), a, to_gm(SYMBOL), 100, ORDER_TYPE_LIMIT, 1, "21.00", "zhixing")
        )
        for w, a in zip(writers, ACCOUNTS, strict=True)
    ]
    assert len({p.name for p in paths}) == 2
    assert [p.name.split("_")[1] for p in paths] == [OrderIds.for_account(a).key for a in ACCOUNTS]
    for w in writers:
        w.ledger.close()
