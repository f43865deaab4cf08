"""``zhixing journal``: the SQLite journal's trade log export, verification, backup and restore.

``verify`` runs the checks the engine runs at start (``engine.store.integrity``) and exits non-zero on a
damaged journal; ``backup`` copies it (also while an engine runs) with the day's trade log into a dated
folder (``engine.store.backup``); ``restore`` puts a verified backup in its place while no engine runs.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from zhixing.engine.clock import LiveClock
from zhixing.engine.errors import InputError
from zhixing.engine.instance_lock import InstanceLock
from zhixing.engine.market import trading_date_of
from zhixing.engine.store import StateStore
from zhixing.engine.store.backup import backup_journal, restore_journal
from zhixing.engine.store.integrity import verify_journal


def add_parsers(sub: Any) -> None:
    journal = sub.add_parser("journal", help="the SQLite journal: export, verify, back up, restore")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    export = jsub.add_parser("export", help="write orders.csv and fills.csv")
    export.add_argument("--db", required=True, type=Path, help="journal database file")
    export.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    export.set_defaults(handler=run_export)

    verify = jsub.add_parser("verify", help="check a journal (or a backup): prints OK or what is damaged")
    verify.add_argument("--db", required=True, type=Path, help="journal database file (or a backup's)")
    verify.add_argument("--full", action="store_true", help="SQLite integrity_check (slower) not quick_check")
    verify.set_defaults(handler=run_verify)

    backup = jsub.add_parser(
        "backup", help="consistent copy (also while the engine runs) + the day's trade log, in OUT/<day>/"
    )
    backup.add_argument("--db", required=True, type=Path, help="journal database file")
    backup.add_argument("--out", required=True, type=Path, help="backup folder; one sub-folder per day")
    backup.add_argument("--keep", type=int, help="keep this many days of backups (older ones it made go)")
    backup.add_argument("--day", help="trading day YYYY-MM-DD the backup is named by (default: today)")
    backup.set_defaults(handler=run_backup)

    restore = jsub.add_parser(
        "restore", help="put a verified backup in place of the journal (engine stopped)"
    )
    restore.add_argument("--db", required=True, type=Path, help="the journal to replace")
    restore.add_argument(
        "--from", dest="source", required=True, type=Path, help="a backup folder OUT/<day> or its journal.db"
    )
    restore.set_defaults(handler=run_restore)


def run_export(args: argparse.Namespace) -> int:
    if not args.db.is_file():
        raise InputError("journal database not found", path=str(args.db))
    orders, fills = asyncio.run(_export(args.db, args.out))
    print(f"wrote {orders}\nwrote {fills}")
    return 0


async def _export(db: Path, out: Path) -> tuple[Path, Path]:
    store = await StateStore.open(db)
    try:
        return await store.export_trade_log(out)
    finally:
        await store.close()


def run_verify(args: argparse.Namespace) -> int:
    report = verify_journal(args.db, full=args.full)
    print(report.text())
    return 0 if report.ok else 1


def run_backup(args: argparse.Namespace) -> int:
    if args.keep is not None and args.keep < 1:
        raise InputError(f"must be >= 1, got {args.keep}", field="keep")
    now = LiveClock().now_ns()
    result = backup_journal(args.db, args.out, day=_day(args.day, now), now_ns=now, keep=args.keep)
    print(f"backed up {args.db} -> {result.db} ({result.report.text()})")
    print(f"wrote {result.trade_log[0]} ({result.orders} orders)")
    print(f"wrote {result.trade_log[1]} ({result.fills} fills)")
    for folder in result.pruned:
        print(f"removed old backup {folder}")
    for folder in result.left:
        print(f"old backup {folder}: its files removed, the folder kept (it holds other files)")
    return 0


def _day(text: str | None, now_ns: int) -> date:
    if text is None:
        return trading_date_of(now_ns)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"expected YYYY-MM-DD, got {text!r}", field="day") from None


def run_restore(args: argparse.Namespace) -> int:
    args.db.parent.mkdir(parents=True, exist_ok=True)
    with InstanceLock.for_store(args.db):  # refuses while an engine runs on this journal
        result = restore_journal(args.source, args.db, now_ns=LiveClock().now_ns())
    for path in result.moved_aside:
        print(f"moved aside {path}")
    day = result.manifest.get("trading_day") if result.manifest else None
    print(f"restored {args.db} from {args.source}" + (f" (backup of trading day {day})" if day else ""))
    print(result.report.text())
    print(
        "orders sent since that backup are not in the journal: at start the engine lists them as external "
        "and halts on any position they changed (docs/OPERATIONS.md, 'Backing up and restoring the journal')"
    )
    return 0
