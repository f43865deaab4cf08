"""The parts of a stop, each on its own: process trees (engine/child_processes.py), the watchdog and the
daemon executor (engine/stop.py), a backup cut short, the close that runs every step (DayRunner,
LiveSession.close). Real processes, real SQLite files; every wait is on something observable."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.engine.cli.test_stop_process import SAMPLE, gone
from zhixing.engine.child_processes import live_trees, start_tree
from zhixing.engine.cli.run_cmd import open_configured
from zhixing.engine.cli.runner import DayRunner
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.errors import StoreError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.notify import Message
from zhixing.engine.stop import (
    EXIT_UNCLEAN,
    STOP_NOTIFY_S,
    DaemonExecutor,
    LoopStop,
    StopWatchdog,
    stop_bound_s,
)
from zhixing.engine.store import StateStore

posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
LIMIT_S = 60.0


async def until(predicate: Any, what: str) -> None:
    """Wait for ``predicate()`` (bounded: a failure, not a timing)."""
    async with asyncio.timeout(LIMIT_S):
        while not predicate():  # noqa: ASYNC110 (a file, a process: nothing here to wait on)
            await asyncio.sleep(0.01)


def tree_script(folder: Path, grandchild_body: str) -> list[str]:
    """A script that starts a grandchild (``grandchild_body`` runs first in it), writes both pids once
    the grandchild is ready, and waits for ever."""
    script = folder / "tree.py"
    script.write_text(
        f"""
import os, subprocess, sys, time
child = '''
import os, signal, sys, time
{grandchild_body}
open(sys.argv[1], "w").write("ready")
while True:
    time.sleep(1)
'''
grand = subprocess.Popen([sys.executable, "-c", child, "ready"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not os.path.exists("ready"):
    time.sleep(0.01)
open("pids.tmp", "w").write(f"{{os.getpid()}} {{grand.pid}}")
os.replace("pids.tmp", "pids.txt")
while True:
    time.sleep(1)
""",
        encoding="utf-8",
    )
    return [sys.executable, str(script)]


async def started(folder: Path, grandchild_body: str) -> tuple[Any, int, int]:
    tree = await start_tree(*tree_script(folder, grandchild_body), cwd=folder)
    pids = folder / "pids.txt"
    await until(pids.exists, "the tree")
    script, grandchild = (int(p) for p in pids.read_text().split())
    return tree, script, grandchild


# ------------------------------------------------------------------------------------- process trees
@posix
async def test_a_tree_is_ended_with_a_grandchild_that_ignores_sigterm(tmp_path: Path) -> None:
    tree, script, grandchild = await started(tmp_path, "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    assert await tree.end(grace_s=0.2)
    assert gone(script)
    assert gone(grandchild)
    assert tree not in live_trees()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="members found by session in /proc")
async def test_a_grandchild_that_left_the_process_group_is_ended_too(tmp_path: Path) -> None:
    """``setpgid(0, 0)``: a group of its own, so killpg misses it; it is still in the script's session."""
    tree, _script, grandchild = await started(
        tmp_path, "os.setpgid(0, 0)\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)"
    )
    try:
        assert await tree.end(grace_s=0.2)
        assert gone(grandchild)
    finally:
        if not gone(grandchild):
            import os
            import signal

            os.kill(grandchild, signal.SIGKILL)


@posix
async def test_a_signal_script_that_exits_leaves_nothing_running(tmp_path: Path) -> None:
    """The script exits 0 at once and leaves a background process behind: it is ended with the job."""
    script = tmp_path / "model.py"
    script.write_text(
        """
import subprocess, sys
child = "import os, time\\nopen('bg.pid', 'w').write(str(os.getpid()))\\nwhile True: time.sleep(1)"
subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
while True:
    try:
        if open("bg.pid").read():
            break
    except OSError:
        pass
""",
        encoding="utf-8",
    )
    config_file = tmp_path / "zhixing.toml"
    config_file.write_text(
        f"""
[account]
id = "8800123456"
cash_yuan = 1000000
[store]
path = "zhixing.db"
[route]
kind = "sim"
[route.sim]
data = "{SAMPLE.as_posix()}"
[[jobs]]
name = "model"
cron = "30 9 * * *"
kind = "signal"
command = ["{Path(sys.executable).as_posix()}", "model.py"]
kill_grace_s = 0.2
""",
        encoding="utf-8",
    )
    config = load_config(config_file)
    told: list[Message] = []
    session = SimpleNamespace(clock=SimClock(shanghai_ns(date(2021, 12, 1), "09:30")))  # what it reads
    runner = DayRunner(config=config, session=cast(Any, session), notify=told.append)
    ok, detail = await runner.run_signal(config.jobs[0])
    assert ok, detail
    background = int((tmp_path / "bg.pid").read_text())
    assert gone(background)
    assert not live_trees()


# ------------------------------------------------------------------------------------- the watchdog
@posix
async def test_the_watchdog_kills_every_tree_and_ends_the_process_unclean(tmp_path: Path) -> None:
    tree, script, grandchild = await started(tmp_path, "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    codes: list[int] = []
    watchdog = StopWatchdog(exit=codes.append)
    watchdog.arm(3600, "stopped by SIGTERM")
    watchdog.expire()  # what its timer does at the bound
    watchdog.disarm()
    assert codes == [EXIT_UNCLEAN]
    await until(lambda: gone(script) and gone(grandchild), "the tree killed by the watchdog")
    assert await asyncio.wait_for(tree.proc.wait(), LIMIT_S) == -9  # SIGKILL
    tree.close()


def test_the_second_signal_forces_and_moves_the_deadline_closer() -> None:
    events: list[str] = []
    armed: list[float] = []

    class Recorder(StopWatchdog):
        def arm(self, seconds: float, why: str, code: int = EXIT_UNCLEAN) -> None:
            armed.append(seconds)

    stop = LoopStop(
        bound_s=39.0,
        on_stop=lambda s: events.append(f"stop {s}"),
        on_force=lambda s: events.append(f"force {s}"),
        watchdog=Recorder(exit=lambda code: None),
    )
    stop.trigger(15)
    stop.trigger(2)
    stop.trigger(2)  # a third changes nothing
    assert events == ["stop 15", "force 2"]
    assert armed == [39.0, 5.0]
    assert stop.name == "SIGTERM"
    assert stop.forced


def test_the_bound_is_the_margin_the_longest_kill_grace_and_the_cancel_wait(tmp_path: Path) -> None:
    path = tmp_path / "zhixing.toml"
    path.write_text(
        f"""
shutdown = "{{shutdown}}"
[account]
id = "8800123456"
cash_yuan = 1000000
[store]
path = "zhixing.db"
[route]
kind = "sim"
[route.sim]
data = "{SAMPLE.as_posix()}"
[[jobs]]
name = "model"
cron = "30 9 * * *"
kind = "signal"
command = ["model"]
kill_grace_s = 12
""",
        encoding="utf-8",
    )
    text = path.read_text()
    path.write_text(text.replace("{shutdown}", "cancel"))
    assert stop_bound_s(load_config(path)) == 15 + 12 + 19
    path.write_text(text.replace("{shutdown}", "leave"))
    assert stop_bound_s(load_config(path)) == 15 + 12


def test_a_thread_stuck_in_a_call_does_not_hold_the_shutdown() -> None:
    """A call that never returns (a hung share): the executor's shutdown waits its linger, then leaves it."""
    release = threading.Event()
    executor = DaemonExecutor(linger_s=0.05)
    future = executor.submit(release.wait)
    executor.shutdown(wait=True)  # returns although the call still runs
    assert not future.done()
    (stuck,) = executor.running()
    assert stuck.daemon  # it ends with the process
    release.set()
    assert future.result(timeout=LIMIT_S) is True


# ------------------------------------------------------------------------------------- a backup cut short
BACKUP_CONFIG = f"""
[account]
id = "8800123456"
cash_yuan = 1000000
[store]
path = "zhixing.db"
[route]
kind = "sim"
[route.sim]
data = "{SAMPLE.as_posix()}"
[backup]
dir = "backups"
[[jobs]]
name = "backup"
cron = "10 15 * * *"
kind = "backup"
"""


@pytest.mark.slow
async def test_a_backup_stops_at_its_next_step_when_the_run_stops(tmp_path: Path) -> None:
    """The journal is locked by another process, so the copy waits (200 busy steps ~ 3 minutes). The run
    stops: the job ends reported, the copy stops at its next step and removes its partial file."""
    (tmp_path / "zhixing.toml").write_text(BACKUP_CONFIG, encoding="utf-8")
    config = load_config(tmp_path / "zhixing.toml")
    db = tmp_path / "zhixing.db"
    store = await StateStore.open(db)
    await store.close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # nobody else may even read
    session = SimpleNamespace(
        oms=SimpleNamespace(flush=_nothing),
        clock=SimpleNamespace(now_ns=lambda: 1_638_342_000_000_000_000),
        store=SimpleNamespace(path=db),
        day=None,  # no start of day to run first
    )
    told: list[Message] = []
    runner = DayRunner(config=config, session=cast(Any, session), notify=told.append)
    folder = tmp_path / "backups"

    def partial_files() -> list[Path]:
        """The copy being written: the backup's set folder under its temporary name (file_set)."""
        return list(folder.glob(".*.partial")) if folder.exists() else []

    try:
        runner.on_fire(config.jobs[0], 0)
        await until(partial_files, "the copy under way")
        runner.stop_jobs("stopped by SIGTERM")
        await asyncio.wait_for(runner.wait_idle(), LIMIT_S)
        # the job's end waited for the copy (up to BACKUP_ABORT_WAIT_S): it stopped and cleaned up, not
        # still waiting for the lock (it would give up by itself only after its 200 busy steps)
        assert not partial_files()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    (outcome,) = runner.outcomes
    assert outcome.status == "failed"
    assert outcome.detail == "stopped by SIGTERM before it finished"
    assert not list(folder.glob("*/journal.db"))  # no backup claimed
    assert any("stopped by SIGTERM" in m.body for m in told)


async def _nothing() -> None:
    return None


# ------------------------------------------------------------------------------------- the close
async def test_the_close_runs_every_step_after_the_final_commit_failed(tmp_path: Path) -> None:
    (tmp_path / "zhixing.toml").write_text(BACKUP_CONFIG, encoding="utf-8")
    run = await open_configured(load_config(tmp_path / "zhixing.toml"), start="09:00")
    store = run.session.store

    async def disk_full() -> None:
        raise StoreError(f"{store.path}: database or disk is full")

    closed: list[str] = []
    adapter_close = run.session.adapter.close

    async def adapter_closed() -> None:
        closed.append("adapter")
        await adapter_close()

    deadlines: list[float] = []
    dispatcher_close = run.dispatcher.close

    async def dispatcher_closed(deadline_s: float = 30.0) -> None:
        deadlines.append(deadline_s)
        await dispatcher_close(deadline_s)

    store.commit = disk_full  # type: ignore[method-assign]
    run.session.adapter.close = adapter_closed  # type: ignore[method-assign]
    run.dispatcher.close = dispatcher_closed  # type: ignore[method-assign]
    await run.close(stopping="SIGTERM")
    assert deadlines == [STOP_NOTIFY_S]  # a signal's stop gives notifications 5 s, not the usual 30
    assert run.problems == [
        f"the final journal commit failed: StoreError: {store.path}: database or disk is full"
    ]
    assert closed == ["adapter"]
    with pytest.raises(StoreError, match="store is closed"):
        await store.load_orders()
