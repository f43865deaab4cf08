"""Operator commands for a running engine: ``zhixing halt``, ``resume``, ``algo pause|resume|cancel``,
``status``. The first three queue a command in the engine's journal (``engine.control``); the running
engine applies it within its poll interval. ``status`` reads the journal read-only (``engine.status``)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from zhixing.engine.clock import Clock, LiveClock
from zhixing.engine.control import CHECKS_META_KEY, Command, queue_command
from zhixing.engine.errors import StoreError
from zhixing.engine.status import collect_status, disk_status, render_json, render_tables

_ALGO_ACTIONS = {"pause": Command.PAUSE, "resume": Command.RESUME_ALGO, "cancel": Command.CANCEL_ALGO}


def add_parsers(sub: Any) -> None:
    halt = sub.add_parser("halt", help="kill switch: deny new orders, cancel working ones, pause algorithms")
    _db(halt)
    halt.add_argument("--reason", default="operator", help="recorded with the halt (default: operator)")
    _wait(halt)
    halt.set_defaults(handler=run_halt)

    resume = sub.add_parser("resume", help="lift a halt; the algorithms the halt paused resume")
    _db(resume)
    resume.add_argument(
        "--accept-positions",
        action="store_true",
        help="first take the broker's quantity for every position difference that persisted (after a "
        "journal restore or a trade at the terminal; check 'zhixing account' before)",
    )
    resume.set_defaults(handler=run_resume)

    algo = sub.add_parser("algo", help="pause, resume or cancel one running parent order")
    asub = algo.add_subparsers(dest="algo_command", required=True)
    for action, help_text in (
        ("pause", "stop slicing and cancel its working children"),
        ("resume", "resume slicing (no catch-up burst)"),
        ("cancel", "cancel its working children and finish it as CANCELED"),
    ):
        p = asub.add_parser(action, help=help_text)
        p.add_argument("parent_id", help="the parent order id")
        _db(p)
        p.set_defaults(handler=run_algo, algo_action=action)

    status = sub.add_parser("status", help="account, positions, working orders, algorithms, halt, risk")
    _db(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status.set_defaults(handler=run_status)


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, type=Path, help="the running engine's journal database")


def _wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for the engine's result and its check by query that every order is "
        "gone, and print them (exit 1 if an order still works, 2 if nothing came in time)",
    )


def _queued(command_id: int, what: str) -> None:
    print(f"queued {what} as command #{command_id}; the running engine applies it within its poll interval")


def run_halt(args: argparse.Namespace) -> int:
    command_id = queue_command(args.db, Command.HALT, args.reason)
    _queued(command_id, "halt")
    return _wait_and_print(args, command_id)


def run_cancel_all_live(args: argparse.Namespace) -> int:
    command_id = queue_command(args.db, Command.CANCEL_ALL)
    _queued(command_id, "cancel-all")
    return _wait_and_print(args, command_id)


def _wait_and_print(args: argparse.Namespace, command_id: int) -> int:
    """With ``--wait S``: the engine's result and its verification by query (survivors listed)."""
    if not getattr(args, "wait", 0):
        return 0
    result, record = wait_for_result(args.db, command_id, timeout_s=args.wait, verification=True)
    if result is None:
        print(f"not applied within {args.wait:g} s: is an engine running on {args.db}?")
        return 2
    print(f"applied: {result}")
    if record is None:
        print(f"the check by query did not finish within {args.wait:g} s; see zhixing status")
        return 2
    print(record.get("headline", ""))
    survivors = record.get("survivors")
    for survivor in survivors if isinstance(survivors, list) else []:
        print(f"  still working: {survivor}")
    return 0 if record.get("ok") else 1


def run_resume(args: argparse.Namespace) -> int:
    if getattr(args, "accept_positions", False):  # applied in order: the positions, then the resume
        _queued(queue_command(args.db, Command.ACCEPT_POSITIONS), "accept-positions")
    _queued(queue_command(args.db, Command.RESUME), "resume")
    return 0


def run_algo(args: argparse.Namespace) -> int:
    command = _ALGO_ACTIONS[args.algo_action]
    _queued(queue_command(args.db, command, args.parent_id), f"{args.algo_action} {args.parent_id}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    status = collect_status(args.db)
    status["disk"] = disk_status(args.db)  # a full disk: the journal shown is as last written
    if args.json:
        print(render_json(status))
    else:
        render_tables(status, Console(file=sys.stdout))
    return 0


def wait_for_result(
    db: Path,
    command_id: int,
    *,
    timeout_s: float,
    verification: bool,
    clock: Clock | None = None,
    poll_s: float = 0.25,
) -> tuple[str | None, dict[str, object] | None]:
    """The applied command's result and (``verification``) its verification record, read from journal
    ``db`` (read-only) until both are there or ``timeout_s`` has passed: ``(None, None)`` when the
    command was not applied in time (is an engine running on this journal?)."""
    clock = clock or LiveClock()
    deadline = clock.now_ns() + int(timeout_s * 1e9)
    result: str | None = None
    while True:
        result, record = _read_result(db, command_id)
        if result is not None and (record is not None or not verification):
            return result, record
        if clock.now_ns() >= deadline:
            return result, None
        time.sleep(poll_s)


def _read_result(db: Path, command_id: int) -> tuple[str | None, dict[str, object] | None]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{db}: cannot open the journal read-only: {exc}") from exc
    try:
        row = conn.execute(
            "SELECT result FROM control_commands WHERE id = ? AND done = 1", (command_id,)
        ).fetchone()
        meta = conn.execute("SELECT value FROM meta WHERE key = ?", (CHECKS_META_KEY,)).fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{db}: cannot read the command's result: {exc}") from exc
    finally:
        conn.close()
    record = None
    if meta is not None:
        for item in json.loads(meta[0]).get("checks", []):
            if isinstance(item, dict) and item.get("command_id") == command_id:
                record = item
    return (str(row[0]) if row is not None else None), record
