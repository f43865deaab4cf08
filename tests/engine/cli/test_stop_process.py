"""Stop means stop, against real ``zhixing`` processes (engine/stop.py, engine/child_processes.py).

SIGINT/SIGTERM at any moment ends the process within its bound with what was running ended: a signal
script and the grandchild it started (one that ignores SIGTERM) are gone, checked by pid; the journal is
closed (its WAL file removed by the last close) and verifies; the exit status is the documented one
(docs/OPERATIONS.md). Every wait is on an event the process makes observable (a file the script writes,
a log line); the timeouts only bound a failure."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.engine.store import StateStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "replay" / "sample_data" / "snapshots_20211201"
LIMIT_S = 120.0  # bounds a failure only: a stopped engine is gone long before

SIM_CONFIG = """
[account]
id = "8800123456"
cash_yuan = 2000000

[store]
path = "zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"

[[jobs]]
name = "model"
cron = "30 9 * * *"
kind = "signal"
command = [{python}, "signal_script.py"]
timeout_s = 3600
kill_grace_s = {grace}
"""

# the signal script: starts a grandchild that ignores SIGTERM, writes both pids once the grandchild is
# ready, then waits for ever (a model that hangs); the grandchild records every SIGTERM it ignores
SIGNAL_SCRIPT = r"""
import os, subprocess, sys, time
child = r'''
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(os.getpid()))
while True:
    time.sleep(1)
'''
ready = "grandchild.ready"
grand = subprocess.Popen([sys.executable, "-c", child, ready])
while not os.path.exists(ready):
    time.sleep(0.01)
with open("pids.tmp", "w") as out:
    out.write(f"{os.getpid()} {grand.pid}")
os.replace("pids.tmp", "pids.txt")
while True:
    time.sleep(1)
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (nobody may reap an orphan in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X")


def wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not predicate():
        assert proc.poll() is None, f"the process exited before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start_run(folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "zhixing.engine.cli", "run", str(folder / "zhixing.toml"), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def sim_run(folder: Path, *, grace: float = 5.0) -> tuple[subprocess.Popen[bytes], tuple[int, int]]:
    """``zhixing run`` on the recorded day at 50x; returns once its signal script and grandchild run."""
    config = SIM_CONFIG.format(
        data=SAMPLE.as_posix(), python=f'"{Path(sys.executable).as_posix()}"', grace=grace
    )
    (folder / "zhixing.toml").write_text(config, encoding="utf-8")
    (folder / "signal_script.py").write_text(SIGNAL_SCRIPT, encoding="utf-8")
    proc = start_run(folder, "--from", "09:29", "--until", "15:00", "--speed", "50")
    pids = folder / "pids.txt"
    wait_for(pids.exists, proc, "the signal script and its grandchild")
    script, grandchild = (int(p) for p in pids.read_text().split())
    assert not gone(script)
    assert not gone(grandchild)
    return proc, (script, grandchild)


def finish(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=LIMIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.decode(), err.decode()


def kill_leftovers(*pids: int) -> None:
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def journal_verifies(db: Path) -> bool:
    return main(["journal", "verify", "--db", str(db)]) == 0


def stop_record(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT value FROM meta WHERE key = 'stop'").fetchall()
    return str(rows[0][0]) if rows else ""


@pytest.mark.slow
def test_sigterm_while_the_signal_script_runs_ends_it_and_its_grandchild(tmp_path: Path) -> None:
    proc, pids = sim_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc)
        assert all(gone(pid) for pid in pids), "the script or its grandchild outlived the engine"
    finally:
        kill_leftovers(*pids)
    # a clean stop, but the signal job was cut short: not ok, exit 1
    assert proc.returncode == 1, err[-3000:]
    assert "model (signal): FAILED stopped by SIGTERM before it finished" in out, out
    assert "stopped by SIGTERM: clean" in out, out
    db = tmp_path / "zhixing.db"
    assert not (tmp_path / "zhixing.db-wal").exists()  # closed: the last close removes the WAL
    assert journal_verifies(db)
    assert '"by":"SIGTERM"' in stop_record(db).replace(" ", "")


@pytest.mark.slow
def test_a_second_sigint_forces_the_stop_at_once(tmp_path: Path) -> None:
    """The grace before SIGKILL is an hour: the first SIGINT's stop would wait for the grandchild that
    ignores SIGTERM; the second kills it now and ends the process, reported as forced (exit 3)."""
    proc, (script, grandchild) = sim_run(tmp_path, grace=3600)
    try:
        proc.send_signal(signal.SIGINT)
        # the first stop is under way: the script took its SIGTERM, the grandchild ignores it
        wait_for(lambda: gone(script), proc, "the script ended by the first stop")
        assert not gone(grandchild)
        proc.send_signal(signal.SIGINT)
        out, err = finish(proc)
        assert gone(grandchild)
    finally:
        kill_leftovers(script, grandchild)
    assert proc.returncode == 3, err[-3000:]
    assert "stopped by SIGINT: forced" in out, out
    assert journal_verifies(tmp_path / "zhixing.db")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit of another process: Linux")
@pytest.mark.slow
def test_a_final_commit_that_fails_still_closes_everything_and_exits_3(tmp_path: Path) -> None:
    """The file size limit of the running engine is cut to one byte (a full disk, as SQLite sees it): the
    stop's final commit fails; the script and grandchild are still ended, the journal still closed, the
    operator told, and the exit status says the stop was not clean."""
    import resource

    proc, pids = sim_run(tmp_path)
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1, 1))
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc)
        assert all(gone(pid) for pid in pids)
    finally:
        kill_leftovers(*pids)
    assert proc.returncode == 3, err[-3000:]
    assert "stopped by SIGTERM: NOT clean" in out, out
    assert "the final journal commit failed" in out, out
    # what was committed before is intact; the stop's own record was what could not be written
    assert journal_verifies(tmp_path / "zhixing.db")
    assert stop_record(tmp_path / "zhixing.db") == ""


FILEORDER_CONFIG = """
[account]
id = "8800123456"
cash_yuan = 1000000

[store]
path = "zhixing.db"

[calendar]
beyond_known = "weekdays"

[route]
kind = "fileorder"
connect_timeout_s = 3600
[route.fileorder]
input_dir = "scan"
output_dir = "push"
account_id = "8800123456"
state_dir = "query_state"

[feed]
kind = "qmt"
"""


class Lines:
    """A pipe read line by line on a thread; ``wait`` for a line containing a text."""

    def __init__(self, pipe: object) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: object) -> None:
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(raw.decode(errors="replace"))
                self._changed.notify_all()

    def wait(self, text: str) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: any(text in line for line in self.lines), LIMIT_S), text

    def text(self) -> str:
        self._thread.join(LIMIT_S)
        return "".join(self.lines)


@pytest.mark.slow
def test_sigterm_during_the_start_up_connect_wait(tmp_path: Path) -> None:
    """The terminal's folder is not there: the engine waits for the route (an hour). SIGTERM ends the
    wait: nothing was connected or traded, the journal it opened is closed; exit 143 (128 + SIGTERM)."""
    (tmp_path / "zhixing.toml").write_text(FILEORDER_CONFIG, encoding="utf-8")
    proc = start_run(tmp_path)
    err = Lines(proc.stderr)
    try:
        err.wait('"event": "not_ready"')  # the first attempt failed: waiting for the next
        proc.send_signal(signal.SIGTERM)
        proc.wait(LIMIT_S)
        printed = err.text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None
            pipe.close()
    assert proc.returncode == 143, printed[-3000:]
    assert "zhixing: stopped by SIGTERM" in printed
    assert not (tmp_path / "zhixing.db-wal").exists()
    assert journal_verifies(tmp_path / "zhixing.db")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/PID/fd: Linux")
@pytest.mark.slow
def test_sigterm_while_an_export_waits_for_the_journal(tmp_path: Path) -> None:
    """Another process holds the journal's write lock: ``journal export`` waits for it. SIGTERM ends the
    export (exit 143), no trade log is written, the journal is as it was."""
    db = tmp_path / "zhixing.db"

    async def create() -> None:
        store = await StateStore.open(db)
        await store.close()

    asyncio.run(create())
    before = db.read_bytes()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    out = tmp_path / "export"
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhixing.engine.cli", "journal", "export", "--db", str(db), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def has_journal_open() -> bool:
            try:
                return any(
                    os.path.realpath(f"/proc/{proc.pid}/fd/{fd}") == str(db.resolve())
                    for fd in os.listdir(f"/proc/{proc.pid}/fd")
                )
            except OSError:
                return False

        wait_for(has_journal_open, proc, "the export to open the journal")
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err
    assert not (out / "orders.csv").exists()
    assert not (out / "fills.csv").exists()
    assert db.read_bytes() == before
