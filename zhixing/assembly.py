"""The composition root: the one place an engine is built.

``build_engine(settings, ...)`` assembles the event bus, the OrderManager with every pre-trade check (the
caller's leading checks, the market rules, the risk gate), the risk gate as the OrderManager's flow gate,
the journal hooks (the algorithms' states, the account and risk report), the algorithms' context and the
directory of every algorithm of the session. Every collaborator is handed to a constructor; nothing is
wired onto a built OrderManager afterwards. What differs between a live run, a paper run, a replay, a chaos
seed and a crash recovery is an argument: the clock, the route (a broker adapter, or the simulated
exchange), the quotes the checks price against (a ``QuoteBook`` fed by a live feed, or the exchange), the
store, and the account. The risk gate runs in all of them, with the same limits type: a replay meets the
message-rate caps, the collar and the duplicate rule exactly as ``zhixing run`` does.

Callers: ``engine.cli.session.open_live_session`` (``zhixing run``, ``zhixing paper``) and
``replay.harness.open_session`` / ``replay.recovery.build_session`` (replays, chaos, recovery).

Checks whose state is moved by something that itself needs the OrderManager are built first, as plain
state, and the OrderManager is constructed with them: the broker link's (``engine.connection.LinkGate``,
moved by a ``ConnectionMonitor``) and the trading day's (``engine.trading_day.DayGate``, opened by a
``TradingDay`` in a live session, or by a replay for its one day). Every engine has both, in this order:
link, day, market rules, risk gate (the first denial wins).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zhixing.algos.base import AlgoContext
from zhixing.algos.basket import Basket
from zhixing.algos.directory import AlgoDirectory
from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock
from zhixing.engine.connection import LinkGate
from zhixing.engine.enums import Side
from zhixing.engine.events import OrderFilled
from zhixing.engine.freshness import AlertCallback
from zhixing.engine.market import FeeSchedule, MarketRules, RulesNow, TradingCalendar, instrument_for
from zhixing.engine.marketdata import QuoteSource
from zhixing.engine.oms import OrderManager
from zhixing.engine.order_ids import route_order_ids
from zhixing.engine.risk import market_rules_check
from zhixing.engine.risk_controls import RiskControls, RiskLimits
from zhixing.engine.status import StatusRecorder
from zhixing.engine.store import StateStore
from zhixing.engine.trading_day import DayGate

__all__ = ["Engine", "EngineSettings", "build_engine", "new_account"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """What an engine is built from, whatever drives it. Times in int ns."""

    account_id: str = ""  # ``[account] id``: keys the client order ids when the route names none
    risk: RiskLimits = field(default_factory=RiskLimits)  # the risk gate's limits: on in every mode
    # False: call-auction orders pass the market rules too (algorithms keep their children to continuous
    # trading themselves; what they send into the closing call is their one closing-auction order)
    continuous_only: bool = False
    inflight_timeout_ns: int = 5_000_000_000  # ask the broker about an order unanswered this long
    # the dated market rules (and the securities' statuses): the checks and the algorithms ask it for the
    # day of the engine's clock; a day outside its coverage is an error (engine/market/dated_rules.py)
    market_rules: MarketRules = field(default_factory=MarketRules)
    # the account's fee schedule: its commission, minimum and fund waivers; the stamp duty and transfer fee
    # are the day's (``Engine.fees_today``)
    fees: FeeSchedule = field(default_factory=FeeSchedule)


@dataclass(slots=True, kw_only=True)
class Engine:
    """A built engine: what every driver (live session, replay session) runs."""

    settings: EngineSettings
    clock: Clock
    calendar: TradingCalendar
    store: StateStore
    bus: EventBus
    account: Account
    adapter: BrokerAdapter
    quotes: QuoteSource
    oms: OrderManager
    risk: RiskControls
    link: LinkGate  # the broker link's check (a ConnectionMonitor moves it)
    day: DayGate  # the trading day's check (a TradingDay, or a replay, opens it)
    ctx: AlgoContext
    algos: AlgoDirectory  # every algorithm of the session: each basket's, read live
    fills: list[OrderFilled]
    rules: RulesNow  # the market rules of the clock's day: what the checks, algorithms and planner ask
    baskets: list[Basket] = field(default_factory=list)

    def fees_today(self) -> FeeSchedule:
        """The account's schedule with the stamp duty and transfer fee of the clock's day."""
        return self.rules.today().fees(self.settings.fees)

    def add_basket(self, basket: Basket) -> None:
        """A basket joins the session: its algorithms are in ``algos`` and journaled with every commit."""
        self.baskets.append(basket)
        self.algos.add(basket.algos)


def new_account(cash: int, fees: FeeSchedule, rules: RulesNow | None = None) -> Account:
    """An account whose buys reserve the fees of ``fees`` (the one fee estimator of every mode): with
    ``rules``, the account's commission and the stamp duty and transfer fee of the clock's day; without,
    ``fees`` as given (a live account's configured schedule)."""

    def estimate(symbol: str, side: Side, price: int, quantity: int) -> int:
        if rules is None:
            return fees.total(instrument_for(symbol), side, price, quantity)
        today = rules.today()
        return today.fees(fees).total(today.instrument(symbol), side, price, quantity)

    return Account(cash, estimate)


def build_engine(
    settings: EngineSettings,
    *,
    clock: Clock,
    calendar: TradingCalendar,
    store: StateStore,
    adapter: BrokerAdapter,
    quotes: QuoteSource,
    account: Account,
    algo_clock: Clock | None = None,
    before_commit: Sequence[Callable[[], object]] = (),
    on_alert: AlertCallback | None = None,
) -> Engine:
    """Build an engine (see the module docstring). Nothing is connected, opened or recovered here: the
    driver does that on the engine it gets (``oms.open()`` / ``oms.start()``, reconciliation, resume).

    ``algo_clock``: the clock algorithms arm their timers on (a recovery's per-process clock), default
    ``clock``. ``before_commit``: more hooks staged with every journal commit (a replay's virtual time).
    ``on_alert(title, body)``: told what the operator must know now (a cancel that would not stick)."""
    bus = EventBus()
    fills: list[OrderFilled] = []
    bus.subscribe(OrderFilled, fills.append)
    link = LinkGate()
    day = DayGate(clock, calendar)
    risk = RiskControls(settings.risk, clock, quotes, bus=bus)
    today = RulesNow(settings.market_rules, clock)  # the one rules object of the session
    rules = market_rules_check(
        clock=clock,
        calendar=calendar,
        quotes=quotes,
        instrument=today.instrument,
        account=account,
        continuous_only=settings.continuous_only,
    )
    algos = AlgoDirectory()
    baskets: list[Basket] = []
    status = StatusRecorder(store, account=account, risk=risk, account_id=settings.account_id)

    def journal_algos() -> None:
        for basket in baskets:
            basket.journal(store)

    oms = OrderManager(
        clock=clock,
        bus=bus,
        adapter=adapter,
        store=store,
        account=account,
        ids=route_order_ids(adapter, settings.account_id),
        checks=[link.check, day.check, rules, risk.check],
        gate=risk,
        before_commit=[journal_algos, status, *before_commit],
        on_alert=on_alert,
    )
    ctx = AlgoContext(
        clock=algo_clock or clock,
        oms=oms,
        bus=bus,
        quotes=quotes,
        calendar=calendar,
        instrument=today.instrument,
        fees=settings.fees,
    )
    return Engine(
        settings=settings,
        clock=clock,
        calendar=calendar,
        store=store,
        bus=bus,
        account=account,
        adapter=adapter,
        quotes=quotes,
        oms=oms,
        risk=risk,
        link=link,
        day=day,
        ctx=ctx,
        algos=algos,
        fills=fills,
        rules=today,
        baskets=baskets,
    )
