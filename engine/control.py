"""Kill switch and algorithm control for a running engine, through the journal file.

The operator's CLI is another process: ``zhixing halt|resume`` and ``zhixing algo pause|resume|cancel``
insert a row into ``control_commands`` of the engine's SQLite journal (``queue_command``: plain sqlite3,
one short ``BEGIN IMMEDIATE`` transaction, WAL, ``busy_timeout``). The running engine's ``ControlChannel``
polls that table every ``poll_interval_ns`` on its clock and applies each command through its handlers
(``EngineControl`` for the usual wiring). Each command is marked done in the same transaction that
journals what it changed (the halt record, the paused algorithms' states, the orders), so a crash before
that commit re-applies the command on restart, and every handler is idempotent: applied exactly once in
effect, never lost.

Halt (kill switch, RELIABILITY J6): the OMS denies every new order, each running algorithm is paused
(its children cancelled), and every other working order is cancelled; cancels still go out. The halt is
journaled (meta ``halt``) and survives a restart: ``EngineControl.restore()`` halts again until
``zhixing resume``. Resume lifts the halt and resumes exactly the algorithms the halt paused (one the
operator paused by name stays paused).

Cancel-all (``zhixing cancel-all``): every running algorithm is cancelled (it cancels its children and
finishes CANCELED) and every other working order is cancelled; trading is not halted.

After a halt (pressed, automatic or restored at start) and a cancel-all, the engine verifies by query
that every order of ours is really gone (``engine.cancels.GoneCheck``, driven by the channel's polls):
the result is journaled (meta ``cancel_checks``, the latest ``KEEP_CHECKS``, each with its command id)
and, when an order still works or the broker did not answer, told to the operator (``on_alert``).
``zhixing halt|cancel-all --wait S`` waits for that result and prints it.

Every halt reaches ``on_halt_change`` once, whoever halted (``zhixing halt``, the reject breaker, a
persistent broker difference, lost orders after a restore, a journal that cannot be written, a halt
restored at start): the OMS tells it on the bus (``HaltChanged``). So does the resume.
An algorithm that asks for a child while halted (one that joined after the halt, e.g. a rebalance's buy
leg sized when its sells settled during the halt, or any algorithm when the OMS halted by itself) is
paused at its first denial and resumed with the others: after a resume every pending leg continues, none
is left stopped by the repeated-denial breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import structlog

from zhixing.engine import api_commands as api
from zhixing.engine.api_commands import MAX_ARG_CHARS
from zhixing.engine.cancels import GoneCheck, GoneReport
from zhixing.engine.clock import Clock, LiveClock
from zhixing.engine.errors import InputError, ParameterError, StoreError, ZhixingError
from zhixing.engine.events import HaltChanged, HaltRequested, OrderDenied, SubmitOrder
from zhixing.engine.freshness import AlertCallback, position_key
from zhixing.engine.market import Instrument
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import order_quantity
from zhixing.engine.reasons import DenialCode, Unfilled, UnfilledCode
from zhixing.engine.reconcile import merge_order
from zhixing.engine.risk_controls import RISK_META_KEY, RiskControls
from zhixing.engine.store import StateStore, ops
from zhixing.engine.store.staging import to_json

log = structlog.get_logger("zhixing.control")

HALT_META_KEY = "halt"
CHECKS_META_KEY = "cancel_checks"
KEEP_CHECKS = 20
DEFAULT_POLL_NS = 250_000_000


class Command(StrEnum):
    HALT = "halt"
    RESUME = "resume"
    PAUSE = "pause"
    RESUME_ALGO = "resume_algo"
    CANCEL_ALGO = "cancel_algo"
    CANCEL_ALL = "cancel_all"
    ACCEPT_POSITIONS = "accept_positions"
    SUBMIT_ORDER = "submit_order"  # a script's order (engine.api_commands)
    START_PARENT = "start_parent"
    CANCEL_ORDER = "cancel_order"


ALGO_COMMANDS = frozenset({Command.PAUSE, Command.RESUME_ALGO, Command.CANCEL_ALGO})
API_COMMANDS = frozenset({Command.SUBMIT_ORDER, Command.START_PARENT, Command.CANCEL_ORDER})


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlRequest:
    id: int
    ts: int
    command: str
    arg: str


# ---------------------------------------------------------------------------------------- CLI side
def queue_command(
    db: Path,
    command: Command | str,
    arg: str = "",
    *,
    clock: Clock | None = None,
    busy_timeout_ms: int = 5000,
) -> int:
    """Insert a command for the engine that owns journal ``db``; returns its id. Synchronous (a CLI).

    The file must exist (a mistyped path must not create an empty journal nobody reads). A command
    given while no engine runs waits in the table and is applied when the engine starts.
    """
    try:
        cmd = Command(command)
    except ValueError:
        raise InputError(f"unknown control command {command!r}", field="command") from None
    if cmd in ALGO_COMMANDS and not arg.strip():
        raise InputError(f"{cmd.value} needs a parent id", field="parent_id")
    if cmd in API_COMMANDS and not arg.strip():
        raise InputError(f"{cmd.value} needs its payload", field="arg")
    if len(arg) > MAX_ARG_CHARS:
        raise InputError(
            f"{cmd.value}: argument of {len(arg)} characters, more than {MAX_ARG_CHARS}", field="arg"
        )
    if not db.is_file():
        raise InputError("journal database not found", path=str(db))
    now = (clock or LiveClock()).now_ns()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        ops.setup(conn, "FULL", busy_timeout_ms, str(db))  # WAL, busy timeout, refuses a foreign file
        command_id = ops.insert_command(conn, now, cmd.value, arg.strip(), ops.BusyCounter())
    except sqlite3.Error as exc:
        raise StoreError(f"{db}: cannot queue control command: {exc}") from exc
    finally:
        conn.close()
    log.info("control_command_queued", command=cmd.value, arg=arg, command_id=command_id)
    return command_id


# ---------------------------------------------------------------------------------------- engine side
class ControlHandlers(Protocol):
    """What applies commands (``EngineControl``). Each returns a short result recorded with the command,
    and must be idempotent (a command may be applied again after a crash before its commit)."""

    def on_halt(self, reason: str) -> str: ...

    def on_resume(self) -> str: ...

    def on_pause(self, parent_id: str) -> str: ...

    def on_resume_algo(self, parent_id: str) -> str: ...

    def on_cancel_algo(self, parent_id: str) -> str: ...

    def on_cancel_all(self) -> str: ...

    def on_accept_positions(self) -> str: ...

    async def on_submit_order(self, command_id: int, arg: str) -> str | None: ...

    async def on_start_parent(self, command_id: int, arg: str) -> str: ...

    def on_cancel_order(self, arg: str) -> str: ...


class ControlChannel:
    """Polls ``control_commands`` and applies new rows through ``handlers`` (see module docstring).

    ``commit`` journals what the handlers changed together with the done marks: pass the OMS's
    ``flush`` (it runs the before-commit hooks, e.g. the basket's algorithm states); the default is the
    store's own commit.
    """

    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        handlers: ControlHandlers,
        *,
        poll_interval_ns: int = DEFAULT_POLL_NS,
        commit: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if poll_interval_ns <= 0:
            raise ParameterError(
                f"must be > 0, got {poll_interval_ns}", name="poll_interval_ns", value=poll_interval_ns
            )
        self.store = store
        self.clock = clock
        self.handlers = handlers
        self.poll_interval_ns = poll_interval_ns
        self._commit = commit or store.commit
        self._table_ready = False
        self._task: asyncio.Task[None] | None = None
        self.applied: list[tuple[ControlRequest, str]] = []
        self.poll_failures = 0

    async def poll(self) -> list[tuple[ControlRequest, str]]:
        """Apply every pending command, in order, and commit; returns what was applied this time."""
        if not self._table_ready:
            await self.store.ensure_control_table()
            self._table_ready = True
        rows = await self.store.pending_commands()
        done: list[tuple[ControlRequest, str]] = []
        for command_id, ts, command, arg in rows:
            request = ControlRequest(id=command_id, ts=ts, command=command, arg=arg)
            if hasattr(self.handlers, "command_id"):  # what a verification it starts belongs to
                self.handlers.command_id = command_id
            result = await self._apply(request)
            if result is None:
                continue
            self.store.stage_command_done(command_id, self.clock.now_ns(), result)
            log.warning(
                "control_command_applied", command=command, arg=arg, command_id=command_id, result=result
            )
            done.append((request, result))
        follow_up = getattr(self.handlers, "follow_up", None)
        verified = await follow_up() if follow_up is not None else []
        if done or verified:
            await self._commit()
            self.applied.extend(done)
        return done

    async def _apply(self, request: ControlRequest) -> str | None:
        """The command's result; None: not yet (it stays pending and is applied again at the next poll)."""
        h = self.handlers
        try:
            match request.command:
                case Command.HALT:
                    return h.on_halt(request.arg or "operator")
                case Command.RESUME:
                    return h.on_resume()
                case Command.PAUSE:
                    return h.on_pause(request.arg)
                case Command.RESUME_ALGO:
                    return h.on_resume_algo(request.arg)
                case Command.CANCEL_ALGO:
                    return h.on_cancel_algo(request.arg)
                case Command.CANCEL_ALL:
                    return h.on_cancel_all()
                case Command.ACCEPT_POSITIONS:
                    return h.on_accept_positions()
                case Command.SUBMIT_ORDER:
                    return await h.on_submit_order(request.id, request.arg)
                case Command.START_PARENT:
                    return await h.on_start_parent(request.id, request.arg)
                case Command.CANCEL_ORDER:
                    return h.on_cancel_order(request.arg)
                case _:
                    return f"ignored: unknown command {request.command!r}"
        except Exception as exc:  # a handler bug must not stop the kill switch channel
            log.exception("control_command_failed", command=request.command, command_id=request.id)
            return f"error: {type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------------------------- live loop
    def start(self) -> None:
        """Poll in a background task every ``poll_interval_ns`` on the clock."""
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="control:poll")
        self._task.add_done_callback(_log_task_failure)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # the task we just cancelled
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            await self.clock.sleep_until(self.clock.now_ns() + self.poll_interval_ns)
            try:
                await self.poll()
            except StoreError as exc:  # the journal is busy or failing: keep trying, say so
                self.poll_failures += 1
                log.error("control_poll_failed", error=str(exc))


def journal_failure_text(error: str | None) -> str:
    """What the operator is told when the journal cannot be written (a full disk, most often)."""
    return (
        f"journal_write_failed: {error or 'the journal could not be written'}. The journal's disk is full "
        "or failing: nothing new is sent (write-ahead), cancels still go out, fills are kept in memory and "
        "written by the first commit that succeeds. Free space on that disk, then `zhixing resume`; "
        "`zhixing status` shows the journal as last written. At the end of the run `zhixing run` exits 1."
    )


class ControllableAlgo(Protocol):
    """What the kill switch needs of an algorithm (``algos.base.ExecAlgo`` provides it)."""

    @property
    def done(self) -> bool: ...

    @property
    def paused(self) -> bool: ...

    def pause(self, why: Unfilled | None = None) -> None: ...

    def resume(self) -> None: ...

    def cancel(self, why: Unfilled | None = None) -> None: ...


HaltListener = Callable[[str, bool], object]
"""``(reason, halted)``: trading halted (True) or resumed (False)."""


class RejectCounter(Protocol):
    def reset_rejects(self) -> None: ...


StartParents = Callable[[Sequence[ParentOrder]], Awaitable[None]]
Watch = Callable[[Sequence[str]], Awaitable[bool]]
"""Subscribe symbols; True when each has a quote already (``LiveSession.watch``)."""
QUOTE_WAIT_NS = 5_000_000_000
"""A script's order for a symbol just subscribed waits this long (engine time) for its first quote."""
"""Journal parents, subscribe their symbols and start their algorithms in the running basket
(``LiveSession.start_parents``)."""


class EngineControl:
    """The usual ``ControlHandlers``: the OMS, the running algorithms by parent id (e.g.
    ``Basket.algos``, read at each command so parents added later are covered) and the journal."""

    def __init__(
        self,
        oms: OrderManager,
        store: StateStore,
        algos: Mapping[str, ControllableAlgo],
        *,
        risk: RejectCounter | None = None,
        on_alert: AlertCallback | None = None,
        on_halt_change: HaltListener | None = None,
        start_parents: StartParents | None = None,
        watch: Watch | None = None,
        instrument: Callable[[str], Instrument] | None = None,
    ) -> None:
        self.oms = oms
        self.instrument = instrument  # a script's order is sized on its lot grid (None: sent as asked)
        self.watch = watch  # a script's order subscribes its symbol first (None: not subscribed)
        self._quote_waits: dict[int, int] = {}  # command id -> since when its order waits for a quote
        self.store = store
        self.algos = algos
        self.start_parents = start_parents  # a script's start_parent (None: refused)
        self.risk = risk
        self.on_alert = on_alert
        self.on_halt_change = on_halt_change  # (reason, halted): told when trading halts or resumes
        self.paused_by_halt: set[str] = set()
        self.halted_since_ns = 0
        self.command_id = 0  # the command being applied (set by the channel), 0: none
        self.checks: list[tuple[int, GoneCheck]] = []  # verifications still running
        self.verified: list[GoneReport] = []
        self._records: list[dict[str, object]] = []  # journaled verifications (this process's)
        self._restoring = False  # restore() halts: told as a halt from before the restart
        self._resuming = False  # on_resume tells the resume itself, with what it resumed
        oms.bus.subscribe(OrderDenied, self._on_denied)
        oms.bus.subscribe(HaltChanged, lambda event: self._halt_changed(event.reason))
        # the risk gate's auto-halt is the full kill switch: paused, cancelled, verified
        oms.bus.subscribe(HaltRequested, lambda event: self.auto_halt(event.reason))

    @property
    def halted(self) -> bool:
        return self.oms.halted_reason is not None

    def on_halt(self, reason: str) -> str:
        self.oms.halt(reason)  # first: nothing new goes out while we pause and cancel
        paused = 0
        for parent_id, algo in self.algos.items():
            if not algo.done and not algo.paused:
                algo.pause(Unfilled(UnfilledCode.HALTED, reason))
                self.paused_by_halt.add(parent_id)
                paused += 1
        cancelled = self.oms.cancel_all()
        self._journal()
        self._verify("halt")
        return f"halted: {paused} algos paused, {len(cancelled)} cancels queued; verifying by query"

    def on_cancel_all(self) -> str:
        stopped = 0
        for algo in self.algos.values():
            if not algo.done:
                algo.cancel()  # cancels its children and finishes CANCELED
                stopped += 1
        self.paused_by_halt.clear()
        cancelled = self.oms.cancel_all()  # anything else still working
        self._journal()
        self._verify("cancel-all")
        return (
            f"cancel-all: {stopped} algos cancelled, {len(cancelled)} more cancels queued; verifying by query"
        )

    def _verify(self, what: str) -> None:
        """Start verifying by query that every order of ours is gone (see the module docstring)."""
        oms = self.oms
        check = GoneCheck(
            what,
            lambda: oms.orders,
            oms.adapter,
            oms.clock,
            grace_ns=oms.freshness.grace_ns,
            answers=oms.freshness.answers,
            merge=lambda order, view: merge_order(oms, order, view),
        )
        self.checks.append((self.command_id, check))

    async def follow_up(self) -> list[GoneReport]:
        """Advance the running verifications; journal (and, when not ok, tell) the finished ones."""
        finished: list[GoneReport] = []
        for command_id, check in list(self.checks):
            report = await check.poll()
            if report is None:
                continue
            self.checks.remove((command_id, check))
            finished.append(report)
            self.verified.append(report)
            self._record(command_id, report)
            if not report.ok and self.on_alert is not None:
                try:
                    self.on_alert(f"{report.what}: orders still working", report.summary())
                except Exception:  # a notification must never break the engine
                    log.exception("alert_callback_failed")
        return finished

    def _record(self, command_id: int, report: GoneReport) -> None:
        record = {"command_id": command_id, **report.to_record()}
        self._records = [*self._records, record][-KEEP_CHECKS:]
        self.store.stage_meta(CHECKS_META_KEY, to_json({"checks": self._records}))

    def _halt_changed(self, reason: str | None) -> None:
        """The OMS halted (any source) or resumed: tell the operator once."""
        if reason is not None and not self.halted_since_ns:
            self.halted_since_ns = self.oms.clock.now_ns()
        if self.on_halt_change is None or (reason is None and self._resuming):
            return
        if reason is None:
            self.on_halt_change("resumed", False)
        elif self._restoring:
            self.on_halt_change(f"still halted from before the restart: {reason}", True)
        elif reason == "journal_write_failed":
            self.on_halt_change(journal_failure_text(self.oms.journal_error), True)
        else:
            self.on_halt_change(reason, True)

    def _on_denied(self, event: OrderDenied) -> None:
        """A child denied because trading is halted: its algorithm waits for the resume, paused."""
        if not self.halted or event.code is not DenialCode.HALTED:
            return
        order = self.oms.orders.get(event.client_order_id)
        parent_id = order.parent_id if order is not None else ""
        algo = self.algos.get(parent_id) if parent_id else None
        if algo is None or algo.done or algo.paused:
            return
        algo.pause(Unfilled(UnfilledCode.HALTED, self.oms.halted_reason or ""))
        self.paused_by_halt.add(parent_id)
        self._journal()
        log.warning("algo_paused_while_halted", parent_id=parent_id)

    def on_accept_positions(self) -> str:
        """While halted: take the broker's quantity for every position difference that persisted (a
        journal restored from a backup, a trade made at the terminal by hand), journaled so the next start
        agrees, and told to the operator. Order differences are not touched (cancel at the terminal)."""
        if not self.halted:
            return "refused: only while halted (zhixing halt first, and look at zhixing account)"
        account = self.oms.account
        tracker = self.oms.freshness
        if account is None:
            return "refused: no account"
        taken: list[str] = []
        for diff in tracker.position_differences():
            if not isinstance(diff.broker, int):
                continue
            symbol = diff.key[len(position_key("")) :]
            pos = account.position(symbol)
            old = pos.quantity
            # what the broker shows more was bought today at the earliest (T+1: not sellable); less
            # is sold: it leaves what is sellable first
            sellable = pos.sellable if diff.broker >= old else max(0, pos.sellable + diff.broker - old)
            account.load_position(symbol, diff.broker, pos.avg_cost, sellable=min(sellable, diff.broker))
            self.store.stage_position(symbol, pos.quantity, pos.sellable, pos.avg_cost)
            tracker.accept(diff)
            taken.append(f"{symbol}: {old} -> {diff.broker} (sellable {pos.sellable})")
            log.warning("position_accepted_from_broker", symbol=symbol, local=old, broker=diff.broker)
        if not taken:
            return "nothing to accept: no position difference persists"
        if self.on_alert is not None:
            self.on_alert("positions taken from the broker (operator)", "\n".join(taken))
        return f"accepted {len(taken)} positions from the broker: " + "; ".join(taken)

    def on_resume(self) -> str:
        if not self.halted:
            return "not halted"
        self._resuming = True
        try:
            self.oms.resume()
        finally:
            self._resuming = False
        self.halted_since_ns = 0
        resumed = 0
        for parent_id in sorted(self.paused_by_halt):
            algo = self.algos.get(parent_id)
            if algo is not None and not algo.done:
                algo.resume()
                resumed += 1
        self.paused_by_halt.clear()
        if self.risk is not None:
            self.risk.reset_rejects()
        self._journal()
        log.warning("trading_resumed", algos_resumed=resumed)
        if self.on_halt_change is not None:
            self.on_halt_change(f"operator resumed; {resumed} algos resumed", False)
        return f"resumed: {resumed} algos resumed"

    def on_pause(self, parent_id: str) -> str:
        algo = self.algos.get(parent_id)
        if algo is None:
            return f"unknown parent {parent_id}"
        if algo.done:
            return "already finished"
        algo.pause()
        if parent_id in self.paused_by_halt:  # the operator's pause outlives the halt
            self.paused_by_halt.discard(parent_id)
            self._journal()
        return "paused"

    def on_resume_algo(self, parent_id: str) -> str:
        algo = self.algos.get(parent_id)
        if algo is None:
            return f"unknown parent {parent_id}"
        if algo.done:
            return "already finished"
        if self.halted:  # resumes with the engine, not before
            self.paused_by_halt.add(parent_id)
            self._journal()
            return "resumes when the halt is lifted"
        algo.resume()
        return "resumed"

    def on_cancel_algo(self, parent_id: str) -> str:
        algo = self.algos.get(parent_id)
        if algo is None:
            return f"unknown parent {parent_id}"
        if algo.done:
            return "already finished"
        algo.cancel()
        if parent_id in self.paused_by_halt:
            self.paused_by_halt.discard(parent_id)
            self._journal()
        return "cancelled"

    # ------------------------------------------------------------------ a script's commands (api_commands)
    async def on_submit_order(self, command_id: int, arg: str) -> str | None:
        """A script's order, tagged ``api:<command id>[:<its tag>]``: sent once, whatever re-applies. A
        symbol not subscribed yet is subscribed and the order waits (None: pending) for its first quote,
        at most ``QUOTE_WAIT_NS``; then the risk gate decides (``no_reference_quote``)."""
        try:
            request = api.parse_order(arg)
        except InputError as exc:
            return api.refused("bad_payload", str(exc))
        tag = api.order_tag(command_id)
        earlier = self._order_tagged(tag)
        if earlier is not None:  # applied before a crash: that order, not a second one
            return _order_result(earlier)
        if self.watch is not None and not await self.watch([request.symbol]):
            now = self.oms.clock.now_ns()
            since = self._quote_waits.setdefault(command_id, now)
            if now - since < QUOTE_WAIT_NS:
                return None
        self._quote_waits.pop(command_id, None)
        try:
            quantity = self._sized(request)
            if quantity <= 0:
                return api.refused(
                    "size",
                    f"{request.symbol} {request.side}: rounds to no shares on the lot grid, or none sellable",
                )
            order = self.oms.submit(
                SubmitOrder(
                    symbol=request.symbol,
                    side=request.side,
                    quantity=quantity,
                    price=request.price,
                    tag=f"{tag}:{request.tag}" if request.tag else tag,
                    order_type=request.order_type,
                )
            )
        except ZhixingError as exc:
            return api.refused("refused", str(exc))
        return _order_result(order)

    async def on_start_parent(self, command_id: int, arg: str) -> str:
        """A script's algorithm (one parent ``api-<command id>``) in the running basket, started once."""
        try:
            request = api.parse_parent(arg)
        except InputError as exc:
            return api.refused("bad_payload", str(exc))
        parent_id = api.parent_id_of(command_id)
        if parent_id in self.algos or self.oms.children_of(parent_id):  # applied before a crash
            return api.result_json(True, parent_id=parent_id, again=True)
        if self.start_parents is None:
            return api.refused("unsupported", "this engine does not start a script's algorithms")
        if self.halted:
            return api.refused("halted", f"trading is halted ({self.oms.halted_reason})")
        now = self.oms.clock.now_ns()
        parent = ParentOrder(
            parent_id=parent_id,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
            start_ns=max(now, request.start_ns),
            end_ns=request.end_ns or max(now, request.start_ns) + request.window_ns,
            algo=request.algo,
            limit_price=request.limit_price,
            params=request.params,
            created_ns=now,
        )
        if parent.end_ns <= parent.start_ns:
            return api.refused(
                "bad_payload", f"'end_ns' {parent.end_ns} is not after now ({parent.start_ns})"
            )
        try:
            await self.start_parents([parent])
        except ZhixingError as exc:  # an unknown algorithm, bad parameters
            return api.refused("refused", str(exc))
        return api.result_json(True, parent_id=parent_id)

    def on_cancel_order(self, arg: str) -> str:
        """Cancel one order by client order id, or by the tag of the command that sent it (``api:<id>``)."""
        key = arg.strip()
        order = self.oms.orders.get(key) or self._order_tagged(key)
        if order is None:
            return api.refused("unknown_order", f"no order {key!r:.80}")
        queued = self.oms.cancel(order.client_order_id)
        return api.result_json(True, client_order_id=order.client_order_id, cancel_queued=queued)

    def _sized(self, request: api.OrderRequest) -> int:
        """As ``zhixing.api`` sizes an order: on the board's lot grid, a sell clipped to T+1 sellable."""
        volume = request.quantity or request.value // request.price
        if self.instrument is None:
            return volume
        account = self.oms.account
        pos = account.positions.get(request.symbol) if account is not None else None
        held, sellable = (0, 0) if pos is None else (pos.quantity, pos.sellable)
        return order_quantity(self.instrument(request.symbol), request.side, volume, held, sellable)

    def _order_tagged(self, tag: str) -> Order | None:
        if not tag:
            return None
        return next(
            (o for o in self.oms.orders.values() if o.tag == tag or o.tag.startswith(f"{tag}:")), None
        )

    def auto_halt(self, reason: str) -> None:
        """A ``HaltRequested`` on the bus (the risk gate's auto-halt): the full kill switch. The
        OrderManager has halted already (it hears the request first); the algorithms pause, what works
        is cancelled and verified."""
        self.on_halt(reason)

    def _journal(self) -> None:
        record: dict[str, object] = {
            "halted": self.halted,
            "reason": self.oms.halted_reason or "",
            "since_ns": self.halted_since_ns if self.halted else 0,
            "paused_by_halt": sorted(self.paused_by_halt),
        }
        self.store.stage_meta(HALT_META_KEY, to_json(record))

    async def restore(self) -> bool:
        """At startup (after the algorithms are built): halt again if the journal says so. True if halted."""
        raw = await self.store.get_meta(HALT_META_KEY)
        record = parse_halt(raw)
        if not record.get("halted"):
            return False
        self.halted_since_ns = int(str(record.get("since_ns") or 0))
        self._restoring = True
        try:
            self.oms.halt(str(record.get("reason") or "operator"))  # told once: not when halted before
        finally:
            self._restoring = False
        names = record.get("paused_by_halt")
        self.paused_by_halt = {str(n) for n in names} if isinstance(names, list) else set()
        for parent_id in sorted(self.paused_by_halt):
            algo = self.algos.get(parent_id)
            if algo is not None and not algo.done:
                algo.pause(Unfilled(UnfilledCode.HALTED, self.oms.halted_reason or ""))
        for parent_id, algo in self.algos.items():  # anything the journal lagged on
            if not algo.done and not algo.paused:
                algo.pause(Unfilled(UnfilledCode.HALTED, self.oms.halted_reason or ""))
                self.paused_by_halt.add(parent_id)
        self.oms.cancel_all()
        self._verify("halt (restored at start)")
        log.warning("halt_restored", reason=self.oms.halted_reason)
        return True


def parse_halt(raw: str | None) -> dict[str, object]:
    """The journaled halt record (``{}`` when none)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StoreError(f"journal meta {HALT_META_KEY!r} is not JSON: {exc}") from exc
    return value if isinstance(value, dict) else {}


def _order_result(order: Order) -> str:
    """A submitted order's result: its id and status, with the denial's code and text when denied."""
    fields: dict[str, object] = {
        "client_order_id": order.client_order_id,
        "status": order.status.value,
        "tag": order.tag,
    }
    if order.denial is not None or order.reason:
        fields["code"] = order.denial.value if order.denial is not None else ""
        fields["text"] = order.reason
    return api.result_json(order.denial is None, **fields)


def _log_task_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_failed", task=task.get_name(), exc_info=task.exception())


async def install(
    *,
    oms: OrderManager,
    store: StateStore,
    algos: Mapping[str, ControllableAlgo],
    risk: RiskControls | None = None,
    poll_interval_ns: int = DEFAULT_POLL_NS,
    on_alert: AlertCallback | None = None,
    on_halt_change: HaltListener | None = None,
    start_parents: StartParents | None = None,
    watch: Watch | None = None,
    instrument: Callable[[str], Instrument] | None = None,
) -> tuple[EngineControl, ControlChannel]:
    """Wire the kill switch and the command channel onto a built engine at startup
    (after recovery, once the restored algorithms are in ``algos``): the risk controls' auto-halt
    becomes the full kill switch, today's message count and a journaled halt are restored, and the
    account and risk report are journaled with every commit. Start polling with ``channel.start()``
    (live) or call ``channel.poll()`` (replay)."""
    control = EngineControl(
        oms,
        store,
        algos,
        risk=risk,
        on_alert=on_alert,
        on_halt_change=on_halt_change,
        start_parents=start_parents,
        watch=watch,
        instrument=instrument,
    )
    if risk is not None:
        risk.restore(await store.get_meta(RISK_META_KEY), oms.orders.values())
    await control.restore()
    channel = ControlChannel(store, oms.clock, control, poll_interval_ns=poll_interval_ns, commit=oms.flush)
    return control, channel
