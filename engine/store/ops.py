"""Work that runs on the store's database thread, each function one whole transaction.

Every function here takes the raw ``sqlite3.Connection`` and runs start to finish on aiosqlite's worker
thread (one thread hop per call, see ``StateStore._run``). A transaction therefore never spans an
``await``: a cancelled caller cannot leave a transaction open on the shared connection, and two tasks can
never interleave statements of their transactions.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from zhixing.engine.errors import StoreError
from zhixing.engine.store import schema

T = TypeVar("T")

Plan = Sequence[tuple[str, Sequence[tuple[Any, ...]]]]
"""``(sql, rows)`` pairs run with ``executemany`` in order."""

BUSY_ATTEMPTS = 6
"""Each attempt waits up to ``busy_timeout`` inside SQLite before the next one."""


def is_busy(exc: sqlite3.Error) -> bool:
    """True for SQLITE_BUSY / SQLITE_LOCKED ("database is locked", "database table is locked")."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class BusyCounter:
    """How often a transaction found the write lock held past ``busy_timeout`` and was retried.

    ``retried`` is set on every retry, so an observer (a monitor, a test) can wait for one.
    """

    __slots__ = ("retried", "retries")

    def __init__(self) -> None:
        self.retries = 0
        self.retried = threading.Event()


def transact(
    conn: sqlite3.Connection,
    work: Callable[[sqlite3.Connection], T],
    busy: BusyCounter,
    *,
    write: bool = True,
) -> T:
    """Run ``work`` in one transaction (``BEGIN IMMEDIATE`` for writes), retrying on a busy lock.

    Any failure rolls back (SQLite may already have done so, e.g. on SQLITE_FULL) and re-raises. A lock
    still held after ``BUSY_ATTEMPTS`` waits becomes ``StoreError``: "database is locked" never escapes.
    """
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"
    for attempt in range(1, BUSY_ATTEMPTS + 1):
        try:
            conn.execute(begin)
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
            return result
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            busy.retries += 1
            busy.retried.set()
            if attempt == BUSY_ATTEMPTS:
                raise StoreError(
                    f"journal write lock still held by another connection after {BUSY_ATTEMPTS} waits"
                ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------- open / schema
def setup(conn: sqlite3.Connection, synchronous: str, busy_timeout_ms: int, path: str) -> int:
    """Pragmas, then migrate. Returns the schema version now in the file."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"{path}: could not switch to WAL journal mode (got {mode!r})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return migrate(conn, schema.MIGRATIONS, path, BusyCounter())


def schema_version(conn: sqlite3.Connection, path: str) -> int:
    """The file's schema version: 0 for an empty file. Raises StoreError for a file that is not ours."""
    tables = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(r[0]).startswith("sqlite_")
    }
    if "schema_version" not in tables:
        if tables:
            raise StoreError(
                f"{path}: unknown schema version (tables {sorted(tables)} but no schema_version table); "
                "not a zhixing journal, refusing to open"
            )
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    version = row[0] if row is not None else None
    if not isinstance(version, int) or version < 1:
        raise StoreError(f"{path}: unknown schema version {version!r} in schema_version table")
    return version


def migrate(
    conn: sqlite3.Connection, migrations: Mapping[int, Sequence[str]], path: str, busy: BusyCounter
) -> int:
    """Bring the file to ``max(migrations)`` in one transaction; refuse a newer or unknown version."""
    newest = max(migrations)

    def work(c: sqlite3.Connection) -> int:
        current = schema_version(c, path)
        if current > newest:
            raise StoreError(
                f"{path}: schema version {current} is newer than the newest this zhixing knows "
                f"({newest}); refusing to open (upgrade zhixing)"
            )
        for version in range(current + 1, newest + 1):
            for statement in migrations[version]:
                c.execute(statement)
            c.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        return newest

    return transact(conn, work, busy)


# ---------------------------------------------------------------------------------------- writes
def write_plan(conn: sqlite3.Connection, plan: Plan, busy: BusyCounter) -> None:
    """Everything staged, in one transaction: ``executemany`` per table."""

    def work(c: sqlite3.Connection) -> None:
        for sql, rows in plan:
            c.executemany(sql, rows)

    transact(conn, work, busy)


def reserve_ids(conn: sqlite3.Connection, count: int, busy: BusyCounter) -> int:
    """Advance the persisted order-id counter by ``count``; return the first reserved number."""

    def work(c: sqlite3.Connection) -> int:
        rows = c.execute(schema.RESERVE_IDS, (count,)).fetchall()
        if len(rows) != 1:
            raise StoreError("order id counter row is missing from the journal")
        return int(rows[0][0]) - count

    return transact(conn, work, busy)


def ensure_control_table(conn: sqlite3.Connection, busy: BusyCounter) -> None:
    """Create ``control_commands`` if missing (see ``schema.CREATE_CONTROL_COMMANDS``)."""

    def work(c: sqlite3.Connection) -> None:
        c.execute(schema.CREATE_CONTROL_COMMANDS)

    transact(conn, work, busy)


def insert_command(conn: sqlite3.Connection, ts: int, command: str, arg: str, busy: BusyCounter) -> int:
    """Queue an operator command (creating the table if needed); returns its id."""

    def work(c: sqlite3.Connection) -> int:
        c.execute(schema.CREATE_CONTROL_COMMANDS)
        return int(c.execute(schema.INSERT_CONTROL_COMMAND, (ts, command, arg)).fetchone()[0])

    return transact(conn, work, busy)


# ---------------------------------------------------------------------------------------- reads
def read(
    conn: sqlite3.Connection, queries: Sequence[tuple[str, tuple[Any, ...]]], busy: BusyCounter
) -> list[list[tuple[Any, ...]]]:
    """Run several SELECTs in one read transaction (one consistent WAL snapshot)."""

    def work(c: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
        return [c.execute(sql, params).fetchall() for sql, params in queries]

    return transact(conn, work, busy, write=False)
