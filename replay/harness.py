"""Run the real engine and algorithms against the simulated exchange on a virtual clock.

A replay is a pure function of (market data, parent orders, config) -> (journal, report): no wall
clock, no randomness, no global state. The loop jumps the ``SimClock`` from timer to timer (algorithm
slices, exchange latency, resting-order wake-ups) and lets the OrderManager journal and send what each
step produced. Nothing runs per snapshot: quiet symbols cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from zhixing.algos.base import AlgoContext
from zhixing.algos.basket import Basket
from zhixing.assembly import Engine, EngineSettings, build_engine, new_account
from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock, SimClock, TimerHandle
from zhixing.engine.errors import ParameterError
from zhixing.engine.events import OrderFilled
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.market import FeeSchedule, MarketRules, RulesNow, TradingCalendar, shanghai_ns
from zhixing.engine.oms import OrderManager
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import RiskLimits
from zhixing.engine.store import StateStore
from zhixing.engine.trading_day import day_start_ns
from zhixing.replay.data import MarketData
from zhixing.replay.exchange import SimExchange
from zhixing.replay.report import ReplayReport, build_report

Progress = Callable[[int, int], None]  # (now_ns - start, total span) in ns

SIM_NOW_KEY = "sim_now_ns"
"""Meta key: the virtual time of a replay's last journal commit (where a restarted replay resumes)."""


def sim_now_hook(store: StateStore, clock: SimClock) -> Callable[[], None]:
    """A before-commit hook staging the virtual time with every commit of a replay's journal."""
    return lambda: store.stage_meta(SIM_NOW_KEY, str(clock.now_ns()))


@dataclass(slots=True, kw_only=True)
class ReplayConfig:
    cash: int = 0  # milli-yuan
    positions: dict[str, int] = field(default_factory=dict)
    db_path: Path | None = None  # None: a throwaway file next to nothing (":memory:" not used: real file)
    latency_ns: int = 20_000_000
    # the account's commission; the stamp duty and transfer fee of ``fees`` are replaced by the replayed
    # day's, from ``market_rules`` (the dated table and the securities' statuses)
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    market_rules: MarketRules = field(default_factory=MarketRules)
    synchronous: str = "NORMAL"  # replay may trade durability for speed; live uses FULL
    inflight_timeout_ns: int = 5_000_000_000  # ask the broker about an order unanswered this long
    closing_auction: bool = True  # match the closing call at 15:00 (algorithms join only if asked to)
    # the risk gate's limits: a replay meets the caps, the collar and the duplicate rule as live does
    risk: RiskLimits = field(default_factory=RiskLimits)
    account_id: str = ""  # the replayed account (keys the client order ids, masked in the status journal)


def replay_account(config: ReplayConfig, clock: Clock) -> Account:
    """The replayed account: ``config``'s cash and positions, buys reserving ``config``'s fees at the
    rates of the day of ``clock``."""
    account = new_account(config.cash, config.fees, RulesNow(config.market_rules, clock))
    for symbol, quantity in sorted(config.positions.items()):
        account.load_position(symbol, quantity)
    return account


def replay_settings(config: ReplayConfig) -> EngineSettings:
    """The engine's settings for a replay (or a paper run) of ``config``."""
    return EngineSettings(
        account_id=config.account_id,
        risk=config.risk,
        # algorithms keep their own children to continuous trading; what they send into the closing
        # call is their one closing-auction order
        continuous_only=not config.closing_auction,
        inflight_timeout_ns=config.inflight_timeout_ns,
        market_rules=config.market_rules,
        fees=config.fees,
    )


@dataclass(slots=True)
class ReplayResult:
    report: ReplayReport
    oms: OrderManager
    exchange: SimExchange
    basket: Basket
    db_path: Path
    fills: list[OrderFilled]
    market: MarketData
    cancelled_at_stop: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ReplaySession:
    """The real engine wired to a simulated exchange on a virtual clock: what a replay drives."""

    engine: Engine  # built by the composition root (``zhixing.assembly``)
    market: MarketData
    clock: SimClock
    calendar: TradingCalendar
    exchange: SimExchange
    account: Account
    store: StateStore
    bus: EventBus
    oms: OrderManager
    ctx: AlgoContext
    fills: list[OrderFilled]
    db_path: Path
    inflight: InflightChecker
    arrival: dict[str, int | None] = field(default_factory=dict)
    _check_timer: TimerHandle | None = None
    _check_due: bool = False

    def record_arrival(self, parent: ParentOrder) -> None:
        """Arrival price = mid (or last) when the parent starts; recorded by a timer at its start."""
        self.clock.call_at(parent.start_ns, _arrival_recorder(parent, self.exchange, self.arrival), "arrival")

    async def run(
        self, end_ns: int, done: Callable[[], bool], progress: Progress | None = None, *, expire: bool = True
    ) -> None:
        """Step the clock to ``end_ns`` (or until ``done()`` and nothing works), then expire the rest
        (unless ``expire`` is False: a crash stops here, with orders still working at the exchange)."""
        start = self.clock.now_ns()
        span = max(1, end_ns - start)
        while self.clock.step(until_ns=end_ns):
            await self.oms.flush()
            await self._check_in_flight()
            if progress is not None:
                progress(self.clock.now_ns() - start, span)
            if done() and not self.oms.working_orders():
                break
        if not expire:
            return
        self.exchange.expire_all()
        while self.clock.step():
            await self.oms.flush()
            await self._check_in_flight()

    async def _check_in_flight(self) -> None:
        """Ask the broker about orders it has not answered (on the virtual clock, like every timer)."""
        if self._check_due:
            self._check_due = False
            await self.inflight.check()
            await self.oms.flush()
        due = self.inflight.next_due_ns()
        if due is not None and (self._check_timer is None or self._check_timer.cancelled):
            self._check_timer = self.clock.call_at(due, self._mark_check_due, "inflight_check")

    def _mark_check_due(self) -> None:
        self._check_due = True

    async def save_algos(self, basket: Basket) -> None:
        """Journal every algorithm's state and parent row (as ``Basket.journal`` does at each commit of a
        live session: the plan when it changed, the progress), then commit."""
        for algo in basket.algos.values():
            algo.dirty = True
        basket.journal(self.store)
        await self.oms.flush()
        await self.store.commit()


AdapterWrapper = Callable[[SimExchange, SimClock], BrokerAdapter]


async def open_session(
    market: MarketData, config: ReplayConfig, start_ns: int, *, wrap: AdapterWrapper | None = None
) -> ReplaySession:
    """Wire a session whose clock starts just before ``start_ns``. Close ``session.store`` when done.

    ``wrap`` puts something between the engine and the exchange (e.g. seeded fault injection); quotes
    still come from the exchange itself.
    """
    day = market.trade_date
    calendar = TradingCalendar()
    if not calendar.is_trading_day(day):
        raise ParameterError(f"{day} is not a trading day on the XSHG calendar", name="trade_date", value=day)
    clock = SimClock(start_ns - 1)
    exchange = SimExchange(
        market,
        clock,
        calendar=calendar,
        fees=config.fees,
        rules=config.market_rules,
        latency_ns=config.latency_ns,
        cash=config.cash,
        positions=dict(config.positions),
        closing_auction=config.closing_auction,
    )
    account = replay_account(config, clock)
    db_path = config.db_path or Path("zhixing-replay.db")
    store = await StateStore.open(db_path, synchronous=config.synchronous)
    adapter: BrokerAdapter = exchange if wrap is None else wrap(exchange, clock)
    session = replay_session(
        market, config, clock=clock, exchange=exchange, adapter=adapter, store=store, account=account
    )
    try:
        await adapter.connect()
        await session.oms.open()
    except BaseException:
        await store.close()
        raise
    return session


def replay_session(
    market: MarketData,
    config: ReplayConfig,
    *,
    clock: SimClock,
    exchange: SimExchange,
    adapter: BrokerAdapter,
    store: StateStore,
    account: Account,
    algo_clock: Clock | None = None,
) -> ReplaySession:
    """The engine of a replay, built by the composition root over ``exchange`` (its quotes price the
    checks; ``adapter`` is the exchange or something wrapped around it), with the replayed day started
    (its orders pass the trading day's check) and the virtual time journaled with every commit. Nothing
    is connected or opened yet."""
    engine = build_engine(
        replay_settings(config),
        clock=clock,
        calendar=exchange.calendar,
        store=store,
        adapter=adapter,
        quotes=exchange,
        account=account,
        algo_clock=algo_clock,
        before_commit=[sim_now_hook(store, clock)],
    )
    day = market.trade_date
    engine.day.open(day, day_start_ns(day), day_start_ns(day + timedelta(days=1)))
    return ReplaySession(
        engine=engine,
        inflight=InflightChecker(engine.oms, adapter, timeout_ns=config.inflight_timeout_ns),
        market=market,
        clock=clock,
        calendar=engine.calendar,
        exchange=exchange,
        account=account,
        store=store,
        bus=engine.bus,
        oms=engine.oms,
        ctx=engine.ctx,
        fills=engine.fills,
        db_path=store.path,
    )


async def run_replay(
    market: MarketData,
    parents: list[ParentOrder],
    config: ReplayConfig,
    *,
    progress: Progress | None = None,
    cancel_all_at: int | None = None,
) -> ReplayResult:
    """Run ``parents`` through their algorithms. ``cancel_all_at``: at that instant stop every algorithm
    and cancel every working order (the operator's cancel-all), recorded in ``result.cancelled_at_stop``."""
    day = market.trade_date
    day_open = shanghai_ns(day, "09:15")
    start = min([p.start_ns for p in parents] + [day_open])
    session = await open_session(market, config, start)
    try:
        basket = Basket(session.ctx)
        session.engine.add_basket(basket)
        for parent in parents:
            parent.created_ns = session.clock.now_ns()
            session.store.stage_parent(parent.to_row())
            basket.add(parent)
            session.record_arrival(parent)
        basket.start()
        cancelled: list[str] = []
        if cancel_all_at is not None:

            def cancel_all() -> None:
                basket.cancel()  # algorithms stop and cancel their children
                cancelled.extend(session.oms.cancel_all())  # anything else still working

            session.clock.call_at(cancel_all_at, cancel_all, "cancel_all")
        await session.store.commit()
        end = max([p.end_ns for p in parents] + [shanghai_ns(day, "15:00")])
        await session.run(end, lambda: basket.done, progress)
        await session.save_algos(basket)
        report = build_report(parents, basket, session.oms, market, session.arrival, session.engine.risk)
        return ReplayResult(
            report=report,
            oms=session.oms,
            exchange=session.exchange,
            basket=basket,
            db_path=session.db_path,
            fills=session.fills,
            market=market,
            cancelled_at_stop=cancelled,
        )
    finally:
        await session.store.close()


def _arrival_recorder(
    parent: ParentOrder, exchange: SimExchange, arrival: dict[str, int | None]
) -> Callable[[], None]:
    def record() -> None:
        quote = exchange.latest(parent.symbol)
        if quote is None:
            arrival[parent.parent_id] = None
        else:
            arrival[parent.parent_id] = quote.mid or (quote.last or None)

    return record
