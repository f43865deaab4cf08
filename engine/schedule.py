"""Cron jobs on the exchange calendar, in Asia/Shanghai time whatever the host time zone.

Cron expressions are evaluated by ``croniter`` on aware Shanghai datetimes (``zoneinfo``), so the host's
``TZ`` never matters. A fire time counts only on a trading day of ``TradingCalendar``; holidays and
weekends are skipped (a whole day at a time, not minute by minute).

The ``Scheduler`` arms one ``clock.call_at`` per job for its next fire time. A window is *missed* when it
passed more than ``grace_ns`` before the scheduler could act on it: the process started late (10:30 for
a 09:30 job) or the machine slept through it (the clock jumped past the fire time). A missed window is
reported once through ``on_missed(job, scheduled_ns)`` and not run; the job is re-armed for its next
window after *now*, so there is never a burst of make-up runs. An optional watchdog timer re-checks the
wall clock every ``watchdog_ns``: a live loop's timers run on a monotonic clock that stops while the
machine sleeps, and the watchdog notices the jump without waiting for that late timer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from croniter import croniter

from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import ConfigError, ParameterError
from zhixing.engine.market.calendar import SHANGHAI, TradingCalendar, ns_to_shanghai, shanghai_ns
from zhixing.engine.units import NS_PER_MINUTE, NS_PER_SECOND

log = structlog.get_logger("zhixing.schedule")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SKIPPED_DAYS: Final = 400  # search horizon for the next trading-day fire time


@dataclass(frozen=True, slots=True, kw_only=True)
class CronJob:
    """A named job firing on a 5-field cron expression (minute hour day month weekday), Shanghai time."""

    name: str
    cron: str
    kind: str = "signal"

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("key 'jobs.name': a job needs a name")
        if len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
            raise ConfigError(
                f"key 'jobs.{self.name}.cron': {self.cron!r} is not a 5-field cron expression "
                "(minute hour day month weekday)"
            )


FireCallback = Callable[[CronJob, int], None]


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1_000


def fire_times(job: CronJob, calendar: TradingCalendar, after_ns: int) -> Iterator[int]:
    """The job's fire times strictly after ``after_ns``, on trading days only, ascending (lazy).

    Stops at the end of the calendar's range (or after ``_MAX_SKIPPED_DAYS`` days without a fire time).
    """
    # croniter steps from whole seconds: start a second early and drop what is not strictly later
    itr = croniter(job.cron, ns_to_shanghai(after_ns - NS_PER_SECOND))
    days_skipped = 0
    while days_skipped <= _MAX_SKIPPED_DAYS:
        moment: datetime = itr.get_next(datetime)
        when = _ns(moment)
        if when <= after_ns:
            continue
        day = moment.date()
        try:
            trading = calendar.is_trading_day(day)
            next_day = calendar.next_trading_day(day) if not trading else None
        except ValueError:  # beyond the calendar: no more known trading days
            return
        if trading:
            days_skipped = 0
            yield when
            after_ns = when
            continue
        # jump to the next trading day's midnight instead of walking a holiday minute by minute
        assert next_day is not None
        days_skipped += (next_day - day).days
        midnight = datetime.combine(next_day, datetime.min.time(), tzinfo=SHANGHAI)
        itr = croniter(job.cron, midnight - timedelta(seconds=1))


def previous_fire_today(job: CronJob, calendar: TradingCalendar, now_ns: int) -> int | None:
    """The job's last fire time at or before ``now_ns`` on ``now``'s Shanghai date, if a trading day."""
    day = ns_to_shanghai(now_ns).date()
    try:
        if not calendar.is_trading_day(day):
            return None
    except ValueError:
        return None
    last: int | None = None
    for when in fire_times(job, calendar, shanghai_ns(day, "00:00") - 1):
        if when > now_ns:
            break
        last = when
    return last


class Scheduler:
    """Fires ``on_fire(job, scheduled_ns)`` at each job's trading-day fire times on the injected clock."""

    def __init__(
        self,
        clock: Clock,
        calendar: TradingCalendar,
        jobs: Sequence[CronJob],
        on_fire: FireCallback,
        on_missed: FireCallback,
        *,
        grace_ns: int = 2 * NS_PER_MINUTE,
        watchdog_ns: int | None = None,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ConfigError("key 'jobs': job names must be unique")
        if grace_ns < 0:
            raise ParameterError(f"must be >= 0, got {grace_ns}", name="grace_ns", value=grace_ns)
        self._clock = clock
        self._calendar = calendar
        self._jobs = tuple(jobs)
        self._on_fire = on_fire
        self._on_missed = on_missed
        self._grace_ns = grace_ns
        self._watchdog_ns = watchdog_ns
        self._armed: dict[str, tuple[int, TimerHandle]] = {}
        self._watchdog: TimerHandle | None = None
        self._running = False

    @property
    def jobs(self) -> tuple[CronJob, ...]:
        return self._jobs

    def armed(self) -> dict[str, int]:
        """Each armed job's next fire time (ns)."""
        return {name: when for name, (when, _) in self._armed.items()}

    def start(self) -> None:
        """Report today's windows already missed, then arm every job for its next fire time."""
        if self._running:
            return
        self._running = True
        now = self._clock.now_ns()
        for job in self._jobs:
            last = previous_fire_today(job, self._calendar, now)
            if last is not None and now - last <= self._grace_ns:
                self._arm(job, last)  # started a little late: still inside the grace period, run it
                continue
            if last is not None:
                self._report_missed(job, last, now)
            self._arm_after(job, now)
        self._arm_watchdog()

    def stop(self) -> None:
        self._running = False
        for _, handle in self._armed.values():
            handle.cancel()
        self._armed.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def next_fires(self, n: int, after_ns: int | None = None) -> list[tuple[int, CronJob]]:
        """The next ``n`` (fire time, job) pairs over all jobs, ascending (for display and exports)."""
        start = self._clock.now_ns() if after_ns is None else after_ns
        merged: list[tuple[int, int, CronJob]] = []
        for index, job in enumerate(self._jobs):
            for count, when in enumerate(fire_times(job, self._calendar, start)):
                if count >= n:
                    break
                merged.append((when, index, job))
        merged.sort(key=lambda item: (item[0], item[1]))
        return [(when, job) for when, _, job in merged[:n]]

    # --- internals ----------------------------------------------------------------------------------

    def _arm_after(self, job: CronJob, after_ns: int) -> None:
        when = next(fire_times(job, self._calendar, after_ns), None)
        if when is None:
            self._armed.pop(job.name, None)
            log.warning("schedule_no_next_fire", job=job.name, cron=job.cron)
            return
        self._arm(job, when)

    def _arm(self, job: CronJob, when: int) -> None:
        handle = self._clock.call_at(when, lambda: self._due(job, when), f"job:{job.name}")
        self._armed[job.name] = (when, handle)

    def _due(self, job: CronJob, scheduled: int) -> None:
        armed = self._armed.get(job.name)
        if not self._running or armed is None or armed[0] != scheduled:
            return  # already handled (by the watchdog) or stopped
        armed[1].cancel()
        now = self._clock.now_ns()
        if now - scheduled > self._grace_ns:
            self._report_missed(job, scheduled, now)
        else:
            try:
                self._on_fire(job, scheduled)
            except Exception:  # a failing job callback must not stop the schedule
                log.exception("schedule_fire_failed", job=job.name, scheduled_ns=scheduled)
        self._arm_after(job, max(now, scheduled))

    def _report_missed(self, job: CronJob, scheduled: int, now: int) -> None:
        log.warning("schedule_window_missed", job=job.name, scheduled_ns=scheduled, late_ns=now - scheduled)
        try:
            self._on_missed(job, scheduled)
        except Exception:
            log.exception("schedule_missed_callback_failed", job=job.name)

    def _arm_watchdog(self) -> None:
        if self._watchdog_ns is None or not self._running:
            return
        self._watchdog = self._clock.call_at(
            self._clock.now_ns() + self._watchdog_ns, self._check, "schedule_watchdog"
        )

    def _check(self) -> None:
        now = self._clock.now_ns()
        for job in self._jobs:
            armed = self._armed.get(job.name)
            if armed is not None and armed[0] <= now:
                self._due(job, armed[0])
        self._arm_watchdog()
