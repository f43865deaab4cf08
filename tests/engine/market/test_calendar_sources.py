"""The trading calendar's sources and its known range: exchange-calendars over its whole precomputed
range, chinese-calendar as a second source, the user's holidays file; a closure from any source wins; past
the known range a day is refused (saying what to update) or, when the user chose it, a weekday."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.calendar_fixtures import (
    END_2026,
    HOLIDAYS_2027,
    MAKEUP_SATURDAY_2027,
    fake_chinese_calendar,
    holidays_file,
    unupdated_exchange_calendar,
)
from zhixing.engine.errors import CalendarError, InputError
from zhixing.engine.market import Phase, TradingCalendar, shanghai_ns
from zhixing.engine.market.calendar_sources import (
    chinese_calendar_source,
    exchange_calendars_source,
    library_sources,
    merge,
)
from zhixing.engine.market.holidays import read_holidays


def test_exchange_calendars_is_asked_for_its_whole_range_not_one_year_from_today() -> None:
    import warnings

    import exchange_calendars

    source = exchange_calendars_source()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exchange_calendars 4.13 on pandas 3 (see calendar_sources)
        bound = type(exchange_calendars.get_calendar("XSHG")).bound_max().date()
    assert source.last == bound >= END_2026  # not min(today + 1 year, bound): no wall clock in it
    assert source.first == date(2000, 1, 4)
    assert source.name.startswith("exchange-calendars ")
    assert all(d.weekday() < 5 for d in source.closed)
    assert date(2026, 10, 1) in source.closed  # National Day


def test_chinese_calendar_source_is_whole_years_of_official_weekday_holidays() -> None:
    fake = fake_chinese_calendar([date(2027, 2, 6), date(2027, 2, 8), date(2004, 1, 22)])
    source = chinese_calendar_source(fake)
    assert source is not None
    assert (source.first, source.last) == (date(2004, 1, 1), date(2027, 12, 31))
    assert source.closed == {date(2027, 2, 8), date(2004, 1, 22)}  # 02-06 is a Saturday: nothing to close
    assert source.name == "chinese-calendar 9.9.9 (official holidays)"
    assert chinese_calendar_source(object()) is None  # a release with another layout is not guessed at


def test_known_until_is_where_contiguous_coverage_ends() -> None:
    xc = unupdated_exchange_calendar()
    official = chinese_calendar_source(fake_chinese_calendar([date(2005, 5, 2), *HOLIDAYS_2027]))
    assert official is not None
    known = merge([xc, official])
    assert known.known_until == date(2027, 12, 31)  # the second source reaches a year further
    assert [c.used for c in known.coverage] == [True, True]
    later = chinese_calendar_source(fake_chinese_calendar([date(2028, 1, 3)]))
    assert later is not None
    known = merge([xc, later])  # 2027 known by nobody: the range stops at 2026
    assert known.known_until == END_2026
    assert [c.used for c in known.coverage] == [True, False]
    assert "after a gap" in known.notes[0]


def test_a_closure_from_any_source_wins_and_the_disagreement_is_reported() -> None:
    xc = unupdated_exchange_calendar()
    wednesday = date(2026, 6, 3)
    assert TradingCalendar(sources=[xc]).is_trading_day(wednesday)
    official = chinese_calendar_source(fake_chinese_calendar([date(2004, 1, 1), wednesday]))
    assert official is not None
    calendar = TradingCalendar(sources=[xc, official])
    assert not calendar.is_trading_day(wednesday)
    assert calendar.next_trading_day(date(2026, 6, 2)) == date(2026, 6, 4)
    found = {d.day: d for d in calendar.known.disagreements}
    assert found[wednesday].closed_by == (official.name,)
    assert found[wednesday].open_by == (xc.name,)


def test_a_makeup_working_weekend_is_never_a_trading_day(tmp_path: Path) -> None:
    """调休: the State Council moves a working day onto a Saturday; the exchanges stay closed."""
    official = chinese_calendar_source(
        fake_chinese_calendar([date(2004, 1, 1), *HOLIDAYS_2027], workdays=[MAKEUP_SATURDAY_2027])
    )
    assert official is not None
    for calendar in (
        TradingCalendar(sources=[unupdated_exchange_calendar(), official]),  # inside chinese-calendar's range
        TradingCalendar(sources=[unupdated_exchange_calendar()], beyond_known="weekdays"),  # beyond any range
        TradingCalendar(
            sources=[unupdated_exchange_calendar()], holidays=read_holidays(holidays_file(tmp_path))
        ),
    ):
        assert not calendar.is_trading_day(MAKEUP_SATURDAY_2027)
        assert calendar.phase_at(shanghai_ns(MAKEUP_SATURDAY_2027, "10:00")) is Phase.CLOSED
    assert not TradingCalendar().is_trading_day(date(2026, 2, 14))  # 2026's makeup Saturday, real data


def test_a_holidays_file_with_known_until_extends_the_range_and_closes_its_days(tmp_path: Path) -> None:
    holidays = read_holidays(holidays_file(tmp_path))
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()], holidays=holidays)
    assert calendar.known_until == date(2027, 12, 31)
    assert calendar.is_trading_day(date(2027, 1, 4))
    assert not calendar.is_trading_day(date(2027, 1, 1))
    assert not calendar.is_trading_day(date(2027, 2, 10))  # listed
    assert calendar.next_trading_day(date(2027, 2, 4)) == date(2027, 2, 15)
    assert calendar.previous_trading_day(date(2027, 2, 15)) == date(2027, 2, 4)
    assert calendar.next_trading_day(END_2026) == date(2027, 1, 4)
    with pytest.raises(CalendarError):
        calendar.is_trading_day(date(2028, 1, 3))
    file_row = calendar.known.coverage[-1]
    assert (file_row.first, file_row.last, file_row.note) == (
        date(2027, 1, 1),
        date(2027, 12, 31),
        "known_until",
    )


def test_the_holidays_file_also_closes_days_inside_the_libraries_range(tmp_path: Path) -> None:
    extra = date(2026, 6, 3)  # an unexpected closure the library does not know
    holidays = read_holidays(holidays_file(tmp_path, known_until=None, days=[extra]))
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()], holidays=holidays)
    assert not calendar.is_trading_day(extra)
    assert calendar.known_until == END_2026
    assert any(
        d.day == extra and d.closed_by == ("holidays file holidays.txt",)
        for d in calendar.known.disagreements
    )


@pytest.mark.parametrize(
    ("known_until", "days", "words"),
    [
        ("2027-12-31", [date(2026, 2, 9)], "lists no New Year"),
        ("2027-12-31", HOLIDAYS_2027[:4], "lists no Spring Festival"),  # 01-01, 02-05 (weekdays)
        ("2027-12-31", HOLIDAYS_2027[:16], "lists no National Day"),  # up to May Day
        ("2027-12-30", [date(2027, 1, 1)], "lists no Spring Festival"),  # one day short of the year
        ("2027-06-30", [date(2027, 1, 2)], "lists no New Year"),  # a Saturday counts for nothing
        ("2028-06-30", HOLIDAYS_2027, "lists no New Year"),
    ],
)
def test_known_until_without_those_years_holidays_is_refused(
    tmp_path: Path, known_until: str, days: list[date], words: str
) -> None:
    path = holidays_file(tmp_path, known_until=known_until, days=days)
    with pytest.raises(InputError) as caught:
        merge([unupdated_exchange_calendar()], read_holidays(path))
    assert (caught.value.path, caught.value.row, caught.value.field) == (str(path), 2, "known_until")
    assert words in str(caught.value)
    assert "enter" in str(caught.value)


def test_a_short_extension_needs_only_a_date_in_its_part_of_the_year(tmp_path: Path) -> None:
    path = holidays_file(tmp_path, known_until="2027-01-15", days=[date(2027, 1, 1)])
    known = merge([unupdated_exchange_calendar()], read_holidays(path))
    assert known.known_until == date(2027, 1, 15)


def test_known_until_before_the_libraries_end_does_not_shorten_the_range(tmp_path: Path) -> None:
    path = holidays_file(tmp_path, known_until="2025-12-31", days=[date(2025, 2, 3)])
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()], holidays=read_holidays(path))
    assert calendar.known_until == END_2026
    assert "adds nothing" in calendar.known.notes[0]


def test_past_the_known_range_a_day_is_refused_saying_what_to_update() -> None:
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()])
    assert calendar.known_until == END_2026
    with pytest.raises(CalendarError) as caught:
        calendar.is_trading_day(date(2027, 1, 4))
    text = str(caught.value)
    assert "2027-01-04 is past the end of the known XSHG trading calendar (2026-12-31" in text
    assert "pip install -U exchange-calendars" in text
    assert "known_until" in text
    assert 'beyond_known = "weekdays"' in text
    with pytest.raises(ValueError, match="past the end"):  # old callers that catch ValueError still do
        calendar.next_trading_day(END_2026)
    assert calendar.phase_at(shanghai_ns(date(2027, 1, 4), "10:00")) is Phase.CLOSED


def test_weekdays_beyond_the_known_range_when_the_user_chose_it(tmp_path: Path) -> None:
    holidays = read_holidays(holidays_file(tmp_path, known_until=None, days=[date(2027, 2, 10)]))
    calendar = TradingCalendar(
        sources=[unupdated_exchange_calendar()], holidays=holidays, beyond_known="weekdays"
    )
    assert calendar.known_until == END_2026
    assert calendar.is_trading_day(date(2027, 1, 1))  # New Year's Day, listed nowhere: taken for a weekday
    assert calendar.is_trading_day(date(2027, 1, 4))
    assert not calendar.is_trading_day(date(2027, 1, 9))  # Saturday
    assert not calendar.is_trading_day(date(2027, 2, 10))  # listed in the file
    assert calendar.next_trading_day(END_2026) == date(2027, 1, 1)
    assert calendar.next_trading_day(date(2027, 2, 9)) == date(2027, 2, 11)
    assert calendar.previous_trading_day(date(2027, 2, 11)) == date(2027, 2, 9)
    assert calendar.previous_trading_day(date(2027, 1, 1)) == END_2026
    assert calendar.phase_at(shanghai_ns(date(2027, 1, 4), "10:00")) is Phase.CONTINUOUS
    with pytest.raises(ValueError, match="beyond_known"):
        TradingCalendar(beyond_known="guess")  # type: ignore[arg-type]


def test_the_real_chinese_calendar_agrees_except_on_the_exchanges_extra_closures() -> None:
    """With the package installed: where it and exchange-calendars both know a day they disagree only on
    days the exchange closed beyond the official list (New Year's Eve before 2025, 2004's extra days)."""
    module = pytest.importorskip("chinese_calendar")
    official = chinese_calendar_source(module)
    assert official is not None
    xc = exchange_calendars_source()
    known = merge([xc, official])
    assert known.disagreements
    assert all(d.closed_by == (xc.name,) and d.open_by == (official.name,) for d in known.disagreements)
    assert date(2024, 2, 9) in {d.day for d in known.disagreements}
    assert any(s.name == official.name for s in library_sources())  # used by default when installed
