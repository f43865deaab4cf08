"""The daily backup of a journal and its restore.

``backup_journal`` copies a journal while an engine may be writing it, through SQLite's online backup API
(one read transaction: the copy is one consistent snapshot, whatever commits meanwhile), into a folder
named by the trading day, ``OUT/2026-01-05/``:

- ``journal.db``: the copy, in rollback-journal mode (one self-contained file), verified with the same
  checks as the engine's start (``engine.store.integrity``) before it takes that name;
- ``orders.csv`` and ``fills.csv``: that day's trade log (流水), read from the copy, so the two agree;
- ``zhixing-backup.json``: the manifest, written last: a folder with one is a complete backup, made by
  zhixing, of the journal it names.

The day's folder is one set (``engine.store.file_set``): built in a temporary folder beside it and
renamed into place, so a failure anywhere (a full disk while the copy or the trade log is written, a
damaged journal) leaves the previous backup of that day whole, or nothing. A source that another
connection holds locked is retried (``busy_steps`` times) before the backup gives up; a failed or
unverified copy never replaces a good one, and nothing is pruned after a failure. With
``keep``, only folders this function made for the same journal are pruned (the oldest beyond ``keep``
trading days), and only the files it wrote there: anything else in the out folder stays.

``restore_journal`` puts a verified backup in place of a journal: the old file and its WAL files are
moved aside together (never deleted; SQLite finds a WAL by the journal's name, so a stale one left next
to the restored file would be replayed into it), the copy is renamed in atomically and verified again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from zhixing.engine.errors import ParameterError, StoreError
from zhixing.engine.market.calendar import iso8601, trading_date_of
from zhixing.engine.store import schema
from zhixing.engine.store.file_set import check_replaceable, write_file_set
from zhixing.engine.store.integrity import JournalReport, verify_journal, wal_files
from zhixing.engine.store.trade_log import TRADE_LOG_FILES, fsync_dir, write_trade_log_files

BACKUP_DB = "journal.db"
MANIFEST = "zhixing-backup.json"
MADE_BY = "zhixing journal backup"
DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TEMP_PREFIX = f".{BACKUP_DB}."
TEMP_SUFFIX = ".partial"
BUSY_STEPS = 200
"""Backup steps the source may answer busy/locked before the backup gives up (``sleep_s`` apart)."""

Progress = Callable[[int, int, int], object]
"""``(status, remaining pages, total pages)`` after every backup step (``sqlite3.Connection.backup``)."""


class BackupError(StoreError):
    """A backup or restore could not be made; the message names the folder or file and why."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    folder: Path
    db: Path
    trade_log: tuple[Path, Path]
    report: JournalReport
    orders: int  # rows in the day's orders.csv / fills.csv
    fills: int
    pruned: tuple[Path, ...]  # older backup folders removed (keep)
    left: tuple[Path, ...]  # older backup folders emptied of our files but holding others, so kept


def backup_journal(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    day: date,
    now_ns: int,
    keep: int | None = None,
    pages: int = -1,
    busy_steps: int = BUSY_STEPS,
    sleep_s: float = 0.05,
    on_step: Progress | None = None,
) -> BackupResult:
    """Copy the journal ``source`` into ``out_dir/<day>/``, verify the copy, write the day's trade log
    beside it, then prune to ``keep`` days. Synchronous (run it in a thread from the loop). ``pages``
    per backup step (-1: all in one); ``on_step`` is called after every step (tests)."""
    src = Path(source)
    out = Path(out_dir)
    if keep is not None and keep < 1:
        raise ParameterError(f"must be >= 1, not {keep}", name="keep", value=keep)
    if not src.is_file():
        raise BackupError(f"{src}: no journal to back up (no such file)")
    folder = Path(os.path.abspath(out / day.isoformat()))
    _check_folder(folder, src)
    target = folder / BACKUP_DB

    def fill(temp: Path) -> tuple[JournalReport, int, int]:
        copy = temp / BACKUP_DB
        _copy(src, copy, pages=pages, busy_steps=busy_steps, sleep_s=sleep_s, on_step=on_step)
        report = verify_journal(copy)
        if not report.ok:
            raise BackupError(
                f"{src}: the copy fails verification, so the journal itself is damaged (run `zhixing journal "
                f"verify --db {src}`); no backup was made and no older one removed: "
                + "; ".join(report.problems)
            )
        orders, fills = _day_trade_log(copy, day)
        write_trade_log_files(temp, orders, fills)
        report = dataclasses.replace(report, path=target)
        _write_manifest(
            temp, src, copy, day=day, now_ns=now_ns, report=report, rows=(len(orders), len(fills))
        )
        return report, len(orders), len(fills)

    # the day's folder is one set: a failure (a full disk) leaves the previous backup of that day whole
    report, n_orders, n_fills = write_file_set(folder, fill, ours=_is_ours, what="backup", error=BackupError)
    trade_log = (folder / TRADE_LOG_FILES[0], folder / TRADE_LOG_FILES[1])
    pruned, left = prune_backups(out, src, keep=keep, current=folder) if keep is not None else ((), ())
    return BackupResult(folder, target, trade_log, report, n_orders, n_fills, pruned, left)


def _check_folder(folder: Path, src: Path) -> None:
    """The day's folder: missing, or a backup this function made of the same journal (replaced whole)."""
    if not os.path.lexists(folder):
        if os.path.lexists(folder.parent) and not folder.parent.is_dir():
            raise BackupError(
                f"{folder.parent}: cannot create the backup folder (not a folder); nothing was written"
            )
        return
    if folder.is_symlink() or not folder.is_dir():
        raise BackupError(f"{folder}: not a folder; nothing was written")
    manifest = read_manifest(folder)
    if manifest is not None and not _same_file(str(manifest.get("source", "")), src):
        raise BackupError(
            f"{folder}: holds the backup of another journal ({manifest.get('source')}); give each "
            "journal its own backup folder; nothing was written"
        )
    check_replaceable(folder, _is_ours, what="backup", error=BackupError)


def _copy(
    src: Path, dest: Path, *, pages: int, busy_steps: int, sleep_s: float, on_step: Progress | None
) -> None:
    """SQLite's online backup from ``src`` (read only) into ``dest``; busy/locked steps are retried up to
    ``busy_steps`` times, then ``BackupError``."""
    busy = 0

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal busy
        if on_step is not None:
            on_step(status, remaining, total)
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            busy += 1
            if busy >= busy_steps:
                raise BackupError(
                    f"{src}: the journal stayed locked by another connection for {busy} attempts; "
                    "no backup was made (try again)"
                )

    source = _connect_source(src)
    try:
        target = sqlite3.connect(dest, isolation_level=None)
        try:
            source.backup(target, pages=pages, progress=progress, sleep=sleep_s)
            # one self-contained file: no WAL to carry along when it is copied or restored
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{src}: backup failed: {exc}; no backup was made") from exc
    finally:
        source.close()
    with open(dest, "rb+") as handle:
        os.fsync(handle.fileno())


def _connect_source(src: Path) -> sqlite3.Connection:
    uri = src.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 1000")
        return conn
    except sqlite3.Error as exc:
        raise BackupError(f"{src}: cannot open the journal to back it up: {exc}") from exc


def _day_trade_log(db: Path, day: date) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The day's rows of the trade log from the copy: orders created that day, fills of that day."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        orders = [r for r in conn.execute(schema.SELECT_LOG_ORDERS) if trading_date_of(r[9]) == day]
        fills = [r for r in conn.execute(schema.SELECT_LOG_FILLS) if trading_date_of(r[10]) == day]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return orders, fills


def _write_manifest(
    folder: Path,
    src: Path,
    db: Path,
    *,
    day: date,
    now_ns: int,
    report: JournalReport,
    rows: tuple[int, int],
) -> None:
    sha = hashlib.sha256()
    with open(db, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()
    manifest = {
        "made_by": MADE_BY,
        "source": str(src.resolve()),
        "trading_day": day.isoformat(),
        "created_at": iso8601(now_ns),
        "schema_version": report.schema_version,
        "journal": BACKUP_DB,
        "sha256": digest,
        "bytes": db.stat().st_size,
        "journal_orders": report.orders,
        "journal_fills": report.fills,
        "day_orders": rows[0],
        "day_fills": rows[1],
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / MANIFEST)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def read_manifest(folder: Path) -> dict[str, object] | None:
    """The manifest of a backup folder made by ``backup_journal``; None when there is none (or not ours)."""
    path = folder / MANIFEST
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(value, dict) or value.get("made_by") != MADE_BY:
        return None
    return value


def _same_file(recorded: str, src: Path) -> bool:
    return os.path.normcase(recorded) == os.path.normcase(str(src.resolve()))


def _is_ours(name: str) -> bool:
    """A file ``backup_journal`` writes into a day folder (or its temp files)."""
    if name in (BACKUP_DB, MANIFEST, *TRADE_LOG_FILES):
        return True
    temps = (f".{n}." for n in (BACKUP_DB, MANIFEST, *TRADE_LOG_FILES))
    return any(name.startswith(t) for t in temps) and (name.endswith(TEMP_SUFFIX) or name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------- prune
def our_backups(out_dir: Path, src: Path) -> list[Path]:
    """Backup folders in ``out_dir`` that ``backup_journal`` made of ``src``, oldest first."""
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in out_dir.iterdir():
            if not DAY_FOLDER.fullmatch(entry.name) or entry.is_symlink() or not entry.is_dir():
                continue
            manifest = read_manifest(entry)
            if manifest is not None and _same_file(str(manifest.get("source", "")), src):
                found.append(entry)
    return sorted(found, key=lambda p: p.name)


def prune_backups(
    out_dir: Path, src: Path, *, keep: int, current: Path | None = None
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """Remove all but the newest ``keep`` backup folders of ``src`` (never ``current``); only the files
    ``backup_journal`` wrote. Returns (folders removed, folders left because they hold other files)."""
    mine = our_backups(out_dir, src)
    old = [p for p in mine[: max(0, len(mine) - keep)] if p != current]
    removed, left = [], []
    for folder in old:
        for entry in folder.iterdir():
            if _is_ours(entry.name) and entry.is_file() and entry.name != MANIFEST:
                entry.unlink()
        (folder / MANIFEST).unlink()  # last: until it goes, the folder still reads as a backup
        try:
            folder.rmdir()
        except OSError:
            left.append(folder)
        else:
            removed.append(folder)
    return tuple(removed), tuple(left)


# ---------------------------------------------------------------------------------------- restore
@dataclass(frozen=True, slots=True)
class RestoreResult:
    db: Path
    moved_aside: tuple[Path, ...]
    report: JournalReport
    manifest: dict[str, object] | None


def backup_file(backup: str | os.PathLike[str]) -> tuple[Path, dict[str, object] | None]:
    """A backup given as its day folder or as the journal file: (journal file, manifest or None)."""
    path = Path(backup)
    if path.is_dir():
        return path / BACKUP_DB, read_manifest(path)
    return path, read_manifest(path.parent) if path.name == BACKUP_DB else None


def restore_journal(
    backup: str | os.PathLike[str], db: str | os.PathLike[str], *, now_ns: int
) -> RestoreResult:
    """Put the backup ``backup`` (a day folder or a journal file) in place of the journal ``db``.

    The caller holds the engine's instance lock (no engine runs on ``db``). Refuses an unverified backup;
    moves the journal and its WAL files aside as ``<db>.damaged-<time>`` (+ ``-wal``/``-shm``), copies the
    backup in atomically, verifies the result."""
    source, manifest = backup_file(backup)
    target = Path(db)
    report = verify_journal(source)
    if not report.ok:
        raise BackupError(
            f"{source}: the backup fails verification; nothing was changed: " + "; ".join(report.problems)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".restore", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as inp:
            while chunk := inp.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        copied = verify_journal(tmp)
        if not copied.ok:
            raise BackupError(f"{tmp}: the copy of {source} fails verification; nothing was changed")
        moved = _move_aside(target, now_ns)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    final = verify_journal(target)
    if not final.ok:
        raise BackupError(f"{target}: the restored journal fails verification: " + "; ".join(final.problems))
    return RestoreResult(target, moved, final, manifest)


def _move_aside(target: Path, now_ns: int) -> tuple[Path, ...]:
    """``target`` and its WAL files renamed together to ``<name>.damaged-<time>``; what was moved."""
    stamp = iso8601(now_ns).replace(":", "").replace("+", "p").replace(".", "_")
    aside = target.with_name(f"{target.name}.damaged-{stamp}")
    moved: list[Path] = []
    pairs: Sequence[tuple[Path, Path]] = [
        (target, aside),
        *zip(wal_files(target), wal_files(aside), strict=True),
    ]
    for old, new in pairs:
        if os.path.lexists(old):
            os.replace(old, new)
            moved.append(new)
    return tuple(moved)
