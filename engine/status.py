"""What the engine is doing, from its journal alone: ``zhixing status``.

``collect_status(db)`` opens the SQLite journal read-only (it never writes, so it is safe next to a running
engine) and reads one consistent snapshot: the account (as the engine last journaled it), positions with
sellable, working orders, each parent's progress (filled/target, status, algorithm), the halt state,
the risk counters, and operator commands not yet applied. ``disk_status`` adds the free space on the
journal's disk (a full disk halts a running engine, which then cannot journal even that). Money is int
milli-yuan in the JSON; the tables show yuan. Account ids are masked (``engine.logs.mask_account``).

``StatusRecorder`` is the engine side: a before-commit hook that journals the account snapshot and the
risk report (meta ``account`` and ``risk_report``) whenever they changed, in the same transaction as the
orders and fills they describe.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

from zhixing.engine.account import Account
from zhixing.engine.enums import WORKING_STATUSES, OrderStatus
from zhixing.engine.errors import InputError, StoreError
from zhixing.engine.logs import mask_account
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.risk_controls import RISK_META_KEY
from zhixing.engine.store import schema
from zhixing.engine.store.algo_rows import SELECT_V1, join_algo_state
from zhixing.engine.store.staging import to_json
from zhixing.engine.units import yuan_str

ACCOUNT_META_KEY = "account"
HALT_META_KEY = "halt"  # written by engine.control.EngineControl

_OPEN = WORKING_STATUSES | {OrderStatus.INITIALIZED}


class MetaStager(Protocol):
    def stage_meta(self, key: str, value: str) -> None: ...


class RiskReporter(Protocol):
    dirty: bool

    def report(self) -> dict[str, object]: ...


class StatusRecorder:
    """Before-commit hook (``oms.before_commit.append(recorder)``); see the module docstring."""

    def __init__(
        self,
        store: MetaStager,
        *,
        account: Account | None = None,
        risk: RiskReporter | None = None,
        account_id: str = "",
    ) -> None:
        self.store = store
        self.account = account
        self.risk = risk
        self.account_id = mask_account(account_id) if account_id else ""
        self._last_account = ""

    def __call__(self) -> None:
        if self.account is not None:
            snapshot = to_json(
                {
                    "account_id": self.account_id,
                    "cash": self.account.cash,
                    "frozen": self.account.frozen,
                    "available": self.account.available_cash,
                }
            )
            if snapshot != self._last_account:
                self._last_account = snapshot
                self.store.stage_meta(ACCOUNT_META_KEY, snapshot)
        if self.risk is not None and self.risk.dirty:
            self.risk.dirty = False
            self.store.stage_meta(RISK_META_KEY, to_json(self.risk.report()))


# ---------------------------------------------------------------------------------------- reading
def collect_status(db: Path) -> dict[str, Any]:
    """One read-only snapshot of the journal (see module docstring). Raises ``InputError`` if missing."""
    if not db.is_file():
        raise InputError("journal database not found", path=str(db))
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{db}: cannot open journal read-only: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("BEGIN")  # one snapshot for every read below
        tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "orders" not in tables or "meta" not in tables:
            raise StoreError(f"{db}: not a zhixing journal (no orders/meta tables)")
        order_columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(orders)")}
        select_orders = schema.SELECT_ORDERS if "order_type" in order_columns else schema.SELECT_ORDERS_V3
        orders = [dict(zip(schema.ORDER_COLUMNS, r, strict=True)) for r in conn.execute(select_orders)]
        positions = conn.execute(schema.SELECT_POSITIONS).fetchall()
        parents = [
            dict(zip(schema.PARENT_COLUMNS, r, strict=True)) for r in conn.execute(schema.SELECT_PARENTS)
        ]
        # a version 1 journal (an engine not yet upgraded) is read as it is: this reader never migrates
        select = schema.SELECT_ALGO_STATES if "algo_plans" in tables else SELECT_V1
        states: dict[str, tuple[str, dict[str, Any]]] = {}
        for row in conn.execute(select):
            parent_id, algo, state = join_algo_state(str(db), row)
            states[parent_id] = (algo, state)
        meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        pending = (
            conn.execute(schema.SELECT_PENDING_COMMANDS).fetchall() if "control_commands" in tables else []
        )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"{db}: journal read failed: {exc}") from exc
    finally:
        conn.close()
    return _build(db, orders, positions, parents, states, meta, pending)


LOW_DISK_BYTES = 64 << 20
"""Free space under which the journal's disk is reported low: a commit of a busy minute, a few MB."""


def disk_status(db: Path) -> dict[str, Any]:
    """Free space on the journal's disk: when it is (nearly) full, an engine on it cannot journal (it
    halts and tells the operator), and what this status shows is the journal as last written."""
    try:
        free = shutil.disk_usage(db.resolve().parent).free
    except OSError:
        return {"free_bytes": None, "low": False}
    return {"free_bytes": free, "low": free < LOW_DISK_BYTES}


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _journaled_reason(state: dict[str, Any]) -> str:
    """Why a parent is short, as its algorithm journaled it (``ExecAlgo.unfilled``, the text the reports
    show): why it stands paused, else its reason; a parent journaled finished short without one (a journal
    written before every ending had a reason) says ``ended``."""
    if state.get("paused") and state.get("paused_reason"):
        return str(state["paused_reason"])
    if state.get("paused"):
        return str(Unfilled(UnfilledCode.PAUSED))
    reason = str(state.get("reason", "") or "")
    if not reason and state.get("finishing"):
        return str(Unfilled(UnfilledCode.ENDED))
    return reason


def _build(
    db: Path,
    orders: list[dict[str, Any]],
    positions: list[tuple[Any, ...]],
    parents: list[dict[str, Any]],
    states: dict[str, tuple[str, dict[str, Any]]],
    meta: dict[str, str],
    pending: list[tuple[Any, ...]],
) -> dict[str, Any]:
    working = [o for o in orders if o["status"] in _OPEN]
    filled_by_parent: dict[str, int] = {}
    working_by_parent: dict[str, int] = {}
    for o in orders:
        pid = o["parent_id"]
        if pid:
            filled_by_parent[pid] = filled_by_parent.get(pid, 0) + int(o["filled_quantity"])
            if o["status"] in _OPEN:
                working_by_parent[pid] = working_by_parent.get(pid, 0) + 1
    algos = []
    for p in parents:
        pid = str(p["parent_id"])
        filled = filled_by_parent.get(pid, 0)
        state = states.get(pid, ("", {}))[1]
        algos.append(
            {
                "parent_id": pid,
                "symbol": p["symbol"],
                "side": p["side"],
                "algo": p["algo"],
                "status": p["status"],
                "paused": bool(state.get("paused", False)),
                "quantity": int(p["quantity"]),
                "filled_quantity": filled,
                "progress_pct": round(100 * filled / int(p["quantity"]), 1) if p["quantity"] else 0.0,
                "working_orders": working_by_parent.get(pid, 0),
                "unfilled_reason": _journaled_reason(state) if filled < int(p["quantity"]) else "",
            }
        )
    account = _json(meta.get(ACCOUNT_META_KEY)) or None
    if account is not None and account.get("account_id"):
        account["account_id"] = mask_account(str(account["account_id"]))  # masked even if stored plain
    halt = _json(meta.get(HALT_META_KEY))
    return {
        "db": str(db),
        "halt": {
            "halted": bool(halt.get("halted", False)),
            "reason": str(halt.get("reason", "")),
            "since_ns": int(halt.get("since_ns", 0) or 0),
            "paused_by_halt": list(halt.get("paused_by_halt", [])),
        },
        "account": account,
        "positions": [
            {"symbol": s, "quantity": q, "sellable": sellable, "avg_cost": cost}
            for s, q, sellable, cost in positions
        ],
        "working_orders": [
            {
                key: o[key]
                for key in (
                    "client_order_id",
                    "parent_id",
                    "symbol",
                    "side",
                    "price",
                    "quantity",
                    "filled_quantity",
                    "status",
                    "broker_order_id",
                    "ts_created",
                    "tag",
                )
            }
            for o in working
        ],
        "algos": algos,
        "risk": _json(meta.get(RISK_META_KEY)) or None,
        "pending_commands": [{"id": i, "ts": ts, "command": c, "arg": a} for i, ts, c, a in pending],
    }


# ---------------------------------------------------------------------------------------- rendering
def render_json(status: dict[str, Any]) -> str:
    return json.dumps(status, ensure_ascii=False, indent=2, sort_keys=True)


def render_tables(status: dict[str, Any], console: Console) -> None:
    halt = status["halt"]
    disk = status.get("disk") or {}
    if disk.get("low"):
        console.print(
            f"[bold red]JOURNAL DISK NEARLY FULL[/]: {disk['free_bytes']:,} bytes free; an engine on this "
            "journal cannot write it (it halts and says so) and what follows is the journal as last written"
        )
    if halt["halted"]:
        console.print(f"[bold red]HALTED[/]: {halt['reason']} (zhixing resume --db {status['db']})")
    else:
        console.print("[green]trading[/] (not halted)")
    account = status["account"]
    if account:
        t = Table(title="Account")
        for col in ("account", "cash", "frozen", "available"):
            t.add_column(col, justify="right")
        t.add_row(
            str(account.get("account_id") or "-"),
            *(yuan_str(int(account.get(k, 0))) for k in ("cash", "frozen", "available")),
        )
        console.print(t)
    t = Table(title="Positions")
    for col in ("symbol", "quantity", "sellable", "avg cost"):
        t.add_column(col, justify="right")
    for p in status["positions"]:
        t.add_row(p["symbol"], str(p["quantity"]), str(p["sellable"]), yuan_str(p["avg_cost"], 3))
    console.print(t)
    t = Table(title=f"Working orders ({len(status['working_orders'])})")
    for col in ("id", "parent", "tag", "symbol", "side", "price", "qty", "filled", "status"):
        t.add_column(col)
    for o in status["working_orders"]:
        t.add_row(
            o["client_order_id"],
            o["parent_id"],
            o["tag"] or "",
            o["symbol"],
            o["side"],
            yuan_str(o["price"], 3),
            str(o["quantity"]),
            str(o["filled_quantity"]),
            o["status"],
        )
    console.print(t)
    t = Table(title="Algorithms")
    for col in (
        "parent",
        "algo",
        "symbol",
        "side",
        "filled/target",
        "progress",
        "status",
        "working",
        "reason",
    ):
        t.add_column(col)
    for a in status["algos"]:
        t.add_row(
            a["parent_id"],
            a["algo"],
            a["symbol"],
            a["side"],
            f"{a['filled_quantity']}/{a['quantity']}",
            f"{a['progress_pct']}%",
            a["status"],
            str(a["working_orders"]),
            a["unfilled_reason"],
        )
    console.print(t)
    risk = status["risk"]
    if risk:
        limits = risk.get("limits", {})
        console.print(
            f"Risk: {risk.get('messages_last_second', 0)}/{limits.get('max_messages_per_second', '?')} "
            f"msgs last second, {risk.get('messages_today', 0)}/{limits.get('max_messages_per_day', '?')} "
            f"today, peak {risk.get('peak_per_second', 0)}/s; denials {risk.get('denials', {})}; "
            f"cancel holds {risk.get('cancel_holds', 0)}; auto-halts {risk.get('auto_halts', 0)}"
        )
        for symbol, why in (risk.get("blocked_symbols") or {}).items():
            console.print(f"[red]blocked today[/]: {symbol} {why}")
    if status["pending_commands"]:
        waiting = ", ".join(
            f"#{c['id']} {c['command']} {c['arg']}".strip() for c in status["pending_commands"]
        )
        console.print(f"[yellow]commands not yet applied[/]: {waiting}")
