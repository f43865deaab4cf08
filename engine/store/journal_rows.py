"""The rows a journal must hold sound for the engine to start on it (``engine.store.integrity``).

The control rows: the ``order_id`` counter past every id already issued (or ids would reach the broker
twice), the halt record (a garbled one must not read as "not halted"), the risk report the day's message
count is restored from, the account snapshot, operator commands. The rows loaded at start: sides and
statuses the engine knows, quantities in range, JSON it can read, algorithm progress joined with its plan
by the same ``join_algo_state`` the engine uses. Each finding names the table and the row's key.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable

from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import StoreError
from zhixing.engine.store import schema
from zhixing.engine.store.algo_rows import SELECT_V1, join_algo_state

MAX_LISTED = 5
"""Rows named per finding; the rest are counted."""

HALT_KEY = "halt"  # engine.control.HALT_META_KEY (engine.store imports nothing above it)
RISK_KEY = "risk_report"  # engine.risk_controls.RISK_META_KEY
ACCOUNT_KEY = "account"  # engine.status.ACCOUNT_META_KEY

_SIDES = frozenset(s.value for s in Side)
_STATUSES = frozenset(s.value for s in OrderStatus)
_ID_SEQ = re.compile(r"^\D*(\d+)$")


# ---------------------------------------------------------------------------------------- control rows
def control_row_problems(conn: sqlite3.Connection) -> list[str]:
    problems = []
    rows = conn.execute("SELECT value FROM counters WHERE name = 'order_id'").fetchall()
    if not rows:
        problems.append("counters: the order_id row is missing (order ids could not be issued safely)")
    else:
        counter = rows[0][0]
        if not isinstance(counter, int) or counter < 1:
            problems.append(f"counters: order_id is {counter!r}, not a positive integer")
        else:
            issued = _highest_issued(conn)
            if issued is not None and issued[0] >= counter:
                problems.append(
                    f"counters: order_id is {counter} but order {issued[1]} was already issued: new orders "
                    "would reuse ids the broker has seen"
                )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    problems += _meta_problems(meta)
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'control_commands'"
    ).fetchone():
        bad = conn.execute(
            "SELECT id FROM control_commands WHERE done NOT IN (0, 1) OR command = '' ORDER BY id"
        ).fetchall()
        problems += _listed("control_commands", "id", [r[0] for r in bad], "done is not 0/1 or no command")
    return problems


def _highest_issued(conn: sqlite3.Connection) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for (cid,) in conn.execute("SELECT client_order_id FROM orders"):
        match = _ID_SEQ.match(str(cid))
        if match is not None and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), str(cid))
    return best


def _meta_problems(meta: dict[str, str]) -> list[str]:
    problems = []
    checks: dict[str, Callable[[dict[str, object]], str | None]] = {
        HALT_KEY: _halt_problem,
        RISK_KEY: _risk_problem,
        ACCOUNT_KEY: lambda _value: None,
    }
    for key, check in checks.items():
        if key not in meta:
            continue
        try:
            value = json.loads(meta[key])
        except json.JSONDecodeError as exc:
            problems.append(f"meta {key!r}: not JSON ({exc})")
            continue
        if not isinstance(value, dict):
            problems.append(f"meta {key!r}: not a JSON object")
            continue
        problem = check(value)
        if problem:
            problems.append(f"meta {key!r}: {problem}")
    return problems


def _halt_problem(record: dict[str, object]) -> str | None:
    """The halt record ``engine.control.EngineControl`` journals: a garbled one must not read as 'not
    halted'."""
    if not isinstance(record.get("halted"), bool):
        return f"the halt record has no true/false 'halted' (keys {sorted(record)})"
    types: dict[str, type | tuple[type, ...]] = {"reason": str, "since_ns": int, "paused_by_halt": list}
    for name, kind in types.items():
        if name in record and (not isinstance(record[name], kind) or isinstance(record[name], bool)):
            return f"the halt record's {name!r} is {record[name]!r}"
    paused = record.get("paused_by_halt", [])
    if isinstance(paused, list) and not all(isinstance(p, str) for p in paused):
        return "the halt record's 'paused_by_halt' holds a non-text parent id"
    return None


def _risk_problem(report: dict[str, object]) -> str | None:
    """The risk report the day's message count is restored from (``RiskControls.restore``)."""
    day = report.get("day", 0)
    if not isinstance(day, int) or isinstance(day, bool):  # days since the epoch, Shanghai
        return f"'day' is {day!r}"
    for name in ("messages_today", "peak_per_second", "orders_sent", "cancels_sent"):
        value = report.get(name, 0)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f"{name!r} is {value!r}"
    return None


# ---------------------------------------------------------------------------------------- loaded rows
def loaded_row_problems(conn: sqlite3.Connection, version: int) -> list[str]:
    """What the engine loads at start, checked the way it would decode it."""
    problems = []
    sides = ", ".join(f"'{s}'" for s in sorted(_SIDES))
    statuses = ", ".join(f"'{s}'" for s in sorted(_STATUSES))
    kinds = ", ".join(f"'{t}'" for t in sorted(OrderType))
    bad_kind = f"OR order_type NOT IN ({kinds}) " if version >= 4 else ""  # the column since version 4
    bad_orders = conn.execute(
        f"SELECT client_order_id FROM orders WHERE side NOT IN ({sides}) OR status NOT IN ({statuses}) "
        f"OR (status_before_cancel IS NOT NULL AND status_before_cancel NOT IN ({statuses})) {bad_kind}"
        "OR quantity <= 0 OR filled_quantity < 0 OR filled_quantity > quantity ORDER BY client_order_id"
    ).fetchall()
    problems += _listed(
        "orders",
        "client_order_id",
        [r[0] for r in bad_orders],
        "unknown side/status/order type or quantity out of range",
    )
    bad_fills = conn.execute(
        f"SELECT seq FROM fills WHERE side NOT IN ({sides}) OR quantity <= 0 ORDER BY seq"
    ).fetchall()
    problems += _listed("fills", "seq", [r[0] for r in bad_fills], "unknown side or quantity <= 0")
    bad_parents = [
        pid
        for pid, side, params in conn.execute(
            "SELECT parent_id, side, params FROM parents ORDER BY parent_id"
        )
        if side not in _SIDES or not _is_json_object(params)
    ]
    problems += _listed("parents", "parent_id", bad_parents, "unknown side or params not a JSON object")
    bad_positions = conn.execute(
        "SELECT symbol FROM positions WHERE quantity < 0 OR sellable < 0 OR avg_cost < 0 ORDER BY symbol"
    ).fetchall()
    problems += _listed("positions", "symbol", [r[0] for r in bad_positions], "a negative quantity or cost")
    query = schema.SELECT_ALGO_STATES if version >= 2 else SELECT_V1
    for row in conn.execute(query):
        try:
            join_algo_state("", row)
        except StoreError as exc:
            problems.append(f"algo_states row parent_id={row[0]!r}: {str(exc).removeprefix(': ')}")
    return problems


def _is_json_object(text: object) -> bool:
    try:
        return isinstance(json.loads(str(text)), dict)
    except json.JSONDecodeError:
        return False


def _listed(table: str, key: str, ids: list[object], what: str) -> list[str]:
    if not ids:
        return []
    named = ", ".join(f"{key}={i!r}" for i in ids[:MAX_LISTED])
    more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
    return [f"{table}: {what}: {named}{more}"]
