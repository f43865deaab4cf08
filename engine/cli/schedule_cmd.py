"""``zhixing schedule``: hand the start of ``zhixing run`` to the OS scheduler, or show the next fire times.

``export --windows`` prints a Task Scheduler definition (XML; one weekly trigger Mon-Fri per job time, in
+08:00 whatever the PC's time zone) and a launcher ``.bat`` that activates the venv and runs
``zhixing run CONFIG``. ``export --cron`` prints a crontab (``CRON_TZ=Asia/Shanghai``) and a shell launcher.
The OS only starts the process: the trading-day filter (holidays, weekends) and missed-window reporting
are done by zhixing itself. A start while an engine already runs is a no-op (Task Scheduler's
``IgnoreNew``; ``flock -n`` in the shell launcher).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from xml.etree import ElementTree as ET

from croniter import croniter

from zhixing.engine.calendar_guard import check_one_shot
from zhixing.engine.cli.routes import load_checked
from zhixing.engine.clock import Clock, LiveClock
from zhixing.engine.errors import ConfigError
from zhixing.engine.market.calendar import iso8601
from zhixing.engine.schedule import CronJob, Scheduler

TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_WEEKDAYS = (1, 2, 3, 4, 5)
MAX_TRIGGERS_PER_JOB = 48


def add_parsers(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="OS scheduler exports and the next fire times of the jobs")
    ssub = schedule.add_subparsers(dest="schedule_command", required=True)
    export = ssub.add_parser("export", help="print a Task Scheduler or crontab definition and a launcher")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--windows", action="store_true", help="Task Scheduler XML and a .bat launcher")
    target.add_argument("--cron", action="store_true", help="a crontab and a shell launcher")
    export.add_argument("--config", required=True, type=Path, help="the zhixing TOML config")
    export.add_argument("--python", help="the venv's python (default: this interpreter)")
    export.add_argument("--workdir", help="working directory (default: the config's folder)")
    export.add_argument("--out", type=Path, help="write the files into this folder instead of printing")
    export.set_defaults(handler=run_export)
    nxt = ssub.add_parser("next", help="the next fire times (trading days, Shanghai time)")
    nxt.add_argument("--config", required=True, type=Path, help="the zhixing TOML config")
    nxt.add_argument("-n", type=int, default=10, help="how many (default 10)")
    nxt.set_defaults(handler=run_next)


def read_jobs(path: Path) -> list[CronJob]:
    """The config's jobs (the whole file is validated by ``engine.cli.routes.load_checked``)."""
    return [CronJob(name=j.name, cron=j.cron, kind=j.kind) for j in load_checked(path).jobs]


def _times_and_days(job: CronJob) -> tuple[list[tuple[int, int]], list[int]]:
    """(hour, minute) pairs and weekdays (0=Sunday) of a job whose day-of-month and month are ``*``."""
    fields = job.cron.split()
    if fields[2] != "*" or fields[3] != "*":
        raise ConfigError(
            f"key 'jobs.{job.name}.cron': day-of-month and month must be '*' for a Task Scheduler "
            "export (use --cron, or let 'zhixing run' schedule it)"
        )
    expanded = croniter(job.cron).expanded
    minutes = list(range(60)) if "*" in expanded[0] else [int(m) for m in expanded[0]]
    hours = list(range(24)) if "*" in expanded[1] else [int(h) for h in expanded[1]]
    days = _WEEKDAYS if fields[4] == "*" else sorted({int(d) % 7 for d in expanded[4]})
    times = [(h, m) for h in hours for m in minutes]
    if len(times) > MAX_TRIGGERS_PER_JOB:
        raise ConfigError(
            f"key 'jobs.{job.name}.cron': {len(times)} start times a day; a Task Scheduler export takes at "
            f"most {MAX_TRIGGERS_PER_JOB} (start zhixing once and let 'zhixing run' schedule the rest)"
        )
    return times, list(days)


LAUNCHER_SH = "zhixing-launch.sh"
LAUNCHER_BAT = "zhixing-launch.bat"


def export_windows(
    jobs: Sequence[CronJob],
    *,
    config: str,
    python: str,
    workdir: str,
    task_name: str = "zhixing",
    launcher_dir: str | None = None,
) -> tuple[str, str]:
    """(Task Scheduler XML, launcher .bat) that start ``zhixing run CONFIG`` at each job's time, Mon-Fri.
    The task runs the launcher where it is written, ``launcher_dir`` (default ``workdir``)."""
    ET.register_namespace("", TASK_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        child = ET.SubElement(parent, f"{{{TASK_NS}}}{tag}")
        if text is not None:
            child.text = text
        return child

    task = ET.Element(f"{{{TASK_NS}}}Task", {"version": "1.2"})
    info = el(task, "RegistrationInfo")
    el(info, "Description", f"zhixing run {config} (jobs: {', '.join(j.name for j in jobs)}); "
       "trading days are filtered by zhixing itself")  # fmt: skip
    el(info, "URI", f"\\{task_name}")
    triggers = el(task, "Triggers")
    for job in jobs:
        times, days = _times_and_days(job)
        for hour, minute in times:
            trigger = el(triggers, "CalendarTrigger")
            # +08:00: the trigger fires at Shanghai time whatever the PC's time zone
            el(trigger, "StartBoundary", f"2024-01-01T{hour:02d}:{minute:02d}:00+08:00")
            el(trigger, "Enabled", "true")
            weekly = el(trigger, "ScheduleByWeek")
            week_days = el(weekly, "DaysOfWeek")
            for day in days:
                el(week_days, _DAY_NAMES[day])
            el(weekly, "WeeksInterval", "1")
    principal = el(el(task, "Principals"), "Principal")
    principal.set("id", "Author")
    el(principal, "LogonType", "InteractiveToken")
    el(principal, "RunLevel", "LeastPrivilege")
    settings = el(task, "Settings")
    for tag, value in (
        ("MultipleInstancesPolicy", "IgnoreNew"),  # one engine: later triggers are no-ops while it runs
        ("DisallowStartIfOnBatteries", "false"),
        ("StopIfGoingOnBatteries", "false"),
        ("StartWhenAvailable", "true"),  # a late start is fine: zhixing reports the missed windows
        ("WakeToRun", "true"),
        ("ExecutionTimeLimit", "PT0S"),  # runs all day; no time limit
        ("Enabled", "true"),
    ):
        el(settings, tag, value)
    actions = el(task, "Actions")
    actions.set("Context", "Author")
    execute = el(actions, "Exec")
    el(execute, "Command", str(PureWindowsPath(launcher_dir or workdir) / LAUNCHER_BAT))
    el(execute, "WorkingDirectory", workdir)
    ET.indent(task)
    xml = '<?xml version="1.0" encoding="UTF-16"?>\n' + ET.tostring(task, encoding="unicode") + "\n"

    interpreter = PureWindowsPath(python)
    lines = [
        "@echo off",
        "rem zhixing launcher, generated by 'zhixing schedule export --windows'.",
        "rem The task starts this at each job's time Mon-Fri; zhixing itself skips exchange holidays",
        "rem and reports missed windows. Import the task with: schtasks /Create /TN zhixing /XML zhixing.xml",
        "chcp 65001 >nul",
        f'cd /d "{workdir}"',
    ]
    if interpreter.parent.name.lower() == "scripts":
        lines += [f'call "{interpreter.parent / "activate.bat"}"', f'zhixing run "{config}"']
    else:  # not a venv interpreter: run the package with it directly
        lines += [f'"{interpreter}" -m engine.cli run "{config}"']
    bat = "\r\n".join(lines) + "\r\n"
    return xml, bat


def export_cron(
    jobs: Sequence[CronJob], *, config: str, python: str, workdir: str, launcher_dir: str | None = None
) -> tuple[str, str]:
    """(crontab, launcher .sh): one line per job, in Shanghai time (CRON_TZ), Mon-Fri unless the cron says.
    The crontab starts the launcher where it is written, ``launcher_dir`` (default ``workdir``); the
    launcher changes to ``workdir`` first."""
    launcher = str(PurePosixPath(launcher_dir or workdir) / LAUNCHER_SH)
    tab = [
        "# zhixing, generated by 'zhixing schedule export --cron'; install with 'crontab -e'.",
        "# CRON_TZ is honoured by cronie and systemd-cron; with another cron set the host TZ to Shanghai.",
        "# zhixing itself skips exchange holidays and reports missed windows.",
        "CRON_TZ=Asia/Shanghai",
    ]
    for job in jobs:
        fields = job.cron.split()
        if fields[4] == "*":
            fields[4] = "1-5"
        tab += [f"# job {job.name} ({job.kind})", f"{' '.join(fields)} {shlex.quote(launcher)}"]
    interpreter = PurePosixPath(python)
    run = (
        f". {shlex.quote(str(interpreter.parent / 'activate'))}\nzhixing_cmd='zhixing'"
        if interpreter.parent.name == "bin"
        else f"zhixing_cmd={shlex.quote(f'{interpreter} -m engine.cli')}"
    )
    sh = "\n".join(
        [
            "#!/bin/sh",
            "# zhixing launcher, generated by 'zhixing schedule export --cron'.",
            "# A start while an engine runs exits quietly (flock -n); zhixing also holds an instance lock.",
            "set -e",
            f"cd {shlex.quote(workdir)}",
            run,
            f"exec flock -n -E 0 .zhixing-launch.lock $zhixing_cmd run {shlex.quote(config)} "
            ">> zhixing-run.log 2>&1",
        ]
    )
    return "\n".join(tab) + "\n", sh + "\n"


def run_export(args: argparse.Namespace, clock: Clock | None = None) -> int:
    config: Path = args.config if args.config.is_absolute() else args.config.resolve()
    loaded = load_checked(config)
    jobs = [CronJob(name=j.name, cron=j.cron, kind=j.kind) for j in loaded.jobs]
    check_one_shot(loaded, clock or LiveClock())  # past the known range the runs it starts would refuse
    python = args.python or sys.executable
    workdir = args.workdir or str(config.resolve().parent)
    # the scheduler entry names the launcher where this writes it (printed: where you are told to save it)
    launcher_dir = str(args.out.resolve()) if args.out is not None else workdir
    if args.windows:
        xml, bat = export_windows(
            jobs, config=str(config), python=python, workdir=workdir, launcher_dir=launcher_dir
        )
        files = {"zhixing.xml": xml.encode("utf-16"), LAUNCHER_BAT: bat.encode("utf-8")}
    else:
        tab, sh = export_cron(
            jobs, config=str(config), python=python, workdir=workdir, launcher_dir=launcher_dir
        )
        files = {"zhixing.crontab": tab.encode(), LAUNCHER_SH: sh.encode()}
    if args.out is None:
        for name, data in files.items():
            text = data.decode("utf-16" if name.endswith(".xml") else "utf-8")
            note = " (save as UTF-16, or use --out DIR)" if name.endswith(".xml") else ""
            if name in (LAUNCHER_SH, LAUNCHER_BAT):
                note = f" (save as {launcher_dir}/{name}: the schedule starts it there)"
            print(f"===== {name}{note} =====\n{text}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = args.out / name
        path.write_bytes(data)
        if name.endswith(".sh"):
            path.chmod(0o755)
        print(f"wrote {path}")
    return 0


def run_next(args: argparse.Namespace, clock: Clock | None = None) -> int:
    """``clock`` is for tests; the next fire times are after its now, on the config's calendar."""
    config = load_checked(args.config)
    jobs = [CronJob(name=j.name, cron=j.cron, kind=j.kind) for j in config.jobs]
    clock = clock or LiveClock()
    calendar = check_one_shot(config, clock)
    scheduler = Scheduler(clock, calendar, jobs, lambda j, t: None, lambda j, t: None)
    for when, job in scheduler.next_fires(args.n):
        print(f"{iso8601(when)}  {job.name}  ({job.kind})")
    return 0
