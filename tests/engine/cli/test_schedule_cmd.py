"""``zhixing schedule export``: Task Scheduler XML parses with its triggers; croniter reads the crontab."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from croniter import croniter

from zhixing.engine.cli import schedule_cmd
from zhixing.engine.cli.schedule_cmd import TASK_NS, export_cron, export_windows, read_jobs
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import ConfigError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.schedule import CronJob

N = {"t": TASK_NS}
JOBS = [
    CronJob(name="signal", cron="0 9 * * *", kind="signal"),
    CronJob(name="execute", cron="30 9 * * 1-5", kind="execute"),
    CronJob(name="summary", cron="5 15 * * *", kind="summary"),
]
CONFIG = """
[account]
id = "8800123456"

[store]
path = "zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "snapshots_20211201"

[[jobs]]
name = "signal"
cron = "0 9 * * *"
kind = "signal"
command = ["python", "signal.py"]

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def cli(argv: list[str], today: date = date(2024, 6, 3)) -> int:
    """The command as of ``today`` 08:00 Shanghai (a fixed day, never the wall clock's)."""
    parser = argparse.ArgumentParser(prog="zhixing")
    schedule_cmd.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args, SimClock(shanghai_ns(today, "08:00")))
    return result


def test_windows_xml_parses_and_has_a_weekday_trigger_per_job_time() -> None:
    xml, bat = export_windows(
        JOBS, config="C:\\zx\\zhixing.toml", python="C:\\zx\\.venv\\Scripts\\python.exe", workdir="C:\\zx"
    )
    root = ET.fromstring(xml.encode("utf-16"))
    assert root.tag == f"{{{TASK_NS}}}Task"
    triggers = root.findall("t:Triggers/t:CalendarTrigger", N)
    starts = [t.findtext("t:StartBoundary", namespaces=N) for t in triggers]
    assert starts == ["2024-01-01T09:00:00+08:00", "2024-01-01T09:30:00+08:00", "2024-01-01T15:05:00+08:00"]
    for trigger in triggers:
        days = [d.tag.split("}")[1] for d in trigger.find("t:ScheduleByWeek/t:DaysOfWeek", N) or []]
        assert days == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    assert root.findtext("t:Settings/t:MultipleInstancesPolicy", namespaces=N) == "IgnoreNew"
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=N) == "C:\\zx\\zhixing-launch.bat"
    assert root.findtext("t:Actions/t:Exec/t:WorkingDirectory", namespaces=N) == "C:\\zx"
    lines = bat.split("\r\n")
    assert 'call "C:\\zx\\.venv\\Scripts\\activate.bat"' in lines
    assert 'zhixing run "C:\\zx\\zhixing.toml"' in lines
    assert any("skips exchange holidays" in line for line in lines)


def test_windows_export_expands_minute_lists_and_refuses_day_of_month() -> None:
    xml, _ = export_windows(
        [CronJob(name="poll", cron="0,30 9-10 * * 1,3")], config="c.toml", python="py.exe", workdir="C:\\zx"
    )
    root = ET.fromstring(xml.encode("utf-16"))
    triggers = root.findall("t:Triggers/t:CalendarTrigger", N)
    assert len(triggers) == 4
    days = [d.tag.split("}")[1] for d in triggers[0].find("t:ScheduleByWeek/t:DaysOfWeek", N) or []]
    assert days == ["Monday", "Wednesday"]
    with pytest.raises(ConfigError, match=r"jobs\.monthly\.cron"):
        export_windows([CronJob(name="monthly", cron="0 9 1 * *")], config="c", python="p", workdir="w")
    with pytest.raises(ConfigError, match="at most 48"):
        export_windows([CronJob(name="busy", cron="* 9 * * *")], config="c", python="p", workdir="w")


def test_cron_lines_parse_with_croniter_in_shanghai_time() -> None:
    tab, sh = export_cron(
        JOBS, config="/srv/zx/zhixing.toml", python="/srv/zx/.venv/bin/python", workdir="/srv/zx"
    )
    all_lines = tab.splitlines()
    lines = [line for line in all_lines if line and not line.startswith("#")]
    assert lines[0] == "CRON_TZ=Asia/Shanghai"
    entries = lines[1:]
    assert len(entries) == 3
    for entry, job in zip(entries, JOBS, strict=True):
        expr = " ".join(entry.split()[:5])
        assert croniter.is_valid(expr)
        assert entry.split()[5:] == ["/srv/zx/zhixing-launch.sh"]
        assert all_lines[all_lines.index(entry) - 1] == f"# job {job.name} ({job.kind})"
    first = croniter(" ".join(entries[0].split()[:5]), datetime(2024, 9, 27, 12, tzinfo=UTC))
    assert first.get_next(datetime) == datetime(2024, 9, 30, 9, 0, tzinfo=UTC)  # Friday noon -> Monday 09:00
    assert sh.startswith("#!/bin/sh\n")
    assert ". /srv/zx/.venv/bin/activate" in sh
    assert "flock -n -E 0 .zhixing-launch.lock $zhixing_cmd run /srv/zx/zhixing.toml" in sh


def test_cli_export_reads_jobs_from_the_config_and_writes_files(tmp_path: Path) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "out"
    assert cli(["schedule", "export", "--cron", "--config", str(config), "--out", str(out)]) == 0
    tab = (out / "zhixing.crontab").read_text()
    assert "0 9 * * 1-5" in tab
    assert "5 15 * * 1-5" in tab
    assert (out / "zhixing-launch.sh").stat().st_mode & 0o111
    assert cli(["schedule", "export", "--windows", "--config", str(config), "--out", str(out)]) == 0
    root = ET.fromstring((out / "zhixing.xml").read_bytes())  # UTF-16 with its BOM, as schtasks takes it
    assert len(root.findall("t:Triggers/t:CalendarTrigger", N)) == 2


def test_cli_export_prints_when_no_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG, encoding="utf-8")
    assert cli(["schedule", "export", "--cron", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "===== zhixing.crontab =====" in out
    assert "CRON_TZ=Asia/Shanghai" in out


def test_cli_next_lists_trading_day_fire_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG, encoding="utf-8")
    assert cli(["schedule", "next", "--config", str(config), "-n", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(line.split()[1] in ("signal", "summary") for line in lines)
    assert all(line.split()[0].endswith("+08:00") for line in lines)


def test_bad_jobs_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "zhixing.toml"
    config.write_text(CONFIG.replace('"0 9 * * *"', '"61 9 * * *"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"jobs\[0\]\.cron"):
        read_jobs(config)
    config.write_text(CONFIG.replace('cron = "0 9 * * *"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"jobs\[0\]\.cron"):
        read_jobs(config)


def test_the_crontab_starts_a_launcher_that_exists_wherever_out_is(tmp_path: Path) -> None:
    """``--out DIR`` away from the config's folder: every crontab line names the launcher written there,
    an executable file that parses as sh, and the launcher changes to the config's folder first."""
    folder = tmp_path / "zx"
    folder.mkdir()
    config = folder / "zhixing.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "elsewhere" / "cron"
    assert cli(["schedule", "export", "--cron", "--config", str(config), "--out", str(out)]) == 0
    lines = [ln for ln in (out / "zhixing.crontab").read_text().splitlines() if ln and ln[0].isdigit()]
    assert len(lines) == 2
    for line in lines:
        command = shlex.split(line)[5]
        launcher = Path(command)
        assert launcher == (out / "zhixing-launch.sh").resolve()
        assert launcher.is_file()
        assert os.access(launcher, os.X_OK)
        assert subprocess.run(["sh", "-n", str(launcher)], check=False).returncode == 0
    assert f"cd {shlex.quote(str(folder.resolve()))}" in (out / "zhixing-launch.sh").read_text()
    assert cli(["schedule", "export", "--windows", "--config", str(config), "--out", str(out)]) == 0
    root = ET.fromstring((out / "zhixing.xml").read_bytes())
    command = root.find("t:Actions/t:Exec/t:Command", N)
    assert command is not None
    assert command.text is not None
    assert command.text.replace("\\", "/").endswith(f"{out.resolve().name}/zhixing-launch.bat")
    assert (out / "zhixing-launch.bat").is_file()
