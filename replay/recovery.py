"""Crash and restart of the engine in a replay, against a broker that survives the crash.

A crash kills the engine, not the broker. Here that means:

- ``crash(session)``: every timer the engine armed (algorithm slices; they were armed through the
  session's ``ProcessClock``) dies, the adapter's events go nowhere (a broker's push to a dead process is
  lost), the journal is closed with whatever was staged but not committed lost. The exchange keeps
  running on the shared ``SimClock``: stepping the clock during the downtime matches and fills the orders
  still working there.
- ``restart_session``: a new Account (the config's positions, then the journal's), a new OrderManager on
  the SAME adapter, a reopened journal; ``resume`` then runs ``engine.reconcile.recover`` and resumes the
  basket from the journal (``algos.basket.Basket.resume_from``), sized from confirmed fills.

``DurableSimBroker`` makes the broker survive a real ``kill -9`` too: every request (submit, cancel,
end-of-day expiry) is written to the broker's OWN SQLite file (synchronous=FULL) before the exchange sees
it, and ``DurableSimBroker.open`` rebuilds the exchange by replaying those requests on a fresh
``SimClock`` from the day's start. The exchange is deterministic, and the requests are replayed at the
instant they were made, after the exchange's own timers of that instant (as in the original run, where
the engine sends in the flush that follows a clock step; with ``latency_ns`` > 0 the exchange never
schedules a timer for the instant it is in), so the rebuilt exchange is the one that was killed, trade ids
included. It is built from the ``ReplayConfig`` alone (continuous matching; no closing auction).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from zhixing.algos.basket import Basket
from zhixing.engine.broker import BrokerAdapter, EventSink
from zhixing.engine.clock import AnchoredTime, NsSource, SimClock, TimerCallback, TimerHandle
from zhixing.engine.enums import Side
from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderEvent,
    OrderStatusReport,
    PositionReport,
    Quote,
)
from zhixing.engine.market import TradingCalendar
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import ReconcileReport, recover
from zhixing.engine.store import StateStore
from zhixing.replay.data import MarketData
from zhixing.replay.exchange import SimExchange
from zhixing.replay.harness import SIM_NOW_KEY, ReplayConfig, ReplaySession, replay_account, replay_session

__all__ = ["SIM_NOW_KEY"]  # the virtual time of the last commit (a restart begins no earlier)


# ---------------------------------------------------------------------------------------- process clock
class ProcessClock:
    """The engine's view of a ``SimClock``: its timers die with the process (``kill``).

    Everything the engine arms (algorithm slices, retries) goes through it; the exchange uses the
    ``SimClock`` itself, so its timers outlive a crash. With ``wall`` (the host's wall clock, e.g. a
    ``replay.faults.SteppedWall``) its time is anchored as a ``LiveClock``'s: ``wall`` read once, here,
    moved on by the virtual (monotonic) time, so a step of ``wall`` never reaches the engine;
    ``system_ns`` reads ``wall`` itself, for the step watch.
    """

    def __init__(self, clock: SimClock, wall: NsSource | None = None) -> None:
        self.clock = clock
        self._time = AnchoredTime(wall, clock.now_ns) if wall is not None else None
        self._timers: list[TimerHandle] = []
        self.killed = False

    def now_ns(self) -> int:
        return self.clock.now_ns() if self._time is None else self._time.now_ns()

    def system_ns(self) -> int:
        """The host's wall clock (``wall``; without one, the virtual time)."""
        return self.clock.now_ns() if self._time is None else self._time.system_ns()

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        if self.killed:
            raise RuntimeError("ProcessClock: the process is dead; nothing may be scheduled")
        if len(self._timers) > 1024:  # forget fired and cancelled timers now and then
            self._timers = [t for t in self._timers if not t.cancelled]
        # our time and the virtual clock's differ by the anchor's offset (0 unless the wall was off)
        handle = self.clock.call_at(when_ns - (self.now_ns() - self.clock.now_ns()), callback, name)
        self._timers.append(handle)
        return handle

    async def sleep_until(self, when_ns: int) -> None:
        await self.clock.sleep_until(when_ns - (self.now_ns() - self.clock.now_ns()))

    def kill(self) -> int:
        """Cancel every live timer armed through this clock; returns how many were live."""
        self.killed = True
        live = [t for t in self._timers if not t.cancelled]
        for timer in live:
            timer.cancel()
        self._timers = []
        return len(live)


def _discard(event: OrderEvent) -> None:
    """The sink of a dead process."""


def use_process_clock(session: ReplaySession, wall: NsSource | None = None) -> ProcessClock:
    """Route the session's algorithm timers through a ``ProcessClock`` (before any algorithm exists),
    anchored to ``wall`` if given (see ``ProcessClock``)."""
    process = ProcessClock(session.clock, wall)
    session.ctx = replace(session.ctx, clock=process)
    return process


async def crash(session: ReplaySession) -> int:
    """Kill the engine of ``session`` (see the module docstring); returns the engine timers killed."""
    killed = session.ctx.clock.kill() if isinstance(session.ctx.clock, ProcessClock) else 0
    session.oms.adapter.bind(_discard)
    await session.store.close()
    return killed


def run_exchange_alone(clock: SimClock, until_ns: int) -> None:
    """The downtime: the exchange's own timers fire up to ``until_ns``; no engine is there to answer."""
    while clock.step(until_ns=until_ns):
        pass
    clock.advance_to(max(until_ns, clock.now_ns()))


# ---------------------------------------------------------------------------------------- restart
async def build_session(
    market: MarketData,
    config: ReplayConfig,
    *,
    clock: SimClock,
    exchange: SimExchange,
    adapter: BrokerAdapter,
    store: StateStore,
) -> ReplaySession:
    """The engine side of a session over an existing exchange and journal (fresh start or restart).

    Account: ``config`` cash and positions, then the journal's positions over them; the OrderManager
    binds ``adapter``; algorithm timers go through a new ``ProcessClock``. ``recover`` has not run yet.
    """
    account = replay_account(config, clock)
    for symbol, (quantity, sellable, avg_cost) in sorted((await store.load_positions()).items()):
        account.load_position(symbol, quantity, avg_cost=avg_cost, sellable=sellable)
    session = replay_session(
        market,
        config,
        clock=clock,
        exchange=exchange,
        adapter=adapter,
        store=store,
        account=account,
        algo_clock=ProcessClock(clock),
    )
    await session.oms.open()
    return session


async def restart_session(
    market: MarketData,
    config: ReplayConfig,
    *,
    clock: SimClock,
    exchange: SimExchange,
    adapter: BrokerAdapter,
) -> ReplaySession:
    """Reopen the journal at ``config.db_path`` and build a new engine on the surviving ``adapter``."""
    if config.db_path is None:
        raise ParameterError("restart_session needs the journal to restart from", name="config.db_path")
    store = await StateStore.open(config.db_path, synchronous=config.synchronous)
    try:
        return await build_session(
            market, config, clock=clock, exchange=exchange, adapter=adapter, store=store
        )
    except BaseException:
        await store.close()
        raise


@dataclass(slots=True)
class Resumed:
    """What ``resume`` did: the reconciliation and the basket it resumed (already started)."""

    report: ReconcileReport
    basket: Basket


async def resume(
    session: ReplaySession, *, trading_day_start_ns: int, in_flight_grace_ns: int | None = None
) -> Resumed:
    """Reconcile with the broker, then resume every journaled parent from its journaled state.

    Nothing is sent before reconciliation is done; on a mismatch the OrderManager is halted by
    ``recover`` and the resumed algorithms' children are denied (fail closed). Orders sent less than
    ``in_flight_grace_ns`` (default: the in-flight timeout) before the restart that the broker does not
    know yet stay in flight for the in-flight checks (``recover``).
    """
    grace = session.inflight.timeout_ns if in_flight_grace_ns is None else in_flight_grace_ns
    clock = session.clock

    async def pass_time(until_ns: int) -> None:  # a re-query's grace: the exchange (and the wire) run on
        run_exchange_alone(clock, until_ns)

    report = await recover(
        session.oms,
        session.store,
        session.oms.adapter,
        trading_day_start_ns=trading_day_start_ns,
        in_flight_grace_ns=grace,
        wait=pass_time,
    )
    basket = await Basket.resume_from(session.ctx, session.store)
    session.engine.add_basket(basket)
    basket.start()
    await session.oms.flush()
    due = session.inflight.next_due_ns()
    if due is not None:
        # the replay loop arms its in-flight check after a clock step: make sure a step comes when the
        # orders left in flight are due, even if nothing else is scheduled before then
        session.clock.call_at(due, _wake, "inflight_wake")
    return Resumed(report=report, basket=basket)


def _wake() -> None:
    """A timer that only makes the replay loop take a step (and run its checks) at its instant."""


# ---------------------------------------------------------------------------------------- durable broker
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT
"""

RequestHook = Callable[[int], None]
_KINDS = frozenset({"submit", "cancel", "expire"})  # what ``_record`` writes


@dataclass(slots=True)
class BrokerJournalStats:
    requests: int = 0
    replayed: int = 0
    submits: dict[str, int] = field(default_factory=dict)  # client order id -> times received


class DurableSimBroker:
    """A ``BrokerAdapter`` (and quote source) over a ``SimExchange`` that survives ``kill -9``.

    Open with ``DurableSimBroker.open`` (which replays the broker's journal, if any); ``after_request``,
    when set, is called with the request's sequence number once it is durable (kill points in tests).
    """

    name = "durable-sim"

    def __init__(self, exchange: SimExchange, clock: SimClock, db: sqlite3.Connection) -> None:
        self.exchange = exchange
        self.clock = clock
        self._db = db
        self.after_request: RequestHook | None = None
        self.stats = BrokerJournalStats()

    @classmethod
    async def open(
        cls, path: str | Path, market: MarketData, config: ReplayConfig, *, start_ns: int
    ) -> DurableSimBroker:
        """The broker of ``path``: a fresh exchange whose clock starts just before ``start_ns`` (as
        ``replay.harness.open_session``), with every journaled request replayed. The clock is left at the
        last request's instant; step it on to the restart."""
        db = sqlite3.connect(str(path), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        clock = SimClock(start_ns - 1)
        calendar = TradingCalendar()
        exchange = SimExchange(
            market,
            clock,
            calendar=calendar,
            fees=config.fees,
            rules=config.market_rules,
            latency_ns=config.latency_ns,
            cash=config.cash,
            positions=dict(config.positions),
        )
        broker = cls(exchange, clock, db)
        exchange.bind(_discard)  # events of the past were delivered (or lost) in the past
        for seq, ts, kind, body in db.execute("SELECT seq, ts, kind, body FROM requests ORDER BY seq"):
            if kind not in _KINDS:
                db.close()
                raise InputError(
                    f"unknown request kind {kind!r}; known: {', '.join(sorted(_KINDS))}",
                    path=str(path),
                    row=seq,
                    field="kind",
                )
            run_exchange_alone(clock, ts)
            await broker._apply(kind, json.loads(body))
            broker.stats.requests = seq
            broker.stats.replayed += 1
        return broker

    async def _apply(self, kind: str, body: dict[str, object]) -> None:
        """Replay one journaled request; ``kind`` is one of ``_KINDS`` (``open`` checked it)."""
        if kind == "expire":
            self.exchange.expire_all()
            return
        order = Order(
            client_order_id=str(body["client_order_id"]),
            symbol=str(body["symbol"]),
            side=Side(str(body["side"])),
            price=int(str(body["price"])),
            quantity=int(str(body["quantity"])),
            parent_id=str(body["parent_id"]),
            tag=str(body["tag"]),
        )
        if kind == "submit":
            cid = order.client_order_id
            self.stats.submits[cid] = self.stats.submits.get(cid, 0) + 1
            await self.exchange.submit(order)
        else:
            await self.exchange.cancel(order)

    def _record(self, kind: str, body: dict[str, object]) -> None:
        self.stats.requests += 1
        seq = self.stats.requests
        self._db.execute(
            "INSERT INTO requests (seq, ts, kind, body) VALUES (?, ?, ?, ?)",
            (seq, self.clock.now_ns(), kind, json.dumps(body, sort_keys=True)),
        )
        if self.after_request is not None:
            self.after_request(seq)

    @staticmethod
    def _body(order: Order) -> dict[str, object]:
        return {
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "side": order.side.value,
            "price": order.price,
            "quantity": order.quantity,
            "parent_id": order.parent_id,
            "tag": order.tag,
        }

    # ------------------------------------------------------------------------------------- adapter
    def bind(self, sink: EventSink) -> None:
        self.exchange.bind(sink)

    async def connect(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        self._db.close()

    async def submit(self, order: Order) -> None:
        self._record("submit", self._body(order))
        cid = order.client_order_id
        self.stats.submits[cid] = self.stats.submits.get(cid, 0) + 1
        await self.exchange.submit(order)

    async def cancel(self, order: Order) -> None:
        self._record("cancel", self._body(order))
        await self.exchange.cancel(order)

    def expire_all(self) -> int:
        """End of day at the exchange (journaled like any request)."""
        self._record("expire", {})
        return self.exchange.expire_all()

    async def query_account(self) -> AccountReport:
        return await self.exchange.query_account()

    async def query_positions(self) -> list[PositionReport]:
        return await self.exchange.query_positions()

    async def query_orders(self) -> list[OrderStatusReport]:
        return await self.exchange.query_orders()

    async def query_trades(self) -> list[FillReport]:
        return await self.exchange.query_trades()

    def latest(self, symbol: str) -> Quote | None:
        return self.exchange.latest(symbol)

    def last_request_ns(self) -> int:
        row = self._db.execute("SELECT MAX(ts) FROM requests").fetchone()
        return int(row[0]) if row and row[0] is not None else 0
