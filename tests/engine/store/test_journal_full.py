"""A full disk under the journal of a running engine: trading halts, the operator is told why, the run
ends and closes the journal, and the process exits with status 1 instead of hanging.

Two stand-ins for the full disk (a small tmpfs needs root): SQLite's ``PRAGMA max_page_count`` on the
engine's own connection (SQLITE_FULL, "database or disk is full", the very error of a full disk), and,
for a real ``zhixing run`` process, ``RLIMIT_FSIZE`` (every write past the limit fails with EFBIG, as
on a full disk). Verified by hand on a 3 MB tmpfs too (docs/RELIABILITY.md (bounded)).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.adapters.notify.test_notify_support import MailRecorder, smtp_server
from tests.engine.cli.test_run_day import SAMPLE, write_config
from zhixing.engine.cli.run_cmd import ConfiguredSession, run_config
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.enums import OrderStatus
from zhixing.engine.market import shanghai_ns
from zhixing.engine.store import StateStore

DAY = date(2021, 12, 1)
GUARD_S = 240  # a failure guard only: a run that hangs fails the test instead of the suite


def fill_the_disk(store: StateStore) -> None:
    """From now on the journal cannot grow by a page (its connection's thread runs the pragma)."""

    def full(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {int(pages)}")

    asyncio.get_running_loop().create_task(store._run(full, store._conn))


@pytest.mark.slow
async def test_a_full_journal_disk_halts_tells_why_and_the_run_still_ends_and_closes(tmp_path: Path) -> None:
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        path = write_config(tmp_path, port)
        # today's slicing (no minimum child value): journal writes all along the window, after 09:35 too
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace(
                "window_minutes = 30\n", "window_minutes = 30\nparams = { min_child_value = 0 }\n", 1
            ),
            encoding="utf-8",
        )
        config = load_config(path)
        clock = SimClock(shanghai_ns(DAY, "08:30"))
        opened: list[ConfiguredSession] = []

        def disk_fills_at_0935(run: ConfiguredSession) -> None:
            opened.append(run)
            clock.call_at(shanghai_ns(DAY, "09:35"), lambda: fill_the_disk(run.session.store), "disk-full")

        result = await asyncio.wait_for(
            run_config(config, clock=clock, until="10:30", on_open=disk_fills_at_0935), GUARD_S
        )
    session = opened[0].session
    oms = session.oms
    assert oms.halted_reason == "journal_write_failed"
    assert oms.counters.journal_failures >= 1
    assert oms.journal_error is not None
    assert "disk is full" in oms.journal_error
    # the operator is told what happened and what to do
    halts = [m for m in recorder.mails if "trading halted" in str(m["Subject"])]
    assert halts, [str(m["Subject"]) for m in recorder.mails]
    body = halts[0].get_body().get_content()  # type: ignore[attr-defined]
    assert "journal_write_failed" in body
    assert "disk is full" in body
    assert "zhixing resume" in body
    # the rebalance is reported halted, never ok; the journal was closed (its thread gone)
    rebalance = next(o for o in result.runner.outcomes if o.job == "rebalance")
    assert rebalance.status == "halted"
    assert session.store._closed
    assert not session.store._db._thread.is_alive()
    # write-ahead held all along: every order the exchange was sent is in the journal file
    with sqlite3.connect(config.store.path) as conn:
        journaled = {r[0] for r in conn.execute("SELECT client_order_id FROM orders")}
    sent = {
        cid
        for cid, order in oms.orders.items()
        if order.status not in (OrderStatus.INITIALIZED, OrderStatus.DENIED)
        and not (order.status is OrderStatus.REJECTED and order.reason == "journal_write_failed")
    }
    assert sent
    assert sent <= journaled


def disk_of(size: int) -> None:
    """In the child before it runs: every write past ``size`` bytes of a file fails with EFBIG."""
    if sys.platform == "win32":
        raise NotImplementedError("RLIMIT_FSIZE is POSIX")
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


RUN_CONFIG = """
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
name = "buy"
cron = "30 9 * * *"
kind = "execute"
targets = "targets.csv"
algo = "twap"
window_minutes = 30
params = {{ interval_s = "10" }}
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.slow
def test_zhixing_run_on_a_disk_that_fills_exits_not_clean_and_says_so_instead_of_hanging(
    tmp_path: Path,
) -> None:
    (tmp_path / "zhixing.toml").write_text(RUN_CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    (tmp_path / "targets.csv").write_text("symbol,weight\n600258.SH,0.3\n600446.SH,0.3\n", encoding="utf-8")
    limit = 400_000  # the journal's WAL passes it a few minutes into the rebalance

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zhixing.engine.cli",
            "run",
            "zhixing.toml",
            "--from",
            "09:29",
            "--until",
            "10:15",
        ],
        cwd=tmp_path,
        env={**_env(), "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: disk_of(limit),
    )
    try:
        out, err = proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert proc.returncode == 3, err.decode()[-3000:]  # not clean: its last commit failed
    assert "(execute): HALTED" in text, text
    assert "journal_write_failed" in text
    assert "write(s) failed" in text, text
    print(text)
    # what was committed before the disk filled is a sound journal (the next start reconciles the rest)
    from zhixing.engine.store.integrity import verify_journal

    assert verify_journal(tmp_path / "zhixing.db").ok


def _env() -> dict[str, str]:
    import os

    root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_zhixing_status_on_a_full_journal_disk_says_so_above_the_journal_as_last_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    from tests.journal_files import make_journal
    from zhixing.engine.cli import main

    db = asyncio.run(make_journal(tmp_path / "zhixing.db", halted=False))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 20, 10 << 20, 4096))
    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "JOURNAL DISK NEARLY FULL" in out
    assert "4,096 bytes free" in out
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert '"low": true' in capsys.readouterr().out
