"""The seeded chaos suite: a multi-symbol TWAP basket on real data through a fault-injecting wire.

For each seed, one ``FaultPlan`` (drop acks, duplicate fills, delay and reorder events, broker rejects,
dropped reject callbacks, venue cancel rejects, cancel confirmations ahead of their fill rows, and 0-3
link outages of 1-60 s: ``outage_plan``) sits
between the engine and the simulated exchange; the engine's ``ConnectionMonitor`` pauses the basket,
denies new orders and resynchronises before resuming (``replay.faults.LinkedRun``). The engine crashes
and restarts at seeded instants (``crash_plan``): the session stops as a crash would, the engine's
timers die, the exchange runs on alone through a seeded downtime (what it pushes meanwhile is lost), then
a new engine on the same exchange reopens the journal, reconciles (``engine.reconcile.recover``) and
resumes the basket from the journaled algorithm states (``replay.recovery``). About a third of the
restarts find the broker link down (``restart_outage``: it dropped while the engine was dead and comes
back 1-60 s after the restart): the new engine waits for the broker to answer
(``engine.readiness.wait_until_ready``, backoff on the virtual clock while the exchange runs on) before
it reconciles anything. The host's wall clock steps (``clock_step_plan``: 0-3 steps of ±3 s to ±9 h, half of
them corrected later): the engine's algorithms run on a clock anchored as a ``LiveClock`` is (wall time at
the start, moved on by the virtual monotonic time), and a ``ClockWatch`` must tell each step exactly once;
the books must be those of the same seed with zero-size steps (``clock_steps=False``). After the day, the
books are checked against the exchange's (RELIABILITY invariants):

- **I1** each client order id maps to at most one exchange order, and every exchange order is ours;
- **I2** for every order, the engine's filled quantity equals the exchange's and never exceeds the order;
  every parent's children together never exceed the parent;
- **I3** the engine's positions equal the exchange's;
- **I4** every order the engine journaled ended resolved (terminal), none lost;
- algorithm progress: each algorithm's filled quantity equals its children's (nothing lost across a
  restart) and never exceeds its parent; no child was refused as a resend of a known client order id;
  every restart reconciled without a mismatch;
- every link outage ended with the engine resynchronised and trading resumed (or, for one that spanned a
  restart, with the restart waiting for the link); no child was handed to the adapter while the monitor
  knew the link was down;
- every step of the host's wall clock was told once by the running engine's clock watch;
- a symbol suspended mid-run (``suspension_plan``: the broker rejects its every order from then on, with
  the suspension's reason) got at most one rejected child per engine process, and its parent ended
  stopped with that reason.

A failing seed is printed with its figures and replays exactly from the seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zhixing.algos.basket import Basket
from zhixing.engine.clock_watch import ClockWatch
from zhixing.engine.connection import ConnectionIncident, Pausable
from zhixing.engine.enums import Side
from zhixing.engine.errors import BrokerDisconnected
from zhixing.engine.events import OrderStatusReport, OrderSubmitted, PositionReport
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.readiness import wait_until_ready
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.data import MarketData
from zhixing.replay.faults import (
    FAULTS,
    SUSPENDED_REASON,
    FaultPlan,
    FaultyAdapter,
    LinkedRun,
    SteppedWall,
    WallStep,
)
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session
from zhixing.replay.recovery import (
    ProcessClock,
    crash,
    restart_session,
    resume,
    run_exchange_alone,
    use_process_clock,
)

CHAOS_FAULTS = (*FAULTS, "crash_restart", "restart_in_outage", "clock_step")
RESTART_LINK_TIMEOUT_NS = 600 * NS_PER_SECOND  # how long a restart waits for the broker (as `zhixing run`)
SLICE_NS = 30 * NS_PER_SECOND  # the basket's TWAP interval
CLOCK_CHECK_NS = NS_PER_SECOND  # the clock watch's interval and threshold: the [clock] defaults
CLOCK_ALERT_NS = 2 * NS_PER_SECOND
_STEP_SIZES_S = (3, 7, 30, 90, 600, 1_800, 3_600, 3 * 3_600, 9 * 3_600)
_RESTART_WAIT_NS = 150 * NS_PER_SECOND  # a restart may wait this long for the link (restart_in_outage)
WallTimer = Callable[[], int]
"""A monotonic ns counter for the wall time of a recovery (the CLI passes ``time.perf_counter_ns``; the
suite itself never reads wall time, so its figures stay a pure function of the seed)."""


@dataclass(slots=True, frozen=True)
class Recovery:
    """One crash and restart: when, how long down, what reconciliation found, how long it took."""

    crash_ns: int
    in_flush: bool
    downtime_ns: int
    virtual_ns: int  # restart -> reconciled and resumed, on the virtual clock
    settle_ns: int  # restart -> nothing in flight any more (virtual)
    wall_ns: int  # recover() + resume, wall time (0 unless a WallTimer was given)
    engine_timers_killed: int
    link_wait_ns: int  # restart -> the broker answered (virtual; 0 unless the link was down)
    link_attempts: int  # queries until it answered (1: at once)
    rebuilt: int
    adopted: int
    fills_applied: int
    never_sent: int
    pending: int  # unknown to the broker yet, sent within the grace: left to the in-flight checks
    mismatches: int


@dataclass(slots=True)
class LinkFigures:
    """The link outages of one seed, as the engine's monitors saw them."""

    incidents: int = 0
    resumed: int = 0  # incidents that ended resynchronised with trading resumed
    reconnect_to_resumed_ns: list[int] = field(default_factory=list)  # virtual
    outage_ns: list[int] = field(default_factory=list)
    algos_paused: int = 0
    algos_resumed: int = 0
    orders_denied: int = 0  # new orders denied locally (broker_disconnected)
    cancels_refused: int = 0  # cancels the dead link refused
    cancels_resent: int = 0  # ... sent again after the resync (the others were done meanwhile)
    orders_adopted: int = 0  # open orders that took the broker's truth at a resync
    fills_applied_by_resync: int = 0
    events_lost: int = 0  # pushed by the broker while the link was down
    fills_repushed: int = 0  # the day's trades re-pushed at reconnects (deduplicated by trade id)
    submits_refused_by_adapter: int = 0  # handed over in the instant the link dropped: REJECTED, not sent
    sent_while_down: int = 0  # children handed to the adapter while the monitor knew it down (must be 0)
    inside_restart_wait: int = 0  # outages that began and ended while no engine ran or it waited at start


@dataclass(slots=True)
class BrokerViewFigures:
    """Stale answers and lost cancels of one seed, as the engines handled them (``engine.freshness``,
    ``engine.cancels``)."""

    differences_seen: int = 0  # differences between an answer and the books, after the merge
    differences_settled: int = 0  # ... that an answer asked for again settled
    differences_persisted: int = 0  # ... that persisted (each halted trading: must be 0 here)
    requeries: int = 0  # orders / position sets asked again by the in-flight checks
    reconcile_requeries: int = 0  # answers a restart's reconciliation asked for again
    cancels_failed: int = 0  # cancels that came back without effect while the order worked
    cancels_resent: int = 0  # ... sent again on the backoff
    cancels_escalated: int = 0  # ... given up on and told to the operator
    cancels_unanswered: int = 0  # cancel_not_found that never answered (the rest: "not found")


@dataclass(slots=True)
class SeedOutcome:
    seed: int
    injected: dict[str, int]
    orders: int
    fills: int
    lost_orders: int
    duplicate_orders: int
    order_overfills: int
    parent_overfills: int
    fill_mismatches: int
    position_mismatches: int
    unresolved: int
    duplicate_fills_ignored: int
    unacked_resolved_by_fills: int
    inflight_resolved_by_query: int = 0
    inflight_resolved_by_policy: int = 0
    recoveries: list[Recovery] = field(default_factory=list)
    link: LinkFigures = field(default_factory=LinkFigures)
    broker_view: BrokerViewFigures = field(default_factory=BrokerViewFigures)
    algo_mismatches: int = 0
    resends_refused: int = 0
    clock_steps_injected: int = 0  # steps of the host's wall clock (a correction is a step too)
    clock_steps_reported: int = 0  # ... told by the running engine's clock watch
    ends_held: int = 0  # ends the engine held until their fill rows were in (engine.held_ends)
    fills_after_end: int = 0  # fills applied to an order already ended (must be 0)
    books_digest: str = (
        ""  # the final orders (state, size, price, filled) and positions: equal books, equal digest
    )
    problems: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return not self.problems


def fault_plan(seed: int) -> FaultPlan:
    """The fault mix of one seed: the seed also picks how hostile the wire is."""
    rng = random.Random(seed * 7919 + 1)
    plan = FaultPlan(
        seed=seed,
        drop_ack=rng.choice((0.0, 0.05, 0.2)),
        duplicate_fill=rng.choice((0.0, 0.1, 0.3)),
        delay_ns_max=rng.choice((0, 50_000_000, 400_000_000)),
        reorder=rng.choice((0.0, 0.05, 0.2)),
        drop_reject_callback=rng.choice((0.0, 0.5, 1.0)),
        broker_reject=rng.choice((0.0, 0.02, 0.05)),
        # drawn apart, so the other faults of a seed stay what they were before these existed
        cancel_reject=random.Random(seed * 7927 + 5).choice((0.0, 0.05, 0.2)),
    )
    return _with_late_fill_rows(_with_broker_view_faults(plan, seed), seed)


def _with_broker_view_faults(plan: FaultPlan, seed: int) -> FaultPlan:
    """Cancels the broker loses ("not found" or no answer) and answers from an old view (200 ms-2.5 s,
    under the freshness grace and the in-flight timeout), drawn apart from the other faults."""
    rng = random.Random(seed * 7933 + 23)
    return dataclasses.replace(
        plan,
        cancel_not_found=rng.choice((0.0, 0.05, 0.2)),
        stale_snapshot=rng.choice((0.0, 0.3, 1.0)),
        stale_ns=rng.choice((200_000_000, 1_000_000_000, 2_500_000_000)),
    )


def _with_late_fill_rows(plan: FaultPlan, seed: int) -> FaultPlan:
    """Cancel confirmations that overtake the rows of fills just before them (``cancel_ahead_of_fill``),
    the rows 1-30 s late (past the in-flight timeout: the checks find them by query), drawn apart
    from the other faults."""
    rng = random.Random(seed * 7951 + 31)
    return dataclasses.replace(
        plan,
        cancel_ahead_of_fill=rng.choice((0.0, 0.5, 1.0)),
        fill_row_lag_ns=rng.choice((1_000_000_000, 7_000_000_000, 30_000_000_000)),
    )


def outage_plan(seed: int, start_ns: int, end_ns: int, crashes: list[Crash]) -> tuple[tuple[int, int], ...]:
    """0-3 link outages of 1-60 s inside the parents' window, apart from each other and from the crash
    windows (a restart while the link is down is a different scenario: the engine cannot reconcile)."""
    rng = random.Random(seed * 2_750_159 + 13)
    busy = [(c.at_ns - NS_PER_SECOND, c.at_ns + c.downtime_ns + 5 * NS_PER_SECOND) for c in crashes]
    outages: list[tuple[int, int]] = []
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        at = rng.randrange(start_ns, end_ns)
        duration = rng.randrange(NS_PER_SECOND, 60 * NS_PER_SECOND)
        span = (at - NS_PER_SECOND, at + duration + NS_PER_SECOND)
        if any(span[0] < b and a < span[1] for a, b in busy):
            continue
        busy.append(span)
        outages.append((at, duration))
    return tuple(sorted(outages))


def restart_outage(
    seed: int,
    index: int,
    crashed_ns: int,
    downtime_ns: int,
    planned: tuple[tuple[int, int], ...],
    next_crash_ns: int,
) -> tuple[int, int] | None:
    """For about a third of the restarts, a link outage that begins while the engine is dead and ends 1-60 s
    after the restart (the restart finds the broker unreachable); None when it would touch a planned outage
    or the next crash. Drawn apart from the other faults, so those stay what they were."""
    rng = random.Random(seed * 3_571 + 17 + index * 7_919)
    if rng.random() >= 0.35:
        return None
    start = crashed_ns + rng.randrange(0, max(1, downtime_ns))
    end = crashed_ns + downtime_ns + rng.randrange(NS_PER_SECOND, 60 * NS_PER_SECOND)
    span = (start - NS_PER_SECOND, end + NS_PER_SECOND)
    if (
        any(span[0] < at + duration and at < span[1] for at, duration in planned)
        or end + 5 * NS_PER_SECOND > next_crash_ns
    ):
        return None
    return start, max(1, end - start)


def clock_step_plan(seed: int, start_ns: int, end_ns: int, crashes: list[Crash]) -> tuple[WallStep, ...]:
    """0-3 steps of the host's wall clock inside the parents' window, each ±3 s to ±9 h; half of them are
    corrected 5-600 s later by the opposite step (NTP or an operator putting it back), the others stay to
    the end of the run. Every step happens while an engine runs and watches: never inside a crash window
    (with the restart's wait for the link), and one left in place only after the last restart (a restart
    anchors to the host clock as it is then: docs/RELIABILITY.md (time)). Steps are at least 3 watch
    intervals apart, so each is told on its own. Drawn apart, so the other faults stay what they were."""
    rng = random.Random(seed * 6_700_417 + 23)
    margin = 3 * CLOCK_CHECK_NS
    busy = [(c.at_ns - margin, c.at_ns + c.downtime_ns + _RESTART_WAIT_NS) for c in crashes]
    last_restart = max((end for _, end in busy), default=start_ns)
    steps: list[WallStep] = []
    for _ in range(rng.choice((0, 1, 2, 2, 3))):
        at = rng.randrange(start_ns, end_ns)
        size = rng.choice((1, -1)) * (
            rng.choice(_STEP_SIZES_S) * NS_PER_SECOND + rng.randrange(NS_PER_SECOND)
        )
        back = at + rng.randrange(5 * NS_PER_SECOND, 600 * NS_PER_SECOND) if rng.random() < 0.5 else None
        span = (at - margin, (back or at) + margin)
        if any(span[0] < b and a < span[1] for a, b in busy) or (back is None and at <= last_restart):
            continue
        busy.append(span)
        steps.append(WallStep(at, size))
        if back is not None:
            steps.append(WallStep(back, -size))
    return tuple(sorted(steps, key=lambda step: step.at_ns))


def suspension_plan(seed: int, parents: Sequence[ParentOrder]) -> tuple[tuple[str, int], ...]:
    """Half the seeds: one parent's symbol is suspended at a seeded instant inside its window (the broker
    rejects its every order from then on). Drawn apart, so the other faults stay what they were."""
    rng = random.Random(seed * 7_951 + 37)
    if not parents or rng.random() < 0.5:
        return ()
    parent = parents[rng.randrange(len(parents))]
    return ((parent.symbol, rng.randrange(parent.start_ns, parent.end_ns)),)


def _check_suspensions(outcome: SeedOutcome, session: ReplaySession, basket: Basket, plan: FaultPlan) -> None:
    """A suspended symbol's parent got at most one rejected child per engine process (a restart may send
    one more before it learns), and ended stopped with the suspension's reason."""
    processes = 1 + len(outcome.recoveries)
    for symbol, _ in plan.suspensions:
        for parent_id, algo in basket.algos.items():
            if algo.parent.symbol != symbol:
                continue
            rejected = [o for o in session.oms.children_of(parent_id) if o.reason == SUSPENDED_REASON]
            if len(rejected) > processes:
                outcome.problems.append(
                    f"suspended {symbol}: {len(rejected)} children rejected for the suspension "
                    f"(at most {processes})"
                )
            if rejected and not (
                algo.done and algo.unfilled == Unfilled(UnfilledCode.REJECTED, SUSPENDED_REASON)
            ):
                outcome.problems.append(
                    f"suspended {symbol}: parent {parent_id} not stopped with the reason "
                    f"(done={algo.done}, reason={algo.unfilled_reason!r})"
                )


@dataclass(slots=True, frozen=True)
class Crash:
    at_ns: int
    downtime_ns: int
    in_flush: bool  # killed inside a flush: the intents are committed, not sent (A1)


def crash_plan(seed: int, start_ns: int, end_ns: int) -> list[Crash]:
    """One or two crashes inside the parents' window, in time order (half of them within 100 ms after a
    slice went out), each followed by 1 ms or 1-90 s of downtime (a quick restart finds orders and
    answers still in flight). About a third crash inside the flush of a slice instead: what that
    instant produced is committed to the journal, and nothing of it is sent."""
    rng = random.Random(seed * 104_729 + 3)
    modes = random.Random(seed * 15_485_863 + 11)
    crashes = []
    for _ in range(rng.choice((1, 1, 2))):
        at = rng.randrange(start_ns, end_ns)
        if rng.random() < 0.5:  # just after a 30 s slice went out: orders and acks in flight
            at = start_ns + (at - start_ns) // SLICE_NS * SLICE_NS + rng.randrange(0, 100_000_000)
        crashes.append(at)
    plan = [
        (at, rng.choice((1_000_000, rng.randrange(NS_PER_SECOND, 90 * NS_PER_SECOND))))
        for at in sorted(crashes)
    ]
    result = []
    for at, downtime in plan:
        in_flush = modes.random() < 0.3
        if in_flush:  # the instant a slice is due
            at = start_ns + (at - start_ns) // SLICE_NS * SLICE_NS
        result.append(Crash(at, downtime, in_flush))
    return result


def basket_for(market: MarketData, symbols: int, seed: int) -> tuple[list[ParentOrder], dict[str, int]]:
    """Half buys, half sells (from positions held before the day), seeded sizes, 09:30-10:15; every
    third parent prices its children passively (they rest), the others aggressively."""
    rng = random.Random(seed)
    start = shanghai_ns(market.trade_date, "09:30")
    end = shanghai_ns(market.trade_date, "10:15")
    parents: list[ParentOrder] = []
    positions: dict[str, int] = {}
    for i, symbol in enumerate(market.symbols[:symbols]):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        lot = 200 if symbol.startswith("688") else 100
        quantity = rng.randrange(20, 200) * lot
        if side is Side.SELL:
            positions[symbol] = quantity + rng.choice((0, 37, 100))
        parents.append(
            ParentOrder(
                parent_id=f"C{i:04d}",
                symbol=symbol,
                side=side,
                quantity=quantity,
                start_ns=start,
                end_ns=end,
                algo="twap",
                # a third rest at their own best: children work (and fill, and get cancelled) for a while;
                # no minimum child value: many small children, many moments for the faults to hit
                params={
                    "interval_s": "30",
                    "min_child_value": "0",
                    **({"price_policy": "passive"} if i % 3 == 2 else {}),
                },
            )
        )
    return parents, positions


async def run_seed(
    market: MarketData,
    seed: int,
    symbols: int,
    *,
    wall: WallTimer | None = None,
    crashes: bool = True,
    clock_steps: bool = True,
) -> SeedOutcome:
    """One seed: the basket through the faulty wire, with the seed's crashes (``crashes=False``: none) and
    steps of the host's wall clock (``clock_steps=False``: the same instants, steps of size 0)."""
    parents, positions = basket_for(market, symbols, seed)
    start, end = parents[0].start_ns, parents[0].end_ns
    schedule = crash_plan(seed, start, end) if crashes else []
    planned_steps = clock_step_plan(seed, start, end, schedule)
    if not clock_steps:
        planned_steps = tuple(WallStep(step.at_ns, 0) for step in planned_steps)
    plan = dataclasses.replace(
        fault_plan(seed),
        outages=outage_plan(seed, start, end, schedule),
        suspensions=suspension_plan(seed, parents),
    )
    holder: list[FaultyAdapter] = []

    def wrap(exchange: object, clock: object) -> FaultyAdapter:
        adapter = FaultyAdapter(exchange, plan, clock)  # type: ignore[arg-type]
        holder.append(adapter)
        return adapter

    day_open = shanghai_ns(market.trade_date, "09:15")
    with tempfile.TemporaryDirectory(prefix="zhixing-chaos-") as tmp:
        config = ReplayConfig(
            cash=10**13, positions=positions, db_path=Path(tmp) / "chaos.db", synchronous="OFF"
        )
        session = await open_session(market, config, start, wrap=wrap)
        sessions = [session]
        recoveries: list[Recovery] = []
        problems: list[str] = []
        outcome_restart_outages = 0
        not_running: list[tuple[int, int]] = []  # per restart: crash -> the broker answered again
        host_wall = SteppedWall(session.clock, planned_steps)
        watches = [_watch_clock(use_process_clock(session, host_wall))]
        recoveries_requeried = 0
        try:
            basket = Basket(session.ctx)
            session.engine.add_basket(basket)
            for parent in parents:
                parent.created_ns = session.clock.now_ns()
                session.store.stage_parent(parent.to_row())
                basket.add(parent)
            basket.start()
            await session.store.commit()
            linked = _linked(session, basket.algos)
            links = [linked]
            live = [basket]  # the running basket (a new one after each restart)
            settled: dict[int, int] = {}  # recovery index -> restart to nothing in flight (virtual ns)
            settle = _Settle(session, 0, -1, settled)
            for index, planned in enumerate(schedule):
                downtime = planned.downtime_ns
                if planned.in_flush:
                    await linked.run(planned.at_ns - 1, lambda: live[0].done, settle.progress, expire=False)
                    await _step_and_commit_without_sending(session, planned.at_ns + NS_PER_SECOND)
                else:
                    await linked.run(planned.at_ns, lambda: live[0].done, settle.progress, expire=False)
                crashed_at = session.clock.now_ns()
                linked.detach()
                killed = await crash(session)
                following = schedule[index + 1].at_ns if index + 1 < len(schedule) else end
                outage = restart_outage(seed, index, crashed_at, downtime, plan.outages, following)
                if outage is not None:
                    holder[0].schedule_outage(*outage)
                    outcome_restart_outages += 1
                run_exchange_alone(session.clock, crashed_at + downtime)
                link_wait_from = session.clock.now_ns()
                link_attempts = await _wait_for_broker(session)
                link_wait_ns = session.clock.now_ns() - link_wait_from
                not_running.append((crashed_at, session.clock.now_ns()))  # dead, then waiting for the link
                session = await restart_session(
                    market,
                    config,
                    clock=session.clock,
                    exchange=session.exchange,
                    adapter=session.oms.adapter,
                )
                sessions.append(session)
                watches.append(_watch_clock(use_process_clock(session, host_wall)))  # a new process
                # the new engine hears the link before it reconciles: a reconciliation that asks again
                # (a stale answer) may see the link drop meanwhile
                late = _LateAlgos()
                linked = _linked(session, late)
                links.append(linked)
                restart_ns = session.clock.now_ns()
                wall_start = wall() if wall is not None else 0
                resumed = await resume(session, trading_day_start_ns=day_open)
                wall_ns = wall() - wall_start if wall is not None else 0
                live[0] = resumed.basket
                late.basket = resumed.basket
                report = resumed.report
                recoveries.append(
                    Recovery(
                        crash_ns=crashed_at,
                        in_flush=planned.in_flush,
                        downtime_ns=downtime,
                        virtual_ns=session.clock.now_ns() - restart_ns,
                        settle_ns=0,
                        wall_ns=wall_ns,
                        engine_timers_killed=killed,
                        link_wait_ns=link_wait_ns,
                        link_attempts=link_attempts,
                        rebuilt=report.rebuilt,
                        adopted=len(report.adopted),
                        fills_applied=report.fills_applied,
                        never_sent=len(report.never_sent),
                        pending=len(report.pending),
                        mismatches=len(report.mismatches),
                    )
                )
                settle = _Settle(session, restart_ns, len(recoveries) - 1, settled)
                problems.extend(f"restart at {crashed_at}: {m}" for m in report.mismatches)
                recoveries_requeried += report.requeries
            await linked.run(end + 60 * NS_PER_SECOND, lambda: live[0].done, settle.progress, expire=False)
            watches[-1].check()  # the run is over: what stepped since the last check is seen now
            watches[-1].stop()
            host_wall.stop()
            await linked.expire()
            final = live[0]
            journaled = [o.client_order_id for o in await session.store.load_orders()]
            venue_reports = await session.exchange.query_orders()
            venue_positions = await session.exchange.query_positions()
            broker_reports = await holder[0].query_orders()
        finally:
            await session.store.close()
    outcome = check(session, parents, holder[0], journaled, venue_reports, venue_positions, seed)
    _check_algos(outcome, session, final, broker_reports)
    outcome.problems.extend(problems)
    outcome.recoveries = [
        dataclasses.replace(r, settle_ns=settled.get(i, -1)) for i, r in enumerate(recoveries)
    ]
    _check_suspensions(outcome, session, final, plan)
    outcome.injected["crash_restart"] = len(recoveries)
    outcome.injected["restart_in_outage"] = outcome_restart_outages
    outcome.injected["clock_step"] = outcome.clock_steps_injected = host_wall.injected
    outcome.clock_steps_reported = sum(len(w.steps) for w in watches)
    if outcome.clock_steps_reported != outcome.clock_steps_injected:
        outcome.problems.append(
            f"clock: {outcome.clock_steps_injected} steps of the host clock, "
            f"{outcome.clock_steps_reported} told by the clock watch"
        )
    outcome.books_digest = books_digest(session, venue_positions)
    outcome.fills = sum(len(s.fills) for s in sessions)
    outcome.duplicate_fills_ignored = sum(s.oms.counters.duplicate_fills for s in sessions)
    outcome.inflight_resolved_by_query = sum(s.inflight.stats.resolved_by_query for s in sessions)
    outcome.inflight_resolved_by_policy = sum(len(s.inflight.stats.resolved_by_policy) for s in sessions)
    _check_link(outcome, links, holder[0], not_running=not_running)
    _check_broker_view(outcome, sessions, recoveries_requeried, holder[0])
    _check_ends(outcome, sessions)
    return outcome


def _check_ends(outcome: SeedOutcome, sessions: list[ReplaySession]) -> None:
    """No order was finished while the exchange counted more fills than the engine held (a fill after
    its order's end: ``engine.held_ends``), and no algorithm ever sized a child beyond its parent."""
    outcome.fills_after_end = sum(s.oms.counters.fills_after_end for s in sessions)
    outcome.ends_held = sum(s.oms.held_ends.counters.held for s in sessions)
    if outcome.fills_after_end:
        outcome.problems.append(f"ends: {outcome.fills_after_end} fills arrived after their order ended")


def _watch_clock(process: ProcessClock) -> ClockWatch:
    """The clock watch of one engine process, started at its anchor (as ``zhixing run`` starts it)."""
    watch = ClockWatch(
        process, process.system_ns, check_interval_ns=CLOCK_CHECK_NS, step_alert_ns=CLOCK_ALERT_NS
    )
    watch.start(reference_offset_ns=0)
    return watch


def books_digest(session: ReplaySession, venue_positions: list[PositionReport]) -> str:
    """A digest of the final books: every order's state, size, price, filled quantity and parent, and every
    position at the exchange."""
    lines = [
        f"o {o.client_order_id} {o.status} {o.quantity} {o.price} {o.filled_quantity} {o.parent_id}"
        for o in sorted(session.oms.orders.values(), key=lambda o: o.client_order_id)
    ]
    lines += sorted(f"p {p.symbol} {p.quantity}" for p in venue_positions)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


async def _wait_for_broker(session: ReplaySession) -> int:
    """A restarting engine's first act: wait until the broker answers (the exchange runs on meanwhile)."""
    clock = session.clock

    async def pass_time(until_ns: int) -> None:
        run_exchange_alone(clock, until_ns)

    return await wait_until_ready(
        "broker",
        session.oms.adapter.query_account,
        clock=clock,
        timeout_ns=RESTART_LINK_TIMEOUT_NS,
        give_up=BrokerDisconnected,
        wait=pass_time,
    )


class _LateAlgos(Mapping[str, Pausable]):
    """The algorithms of a restarted engine, known once its basket is resumed (after reconciliation)."""

    def __init__(self) -> None:
        self.basket: Basket | None = None

    def _algos(self) -> Mapping[str, Pausable]:
        return self.basket.algos if self.basket is not None else {}

    def __getitem__(self, key: str) -> Pausable:
        return self._algos()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._algos())

    def __len__(self) -> int:
        return len(self._algos())


class _Linked(LinkedRun):
    """A ``LinkedRun`` that also notes every child handed to the adapter while the link was known down."""

    def __init__(self, session: ReplaySession, algos: Mapping[str, Pausable]) -> None:
        super().__init__(session, algos)
        self.sent_while_down = 0


def _linked(session: ReplaySession, algos: Mapping[str, Pausable]) -> _Linked:
    linked = _Linked(session, algos)

    def on_submitted(event: OrderSubmitted) -> None:
        if not linked.monitor.up:
            linked.sent_while_down += 1

    session.bus.subscribe(OrderSubmitted, on_submitted)
    return linked


def _check_broker_view(
    outcome: SeedOutcome, sessions: list[ReplaySession], reconcile_requeries: int, adapter: FaultyAdapter
) -> None:
    fig = outcome.broker_view
    for session in sessions:
        tracker, retry = session.oms.freshness, session.oms.cancel_retry
        fig.differences_seen += tracker.seen
        fig.differences_settled += tracker.settled
        fig.differences_persisted += len(tracker.persisted)
        fig.requeries += session.inflight.stats.requeried
        fig.cancels_failed += retry.failed_total
        fig.cancels_resent += retry.resent
        fig.cancels_escalated += len(retry.escalated)
    fig.reconcile_requeries = reconcile_requeries
    fig.cancels_unanswered = adapter.cancels_unanswered
    if fig.differences_persisted:
        outcome.problems.append(f"broker view: {fig.differences_persisted} differences persisted (halted)")


def _check_link(
    outcome: SeedOutcome,
    links: list[_Linked],
    adapter: FaultyAdapter,
    *,
    not_running: Sequence[tuple[int, int]] = (),
) -> None:
    """Every outage a running engine could see was one incident that resumed. An outage that began and
    ended inside one of ``not_running`` (crash to the restart's first answer from the broker: dead, then
    in the start-up wait) was seen by no running engine: the restart waited it out instead (those that
    began while the engine was dead are ``restart_in_outage``; a planned one can also fall wholly inside a
    long start-up wait's backoff)."""
    incidents: list[ConnectionIncident] = [i for linked in links for i in linked.monitor.incidents]
    fig = outcome.link
    fig.incidents = len(incidents)
    fig.resumed = sum(1 for i in incidents if i.resumed_ns is not None)
    fig.reconnect_to_resumed_ns = [
        i.resumed_ns - i.up_ns for i in incidents if i.resumed_ns is not None and i.up_ns is not None
    ]
    fig.outage_ns = [i.up_ns - i.down_ns for i in incidents if i.up_ns is not None]
    fig.algos_paused = sum(i.algos_paused for i in incidents)
    fig.algos_resumed = sum(i.algos_resumed for i in incidents)
    fig.orders_denied = sum(i.orders_denied for i in incidents)
    fig.cancels_refused = sum(i.cancels_refused for i in incidents)
    fig.cancels_resent = sum(i.cancels_resent for i in incidents)
    fig.orders_adopted = sum(i.orders_adopted for i in incidents)
    fig.fills_applied_by_resync = sum(i.fills_applied for i in incidents)
    fig.events_lost = adapter.lost_while_down
    fig.fills_repushed = adapter.repushed
    fig.submits_refused_by_adapter = adapter.refused_while_down["submit"]
    fig.sent_while_down = sum(linked.sent_while_down for linked in links)
    fig.inside_restart_wait = sum(
        1 for down, up in adapter.outage_spans if any(a <= down and up <= b for a, b in not_running)
    )
    if (
        fig.incidents + fig.inside_restart_wait != adapter.injected["disconnect"]
        or fig.resumed != fig.incidents
    ):
        outcome.problems.append(
            f"link: {adapter.injected['disconnect']} outages "
            f"({fig.inside_restart_wait} while no engine ran), "
            f"{fig.incidents} incidents, {fig.resumed} resumed"
        )
    if fig.sent_while_down:
        outcome.problems.append(f"link: {fig.sent_while_down} children sent while the link was known down")


async def _step_and_commit_without_sending(session: ReplaySession, until_ns: int) -> None:
    """Fire the next instant's timers and commit what they staged (child intents included, with the
    algorithm states), as the OrderManager's flush does before it sends; the crash comes before the send."""
    if session.clock.step(until_ns=until_ns):
        for hook in session.oms.before_commit:
            hook()
        await session.store.commit()


class _Settle:
    """Watches a restarted session's steps for the first instant nothing is in flight any more."""

    def __init__(self, session: ReplaySession, restart_ns: int, record: int, settled: dict[int, int]) -> None:
        self.session = session
        self.restart_ns = restart_ns
        self.record = record  # index of the recovery being timed, -1: none
        self.settled = settled
        self.progress(0, 0)

    def progress(self, _elapsed: int, _span: int) -> None:
        if self.record < 0 or self.record in self.settled or self.session.oms.in_flight:
            return
        self.settled[self.record] = self.session.clock.now_ns() - self.restart_ns


def _check_algos(
    outcome: SeedOutcome, session: ReplaySession, basket: Basket, broker_reports: list[OrderStatusReport]
) -> None:
    """Algorithm progress after the restarts, and I1 over everything the broker was sent."""
    oms = session.oms
    bad = []
    for parent_id, algo in basket.algos.items():
        children = sum(o.filled_quantity for o in oms.children_of(parent_id))
        if algo.filled_quantity != children or algo.filled_quantity > algo.parent.quantity:
            bad.append(
                f"{parent_id}: algo={algo.filled_quantity} children={children} of {algo.parent.quantity}"
            )
    outcome.algo_mismatches = len(bad)
    if bad:
        outcome.problems.append(f"algo progress: {bad[:5]}")
    unexplained = basket.short_without_reason()  # every shortfall has a reason (issue 20)
    if unexplained:
        outcome.problems.append(f"parents ended short with no reason: {unexplained[:5]}")
    # refused by the adapter: a resend of a known client id would be; a child handed over in the very
    # instant the link dropped is refused as "link down" (nothing sent) and is not one
    resends = [
        o.client_order_id
        for o in oms.orders.values()
        if o.reason.startswith("adapter:") and "link down" not in o.reason
    ]
    outcome.resends_refused = len(resends)
    if resends:
        outcome.problems.append(f"orders refused by the adapter (resent?): {resends[:5]}")
    counts = Counter(r.client_order_id for r in broker_reports)
    twice = sorted(cid for cid, n in counts.items() if n > 1)
    if twice:
        outcome.duplicate_orders += len(twice)
        outcome.problems.append(f"client ids known twice to the broker: {twice[:5]}")


def check(
    session: ReplaySession,
    parents: list[ParentOrder],
    adapter: FaultyAdapter,
    journaled: list[str],
    venue_reports: list[OrderStatusReport],
    venue_positions: list[PositionReport],
    seed: int,
) -> SeedOutcome:
    """The oracle: the exchange's own reports against the engine's books."""
    oms = session.oms
    venue_orders = {r.client_order_id: r for r in venue_reports}
    counts = Counter(r.client_order_id for r in venue_reports)
    problems: list[str] = []
    duplicate_orders = sum(n - 1 for n in counts.values() if n > 1)
    foreign = [cid for cid in venue_orders if cid not in oms.orders]
    lost = [cid for cid in journaled if cid not in oms.orders]
    order_overfills = sum(1 for o in oms.orders.values() if o.filled_quantity > o.quantity)
    fill_mismatch = [
        cid
        for cid, report in venue_orders.items()
        if cid in oms.orders and oms.orders[cid].filled_quantity != report.filled_quantity
    ]
    parent_overfills = [
        p.parent_id
        for p in parents
        if sum(c.filled_quantity for c in oms.children_of(p.parent_id)) > p.quantity
    ]
    engine_pos = {s: p.quantity for s, p in session.account.positions.items() if p.quantity}
    venue_pos = {p.symbol: p.quantity for p in venue_positions if p.quantity}
    position_mismatch = sorted(set(engine_pos.items()) ^ set(venue_pos.items()))
    unresolved = [o.client_order_id for o in oms.orders.values() if not o.is_terminal]
    unacked = sum(1 for o in oms.orders.values() if o.filled_quantity and not o.broker_order_id)
    checks: list[tuple[str, int | list[object]]] = [
        ("duplicate exchange orders", duplicate_orders),
        ("foreign exchange orders", list(foreign)),
        ("lost orders", list(lost)),
        ("order overfills", order_overfills),
        ("fill mismatches", list(fill_mismatch)),
        ("parent overfills", list(parent_overfills)),
        ("position mismatches", list(position_mismatch)),
        ("unresolved orders", list(unresolved)),
    ]
    for label, bad in checks:
        if bad:
            problems.append(f"{label}: {bad if isinstance(bad, int) else bad[:5]}")
    return SeedOutcome(
        seed=seed,
        injected={k: adapter.injected.get(k, 0) for k in CHAOS_FAULTS},
        orders=len(oms.orders),
        fills=len(session.fills),
        lost_orders=len(lost),
        duplicate_orders=duplicate_orders,
        order_overfills=order_overfills,
        parent_overfills=len(parent_overfills),
        fill_mismatches=len(fill_mismatch),
        position_mismatches=len(position_mismatch),
        unresolved=len(unresolved),
        duplicate_fills_ignored=oms.counters.duplicate_fills,
        unacked_resolved_by_fills=unacked,
        inflight_resolved_by_query=session.inflight.stats.resolved_by_query,
        inflight_resolved_by_policy=len(session.inflight.stats.resolved_by_policy),
        problems=problems,
    )
