"""The calendar never runs out silently: 30 days before its known range ends the operator is told once a
day; past it a start is refused (or, by choice, weekdays are traded with a warning each day); "today" is
the Shanghai date of the injected clock, at midnight too, whatever the host's time zone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.calendar_fixtures import (
    END_2026,
    fake_chinese_calendar,
    holidays_file,
    unupdated_exchange_calendar,
)
from zhixing.engine.calendar_guard import (
    CalendarState,
    CalendarWatch,
    status_of,
)
from zhixing.engine.clock import SimClock, TimerHandle
from zhixing.engine.errors import CalendarError
from zhixing.engine.market import Phase, TradingCalendar, iso8601, shanghai_ns, trading_date_of
from zhixing.engine.market.calendar_sources import chinese_calendar_source
from zhixing.engine.market.holidays import read_holidays
from zhixing.engine.notify import Message, Severity
from zhixing.engine.schedule import CronJob, Scheduler
from zhixing.engine.units import NS_PER_SECOND

ROOT = Path(__file__).resolve().parents[2]


def unupdated(beyond_known: str = "refuse") -> TradingCalendar:
    return TradingCalendar(sources=[unupdated_exchange_calendar()], beyond_known=beyond_known)  # type: ignore[arg-type]


def run_until(clock: SimClock, until_ns: int) -> None:
    while clock.step(until_ns):
        pass
    clock.advance_to(until_ns)


class Inbox:
    """What the operator receives, with the Shanghai date each message was posted on."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.messages: list[tuple[date, Message]] = []

    def __call__(self, message: Message) -> None:
        self.messages.append((trading_date_of(self.clock.now_ns()), message))

    def days(self) -> Counter[date]:
        return Counter(day for day, _ in self.messages)


@pytest.mark.parametrize(
    ("today", "state", "days_left"),
    [
        (date(2026, 11, 30), CalendarState.KNOWN, 31),
        (date(2026, 12, 1), CalendarState.ENDING, 30),
        (date(2026, 12, 31), CalendarState.ENDING, 0),
        (date(2027, 1, 1), CalendarState.BEYOND, -1),
    ],
)
def test_thirty_days_before_the_end_is_ending_and_the_day_after_is_beyond(
    today: date, state: CalendarState, days_left: int
) -> None:
    status = status_of(unupdated(), today)
    assert (status.state, status.days_left) == (state, days_left)


def test_the_warning_comes_once_a_day_from_december_1_to_31_and_the_refusal_after() -> None:
    """One long-running process from 2026-11-30 to 2027-01-02: the daily check looks every hour but tells
    the operator once per date; nothing on 11-30 (31 days left)."""
    clock = SimClock(shanghai_ns(date(2026, 11, 30), "08:30"))
    inbox = Inbox(clock)
    watch = CalendarWatch(clock, unupdated(), inbox, account="8800123456")
    assert watch.start().state is CalendarState.KNOWN
    run_until(clock, shanghai_ns(date(2027, 1, 2), "23:00"))
    watch.stop()
    per_day = inbox.days()
    december = [date(2026, 12, 1) + timedelta(days=k) for k in range(31)]
    assert per_day == Counter({day: 1 for day in [*december, date(2027, 1, 1), date(2027, 1, 2)]})
    subjects = {day: m.subject for day, m in inbox.messages}
    assert (
        subjects[date(2026, 12, 1)]
        == "[zhixing] [88******56] trading calendar ends in 30 day(s) (2026-12-31)"
    )
    assert subjects[date(2026, 12, 30)].endswith("ends in 1 day(s) (2026-12-31)")
    assert subjects[date(2026, 12, 31)].endswith("ends today (2026-12-31)")
    for day in december:
        message = dict(inbox.messages)[day]
        assert message.severity is Severity.WARNING
        assert "zhixing run will refuse to start" in message.body
        assert "pip install -U exchange-calendars" in message.body
    ran_out = dict(inbox.messages)[date(2027, 1, 1)]
    assert ran_out.severity is Severity.CRITICAL
    assert "nothing is scheduled or traded" in ran_out.subject
    assert "known_until" in ran_out.body


def test_a_restart_on_the_same_day_tells_again_at_start() -> None:
    for _ in range(2):
        clock = SimClock(shanghai_ns(date(2026, 12, 15), "08:30"))
        inbox = Inbox(clock)
        CalendarWatch(clock, unupdated(), inbox).start()
        assert [m.subject for _, m in inbox.messages] == [
            "[zhixing] trading calendar ends in 16 day(s) (2026-12-31)"
        ]


def test_past_the_end_a_start_is_refused_after_telling_the_operator() -> None:
    clock = SimClock(shanghai_ns(date(2027, 1, 4), "08:30"))
    inbox = Inbox(clock)
    watch = CalendarWatch(clock, unupdated(), inbox)
    with pytest.raises(CalendarError, match="2027-01-04 is past the end of the known XSHG trading calendar"):
        watch.start()
    assert [m.severity for _, m in inbox.messages] == [Severity.CRITICAL]
    assert clock.next_timer_ns() is None  # refused: no daily check left armed


def test_weekdays_beyond_the_end_runs_with_a_warning_every_day() -> None:
    clock = SimClock(shanghai_ns(date(2027, 1, 4), "08:30"))
    inbox = Inbox(clock)
    watch = CalendarWatch(clock, unupdated("weekdays"), inbox)
    assert watch.start().state is CalendarState.BEYOND
    run_until(clock, shanghai_ns(date(2027, 1, 10), "12:00"))
    watch.stop()
    assert inbox.days() == Counter({date(2027, 1, 4) + timedelta(days=k): 1 for k in range(7)})
    subjects = dict(inbox.messages)
    assert subjects[date(2027, 1, 4)].subject.endswith("2027-01-04 is a trading day")
    assert subjects[date(2027, 1, 9)].subject.endswith("2027-01-09 is not a trading day")
    assert all(m.severity is Severity.WARNING for _, m in inbox.messages)


def test_an_updated_calendar_is_quiet(tmp_path: Path) -> None:
    calendar = TradingCalendar(
        sources=[unupdated_exchange_calendar()], holidays=read_holidays(holidays_file(tmp_path))
    )
    clock = SimClock(shanghai_ns(date(2027, 1, 4), "08:30"))
    inbox = Inbox(clock)
    CalendarWatch(clock, calendar, inbox).start()
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("utc", "refused"),
    [
        ("2026-12-31T15:59:59+00:00", False),  # 23:59:59 on 12-31 in Shanghai: the last known day
        ("2026-12-31T16:00:00+00:00", True),  # 00:00 on 2027-01-01 in Shanghai (still 12-31 in UTC)
    ],
)
def test_midnight_is_shanghai_midnight(utc: str, refused: bool) -> None:
    from datetime import datetime

    clock = SimClock(int(datetime.fromisoformat(utc).timestamp()) * NS_PER_SECOND)
    inbox = Inbox(clock)
    watch = CalendarWatch(clock, unupdated(), inbox)
    if refused:
        with pytest.raises(CalendarError, match="2027-01-01 is past the end"):
            watch.start()
    else:
        assert watch.start().days_left == 0
        assert inbox.messages[0][1].subject.endswith("ends today (2026-12-31)")


@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Pacific/Kiritimati"])
@pytest.mark.slow
def test_the_host_time_zone_does_not_move_the_end(tz: str) -> None:
    code = (
        "import json\n"
        "from engine.calendar_guard import status_of\n"
        "from engine.market import TradingCalendar, trading_date_of\n"
        "from tests.calendar_fixtures import unupdated_exchange_calendar\n"
        "cal = TradingCalendar(sources=[unupdated_exchange_calendar()])\n"
        "ns = 1798732800 * 10**9  # 2026-12-31T16:00:00Z = 2027-01-01 00:00 Shanghai\n"
        "s = status_of(cal, trading_date_of(ns))\n"
        "print(json.dumps([s.today.isoformat(), s.state.value]))\n"
    )
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["2027-01-01", "beyond"]


class ManualClock:
    """A wall clock the test sets by hand (a machine that slept, a clock stepped by NTP). Its timers
    fire when the test says, whatever the wall time reads, as a live loop's monotonic timers do."""

    def __init__(self, now_ns: int) -> None:
        self.now = now_ns
        self.timers: list[TimerHandle] = []

    def now_ns(self) -> int:
        return self.now

    def call_at(self, when_ns: int, callback: Callable[[], None], name: str = "") -> TimerHandle:
        handle = TimerHandle(when_ns, callback, name)
        self.timers.append(handle)
        return handle

    async def sleep_until(self, when_ns: int) -> None:  # pragma: no cover - not used here
        raise NotImplementedError

    def fire(self) -> None:
        pending = [h for h in self.timers if not h.cancelled]
        self.timers = []
        for handle in pending:
            handle.callback()


@pytest.mark.parametrize(
    ("wall", "told"),
    [
        # asleep for three days: the day it wakes on is told once, the days slept through are not made up
        ([("2026-12-13", "14:10"), ("2026-12-13", "15:10")], [date(2026, 12, 10), date(2026, 12, 13)]),
        # stepped back over midnight: the day before is not told again; the next new day is
        (
            [("2026-12-09", "23:50"), ("2026-12-10", "00:50"), ("2026-12-11", "00:01")],
            [date(2026, 12, 10), date(2026, 12, 11)],
        ),
    ],
)
def test_a_clock_that_jumps_tells_each_new_day_once(wall: list[tuple[str, str]], told: list[date]) -> None:
    clock = ManualClock(shanghai_ns(date(2026, 12, 10), "08:30"))
    posted: list[date] = []
    watch = CalendarWatch(clock, unupdated(), lambda m: posted.append(trading_date_of(clock.now)))
    watch.start()
    for day, hhmm in wall:
        clock.now = shanghai_ns(date.fromisoformat(day), hhmm)
        clock.fire()
    watch.stop()
    assert posted == told


def test_the_calendar_ending_under_a_running_process_stops_jobs_and_says_so() -> None:
    """Started 2026-12-30 and left running: the 09:30 job fires on 12-30 and 12-31, never after; on
    2027-01-01 the operator is told nothing is scheduled; on Monday 01-04 the market counts as closed."""
    calendar = unupdated()
    clock = SimClock(shanghai_ns(date(2026, 12, 30), "08:00"))
    inbox = Inbox(clock)
    fired: list[str] = []
    scheduler = Scheduler(
        clock,
        calendar,
        [CronJob(name="rebalance", cron="30 9 * * *")],
        on_fire=lambda job, when: fired.append(iso8601(when)),
        on_missed=lambda job, when: None,
    )
    watch = CalendarWatch(clock, calendar, inbox)
    watch.start()
    scheduler.start()
    run_until(clock, shanghai_ns(date(2027, 1, 5), "12:00"))
    scheduler.stop()
    watch.stop()
    assert fired == ["2026-12-30T09:30:00.000+08:00", "2026-12-31T09:30:00.000+08:00"]
    critical = [(day, m) for day, m in inbox.messages if m.severity is Severity.CRITICAL]
    assert [day for day, _ in critical] == [
        date(2027, 1, 1),
        date(2027, 1, 2),
        date(2027, 1, 3),
        date(2027, 1, 4),
        date(2027, 1, 5),
    ]
    assert "schedules no job and sends no order" in critical[0][1].body
    assert calendar.phase_at(shanghai_ns(date(2027, 1, 4), "10:00")) is Phase.CLOSED


def test_weekdays_keeps_scheduling_past_the_end() -> None:
    calendar = unupdated("weekdays")
    clock = SimClock(shanghai_ns(date(2026, 12, 31), "08:00"))
    fired: list[str] = []
    scheduler = Scheduler(
        clock,
        calendar,
        [CronJob(name="rebalance", cron="30 9 * * *")],
        on_fire=lambda job, when: fired.append(iso8601(when)[:10]),
        on_missed=lambda job, when: None,
    )
    scheduler.start()
    run_until(clock, shanghai_ns(date(2027, 1, 5), "12:00"))
    scheduler.stop()
    # 2027-01-01 is New Year's Day, but no source lists it: the risk the user accepted with "weekdays"
    assert fired == ["2026-12-31", "2027-01-01", "2027-01-04", "2027-01-05"]
    assert calendar.known_until == END_2026


def test_a_disagreement_in_the_next_thirty_days_is_told_at_start() -> None:
    """One source closes Wednesday 2026-06-03, the exchange calendar keeps it open: the day is treated as
    closed, and a start within 30 days of it says so (a replay of an older day is not told)."""
    wednesday = date(2026, 6, 3)
    xc = unupdated_exchange_calendar()
    agreeing = [d for d in xc.closed if d.year >= 2004]  # the same holidays as the exchange's, and one more
    official = chinese_calendar_source(fake_chinese_calendar([*agreeing, wednesday]))
    assert official is not None
    calendar = TradingCalendar(sources=[xc, official])
    told: dict[date, list[Message]] = {}
    for today in (date(2026, 5, 20), date(2026, 4, 1), date(2026, 6, 4)):
        clock = SimClock(shanghai_ns(today, "08:30"))
        inbox = Inbox(clock)
        CalendarWatch(clock, calendar, inbox).start()
        told[today] = [m for _, m in inbox.messages]
    [message] = told[date(2026, 5, 20)]
    assert message.subject == "[zhixing] calendar sources disagree on 1 coming day(s)"
    assert "2026-06-03: closed by chinese-calendar 9.9.9 (official holidays); open by exchange-calendars" in (
        message.body
    )
    assert told[date(2026, 4, 1)] == []  # more than 30 days ahead: zhixing calendar lists it
    assert told[date(2026, 6, 4)] == []  # already past
