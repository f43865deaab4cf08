"""A SQLite file that several processes open and write at once (the file route's sid ledger, gm's link
ledger).

SQLite's own busy handler backs off in steps of up to 100 ms, which two busy writers hit all the time, and
it is not consulted at all for some statements: switching a fresh file to WAL while another process does the
same answers "database is locked" at once. So every statement that takes a lock goes through
``execute_when_unlocked``: retried every 0.2 ms for up to ~30 s, then ``LockedError``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

RETRY_S = 0.0002
ATTEMPTS = 150_000


class LockedError(Exception):
    """The file stayed locked by another process for the whole retry budget."""


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def execute_when_unlocked(db: sqlite3.Connection, sql: str, *, attempts: int | None = None) -> None:
    """``db.execute(sql)``, retried while another process holds the lock."""
    for _ in range(ATTEMPTS if attempts is None else attempts):
        try:
            db.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if not _is_lock_error(exc):
                raise
        time.sleep(RETRY_S)
    raise LockedError(f"{sql!r}: stayed locked by another process")


def open_shared(path: Path, schema: str, *, busy_timeout_ms: int = 30_000) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with ``synchronous=FULL`` and ``schema`` applied, in
    autocommit mode (transactions are explicit), usable from a worker thread (the caller serialises use).
    The set-up retries itself; later statements get SQLite's busy handler for ``busy_timeout_ms``."""
    db = sqlite3.connect(path, timeout=0.0, isolation_level=None, check_same_thread=False)
    try:
        execute_when_unlocked(db, "PRAGMA journal_mode=WAL")
        execute_when_unlocked(db, "PRAGMA synchronous=FULL")
        execute_when_unlocked(db, schema)
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    except BaseException:
        db.close()
        raise
    return db
