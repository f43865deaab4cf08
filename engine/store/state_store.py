"""``StateStore``: the engine's write-ahead journal on aiosqlite (one SQLite file, WAL mode).

The OrderManager stages every new order intent and awaits ``commit()`` before sending it; status updates
and fills are staged and go out with the next commit. Everything staged when a commit starts goes into
one ``BEGIN IMMEDIATE ... COMMIT`` (group commit). Each transaction is one call on aiosqlite's worker
thread (see ``engine.store.ops``), so it never spans an ``await``.
"""

from __future__ import annotations

import asyncio
import json
import marshal
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import aiosqlite
import structlog

from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import ParameterError, StoreError
from zhixing.engine.events import OrderFilled
from zhixing.engine.orders import Order
from zhixing.engine.store import ops, schema
from zhixing.engine.store.algo_rows import join_algo_state
from zhixing.engine.store.json_cache import StateEncoder
from zhixing.engine.store.staging import Staged, parent_row, to_json
from zhixing.engine.store.trade_log import write_trade_log

log = structlog.get_logger("zhixing.store")

P = ParamSpec("P")
T = TypeVar("T")

SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

_IdWaiter = tuple[int, "asyncio.Future[int]"]


class StateStore:
    """The journal. Open with ``await StateStore.open(path)``; close with ``await store.close()``."""

    def __init__(self, path: Path, db: aiosqlite.Connection, conn: sqlite3.Connection) -> None:
        """Use ``StateStore.open``."""
        self.path = path
        self._db = db
        # The raw connection, used only on the worker thread by ``engine.store.ops`` functions.
        self._conn = conn
        # aiosqlite's queue-a-function entry point: the one private API we use, so that a whole
        # transaction is one thread hop (public per-statement calls would hop per statement).
        self._submit = cast(Callable[..., Awaitable[Any]], db._execute)
        self._staged = Staged()
        # fingerprints of the latest parent row / algorithm state staged per parent id (committed or still
        # pending): staging the same value again is skipped, the journal already holds or will hold it
        self._latest_parent: dict[str, bytes] = {}
        self._latest_algo_state: dict[str, bytes] = {}
        self._state_encoders: dict[str, StateEncoder] = {}  # per parent id: reuses its schedule's JSON
        self._commit_lock = asyncio.Lock()
        self._id_lock = asyncio.Lock()
        self._id_waiters: list[_IdWaiter] = []
        self._busy = ops.BusyCounter()
        self._closed = False
        self.schema_version = 0

    # ------------------------------------------------------------------------------------- lifecycle
    @classmethod
    async def open(
        cls, path: str | Path, *, synchronous: str = "FULL", busy_timeout_ms: int = 5000
    ) -> StateStore:
        """Open (creating file and schema) a journal. ``synchronous``: FULL for live, NORMAL/OFF for replay.

        Refuses (``StoreError`` naming both versions) a file whose schema is newer than this build or not
        a zhixing journal at all; migrates an older one in a single transaction.
        """
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ParameterError(
                f"must be one of {sorted(SYNCHRONOUS_MODES)}, not {synchronous!r}",
                name="synchronous",
                value=synchronous,
            )
        if sqlite3.sqlite_version_info < schema.MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old for the journal (needs "
                f"{'.'.join(map(str, schema.MIN_SQLITE))})"
            )
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        try:
            pending = aiosqlite.connect(file, isolation_level=None)
            # A daemon worker: a process leaving on any path (a full disk failing the last commit, an
            # error before the close) exits instead of waiting forever for this thread at interpreter
            # shutdown. Safe for the journal: a transaction cut short is rolled back at the next open,
            # and nothing is sent before its commit returned (write-ahead).
            pending._thread.daemon = True
            db = await pending
        except sqlite3.Error as exc:
            raise StoreError(f"{file}: cannot open journal: {exc}") from exc
        store = cls(file, db, db._conn)
        try:
            store.schema_version = await store._run(ops.setup, store._conn, mode, busy_timeout_ms, str(file))
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{file}: cannot open journal: {exc}") from exc
            raise
        log.info("store_opened", path=str(file), schema_version=store.schema_version, synchronous=mode)
        return store

    async def close(self) -> None:
        """Close the connection. Anything still staged is not written (commit first if it matters)."""
        if self._closed:
            return
        self._closed = True
        await self._db.close()

    async def __aenter__(self) -> StateStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def busy_retries(self) -> int:
        """Transactions retried because another connection held the write lock past busy_timeout."""
        return self._busy.retries

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise StoreError(f"{self.path}: store is closed")
        return cast(T, await self._submit(fn, *args, **kwargs))

    # ------------------------------------------------------------------------------------- staging
    def stage_order(self, order: Order) -> None:
        """Upsert every ``Order`` field at the next commit (the order's state at commit time)."""
        self._staged.orders[order.client_order_id] = order

    def stage_fill(self, fill: OrderFilled, parent_id: str) -> None:
        """Insert at the next commit unless (client_order_id, trade_id) is already journaled."""
        self._staged.add_fill(fill, parent_id)

    def stage_parent(self, parent: dict[str, object]) -> None:
        """Upsert a parent order. Keys: parent_id, symbol, side, quantity, algo (required); start_ns,
        end_ns, limit_price (int or None), params (dict, stored as JSON), status, created_ns.

        A row equal to the latest one staged for that parent (committed or still pending) is not staged
        again: the journal already holds it, or will with the pending batch."""
        mark = _fingerprint(parent)
        key = parent.get("parent_id")
        if mark is not None and isinstance(key, str) and self._latest_parent.get(key) == mark:
            return
        row = parent_row(parent)
        parent_id = str(row[0])
        self._staged.parents[parent_id] = row
        if mark is not None and key == parent_id:
            self._latest_parent[parent_id] = mark
        else:
            self._latest_parent.pop(parent_id, None)

    def stage_algo_state(self, parent_id: str, algo: str, state: dict[str, object]) -> None:
        """Upsert an algorithm's complete serialised state (JSON, encoded now so a bad value fails here).

        A state equal to the latest one staged for ``parent_id`` under the same ``algo`` (committed or still
        pending) is not staged again."""
        mark = _fingerprint({"algo": algo, "state": state})
        if mark is not None and self._latest_algo_state.get(parent_id) == mark:
            return
        encoder = self._state_encoders.get(parent_id)
        if encoder is None:
            encoder = self._state_encoders[parent_id] = StateEncoder()
        self._staged.algo_states[parent_id] = (parent_id, algo, encoder.encode(state), None)
        self._remember_algo_state(parent_id, mark)

    def stage_algo_plan(self, parent_id: str, algo: str, plan_version: int, plan: dict[str, object]) -> None:
        """Upsert an algorithm's plan (``ExecAlgo.plan_state()``) as version ``plan_version``.

        Stage the progress that goes with it (``stage_algo_progress``, same version) in the same batch: a
        progress row names the plan version it needs, and ``load_algo_states`` refuses a journal where the
        two do not match. Staged as given, never skipped (the caller stages a plan only when it changed)."""
        if not _is_int(plan_version):
            raise TypeError(f"algo plan of {parent_id!r}: plan_version must be int, not {plan_version!r}")
        self._staged.algo_plans[parent_id] = (parent_id, algo, plan_version, to_json(plan))
        self._latest_algo_state.pop(parent_id, None)  # the progress that goes with it is staged again

    def stage_algo_progress(
        self, parent_id: str, algo: str, plan_version: int, progress: dict[str, object]
    ) -> None:
        """Upsert an algorithm's progress (``ExecAlgo.progress_state()``), which goes with its plan of
        version ``plan_version`` (staged now or earlier by ``stage_algo_plan``). ``load_algo_states``
        returns the two joined, as one complete state.

        Progress equal to the latest staged for ``parent_id`` (same ``algo`` and plan version; committed
        or still pending) is not staged again."""
        if not _is_int(plan_version):
            raise TypeError(f"algo progress of {parent_id!r}: plan_version must be int, not {plan_version!r}")
        mark = _fingerprint({"algo": algo, "plan_version": plan_version, "progress": progress})
        if mark is not None and self._latest_algo_state.get(parent_id) == mark:
            return
        self._staged.algo_states[parent_id] = (parent_id, algo, to_json(progress), plan_version)
        self._remember_algo_state(parent_id, mark)

    def _remember_algo_state(self, parent_id: str, mark: bytes | None) -> None:
        if mark is not None:
            self._latest_algo_state[parent_id] = mark
        else:
            self._latest_algo_state.pop(parent_id, None)

    def stage_position(self, symbol: str, quantity: int, sellable: int, avg_cost: int) -> None:
        for name, value in (("quantity", quantity), ("sellable", sellable), ("avg_cost", avg_cost)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"position {symbol}: {name} must be int, not {type(value).__name__}")
        self._staged.positions[symbol] = (symbol, quantity, sellable, avg_cost)

    def stage_meta(self, key: str, value: str) -> None:
        self._staged.meta[key] = (key, value)

    def stage_command_done(self, command_id: int, done_ts: int, result: str) -> None:
        """Mark an operator command applied, in the same transaction as what it changed."""
        self._staged.commands_done.setdefault(command_id, (done_ts, result, command_id))

    @property
    def has_staged(self) -> bool:
        return bool(self._staged)

    # ------------------------------------------------------------------------------------- commit
    async def commit(self) -> None:
        """Write everything staged in one transaction; return once it is durable.

        A commit already in flight may hold rows the caller staged: waiting for it (the lock) before
        looking again keeps the write-ahead promise. On failure nothing of the batch is in the file,
        the batch is put back under anything staged meanwhile, and ``StoreError`` is raised.
        """
        if not self._staged and not self._commit_lock.locked():
            return
        async with self._commit_lock:
            if not self._staged:
                return
            batch, self._staged = self._staged, Staged()
            try:
                plan = batch.plan()
                await self._run(ops.write_plan, self._conn, plan, self._busy)
            except BaseException as exc:
                # Cancelled too: the thread may still finish the write; every statement is an
                # idempotent upsert, so writing the batch again is harmless and losing it is not.
                self._staged = batch.merge_newer(self._staged)
                if isinstance(exc, Exception) and not isinstance(exc, StoreError):
                    raise StoreError(f"{self.path}: journal commit failed, nothing written: {exc}") from exc
                raise

    # ------------------------------------------------------------------------------------- ids
    async def reserve_order_ids(self, count: int) -> int:
        """Reserve ``count`` fresh sequence numbers and return the first; committed before returning.

        Concurrent callers are served together: the task holding the lock reserves the sum of all
        waiting requests in one transaction and hands out consecutive ranges.
        """
        if count < 1:
            raise ParameterError(f"must be >= 1, not {count}", name="count", value=count)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._id_waiters.append((count, future))
        try:
            async with self._id_lock:
                if not future.done():
                    await self._reserve_for_waiters(future)
            return future.result()
        finally:
            if not future.done():
                future.cancel()

    async def _reserve_for_waiters(self, own: asyncio.Future[int]) -> None:
        waiters = [(n, f) for n, f in self._id_waiters if not f.done()]
        self._id_waiters = []
        try:
            first = await self._run(ops.reserve_ids, self._conn, sum(n for n, _ in waiters), self._busy)
        except BaseException as exc:
            others = [(n, f) for n, f in waiters if f is not own]
            if not isinstance(exc, Exception):
                self._id_waiters[:0] = others  # cancelled: the others are served by the next holder
                raise
            for _, f in waiters:
                if not f.done():
                    error = StoreError(f"{self.path}: order id reservation failed: {exc}")
                    error.__cause__ = exc
                    f.set_exception(error)
            return
        for n, f in waiters:
            if not f.done():
                f.set_result(first)
            first += n

    # ------------------------------------------------------------------------------------- loading
    async def _select(self, *queries: tuple[str, tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
        try:
            return await self._run(ops.read, self._conn, queries, self._busy)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.path}: journal read failed: {exc}") from exc

    async def load_orders(self) -> list[Order]:
        """Every journaled order, ``trade_ids`` rebuilt from fills; ordered by creation time then id."""
        rows, trades = await self._select((schema.SELECT_ORDERS, ()), (schema.SELECT_TRADE_IDS, ()))
        trade_ids: dict[str, set[str]] = {}
        for cid, trade_id in trades:
            trade_ids.setdefault(cid, set()).add(trade_id)
        return [order_from_row(row, trade_ids) for row in rows]

    async def load_fills(self) -> list[tuple[OrderFilled, str]]:
        """``(fill, parent_id)`` in insertion order."""
        (rows,) = await self._select((schema.SELECT_FILLS, ()))
        return [fill_from_row(row) for row in rows]

    async def load_parents(self) -> list[dict[str, object]]:
        """Parent rows as staged (``params`` decoded), ordered by ``created_ns`` then id."""
        (rows,) = await self._select((schema.SELECT_PARENTS, ()))
        parents: list[dict[str, object]] = []
        for row in rows:
            values: dict[str, object] = dict(zip(schema.PARENT_COLUMNS, row, strict=True))
            values["params"] = _from_json(str(values["params"]))
            parents.append(values)
        return parents

    async def load_algo_states(self) -> dict[str, tuple[str, dict[str, object]]]:
        """parent id -> (algo, complete state): a progress row joined with the plan of the version it
        names (``stage_algo_progress``), or a state staged complete (``stage_algo_state``, and every
        state of a version 1 journal) as it is. Raises ``StoreError`` when a progress row's plan is
        missing or of another version or algorithm (the journal never writes one without the other)."""
        (rows,) = await self._select((schema.SELECT_ALGO_STATES, ()))
        where = str(self.path)
        states: dict[str, tuple[str, dict[str, object]]] = {}
        for row in rows:
            parent_id, algo, state = join_algo_state(where, row)
            states[parent_id] = (algo, state)
        return states

    async def load_positions(self) -> dict[str, tuple[int, int, int]]:
        """symbol -> (quantity, sellable, avg_cost)."""
        (rows,) = await self._select((schema.SELECT_POSITIONS, ()))
        return {symbol: (qty, sellable, cost) for symbol, qty, sellable, cost in rows}

    async def get_meta(self, key: str) -> str | None:
        (rows,) = await self._select((schema.SELECT_META, (key,)))
        return str(rows[0][0]) if rows else None

    async def ensure_control_table(self) -> None:
        """Create the operator-command table if this journal has none yet."""
        await self._run(ops.ensure_control_table, self._conn, self._busy)

    async def pending_commands(self) -> list[tuple[int, int, str, str]]:
        """Operator commands not yet applied: ``(id, ts, command, arg)`` in the order they were given."""
        (rows,) = await self._select((schema.SELECT_PENDING_COMMANDS, ()))
        return [(int(i), int(ts), str(c), str(a)) for i, ts, c, a in rows]

    async def queue_command(self, ts: int, command: str, arg: str = "") -> int:
        """Queue an operator command from this connection (the CLI uses its own, see engine.control)."""
        return await self._run(ops.insert_command, self._conn, ts, command, arg, self._busy)

    async def save_input_snapshot(self, row: dict[str, object]) -> None:
        """Journal one input snapshot (``schema.INPUT_SNAPSHOT_COLUMNS``), durable on return."""
        values = tuple(row[c] for c in schema.INPUT_SNAPSHOT_COLUMNS)
        try:
            await self._run(
                ops.write_plan, self._conn, [(schema.INSERT_INPUT_SNAPSHOT, [values])], self._busy
            )
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.path}: input snapshot not written: {exc}") from exc

    async def latest_input_snapshot(self, trade_date: str, job: str) -> dict[str, object] | None:
        """The newest snapshot journaled for ``job`` on ``trade_date`` (YYYY-MM-DD), or None."""
        (rows,) = await self._select((schema.SELECT_LATEST_INPUT_SNAPSHOT, (trade_date, job)))
        return dict(zip(schema.INPUT_SNAPSHOT_COLUMNS, rows[0], strict=True)) if rows else None

    async def integrity_check(self) -> list[str]:
        """``PRAGMA quick_check``: an empty list when the file is sound, else SQLite's findings."""
        (rows,) = await self._select(("PRAGMA quick_check", ()))
        problems = [str(r[0]) for r in rows]
        return [] if problems == ["ok"] else problems

    # ------------------------------------------------------------------------------------- trade log
    async def export_trade_log(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``orders.csv`` and ``fills.csv`` (committed rows, one snapshot) atomically into out_dir."""
        orders, fills = await self._select((schema.SELECT_LOG_ORDERS, ()), (schema.SELECT_LOG_FILLS, ()))
        return await asyncio.to_thread(write_trade_log, Path(out_dir), orders, fills)


def _fingerprint(value: dict[str, object]) -> bytes | None:
    """Bytes equal only for equal values, taken now (later mutation of ``value`` cannot alias it):
    ``marshal`` version 2 has no back-references, so the bytes do not depend on reference counts.
    None for a value marshal refuses (an enum, an arbitrary object): then it always counts as new."""
    try:
        return marshal.dumps(value, 2)
    except ValueError:
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _from_json(text: str) -> dict[str, object]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"journal holds non-object JSON where an object was stored: {text[:80]!r}")
    return value


def order_from_row(row: Sequence[Any], trade_ids: Mapping[str, set[str]]) -> Order:
    """An ``orders`` row (``schema.SELECT_ORDERS``) as an Order, its trade ids from ``trade_ids``."""
    values = dict(zip(schema.ORDER_COLUMNS, row, strict=True))
    before = values["status_before_cancel"]
    values["side"] = Side(values["side"])
    values["status"] = OrderStatus(values["status"])
    values["status_before_cancel"] = OrderStatus(before) if before else None
    values["venue_confirmed"] = bool(values["venue_confirmed"])
    values["order_type"] = OrderType(values["order_type"])
    return Order(**values, trade_ids=set(trade_ids.get(values["client_order_id"], set())))


def fill_from_row(row: Sequence[Any]) -> tuple[OrderFilled, str]:
    """A ``fills`` row (``schema.SELECT_FILLS``) as ``(fill, parent_id)``."""
    values = dict(zip(schema.FILL_COLUMNS, row, strict=True))
    parent_id = values.pop("parent_id")
    values["side"] = Side(values["side"])
    return OrderFilled(**values), parent_id
