"""A real process, killed with SIGKILL at seeded points and started again from the same journal.

``tests/kill9_worker.py`` runs a three-parent TWAP basket against a durable simulated broker (its own
SQLite journal, replayed on restart: ``replay.recovery.DurableSimBroker``). The worker announces a kill
point on stdout and blocks; the test reads the line and sends SIGKILL (no sleeps, deterministic points).
After the last restart runs to the end of the day the books are checked (RELIABILITY I1-I4) and each
parent's filled quantity is compared with an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # child processes
WORKER = Path(__file__).resolve().parents[1] / "kill9_worker.py"
TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "DENIED"}


def run_worker(directory: Path, kill_after: str | None = None) -> dict[str, Any] | None:
    """Run the worker once; SIGKILL it at its kill point (None) or return its end-of-day summary."""
    args = [sys.executable, str(WORKER), str(directory)]
    if kill_after is not None:
        args += ["--kill-after", kill_after]
    env = {**os.environ, "PYTHONPATH": str(WORKER.parents[1])}
    with subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.startswith("KILLPOINT"):
                    proc.send_signal(signal.SIGKILL)
                    assert proc.wait(timeout=30) == -signal.SIGKILL
                    return None
                if line.startswith("DONE "):
                    assert proc.wait(timeout=30) == 0
                    result: dict[str, Any] = json.loads(line.removeprefix("DONE "))
                    return result
        finally:
            if proc.poll() is None:
                proc.kill()
        raise AssertionError(f"worker ended without a summary (exit {proc.wait(timeout=30)})")


def run_with_kills(directory: Path, kills: list[str]) -> tuple[dict[str, Any], int]:
    """Start, kill at each point in turn (a point the run never reaches lets it finish), then finish."""
    killed = 0
    for point in kills:
        result = run_worker(directory, point)
        if result is not None:
            return result, killed
        killed += 1
    result = run_worker(directory)
    assert result is not None
    return result, killed


def assert_books_agree(result: dict[str, Any]) -> None:
    # I1: no client order id reached the broker twice, over every life of the process
    assert all(n == 1 for n in result["broker_submits"].values())
    engine, broker = result["engine_orders"], result["broker_orders"]
    assert set(broker) <= set(engine)
    # I2: the engine's filled equals the broker's, never above the order; parents never overfilled
    for cid, (status, filled, quantity, _) in engine.items():
        assert filled <= quantity
        if cid in broker:
            assert filled == broker[cid][1], cid
            assert status == broker[cid][0], cid
        else:
            assert filled == 0  # never reached the broker: resolved without a fill
    for pid, filled in result["parents"].items():
        assert filled == result["children"][pid] <= result["parent_quantity"][pid]
    # I3: positions agree
    assert result["engine_positions"] == result["broker_positions"]
    # I4: every journaled order ended resolved
    assert {status for status, *_ in engine.values()} <= TERMINAL


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_worker(tmp_path_factory.mktemp("clean"))
    assert result is not None
    return result


def test_the_uninterrupted_run_fills_every_parent(uninterrupted: dict[str, Any]) -> None:
    assert_books_agree(uninterrupted)
    assert uninterrupted["parents"] == uninterrupted["parent_quantity"]


@pytest.mark.parametrize("seed", [1, 2])
def test_kill9_at_seeded_points_then_restart_loses_nothing(
    tmp_path: Path, uninterrupted: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    kills = [f"{rng.choice(('engine', 'broker'))}:{rng.randrange(1, 40)}" for _ in range(rng.choice((2, 3)))]
    result, killed = run_with_kills(tmp_path, kills)
    assert killed >= 1
    assert_books_agree(result)
    assert result["parents"] == uninterrupted["parents"]


@pytest.mark.slow
def test_kill9_after_an_intent_commit_and_after_a_send_is_recovered(tmp_path: Path) -> None:
    """engine:2 is the first commit of child intents (durable, never sent: A1); broker:1 in the next life
    is a child the broker took before the engine journaled it as sent (A2)."""
    result, killed = run_with_kills(tmp_path, ["engine:2", "broker:1", "engine:5"])
    assert killed == 3
    assert_books_agree(result)
    never_sent = [cid for cid in result["engine_orders"] if cid not in result["broker_orders"]]
    assert never_sent  # the intents of the first kill: resolved, nothing resent under their ids
    assert result["parents"] == result["parent_quantity"]


def test_a_killed_run_is_deterministic(tmp_path: Path) -> None:
    kills = ["broker:7"]
    first, _ = run_with_kills(tmp_path / "a", kills)
    second, _ = run_with_kills(tmp_path / "b", kills)
    assert first["trades"] == second["trades"]
    assert first["engine_orders"] == second["engine_orders"]
