"""What is staged for the next commit: one dict per table, keyed by the row's key.

Staging is a dict assignment; the latest staged version of a row wins. Orders are staged by reference
and turned into rows only when a commit takes the batch (``Order`` mutates in place, so the row written
is the order's state at commit time, never older than what was staged). Fills keep the first staged copy
per key, like the table's insert-or-ignore.
"""

from __future__ import annotations

import json
from operator import attrgetter
from typing import Any

from zhixing.engine.errors import ParameterError
from zhixing.engine.events import OrderFilled
from zhixing.engine.orders import Order
from zhixing.engine.store import schema
from zhixing.engine.store.ops import Plan

_order_row = attrgetter(*schema.ORDER_COLUMNS)
_fill_row = attrgetter(*schema.FILL_ATTRS)

_PARENT_REQUIRED = ("parent_id", "symbol", "side", "quantity", "algo")
_PARENT_DEFAULTS: dict[str, object] = {
    "start_ns": 0,
    "end_ns": 0,
    "limit_price": None,
    "params": None,
    "status": "",
    "created_ns": 0,
}
_PARENT_INTS = ("quantity", "start_ns", "end_ns", "created_ns")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps`` with these options builds on every call (stateless: ``encode`` keeps nothing)."""


def to_json(value: dict[str, object]) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8 kept readable)."""
    return _ENCODER.encode(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parent_row(parent: dict[str, object]) -> tuple[object, ...]:
    """Validate a parent dict now (a bad row would otherwise poison every later commit)."""
    missing = [k for k in _PARENT_REQUIRED if k not in parent]
    unknown = sorted(set(parent) - set(schema.PARENT_COLUMNS))
    if missing or unknown:
        raise ParameterError(f"missing keys {missing}, unknown keys {unknown}", name="parent", value=parent)
    row = {**_PARENT_DEFAULTS, **parent}
    bad = [k for k in _PARENT_INTS if not _is_int(row[k])]
    limit = row["limit_price"]
    if limit is not None and not _is_int(limit):
        bad.append("limit_price")
    if bad:
        raise TypeError(f"parent {row['parent_id']!r}: {bad} must be int")
    params = row["params"]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise TypeError(f"parent {row['parent_id']!r}: params must be a dict, not {type(params).__name__}")
    row["params"] = to_json(params)
    for key in ("parent_id", "symbol", "side", "algo", "status"):
        row[key] = str(row[key])
    return tuple(row[c] for c in schema.PARENT_COLUMNS)


class Staged:
    """One batch of staged rows."""

    __slots__ = (
        "algo_plans",
        "algo_states",
        "commands_done",
        "fills",
        "meta",
        "orders",
        "parents",
        "positions",
    )

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.fills: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.parents: dict[str, tuple[object, ...]] = {}
        self.algo_states: dict[str, tuple[str, str, str, int | None]] = {}
        self.algo_plans: dict[str, tuple[str, str, int, str]] = {}
        self.positions: dict[str, tuple[str, int, int, int]] = {}
        self.meta: dict[str, tuple[str, str]] = {}
        self.commands_done: dict[int, tuple[int, str, int]] = {}  # id -> (done_ts, result, id)

    def __bool__(self) -> bool:
        return bool(
            self.orders
            or self.fills
            or self.parents
            or self.algo_states
            or self.algo_plans
            or self.positions
            or self.meta
            or self.commands_done
        )

    def add_fill(self, fill: OrderFilled, parent_id: str) -> None:
        key = (fill.client_order_id, fill.trade_id)
        if key not in self.fills:
            self.fills[key] = (*_fill_row(fill), parent_id)

    def plan(self) -> Plan:
        """``(sql, rows)`` per non-empty table. Order rows are built here, from the live objects."""
        plan: list[tuple[str, list[tuple[Any, ...]]]] = []
        if self.orders:
            plan.append((schema.UPSERT_ORDER, list(map(_order_row, self.orders.values()))))
        for sql, table in (
            (schema.INSERT_FILL, self.fills),
            (schema.UPSERT_PARENT, self.parents),
            (schema.UPSERT_ALGO_STATE, self.algo_states),
            (schema.UPSERT_ALGO_PLAN, self.algo_plans),
            (schema.UPSERT_POSITION, self.positions),
            (schema.UPSERT_META, self.meta),
            (schema.MARK_COMMAND_DONE, self.commands_done),
        ):
            if table:
                plan.append((sql, list(table.values())))
        return plan

    def merge_newer(self, newer: Staged) -> Staged:
        """This (older, failed) batch with ``newer`` on top: newer rows win, except fills (first wins)."""
        self.orders.update(newer.orders)
        for key, row in newer.fills.items():
            self.fills.setdefault(key, row)
        self.parents.update(newer.parents)
        self.algo_states.update(newer.algo_states)
        self.algo_plans.update(newer.algo_plans)
        self.positions.update(newer.positions)
        self.meta.update(newer.meta)
        for command_id, done in newer.commands_done.items():
            self.commands_done.setdefault(command_id, done)
        return self
