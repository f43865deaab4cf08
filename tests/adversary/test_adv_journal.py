"""ADVERSARY: the journal. FINDING tests fail on the current code; HELD ones pass."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from tests.journal_files import T0, make_journal
from zhixing.engine.store.backup import BackupError, backup_journal
from zhixing.engine.store.integrity import verify_journal


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return asyncio.run(make_journal(tmp_path / "zhixing.db"))


def _hot_rollback_journal_of_another_db(folder: Path) -> Path:
    """A hot '-journal' of another (rollback-mode) database, captured mid-transaction."""
    other = folder / "other.db"
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("CREATE TABLE t (v TEXT)")
    for i in range(200):
        conn.execute("INSERT INTO t VALUES (?)", ("y" * 300 + str(i),))
    conn.execute("BEGIN")
    conn.execute("UPDATE t SET v = 'z' || v")
    conn.execute("PRAGMA cache_spill = 1")
    hot = folder / "captured-journal"
    # force the pages out so the journal is hot on disk
    conn.execute("PRAGMA cache_size = 1")
    conn.execute("UPDATE t SET v = 'q' || v")
    shutil.copyfile(other.with_name("other.db-journal"), hot)
    conn.execute("ROLLBACK")
    conn.close()
    return hot


# FINDING (journal): the docs say "the checks read only ... never written". A hot rollback journal
# ("-journal") of another database left next to ours makes the read-only open fail with "readonly",
# and the fallback re-opens read-write, where SQLite rolls that journal back INTO our file.
@pytest.mark.slow
def test_was_finding_verify_never_writes_the_file_even_with_a_foreign_hot_rollback_journal(
    journal: Path,
) -> None:
    hot = _hot_rollback_journal_of_another_db(journal.parent)
    shutil.copyfile(hot, journal.with_name(journal.name + "-journal"))
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    verify_journal(journal)
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before, "verify wrote the journal"


# HELD: keep=0 is refused, not "delete everything"
def test_held_keep_zero_is_refused(journal: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep: must be >= 1"):
        backup_journal(journal, tmp_path / "out", day=date(2021, 12, 1), now_ns=T0, keep=0)


# HELD: a day folder that is a symlink to somewhere else is refused and nothing is written there
def test_held_day_folder_symlink_is_refused(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "2021-12-01").symlink_to(elsewhere)
    with pytest.raises(BackupError):
        backup_journal(journal, out, day=date(2021, 12, 1), now_ns=T0)
    assert list(elsewhere.iterdir()) == []


# HELD: a journal truncated by one page while its header counter says more
def test_held_truncated_by_one_page(journal: Path) -> None:
    data = journal.read_bytes()
    journal.write_bytes(data[:-4096])
    assert not verify_journal(journal).ok


# FINDING candidate (journal): a WAL from ANOTHER database left next to a journal with no -shm is
# refused (J12) - but a zero-length -wal plus a -shm from another process must not make verify write.
def test_held_empty_wal_and_stale_shm_leave_file_unchanged(journal: Path) -> None:
    journal.with_name(journal.name + "-wal").write_bytes(b"")
    journal.with_name(journal.name + "-shm").write_bytes(os.urandom(32768))
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    verify_journal(journal)
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
