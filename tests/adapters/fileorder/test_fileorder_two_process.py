"""Two OS processes drop 1,000 orders each into one folder at once (plus 50 sids both try): the
terminal emulator then executes every sid exactly once, none lost, none twice (RELIABILITY E2, E5)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from zhixing.engine.clock import SimClock
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.replay.data import load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.terminal import TerminalEmulator

pytestmark = pytest.mark.slow  # child processes
ROOT = Path(__file__).resolve().parents[3]
WORKER = ROOT / "tests" / "fileorder_worker.py"
SNAPSHOTS = ROOT / "replay" / "sample_data" / "snapshots_20211201"
ACCOUNT = "acct-sim-1"
PER_WORKER = 1_000
SHARED = 50


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_processes_2000_orders_each_sid_executed_once(tmp_path: Path) -> None:
    scan, ledger = tmp_path / "scan", tmp_path / "state" / "sids.sqlite"
    scan.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(scan),
                str(ledger),
                ACCOUNT,
                prefix,
                str(PER_WORKER),
                str(SHARED),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for prefix in ("A", "B")
    ]
    for worker in workers:  # start both together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    counts = [dict(part.split("=") for part in out.split()) for out, _ in outputs]
    assert sum(int(c["written"]) for c in counts) == 2 * PER_WORKER + SHARED
    assert sum(int(c["refused"]) for c in counts) == SHARED  # each contested sid went through once

    files = sorted(scan.glob("*.order.csv"))
    assert len(files) == 2 * PER_WORKER + SHARED
    assert list(scan.glob(".*.tmp")) == []

    market = load_snapshots(SNAPSHOTS, symbols=["600103.SH"])
    clock = SimClock(shanghai_ns(market.trade_date, "09:31"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**12)
    terminal = TerminalEmulator(scan, tmp_path / "push", ACCOUNT, exchange, clock)
    terminal.start()
    end = clock.now_ns() + 3_000_000_000
    while clock.step(until_ns=end):
        pass
    terminal.stop()

    expected = {f"{p}{i:05d}" for p in "AB" for i in range(PER_WORKER)} | {
        f"SHARED{i:04d}" for i in range(SHARED)
    }
    executed = Counter(terminal.stats.sids)
    assert set(executed) == expected  # none lost
    assert max(executed.values()) == 1  # none twice
    assert terminal.stats.files_processed == len(files)
    # the output files say the same: one terminal order (cl_ord_id) and one New per sid
    changes = _rows(tmp_path / "push" / ACCOUNT / "order_status_change.csv")
    orders_per_sid: dict[str, set[str]] = {}
    for row in changes:
        orders_per_sid.setdefault(row["sid"], set()).add(row["cl_ord_id"])
    assert set(orders_per_sid) == expected
    assert all(len(ids) == 1 for ids in orders_per_sid.values())
    news = Counter(row["sid"] for row in changes if row["status"] == "1")
    assert set(news) == expected
    assert max(news.values()) == 1
