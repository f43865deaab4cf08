"""A user on 2027-01-04 whose calendar was not updated: ``zhixing run`` tells them at start, by mail and
in its error, exactly what to update, and refuses; with ``beyond_known = "weekdays"`` it runs; with a
holidays file that has ``known_until = 2027-12-31`` and 2027's holidays it runs and skips them. In
December the same run mails the 30-day warning. "Today" is a virtual clock, never the wall clock."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.adapters.notify.test_notify_support import MailRecorder, smtp_server
from tests.calendar_fixtures import holidays_file, unupdated_exchange_calendar
from zhixing.engine.calendar_guard import calendar_for
from zhixing.engine.cli.run_cmd import run_config
from zhixing.engine.clock import SimClock
from zhixing.engine.config import Config, load_config
from zhixing.engine.errors import CalendarError
from zhixing.engine.market import shanghai_ns

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"

CONFIG = """
[account]
id = "8800123456"
cash_yuan = 1000000

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"

[notify.email]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "zhixing@example.com"
recipients = ["desk@example.com"]
timeout_s = 5

{calendar}

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def config_with(folder: Path, port: int, calendar: str = "") -> Config:
    path = folder / "zhixing.toml"
    path.write_text(CONFIG.format(data=SAMPLE.as_posix(), port=port, calendar=calendar), encoding="utf-8")
    return load_config(path)


def mails(recorder: MailRecorder) -> list[tuple[str, str]]:
    return [(str(m["Subject"]).strip(), str(m.get_body(("plain",)).get_content())) for m in recorder.mails]  # type: ignore[union-attr]


async def run_on(config: Config, day: date) -> list[tuple[str, int]]:
    """``zhixing run`` on ``day`` from 08:30 to 15:30 with the calendar of a user who did not upgrade."""
    calendar = calendar_for(config, sources=[unupdated_exchange_calendar()])
    result = await run_config(
        config, clock=SimClock(shanghai_ns(day, "08:30")), until="15:30", calendar=calendar
    )
    return result.fired


async def test_on_2027_01_04_an_unupdated_calendar_is_refused_and_the_operator_told_what_to_do(
    tmp_path: Path,
) -> None:
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = config_with(tmp_path, port)
        with pytest.raises(CalendarError) as caught:
            await run_on(config, date(2027, 1, 4))
    said = str(caught.value)
    for words in (
        "2027-01-04 is past the end of the known XSHG trading calendar (2026-12-31",
        "pip install -U exchange-calendars",
        "holidays file with a known_until line",
        'beyond_known = "weekdays"',
    ):
        assert words in said
    [(subject, body)] = mails(recorder)  # the operator who started it from a scheduler is told too
    assert (
        subject
        == "[zhixing] [88******56] trading calendar ran out on 2026-12-31: nothing is scheduled or traded"
    )
    assert said in body
    assert not config.store.path.exists()  # refused before the journal or the route was opened


async def test_on_2027_01_04_beyond_known_weekdays_runs_with_a_warning(tmp_path: Path) -> None:
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = config_with(tmp_path, port, '[calendar]\nbeyond_known = "weekdays"')
        fired = await run_on(config, date(2027, 1, 4))
    assert fired == [("summary", shanghai_ns(date(2027, 1, 4), "15:05"))]
    subjects = [subject for subject, _ in mails(recorder)]
    assert any("weekdays-only calendar since 2026-12-31: 2027-01-04 is a trading day" in s for s in subjects)
    assert any("execution" in s for s in subjects)  # the day's summary went out


@pytest.mark.slow
async def test_a_holidays_file_with_known_until_runs_2027_and_skips_its_holidays(tmp_path: Path) -> None:
    holidays_file(tmp_path)  # known_until = 2027-12-31 and 2027's holidays
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = config_with(tmp_path, port, '[calendar]\nholidays = "holidays.txt"')
        assert config.calendar.holidays is not None
        assert config.calendar.holidays.known_until == date(2027, 12, 31)
        monday = await run_on(config, date(2027, 1, 4))
        spring_festival = await run_on(config, date(2027, 2, 10))  # a Wednesday the file lists
        after = await run_on(config, date(2027, 2, 15))
    assert monday == [("summary", shanghai_ns(date(2027, 1, 4), "15:05"))]
    assert spring_festival == []
    assert after == [("summary", shanghai_ns(date(2027, 2, 15), "15:05"))]
    assert not any("calendar" in subject for subject, _ in mails(recorder))  # known for a year: quiet


@pytest.mark.slow
async def test_in_december_the_run_mails_how_many_days_are_left(tmp_path: Path) -> None:
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = config_with(tmp_path, port)
        fired = await run_on(config, date(2026, 12, 15))
    assert fired == [("summary", shanghai_ns(date(2026, 12, 15), "15:05"))]  # it still trades
    warnings = [(s, b) for s, b in mails(recorder) if "trading calendar ends" in s]
    assert [s for s, _ in warnings] == [
        "[zhixing] [88******56] trading calendar ends in 16 day(s) (2026-12-31)"
    ]
    assert "From 2027-01-01 zhixing run will refuse to start" in warnings[0][1]


def test_a_bad_holidays_file_is_a_config_error_naming_the_file_line_and_field(tmp_path: Path) -> None:
    from zhixing.engine.errors import ConfigError

    (tmp_path / "holidays.txt").write_text(
        "known_until = 2027-12-31\n2027-01-01\n2027-02-31\n", encoding="utf-8"
    )
    path = tmp_path / "zhixing.toml"
    path.write_text(
        CONFIG.format(data=SAMPLE.as_posix(), port=1, calendar='[calendar]\nholidays = "holidays.txt"'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "key 'calendar.holidays'" in text
    assert f"{tmp_path / 'holidays.txt'}, row 3, field 'date': no such day '2027-02-31'" in text
    path.write_text(
        CONFIG.format(data=SAMPLE.as_posix(), port=1, calendar='[calendar]\nbeyond_known = "guess"'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"calendar\.beyond_known.*must be one of refuse, weekdays"):
        load_config(path)
    path.write_text(
        CONFIG.format(data=SAMPLE.as_posix(), port=1, calendar='[calendar]\nholiday = "holidays.txt"'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"calendar\.holiday.*unknown key"):
        load_config(path)
