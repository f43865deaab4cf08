"""``zhixing run CONFIG``: the long-running process of a trading day, driven by one config file.

It takes the single-instance lock on the journal, connects the route and the feed, reconciles, and then
fires the configured jobs (signal, execute, summary) on their cron times in Asia/Shanghai, only on
trading days. SIGINT or SIGTERM stops it (``engine.stop``), at any moment and within a bound: running jobs
are cancelled (a signal script with every process it started), algorithms stop, working orders are
cancelled or left per ``shutdown``, notifications are flushed, the journal is committed and closed (also
when that commit fails); a second signal forces it. The exit status says how it went (``EXIT_*``).

With ``route.kind = "sim"`` the day is the recorded one and, unless ``--speed`` is given, it runs on a
virtual clock as fast as the work allows (what the tests use); live routes run on the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from zhixing.adapters.notify.factory import notifier_from_settings
from zhixing.assembly import EngineSettings, new_account
from zhixing.engine.calendar_guard import CalendarWatch, calendar_for
from zhixing.engine.cancels import GoneReport
from zhixing.engine.cli.routes import Route, build_route, load_checked, load_sim_market, run_route
from zhixing.engine.cli.runner import DayRunner, drive
from zhixing.engine.cli.session import CloseIncomplete, LiveSession, open_live_session
from zhixing.engine.clock import Clock, LiveClock, ScaledClock, SimClock
from zhixing.engine.clock_watch import ClockWatch, watch_clock_steps
from zhixing.engine.config import ROUTES, Config
from zhixing.engine.control import ControlChannel, EngineControl, install
from zhixing.engine.denial_alerts import DenialAlerts
from zhixing.engine.errors import ConfigError, ParameterError
from zhixing.engine.instance_lock import InstanceLock
from zhixing.engine.market import RulesNow, TradingCalendar, shanghai_ns, trading_date_of
from zhixing.engine.notify import (
    NotificationDispatcher,
    error_notice,
    halt_notice,
    not_ready_notice,
    stale_feed_notice,
)
from zhixing.engine.order_ids import JournalAccountMismatch
from zhixing.engine.readiness import NotReady
from zhixing.engine.reject_alerts import RejectAlerts
from zhixing.engine.schedule import CronJob, Scheduler
from zhixing.engine.stop import (
    EXIT_NOT_OK,
    EXIT_OK,
    EXIT_UNCLEAN,
    FORCED_NOTIFY_S,
    STOP_NOTIFY_S,
    LoopStop,
    Stopped,
    StopWatchdog,
    process_watchdog,
    stop_bound_s,
    use_daemon_executor,
)
from zhixing.engine.store.integrity import JournalDamaged
from zhixing.engine.store.staging import to_json
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.run")


def add_parsers(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="run the trading day from a config: scheduled signal, execution, summary"
    )
    run.add_argument("config", type=Path, help="the TOML config (see docs/OPERATIONS.md)")
    run.add_argument(
        "--from", dest="start", default="08:30", help="sim route: the recorded day starts at HH:MM"
    )
    run.add_argument(
        "--until",
        help="stop at HH:MM or YYYY-MM-DD HH:MM, Shanghai (sim route default 15:30; live: until signalled)",
    )
    run.add_argument("--speed", type=float, help="sim route: play the day on a live clock N times faster")
    run.add_argument(
        "--adapter",
        choices=ROUTES,
        help="route to use instead of the config's [route] kind (its table must exist)",
    )
    run.set_defaults(handler=run_command)


@dataclass(slots=True)
class RunResult:
    runner: DayRunner
    dispatcher: NotificationDispatcher
    fired: list[tuple[str, int]]
    shutdown: GoneReport | None = None  # shutdown's check by query that every order is gone
    stopped_by: str | None = None  # the signal that stopped the run (None: it reached its end)
    forced: bool = False  # a second signal forced the stop
    problems: list[str] = field(default_factory=list)  # what the stop could not do: not a clean stop

    @property
    def exit_code(self) -> int:
        """``EXIT_UNCLEAN`` when the stop was forced or could not do everything; else ``EXIT_NOT_OK`` when a
        job is not ok or orders were left working; else ``EXIT_OK`` (docs/OPERATIONS.md, exit status)."""
        if self.forced or self.problems:
            return EXIT_UNCLEAN
        failed = [o for o in self.runner.outcomes if not o.ok]
        if failed or (self.shutdown is not None and not self.shutdown.ok):
            return EXIT_NOT_OK
        return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    config = load_checked(args.config, adapter=args.adapter)
    config.store.path.parent.mkdir(parents=True, exist_ok=True)
    with InstanceLock.for_store(config.store.path):
        result = run_route(
            config,
            lambda bridge: run_config(
                config,
                start=args.start,
                until=args.until,
                speed=args.speed,
                gm_bridge=bridge,
                watchdog=process_watchdog(),
            ),
        )
    for outcome in result.runner.outcomes:
        print(f"{outcome.job} ({outcome.kind}): {outcome.label} {outcome.detail}")
    print_shutdown(result.shutdown)
    if result.stopped_by is not None:
        how = "forced" if result.forced else ("NOT clean" if result.problems else "clean")
        print(f"stopped by {result.stopped_by}: {how}")
    for problem in result.problems:
        print(f"  stop: {problem}")
    oms = result.runner.session.oms
    if oms.counters.journal_failures:  # a full disk: halted and told; the run still ended and closed
        print(f"journal: {oms.counters.journal_failures} write(s) failed, last: {oms.journal_error}")
        return max(result.exit_code, 1)
    return result.exit_code


def print_shutdown(report: GoneReport | None) -> None:
    """The shutdown's check by query, with every order still working listed."""
    if report is None:
        return
    print(report.headline())
    for survivor in report.survivors:
        print(f"  still working: {survivor}")


@dataclass(slots=True)
class ConfiguredSession:
    """A config's route, feed, notifications and engine, opened and reconciled; ``drive`` runs it."""

    config: Config
    clock: Clock
    end_ns: int
    session: LiveSession
    dispatcher: NotificationDispatcher
    runner: DayRunner
    control: EngineControl
    channel: ControlChannel
    clock_watch: ClockWatch | None = None  # host wall clock vs the engine's (LiveClock only)
    calendar_watch: CalendarWatch | None = None
    denials: DenialAlerts | None = None  # the risk gate's denials told to the operator
    problems: list[str] = field(default_factory=list)  # what the close could not do
    rejects: RejectAlerts | None = None  # broker rejects that will repeat, and blocked symbols, told

    async def drive(self, stop: asyncio.Event, done: Callable[[], bool] | None = None) -> None:
        """Until ``end_ns``, ``stop`` or ``done()``: on a SimClock by stepping it, else on the wall clock."""
        runner, session = self.runner, self.session

        def finished() -> bool:
            return done is not None and done() and not session.oms.working_orders()

        if isinstance(self.clock, SimClock):

            async def settle() -> None:
                for _ in range(3):
                    await asyncio.sleep(0)
                if session.day is not None:
                    await session.day.idle()  # a new day's start, before time moves on
                await runner.wait_idle()
                await session.oms.flush()
                await session.poll()
                if finished():
                    stop.set()

            await drive(self.clock, self.end_ns, settle, stop)
        else:
            while not stop.is_set() and self.clock.now_ns() < self.end_ns and not finished():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                await session.poll()
        await runner.wait_idle()

    async def close(
        self, *, stopping: str | None = None, hurry: asyncio.Event | None = None
    ) -> GoneReport | None:
        """Stop; with ``shutdown = "cancel"`` cancel what works and verify by query that it is gone (the
        orders still working are told to the operator and returned). ``stopping``: the signal that stops
        the run (journaled, meta ``stop``; notifications get ``STOP_NOTIFY_S``); ``hurry`` set: forced.
        Every step runs whatever failed before; what failed is in ``problems`` (told to the operator)."""
        if self.clock_watch is not None:
            self.clock_watch.stop()
        if self.calendar_watch is not None:
            self.calendar_watch.stop()
        try:
            await self.channel.stop()
        except Exception as exc:
            self.problems.append(f"control channel stop failed: {type(exc).__name__}: {exc}")
        record = {
            "ts": self.clock.now_ns(),
            "by": stopping or "end of run",
            "forced": bool(hurry and hurry.is_set()),
        }
        self.session.store.stage_meta("stop", to_json(record))  # how the last run ended, for the next one
        try:
            report = await self.session.close(cancel_working=self.config.shutdown == "cancel", hurry=hurry)
        except CloseIncomplete as exc:
            report = exc.report
            self.problems += exc.problems
        if self.denials is not None:
            self.denials.flush()
        if self.problems:
            self.dispatcher.post(
                error_notice("stop not clean", "; ".join(self.problems), account=self.config.account.id)
            )
        if self.rejects is not None:
            self.rejects.flush()
        if report is not None and not report.ok:
            self.dispatcher.post(
                error_notice(
                    "shutdown: orders still working", report.summary(), account=self.config.account.id
                )
            )
        if hurry is not None and hurry.is_set():
            await self.dispatcher.close(FORCED_NOTIFY_S)
        else:
            await self.dispatcher.close(STOP_NOTIFY_S if stopping else 30.0)
        return report


async def open_configured(
    config: Config,
    *,
    start: str = "08:30",
    until: str | None = None,
    speed: float | None = None,
    clock: Clock | None = None,
    gm_bridge: Any = None,
    calendar: TradingCalendar | None = None,
    route: Route | None = None,
) -> ConfiguredSession:
    """Open what ``config`` describes. A sim route runs its recorded day from ``start`` on a virtual
    clock (or a ``ScaledClock`` at ``speed``); live routes run on the wall clock. ``clock`` and
    ``calendar`` are for tests, and ``route`` (a broker that outlives the engine: a week of days on one
    simulated exchange). ``until`` is ``HH:MM`` today or ``YYYY-MM-DD HH:MM`` (a run across days). A
    calendar that refuses today stops it before anything connects."""
    calendar = calendar or calendar_for(config)
    market = load_sim_market(config) if config.route.kind == "sim" and route is None else None
    if clock is None:
        if market is not None:
            begin = shanghai_ns(market.trade_date, start)
            clock = ScaledClock(begin, speed) if speed else SimClock(begin)
        else:
            clock = LiveClock()
    today = trading_date_of(clock.now_ns())
    if until:
        end_ns = until_ns(today, until)
    else:
        end_ns = shanghai_ns(today, "15:30") if market is not None else 2**62
    try:  # resolving a secret can still fail here (an unset or short variable): name the file too
        channels = [notifier_from_settings(n.kind, n.settings, clock=clock) for n in config.notify]
    except ConfigError as exc:
        raise ConfigError(f"{config.path}: {exc}") from None
    settings = engine_settings(config, calendar)
    rules = settings.market_rules  # one dated table for the account, the engine and a sim route
    route = route or build_route(config, clock, calendar, market=market, gm_bridge=gm_bridge, rules=rules)
    # buys reserve the fees of the clock's day (its stamp duty and transfer fee), as the engine charges
    account = new_account(config.account.cash, settings.fees, RulesNow(rules, clock))
    dispatcher = NotificationDispatcher(channels, clock)
    dispatcher.start()
    # a step of the host's wall clock is told from the start (the connect wait included), never followed
    clock_watch = watch_clock_steps(clock, config.clock, dispatcher.post, account=config.account.id)
    calendar_watch = CalendarWatch(clock, calendar, dispatcher.post, account=config.account.id)
    try:
        calendar_watch.start()  # past the known range (refused): told, and nothing is connected
    except BaseException:
        if clock_watch is not None:
            clock_watch.stop()
        await dispatcher.close()
        raise

    def not_ready(failure: NotReady) -> None:
        # the first failure and the giving up are worth a message; the attempts between are logged
        if failure.attempt == 1 or failure.next_try_ns is None:
            dispatcher.post(not_ready_notice(failure, account=config.account.id))

    try:
        session = await open_live_session(
            clock=clock,
            adapter=route.adapter,
            feed=route.feed,
            store_path=config.store.path,
            account=account,
            settings=settings,
            calendar=calendar,
            trading_day_start_ns=shanghai_ns(today, "00:00"),
            synchronous=config.store.synchronous,
            stale_after_ns=int(config.stale_after_s * 1e9),
            resubscribe_after_ns=int(config.resubscribe_after_s * NS_PER_SECOND),
            connect_timeout_ns=int(config.connect_timeout_s * NS_PER_SECOND),
            on_not_ready=not_ready,
            on_alert=lambda title, body: dispatcher.post(
                error_notice(title, body, account=config.account.id)
            ),
            on_incident=lambda incident: dispatcher.post(
                error_notice(
                    "broker link",
                    f"link to the broker dropped ({incident.reason}); new orders are denied and the "
                    "algorithms paused until it is back and resynchronised",
                    account=config.account.id,
                )
            ),
        )
    except BaseException as exc:
        if isinstance(exc, JournalDamaged | JournalAccountMismatch):  # told, not only on the console
            dispatcher.post(error_notice("journal", str(exc), account=config.account.id))
        if clock_watch is not None:
            clock_watch.stop()
        calendar_watch.stop()
        stopped = isinstance(exc, asyncio.CancelledError)  # a signal during the start-up: within its bound
        await dispatcher.close(STOP_NOTIFY_S if stopped else 30.0)
        raise
    if not session.reconcile.ok:
        dispatcher.post(halt_notice("; ".join(session.reconcile.mismatches), account=config.account.id))
    _notify_stale_quotes(session, dispatcher, config)
    # the kill switch and the operator's commands (zhixing halt / resume / algo ...), a journaled halt
    # restored; polled on the wall clock (a replayed day has nobody to type them)
    control, channel = await install(
        oms=session.oms,
        store=session.store,
        algos=session.algos,
        risk=session.risk,
        on_alert=lambda title, body: dispatcher.post(error_notice(title, body, account=config.account.id)),
        on_halt_change=lambda reason, halted: dispatcher.post(
            halt_notice(reason, halted=halted, account=config.account.id)
        ),
        start_parents=session.start_parents,  # a script's start_parent (zhixing.connect while we run)
        watch=session.watch,  # a script's order subscribes its symbol
        instrument=session.engine.rules.instrument,  # and is sized on the day's lot grid
    )
    if not isinstance(clock, SimClock):
        channel.start()
    runner = DayRunner(config=config, session=session, notify=dispatcher.post)
    denials = DenialAlerts(session.oms.bus, clock, dispatcher.post, account=config.account.id).attach()
    rejects = RejectAlerts(session.oms.bus, clock, dispatcher.post, account=config.account.id)
    rejects.attach(session.risk)
    if session.day is not None:  # each new trading day starts in the running engine: its state afresh
        session.day.on_new_day += [runner.on_new_day, lambda _: denials.flush(), lambda _: rejects.flush()]
        session.day.watch()
    return ConfiguredSession(
        config,
        clock,
        end_ns,
        session,
        dispatcher,
        runner,
        control,
        channel,
        clock_watch=clock_watch,
        calendar_watch=calendar_watch,
        denials=denials,
        rejects=rejects,
    )


def engine_settings(config: Config, calendar: TradingCalendar | None = None) -> EngineSettings:
    """The engine's settings from a run's configuration (the composition root builds from these): the
    dated market rules with ``[market] status_file``'s statuses, new listings counted on ``calendar``."""
    return EngineSettings(
        account_id=config.account.id, risk=config.risk, market_rules=config.market.rules(calendar)
    )


def until_ns(today: date, until: str) -> int:
    """``--until``: ``HH:MM`` today, or ``YYYY-MM-DD HH:MM`` (a run across days)."""
    day_part, _, time_part = until.strip().rpartition(" ")
    if not day_part:
        return shanghai_ns(today, time_part)
    try:
        day = date.fromisoformat(day_part.strip())
    except ValueError:
        raise ParameterError(
            f"expected 'HH:MM' or 'YYYY-MM-DD HH:MM', got {until!r}", name="--until", value=until
        ) from None
    return shanghai_ns(day, time_part)


def _notify_stale_quotes(session: LiveSession, dispatcher: NotificationDispatcher, config: Config) -> None:
    """Tell the operator when a symbol's quotes stop (after the stale guard has paused its slicing); many
    at once (the whole feed) reach them as one digest."""
    guard = session.book.on_stale

    def on_stale(symbol: str) -> None:
        if guard is not None:
            guard(symbol)
        dispatcher.post(stale_feed_notice(symbol, config.stale_after_s, account=config.account.id))

    session.book.on_stale = on_stale


async def run_config(
    config: Config,
    *,
    start: str = "08:30",
    until: str | None = None,
    speed: float | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    gm_bridge: Any = None,
    calendar: TradingCalendar | None = None,
    on_open: Callable[[ConfiguredSession], None] | None = None,
    route: Route | None = None,
    watchdog: StopWatchdog | None = None,
) -> RunResult:
    """Run the day: fire the jobs on schedule until ``until``/the end of the day or a signal.

    ``on_open`` is called with the opened session before the first job (a replayed day has nobody at the
    keyboard: a test or a tool sets its operator's actions on the clock there). ``watchdog`` ends the
    process if a signal's stop overruns its bound (``zhixing run`` passes the process's)."""
    stop = stop or asyncio.Event()
    hurry = asyncio.Event()  # the second signal
    use_daemon_executor()  # a thread stuck in a call nobody can interrupt does not hold the exit
    opening: asyncio.Future[ConfiguredSession] | None = None
    opened: list[ConfiguredSession] = []

    def on_stop(signum: int) -> None:
        stop.set()
        if opening is not None and not opening.done():
            opening.cancel()  # the connect wait, the journal check: the start-up stops where it is
        for run in opened:
            run.runner.stop_jobs(f"stopped by {signals.name}")

    def on_force(signum: int) -> None:
        hurry.set()
        for run in opened:
            run.runner.force_stop()

    signals = LoopStop(bound_s=stop_bound_s(config), on_stop=on_stop, on_force=on_force, watchdog=watchdog)
    signals.install()
    try:
        opening = asyncio.ensure_future(
            open_configured(
                config,
                start=start,
                until=until,
                speed=speed,
                clock=clock,
                gm_bridge=gm_bridge,
                calendar=calendar,
                route=route,
            )
        )
        try:
            run = await opening
        except asyncio.CancelledError:
            if signals.signum is None:
                raise
            raise Stopped(signals.signum) from None  # nothing ran: exits 128 + signal
        opened.append(run)
        return await _run_opened(run, config, stop, hurry, signals, on_open)
    finally:
        signals.uninstall()


async def _run_opened(
    run: ConfiguredSession,
    config: Config,
    stop: asyncio.Event,
    hurry: asyncio.Event,
    signals: LoopStop,
    on_open: Callable[[ConfiguredSession], None] | None,
) -> RunResult:
    if on_open is not None:
        on_open(run)
    runner = run.runner
    jobs = {job.name: job for job in config.jobs}
    fired: list[tuple[str, int]] = []

    def on_fire(job: CronJob, scheduled_ns: int) -> None:
        fired.append((job.name, scheduled_ns))
        runner.on_fire(jobs[job.name], scheduled_ns)

    scheduler = Scheduler(
        run.clock,
        run.session.calendar,
        [CronJob(name=j.name, cron=j.cron) for j in config.jobs],
        on_fire=on_fire,
        on_missed=lambda job, when: runner.on_missed(jobs[job.name], when),
        # on the wall clock, notice a machine that slept through a window when it wakes
        watchdog_ns=None if isinstance(run.clock, SimClock) else 60 * NS_PER_SECOND,
    )
    try:
        scheduler.start()
        await run.drive(stop)
    finally:
        scheduler.stop()
        if signals.signum is not None:
            runner.stop_jobs(f"stopped by {signals.name}")  # one that started meanwhile
            await runner.wait_idle()  # each ends within its kill grace (the second signal: at once)
        runner.end_of_run()  # a rebalance still running is reported unfinished (and told) before the close
        shutdown = await run.close(stopping=signals.name, hurry=hurry)
    return RunResult(
        runner=runner,
        dispatcher=run.dispatcher,
        fired=fired,
        shutdown=shutdown,
        stopped_by=signals.name,
        forced=signals.forced,
        problems=run.problems + runner.unclean,
    )
