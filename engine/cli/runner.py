"""The jobs of ``zhixing run``: run the signal, execute its targets, send the day's summary, back up.

``DayRunner`` owns what happens when a scheduled job fires. It never lets a job failure reach the
trading path: a signal that exits non-zero, times out or cannot start is reported and nothing is
executed from it; an execute job whose targets file is invalid is reported and trades nothing; a
notification that cannot be sent is the notifier's problem, not the runner's.

On a ``SimClock`` (a replayed day) ``drive`` plays the role of the wall clock: it lets every task
finish what it can, then jumps to the next timer; jobs that wait on real work (a signal subprocess)
hold the clock still until they finish.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Final

import structlog

from zhixing.algos.rebalance import Rebalance
from zhixing.engine.child_processes import ProcessTree, start_tree
from zhixing.engine.cli.session import LiveSession
from zhixing.engine.clock import SimClock, host_wall_ns
from zhixing.engine.config import Config, JobConfig
from zhixing.engine.enums import Side
from zhixing.engine.errors import StoreError
from zhixing.engine.market import iso8601, trading_date_of
from zhixing.engine.notify import (
    Message,
    ParentResult,
    SignalLine,
    error_notice,
    execution_report,
    halt_notice,
    signal_summary,
)
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import Holding, MarketRef, Plan, plan_rebalance
from zhixing.engine.portfolio.targets import Target
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.store.backup import BackupError, backup_journal
from zhixing.engine.target_snapshots import read_todays_file, snapshot_to_trade, take_snapshot
from zhixing.engine.trading_day import DayStart, day_key, day_start_ns
from zhixing.engine.units import NS_PER_MINUTE, yuan_str

log = structlog.get_logger("zhixing.run")

Notify = Callable[[Message], None]  # the dispatcher's ``post``: never blocks, never raises
OUTPUT_TAIL = 4000  # characters of a signal's output kept for the summary
BACKUP_PAGES_PER_STEP = 256  # a backup looks whether the run is stopping after every step (1 MB at 4 KB)
BACKUP_ABORT_WAIT_S = 5.0  # a stopped backup's thread is waited for this long, then left to the process


@dataclass(slots=True)
class JobOutcome:
    """How a job of the day went. ``status`` is one of ``JOB_STATUSES``; only ``ok`` is success.

    An execute job is ``running`` from the moment its rebalance starts until the rebalance is over (both
    legs, also one whose sells ended during a halt and whose buys ran after the resume); then ``ok`` when
    every parent filled its quantity, ``halted`` when it ended unfilled while trading was halted,
    ``partial`` when something filled, ``failed`` when nothing did. A job still running at the summary or
    at shutdown is reported so, never ``ok``.
    """

    job: str
    kind: str
    scheduled_ns: int
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def label(self) -> str:
        """``ok``, or the status in capitals (what a reader must not miss)."""
        return "ok" if self.ok else self.status.upper()


JOB_STATUSES: Final = ("ok", "running", "partial", "halted", "failed", "missed")


@dataclass(slots=True)
class DayRunner:
    config: Config
    session: LiveSession
    notify: Notify
    outcomes: list[JobOutcome] = field(default_factory=list)
    missed: list[tuple[str, int]] = field(default_factory=list)
    rebalances: list[Rebalance] = field(default_factory=list)
    arrival: dict[str, int | None] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _running: list[tuple[JobOutcome, str, Rebalance]] = field(default_factory=list)  # execute jobs started
    denied_before_today: int = 0  # the OMS's denials counted before today's start (the summary's count)
    stopping: str | None = None  # why the run stops (a signal): no job starts, the running ones end
    unclean: list[str] = field(default_factory=list)  # what a stop could not do (a process tree survived)
    _trees: set[ProcessTree] = field(default_factory=set)  # signal scripts running

    # ------------------------------------------------------------------------------------- stopping
    def stop_jobs(self, reason: str) -> None:
        """The run stops: nothing new starts, every running job is cancelled (a signal script's process
        tree is ended: SIGTERM, ``kill_grace_s``, SIGKILL; a backup stops at its next step)."""
        self.stopping = reason
        for task in list(self._tasks):
            task.cancel(reason)

    def force_stop(self) -> None:
        """The second signal: process trees are killed now, not after their grace."""
        for tree in list(self._trees):
            tree.kill_now()

    # ------------------------------------------------------------------------------------- scheduling
    def on_fire(self, job: JobConfig, scheduled_ns: int) -> None:
        if self.stopping is not None:
            log.warning("job_not_started", job=job.name, why=self.stopping)
            return
        task = asyncio.get_running_loop().create_task(self.run_job(job, scheduled_ns), name=f"job:{job.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_missed(self, job: JobConfig, scheduled_ns: int) -> None:
        self.missed.append((job.name, scheduled_ns))
        detail = f"job {job.name} was due at {iso8601(scheduled_ns)} and did not run (started late or asleep)"
        self.outcomes.append(JobOutcome(job.name, job.kind, scheduled_ns, "missed", detail))
        log.warning("job_missed", job=job.name, scheduled=iso8601(scheduled_ns))
        self.notify(
            error_notice(f"schedule ({job.name})", detail + "; it is not made up later.", account=self._acct)
        )

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def on_new_day(self, started: DayStart) -> None:
        """A new trading day started in the running engine: yesterday's rebalances still running are told
        unfinished, and the day's state (outcomes, rebalances, arrival prices, counts) starts afresh."""
        self.end_of_run()
        self.outcomes.clear()
        self.missed.clear()
        self.rebalances.clear()
        self.arrival.clear()
        self._running.clear()
        self.denied_before_today = self.session.oms.counters.denied

    async def run_job(self, job: JobConfig, scheduled_ns: int) -> None:
        log.info("job_started", job=job.name, kind=job.kind)
        day = self.session.day
        if day is not None:  # the day's start comes first (a machine that slept past midnight)
            try:
                await day.ensure(trading_date_of(self.session.clock.now_ns()))
            except Exception as exc:
                detail = f"the trading day could not be started: {type(exc).__name__}: {exc}"
                self.outcomes.append(JobOutcome(job.name, job.kind, scheduled_ns, "failed", detail))
                self.notify(error_notice(f"job {job.name}", detail, account=self._acct))
                return
        outcome = JobOutcome(job.name, job.kind, scheduled_ns, "running", "started")
        self.outcomes.append(outcome)  # in the order the jobs started; a summary sees what still runs
        try:
            if job.kind == "signal":
                ok, detail = await self.run_signal(job)
            elif job.kind == "execute":
                ok, detail = await self.run_execute(job, outcome)
            elif job.kind == "backup":
                ok, detail = await self.run_backup(job)
            else:
                ok, detail = self.run_summary(job)
        except Exception as exc:  # a job failure is reported, never allowed to take the process down
            log.exception("job_failed", job=job.name)
            ok, detail = False, f"{type(exc).__name__}: {exc}"
            self.notify(error_notice(f"job {job.name}", detail, account=self._acct))
        except asyncio.CancelledError:  # the run stops: reported for what it is, never ok
            detail = f"{self.stopping or 'cancelled'} before it finished"
            if outcome.status == "running":
                outcome.status, outcome.detail = "failed", detail
            log.warning("job_stopped", job=job.name, why=detail)
            self.notify(error_notice(f"job {job.name}", detail, account=self._acct))
            raise
        if outcome.status == "running" and not (ok and job.kind == "execute"):
            outcome.status, outcome.detail = ("ok" if ok else "failed"), detail
        log.info("job_finished", job=job.name, status=outcome.status)

    # ------------------------------------------------------------------------------------- signal
    async def run_signal(self, job: JobConfig) -> tuple[bool, str]:
        started = host_wall_ns(self.session.clock)  # compared with the file's mtime: the host's time
        try:  # its own process group (job object): ended with everything it started
            tree = await start_tree(
                *job.command,
                cwd=str(self.config.path.parent),
                env=signal_environment(self.session.clock.now_ns()),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            detail = f"could not start {job.command[0]!r}: {exc.strerror or exc}"
            self.notify(error_notice(f"signal {job.name}", detail, account=self._acct))
            return False, detail
        proc = tree.proc
        self._trees.add(tree)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), job.timeout_s)
        except TimeoutError:
            await self._end_tree(job, tree)
            detail = f"timed out after {job.timeout_s:g} s and was killed (with the processes it started)"
            self.notify(error_notice(f"signal {job.name}", detail, account=self._acct))
            return False, detail
        except asyncio.CancelledError:
            await self._end_tree(job, tree)
            raise
        finally:
            self._trees.discard(tree)
        if tree.alive():  # the script exited, something it started did not: not left behind
            await self._end_tree(job, tree)
        tree.close()
        stdout = out.decode("utf-8", errors="replace")[-OUTPUT_TAIL:]
        stderr = err.decode("utf-8", errors="replace")[-OUTPUT_TAIL:]
        if proc.returncode != 0:
            detail = f"exited with code {proc.returncode}"
            self.notify(
                error_notice(f"signal {job.name}", f"{detail}\n\nstderr:\n{stderr}", account=self._acct)
            )
            return False, detail
        lines: list[SignalLine] = []
        notes = [f"output:\n{stdout or '(none)'}"]
        for execute in (j for j in self.config.jobs if j.kind == "execute" and j.targets is not None):
            assert execute.targets is not None
            try:  # journaled for the execute job, which trades this snapshot and nothing else
                session = self.session
                snapshot = await take_snapshot(
                    session.store,
                    session.clock,
                    session.calendar,
                    signal_job=job.name,
                    job=execute.name,
                    path=execute.targets,
                    signal_started_ns=started,
                )
                plan = await self.plan_targets(snapshot)
            except Exception as exc:  # the summary says so; the execute job will refuse it too
                notes.append(f"targets for {execute.name} are not usable: {exc}")
                continue
            lines += [
                SignalLine(symbol=r.symbol, current=r.current, target=r.current + r.difference, note=r.reason)
                for r in plan.rows
            ]
            notes.append(f"plan for {execute.name} ({execute.targets}):\n{plan.table()}")
        message = signal_summary(job.name, lines, account=self._acct)
        self.notify(replace(message, body=message.body + "\n\n" + "\n\n".join(notes)))
        return True, "exit 0"

    async def _end_tree(self, job: JobConfig, tree: ProcessTree) -> None:
        if not await tree.end(job.kill_grace_s):
            self.unclean.append(f"signal {job.name}: processes of pid {tree.pid} survived SIGKILL")

    # ------------------------------------------------------------------------------------- execute
    def holdings(self) -> list[Holding]:
        return [
            Holding(symbol=s, quantity=p.quantity, sellable=p.sellable)
            for s, p in sorted(self.session.account.positions.items())
            if p.quantity > 0
        ]

    async def plan(self, job: JobConfig) -> Plan:
        """What ``job`` trades (``engine.target_snapshots``): the signal run's snapshot when the config has a
        signal job, else the file as it is now; refused unless it is today's and unchanged."""
        assert job.targets is not None
        session = self.session
        if any(j.kind == "signal" for j in self.config.jobs):
            targets = await snapshot_to_trade(
                session.store, session.clock, session.calendar, job=job.name, path=job.targets
            )
        else:
            targets = read_todays_file(session.clock, session.calendar, job.targets)
        return await self.plan_targets(targets)

    async def plan_targets(
        self, targets: list[Target], *, min_trade_value: int = 0, liquidate_unlisted: bool = True
    ) -> Plan:
        """The rebalance from the account's holdings to ``targets`` at the feed's reference prices."""
        account = self.session.account
        holdings = self.holdings()
        symbols = sorted({t.symbol for t in targets} | {h.symbol for h in holdings})
        refs = {s: await self.reference(s) for s in symbols}
        engine = self.session.engine
        return plan_rebalance(  # the day's stamp duty, transfer fee, lots and bands
            targets=targets,
            holdings=holdings,
            cash=account.available_cash,
            market=refs,
            fees=engine.fees_today(),
            min_trade_value=min_trade_value,
            liquidate_unlisted=liquidate_unlisted,
            instrument=engine.rules.instrument,
        )

    async def reference(self, symbol: str) -> MarketRef:
        ref = await self.session.feed.reference(symbol)
        quote = self.session.book.latest(symbol)
        price = (quote.last or quote.mid or 0) if quote is not None else 0
        if price <= 0:
            price = ref.last or (
                (ref.bid_price + ref.ask_price) // 2 if ref.bid_price and ref.ask_price else 0
            )
        return MarketRef(
            symbol=symbol,
            price=price or ref.prev_close,
            prev_close=ref.prev_close,
            high_limit=ref.high_limit,
            low_limit=ref.low_limit,
            suspended=ref.suspended,
        )

    async def run_execute(self, job: JobConfig, outcome: JobOutcome | None = None) -> tuple[bool, str]:
        """Start the job's rebalance; ``outcome`` stays ``running`` until the rebalance is over."""
        session = self.session
        if session.oms.halted_reason is not None:
            detail = f"not executed: trading is halted ({session.oms.halted_reason})"
            self.notify(
                halt_notice(f"{job.name} not executed: {session.oms.halted_reason}", account=self._acct)
            )
            return False, detail
        try:
            plan = await self.plan(job)
        except Exception as exc:
            detail = f"targets refused, nothing traded: {exc}"
            self.notify(error_notice(f"job {job.name}", detail, account=self._acct))
            return False, detail
        now = session.clock.now_ns()
        detail = (
            f"{len(plan.sells())} sells, {len(plan.buys())} buys over {job.window_minutes} min ({job.algo})"
        )
        if outcome is not None:
            outcome.detail = f"{detail}: running"
        await self.execute_plan(
            plan,
            name=job.name,
            end_ns=now + job.window_minutes * NS_PER_MINUTE,
            algo=job.algo,
            params=job.params,
            on_done=None if outcome is None else partial(self._rebalance_over, outcome, detail),
        )
        if outcome is not None:
            self._running.append((outcome, detail, self.rebalances[-1]))
        return True, detail

    def end_of_run(self) -> None:
        """The run ends (shutdown, end of day) with rebalances still running: each is reported for what it
        achieved and as unfinished, never ``ok``."""
        for outcome, detail, rebalance in self._running:
            if outcome.status == "running":
                self._rebalance_over(outcome, detail, rebalance, unfinished=True)

    def _rebalance_over(
        self, outcome: JobOutcome, detail: str, rebalance: Rebalance, *, unfinished: bool = False
    ) -> None:
        """Both legs are over (or the run ended first): what the job achieved, told unless complete."""
        results = [r for r in self.results() if any(p.parent_id == r.parent_id for p in rebalance.parents)]
        # judged against the plan, not the parents: a buy the confirmed cash shrank or dropped (a sell
        # that filled below its reference) did not do the job's work, even if every parent filled
        planned = [row for row in rebalance.plan.rows if row.side is not None and row.quantity > 0]
        done: dict[tuple[str, str], int] = {}
        for r in results:
            done[(r.symbol, r.side.value)] = done.get((r.symbol, r.side.value), 0) + r.filled
        short = [
            f"{row.symbol} {row.side.value} {done.get((row.symbol, row.side.value), 0)}/{row.quantity}"
            f" ({self._row_reason(results, row.symbol, row.side)})"
            for row in planned
            if row.side is not None and done.get((row.symbol, row.side.value), 0) < row.quantity
        ]
        complete = len(planned) - len(short)
        filled = sum(r.filled for r in results)
        halted = self.session.oms.halted_reason
        if not short and not unfinished:
            status = "ok"
        elif halted is not None:
            status = "halted"
        elif filled:
            status = "partial"
        else:
            status = "failed"
        unfilled = short
        text = f"{detail}: {complete}/{len(planned)} planned trades complete"
        if unfilled:
            more = f" and {len(unfilled) - 10} more" if len(unfilled) > 10 else ""
            text += f"; unfilled {', '.join(unfilled[:10])}{more}"
        if status == "halted":
            text += f"; halted ({halted})"
        outcome.status, outcome.detail = status, text
        if unfinished:
            outcome.detail += "; not finished when the run ended"
        log.info("rebalance_over", job=outcome.job, status=status, complete=complete, parents=len(results))
        if status != "ok":
            self.notify(error_notice(f"job {outcome.job} ended {status}", outcome.detail, account=self._acct))

    @staticmethod
    def _row_reason(results: list[ParentResult], symbol: str, side: Side) -> str:
        """Why a planned trade is short: its parents' reasons, or ``cash`` when the buy leg sized it down
        (or out) to the cash the sells confirmed and its parent filled what it was given."""
        reasons = sorted(
            {
                r.unfilled_reason
                for r in results
                if r.symbol == symbol and r.side is side and r.unfilled_reason
            }
        )
        return "; ".join(reasons) or str(Unfilled(UnfilledCode.CASH))

    async def execute_plan(
        self,
        plan: Plan,
        *,
        name: str,
        end_ns: int,
        algo: str = "twap",
        params: dict[str, str] | None = None,
        sell_end_ns: int | None = None,
        on_done: Callable[[Rebalance], None] | None = None,
    ) -> Rebalance:
        """Start ``plan`` now: sells first, then buys sized from the confirmed cash, until ``end_ns``."""
        session = self.session
        now = session.clock.now_ns()
        symbols = sorted({r.symbol for r in plan.rows if r.quantity > 0} - session.symbols)
        if symbols:
            await session.feed.subscribe(symbols)
            session.book.watch(symbols)
            session.symbols.update(symbols)
        prefix = await self.rebalance_prefix(name, now)
        rebalance = Rebalance(
            session.ctx,
            plan,
            account=session.account,
            start_ns=now,
            end_ns=end_ns,
            sell_end_ns=sell_end_ns,
            algo=algo,
            params=params,
            fees=session.engine.fees_today(),  # the buy leg is sized at the day's rates
            instrument=session.engine.rules.instrument,
            id_prefix=prefix,
            on_parent=partial(self._on_parent, session),
            on_done=None if on_done is None else (lambda: on_done(rebalance)),
        )
        self.rebalances.append(rebalance)
        session.engine.add_basket(rebalance.basket)  # in the directory, journaled with every commit
        rebalance.start()
        await session.store.commit()
        return rebalance

    async def rebalance_prefix(self, name: str, now_ns: int) -> str:
        """``20211201-rebalance-2-``: the trading day, the job, and the number of this job's rebalance
        that day, one past every parent of the day the journal or the session already has (a restart
        on the same day numbers on, never re-using a resumed parent's id)."""
        lead = f"{day_key(trading_date_of(now_ns))}-{name}-"
        known = {str(row["parent_id"]) for row in await self.session.store.load_parents()}
        known.update(self.session.algos)
        used = [0]
        for parent_id in known:
            if parent_id.startswith(lead):
                number = parent_id[len(lead) :].split("-", 1)[0]
                if number.isdigit():
                    used.append(int(number))
        return f"{lead}{max(used) + 1}-"

    def _on_parent(self, session: LiveSession, parent: ParentOrder) -> None:
        parent.created_ns = session.clock.now_ns()
        session.store.stage_parent(parent.to_row())
        quote = session.book.latest(parent.symbol)
        self.arrival[parent.parent_id] = None if quote is None else (quote.mid or quote.last or None)

    # ------------------------------------------------------------------------------------- backup
    async def run_backup(self, job: JobConfig) -> tuple[bool, str]:
        """The journal, copied while the engine runs, with the day's trade log, into ``[backup] dir``."""
        settings = self.config.backup
        if settings is None:  # the config loader refuses a backup job without [backup]
            return False, "no [backup] table"
        session = self.session
        await session.oms.flush()  # what is staged is in the file, hence in the copy
        now = session.clock.now_ns()
        abort = threading.Event()

        def check_abort(status: int, remaining: int, total: int) -> None:
            if abort.is_set():  # raised inside the copy: it stops, cleans up, replaces nothing
                raise BackupError(f"{session.store.path}: backup stopped ({self.stopping}); nothing replaced")

        copy = asyncio.ensure_future(
            asyncio.to_thread(
                backup_journal,
                session.store.path,
                settings.dir,
                day=trading_date_of(now),
                now_ns=now,
                keep=settings.keep_days,
                pages=BACKUP_PAGES_PER_STEP,
                on_step=check_abort,
            )
        )
        copy.add_done_callback(lambda done: done.cancelled() or done.exception())  # read by the await
        try:
            result = await asyncio.shield(copy)
        except asyncio.CancelledError:  # the run stops: the copy stops at its next step
            abort.set()
            await asyncio.wait([copy], timeout=BACKUP_ABORT_WAIT_S)  # stuck past that: left (daemon)
            if not copy.done():
                log.warning("backup_left_running", folder=str(settings.dir))
            raise
        except (StoreError, OSError) as exc:
            detail = f"backup failed: {exc}"
            self.notify(error_notice(f"job {job.name}", detail, account=self._acct))
            return False, detail
        log.info("journal_backed_up", folder=str(result.folder), orders=result.orders, fills=result.fills)
        return (
            True,
            f"journal and trade log in {result.folder} ({result.orders} orders, {result.fills} fills)",
        )

    # ------------------------------------------------------------------------------------- summary
    @property
    def _acct(self) -> str:
        return self.config.account.id

    def parents(self) -> list[ParentOrder]:
        """Today's parents: this run's rebalances since the day started, and the resumed ones of today."""
        day = self.session.day
        start = day_start_ns(day.day) if day is not None and day.day is not None else 0
        return [p for r in self.rebalances for p in r.parents] + [
            a.parent for a in self.session.basket.algos.values() if a.parent.created_ns >= start
        ]

    def unfilled_reason(self, parent_id: str) -> str:
        """Why a parent of today is short: its algorithm's typed reason (``ExecAlgo.unfilled``), the same
        text replay and paper report; for a parent no algorithm of this run holds, its children's reasons."""
        for basket in [r.basket for r in self.rebalances] + [self.session.basket]:
            algo = basket.algos.get(parent_id)
            if algo is not None:
                return algo.unfilled_reason
        children = self.session.oms.children_of(parent_id)
        return "; ".join(sorted({c.reason for c in children if c.reason}))

    def results(self) -> list[ParentResult]:
        out = []
        for parent in self.parents():
            children = self.session.oms.children_of(parent.parent_id)
            filled = sum(c.filled_quantity for c in children)
            value = sum(c.filled_value for c in children)
            reason = self.unfilled_reason(parent.parent_id) if filled < parent.quantity else ""
            out.append(
                ParentResult(
                    parent_id=parent.parent_id,
                    symbol=parent.symbol,
                    side=parent.side,
                    quantity=parent.quantity,
                    filled=filled,
                    avg_price=value // filled if filled else None,
                    arrival_price=self.arrival.get(parent.parent_id),
                    unfilled_reason=reason or ("running" if filled < parent.quantity else ""),
                )
            )
        return out

    def run_summary(self, job: JobConfig) -> tuple[bool, str]:
        results = self.results()
        message = execution_report(results, account=self._acct)
        lines = ["", "jobs today:"]
        for o in self.outcomes:
            lines.append(f"  {o.job} ({o.kind}) at {iso8601(o.scheduled_ns)}: {o.label} {o.detail}")
        account = self.session.account
        lines += [
            "",
            f"cash {yuan_str(account.cash)}, frozen {yuan_str(account.frozen)}",
            f"orders denied by checks: {self.session.oms.counters.denied - self.denied_before_today}",
        ]
        self.notify(replace(message, body=message.body + "\n" + "\n".join(lines)))
        return True, f"{len(results)} parents reported"


def signal_environment(now_ns: int) -> dict[str, str]:
    """The signal's environment: the host's, plus the trading day the engine clock is on
    (``ZHIXING_TRADING_DAY=2021-12-01``), so a signal never dates its targets by the host's clock."""
    return {**os.environ, "ZHIXING_TRADING_DAY": trading_date_of(now_ns).isoformat()}


async def drive(clock: SimClock, until_ns: int, settle: Callable[[], object], stop: asyncio.Event) -> None:
    """Run a ``SimClock`` as if it were the wall clock: settle, then jump to the next timer."""
    while not stop.is_set():
        result = settle()
        if asyncio.iscoroutine(result):
            await result
        if not clock.step(until_ns=until_ns):
            break
