"""A ledger file opened by several processes at once: the set-up (WAL switch, schema) retries a lock
another process holds instead of failing (CI saw "database is locked" from two file-route workers)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.writer import SidLedger
from zhixing.adapters.gm.ledger import LinkLedger
from zhixing.engine.errors import BrokerError
from zhixing.engine.store import shared_sqlite

SCHEMA = "CREATE TABLE IF NOT EXISTS t (a INTEGER)"


def _holder(path: Path) -> sqlite3.Connection:
    """Another process's connection, holding the file's exclusive lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    other.execute("CREATE TABLE IF NOT EXISTS other (b INTEGER)")
    return other


def _release_on_first_retry(monkeypatch: pytest.MonkeyPatch, other: sqlite3.Connection) -> list[float]:
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        if not pauses:
            other.execute("COMMIT")
        pauses.append(seconds)

    monkeypatch.setattr(shared_sqlite.time, "sleep", sleep)
    return pauses


def test_open_waits_out_a_lock_held_during_the_wal_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l.sqlite"
    other = _holder(path)
    pauses = _release_on_first_retry(monkeypatch, other)
    db = shared_sqlite.open_shared(path, SCHEMA)
    assert pauses  # the lock was met and waited out
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master")} == {"t", "other"}


@pytest.mark.parametrize("ledger", [SidLedger, LinkLedger])
def test_both_ledgers_open_while_another_process_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger: type[SidLedger] | type[LinkLedger]
) -> None:
    path = tmp_path / "state" / "ledger.sqlite"
    path.parent.mkdir(mode=0o700)
    other = _holder(path)
    pauses = _release_on_first_retry(monkeypatch, other)
    opened = ledger(path)
    assert pauses
    opened.close()


def test_a_lock_never_released_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l.sqlite"
    holder = _holder(path)  # held by a name: a dropped connection closes (its lock gone) at any gc
    monkeypatch.setattr(shared_sqlite.time, "sleep", lambda _s: None)
    monkeypatch.setattr(shared_sqlite, "ATTEMPTS", 3)
    with pytest.raises(shared_sqlite.LockedError, match="journal_mode"):
        shared_sqlite.open_shared(path, SCHEMA)
    (tmp_path / "state").mkdir(mode=0o700)
    held = tmp_path / "state" / "sids.sqlite"
    ledger_holder = _holder(held)
    with pytest.raises(BrokerError, match="sid ledger"):
        SidLedger(held)
    ledger_holder.close()
    holder.close()


def test_other_errors_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = shared_sqlite.open_shared(tmp_path / "l.sqlite", SCHEMA)
    monkeypatch.setattr(shared_sqlite.time, "sleep", lambda _s: pytest.fail("retried a non-lock error"))
    with pytest.raises(sqlite3.OperationalError, match="syntax"):
        shared_sqlite.execute_when_unlocked(db, "SELEKT 1")
