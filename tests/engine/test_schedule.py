"""The cron scheduler on a SimClock: trading days only, Shanghai time whatever the TZ, no make-up runs."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.engine.clock import SimClock
from zhixing.engine.errors import ConfigError
from zhixing.engine.market.calendar import TradingCalendar, iso8601, ns_to_shanghai, shanghai_ns
from zhixing.engine.schedule import CronJob, Scheduler, fire_times
from zhixing.engine.units import NS_PER_MINUTE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar()


class Log:
    def __init__(self) -> None:
        self.fired: list[tuple[str, str]] = []
        self.missed: list[tuple[str, str]] = []

    def fire(self, job: CronJob, scheduled_ns: int) -> None:
        self.fired.append((job.name, iso8601(scheduled_ns)))

    def miss(self, job: CronJob, scheduled_ns: int) -> None:
        self.missed.append((job.name, iso8601(scheduled_ns)))


def at(day: str, hhmm: str) -> int:
    return shanghai_ns(date.fromisoformat(day), hhmm)


def run_until(clock: SimClock, until_ns: int) -> None:
    while clock.step(until_ns):
        pass
    clock.advance_to(until_ns)


def scheduler(
    clock: SimClock, calendar: TradingCalendar, jobs: list[CronJob], log: Log, **kwargs: int | None
) -> Scheduler:
    return Scheduler(clock, calendar, jobs, log.fire, log.miss, **kwargs)  # type: ignore[arg-type]


def test_nine_oclock_job_fires_on_trading_days_only_across_national_day(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-27", "08:00"))
    log = Log()
    s = scheduler(clock, calendar, [CronJob(name="signal", cron="0 9 * * *")], log)
    s.start()
    run_until(clock, at("2024-10-10", "00:00"))
    assert log.fired == [
        ("signal", "2024-09-27T09:00:00.000+08:00"),
        ("signal", "2024-09-30T09:00:00.000+08:00"),  # then 10-01..10-07 National Day, 10-12 Saturday
        ("signal", "2024-10-08T09:00:00.000+08:00"),
        ("signal", "2024-10-09T09:00:00.000+08:00"),
    ]
    assert log.missed == []


def test_new_year_holiday_is_skipped(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-12-30", "12:00"))
    log = Log()
    s = scheduler(clock, calendar, [CronJob(name="summary", cron="5 15 * * 1-5")], log)
    s.start()
    run_until(clock, at("2025-01-03", "00:00"))
    assert [t for _, t in log.fired] == ["2024-12-30T15:05:00.000+08:00", "2024-12-31T15:05:00.000+08:00",
                                         "2025-01-02T15:05:00.000+08:00"]  # fmt: skip


def test_late_start_reports_the_window_once_and_does_not_run_it(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-30", "10:30"))
    log = Log()
    s = scheduler(clock, calendar, [CronJob(name="rebalance", cron="30 9 * * *")], log)
    s.start()
    assert log.missed == [("rebalance", "2024-09-30T09:30:00.000+08:00")]
    assert log.fired == []
    assert s.armed() == {"rebalance": at("2024-10-08", "09:30")}
    run_until(clock, at("2024-10-08", "12:00"))
    assert log.fired == [("rebalance", "2024-10-08T09:30:00.000+08:00")]
    assert log.missed == [("rebalance", "2024-09-30T09:30:00.000+08:00")]  # reported once


def test_frequent_job_started_late_reports_only_the_last_window_no_burst(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-30", "10:33"))
    log = Log()
    s = scheduler(clock, calendar, [CronJob(name="poll", cron="*/5 9-10 * * *")], log, grace_ns=NS_PER_MINUTE)
    s.start()
    assert log.missed == [("poll", "2024-09-30T10:30:00.000+08:00")]
    run_until(clock, at("2024-09-30", "11:00"))
    assert [t for _, t in log.fired] == [
        "2024-09-30T10:35:00.000+08:00",
        "2024-09-30T10:40:00.000+08:00",
        "2024-09-30T10:45:00.000+08:00",
        "2024-09-30T10:50:00.000+08:00",
        "2024-09-30T10:55:00.000+08:00",
    ]


def test_start_within_grace_still_runs_the_window(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-30", "09:31"))
    log = Log()
    s = scheduler(
        clock, calendar, [CronJob(name="rebalance", cron="30 9 * * *")], log, grace_ns=2 * NS_PER_MINUTE
    )
    s.start()
    clock.step()
    assert clock.now_ns() == at("2024-09-30", "09:31")  # at once, not at the next window
    assert log.fired == [("rebalance", "2024-09-30T09:30:00.000+08:00")]
    assert log.missed == []


def test_start_on_a_holiday_reports_nothing_missed(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-10-01", "10:00"))
    log = Log()
    s = scheduler(clock, calendar, [CronJob(name="signal", cron="0 9 * * *")], log)
    s.start()
    assert log.missed == []
    assert s.armed() == {"signal": at("2024-10-08", "09:00")}


class SuspendingClock(SimClock):
    """A SimClock that can model a machine suspend the way a live event loop sees it: wall time jumps,
    while every pending timer keeps its *remaining delay* (loop timers run on a monotonic clock that
    stops during suspend), so each fires late by the suspend's length."""

    def suspend(self, duration_ns: int) -> None:
        self.advance_to(self.now_ns() + duration_ns)
        shifted = [(when + duration_ns, seq, handle) for when, seq, handle in self._heap]
        for when, _, handle in shifted:
            handle.when = when
        self._heap[:] = sorted(shifted, key=lambda item: (item[0], item[1]))


def test_machine_asleep_through_a_window_reports_it_missed_not_run(calendar: TradingCalendar) -> None:
    clock = SuspendingClock(at("2024-09-27", "08:00"))
    log = Log()
    s = scheduler(clock, calendar, [CronJob(name="signal", cron="0 9 * * *")], log)
    s.start()
    run_until(clock, at("2024-09-27", "08:30"))
    clock.suspend(150 * NS_PER_MINUTE)  # asleep 08:30-11:00; the 09:00 timer now fires at 11:30
    run_until(clock, at("2024-09-30", "10:00"))
    assert log.missed == [("signal", "2024-09-27T09:00:00.000+08:00")]
    assert log.fired == [("signal", "2024-09-30T09:00:00.000+08:00")]


def test_watchdog_notices_the_jump_before_the_late_timer(calendar: TradingCalendar) -> None:
    clock = SuspendingClock(at("2024-09-27", "08:00"))
    log = Log()
    missed_at: list[int] = []

    def miss(job: CronJob, scheduled_ns: int) -> None:
        missed_at.append(clock.now_ns())
        log.miss(job, scheduled_ns)

    jobs = [CronJob(name="rebalance", cron="30 9 * * *")]
    s = Scheduler(clock, calendar, jobs, log.fire, miss, watchdog_ns=NS_PER_MINUTE)
    s.start()
    run_until(clock, at("2024-09-27", "08:59:30"))
    clock.suspend(60 * NS_PER_MINUTE)  # wakes 09:59:30; the 09:30 job timer would fire only at 10:30
    run_until(clock, at("2024-09-27", "11:00"))
    assert log.missed == [("rebalance", "2024-09-27T09:30:00.000+08:00")]  # once, by the watchdog
    assert missed_at == [at("2024-09-27", "10:00")]
    assert log.fired == []
    assert s.armed() == {"rebalance": at("2024-09-30", "09:30")}
    s.stop()
    assert clock.next_timer_ns() is None


def test_a_failing_job_callback_does_not_stop_the_schedule(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-27", "08:00"))
    seen: list[int] = []

    def boom(job: CronJob, scheduled_ns: int) -> None:
        seen.append(scheduled_ns)
        raise RuntimeError("signal script crashed")

    s = Scheduler(clock, calendar, [CronJob(name="signal", cron="0 9 * * *")], boom, boom)
    s.start()
    run_until(clock, at("2024-10-01", "00:00"))
    assert seen == [at("2024-09-27", "09:00"), at("2024-09-30", "09:00")]


def test_next_fires_merges_jobs_in_time_order(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-30", "09:10"))
    jobs = [CronJob(name="summary", cron="5 15 * * *"), CronJob(name="signal", cron="0 9 * * *")]
    s = Scheduler(clock, calendar, jobs, lambda j, t: None, lambda j, t: None)
    shown = [(iso8601(t), job.name) for t, job in s.next_fires(3)]
    assert shown == [
        ("2024-09-30T15:05:00.000+08:00", "summary"),
        ("2024-10-08T09:00:00.000+08:00", "signal"),
        ("2024-10-08T15:05:00.000+08:00", "summary"),
    ]


def test_bad_cron_is_a_config_error_naming_the_job() -> None:
    with pytest.raises(ConfigError, match=r"jobs\.signal\.cron"):
        CronJob(name="signal", cron="0 25 * * *")
    with pytest.raises(ConfigError, match=r"5-field"):
        CronJob(name="signal", cron="0 0 9 * * *")


def test_duplicate_job_names_are_refused(calendar: TradingCalendar) -> None:
    clock = SimClock(at("2024-09-30", "09:10"))
    jobs = [CronJob(name="a", cron="0 9 * * *"), CronJob(name="a", cron="0 10 * * *")]
    with pytest.raises(ConfigError, match="unique"):
        Scheduler(clock, calendar, jobs, lambda j, t: None, lambda j, t: None)


_PROBE = """
import json, sys, time
from datetime import date
from zhixing.engine.clock import SimClock
from zhixing.engine.market.calendar import TradingCalendar, shanghai_ns
from zhixing.engine.schedule import CronJob, Scheduler, fire_times
fired = []
clock = SimClock(shanghai_ns(date(2024, 9, 27), "08:00"))
s = Scheduler(clock, TradingCalendar(), [CronJob(name="s", cron="0 9 * * *")],
              lambda j, t: fired.append(t), lambda j, t: None)
s.start()
while clock.step(shanghai_ns(date(2024, 10, 9), "00:00")):
    pass
print(json.dumps({"tzname": time.tzname[0], "fired": fired}))
"""


@pytest.mark.parametrize("tz", ["America/New_York", "UTC", "Asia/Shanghai"])
@pytest.mark.slow
def test_host_time_zone_is_irrelevant(tz: str) -> None:
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["tzname"] != ""
    assert tz != "America/New_York" or result["tzname"] == "EST"
    assert result["fired"] == [
        at("2024-09-27", "09:00"),
        at("2024-09-30", "09:00"),
        at("2024-10-08", "09:00"),
    ]


@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    start_minutes=st.integers(0, 700 * 24 * 60),
)
def test_fire_times_are_exactly_the_trading_days_at_the_cron_time(
    calendar: TradingCalendar, minute: int, hour: int, start_minutes: int
) -> None:
    start = at("2023-01-01", "00:00") + start_minutes * NS_PER_MINUTE
    job = CronJob(name="p", cron=f"{minute} {hour} * * *")
    times = list(itertools.islice(fire_times(job, calendar, start), 5))
    # the reference: walk the calendar day by day, independently of croniter
    expected: list[int] = []
    day = ns_to_shanghai(start).date()
    while len(expected) < 5:
        when = shanghai_ns(day, f"{hour:02d}:{minute:02d}")
        if calendar.is_trading_day(day) and when > start:
            expected.append(when)
        day += timedelta(days=1)
    assert times == expected
