"""The clock-step watch: the host's wall clock against the engine's own (anchored) time.

The engine's clock (``engine.clock.LiveClock``) is the wall time read at start moved on by the monotonic
clock, so a step of the host's wall clock never reaches a timer, a deadline, an in-flight check, a rate
window or the trading-session logic. What the step changes is the *offset*: host wall time minus the
engine's time, 0 at the anchor and constant while nobody steps the host clock (NTP slews both alike).

Every ``check_interval_ns`` (on the engine's clock) the watch reads the offset. When it moved by more
than ``step_alert_ns`` from the offset last reported (at first: the anchor's, 0), that is a step: it is
logged (``clock_step``) and told once through ``on_step`` (``zhixing run`` posts a
``clock_step_notice`` to the configured notifications); the new offset becomes the reference, so the
following checks stay quiet until the host clock moves again. A step below the threshold is not told on
its own; several in the same direction that together pass it are told at the check that sees the sum.

The engine never re-anchors during a run: following the host clock mid-session is exactly the jump
this design removes (a TWAP ended, a check fired early, a rate window emptied). The operator is told
the offset and decides; a restart anchors afresh to the host clock as it is then (the journal resumes
every algorithm). See docs/RELIABILITY.md (time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from zhixing.engine.clock import Clock, LiveClock, NsSource, TimerHandle
from zhixing.engine.config import ClockConfig
from zhixing.engine.errors import ParameterError
from zhixing.engine.notify import Message, clock_step_notice
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.clock")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockStep:
    """One step of the host's wall clock as the watch saw it (ns; positive: the host moved ahead)."""

    number: int
    step_ns: int  # how far the offset moved since the last report
    offset_ns: int  # host wall time minus engine time, now
    engine_ns: int  # the engine's time at the check
    system_ns: int  # the host's wall clock at the check


StepCallback = Callable[[ClockStep], None]


class ClockWatch:
    """Compares ``system_ns()`` with ``clock.now_ns()`` every ``check_interval_ns`` and reports each step
    beyond ``step_alert_ns`` exactly once."""

    def __init__(
        self,
        clock: Clock,
        system_ns: NsSource,
        *,
        check_interval_ns: int = NS_PER_SECOND,
        step_alert_ns: int = 2 * NS_PER_SECOND,
        on_step: StepCallback | None = None,
    ) -> None:
        if check_interval_ns <= 0 or step_alert_ns <= 0:
            raise ParameterError(
                f"check_interval_ns and step_alert_ns must be > 0, got {check_interval_ns}, {step_alert_ns}",
                value=(check_interval_ns, step_alert_ns),
            )
        self.clock = clock
        self._system_ns = system_ns
        self.check_interval_ns = check_interval_ns
        self.step_alert_ns = step_alert_ns
        self.on_step = on_step
        self.steps: list[ClockStep] = []
        self.checks = 0
        self._reference: int | None = None
        self._timer: TimerHandle | None = None

    @property
    def reference_offset_ns(self) -> int | None:
        """The offset last reported (or the start's); None before ``start``."""
        return self._reference

    def offset_ns(self) -> int:
        return self._system_ns() - self.clock.now_ns()

    def start(self, reference_offset_ns: int | None = None) -> None:
        """Start watching. ``reference_offset_ns``: the offset that is no step (a ``LiveClock``'s is 0 at
        its anchor: pass 0 so a step between the anchor and this call is told too); None measures it now
        (a watch started at the anchor, e.g. a restarted engine in a replay)."""
        if self._timer is not None:
            return
        self._reference = self.offset_ns() if reference_offset_ns is None else reference_offset_ns
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def check(self) -> ClockStep | None:
        """One comparison; the step, if the offset moved beyond the threshold since the last report."""
        if self._reference is None:
            raise RuntimeError("ClockWatch.check before start")
        self.checks += 1
        engine = self.clock.now_ns()
        system = self._system_ns()
        offset = system - engine
        moved = offset - self._reference
        if abs(moved) <= self.step_alert_ns:
            return None
        self._reference = offset
        step = ClockStep(
            number=len(self.steps) + 1, step_ns=moved, offset_ns=offset, engine_ns=engine, system_ns=system
        )
        self.steps.append(step)
        log.warning(
            "clock_step",
            number=step.number,
            step_ns=moved,
            offset_ns=offset,
            engine_ns=engine,
            system_ns=system,
            action="not followed: the engine keeps its own time; restart to adopt the host's",
        )
        if self.on_step is not None:
            try:
                self.on_step(step)
            except Exception:  # telling the operator must never stop the watch
                log.exception("clock_step_callback_failed", number=step.number)
        return step

    def _arm(self) -> None:
        self._timer = self.clock.call_at(
            self.clock.now_ns() + self.check_interval_ns, self._tick, "clock_watch"
        )

    def _tick(self) -> None:
        if self._timer is None:
            return  # stopped
        self.check()
        self._arm()


def watch_clock_steps(
    clock: Clock, config: ClockConfig, post: Callable[[Message], None], *, account: str | None = None
) -> ClockWatch | None:
    """For ``zhixing run``: a started watch on a ``LiveClock`` that posts a ``clock_step_notice`` per
    step; None on a virtual or paper clock (no host clock to compare with)."""
    if not isinstance(clock, LiveClock):
        return None
    watch = ClockWatch(
        clock,
        clock.system_ns,
        check_interval_ns=round(config.check_interval_s * NS_PER_SECOND),
        step_alert_ns=round(config.step_alert_s * NS_PER_SECOND),
        on_step=lambda step: post(
            clock_step_notice(step.step_ns, step.offset_ns, step.engine_ns, account=account)
        ),
    )
    watch.start(reference_offset_ns=0)
    return watch
