"""The daily journal backup and its restore, on real files and folders: a consistent copy while the
journal is being written or locked by another process, verified, named by trading day, with the day's
trade log; pruning that touches only its own folders; an out folder that cannot be written; a restore
that never replays a stale WAL; and the backup job of ``zhixing run``."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.journal_files import SEC, T0, execute, fill, make_journal, order, page_holding, patch
from zhixing.engine.cli import main
from zhixing.engine.cli.run_cmd import run_config
from zhixing.engine.config import BACKUP_JOB, load_config
from zhixing.engine.errors import ConfigError
from zhixing.engine.instance_lock import InstanceLock
from zhixing.engine.market import shanghai_ns
from zhixing.engine.store import StateStore, schema
from zhixing.engine.store.backup import (
    BACKUP_DB,
    MANIFEST,
    BackupError,
    backup_journal,
    our_backups,
    read_manifest,
    restore_journal,
)
from zhixing.engine.store.integrity import verify_journal, wal_files

DAY = date(2021, 12, 1)
NEXT_DAY = date(2021, 12, 2)
NOW = shanghai_ns(DAY, "15:10")
SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return asyncio.run(make_journal(tmp_path / "state" / "zhixing.db"))


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------- the copy
def test_a_backup_is_a_verified_copy_named_by_its_day_with_that_days_trade_log(
    journal: Path, tmp_path: Path
) -> None:
    async def add_next_day() -> None:  # two orders of the next day: not in the day's trade log
        store = await StateStore.open(journal)
        for seq in (4, 5):
            next_day = {"ts_created": T0 + 86_400 * SEC, "ts_updated": T0 + 86_400 * SEC}
            store.stage_order(order(seq, **next_day))
        await store.commit()
        await store.close()

    asyncio.run(add_next_day())
    out = tmp_path / "backups"
    result = backup_journal(journal, out, day=DAY, now_ns=NOW)
    assert result.folder == out / "2021-12-01"
    assert result.db == out / "2021-12-01" / BACKUP_DB
    assert sorted(p.name for p in result.folder.iterdir()) == sorted(
        [BACKUP_DB, MANIFEST, "orders.csv", "fills.csv"]
    )
    copy = verify_journal(result.db)
    assert copy.ok, copy.problems
    assert (copy.orders, copy.fills) == (5, 3)  # the whole journal
    assert [r["client_order_id"] for r in rows(result.folder / "orders.csv")] == [
        "Z000000001",
        "Z000000002",
        "Z000000003",
    ]  # the day's orders only
    assert [r["trade_id"] for r in rows(result.folder / "fills.csv")] == ["T1", "T2", "T3"]
    manifest = read_manifest(result.folder)
    assert manifest is not None
    assert manifest["source"] == str(journal.resolve())
    assert manifest["trading_day"] == "2021-12-01"
    assert (manifest["day_orders"], manifest["day_fills"]) == (3, 3)
    # one self-contained file: copied alone elsewhere it is still the whole journal
    assert not wal_files(result.db)[0].exists()
    alone = tmp_path / "alone.db"
    alone.write_bytes(result.db.read_bytes())
    assert verify_journal(alone).ok
    assert count(alone, "orders") == 5


async def test_a_backup_while_the_engine_holds_the_journal_open_has_what_was_committed(
    tmp_path: Path,
) -> None:
    db = await make_journal(tmp_path / "zhixing.db")
    store = await StateStore.open(db)  # the running engine: its commits are in the WAL, not checkpointed
    try:
        store.stage_order(order(4))
        store.stage_fill(fill(4), "P1")
        await store.commit()
        store.stage_order(order(5))  # staged, not committed: not in any copy
        assert wal_files(db)[0].stat().st_size > 0
        result = await asyncio.to_thread(backup_journal, db, tmp_path / "out", day=DAY, now_ns=NOW)
        await store.commit()  # the engine goes on writing after the copy
    finally:
        await store.close()
    assert verify_journal(result.db).ok
    assert (count(result.db, "orders"), count(result.db, "fills")) == (4, 4)
    assert count(db, "orders") == 5


def test_writes_during_the_backup_never_leave_a_half_transaction_in_the_copy(
    journal: Path, tmp_path: Path
) -> None:
    """Another connection commits an order and its fill (one transaction) between backup steps, as the
    engine does while the backup runs: SQLite restarts the copy, which ends consistent and complete."""
    writer = sqlite3.connect(journal, isolation_level=None, check_same_thread=False)
    writes = []
    order_sql = schema.UPSERT_ORDER
    fill_sql = schema.INSERT_FILL

    def write_between_steps(status: int, remaining: int, total: int) -> None:
        if remaining and len(writes) < 4:  # mid-copy
            seq = 10 + len(writes)
            o = order(seq)
            f = fill(seq)
            writer.execute("BEGIN IMMEDIATE")
            writer.execute(order_sql, tuple(getattr(o, c) for c in schema.ORDER_COLUMNS))
            values = [getattr(f, c) for c in schema.FILL_ATTRS]
            writer.execute(fill_sql, (*values, "P1"))
            writer.execute("COMMIT")
            writes.append(seq)

    try:
        result = backup_journal(
            journal, tmp_path / "out", day=DAY, now_ns=NOW, pages=1, on_step=write_between_steps
        )
    finally:
        writer.close()
    assert writes == [10, 11, 12, 13]
    assert verify_journal(result.db).ok
    orders, fills = count(result.db, "orders"), count(result.db, "fills")
    assert orders == fills == 3 + len(writes)  # every transaction whole, none lost
    assert len(rows(result.folder / "orders.csv")) == orders


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("SELECT count(*) FROM meta").fetchone()  # WAL opened in normal mode: the lock can be given back
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("INSERT INTO meta (key, value) VALUES ('locker', 'x')")  # takes and keeps the lock
print("locked", flush=True)
sys.stdin.readline()
conn.execute("PRAGMA locking_mode = NORMAL")
conn.execute("SELECT count(*) FROM meta").fetchone()  # the next access drops the exclusive lock
print("released", flush=True)
sys.stdin.readline()
"""


def start_locker(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    for _ in range(2):
        if proc.poll() is None:
            try:
                proc.stdin.write("\n")
                proc.stdin.flush()
            except BrokenPipeError:
                break
    proc.stdin.close()
    proc.wait(timeout=30)
    assert proc.stdout is not None
    proc.stdout.close()


@pytest.mark.slow
def test_a_journal_locked_by_another_process_is_retried_until_the_lock_goes(
    journal: Path, tmp_path: Path
) -> None:
    proc = start_locker(journal)
    seen: list[int] = []

    def release_after_two_busy_steps(status: int, remaining: int, total: int) -> None:
        seen.append(status)
        if status == sqlite3.SQLITE_BUSY and seen.count(status) == 2:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "released"

    try:
        result = backup_journal(
            journal, tmp_path / "out", day=DAY, now_ns=NOW, sleep_s=0, on_step=release_after_two_busy_steps
        )
    finally:
        stop(proc)
    assert seen[:2] == [sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY]
    assert seen[-1] == sqlite3.SQLITE_DONE
    assert verify_journal(result.db).ok
    conn = sqlite3.connect(result.db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'locker'").fetchone() == ("x",)  # committed
    conn.close()


@pytest.mark.slow
def test_a_lock_that_never_goes_fails_the_backup_after_bounded_attempts_and_leaves_nothing(
    journal: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    earlier = backup_journal(journal, out, day=date(2021, 11, 30), now_ns=NOW)
    proc = start_locker(journal)
    try:
        with pytest.raises(BackupError, match="stayed locked by another connection for 5 attempts"):
            backup_journal(journal, out, day=DAY, now_ns=NOW, keep=1, busy_steps=5, sleep_s=0)
    finally:
        stop(proc)
    assert not (out / "2021-12-01").exists()  # no half folder
    assert verify_journal(earlier.db).ok  # and nothing pruned after a failure
    assert our_backups(out, journal) == [earlier.folder]


def test_a_damaged_journal_makes_no_backup_and_keeps_the_good_ones(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = backup_journal(journal, out, day=DAY, now_ns=NOW)
    before = good.db.read_bytes()
    _, start = page_holding(journal, b'"halted"')
    patch(journal, start, bytes(8))  # the meta page's header
    with pytest.raises(BackupError, match="the copy fails verification"):
        backup_journal(journal, out, day=DAY, now_ns=NOW, keep=1)  # the same day again
    assert good.db.read_bytes() == before  # the good copy of that day stays
    assert sorted(p.name for p in good.folder.iterdir()) == sorted(
        [BACKUP_DB, MANIFEST, "orders.csv", "fills.csv"]
    )  # no temp file left


# ---------------------------------------------------------------------------------------- keep N days
def test_keep_prunes_only_the_folders_it_made_for_this_journal_and_only_its_files(
    journal: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    days = [date(2021, 11, d) for d in (22, 23, 24, 25, 26)]
    for day in days:
        backup_journal(journal, out, day=day, now_ns=NOW)
    # what else lives in the folder: nothing of it may go
    (out / "2021-11-01").mkdir()
    (out / "2021-11-01" / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "2021-11-02").write_text("a file with a date name", encoding="utf-8")
    (out / "README.txt").write_text("backups", encoding="utf-8")
    other = asyncio.run(make_journal(tmp_path / "other" / "zhixing.db"))
    backup_journal(other, out / "shared", day=date(2021, 11, 3), now_ns=NOW)
    theirs = backup_journal(other, out, day=date(2021, 11, 21), now_ns=NOW)  # same folder, older day
    (out / "2021-11-03").symlink_to(out / "shared" / "2021-11-03", target_is_directory=True)
    (out / "2021-11-23" / "my-note.txt").write_text("keep me", encoding="utf-8")  # inside an old one
    (out / "2021-11-04").mkdir()
    (out / "2021-11-04" / MANIFEST).write_text(json.dumps({"made_by": "someone else"}), encoding="utf-8")

    result = backup_journal(journal, out, day=DAY, now_ns=NOW, keep=3)

    assert [p.name for p in our_backups(out, journal)] == ["2021-11-25", "2021-11-26", "2021-12-01"]
    assert [p.name for p in result.pruned] == ["2021-11-22", "2021-11-24"]
    assert [p.name for p in result.left] == ["2021-11-23"]
    assert sorted(p.name for p in (out / "2021-11-23").iterdir()) == ["my-note.txt"]
    assert (out / "2021-11-01" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (out / "2021-11-02").is_file()
    assert (out / "README.txt").is_file()
    assert verify_journal(out / "shared" / "2021-11-03" / BACKUP_DB).ok  # not followed through the link
    assert (out / "2021-11-04" / MANIFEST).is_file()
    assert verify_journal(theirs.db).ok  # another journal's backup is not ours to prune
    assert our_backups(out, other) == [theirs.folder]


def test_keep_counts_trading_days_by_name_not_by_file_time(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    backup_journal(journal, out, day=date(2021, 11, 30), now_ns=NOW)
    backup_journal(journal, out, day=date(2021, 11, 29), now_ns=NOW)  # made later, but an older day
    result = backup_journal(journal, out, day=DAY, now_ns=NOW, keep=2)
    assert [p.name for p in result.pruned] == ["2021-11-29"]


# ---------------------------------------------------------------------------------------- refused out folders
def test_an_out_folder_that_cannot_be_written_is_named_and_nothing_is_written(
    journal: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(BackupError, match=f"{blocker}.*cannot create the backup folder"):
        backup_journal(journal, blocker, day=DAY, now_ns=NOW)
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    out = tmp_path / "out"
    out.mkdir()
    (out / "2021-12-01").write_text("taken", encoding="utf-8")  # the day's name is a file
    with pytest.raises(BackupError, match="2021-12-01"):
        backup_journal(journal, out, day=DAY, now_ns=NOW)
    assert sorted(p.name for p in out.iterdir()) == ["2021-12-01"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_an_out_folder_without_write_permission_is_refused(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(BackupError, match="nothing was written"):
            backup_journal(journal, out, day=DAY, now_ns=NOW)
    finally:
        out.chmod(0o700)
    assert list(out.iterdir()) == []


def test_a_day_folder_of_another_journal_or_with_foreign_files_is_not_written_into(
    journal: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    other = asyncio.run(make_journal(tmp_path / "other.db"))
    theirs = backup_journal(other, out, day=DAY, now_ns=NOW)
    before = theirs.db.read_bytes()
    with pytest.raises(BackupError, match="holds the backup of another journal"):
        backup_journal(journal, out, day=DAY, now_ns=NOW)
    assert theirs.db.read_bytes() == before
    (tmp_path / "out2" / "2021-12-01").mkdir(parents=True)
    (tmp_path / "out2" / "2021-12-01" / "report.xlsx").write_bytes(b"PK")
    with pytest.raises(BackupError, match="files zhixing did not write"):
        backup_journal(journal, tmp_path / "out2", day=DAY, now_ns=NOW)
    assert sorted(p.name for p in (tmp_path / "out2" / "2021-12-01").iterdir()) == ["report.xlsx"]


def test_backup_command_prints_what_it_wrote_and_prunes(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    for day in ("2021-11-29", "2021-11-30", "2021-12-01"):
        code = main(
            ["journal", "backup", "--db", str(journal), "--out", str(out), "--keep", "2", "--day", day]
        )
        assert code == 0
    printed = capsys.readouterr().out
    assert f"-> {out / '2021-12-01' / BACKUP_DB} (OK" in printed
    assert f"removed old backup {out / '2021-11-29'}" in printed
    assert main(["journal", "backup", "--db", str(journal), "--out", str(out), "--keep", "0"]) == 2
    assert main(["journal", "backup", "--db", str(tmp_path / "none.db"), "--out", str(out)]) == 2
    assert "no journal to back up" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- restore
def test_restore_moves_the_damaged_journal_and_its_stale_wal_aside_and_never_replays_it(
    journal: Path, tmp_path: Path
) -> None:
    backup = backup_journal(journal, tmp_path / "out", day=DAY, now_ns=NOW)
    # the day goes on: more orders, then the engine dies with its WAL on disk and the file damaged
    conn = sqlite3.connect(journal, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("DELETE FROM orders")  # a WAL that, replayed over the backup, would empty it
    wal = wal_files(journal)[0].read_bytes()
    conn.close()
    wal_files(journal)[0].write_bytes(wal)
    _, start = page_holding(journal, b'"halted"')
    patch(journal, start, bytes(8))
    assert not verify_journal(journal).ok

    result = restore_journal(backup.folder, journal, now_ns=NOW + 3600 * SEC)

    assert result.report.ok
    assert count(journal, "orders") == 3  # the backup's, not the stale WAL's (which deleted them)
    assert not wal_files(journal)[0].exists()
    names = sorted(p.name for p in result.moved_aside)
    assert names[0].startswith("zhixing.db.damaged-2021-12-01T161000")
    assert {n.removeprefix(names[0]) for n in names} >= {"", "-wal"}  # kept together, for forensics
    assert result.manifest is not None
    assert result.manifest["trading_day"] == "2021-12-01"


def test_restore_refuses_a_damaged_backup_and_changes_nothing(journal: Path, tmp_path: Path) -> None:
    backup = backup_journal(journal, tmp_path / "out", day=DAY, now_ns=NOW)
    execute(backup.db, "DELETE FROM counters")
    before = journal.read_bytes()
    with pytest.raises(BackupError, match="the backup fails verification; nothing was changed"):
        restore_journal(backup.folder, journal, now_ns=NOW)
    assert journal.read_bytes() == before
    assert {p.name for p in journal.parent.iterdir()} <= {"zhixing.db", "zhixing.db-wal", "zhixing.db-shm"}


def test_restore_command_refuses_while_an_engine_runs(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = backup_journal(journal, tmp_path / "out", day=DAY, now_ns=NOW)
    before = journal.read_bytes()
    with InstanceLock.for_store(journal):
        assert main(["journal", "restore", "--db", str(journal), "--from", str(backup.folder)]) == 2
    assert "already running" in capsys.readouterr().err
    assert journal.read_bytes() == before
    assert main(["journal", "restore", "--db", str(journal), "--from", str(backup.db)]) == 0
    printed = capsys.readouterr().out
    assert "moved aside" in printed
    assert "OK " in printed


# ---------------------------------------------------------------------------------------- zhixing run
RUN_CONFIG = """
[account]
id = "8800123456"
cash_yuan = 2000000
positions = {{ "600566.SH" = 20000 }}

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"

[backup]
dir = "{backup_dir}"
keep_days = 2

[[jobs]]
name = "sell"
cron = "30 9 * * *"
kind = "execute"
targets = "targets.csv"
window_minutes = 20

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def write_run_config(folder: Path, backup_dir: str) -> Path:
    (folder / "targets.csv").write_text("symbol,weight\n600258.SH,0.01\n", encoding="utf-8")
    path = folder / "zhixing.toml"
    path.write_text(RUN_CONFIG.format(data=SAMPLE.as_posix(), backup_dir=backup_dir), encoding="utf-8")
    return path


@pytest.mark.slow
async def test_zhixing_run_backs_up_the_journal_and_the_days_trade_log_after_the_close(
    tmp_path: Path,
) -> None:
    config = load_config(write_run_config(tmp_path, "backups"))
    assert [(j.name, j.kind, j.cron) for j in config.jobs][-1] == (BACKUP_JOB, "backup", "10 15 * * *")
    result = await run_config(config)
    outcomes = {o.job: o for o in result.runner.outcomes}
    assert outcomes[BACKUP_JOB].ok, outcomes[BACKUP_JOB].detail
    assert outcomes[BACKUP_JOB].scheduled_ns == shanghai_ns(DAY, "15:10")
    folder = tmp_path / "backups" / "2021-12-01"
    assert verify_journal(folder / BACKUP_DB).ok
    store = await StateStore.open(config.store.path)
    orders = await store.load_orders()
    await store.close()
    assert orders  # the rebalance traded
    logged = rows(folder / "orders.csv")
    assert [r["client_order_id"] for r in logged] == [o.client_order_id for o in orders]
    assert sum(int(r["filled_quantity"]) for r in logged) == sum(o.filled_quantity for o in orders)


@pytest.mark.slow
async def test_a_backup_job_that_cannot_write_is_reported_and_trading_is_unaffected(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the folder should be", encoding="utf-8")
    config = load_config(write_run_config(tmp_path, "blocked"))
    result = await run_config(config)
    outcomes = {o.job: o for o in result.runner.outcomes}
    assert not outcomes[BACKUP_JOB].ok
    assert "cannot create the backup folder" in outcomes[BACKUP_JOB].detail
    assert outcomes["sell"].ok
    assert outcomes["summary"].ok


def test_backup_config_is_validated_naming_the_key(tmp_path: Path) -> None:
    base = write_run_config(tmp_path, "backups").read_text(encoding="utf-8")
    cases = {
        "keep_days = 2\n": ("keep_days = 0\n", "backup.keep_days"),
        'dir = "backups"\n': ("", "backup.dir"),
    }
    for old, (new, key) in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(base.replace(old, new), encoding="utf-8")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(path)
    for extra, key in (('at = "25:00"\n', "backup.at"), ("every = 1\n", "backup.every")):
        path = tmp_path / "bad.toml"
        path.write_text(base.replace("keep_days = 2\n", "keep_days = 2\n" + extra), encoding="utf-8")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(path)
    no_table = base.replace('[backup]\ndir = "backups"\nkeep_days = 2\n', "") + (
        '\n[[jobs]]\nname = "copy"\ncron = "20 15 * * *"\nkind = "backup"\n'
    )
    path = tmp_path / "bad.toml"
    path.write_text(no_table, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"jobs\[2\]\.kind.*\[backup\] table"):
        load_config(path)
    explicit = base + '\n[[jobs]]\nname = "copy"\ncron = "20 15 * * *"\nkind = "backup"\n'
    path.write_text(explicit, encoding="utf-8")
    config = load_config(path)
    assert [j.name for j in config.jobs if j.kind == "backup"] == ["copy"]  # its own time, no second one
    assert config.backup is not None
    assert config.backup.dir == tmp_path / "backups"
