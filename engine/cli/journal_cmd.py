"""``zhixing journal export``: write the trade log (流水) from a journal database."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.store import StateStore


def add_parsers(sub: Any) -> None:
    journal = sub.add_parser("journal", help="the SQLite journal: export the trade log")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    export = jsub.add_parser("export", help="write orders.csv and fills.csv")
    export.add_argument("--db", required=True, type=Path, help="journal database file")
    export.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    export.set_defaults(handler=run_export)


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
