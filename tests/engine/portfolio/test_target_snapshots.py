"""Inputs that are stale or change under us (``engine.target_snapshots``): the signal job journals the
targets file it planned; the execute job trades that snapshot and refuses, telling the operator, a file
changed or removed since, a signal that never ran today, a file from an earlier day. The recorded
2021-12-01 of the sim route is "today", on a virtual clock; the jobs run as the scheduler runs them."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.cli.run_cmd import ConfiguredSession, open_configured
from zhixing.engine.config import JobConfig, load_config
from zhixing.engine.market import shanghai_ns
from zhixing.engine.notify import Message

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
TODAY = date(2021, 12, 1)
YESTERDAY_CLOSE = shanghai_ns(date(2021, 11, 30), "15:00")

TARGETS = "symbol,weight\n600258.SH,0.05\n600446.SH,0.05\n"

# the signal writes targets.csv from targets.src when that exists; otherwise it leaves the folder alone
SIGNAL = """
import pathlib
src = pathlib.Path("targets.src")
if src.exists():
    pathlib.Path("targets.csv").write_bytes(src.read_bytes())
print("signal done")
"""

CONFIG = """
[account]
id = "8800123456"
cash_yuan = 2000000
positions = {{ "600566.SH" = 20000 }}

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"
{signal}
[[jobs]]
name = "rebalance"
cron = "30 9 * * *"
kind = "execute"
targets = "targets.csv"
algo = "twap"
window_minutes = 30
"""

SIGNAL_JOB = """
[[jobs]]
name = "signal"
cron = "0 9 * * *"
kind = "signal"
command = ["{python}", "signal.py"]
timeout_s = 60
"""


@dataclass
class Day:
    folder: Path
    run: ConfiguredSession
    notices: list[Message]

    @property
    def targets(self) -> Path:
        return self.folder / "targets.csv"

    def job(self, name: str) -> JobConfig:
        return next(j for j in self.run.config.jobs if j.name == name)

    async def fire(self, name: str, hhmm: str) -> tuple[bool, str]:
        """Run job ``name`` as if fired at ``hhmm``: (it ran or is running, its detail)."""
        await self.run.runner.run_job(self.job(name), shanghai_ns(TODAY, hhmm))
        outcome = self.run.runner.outcomes[-1]
        assert outcome.job == name
        return outcome.status in ("ok", "running"), outcome.detail

    def told(self, text: str) -> bool:
        return any(text in f"{m.subject}\n{m.body}" for m in self.notices)


async def open_day(folder: Path, *, with_signal: bool = True, source: str | None = TARGETS) -> Day:
    (folder / "signal.py").write_text(SIGNAL, encoding="utf-8")
    if source is not None:
        (folder / "targets.src").write_text(source, encoding="utf-8")
    signal = SIGNAL_JOB.format(python=Path(sys.executable).as_posix()) if with_signal else ""
    path = folder / "zhixing.toml"
    path.write_text(CONFIG.format(data=SAMPLE.as_posix(), signal=signal), encoding="utf-8")
    run = await open_configured(load_config(path), start="09:00")
    notices: list[Message] = []
    run.runner.notify = notices.append
    return Day(folder, run, notices)


@pytest.fixture
async def day(tmp_path: Path) -> AsyncIterator[Day]:
    opened = await open_day(tmp_path)
    try:
        yield opened
    finally:
        await opened.run.close()


def nothing_traded(day: Day) -> bool:
    return day.run.runner.rebalances == [] and not day.run.session.oms.working_orders()


def set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


# ---------------------------------------------------------------------------------------------- the rule


async def test_the_execute_job_trades_what_the_signal_planned(day: Day) -> None:
    assert await day.fire("signal", "09:00") == (True, "exit 0")
    ok, detail = await day.fire("rebalance", "09:30")
    assert ok, detail
    (rebalance,) = day.run.runner.rebalances
    assert {r.symbol for r in rebalance.plan.rows} == {"600566.SH", "600258.SH", "600446.SH"}
    # the journal holds the bytes planned, with their hash
    conn = sqlite3.connect(day.run.config.store.path)
    try:
        rows = conn.execute(
            "SELECT trade_date, job, signal_job, content, problem FROM input_snapshots"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("2021-12-01", "rebalance", "signal", TARGETS.encode(), "")]


async def test_a_file_changed_after_the_signal_is_refused_told_and_nothing_sent(day: Day) -> None:
    assert (await day.fire("signal", "09:00"))[0]
    day.targets.write_text("symbol,weight\n600258.SH,0.5\n600446.SH,0.4\n", encoding="utf-8")
    ok, detail = await day.fire("rebalance", "09:30")
    assert not ok
    assert "changed since the signal run" in detail
    assert str(day.targets) in detail
    assert day.told("changed since the signal run")
    assert nothing_traded(day)


async def test_a_file_truncated_after_the_signal_is_refused(day: Day) -> None:
    assert (await day.fire("signal", "09:00"))[0]
    day.targets.write_text("symbol,weight\n600258.SH,0.05\n", encoding="utf-8")  # half-written rewrite
    ok, detail = await day.fire("rebalance", "09:30")
    assert not ok
    assert "changed since the signal run" in detail
    assert nothing_traded(day)


async def test_a_file_removed_after_the_signal_is_refused(day: Day) -> None:
    assert (await day.fire("signal", "09:00"))[0]
    day.targets.unlink()
    ok, detail = await day.fire("rebalance", "09:30")
    assert not ok
    assert "gone since the signal run" in detail
    assert day.told("gone since the signal run")
    assert nothing_traded(day)


async def test_a_file_replaced_by_identical_bytes_is_traded(day: Day) -> None:
    assert (await day.fire("signal", "09:00"))[0]
    fresh = day.folder / "targets.new"
    fresh.write_text(TARGETS, encoding="utf-8")
    os.replace(fresh, day.targets)  # a new file (new inode, new mtime), the same content
    ok, detail = await day.fire("rebalance", "09:30")
    assert ok, detail
    assert len(day.run.runner.rebalances) == 1


async def test_the_execute_job_without_a_signal_run_today_is_refused_and_told(day: Day) -> None:
    day.targets.write_text(TARGETS, encoding="utf-8")  # a perfectly good file nobody planned
    ok, detail = await day.fire("rebalance", "09:30")
    assert not ok
    assert "no snapshot of these targets from a signal run today (2021-12-01)" in detail
    assert day.told("signal job did not run or did not finish")
    assert nothing_traded(day)


async def test_a_failed_signal_leaves_nothing_to_trade(tmp_path: Path) -> None:
    day = await open_day(tmp_path)
    try:
        (tmp_path / "signal.py").write_text("import sys\nsys.exit(3)\n", encoding="utf-8")
        day.targets.write_text(TARGETS, encoding="utf-8")
        assert not (await day.fire("signal", "09:00"))[0]
        ok, detail = await day.fire("rebalance", "09:30")
        assert not ok
        assert "no snapshot" in detail
        assert nothing_traded(day)
    finally:
        await day.run.close()


async def test_yesterdays_snapshot_is_not_todays(day: Day) -> None:
    """A journal carried over from the previous day holds a snapshot of the same job: not traded today."""
    day.targets.write_text(TARGETS, encoding="utf-8")
    await day.run.session.store.save_input_snapshot(
        {
            "trade_date": "2021-11-30",
            "job": "rebalance",
            "signal_job": "signal",
            "path": str(day.targets),
            "sha256": hashlib.sha256(TARGETS.encode()).hexdigest(),
            "mtime_ns": shanghai_ns(date(2021, 11, 30), "09:00"),
            "taken_ns": shanghai_ns(date(2021, 11, 30), "09:00"),
            "content": TARGETS.encode(),
            "problem": "",
        }
    )
    ok, detail = await day.fire("rebalance", "09:30")
    assert not ok
    assert "no snapshot" in detail
    assert nothing_traded(day)


async def test_yesterdays_file_is_refused_at_the_signal_and_at_execute(tmp_path: Path) -> None:
    day = await open_day(tmp_path, source=None)  # the signal writes nothing: yesterday's file stays
    try:
        day.targets.write_text(TARGETS, encoding="utf-8")
        set_mtime(day.targets, YESTERDAY_CLOSE - 60 * 10**9)  # 14:59 on the previous trading day
        assert (await day.fire("signal", "09:00"))[0]
        assert day.told("before the previous trading day's close")  # in the signal summary
        ok, detail = await day.fire("rebalance", "09:30")
        assert not ok
        assert "refused this file" in detail
        assert "left over from an earlier day" in detail
        assert nothing_traded(day)
    finally:
        await day.run.close()


async def test_an_undated_file_the_signal_run_did_not_write_is_refused(tmp_path: Path) -> None:
    """Prepared at 15:01 the evening before (after the close: not stale by the previous-close rule), and
    the signal exits 0 today without rewriting it: older than the signal run, so not what it decided."""
    day = await open_day(tmp_path, source=None)
    try:
        day.targets.write_text(TARGETS, encoding="utf-8")
        set_mtime(day.targets, YESTERDAY_CLOSE + 60 * 10**9)
        assert (await day.fire("signal", "09:00"))[0]
        assert day.told("before today's signal run started")
        ok, detail = await day.fire("rebalance", "09:30")
        assert not ok
        assert "before today's signal run started" in detail
    finally:
        await day.run.close()


async def test_a_dated_file_is_judged_by_its_date_not_its_mtime(tmp_path: Path) -> None:
    day = await open_day(tmp_path, source=None)
    try:
        day.targets.write_text("symbol,weight,date\n600258.SH,0.05,2021-12-01\n", encoding="utf-8")
        set_mtime(day.targets, YESTERDAY_CLOSE - 3600 * 10**9)  # written Friday for Monday, say
        assert (await day.fire("signal", "09:00"))[0]
        ok, detail = await day.fire("rebalance", "09:30")
        assert ok, detail
    finally:
        await day.run.close()


async def test_a_date_column_naming_another_day_is_refused_with_row_and_field(tmp_path: Path) -> None:
    dated = "symbol,weight,as_of\n600258.SH,0.05,2021-12-01\n600446.SH,0.05,2021-11-30\n"
    day = await open_day(tmp_path, source=dated)
    try:
        assert (await day.fire("signal", "09:00"))[0]
        ok, detail = await day.fire("rebalance", "09:30")
        assert not ok
        assert "row 3" in detail
        assert "field 'as_of'" in detail
        assert "dated 2021-11-30" in detail
        assert nothing_traded(day)
    finally:
        await day.run.close()


# ------------------------------------------------------------------------------- a config without signal


async def test_without_a_signal_job_the_execute_job_reads_todays_file(tmp_path: Path) -> None:
    day = await open_day(tmp_path, with_signal=False)
    try:
        day.targets.write_text(TARGETS, encoding="utf-8")
        ok, detail = await day.fire("rebalance", "09:30")
        assert ok, detail
    finally:
        await day.run.close()


async def test_without_a_signal_job_yesterdays_file_is_refused(tmp_path: Path) -> None:
    day = await open_day(tmp_path, with_signal=False)
    try:
        day.targets.write_text(TARGETS, encoding="utf-8")
        set_mtime(day.targets, YESTERDAY_CLOSE - 10**9)
        ok, detail = await day.fire("rebalance", "09:30")
        assert not ok
        assert "left over from an earlier day" in detail
        assert day.told("left over from an earlier day")
        assert nothing_traded(day)
    finally:
        await day.run.close()
