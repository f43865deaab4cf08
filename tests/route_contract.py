"""The broker-route contract harness (issue 6 item 5): one engine, four routes, the same verbs.

``Rig`` is the engine side, identical for every route: a real ``OrderManager`` (no pre-trade checks, so a
venue reject can be provoked), a real ``Account`` and a real ``StateStore`` (SQLite under ``tmp_path``),
on a ``SimClock``. It can crash (drop the OMS without a word to the broker) and restart on the same
journal, the way ``engine.cli.session`` does: positions from the journal, then ``engine.reconcile.recover``.

A ``Venue`` driver is the broker side of one route. It builds (and rebuilds, after a crash) the route's
adapter and gives the suite the same verbs whatever is behind it:

- ``resting_order()``: an order the venue accepts and leaves working;
- ``marketable_order()``: an order the venue fills in two trades, ``FILL_PLAN`` (first, second) shares,
  as the suite drives it with ``fill_to``;
- ``refused_order()``: an order the venue refuses, with the word its reason must contain;
- ``await fill_to(cid, total)``: the venue trades the order until ``total`` shares of it are filled; the
  engine is not told yet (that takes ``settle``);
- ``await settle()``: everything the venue has done so far reaches the engine.

Routes and how each verb is made:

- ``sim``: ``replay.exchange.SimExchange`` on real 2021-12-01 snapshots of ``600258.SH`` (prev close
  23.20, limit up 25.52); the clock starts at 09:31:00. A buy of 500 at 23.34 takes the 200 shown at 23.34
  on arrival, then 300 at the 09:31:03 snapshot (23.30 x 300 shows up): two trades. A buy at 23.00 rests;
  a buy at 26.00 is over the limit up. ``fill_to`` steps the clock until the exchange has traded that much.
- ``fileorder``: ``adapters.fileorder.FileOrderAdapter`` through real folders, read by
  ``replay.terminal.TerminalEmulator`` (healthy, scanning every 250 ms) on its own ``SimExchange`` on the
  same data: the same orders behave the same way.
- ``qmt``: ``adapters.qmt.QmtBrokerAdapter`` on ``tests.qmt_fake.FakeQmtTerminal`` (pushes from the fake
  trader's worker thread), scripted with its ``fill`` and ``reject``.
- ``gm``: ``adapters.gm.GmBrokerAdapter`` on ``tests.gm_fake.FakeGmApi`` through the real ``GmBridge``
  (callbacks from a background thread), scripted with ``fill`` and ``reject_next``.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

from tests.gm_fake import FakeGmApi
from tests.qmt_fake import XC, FakeQmtTerminal, StockAccount
from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig
from zhixing.adapters.gm import GmBridge, GmBrokerAdapter, GmRouteConfig, install, uninstall
from zhixing.adapters.qmt import QmtBrokerAdapter, QmtRouteConfig
from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderEvent, SubmitOrder
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import ReconcileReport, recover
from zhixing.engine.store import StateStore
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.terminal import TerminalEmulator, TerminalFaults

ROUTES: Final = ("sim", "fileorder", "qmt", "gm")

SNAPSHOTS: Final = Path(__file__).resolve().parent.parent / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL: Final = "600258.SH"
MS: Final = 1_000_000
SECOND: Final = 1_000_000_000
HOUR: Final = 3600 * SECOND
ENGINE_CASH: Final = (
    10**10
)  # milli-yuan: the engine believes it has more than the venue (the venue's word wins)
VENUE_CASH: Final = 10**9  # 1,000,000 yuan at every venue (the fakes' default)

RESTING_PRICE: Final = 23_000  # below the market all morning: rests
MARKETABLE_PRICE: Final = 23_340  # 200 shown at 23.34 at 09:31:00, 300 more at 09:31:03
FILL_PLAN: Final = (200, 300)  # the two trades of the marketable order, in shares
OVER_LIMIT_PRICE: Final = 26_000  # above the 25.52 limit up (prev close 23.20 + 10 %)


@functools.cache
def market() -> MarketData:
    return load_snapshots(SNAPSHOTS, symbols=[SYMBOL])


def buy(price: int, quantity: int) -> SubmitOrder:
    return SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=quantity, price=price)


def trade_cost(price: int, quantity: int, commission: int, stamp_duty: int, transfer_fee: int) -> int:
    return price * quantity + commission + stamp_duty + transfer_fee


Step = Callable[[], Awaitable[None]]
T = TypeVar("T")


async def _no_step() -> None:
    """What runs after a clock step while no engine is up."""


# ------------------------------------------------------------------------------------------ venues
class Venue(ABC):
    """The broker side of one route (see the module docstring)."""

    name: str
    clock: SimClock

    def __init__(self) -> None:
        self.after_step: Step = _no_step  # the engine's flush, set by the rig while it runs

    @abstractmethod
    async def open_adapter(self) -> BrokerAdapter:
        """A new, unconnected adapter of this route (one per engine incarnation)."""

    @abstractmethod
    async def close_adapter(self, adapter: BrokerAdapter) -> None: ...

    @abstractmethod
    async def settle(self) -> None: ...

    async def connected(self) -> None:
        """Right after the engine's adapter connected: a venue whose terminal pushes from a thread of its
        own lets what it pushes at the connect reach the engine now, before anything else, so that the
        order of those pushes and the engine's next steps is fixed by the test, not by thread timing."""
        return  # the other venues push nothing on their own

    @abstractmethod
    async def fill_to(self, cid: str, total: int) -> None:
        """The venue trades the order until ``total`` shares of it are filled (the engine is not told)."""

    @abstractmethod
    def venue_filled(self, cid: str) -> int:
        """Shares of ``cid`` the venue has traded (its own record, not what reached the engine)."""

    @abstractmethod
    def orders_received(self) -> int:
        """How many orders reached the venue so far."""

    @abstractmethod
    async def close(self) -> None: ...

    def resting_order(self) -> SubmitOrder:
        return buy(RESTING_PRICE, 1_000)

    def marketable_order(self) -> SubmitOrder:
        return buy(MARKETABLE_PRICE, sum(FILL_PLAN))

    def refused_order(self) -> tuple[SubmitOrder, str]:
        return buy(OVER_LIMIT_PRICE, 100), "limit_up"


class SimVenue(Venue):
    """``SimExchange`` itself is the adapter; the venue is the exchange's state on the clock."""

    name = "sim"
    SETTLE_NS: ClassVar[int] = 200 * MS  # ten times the latency: every answer in flight is delivered
    FILL_HORIZON_NS: Final = 10 * SECOND

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.tmp_path = tmp_path
        data = market()
        self.clock = SimClock(shanghai_ns(data.trade_date, "09:31:00"))
        self.exchange = SimExchange(
            data, self.clock, calendar=TradingCalendar(), latency_ns=20 * MS, cash=VENUE_CASH
        )

    async def open_adapter(self) -> BrokerAdapter:
        return self.exchange

    async def close_adapter(self, adapter: BrokerAdapter) -> None:
        self.exchange.bind(_drop)  # the engine is gone: what the exchange says now reaches nobody

    async def run(self, until_ns: int, done: Callable[[], bool] | None = None) -> None:
        """Step the clock to ``until_ns`` (or until ``done()``), letting the engine flush after each step."""
        while not (done is not None and done()):
            if not self.clock.step(until_ns=until_ns):
                self.clock.advance_to(max(until_ns, self.clock.now_ns()))
                return
            await self.after_step()

    async def settle(self) -> None:
        await self.run(self.clock.now_ns() + self.SETTLE_NS)

    def venue_filled(self, cid: str) -> int:
        """Shares the exchange has traded of ``cid`` (its own order record, not what was delivered)."""
        return sum(
            report.filled_quantity
            for report in _run_now(self.exchange.query_orders())
            if report.client_order_id == cid
        )

    async def fill_to(self, cid: str, total: int) -> None:
        await self.run(self.clock.now_ns() + self.FILL_HORIZON_NS, lambda: self.venue_filled(cid) >= total)
        got = self.venue_filled(cid)
        assert got == total, f"{self.name}: the data filled {cid} to {got} shares, the plan said {total}"

    def orders_received(self) -> int:
        return self.exchange.stats.orders_received

    async def close(self) -> None:
        """Nothing to close."""


class FileOrderVenue(SimVenue):
    """Real folders, the terminal emulator scanning them, and a ``SimExchange`` behind it."""

    name = "fileorder"
    SETTLE_NS: ClassVar[int] = 1500 * MS  # a scan, the exchange's answer, a terminal snapshot and a poll
    ACCOUNT: Final = "acct-contract"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.input_dir = tmp_path / "scan"
        self.input_dir.mkdir()
        self.output_root = tmp_path / "push"
        self.terminal = TerminalEmulator(
            self.input_dir,
            self.output_root,
            self.ACCOUNT,
            self.exchange,
            self.clock,
            faults=TerminalFaults(scan_interval_ns=250 * MS),
            snapshot_interval_ns=500 * MS,
        )
        self.terminal.start()
        self.config = FileOrderConfig(
            input_dir=self.input_dir,
            output_dir=self.output_root,
            account_id=self.ACCOUNT,
            state_dir=tmp_path / "fileorder_state",
            poll_interval_ns=250 * MS,
            completion_marker=True,
        )

    async def open_adapter(self) -> BrokerAdapter:
        return FileOrderAdapter(self.config, self.clock)

    async def close_adapter(self, adapter: BrokerAdapter) -> None:
        await adapter.close()

    def orders_received(self) -> int:
        return self.terminal.stats.orders_submitted + self.terminal.stats.orders_refused

    async def close(self) -> None:
        self.terminal.stop()


class QmtVenue(Venue):
    """The fake miniQMT terminal; its pushes come from the fake trader's worker thread."""

    name = "qmt"
    START_NS: Final = 1_764_000_000 * SECOND

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.clock = SimClock(self.START_NS)
        self.terminal = FakeQmtTerminal(cash=VENUE_CASH / 1000)
        self._reject_next: str | None = None

    async def open_adapter(self) -> BrokerAdapter:
        config = QmtRouteConfig(
            path=r"C:\QMT\userdata_mini", account_id=self.terminal.account_id, session_id=7
        )
        return QmtBrokerAdapter(
            config,
            clock=self.clock,
            trader_factory=self.terminal.trader_factory,
            account_factory=StockAccount,
            xtconstant=XC,
        )

    async def close_adapter(self, adapter: BrokerAdapter) -> None:
        await adapter.close()

    async def settle(self) -> None:
        await self.terminal.settle()
        if self._reject_next is not None:
            fresh = [
                b.order for b in self.terminal.books.values() if b.order.order_status == XC.ORDER_UNREPORTED
            ]
            if fresh:  # the counter refuses it (on_order_error, then the 废单 push)
                self.terminal.reject(fresh[-1].order_id, -61, self._reject_next)
                self._reject_next = None
                self.terminal.auto_ack = True
                await self.terminal.settle()

    async def connected(self) -> None:
        # a fresh session is sent the day's orders and trades on xtquant's worker thread: handled before
        # the engine reconciles (left to the thread, they came before or after it as the machine's speed
        # had it, and a restart counted their trades as duplicates only when they came after)
        await self.terminal.settle()

    async def fill_to(self, cid: str, total: int) -> None:
        order = self.terminal.order_by_remark(cid)
        self.terminal.fill(order.order_id, total - order.traded_volume)

    def venue_filled(self, cid: str) -> int:
        return int(self.terminal.order_by_remark(cid).traded_volume)

    def refused_order(self) -> tuple[SubmitOrder, str]:
        self._reject_next = "价格超出涨跌停"
        self.terminal.auto_ack = False
        return buy(OVER_LIMIT_PRICE, 100), "涨跌停"

    def orders_received(self) -> int:
        return self.terminal.orders_received

    async def close(self) -> None:
        """The fake terminal has no threads of its own (each trader's stop ends its worker)."""


class GmVenue(Venue):
    """The fake ``gm.api``; its callbacks come from a background thread through ``adapters.gm.entry``."""

    name = "gm"
    START_NS: Final = 1_795_000_000 * SECOND
    ACCOUNT: Final = "acct-1"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.clock = SimClock(self.START_NS)
        self.api = FakeGmApi(self.ACCOUNT, cash=VENUE_CASH / 1000)
        self.config = GmRouteConfig(
            account_id=self.ACCOUNT, strategy_id="strategy-1", state_dir=tmp_path / "gm_state"
        )
        self._bridge: GmBridge | None = None
        self._adapter: GmBrokerAdapter | None = None
        self._cl_of: dict[str, str] = {}

    async def open_adapter(self) -> BrokerAdapter:
        self._bridge = GmBridge()
        install(self._bridge)
        self._adapter = GmBrokerAdapter(self.config, self.clock, api=self.api, bridge=self._bridge)
        return self._adapter

    async def close_adapter(self, adapter: BrokerAdapter) -> None:
        self._remember_links()
        await adapter.close()
        if self._bridge is not None:
            uninstall(self._bridge)
        self._bridge = self._adapter = None

    async def settle(self) -> None:
        await asyncio.to_thread(self.api.deliver)
        if self._bridge is not None:
            await self._bridge.drain()
        if self._adapter is not None and self._adapter._tasks:  # a resync the callbacks started
            await asyncio.gather(*self._adapter._tasks)

    async def fill_to(self, cid: str, total: int) -> None:
        self._remember_links()
        self.api.fill(self._cl_of[cid], total - self.venue_filled(cid))

    def venue_filled(self, cid: str) -> int:
        self._remember_links()
        return int(self.api.orders[self._cl_of[cid]]["filled_volume"])

    def _remember_links(self) -> None:
        """cid -> cl_ord_id as the adapter linked them (kept for when the engine is down)."""
        if self._adapter is not None:
            self._cl_of.update(self._adapter.mapper.cl_of)

    def refused_order(self) -> tuple[SubmitOrder, str]:
        self.api.reject_next = (8, "价格超出涨跌停")  # OrderRejectReason_IllegalPrice
        return buy(OVER_LIMIT_PRICE, 100), "涨跌停"

    def orders_received(self) -> int:
        return [name for name, _ in self.api.calls].count("order_volume")

    async def close(self) -> None:
        """Nothing runs between calls."""


def _run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the SimExchange's queries) to completion, here and now."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SimExchange query suspended")


def _drop(event: OrderEvent) -> None:
    """A sink nobody listens to (the engine crashed)."""


def make_venue(route: str, tmp_path: Path) -> Venue:
    venues: dict[str, Callable[[Path], Venue]] = {
        "sim": SimVenue,
        "fileorder": FileOrderVenue,
        "qmt": QmtVenue,
        "gm": GmVenue,
    }
    return venues[route](tmp_path)


# ------------------------------------------------------------------------------------------ engine
@dataclass
class Engine:
    """One incarnation of the engine: what a crash throws away (the journal file stays)."""

    oms: OrderManager
    store: StateStore
    adapter: BrokerAdapter
    events: list[OrderEvent] = field(default_factory=list)
    statuses: dict[str, list[OrderStatus]] = field(default_factory=dict)  # status after each event

    @property
    def account(self) -> Account:
        assert self.oms.account is not None
        return self.oms.account

    def kinds(self, cid: str) -> list[str]:
        return [type(e).__name__ for e in self.events if e.client_order_id == cid]


class Rig:
    """The engine side of the contract, the same for every route."""

    def __init__(self, venue: Venue, tmp_path: Path) -> None:
        self.venue = venue
        self.db_path = tmp_path / "journal.db"
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the engine is down"
        return self._engine

    @property
    def oms(self) -> OrderManager:
        return self.engine.oms

    @property
    def adapter(self) -> BrokerAdapter:
        return self.engine.adapter

    async def start(self) -> Engine:
        """Open the journal, wire a new OMS and adapter, connect, and take the journal's positions
        (as ``engine.cli.session`` does before reconciling)."""
        store = await StateStore.open(self.db_path)
        adapter = await self.venue.open_adapter()
        bus = EventBus()
        oms = OrderManager(
            clock=self.venue.clock,
            bus=bus,
            adapter=adapter,
            store=store,
            account=Account(ENGINE_CASH),
            checks=[],
        )
        engine = Engine(oms=oms, store=store, adapter=adapter)

        def record(event: OrderEvent) -> None:
            engine.events.append(event)
            order = oms.orders.get(event.client_order_id)
            if order is not None:
                engine.statuses.setdefault(event.client_order_id, []).append(order.status)

        bus.subscribe(OrderEvent, record)
        await oms.open()
        await adapter.connect()
        await self.venue.connected()
        assert oms.account is not None
        # quantities from the journal, what is sellable today from the broker (T+1 is the broker's call)
        sellable = {p.symbol: p.sellable for p in await adapter.query_positions()}
        for symbol, (quantity, _, avg_cost) in sorted((await store.load_positions()).items()):
            oms.account.load_position(
                symbol, quantity, avg_cost, sellable=min(quantity, sellable.get(symbol, 0))
            )
        self._engine = engine
        self.venue.after_step = oms.flush
        return engine

    async def crash(self) -> None:
        """The engine dies: nothing more is journaled or heard; the broker keeps working."""
        engine = self.engine
        self.venue.after_step = _no_step
        self._engine = None
        await self.venue.close_adapter(engine.adapter)
        await engine.store.close()

    async def restart(self) -> ReconcileReport:
        engine = await self.start()
        report = await recover(
            engine.oms,
            engine.store,
            engine.adapter,
            trading_day_start_ns=self.venue.clock.now_ns() - HOUR,
        )
        await self.settle()
        return report

    async def submit(self, command: SubmitOrder) -> Order:
        order = self.oms.submit(command)
        await self.oms.flush()
        return order

    async def cancel(self, order: Order) -> None:
        assert self.oms.cancel(order.client_order_id), f"nothing to cancel for {order.client_order_id}"
        await self.oms.flush()

    async def settle(self) -> None:
        """Everything the venue did reaches the engine, and the engine journals what it learnt."""
        await self.venue.settle()
        await self.oms.flush()

    async def close(self) -> None:
        if self._engine is not None:
            await self.crash()
        await self.venue.close()
