"""Dropping order and cancel files into the terminal's input folder, atomically, with a sid ledger.

A terminal scanning the folder must never see a half-written file (RELIABILITY E1, rule 6): each file
is written under a temporary name that the terminal's globs (``*.order.csv``, ``*.cancel_order.csv``)
do not match, in the same folder, flushed and fsync'd, then renamed with ``os.replace`` and the folder
fsync'd. An optional empty ``<name>.fin`` completion marker follows the rename. The folder is checked
before every file and the file is created as ``trust.write_new_file`` does (random temporary name,
exclusive no-follow create, owner-only, no overwrite): see ``trust.py``.

Every field of an order file is machine-read by the terminal in its own format and is written as is
(never spreadsheet-escaped, ``engine/csv_safe.py``): instead, each one is checked where it is made
(sid and account id: ``engine.names``-style patterns; symbol, numbers, the fixed comment), so none
can start with a formula character or carry a separator.

A ``sid`` is the order's idempotency key at the terminal and is never reused (E5): the ledger, an SQLite
file with a UNIQUE key shared safely by several OS processes (``BEGIN IMMEDIATE``), records every sid
*before* its file is written and refuses a sid it has seen (``BrokerError``, nothing written).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import structlog

from zhixing.adapters.fileorder import trust
from zhixing.adapters.fileorder.format import (
    CANCEL_HEADER,
    CANCEL_SUFFIX,
    MARKER_SUFFIX,
    ORDER_HEADER,
    ORDER_SUFFIX,
    render_csv,
)
from zhixing.adapters.fileorder.trust import TEMP_SUFFIX, UntrustedPathError
from zhixing.engine import names
from zhixing.engine.clock import Clock
from zhixing.engine.errors import BrokerError, ParameterError
from zhixing.engine.names import UnsafeNameError
from zhixing.engine.store import shared_sqlite

log = structlog.get_logger("zhixing.fileorder")


__all__ = ["TEMP_SUFFIX", "OrderFileWriter", "SidLedger", "fsync_dir"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sids (
    sid TEXT PRIMARY KEY NOT NULL,     -- UNIQUE: a sid is written at most once, by any process
    reserved_ns INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    file TEXT NOT NULL DEFAULT '',     -- the file it is written to (visible once renamed)
    state TEXT NOT NULL DEFAULT 'reserved'  -- reserved (file written or being written) | failed | foreign
)
"""


class SidLedger:
    """Every sid ever written, shared by all processes that drop into one folder."""

    def __init__(self, path: Path) -> None:
        trust.make_private_folder(path.parent)
        trust.ensure_private_file(path)  # owner-only; SQLite gives its -wal/-shm files the same mode
        self.path = path
        # the adapter writes from a worker thread; self._lock serialises use of the one connection.
        try:
            # busy_timeout 0: writes retry themselves (_begin_immediate)
            self._db = shared_sqlite.open_shared(path, _SCHEMA, busy_timeout_ms=0)
        except shared_sqlite.LockedError as exc:
            raise BrokerError(f"fileorder: sid ledger {path}: {exc}") from exc
        self._lock = threading.Lock()

    def reserve(self, sid: str, now_ns: int, file: str = "", state: str = "reserved") -> None:
        """Record ``sid`` as about to be written to ``file`` (one fsync'd commit; ``state`` "foreign":
        never to be written, the terminal knew it before us). Raises ``BrokerError`` if any process
        recorded it before."""
        with self._lock:
            db = self._db
            self._begin_immediate()
            try:
                seen = db.execute("SELECT state FROM sids WHERE sid = ?", (sid,)).fetchone()
                if seen is not None:
                    raise BrokerError(f"fileorder: sid {sid!r} was used before ({seen[0]}); nothing written")
                db.execute(
                    "INSERT INTO sids (sid, reserved_ns, pid, file, state) VALUES (?, ?, ?, ?, ?)",
                    (sid, now_ns, os.getpid(), file, state),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _begin_immediate(self) -> None:
        """Take the write lock (retried while another process holds it, ``shared_sqlite``)."""
        try:
            shared_sqlite.execute_when_unlocked(self._db, "BEGIN IMMEDIATE")
        except shared_sqlite.LockedError as exc:
            raise BrokerError(f"fileorder: sid ledger {self.path} stayed locked; nothing written") from exc

    def mark(self, sid: str, state: str) -> None:
        with self._lock:
            self._begin_immediate()
            self._db.execute("UPDATE sids SET state = ? WHERE sid = ?", (state, sid))
            self._db.execute("COMMIT")

    def file_of(self, sid: str) -> str | None:
        """The file ``sid`` was (or is being) written to; None for a sid never reserved."""
        with self._lock:
            row = self._db.execute("SELECT file FROM sids WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else str(row[0])

    def sids_in_state(self, state: str) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT sid FROM sids WHERE state = ?", (state,)).fetchall()
        return {str(r[0]) for r in rows}

    def state(self, sid: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM sids WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Windows cannot open a folder for fsync (NTFS journals
    its metadata): skipped there."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OrderFileWriter:
    """Writes one order (or one cancel) per file into ``input_dir``; names never collide across
    processes nor accounts: ``<now_ns>_<tag>_<pid>_<seq>.order.csv``, ``tag`` the account key
    (``engine.order_ids``; without one, the legacy ``<now_ns>_<pid>_<seq>.order.csv``)."""

    def __init__(
        self,
        input_dir: Path,
        ledger: SidLedger,
        clock: Clock,
        *,
        encoding: str = "utf-8-sig",
        completion_marker: bool = False,
        tag: str = "",
    ) -> None:
        if tag and not tag.isalnum():
            raise ParameterError(
                f"{tag!r}: letters and digits only (a file name part)", name="tag", value=tag
            )
        self.input_dir = input_dir
        self.tag = tag
        self.ledger = ledger
        self.encoding = encoding
        self.completion_marker = completion_marker
        self._clock = clock
        self._pid = os.getpid()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def drop_order(self, row: Sequence[object]) -> Path:
        """Write one order row (``ORDER_HEADER`` order; ``row[0]`` is the sid). Raises ``BrokerError``
        when the sid was used before or the file could not be put in place (nothing visible)."""
        if len(row) != len(ORDER_HEADER):
            raise ParameterError(
                f"an order row has {len(row)} fields, expected {len(ORDER_HEADER)}", name="row", value=row
            )
        sid = str(row[0])
        name = self._next_name(ORDER_SUFFIX)
        # one commit per order: whether the file made it is told by the file itself (or the terminal)
        self.ledger.reserve(sid, self._clock.now_ns(), name)
        try:
            return self._drop(name, render_csv(ORDER_HEADER, [row]))
        except BrokerError:
            self.ledger.mark(sid, "failed")
            raise

    def drop_cancel(self, sid: str, comment: str = "") -> Path:
        """Write one cancel request for ``sid`` (a cancel may be repeated: no ledger check)."""
        return self._drop(self._next_name(CANCEL_SUFFIX), render_csv(CANCEL_HEADER, [(sid, comment)]))

    def cleanup_temp(self) -> list[Path]:
        """Remove temporary files a killed writer left behind (never seen by the terminal)."""
        removed = []
        for path in self.input_dir.glob(f".*{TEMP_SUFFIX}"):
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                continue  # another process cleaned it
        if removed:
            log.warning("fileorder_temp_files_removed", count=len(removed), folder=str(self.input_dir))
        return removed

    def _next_name(self, suffix: str) -> str:
        with self._lock:
            seq = next(self._seq)
        tag = f"{self.tag}_" if self.tag else ""
        return f"{self._clock.now_ns()}_{tag}{self._pid}_{seq:06d}{suffix}"

    def _drop(self, name: str, text: str) -> Path:
        final = self.input_dir / name
        try:
            names.check_name(name, "order file name")
            trust.check_folder(self.input_dir, "route.fileorder.input_dir")
            trust.write_new_file(self.input_dir, name, text.encode(self.encoding))
        except UntrustedPathError as exc:
            raise UntrustedPathError(f"fileorder: could not write {final}: {exc}") from exc
        except (OSError, UnsafeNameError) as exc:
            raise BrokerError(f"fileorder: could not write {final}: {exc}") from exc
        # the file is visible from here on: a failure below must not be reported as "nothing sent"
        try:
            fsync_dir(self.input_dir)
            if self.completion_marker:
                trust.write_new_file(self.input_dir, f"{name}{MARKER_SUFFIX}", b"")
                fsync_dir(self.input_dir)
        except (OSError, BrokerError) as exc:
            log.error("fileorder_after_rename_failed", file=name, error=str(exc))
        return final
