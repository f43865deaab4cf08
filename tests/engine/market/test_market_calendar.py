"""Trading days from exchange_calendars, intraday phases in Shanghai time whatever the host TZ."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.engine.market import (
    SHANGHAI,
    Phase,
    TradingCalendar,
    iso8601,
    ns_to_shanghai,
    shanghai_ns,
    trading_date_of,
)

CAL = TradingCalendar()
DAY = date(2021, 12, 1)  # a Wednesday, and a trading day
UTC8 = timezone(timedelta(hours=8))  # independent of zoneinfo, to check it
NS = 1_000_000_000


def _ns(text: str) -> int:
    """ISO 8601 with an offset (the feeds' format) to int ns."""
    return int(datetime.fromisoformat(text).timestamp()) * NS


def test_trading_days_weekends_and_holidays() -> None:
    assert CAL.is_trading_day(DAY)
    assert CAL.is_trading_day(date(2022, 6, 1))
    assert not CAL.is_trading_day(date(2023, 1, 23))  # Spring Festival, a Monday
    assert not CAL.is_trading_day(date(2023, 2, 4))  # Saturday
    assert not CAL.is_trading_day(date(2023, 2, 5))  # Sunday
    assert not CAL.is_trading_day(date(2021, 10, 1))  # National Day


def test_next_and_previous_trading_day_skip_holidays_and_weekends() -> None:
    assert CAL.next_trading_day(date(2023, 1, 20)) == date(2023, 1, 30)  # the whole Spring Festival week
    assert CAL.previous_trading_day(date(2023, 1, 30)) == date(2023, 1, 20)
    assert CAL.next_trading_day(date(2023, 1, 23)) == date(2023, 1, 30)  # from inside the holiday
    assert CAL.previous_trading_day(date(2023, 1, 23)) == date(2023, 1, 20)
    assert CAL.next_trading_day(date(2023, 2, 3)) == date(2023, 2, 6)  # Friday -> Monday
    assert CAL.next_trading_day(date(2023, 2, 4)) == date(2023, 2, 6)  # Saturday -> Monday
    assert CAL.previous_trading_day(date(2023, 2, 6)) == date(2023, 2, 3)
    assert CAL.next_trading_day(DAY) == date(2021, 12, 2)
    assert CAL.previous_trading_day(DAY) == date(2021, 11, 30)


def test_days_outside_the_calendar_are_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="past the end of the known XSHG trading calendar"):
        CAL.is_trading_day(date(2099, 1, 5))
    with pytest.raises(ValueError, match="outside the XSHG calendar"):
        CAL.is_trading_day(date(1999, 6, 1))
    with pytest.raises(ValueError, match="outside the XSHG calendar"):
        CAL.phase_at(shanghai_ns(date(1999, 6, 1), "10:00"))


def test_past_the_known_range_the_market_is_closed_all_day_not_a_crash() -> None:
    """A process still running when the calendar ends sends nothing: no phase takes orders or cancels."""
    ts = shanghai_ns(date(2099, 1, 5), "10:00")  # a Monday, in the continuous session's hours
    assert CAL.phase_at(ts) is Phase.CLOSED
    assert not CAL.accepts_orders(ts)
    assert not CAL.accepts_cancel(ts)
    assert CAL.continuous_windows(date(2099, 1, 5)) == []


@pytest.mark.parametrize(
    ("hhmm", "phase", "cancels"),
    [
        ("00:00", Phase.PRE_OPEN, False),
        ("09:14:59", Phase.PRE_OPEN, False),
        ("09:15", Phase.OPENING_CALL, True),
        ("09:19:59", Phase.OPENING_CALL, True),
        ("09:20", Phase.OPENING_CALL, False),
        ("09:24:59", Phase.OPENING_CALL, False),
        ("09:25", Phase.PRE_CONTINUOUS, True),
        ("09:29:59", Phase.PRE_CONTINUOUS, True),
        ("09:30", Phase.CONTINUOUS, True),
        ("11:29:59", Phase.CONTINUOUS, True),
        ("11:30", Phase.LUNCH, False),
        ("12:59:59", Phase.LUNCH, False),
        ("13:00", Phase.CONTINUOUS, True),
        ("14:56:59", Phase.CONTINUOUS, True),
        ("14:57", Phase.CLOSING_CALL, False),
        ("14:59:59", Phase.CLOSING_CALL, False),
        ("15:00", Phase.AFTER_HOURS, False),
        ("15:05", Phase.AFTER_HOURS, False),
        ("23:59:59", Phase.AFTER_HOURS, False),
    ],
)
def test_phase_boundaries_start_inclusive_end_exclusive(hhmm: str, phase: Phase, cancels: bool) -> None:
    ts = shanghai_ns(DAY, hhmm)
    assert CAL.phase_at(ts) is phase
    assert CAL.is_continuous(ts) is (phase is Phase.CONTINUOUS)
    assert CAL.accepts_cancel(ts) is cancels


def test_one_nanosecond_before_a_boundary_is_still_the_earlier_phase() -> None:
    assert CAL.phase_at(shanghai_ns(DAY, "11:30") - 1) is Phase.CONTINUOUS
    assert CAL.phase_at(shanghai_ns(DAY, "14:57") - 1) is Phase.CONTINUOUS
    assert CAL.phase_at(shanghai_ns(DAY, "13:00") - 1) is Phase.LUNCH
    assert CAL.accepts_cancel(shanghai_ns(DAY, "09:20") - 1)


def test_accepts_orders_from_the_opening_call_to_the_close_except_lunch() -> None:
    accepted = {
        hhmm: CAL.accepts_orders(shanghai_ns(DAY, hhmm)) for hhmm in ["09:00", "09:15", "09:22", "09:27"]
    }
    assert accepted == {"09:00": False, "09:15": True, "09:22": True, "09:27": True}
    assert not CAL.accepts_orders(shanghai_ns(DAY, "12:00"))
    assert CAL.accepts_orders(shanghai_ns(DAY, "14:58"))
    assert not CAL.accepts_orders(shanghai_ns(DAY, "15:00"))


@pytest.mark.parametrize("day", [date(2023, 1, 23), date(2023, 2, 4)])
@pytest.mark.parametrize("hhmm", ["09:15", "10:00", "14:58", "16:00"])
def test_non_trading_days_are_closed_all_day(day: date, hhmm: str) -> None:
    ts = shanghai_ns(day, hhmm)
    assert CAL.phase_at(ts) is Phase.CLOSED
    assert not CAL.is_continuous(ts)
    assert not CAL.accepts_cancel(ts)
    assert not CAL.accepts_orders(ts)


# Phase changes in the real HTSC Insight feed for 000400.SZ on 2022-06-01 (snapshots/, column `phase`):
# 1 opening call, 2 09:25-09:30, 3 continuous, 4 lunch, 5 closing call, 6 closed.
_HTSC = {"1": Phase.OPENING_CALL, "2": Phase.PRE_CONTINUOUS, "3": Phase.CONTINUOUS, "4": Phase.LUNCH}
_HTSC |= {"5": Phase.CLOSING_CALL, "6": Phase.AFTER_HOURS}


@pytest.mark.parametrize(
    ("ts", "code"),
    [
        ("2022-06-01T09:15:00.000+08:00", "1"),
        ("2022-06-01T09:24:57.000+08:00", "1"),
        ("2022-06-01T09:25:00.000+08:00", "2"),
        ("2022-06-01T09:29:03.000+08:00", "2"),
        ("2022-06-01T09:30:00.000+08:00", "3"),
        ("2022-06-01T11:29:57.000+08:00", "3"),
        ("2022-06-01T11:30:00.000+08:00", "4"),
        ("2022-06-01T12:59:03.000+08:00", "4"),
        ("2022-06-01T13:00:00.000+08:00", "3"),
        ("2022-06-01T14:56:57.000+08:00", "3"),
        ("2022-06-01T14:57:00.000+08:00", "5"),
        ("2022-06-01T14:59:51.000+08:00", "5"),
        ("2022-06-01T15:00:00.000+08:00", "6"),
    ],
)
def test_phases_match_the_real_feed(ts: str, code: str) -> None:
    assert CAL.phase_at(_ns(ts)) is _HTSC[code]


def test_continuous_windows() -> None:
    morning = int(datetime(2021, 12, 1, 1, 30, tzinfo=UTC).timestamp()) * NS
    assert CAL.continuous_windows(DAY) == [
        (morning, morning + 2 * 3600 * NS),
        (morning + int(3.5 * 3600) * NS, morning + (int(5.5 * 3600) - 180) * NS),
    ]
    assert CAL.continuous_windows(date(2023, 1, 23)) == []
    for start, end in CAL.continuous_windows(DAY):
        assert CAL.phase_at(start) is Phase.CONTINUOUS
        assert CAL.phase_at(end - 1) is Phase.CONTINUOUS
        assert CAL.phase_at(end) is not Phase.CONTINUOUS


def test_shanghai_ns_is_utc_plus_eight() -> None:
    assert shanghai_ns(DAY, "09:30") == int(datetime(2021, 12, 1, 9, 30, tzinfo=UTC8).timestamp()) * NS
    assert shanghai_ns(DAY, "09:30:15") == shanghai_ns(DAY, "09:30") + 15 * NS
    assert shanghai_ns(DAY, "00:00") == int(datetime(2021, 11, 30, 16, 0, tzinfo=UTC).timestamp()) * NS


@pytest.mark.parametrize("hhmm", ["9:30", "0930", "09:30:15.5", "T09:30", "09:30+08:00", "25:00", ""])
def test_shanghai_ns_rejects_other_time_spellings(hhmm: str) -> None:
    with pytest.raises(ValueError, match="bad time of day"):
        shanghai_ns(DAY, hhmm)


def test_iso8601_has_milliseconds_and_the_shanghai_offset() -> None:
    assert iso8601(_ns("2022-06-01T09:15:00.000+08:00")) == "2022-06-01T09:15:00.000+08:00"
    assert iso8601(shanghai_ns(DAY, "14:57") + 123_456_789) == "2021-12-01T14:57:00.123+08:00"
    assert iso8601(0) == "1970-01-01T08:00:00.000+08:00"


def test_ns_to_shanghai_and_trading_date_of() -> None:
    moment = ns_to_shanghai(shanghai_ns(DAY, "09:30") + 1_500)
    assert moment == datetime(2021, 12, 1, 9, 30, 0, 1, tzinfo=UTC8)
    assert moment.tzinfo is SHANGHAI
    # 00:30 in Shanghai is still the previous day in UTC: the trading date is the Shanghai one.
    assert trading_date_of(shanghai_ns(DAY, "00:30")) == DAY
    assert trading_date_of(shanghai_ns(DAY, "23:59:59")) == DAY
    assert trading_date_of(shanghai_ns(DAY, "00:00") - 1) == date(2021, 11, 30)


@given(st.integers(min_value=_ns("2020-01-01T00:00:00+08:00"), max_value=_ns("2026-12-31T23:59:59+08:00")))
def test_phase_at_agrees_with_a_direct_wall_clock_reading(ts: int) -> None:
    wall = ns_to_shanghai(ts)
    hhmm = wall.strftime("%H:%M")
    day = wall.date()
    phase = CAL.phase_at(ts)
    if not CAL.is_trading_day(day):
        assert phase is Phase.CLOSED
    elif "09:30" <= hhmm < "11:30" or "13:00" <= hhmm < "14:57":
        assert phase is Phase.CONTINUOUS
    else:
        assert phase is not Phase.CONTINUOUS
    assert trading_date_of(ts) == day


_TZ_SCRIPT = textwrap.dedent(
    """
    import time
    from datetime import date
    from zhixing.engine.market import Phase, TradingCalendar, iso8601, shanghai_ns, trading_date_of

    time.tzset()
    cal = TradingCalendar()
    day = date(2021, 12, 1)
    assert shanghai_ns(day, "09:30") == 1638322200 * 10**9, shanghai_ns(day, "09:30")
    assert cal.phase_at(shanghai_ns(day, "09:30")) is Phase.CONTINUOUS
    assert cal.phase_at(shanghai_ns(day, "11:30")) is Phase.LUNCH
    assert cal.phase_at(shanghai_ns(day, "14:57")) is Phase.CLOSING_CALL
    assert cal.phase_at(shanghai_ns(date(2023, 1, 23), "10:00")) is Phase.CLOSED
    assert trading_date_of(shanghai_ns(day, "00:30")) == day
    assert iso8601(shanghai_ns(day, "09:30")) == "2021-12-01T09:30:00.000+08:00"
    print("ok")
    """
)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai", "America/New_York", "Pacific/Kiritimati"])
@pytest.mark.slow
def test_results_do_not_depend_on_the_host_time_zone(tz: str) -> None:
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _TZ_SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
