"""A live (or paper) trading session: the real engine on a real clock, any route, any feed.

What a replay does by stepping a virtual clock, a live session does with real timers: the OMS flushes in
the background, quotes arrive through a ``QuoteFeed`` into a ``QuoteBook`` (conflated, checked, watched
for staleness), the in-flight checker polls the broker, and a basket of algorithms works the parents.
The journal is verified first (``engine.store.integrity``): a damaged one refuses to start. Startup
reconciliation runs before anything is sent; a mismatch leaves the session halted (fail closed).
Used by ``zhixing paper`` and ``zhixing run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import structlog

from zhixing.algos.base import AlgoContext
from zhixing.algos.basket import Basket
from zhixing.algos.directory import AlgoDirectory
from zhixing.algos.feed_guard import StaleGuard
from zhixing.assembly import Engine, EngineSettings, build_engine
from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.bus import EventBus
from zhixing.engine.cancels import GoneCheck, GoneReport, Survivor
from zhixing.engine.clock import Clock, SimClock
from zhixing.engine.connection import (
    ConnectionMonitor,
    IncidentCallback,
    LinkAwareInflightChecker,
    attach_to_adapter,
)
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerError, FeedError, StoreError
from zhixing.engine.events import OrderFilled
from zhixing.engine.feed import QuoteBook, QuoteFeed
from zhixing.engine.feed_keeper import FeedKeeper
from zhixing.engine.freshness import AlertCallback
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.lost_orders import guard_lost_orders
from zhixing.engine.market import TradingCalendar, trading_date_of
from zhixing.engine.oms import OrderManager
from zhixing.engine.order_ids import bind_journal
from zhixing.engine.parents import ParentOrder
from zhixing.engine.readiness import NotReadyCallback, connect_broker, wait_until_ready
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.reconcile import ReconcileReport, Wait, merge_order, recover
from zhixing.engine.risk_controls import RiskControls
from zhixing.engine.store import StateStore
from zhixing.engine.store.integrity import require_sound_journal
from zhixing.engine.trading_day import TradingDay

log = structlog.get_logger("zhixing.session")

POLL_NS = 1_000_000_000  # how often (session time) the run loop checks in-flight orders and completion


@dataclass(slots=True, kw_only=True)
class LiveSession:
    engine: Engine  # built by the composition root (``zhixing.assembly``)
    clock: Clock
    calendar: TradingCalendar
    store: StateStore
    bus: EventBus
    account: Account
    oms: OrderManager
    adapter: BrokerAdapter
    feed: QuoteFeed
    book: QuoteBook
    ctx: AlgoContext
    inflight: InflightChecker
    basket: Basket
    algos: AlgoDirectory  # every algorithm of the session: the basket's and each rebalance's
    guard: StaleGuard
    reconcile: ReconcileReport
    fills: list[OrderFilled] = field(default_factory=list)
    symbols: set[str] = field(default_factory=set)
    risk: RiskControls | None = None
    connection: ConnectionMonitor | None = None  # broker link down/up (D1-D3), when the route reports it
    keeper: FeedKeeper | None = None  # re-subscribes symbols whose quotes stopped
    day: TradingDay | None = None  # the trading day started, and the start of each new one

    async def poll(self) -> None:
        """The periodic work of a session (every ``POLL_NS``): in-flight checks, silent symbols."""
        await self.inflight.check()
        if self.keeper is not None:
            await self.keeper.check()

    async def watch(self, symbols: Sequence[str]) -> bool:
        """Subscribe the symbols not subscribed yet; True when each has a quote already."""
        new_symbols = sorted(set(symbols) - self.symbols)
        if new_symbols:
            await self.feed.subscribe(new_symbols)
            self.book.watch(new_symbols)
            self.symbols.update(new_symbols)
        return all(self.book.latest(symbol) is not None for symbol in symbols)

    async def start_parents(self, parents: Sequence[ParentOrder]) -> None:
        """Journal the parents, subscribe their symbols, and start their algorithms."""
        if self.oms.halted_reason is not None:
            raise RuntimeError(f"session is halted ({self.oms.halted_reason}); nothing new may start")
        await self.watch([p.symbol for p in parents])
        for parent in parents:
            parent.created_ns = self.clock.now_ns()
            self.basket.add(parent)  # first: a parent it refuses (unknown algo, bad params) is not journaled
            self.store.stage_parent(parent.to_row())
        await self.store.commit()
        self.basket.start()

    async def run_until(self, end_ns: int, done: Callable[[], bool] | None = None) -> None:
        """Let timers work until ``end_ns`` (session time) or until ``done()`` with nothing working."""
        finished = done or (lambda: self.basket.done)
        while self.clock.now_ns() < end_ns:
            await self.clock.sleep_until(min(end_ns, self.clock.now_ns() + POLL_NS))
            await self.oms.flush()
            await self.poll()
            if finished() and not self.oms.working_orders():
                break

    async def close(
        self,
        *,
        cancel_working: bool = True,
        settle_ns: int = 10 * POLL_NS,
        hurry: asyncio.Event | None = None,
    ) -> GoneReport | None:
        """Stop the algorithms, optionally cancel what still works and verify by query that it is gone
        (``engine.cancels.GoneCheck``: the answers waited for up to ``settle_ns``, refused cancels sent
        again meanwhile; the orders still working are in the report), journal the algorithm states, and
        close the feed, the adapter and the store. Returns the verification (None: orders left).

        Every step runs even when one before it failed: the store is closed also after its final commit
        failed. The failures are raised afterwards, together, as ``CloseIncomplete``. ``hurry`` set (a
        second signal) ends the verification at once: the cancels are sent, the report says unverified."""
        problems: list[str] = []

        async def step(what: str, work: Callable[[], Awaitable[object]]) -> None:
            try:
                await work()
            except Exception as exc:
                log.error("close_step_failed", step=what, error=f"{type(exc).__name__}: {exc}")
                problems.append(f"{what} failed: {type(exc).__name__}: {exc}")

        report: GoneReport | None = None
        try:
            if self.day is not None:
                self.day.stop()
            for algo in self.basket.algos.values():
                if not algo.done:
                    algo.stop(Unfilled(UnfilledCode.STOPPED, "engine shut down"))
            if cancel_working:
                try:
                    report = await self._cancel_and_verify(settle_ns, hurry)
                except Exception as exc:
                    log.error("close_step_failed", step="shutdown cancels", error=repr(exc))
                    problems.append(f"shutdown cancels failed: {type(exc).__name__}: {exc}")
            self.book.stop_watch()
            if self.connection is not None:
                self.connection.stop()
            self.basket.journal(self.store)
            await step("the last journal flush", self.oms.stop)
            await step("the final journal commit", self.store.commit)
            await step("closing the feed", self.feed.close)
            await step("closing the broker route", self.adapter.close)
        finally:
            await step("closing the journal", self.store.close)  # whatever happened before
        if problems:
            raise CloseIncomplete(problems, report)
        return report

    async def _cancel_and_verify(self, settle_ns: int, hurry: asyncio.Event | None = None) -> GoneReport:
        oms = self.oms
        oms.cancel_all()
        check = GoneCheck(
            "shutdown",
            lambda: oms.orders,
            self.adapter,
            self.clock,
            grace_ns=oms.freshness.grace_ns,
            answers=oms.freshness.answers,
            settle_ns=settle_ns,
            merge=lambda order, view: merge_order(oms, order, view),
        )
        pause = passing_time(self.clock)
        while True:
            await oms.flush()
            try:
                await self.inflight.check()  # unanswered cancels asked about (then sent again)
            except BrokerError as exc:
                log.warning("inflight_check_failed", error=str(exc))
            await oms.flush()
            report = await check.poll()
            if report is not None:
                return report
            if hurry is not None and hurry.is_set():
                return _unverified(check.report, oms, self.clock.now_ns())
            due = check.next_due_ns() or self.clock.now_ns()
            waiting = asyncio.ensure_future(pause(min(due, self.clock.now_ns() + POLL_NS // 10)))
            if hurry is None:
                await waiting
                continue
            hurried = asyncio.ensure_future(hurry.wait())
            try:
                await asyncio.wait([waiting, hurried], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (waiting, hurried):
                    task.cancel()


async def close_all(*closers: Callable[[], Awaitable[object]]) -> None:
    """Run every closer, even after one fails; then raise the first failure."""
    first: BaseException | None = None
    for closer in closers:
        try:
            await closer()
        except Exception as exc:
            log.error("close_failed", closer=getattr(closer, "__qualname__", repr(closer)), error=str(exc))
            first = first or exc
    if first is not None:
        raise first


async def open_live_session(
    *,
    clock: Clock,
    adapter: BrokerAdapter,
    feed: QuoteFeed,
    store_path: Path,
    account: Account,
    calendar: TradingCalendar | None = None,
    trading_day_start_ns: int,
    settings: EngineSettings = EngineSettings(),  # noqa: B008 (frozen: one shared default is safe)
    synchronous: str = "FULL",
    stale_after_ns: int = 30_000_000_000,
    resubscribe_after_ns: int = 30_000_000_000,
    on_incident: IncidentCallback | None = None,
    connect_timeout_ns: int = 0,
    on_not_ready: NotReadyCallback | None = None,
    on_alert: AlertCallback | None = None,
) -> LiveSession:
    """Open the store, connect the route and the feed, reconcile, and return a running session.

    The route must connect and answer a query (and then the feed connect) within ``connect_timeout_ns``
    (retried with backoff, each failure told to ``on_not_ready``; 0: one attempt) before anything is
    reconciled. If reconciliation finds a mismatch the session comes back halted: it reports, but
    trades nothing. ``on_alert(title, body)`` hears what the operator must know now: a difference with
    the broker that persisted (trading halted), a cancel that could not be made to stick.

    Client order ids are the account's (``engine.order_ids``): keyed by the route's account when the
    adapter names its ``order_ids``, else by ``account_id`` (``[account] id``); the journal is bound to
    that account and a journal of another account is refused (``JournalAccountMismatch``).
    """
    calendar = calendar or TradingCalendar()
    # a damaged journal (a garbled halt record, a counter behind the ids issued, a bad page) trades nothing
    await asyncio.to_thread(require_sound_journal, store_path)
    store = await StateStore.open(store_path, synchronous=synchronous)
    book = QuoteBook(clock, stale_after_ns=stale_after_ns, is_trading=calendar.is_continuous)
    engine = build_engine(
        settings,
        clock=clock,
        calendar=calendar,
        store=store,
        adapter=adapter,
        quotes=book,
        account=account,
        on_alert=on_alert,
    )
    oms, bus, risk = engine.oms, engine.bus, engine.risk

    try:
        await bind_journal(store, oms.ids, settings.account_id, str(store_path))
        await connect_broker(adapter, clock=clock, timeout_ns=connect_timeout_ns, on_not_ready=on_not_ready)
        today_date = trading_date_of(trading_day_start_ns)
        await _load_positions(store, adapter, account, today_date, trading_day_start_ns)
        await oms.start()
        # an order sent just before a crash may not be listed by the broker yet: it stays in flight for
        # the in-flight checks instead of being declared never sent
        report = await recover(
            oms,
            store,
            adapter,
            trading_day_start_ns=trading_day_start_ns,
            in_flight_grace_ns=settings.inflight_timeout_ns,
            wait=passing_time(clock),
        )
        # orders under our ids that the journal lost (an older backup restored): never reuse their ids
        await guard_lost_orders(oms, report)
        # the start of today, as a running engine does at each new day: earlier days' orders ended, T+1,
        # journaled; and no order of a later day before that day has started
        day = TradingDay(
            clock=clock,
            calendar=calendar,
            oms=oms,
            adapter=adapter,
            store=store,
            account=account,
            gate=engine.day,  # opened when a day starts
            risk=risk,
        )
        await day.start(today_date)
        feed.bind(book.push)
        await wait_until_ready(
            "market-data feed",
            feed.connect,
            clock=clock,
            timeout_ns=connect_timeout_ns,
            give_up=FeedError,
            on_not_ready=on_not_ready,
        )
    except BaseException:
        await store.close()
        raise
    if not report.ok:
        log.error("reconciliation_mismatch", mismatches=report.mismatches)
    ctx = engine.ctx
    # today's algorithms of the journal (a restart): each resumes where it was, sized from confirmed
    # fills; a parent of an earlier day is never resumed (its day orders expired with the day), also one
    # whose window ran past midnight
    today = [row for row in await store.load_parents() if _created_ns(row) >= trading_day_start_ns]
    basket = Basket.restore(ctx, today, await store.load_algo_states())
    engine.add_basket(basket)
    algos = engine.algos
    day.algos = algos
    guard = StaleGuard(algos)
    book.on_stale = guard.on_stale
    book.on_fresh = guard.on_fresh
    # the broker link: deny and pause while down, resync before resuming (listener, or poll ``connected``)
    connection = ConnectionMonitor(oms, algos, link=engine.link, on_incident=on_incident, auto_resync=True)
    link = attach_to_adapter(connection, adapter)
    log.info("connection_monitor", adapter=adapter.name, how=link or "not_reported")
    # a halted session resumes nothing: the operator looks first
    resumed = sorted({a.parent.symbol for a in basket.algos.values() if not a.done}) if report.ok else []
    if resumed:
        await feed.subscribe(resumed)
        book.watch(resumed)
        basket.start()
        log.info("algos_resumed", parents=len(basket.algos), symbols=len(resumed))
    session = LiveSession(
        engine=engine,
        clock=clock,
        calendar=calendar,
        store=store,
        bus=bus,
        account=account,
        oms=oms,
        adapter=adapter,
        feed=feed,
        book=book,
        ctx=ctx,
        inflight=LinkAwareInflightChecker(
            oms, adapter, connection, timeout_ns=settings.inflight_timeout_ns, on_alert=on_alert
        ),
        basket=basket,
        algos=algos,
        guard=guard,
        reconcile=report,
        fills=engine.fills,
        risk=risk,
        connection=connection,
        keeper=FeedKeeper(feed, book, clock, resubscribe_after_ns=resubscribe_after_ns),
        day=day,
    )
    session.symbols.update(resumed)
    return session


class CloseIncomplete(StoreError):
    """``LiveSession.close`` ran every step, but some failed (each named); the report is the shutdown's."""

    def __init__(self, problems: list[str], report: GoneReport | None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.report = report


def _unverified(report: GoneReport, oms: OrderManager, now_ns: int) -> GoneReport:
    """The shutdown's check cut short (a forced stop): every order not known to be gone is a survivor."""
    report.error = report.error or "the stop was forced before the broker confirmed the cancels"
    report.survivors = [
        Survivor(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=str(o.side),
            quantity=o.quantity,
            filled=o.filled_quantity,
            local=str(o.status),
            broker="not confirmed",
        )
        for o in oms.orders.values()
        if o.is_working or o.status is OrderStatus.INITIALIZED
    ]
    report.finished_ns = now_ns
    return report


def passing_time(clock: Clock) -> Wait:
    """How a session waits until a time: on the wall clock it sleeps; a virtual clock (a sim route's
    recorded day) has nobody else to move it, so it fires every timer due by then and stands there."""
    if not isinstance(clock, SimClock):
        return clock.sleep_until
    sim = clock

    async def wait(until_ns: int) -> None:
        while sim.step(until_ns=until_ns):
            pass
        sim.advance_to(max(until_ns, sim.now_ns()))

    return wait


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer in the journal, got {value!r}")
    return value


def _created_ns(row: dict[str, object]) -> int:
    """When a journaled parent was created (its day); rows without it: when its window started."""
    return _int(row.get("created_ns") or row["start_ns"])


async def _load_positions(
    store: StateStore, adapter: BrokerAdapter, account: Account, day: date, day_start_ns: int
) -> None:
    """Quantities from the journal (reconciliation then compares them with the broker's), and what of
    them was bought today by the journal's fills: T+1 is applied by the start of day (``TradingDay``),
    never taken from a broker that may not have rolled yet (a restart at 00:00:01). A journal with no
    positions and no orders is a first run: the account starts from the broker's holdings and what the
    broker says is sellable."""
    broker = {p.symbol: p for p in await adapter.query_positions()}
    stored = await store.load_positions()
    account.day = day
    if not stored and not await store.load_orders():
        for symbol, pos in sorted(broker.items()):
            account.load_position(symbol, pos.quantity, pos.avg_cost, sellable=pos.sellable)
        return
    bought: dict[str, int] = {}
    for fill, _ in await store.load_fills():
        if fill.side is Side.BUY and fill.ts_event >= day_start_ns:
            bought[fill.symbol] = bought.get(fill.symbol, 0) + fill.quantity
    for symbol, (quantity, _, avg_cost) in sorted(stored.items()):
        sellable = max(0, quantity - bought.get(symbol, 0))
        account.load_position(symbol, quantity, avg_cost, sellable=sellable)
        report = broker.get(symbol)
        if report is not None and report.sellable < sellable:
            # the broker may not have rolled its T+1 yet; a sell beyond what it allows is its reject
            log.info("broker_sellable_lower", symbol=symbol, engine=sellable, broker=report.sellable)
