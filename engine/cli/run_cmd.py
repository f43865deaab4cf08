"""``zhixing run CONFIG``: the long-running process of a trading day, driven by one config file.

It takes the single-instance lock on the journal, connects the route and the feed, reconciles, and then
fires the configured jobs (signal, execute, summary) on their cron times in Asia/Shanghai, only on
trading days. SIGINT or SIGTERM stops it cleanly: algorithms stop, working orders are cancelled or left
per ``shutdown``, notifications are flushed, the journal is closed.

With ``route.kind = "sim"`` the day is the recorded one and, unless ``--speed`` is given, it runs on a
virtual clock as fast as the work allows (what the tests use); live routes run on the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from adapters.notify.factory import notifier_from_settings
from engine.account import Account
from engine.calendar_guard import CalendarWatch, calendar_for
from engine.cancels import GoneReport
from engine.cli.routes import build_route, load_sim_market, run_route
from engine.cli.runner import DayRunner, drive
from engine.cli.session import LiveSession, open_live_session
from engine.clock import Clock, LiveClock, ScaledClock, SimClock
from engine.clock_watch import ClockWatch, watch_clock_steps
from engine.config import ROUTES, Config, load_config
from engine.control import ControlChannel, EngineControl, install
from engine.denial_alerts import DenialAlerts
from engine.instance_lock import InstanceLock
from engine.market import FeeSchedule, TradingCalendar, instrument_for, shanghai_ns, trading_date_of
from engine.notify import (
    NotificationDispatcher,
    error_notice,
    halt_notice,
    not_ready_notice,
    stale_feed_notice,
)
from engine.readiness import NotReady
from engine.risk_controls import RiskLimits
from engine.schedule import CronJob, Scheduler
from engine.store.integrity import JournalDamaged
from engine.units import NS_PER_SECOND

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
        "--until", help="stop at HH:MM Asia/Shanghai (sim route default 15:30; live: until signalled)"
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


def run_command(args: argparse.Namespace) -> int:
    config = load_config(args.config, adapter=args.adapter)
    config.store.path.parent.mkdir(parents=True, exist_ok=True)
    with InstanceLock.for_store(config.store.path):
        result = run_route(
            config,
            lambda bridge: run_config(
                config, start=args.start, until=args.until, speed=args.speed, gm_bridge=bridge
            ),
        )
    failed = [o for o in result.runner.outcomes if not o.ok]
    for outcome in result.runner.outcomes:
        print(f"{outcome.job} ({outcome.kind}): {outcome.label} {outcome.detail}")
    print_shutdown(result.shutdown)
    oms = result.runner.session.oms
    if oms.counters.journal_failures:  # a full disk: halted and told; the run still ended and closed
        print(f"journal: {oms.counters.journal_failures} write(s) failed, last: {oms.journal_error}")
    return (
        1
        if failed or oms.counters.journal_failures or (result.shutdown is not None and not result.shutdown.ok)
        else 0
    )


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

    async def drive(self, stop: asyncio.Event, done: Callable[[], bool] | None = None) -> None:
        """Until ``end_ns``, ``stop`` or ``done()``: on a SimClock by stepping it, else on the wall clock."""
        runner, session = self.runner, self.session

        def finished() -> bool:
            return done is not None and done() and not session.oms.working_orders()

        if isinstance(self.clock, SimClock):

            async def settle() -> None:
                for _ in range(3):
                    await asyncio.sleep(0)
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

    async def close(self) -> GoneReport | None:
        """Stop; with ``shutdown = "cancel"`` cancel what works and verify by query that it is gone (the
        orders still working are told to the operator and returned)."""
        if self.clock_watch is not None:
            self.clock_watch.stop()
        if self.calendar_watch is not None:
            self.calendar_watch.stop()
        await self.channel.stop()
        report = await self.session.close(cancel_working=self.config.shutdown == "cancel")
        if self.denials is not None:
            self.denials.flush()
        if report is not None and not report.ok:
            self.dispatcher.post(
                error_notice(
                    "shutdown: orders still working", report.summary(), account=self.config.account.id
                )
            )
        await self.dispatcher.close()
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
) -> ConfiguredSession:
    """Open what ``config`` describes. A sim route runs its recorded day from ``start`` on a virtual
    clock (or a ``ScaledClock`` at ``speed``); live routes run on the wall clock. ``clock`` and
    ``calendar`` are for tests. A calendar that refuses today stops it before anything connects."""
    calendar = calendar or calendar_for(config)
    market = load_sim_market(config) if config.route.kind == "sim" else None
    if clock is None:
        if market is not None:
            begin = shanghai_ns(market.trade_date, start)
            clock = ScaledClock(begin, speed) if speed else SimClock(begin)
        else:
            clock = LiveClock()
    today = trading_date_of(clock.now_ns())
    if until:
        end_ns = shanghai_ns(today, until)
    else:
        end_ns = shanghai_ns(today, "15:30") if market is not None else 2**62
    route = build_route(config, clock, calendar, market=market, gm_bridge=gm_bridge)
    fees = FeeSchedule()
    account = Account(
        config.account.cash, lambda sym, side, px, qty: sum(fees.fees(instrument_for(sym), side, px, qty))
    )
    channels = [notifier_from_settings(n.kind, n.settings, clock=clock) for n in config.notify]
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
            calendar=calendar,
            trading_day_start_ns=shanghai_ns(today, "00:00"),
            synchronous=config.store.synchronous,
            stale_after_ns=int(config.stale_after_s * 1e9),
            resubscribe_after_ns=int(config.resubscribe_after_s * NS_PER_SECOND),
            connect_timeout_ns=int(config.connect_timeout_s * NS_PER_SECOND),
            on_not_ready=not_ready,
            risk_limits=RiskLimits.from_config(config.risk, str(config.path)),
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
        if isinstance(exc, JournalDamaged):  # the operator is told, not only the console
            dispatcher.post(error_notice("journal", str(exc), account=config.account.id))
        if clock_watch is not None:
            clock_watch.stop()
        calendar_watch.stop()
        await dispatcher.close()
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
        account=session.account,
        account_id=config.account.id,
        on_alert=lambda title, body: dispatcher.post(error_notice(title, body, account=config.account.id)),
        on_halt_change=lambda reason, halted: dispatcher.post(
            halt_notice(reason, halted=halted, account=config.account.id)
        ),
    )
    if not isinstance(clock, SimClock):
        channel.start()
    runner = DayRunner(config=config, session=session, notify=dispatcher.post)
    denials = DenialAlerts(session.oms.bus, clock, dispatcher.post, account=config.account.id).attach()
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
    )


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
) -> RunResult:
    """Run the day: fire the jobs on schedule until ``until``/the end of the day or a signal.

    ``on_open`` is called with the opened session before the first job (a replayed day has nobody at the
    keyboard: a test or a tool sets its operator's actions on the clock there)."""
    stop = stop or asyncio.Event()
    run = await open_configured(
        config, start=start, until=until, speed=speed, clock=clock, gm_bridge=gm_bridge, calendar=calendar
    )
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
    loop = asyncio.get_running_loop()
    try:
        scheduler.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows / not main thread
                loop.add_signal_handler(sig, stop.set)
        await run.drive(stop)
    finally:
        scheduler.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        runner.end_of_run()  # a rebalance still running is reported unfinished (and told) before the close
        shutdown = await run.close()
    return RunResult(runner=runner, dispatcher=run.dispatcher, fired=fired, shutdown=shutdown)
