"""Exports and backups are written as a set (``engine.store.file_set``): a failure at any point, a full
disk included, leaves the previous complete set or nothing, never a new ``orders.csv`` beside an old
``fills.csv``; a process that died between the renames is recovered at the next write.

Full-disk stand-ins: ``RLIMIT_FSIZE`` in a ``zhixing journal export`` subprocess (every write past the
limit fails with EFBIG; the journal itself is only read); for the backup, whose journal copy is written
first and is always its largest file, the trade log's write fails with ENOSPC (injected), and, where the
tests run as root, a real 1 MB tmpfs that fills while the trade log is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.journal_files import fill, make_journal
from zhixing.engine.cli import main
from zhixing.engine.market import shanghai_ns
from zhixing.engine.store import StateStore, trade_log
from zhixing.engine.store.backup import BACKUP_DB, MANIFEST, BackupError, backup_journal
from zhixing.engine.store.file_set import FileSetError, leftovers, recover, write_file_set
from zhixing.engine.store.integrity import verify_journal

DAY = date(2021, 12, 1)
NOW = shanghai_ns(DAY, "15:10")
ROOT = Path(__file__).resolve().parents[3]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def names_beside(folder: Path) -> list[str]:
    """What the parent holds besides the set: no temporary or old folder may be left."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


async def add_fills(journal: Path, count: int) -> None:
    store = await StateStore.open(journal, synchronous="NORMAL")
    for i in range(count):
        store.stage_fill(dataclasses.replace(fill(1), trade_id=f"T{i:06d}", quantity=1), "P1")
    await store.commit()
    await store.close()


def ours(name: str) -> bool:
    return name in ("a.txt", "b.txt")


def write_ab(a: str, b: str, *, fail_after_a: bool = False) -> Callable[[Path], None]:
    def fill(folder: Path) -> None:
        (folder / "a.txt").write_text(a, encoding="utf-8")
        if fail_after_a:
            raise OSError(errno.ENOSPC, "No space left on device")
        (folder / "b.txt").write_text(b, encoding="utf-8")

    return fill


# ---------------------------------------------------------------------------------------- the rule
def test_a_failure_midway_leaves_the_previous_set_whole_and_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_file_set(target, write_ab("old a", "old b"), ours=ours, what="pair")
    with pytest.raises(FileSetError, match=r"out: the pair could not be written \(No space left on device\)"):
        write_file_set(target, write_ab("new a", "new b", fail_after_a=True), ours=ours, what="pair")
    assert snapshot(target) == {"a.txt": b"old a", "b.txt": b"old b"}
    assert names_beside(target) == []


def test_a_failure_with_no_previous_set_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(FileSetError, match="nothing was changed"):
        write_file_set(target, write_ab("a", "b", fail_after_a=True), ours=ours, what="pair")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_second_rename_puts_the_previous_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    write_file_set(target, write_ab("old a", "old b"), ours=ours, what="pair")
    real_rename = os.rename
    calls: list[tuple[str, str]] = []

    def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append((str(src), str(dst)))
        if len(calls) == 2:  # old set aside, then the new one into place: that one fails
            raise OSError(errno.EIO, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(FileSetError, match="Input/output error"):
        write_file_set(target, write_ab("new a", "new b"), ours=ours, what="pair")
    monkeypatch.undo()
    assert snapshot(target) == {"a.txt": b"old a", "b.txt": b"old b"}
    assert names_beside(target) == []


def test_a_process_that_died_between_the_renames_gets_the_previous_set_back(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_file_set(target, write_ab("old a", "old b"), ours=ours, what="pair")
    # as a process leaves it when killed after "old aside" and before "new into place"
    os.rename(target, tmp_path / ".out.0123456789abcdef.old")
    (tmp_path / ".out.k3j_x9q2.partial").mkdir()
    (tmp_path / ".out.k3j_x9q2.partial" / "a.txt").write_text("new a", encoding="utf-8")
    recover(target)
    assert snapshot(target) == {"a.txt": b"old a", "b.txt": b"old b"}
    assert names_beside(target) == []


def test_a_process_that_died_after_the_swap_leaves_the_new_set_and_its_old_one_is_removed(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out"
    write_file_set(target, write_ab("new a", "new b"), ours=ours, what="pair")
    old = tmp_path / ".out.fedcba9876543210.old"
    old.mkdir()
    (old / "a.txt").write_text("old a", encoding="utf-8")
    write_file_set(target, write_ab("newer a", "newer b"), ours=ours, what="pair")  # recovers first
    assert snapshot(target) == {"a.txt": b"newer a", "b.txt": b"newer b"}
    assert leftovers(target) == ([], [])
    assert names_beside(target) == []


def test_a_folder_holding_other_files_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("old a", encoding="utf-8")
    (target / "notes.docx").write_text("the desk's notes", encoding="utf-8")
    with pytest.raises(FileSetError, match=r"holds files zhixing did not write \(notes\.docx\)"):
        write_file_set(target, write_ab("new a", "new b"), ours=ours, what="pair")
    assert snapshot(target) == {"a.txt": b"old a", "notes.docx": b"the desk's notes"}
    assert names_beside(target) == []


def test_a_leftover_of_another_target_with_a_similar_name_is_not_touched(tmp_path: Path) -> None:
    other = tmp_path / ".out.x.abcdefgh.partial"  # a leftover of the target "out.x", not of "out"
    other.mkdir()
    (other / "a.txt").write_text("theirs", encoding="utf-8")
    write_file_set(tmp_path / "out", write_ab("a", "b"), ours=ours, what="pair")
    assert (other / "a.txt").read_text(encoding="utf-8") == "theirs"


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_removing_a_leftover_never_follows_a_link_out_of_it(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep", encoding="utf-8")
    leftover = tmp_path / ".out.abcdefgh.partial"
    leftover.mkdir()
    (leftover / "link").symlink_to(precious, target_is_directory=True)
    recover(tmp_path / "out")
    assert (precious / "keep.txt").read_text(encoding="utf-8") == "keep"
    assert not leftover.exists()


# ---------------------------------------------------------------------------------------- journal export
def disk_of(size: int) -> None:
    """In the child before it runs: every write past ``size`` bytes of a file fails with EFBIG."""
    if sys.platform == "win32":
        raise NotImplementedError("RLIMIT_FSIZE is POSIX")
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def export_on_a_small_disk(db: Path, out: Path, limit: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zhixing.engine.cli", "journal", "export", "--db", str(db), "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: disk_of(limit),
    )


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.slow
def test_journal_export_on_a_disk_that_fills_at_fills_csv_keeps_the_previous_trade_log(
    tmp_path: Path,
) -> None:
    db = asyncio.run(make_journal(tmp_path / "state" / "zhixing.db", orders=3))
    out = tmp_path / "log"
    assert main(["journal", "export", "--db", str(db), "--out", str(out)]) == 0
    before = snapshot(out)
    asyncio.run(add_fills(db, 4000))  # fills.csv now far past the limit, orders.csv well below it
    limit = 100_000
    proc = export_on_a_small_disk(db, out, limit)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "zhixing: error:" in proc.stderr
    assert "could not be written (File too large)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out) == before  # orders.csv and fills.csv as they were, together
    assert names_beside(out) == ["state"]
    # with room again, the same export writes the new set
    assert main(["journal", "export", "--db", str(db), "--out", str(out)]) == 0
    assert len((out / "fills.csv").read_text(encoding="utf-8").splitlines()) == 4000 + 3 + 1


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.slow
def test_journal_export_on_a_full_disk_with_no_previous_trade_log_leaves_nothing(tmp_path: Path) -> None:
    db = asyncio.run(make_journal(tmp_path / "state" / "zhixing.db", orders=3))
    asyncio.run(add_fills(db, 4000))
    out = tmp_path / "log"
    proc = export_on_a_small_disk(db, out, 100_000)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert not out.exists()
    assert names_beside(out) == ["state"]


def test_journal_export_into_a_folder_with_other_files_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = asyncio.run(make_journal(tmp_path / "state" / "zhixing.db", orders=3))
    out = tmp_path / "reports"
    out.mkdir()
    (out / "q3.xlsx").write_bytes(b"PK\x03\x04")
    assert main(["journal", "export", "--db", str(db), "--out", str(out)]) == 2
    assert "holds files zhixing did not write (q3.xlsx)" in capsys.readouterr().err
    assert snapshot(out) == {"q3.xlsx": b"PK\x03\x04"}


# ---------------------------------------------------------------------------------------- journal backup
def test_a_backup_whose_trade_log_fails_midway_keeps_that_days_previous_backup_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = asyncio.run(make_journal(tmp_path / "state" / "zhixing.db", orders=3))
    out = tmp_path / "backups"
    first = backup_journal(journal, out, day=DAY, now_ns=NOW)
    before = snapshot(first.folder)
    asyncio.run(add_fills(journal, 50))
    real_write = trade_log.write_csv

    def disk_full_at_fills(path: Path, header: object, lines: object) -> None:
        if path.name == "fills.csv":
            with path.open("w", encoding="utf-8") as handle:
                handle.write("trade_id,cli")  # a few bytes, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, header, lines)  # type: ignore[arg-type]

    monkeypatch.setattr(trade_log, "write_csv", disk_full_at_fills)
    with pytest.raises(BackupError, match=r"2021-12-01: the backup could not be written \(No space left"):
        backup_journal(journal, out, day=DAY, now_ns=NOW, keep=1)
    monkeypatch.undo()
    assert snapshot(first.folder) == before  # journal.db, orders.csv, fills.csv, manifest: the old set
    assert names_beside(first.folder) == []
    assert verify_journal(first.folder / BACKUP_DB).ok
    again = backup_journal(journal, out, day=DAY, now_ns=NOW)
    assert again.fills == 53
    assert sorted(snapshot(again.folder)) == sorted([BACKUP_DB, MANIFEST, "fills.csv", "orders.csv"])


# ---------------------------------------------------------------------------------------- a real full disk
@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (root only; skipped elsewhere)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def fill_disk_leaving(folder: Path, free: int) -> None:
    """Write a filler file until only about ``free`` bytes are left on ``folder``'s file system."""
    filler = folder / "filler"
    with filler.open("wb") as handle:
        while shutil.disk_usage(folder).free > free:
            chunk = min(64 * 1024, shutil.disk_usage(folder).free - free)
            if chunk <= 0:
                break
            handle.write(b"\0" * chunk)
            handle.flush()


def test_a_backup_on_a_real_disk_that_fills_while_the_trade_log_is_written(tmp_path: Path) -> None:
    journal = asyncio.run(make_journal(tmp_path / "state" / "zhixing.db", orders=3))
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "backups"
        first = backup_journal(journal, out, day=DAY, now_ns=NOW)
        before = snapshot(first.folder)
        asyncio.run(add_fills(journal, 3000))
        size = journal.stat().st_size
        # room for the journal's copy and a part of the trade log, not for all of it
        fill_disk_leaving(disk, size + 64 * 1024)
        with pytest.raises(BackupError, match="No space left on device"):
            backup_journal(journal, out, day=DAY, now_ns=NOW)
        assert snapshot(first.folder) == before
        assert names_beside(first.folder) == []
