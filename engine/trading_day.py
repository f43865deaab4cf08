"""The trading day: everything keyed by a day is keyed by it, and each day starts once, before anything
of it is done.

The rule (docs/RELIABILITY.md, days):

- A day is the Asia/Shanghai date of the engine clock (``trading_date_of``), never the host's local date;
  identifiers that link rows (parent ids, rebalance numbers) carry it (``day_key``), so nothing of one day
  is ever adopted or resumed by another; a restart on the same day resumes that day's parents.
- ``TradingDay.start(day)`` is the start of day, one function for both paths: at a restart (after
  reconciliation, before any algorithm resumes) and in a running engine at each new trading day (its
  own clock timer at the Shanghai midnight, re-checked hourly and retried every minute while it fails;
  before the first job of the day, which waits for it, and before any order of the day: the pre-trade
  its ``DayGate`` denies ``day_not_started`` until it is done). It:

  1. ends every open order of an earlier day by the reconciliation rules
     (``engine.reconcile.end_earlier_days``: the broker's truth, else expired or never sent);
  2. finishes every algorithm whose parent was created on an earlier day (nothing is sent for it);
  3. rolls the account (T+1): what was bought before today is sellable, minus what working sells hold;
  4. resets the day's counters (the risk gate's) and tells ``on_new_day`` (the job runner's outcomes and
     rebalances, the denial digest);
  5. journals the positions and the day (meta ``trading_day``) in one commit.

  Every step is idempotent: a start that fails half-way (a broker that does not answer, a crash) is run
  again, by the next retry or at the restart, and ends in the same state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Final, Protocol

import structlog

from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import CalendarError
from zhixing.engine.freshness import BrokerView
from zhixing.engine.market import TradingCalendar, shanghai_ns, trading_date_of
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.reasons import Denial, DenialCode, Unfilled, UnfilledCode
from zhixing.engine.reconcile import ReconcileReport, end_earlier_days
from zhixing.engine.risk_controls import RiskControls
from zhixing.engine.store import StateStore
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.day")

DAY_META_KEY: Final = "trading_day"
RECHECK_NS: Final = 3600 * NS_PER_SECOND  # a slept or stepped machine still notices the new day
RETRY_NS: Final = 60 * NS_PER_SECOND  # a start that failed (broker unreachable) is tried again


def day_key(day: date) -> str:
    """``20211201``: the trading day as it leads every identifier that links rows of that day."""
    return f"{day:%Y%m%d}"


def day_start_ns(day: date) -> int:
    return shanghai_ns(day, "00:00")


class DayAlgo(Protocol):
    """What the start of day needs of an algorithm (``algos.base.ExecAlgo``)."""

    @property
    def parent(self) -> ParentOrder: ...

    @property
    def done(self) -> bool: ...

    def stop(self, why: Unfilled | None = None) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DayStart:
    """What a start of day did (journaled under ``DAY_META_KEY``)."""

    day: date
    previous: date | None  # the day last started (this process or the journal); None: never
    started_ns: int
    expired: tuple[str, ...] = ()  # earlier-day orders ended by policy (expired, or never sent)
    adopted: tuple[str, ...] = ()  # earlier-day orders that took the broker's truth
    stopped: tuple[str, ...] = ()  # parents of an earlier day finished

    @property
    def new_day(self) -> bool:
        return self.previous != self.day

    def to_json(self) -> str:
        row = asdict(self)
        row["day"] = self.day.isoformat()
        row["previous"] = self.previous.isoformat() if self.previous else None
        return json.dumps(row, sort_keys=True)


def _journaled_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(str(json.loads(text)["day"]))
    except (ValueError, KeyError, TypeError):
        log.warning("trading_day_record_unreadable", record=text[:200])
        return None


@dataclass(slots=True)
class DayGate:
    """The trading day's pre-trade check: no order of a trading day before that day has started.

    Built before the OrderManager (it is one of the checks the OrderManager is constructed with);
    ``TradingDay`` opens it for each day it starts."""

    clock: Clock
    calendar: TradingCalendar
    day: date | None = None  # the day last started
    _range: tuple[int, int] = (0, 0)  # [start, end) ns of ``day``: the check's fast path

    def open(self, day: date, start_ns: int, end_ns: int) -> None:
        self.day, self._range = day, (start_ns, end_ns)

    def check(self, order: Order) -> Denial | None:
        """Pre-trade check: no order of a trading day before that day has started."""
        now = self.clock.now_ns()
        if self._range[0] <= now < self._range[1]:
            return None
        today = trading_date_of(now)
        if not self.is_trading(today):
            return None  # nothing trades today; the market rules say so
        started = self.day.isoformat() if self.day else "none"
        return Denial(
            DenialCode.DAY_NOT_STARTED,
            f"trading day {today.isoformat()} has not started yet (last started: {started})",
        )

    def is_trading(self, day: date) -> bool:
        try:
            return self.calendar.is_trading_day(day)
        except (CalendarError, ValueError):  # past the known range (refused) or before it: closed
            return False


@dataclass(slots=True, kw_only=True)
class TradingDay:
    """The engine's current trading day and its start (see the module docstring)."""

    clock: Clock
    calendar: TradingCalendar
    oms: OrderManager
    adapter: BrokerAdapter
    store: StateStore
    account: Account
    gate: DayGate  # the OrderManager's check; opened here when a day starts
    risk: RiskControls | None = None
    algos: Mapping[str, DayAlgo] = field(default_factory=dict)  # every algorithm of the session
    on_new_day: list[Callable[[DayStart], None]] = field(default_factory=list)
    day: date | None = None  # the day started; orders of another trading day are denied until started
    last: DayStart | None = None
    starts: list[DayStart] = field(default_factory=list)
    failures: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _timer: TimerHandle | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # ------------------------------------------------------------------------------------- the start
    async def ensure(self, day: date) -> DayStart:
        """``day`` started (now, if it was not): what the first job of a day awaits. An earlier day than
        the one started is never started again."""
        if self.day is not None and self.last is not None and day <= self.day:
            return self.last
        return await self.start(day)

    async def start(self, day: date) -> DayStart:
        """Start ``day`` (see the module docstring). Idempotent; a second call for the started day (or an
        earlier one: the day never goes back) returns what the first did. Raises ``BrokerError`` when
        the broker must be asked and does not answer, or ``StoreError`` when the journal cannot be
        written: the day is then not started (orders stay denied) and the start is tried again."""
        async with self._lock:
            if self.day is not None and self.last is not None and day <= self.day:
                if day < self.day:  # a late timer of yesterday: the day never goes back
                    log.warning("trading_day_not_restarted", asked=day.isoformat(), day=self.day.isoformat())
                return self.last
            previous = self.day or _journaled_day(await self.store.get_meta(DAY_META_KEY))
            start_ns = day_start_ns(day)
            report = ReconcileReport()
            earlier = [o for o in self.oms.orders.values() if not o.is_terminal and o.ts_created < start_ns]
            if earlier:
                view = await BrokerView.ask(self.adapter, positions=False)
                end_earlier_days(self.oms, view, trading_day_start_ns=start_ns, report=report)
            stopped = []
            for parent_id, algo in list(self.algos.items()):
                if not algo.done and algo.parent.created_ns < start_ns:
                    algo.stop(
                        Unfilled(
                            UnfilledCode.WINDOW_ENDED, f"its day ended; stopped as {day.isoformat()} started"
                        )
                    )
                    stopped.append(parent_id)
            self.account.start_day(day)
            started = DayStart(
                day=day,
                previous=previous,
                started_ns=self.clock.now_ns(),
                expired=tuple(report.expired + report.never_sent),
                adopted=tuple(report.adopted),
                stopped=tuple(stopped),
            )
            if started.new_day and self.risk is not None:
                self.risk.start_day()
            for symbol, pos in sorted(self.account.positions.items()):
                self.store.stage_position(symbol, pos.quantity, pos.sellable, pos.avg_cost)
            self.store.stage_meta(DAY_META_KEY, started.to_json())
            await self.store.commit()  # the ended orders, the positions and the day: one transaction
            self.day, self.last = day, started
            self.gate.open(day, start_ns, day_start_ns(day + timedelta(days=1)))
            self.starts.append(started)
        await self.oms.flush()  # the finished algorithms' states (the OMS's journal hooks)
        log.info(
            "trading_day_started",
            day=day.isoformat(),
            previous=previous.isoformat() if previous else None,
            expired=len(started.expired),
            adopted=len(started.adopted),
            stopped=len(started.stopped),
        )
        if started.new_day:
            for listener in list(self.on_new_day):
                try:
                    listener(started)
                except Exception:  # one listener's bug must not keep the day from starting
                    log.exception("new_day_listener_failed", day=day.isoformat())
        return started

    # ------------------------------------------------------------------------------------- the watch
    def watch(self) -> None:
        """Arm the running engine's start of each new trading day (the next Shanghai midnight, and every
        hour in between)."""
        self._arm(RECHECK_NS)

    def stop(self) -> None:
        """No further start (shutdown); a start under way is cancelled (the restart runs it again)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()

    async def idle(self) -> None:
        """Until no start is running (a replayed day's driver lets it finish before time moves on)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _arm(self, within_ns: int) -> None:
        now = self.clock.now_ns()
        midnight = day_start_ns(trading_date_of(now) + timedelta(days=1))
        self._timer = self.clock.call_at(min(midnight, now + within_ns), self._tick, "trading_day")

    def _tick(self) -> None:
        today = trading_date_of(self.clock.now_ns())
        due = today != self.day and self.gate.is_trading(today)
        if due and not self._tasks:
            task = asyncio.get_running_loop().create_task(self._start_now(today), name="trading_day_start")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm(RETRY_NS if due else RECHECK_NS)

    async def _start_now(self, day: date) -> None:
        try:
            await self.start(day)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # told and retried by the watch; orders of the day stay denied meanwhile
            self.failures += 1
            log.error("trading_day_start_failed", day=day.isoformat(), error=f"{type(exc).__name__}: {exc}")
