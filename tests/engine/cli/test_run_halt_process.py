"""The kill switch against a real, running ``zhixing run`` process: the recorded day plays on a live clock
(``--speed``), the operator runs ``zhixing halt`` from another process while a TWAP rebalance works, and
from the instant the engine applied it no new order was created; ``zhixing status`` reports the halt."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zhixing.engine.cli import main

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"

CONFIG = """
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


def orders_created(db: Path) -> list[int]:
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
            return [int(r[0]) for r in conn.execute("SELECT ts_created FROM orders")]
    except sqlite3.Error:
        return []  # not created yet


def wait_for(predicate: object, proc: subprocess.Popen[bytes], what: str, limit_s: float = 60.0) -> None:
    """Poll a condition of the running process (bounded, so a broken engine fails instead of hanging)."""
    assert callable(predicate)
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert proc.poll() is None, f"engine exited before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_zhixing_halt_stops_a_running_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "zhixing.toml").write_text(CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    (tmp_path / "targets.csv").write_text("symbol,weight\n600258.SH,0.3\n600446.SH,0.3\n", encoding="utf-8")
    db = tmp_path / "zhixing.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zhixing.engine.cli",
            "run",
            str(tmp_path / "zhixing.toml"),
            "--from",
            "09:29",
            "--until",
            "09:45",
            "--speed",
            "200",
        ],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(orders_created(db)) >= 4, proc, "the rebalance's first orders")
        assert main(["halt", "--db", str(db), "--reason", "test"]) == 0
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # a clean stop, but the rebalance never finished: reported HALTED, and the exit status says so
    assert proc.returncode == 1, err.decode()[-2000:]
    assert "(execute): HALTED" in out.decode(), out.decode()
    with sqlite3.connect(db) as conn:
        done = conn.execute("SELECT done, done_ts, command FROM control_commands").fetchall()
    assert [(d, c) for d, _, c in done] == [(1, "halt")]
    halted_at = int(done[0][1])
    created = orders_created(db)
    assert created
    assert max(created) <= halted_at  # nothing new after the engine applied the halt
    capsys.readouterr()
    assert main(["status", "--db", str(db), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["halt"]["halted"] is True


@pytest.mark.slow
def test_sigterm_stops_a_running_engine_cleanly_and_cancels_what_works(tmp_path: Path) -> None:
    """``shutdown = "cancel"`` (the default): SIGTERM stops the algorithms, cancels every working order and
    waits for the answers, closes the journal; the rebalance it cut short is reported unfinished."""
    (tmp_path / "zhixing.toml").write_text(CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    (tmp_path / "targets.csv").write_text("symbol,weight\n600258.SH,0.3\n600446.SH,0.3\n", encoding="utf-8")
    db = tmp_path / "zhixing.db"
    args = ["run", str(tmp_path / "zhixing.toml"), "--from", "09:29", "--until", "10:30", "--speed", "50"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhixing.engine.cli", *args],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(orders_created(db)) >= 4, proc, "the rebalance's first orders")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # stopped cleanly mid-rebalance: the job is reported unfinished (never ok), exit 1
    assert proc.returncode == 1, err.decode()[-2000:]
    assert "not finished when the run ended" in out.decode(), out.decode()
    with sqlite3.connect(db) as conn:
        statuses = [str(r[0]) for r in conn.execute("SELECT status FROM orders")]
    assert statuses
    working = {"INITIALIZED", "SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"}
    assert not [s for s in statuses if s in working]  # nothing left working at the broker
