"""``zhixing calendar`` prints the known range, its sources and the next holidays; the one-shot
``--config`` commands that schedule (``zhixing schedule next|export``) warn and refuse like
``zhixing run``."""

from __future__ import annotations

import argparse
import importlib.util
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from tests.calendar_fixtures import holidays_file, unupdated_exchange_calendar
from zhixing.engine.cli import main, schedule_cmd
from zhixing.engine.cli.calendar_cmd import coming_holidays, render
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import CalendarError
from zhixing.engine.market import TradingCalendar, shanghai_ns

CONFIG = """
[account]
id = "8800123456"

[store]
path = "zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "snapshots_20211201"

[calendar]
holidays = "holidays.txt"

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def shown(calendar: TradingCalendar, today: date) -> tuple[int, str]:
    out = io.StringIO()
    code = render(calendar, today, 8, Console(file=out, width=200, color_system=None))
    return code, out.getvalue()


def test_it_prints_the_known_range_the_sources_and_the_next_holidays() -> None:
    code, text = shown(TradingCalendar(sources=[unupdated_exchange_calendar()]), date(2026, 1, 5))
    assert code == 0
    assert "XSHG trading calendar: known 2000-01-04 to 2026-12-31 (360 day(s) after 2026-01-05)" in text
    assert "beyond it: refuse" in text
    assert "exchange-calendars" in text
    if importlib.util.find_spec("chinese_calendar") is None:  # the second source: how to add it
        assert "not installed (pip install chinese-calendar)" in text
    # 春节 2026: Mon 02-16 to Mon 02-23, six weekdays; 清明 Mon 04-06
    assert "2026-02-16 Mon │ 2026-02-23 Mon │ 6" in text
    assert "2026-04-06 Mon │ 2026-04-06 Mon │ 1" in text
    assert "OK: known for more than 30 days" in text


def test_within_thirty_days_and_past_the_end_it_says_what_to_update_and_exits_1() -> None:
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()])
    code, text = shown(calendar, date(2026, 12, 7))
    assert code == 1
    assert "trading calendar ends in 24 day(s) (2026-12-31)" in text
    assert "pip install -U exchange-calendars" in text
    code, text = shown(calendar, date(2027, 1, 4))
    assert code == 1
    assert "(4 day(s) before it)" in text
    assert "ran out on 2026-12-31" in text
    assert "none known" in text  # no closure listed after the end


def test_holidays_group_into_runs_over_the_weekends_between() -> None:
    calendar = TradingCalendar(sources=[unupdated_exchange_calendar()])
    runs = coming_holidays(calendar, date(2026, 9, 1), 2)
    assert [(h.first, h.last, h.weekdays) for h in runs] == [
        (date(2026, 9, 25), date(2026, 9, 25), 1),  # 中秋
        (date(2026, 10, 1), date(2026, 10, 7), 5),  # 国庆: Thu..Wed, the weekend inside
    ]


def test_the_command_applies_the_configs_holidays_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holidays_file(tmp_path)
    (tmp_path / "zhixing.toml").write_text(CONFIG, encoding="utf-8")
    code = main(["calendar", "--config", str(tmp_path / "zhixing.toml"), "--date", "2027-02-01", "-n", "2"])
    text = capsys.readouterr().out
    assert code == 0
    assert "to 2027-12-31" in text
    assert "holidays file" in text
    assert "2027-02-05 Fri" in text  # the file's Spring Festival
    assert main(["calendar", "--date", "2027-02-30"]) == 2
    assert "not a date: '2027-02-30'" in capsys.readouterr().err


# --- one-shot commands ---------------------------------------------------------------------------------


def far_config(folder: Path) -> Path:
    """A config whose holidays file vouches up to 2098-12-31 (made-up closures in each holiday window, ten
    or more a year), so the end of its known range does not depend on which exchange-calendars is
    installed."""

    def weekdays(start: date, n: int) -> list[date]:
        return [d for d in (start + timedelta(days=k) for k in range(14)) if d.weekday() < 5][:n]

    days: list[date] = []
    for year in range(2027, 2099):
        days += weekdays(date(year, 1, 1), 1) + weekdays(date(year, 2, 1), 5)
        days += weekdays(date(year, 5, 1), 1) + weekdays(date(year, 10, 1), 3)
    holidays_file(folder, known_until="2098-12-31", days=days)
    path = folder / "zhixing.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def schedule(argv: list[str], today: date) -> int:
    parser = argparse.ArgumentParser(prog="zhixing")
    schedule_cmd.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args, SimClock(shanghai_ns(today, "08:00")))
    return result


def test_schedule_next_warns_in_the_last_thirty_days_and_refuses_past_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(far_config(tmp_path))
    assert schedule(["schedule", "next", "--config", config, "-n", "3"], date(2098, 12, 15)) == 0
    captured = capsys.readouterr()
    assert "zhixing: warning: trading calendar ends in 16 day(s) (2098-12-31)" in captured.err
    assert len(captured.out.splitlines()) == 3
    with pytest.raises(CalendarError, match="2099-01-05 is past the end"):
        schedule(["schedule", "next", "--config", config], date(2099, 1, 5))
    with pytest.raises(CalendarError, match="2099-01-05 is past the end"):
        schedule(
            ["schedule", "export", "--cron", "--config", config, "--out", str(tmp_path / "o")],
            date(2099, 1, 5),
        )
    assert not (tmp_path / "o").exists()  # nothing written that would start refused runs


def test_schedule_next_uses_the_configs_holidays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(far_config(tmp_path))
    assert schedule(["schedule", "next", "--config", config, "-n", "1"], date(2098, 2, 1)) == 0
    # Saturday 2098-02-01; the file closes the five weekdays 02-03..02-07: the next summary is Monday 02-10
    first = capsys.readouterr().out.split()[0]
    assert first == "2098-02-10T15:05:00.000+08:00"
