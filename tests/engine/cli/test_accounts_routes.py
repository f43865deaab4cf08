"""Two accounts on one QMT terminal and on one gm strategy (sharing one state directory): each route
maps only its own account's records to client order ids (``engine.order_ids``); the other account's
orders and fills, a hand-typed order, a remark that is not one of our ids never become ours."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gm_fake import FakeGmApi
from tests.qmt_fake import XC, FakeQmtTerminal, StockAccount
from zhixing.adapters.gm import GmBridge, GmBrokerAdapter, GmRouteConfig, install, uninstall
from zhixing.adapters.gm.ledger import Candidate, LinkLedger
from zhixing.adapters.qmt import QmtBrokerAdapter, QmtRouteConfig
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerError
from zhixing.engine.events import OrderEvent, SubmitOrder
from zhixing.engine.oms import OrderManager
from zhixing.engine.order_ids import LEGACY_IDS, OrderIds, route_order_ids
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import recover
from zhixing.engine.store import StateStore

SYM = "600000.SH"
CASH = 10**10
START = 1_764_000_000 * 1_000_000_000
QMT_ACCOUNTS = ("88001234", "880012345")  # one is the start of the other


def buy(quantity: int = 1000, price: int = 10_020) -> SubmitOrder:
    return SubmitOrder(symbol=SYM, side=Side.BUY, quantity=quantity, price=price)


# ------------------------------------------------------------------------------------------ QMT
@dataclass
class QmtEngine:
    adapter: QmtBrokerAdapter
    oms: OrderManager
    store: StateStore
    seen: list[OrderEvent]

    async def send(self, terminal: FakeQmtTerminal, command: SubmitOrder) -> Order:
        order = self.oms.submit(command)
        await self.oms.flush()
        await terminal.settle()
        return order

    async def close(self) -> None:
        await self.adapter.close()
        await self.store.close()


async def qmt_engine(
    db: Path, terminal: FakeQmtTerminal, clock: SimClock, account: str, ids: OrderIds | None = None
) -> QmtEngine:
    config = QmtRouteConfig(
        path=r"C:\QMT\userdata_mini", account_id=account, session_id=len(terminal.traders) + 1
    )
    adapter = QmtBrokerAdapter(
        config,
        clock=clock,
        trader_factory=terminal.trader_factory,
        account_factory=StockAccount,
        xtconstant=XC,
    )
    store = await StateStore.open(db)
    bus = EventBus()
    seen: list[OrderEvent] = []
    bus.subscribe(OrderEvent, seen.append)
    oms = OrderManager(
        clock=clock,
        bus=bus,
        adapter=adapter,
        store=store,
        account=Account(CASH),
        ids=route_order_ids(adapter) if ids is None else ids,
    )
    await oms.open()
    await adapter.connect()
    return QmtEngine(adapter, oms, store, seen)


async def test_qmt_two_accounts_on_one_terminal_each_sees_only_its_orders_and_fills(tmp_path: Path) -> None:
    terminal = FakeQmtTerminal()  # pushes go to every session on the terminal, queries list every order
    clock = SimClock(START)
    a = await qmt_engine(tmp_path / "a.db", terminal, clock, QMT_ACCOUNTS[0])
    b = await qmt_engine(tmp_path / "b.db", terminal, clock, QMT_ACCOUNTS[1])
    mine = await a.send(terminal, buy())
    theirs = await b.send(terminal, buy(500))
    assert mine.client_order_id != theirs.client_order_id
    assert terminal.order_by_remark(mine.client_order_id).account_id == QMT_ACCOUNTS[0]
    terminal.fill(terminal.order_by_remark(theirs.client_order_id).order_id, 500)
    await terminal.settle()
    assert theirs.status is OrderStatus.FILLED
    assert mine.status is OrderStatus.ACCEPTED
    assert mine.filled_quantity == 0
    assert {e.client_order_id for e in a.seen} == {mine.client_order_id}
    assert a.oms.counters.unknown_order_events == 0  # B's pushes never reach A's engine at all
    assert a.adapter.counters.other_account_records > 0
    assert {r.client_order_id for r in await a.adapter.query_orders()} == {mine.client_order_id}
    assert await a.adapter.query_trades() == []
    await a.close()
    await b.close()


async def test_qmt_two_legacy_journals_with_the_same_ids_are_told_apart_by_the_account(
    tmp_path: Path,
) -> None:
    """Both engines upgraded from journals that issued ``Z000000001``: the remark alone cannot tell
    whose it is; the account on every record does."""
    terminal = FakeQmtTerminal()
    clock = SimClock(START)
    a = await qmt_engine(tmp_path / "a.db", terminal, clock, QMT_ACCOUNTS[0], LEGACY_IDS)
    b = await qmt_engine(tmp_path / "b.db", terminal, clock, QMT_ACCOUNTS[1], LEGACY_IDS)
    mine = await a.send(terminal, buy())
    theirs = await b.send(terminal, buy(500))
    assert mine.client_order_id == theirs.client_order_id == "Z000000001"
    (theirs_at_broker,) = [
        bk.order for bk in terminal.books.values() if bk.order.account_id == QMT_ACCOUNTS[1]
    ]
    terminal.fill(theirs_at_broker.order_id, 500)
    await terminal.settle()
    assert theirs.filled_quantity == 500
    assert mine.filled_quantity == 0  # never credited with the other account's fill
    assert a.oms.counters.overfill_alarms == 0
    (listed,) = await a.adapter.query_orders()
    assert (listed.client_order_id, listed.filled_quantity) == ("Z000000001", 0)
    await a.close()
    await b.close()


async def test_qmt_a_remark_that_is_not_our_id_is_external(tmp_path: Path) -> None:
    terminal = FakeQmtTerminal()
    clock = SimClock(START)
    a = await qmt_engine(tmp_path / "a.db", terminal, clock, QMT_ACCOUNTS[0])
    mine = await a.send(terminal, buy())
    hand = terminal.trader_factory("x", 99)
    hand.start()
    hand.connect()
    other_key = OrderIds.for_account("someone-else").make(a.oms.ids.sequence(mine.client_order_id) or 0)
    for remark in ("EXT-1", other_key, "Z1"):  # typed by hand, another account's id, a stray remark
        terminal._order(
            hand, StockAccount(QMT_ACCOUNTS[0]), SYM, XC.STOCK_BUY, 100, XC.FIX_PRICE, 9.5, "", remark
        )
    await terminal.settle()
    listed = sorted(r.client_order_id for r in await a.adapter.query_orders())
    assert mine.client_order_id in listed
    assert [cid for cid in listed if cid != mine.client_order_id] == [
        f"qmt-external-{bk.order.order_id}"
        for bk in terminal.books.values()
        if bk.order.order_remark != mine.client_order_id
    ]
    assert {e.client_order_id for e in a.seen} == {mine.client_order_id}
    hand.stop()
    await a.close()


async def test_qmt_a_legacy_journal_order_is_reconciled_by_its_remark_after_the_upgrade(
    tmp_path: Path,
) -> None:
    terminal = FakeQmtTerminal()
    clock = SimClock(START)
    old = await qmt_engine(tmp_path / "a.db", terminal, clock, QMT_ACCOUNTS[0], LEGACY_IDS)
    old.adapter.bind(lambda event: None)  # the old engine dies right after sending
    order = old.oms.submit(buy())
    await old.oms.flush()
    await old.close()
    terminal.fill(terminal.order_by_remark("Z000000001").order_id, 1000)
    new = await qmt_engine(tmp_path / "a.db", terminal, clock, QMT_ACCOUNTS[0])  # keyed ids now
    await terminal.settle()

    async def pass_time(until_ns: int) -> None:  # a re-query's grace on the virtual clock
        clock.advance_to(until_ns)
        await terminal.settle()

    report = await recover(
        new.oms, new.store, new.adapter, trading_day_start_ns=START - 3600 * 10**9, wait=pass_time
    )
    await terminal.settle()
    assert report.ok, report.mismatches
    assert report.adopted == [order.client_order_id]
    assert new.oms.orders["Z000000001"].status is OrderStatus.FILLED
    assert report.external == []
    fresh = await new.send(terminal, buy(100))
    assert new.oms.ids.is_new_form(fresh.client_order_id)
    assert terminal.order_by_remark(fresh.client_order_id).order_remark == fresh.client_order_id
    await new.close()


async def test_qmt_an_id_longer_than_order_remark_allows_is_not_sent(tmp_path: Path) -> None:
    terminal = FakeQmtTerminal()
    a = await qmt_engine(tmp_path / "a.db", terminal, SimClock(START), QMT_ACCOUNTS[0])
    too_long = Order(client_order_id="Z" + "a" * 24, symbol=SYM, side=Side.BUY, price=10_020, quantity=100)
    with pytest.raises(BrokerError, match="longer than order_remark's 24"):
        await a.adapter.submit(too_long)
    assert terminal.orders_received == 0
    await a.close()


# ------------------------------------------------------------------------------------------ gm
@dataclass
class GmEngine:
    adapter: GmBrokerAdapter
    oms: OrderManager
    store: StateStore


async def gm_engine(
    tmp_path: Path, api: FakeGmApi, bridge: GmBridge, account: str, ids: OrderIds | None = None
) -> GmEngine:
    clock = SimClock(1_795_000_000 * 10**9)
    config = GmRouteConfig(account_id=account, strategy_id="strategy-1", state_dir=tmp_path / "state")
    adapter = GmBrokerAdapter(config, clock, api=api, bridge=bridge)
    store = await StateStore.open(tmp_path / f"{account}.db")
    oms = OrderManager(
        clock=clock,
        bus=EventBus(),
        adapter=adapter,
        store=store,
        account=Account(CASH),
        ids=route_order_ids(adapter) if ids is None else ids,
    )
    await oms.open()
    await adapter.connect()
    return GmEngine(adapter, oms, store)


async def settle(api: FakeGmApi, bridge: GmBridge) -> None:
    await asyncio.to_thread(api.deliver)
    await bridge.drain()


async def test_gm_two_accounts_of_one_strategy_share_the_state_dir_and_never_meet(tmp_path: Path) -> None:
    api = FakeGmApi("acct-1")  # one strategy trading two accounts; every callback reaches both engines
    bridge = GmBridge()
    install(bridge)
    try:
        a = await gm_engine(tmp_path, api, bridge, "acct-1")
        b = await gm_engine(tmp_path, api, bridge, "acct-2")  # the same state dir: one link ledger
        mine = a.oms.submit(buy())
        theirs = b.oms.submit(buy(500))
        await a.oms.flush()
        await b.oms.flush()
        await settle(api, bridge)
        assert theirs.status is OrderStatus.ACCEPTED  # not refused by the shared ledger
        assert mine.status is OrderStatus.ACCEPTED
        api.fill(b.adapter.mapper.cl_of[theirs.client_order_id], 500)
        await settle(api, bridge)
        assert theirs.filled_quantity == 500
        assert mine.filled_quantity == 0
        assert set(a.adapter.mapper.cl_of) == {mine.client_order_id}
        assert {r.client_order_id for r in await a.adapter.query_orders()} == {mine.client_order_id}
        assert await a.adapter.query_trades() == []
        # a restart reads only its account's links from the shared ledger
        await a.adapter.close()
        again = GmBrokerAdapter(a.adapter.config, a.oms.clock, api=api, bridge=bridge)
        await again.connect()
        assert set(again.mapper.cl_of) == {mine.client_order_id}
        await again.close()
        await b.adapter.close()
        await a.store.close()
        await b.store.close()
    finally:
        uninstall(bridge)


def test_gm_a_crashed_send_is_claimed_only_by_its_own_accounts_engine(tmp_path: Path) -> None:
    ledger = LinkLedger(tmp_path / "gm_links.sqlite")  # shared by two accounts' engines
    a, b = OrderIds.for_account("acct-1"), OrderIds.for_account("acct-2")
    for ids in (a, b):  # both crashed between the write-ahead row and gm's answer
        ledger.begin(ids.make(1), symbol="SHSE.600000", side=1, price=10_020, volume=1000, ts_ns=100)
    order = Candidate(cl_ord_id="CL1", symbol="SHSE.600000", side=1, price=10_020, volume=1000, ts_ns=100)
    assert ledger.claim_unlinked([order], owns=b.is_ours) == {b.make(1): "CL1"}  # B's account listed CL1
    assert {link.client_order_id for link in ledger.links(a.is_ours)} == {a.make(1)}
    assert [link.cl_ord_id for link in ledger.links(a.is_ours)] == [""]  # A's row is not B's order
    ledger.close()
