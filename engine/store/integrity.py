"""Is a journal sound enough to trade on? ``verify_journal(path)`` says what is damaged, or that it is not.

The engine checks its journal at start, before anything is sent, and refuses to trade on a damaged one
(``require_sound_journal``); ``zhixing journal verify`` and every backup run the same checks. A journal
that SQLite can still open may hold a damaged page that only some reads notice, a halt record whose key
was garbled (a halted account would trade again), or an order-id counter behind the ids already issued
(ids would reach the broker twice). The checks, each naming what is damaged:

1. the file: exists, is a regular file, is not empty, starts with the SQLite header, whole pages, as
   long as its header says (when no WAL file could hold the rest);
2. SQLite's own ``PRAGMA quick_check`` (``integrity_check`` with ``full``), the damaged page named with
   the table that owns it when SQLite can say;
3. the schema: a ``schema_version`` no newer than this build, and every table, column, key and unique
   index that the migrations up to that version create (compared with a fresh copy built from them);
4. the control rows the engine relies on (``engine.store.journal_rows``): the ``order_id`` counter
   present and past every id issued; the halt record, the risk report and the account snapshot in
   ``meta`` readable as what they are; operator commands well-formed;
5. the rows the engine loads at start: sides and statuses it knows, JSON it can read, algorithm states
   joined with their plans (the same ``join_algo_state`` the engine uses), quantities in range.

The checks read only: the file is opened read-only where SQLite allows (a foreign WAL file is never
checkpointed into it by a check) and never created or migrated. What no check can see: a flipped bit
that leaves a well-formed value (a price digit, a reason text); reconciliation with the broker at start
compares what matters there (quantities, statuses, positions).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from zhixing.engine.errors import StoreError
from zhixing.engine.store import schema
from zhixing.engine.store.journal_rows import control_row_problems, loaded_row_problems

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100


RESTORE_HINT = (
    "check it with `zhixing journal verify --db {path}`; to restore, stop the engine and run "
    "`zhixing journal restore --db {path} --from BACKUP` with the newest verified backup "
    "(docs/OPERATIONS.md, 'Backing up and restoring the journal')"
)

_PAGE = re.compile(r"\bpage (\d+)\b")


class JournalDamaged(StoreError):
    """The journal failed ``verify_journal``; nothing may be sent. ``report`` says what is damaged."""

    def __init__(self, report: JournalReport) -> None:
        super().__init__(
            f"{report.path}: journal is damaged, refusing to trade (nothing was sent): "
            + "; ".join(report.problems)
            + ". "
            + RESTORE_HINT.format(path=report.path)
        )
        self.report = report


@dataclass(frozen=True, slots=True)
class JournalReport:
    """What ``verify_journal`` found. ``problems`` is empty for a sound journal."""

    path: Path
    problems: tuple[str, ...]
    schema_version: int | None = None
    orders: int = 0
    fills: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """``OK ...`` or one line per problem (what ``zhixing journal verify`` prints)."""
        if self.ok:
            return (
                f"OK {self.path}: schema version {self.schema_version}, {self.orders} orders, "
                f"{self.fills} fills"
            )
        lines = [f"DAMAGED {self.path}:"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("  " + RESTORE_HINT.format(path=self.path))
        return "\n".join(lines)


def wal_files(path: Path) -> tuple[Path, Path]:
    """The WAL and shared-memory files SQLite keeps next to ``path`` in WAL mode."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def require_sound_journal(path: str | os.PathLike[str], *, full: bool = False) -> JournalReport | None:
    """At start, before anything is sent: raise ``JournalDamaged`` unless the journal at ``path`` is sound.

    A journal that does not exist yet is a first run (None): the store creates it. Its WAL file without
    it is not: the journal was deleted or moved, and a fresh one would replay that WAL."""
    file = Path(path)
    if not os.path.lexists(file):
        left = [w for w in wal_files(file) if w.exists()]
        if left:
            problem = (
                f"file: missing, but {left[0].name} is there: the journal was deleted or moved (a new "
                f"one would take that file's pages); restore it, or delete {left[0].name} for a fresh start"
            )
            raise JournalDamaged(JournalReport(file, (problem,)))
        return None
    report = verify_journal(file, full=full)
    if not report.ok:
        raise JournalDamaged(report)
    return report


def verify_journal(path: str | os.PathLike[str], *, full: bool = False) -> JournalReport:
    """Check the journal at ``path`` (read only; see the module docstring). ``full``: ``integrity_check``
    (also index contents; slower) instead of ``quick_check``."""
    file = Path(path)
    problems = _file_problems(file)
    if problems:
        return JournalReport(file, tuple(problems))
    try:
        with _open_read_only(file) as conn:
            return _database_report(file, conn, full=full)
    except sqlite3.DatabaseError as exc:  # at the first read: the header or the schema (page 1)
        return JournalReport(file, (f"sqlite: {exc} (reading the schema on page 1)",))


# ---------------------------------------------------------------------------------------- the file
def _file_problems(file: Path) -> list[str]:
    if not os.path.lexists(file):
        return ["file: no such file"]
    if file.is_symlink() and not file.exists():
        return ["file: a symbolic link to nothing"]
    if not file.is_file():
        return ["file: not a regular file"]
    try:
        size = file.stat().st_size
        with open(file, "rb") as handle:
            header = handle.read(HEADER_BYTES)
    except OSError as exc:
        return [f"file: cannot be read ({exc.strerror or exc})"]
    rollback = file.with_name(file.name + "-journal")
    if os.path.lexists(rollback):
        # a journal runs in WAL mode and never has one: it belongs to another database or an interrupted
        # copy, and any open of ours (even this check's) would let SQLite roll it back into the file
        return [
            f"file: {rollback.name} lies next to it (a rollback journal; a zhixing journal runs in WAL "
            f"mode and never has one): move {rollback.name} away (keep it until you know where it came "
            "from) and verify again; nothing was opened"
        ]
    if size == 0:
        return [
            "file: empty (0 bytes), not a journal; if this account has no journal yet delete the empty "
            "file, otherwise restore a backup"
        ]
    if len(header) < HEADER_BYTES or not header.startswith(SQLITE_MAGIC):
        start = header[:16]
        return [f"header: not an SQLite database (starts with {start!r}, {size} bytes)"]
    raw_page = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if raw_page == 1 else raw_page
    if page_size < 512 or page_size & (page_size - 1):
        return [f"header: page size {raw_page} is not a power of two from 512 to 65536"]
    if size % page_size:
        return [f"file: {size} bytes is not a whole number of {page_size}-byte pages (truncated?)"]
    change_counter, pages = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    wal = wal_files(file)[0]
    has_wal = wal.exists() and wal.stat().st_size > 0
    if valid_for == change_counter and pages and size < pages * page_size and not has_wal:
        return [f"file: truncated ({size} bytes; its header says {pages} pages of {page_size} bytes)"]
    return []


@contextlib.contextmanager
def _open_read_only(file: Path) -> Iterator[sqlite3.Connection]:
    """Read-only (``mode=ro``), falling back to ``query_only`` where read-only cannot open the WAL (no
    shared-memory file yet); never creates the file. Only called when no rollback journal lies next to
    the file (``_file_problems``): with one, a read-write open would roll it back into the file."""
    uri = file.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc) and "readonly" not in str(exc).replace(" ", ""):
            raise
        conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA query_only = ON")
    try:
        yield conn
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------- the database
def _database_report(file: Path, conn: sqlite3.Connection, *, full: bool) -> JournalReport:
    try:
        found = _sqlite_check(conn, full=full)
    except sqlite3.DatabaseError as exc:  # too damaged for the check to finish: say where it breaks
        found = [f"sqlite: {exc}", *_unreadable(conn)]
    if found:
        return JournalReport(file, tuple(found))
    version, problems = _version(conn)
    if version is None:
        return JournalReport(file, tuple(problems))
    problems += _schema_problems(conn, version)
    if problems:
        return JournalReport(file, tuple(problems), schema_version=version)
    problems += control_row_problems(conn)
    problems += loaded_row_problems(conn, version)
    orders = int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    fills = int(conn.execute("SELECT count(*) FROM fills").fetchone()[0])
    return JournalReport(file, tuple(problems), schema_version=version, orders=orders, fills=fills)


def _sqlite_check(conn: sqlite3.Connection, *, full: bool) -> list[str]:
    pragma = "integrity_check" if full else "quick_check"
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(100)")]
    if rows == ["ok"]:
        return []
    owners = _page_owners(conn)
    found = []
    for row in rows:
        for line in row.splitlines():
            if not line.strip() or line.startswith("*** in database"):
                continue
            page = _PAGE.search(line)
            owner = owners.get(int(page.group(1))) if page else None
            found.append(f"sqlite {pragma}: {line}" + (f" (page of {owner})" if owner else ""))
    return found or [f"sqlite {pragma}: {rows!r}"]


def _unreadable(conn: sqlite3.Connection) -> list[str]:
    """Each table that cannot be read to its end, when the check itself fails."""
    try:
        names = [str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as exc:
        return [f"sqlite: the schema (page 1, sqlite_master) cannot be read: {exc}"]
    found = []
    for name in names:
        try:
            for _ in conn.execute(f"SELECT * FROM {name!r}"):
                pass
        except sqlite3.DatabaseError as exc:
            found.append(f"table {name}: cannot be read ({exc})")
    return found


def _page_owners(conn: sqlite3.Connection) -> dict[int, str]:
    """Page number -> table or index, where SQLite was built with the ``dbstat`` table (else empty)."""
    try:
        return {int(p): str(n) for n, p in conn.execute("SELECT name, pageno FROM dbstat")}
    except sqlite3.DatabaseError:
        return {}


def _version(conn: sqlite3.Connection) -> tuple[int | None, list[str]]:
    tables = _tables(conn)
    if "schema_version" not in tables:
        if not tables:
            return None, ["schema: no tables at all (an empty database, not a journal)"]
        return None, [f"schema: no schema_version table (tables {sorted(tables)}): not a zhixing journal"]
    rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    versions = [r[0] for r in rows]
    if not versions or not all(isinstance(v, int) for v in versions):
        return None, [f"schema_version: holds {versions!r}, not the versions 1..N"]
    newest = max(versions)
    if newest > schema.SCHEMA_VERSION:
        return None, [
            f"schema_version: {newest} is newer than this zhixing knows ({schema.SCHEMA_VERSION}); "
            "upgrade zhixing (an older one must not write it)"
        ]
    if versions != list(range(1, newest + 1)):
        return newest, [f"schema_version: holds {versions}, not 1..{newest}: a migration row is missing"]
    return newest, []


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(r[0]).startswith("sqlite_")
    }


TableShape = tuple[tuple[tuple[object, ...], ...], tuple[tuple[object, ...], ...], tuple[object, ...]]
"""Columns (name, type, not null, key position), unique indexes (columns), (strict, without rowid)."""


def _shape(conn: sqlite3.Connection, table: str) -> TableShape:
    columns = tuple(
        (str(name), str(kind).upper(), bool(notnull), int(pk))
        for _, name, kind, notnull, _default, pk, *_ in conn.execute(f"PRAGMA table_xinfo({table!r})")
    )
    uniques = []
    for _, index, unique, origin, *_ in conn.execute(f"PRAGMA index_list({table!r})"):
        if unique:
            cols = tuple(str(r[2]) for r in conn.execute(f"PRAGMA index_info({str(index)!r})"))
            uniques.append((str(origin), cols))
    listed = conn.execute("SELECT wr, strict FROM pragma_table_list WHERE name = ?", (table,)).fetchone()
    flags = (bool(listed[0]), bool(listed[1])) if listed is not None else ()
    return columns, tuple(sorted(uniques)), flags


@cache
def expected_shapes(version: int) -> dict[str, TableShape]:
    """Every table the migrations up to ``version`` create, built in memory."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for step in range(1, version + 1):
            for statement in schema.MIGRATIONS[step]:
                conn.execute(statement)
        return {table: _shape(conn, table) for table in _tables(conn)}
    finally:
        conn.close()


def _schema_problems(conn: sqlite3.Connection, version: int) -> list[str]:
    present = _tables(conn)
    problems = []
    for table, want in sorted(expected_shapes(version).items()):
        if table not in present:
            problems.append(f"schema: table {table} is missing (schema version {version} has it)")
            continue
        have = _shape(conn, table)
        if have != want:
            problems += _shape_differences(table, have, want) or [
                f"schema: table {table} differs from schema version {version}"
            ]
    return problems


def _shape_differences(table: str, have: TableShape, want: TableShape) -> list[str]:
    found = []
    have_cols = {c[0]: c for c in have[0]}
    for col in want[0]:
        if col[0] not in have_cols:
            found.append(f"schema: table {table} has no column {col[0]}")
        elif have_cols[col[0]] != col:
            found.append(f"schema: table {table} column {col[0]} is {have_cols[col[0]]}, not {col}")
    if have[1] != want[1]:
        found.append(f"schema: table {table} keys/unique indexes are {have[1]}, not {want[1]}")
    if have[2] != want[2]:
        found.append(f"schema: table {table} (without rowid, strict) is {have[2]}, not {want[2]}")
    return found
