"""A 掘金 terminal's 文件单 service, emulated over the simulated exchange (for tests and rehearsals).

What it does, the way the terminal is documented and observed to do it (assumptions are listed in
``docs/routes/fileorder.md``):

- every ``scan_interval_ns`` (a ``Clock.call_at`` timer) it globs the input folder for ``*.order.csv``
  and ``*.cancel_order.csv``, in name order, and processes each file once (remembered by name; with
  ``require_marker`` only files whose ``<name>.fin`` exists);
- each order row is checked (account, symbol, volume, order type, price, and a ``sid`` seen before is
  rejected, status 8, without touching the exchange) and handed to a ``SimExchange``; the exchange's
  events become rows of ``order_status_change.csv`` and ``execution_report.csv`` in the terminal's
  columns and GM codes, UTF-8 with a BOM, appended as they happen;
- every ``snapshot_interval_ns`` it rewrites ``order_status.csv`` (latest row per order), ``cash.csv``
  and ``position.csv`` under ``<output_root>/<account_id>/``;
- one terminal may serve several accounts from one input folder (``serve``): each order row goes to the
  account it names, each account has its own exchange and output folder, and a sid is the terminal's
  key across all of them (a sid one account used is refused as a duplicate for any other: the stricter
  reading of the vendor's contract). A cancel row names no account; a cancel of a sid the terminal does
  not know is answered in the first account's folder.

Injectable faults (``TerminalFaults``, seeded): a slow scan (a longer interval), a missed file (skipped
for ``miss_scans`` scans before it is seen), duplicate output rows (a row appended twice).

The exchange's methods are coroutines that never suspend; the emulator runs them to completion inside
its timer callbacks (``_run_now``), so everything happens on the virtual clock, deterministically.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

from zhixing.adapters.fileorder.format import (
    CANCEL_HEADER,
    CANCEL_SUFFIX,
    CASH_FILE,
    CASH_HEADER,
    EXEC_CANCEL_REJECTED,
    EXEC_TRADE,
    EXECUTION_REPORT_FILE,
    EXECUTION_REPORT_HEADER,
    FILE_ORDER_TYPE,
    MARKER_SUFFIX,
    ORDER_HEADER,
    ORDER_STATUS_CHANGE_FILE,
    ORDER_STATUS_FILE,
    ORDER_STATUS_HEADER,
    ORDER_SUFFIX,
    ORDER_TYPE_LIMIT,
    POSITION_FILE,
    POSITION_HEADER,
    REJECT_ILLEGAL_ACCOUNT_ID,
    REJECT_ILLEGAL_PRICE,
    REJECT_ILLEGAL_SYMBOL,
    REJECT_ILLEGAL_VOLUME,
    REJECT_NO_ENOUGH_CASH,
    REJECT_NO_ENOUGH_POSITION,
    REJECT_NOT_IN_TRADING_SESSION,
    REJECT_ORDER_TYPE_NOT_SUPPORTED,
    REJECT_RISK_RULE,
    REJECT_UNKNOWN,
    SIDE_OF_BIZ,
    STATUS_CANCELED,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_PENDING_NEW,
    STATUS_REJECTED,
    column_aliases,
    parse_int,
    render_csv,
    render_rows,
    split_line,
)
from zhixing.adapters.fileorder.output_rows import cash_values, exec_values, position_values, status_values
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.enums import Side
from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from zhixing.engine.market.symbols import from_gm
from zhixing.engine.orders import Order
from zhixing.engine.units import price_from_yuan
from zhixing.replay.exchange import SimExchange

log = structlog.get_logger("zhixing.terminal")

T = TypeVar("T")
BOM = "\ufeff"
DUPLICATE_SID = "duplicate sid"
_KIND_OF_CODE = {(exchange, str(code)): kind for (exchange, kind), code in FILE_ORDER_TYPE.items()}
"""The order kind of an ``order_type`` code per exchange suffix, as the terminal takes them (SSE 24/25,
SZSE 20-24 and limit orders everywhere); another code is refused ``order_type_not_supported``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalFaults:
    """Seeded terminal misbehaviour. Defaults: a healthy terminal scanning every second."""

    seed: int = 0
    scan_interval_ns: int = 1_000_000_000  # a slow scan is a longer interval
    miss_probability: float = 0.0  # chance that a new file is not seen by the scan that first could
    miss_scans: int = 3  # scans a missed file stays unseen
    duplicate_probability: float = 0.0  # chance that an output row is appended twice


@dataclass(slots=True)
class TerminalStats:
    scans: int = 0
    files_processed: int = 0
    files_missed: int = 0  # files the fault hid from a scan (counted per file, once)
    bad_files: int = 0
    orders_submitted: int = 0
    orders_refused: int = 0  # refused by the terminal's own checks (duplicate sid, bad row, ...)
    cancels: int = 0
    duplicate_rows_written: int = 0
    sids: list[str] = field(default_factory=list)  # sids handed to the exchange, in order


@dataclass(slots=True)
class _Desk:
    """One account the terminal serves: its venue and its output folder."""

    account_id: str
    exchange: SimExchange
    output_dir: Path


@dataclass(slots=True)
class _TermOrder:
    sid: str
    desk: _Desk
    cl_ord_id: str
    symbol: str
    side: Side
    price: int
    volume: int
    created_ns: int
    order_id: str = ""
    status: int = STATUS_PENDING_NEW
    filled: int = 0
    reject_code: int = 0
    reject_detail: str = ""
    updated_ns: int = 0
    order: Order | None = None


def _run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the SimExchange's methods) to completion, here and now."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SimExchange call suspended; the terminal emulator runs them synchronously")


def _reject_code(reason: str) -> int:
    """The GM reject reason code closest to a SimExchange rejection reason."""
    if reason == "market_closed":
        return REJECT_NOT_IN_TRADING_SESSION
    if reason in ("unknown_symbol", "no_trading_rules"):
        return REJECT_ILLEGAL_SYMBOL
    if reason == "insufficient_cash":
        return REJECT_NO_ENOUGH_CASH
    if reason == "insufficient_sellable":
        return REJECT_NO_ENOUGH_POSITION
    if "price" in reason or "tick" in reason or "limit" in reason:
        return REJECT_ILLEGAL_PRICE
    if "quantity" in reason or "lot" in reason:
        return REJECT_ILLEGAL_VOLUME
    return REJECT_RISK_RULE


class TerminalEmulator:
    def __init__(
        self,
        input_dir: Path,
        output_root: Path,
        account_id: str,
        exchange: SimExchange,
        clock: Clock,
        *,
        faults: TerminalFaults | None = None,
        snapshot_interval_ns: int = 3_000_000_000,
        require_marker: bool = False,
    ) -> None:
        self.input_dir = input_dir
        self.output_root = output_root
        self.output_dir = output_root / account_id
        self.account_id = account_id
        self.exchange = exchange
        self._desks = {account_id: _Desk(account_id, exchange, self.output_dir)}
        self.faults = faults or TerminalFaults()
        self.snapshot_interval_ns = snapshot_interval_ns
        self.require_marker = require_marker
        self.stats = TerminalStats()
        self._clock = clock
        self._rng = random.Random(self.faults.seed)
        self._processed: set[str] = set()
        self._hidden_until: dict[str, int] = {}  # file name -> scan number from which it is seen
        self._orders: dict[str, _TermOrder] = {}  # by sid
        self._seq = 0
        self._timers: list[TimerHandle] = []
        self._running = False

    # ------------------------------------------------------------------------------------- lifecycle
    def serve(self, account_id: str, exchange: SimExchange) -> None:
        """Serve another account from the same input folder (before ``start``): its rows go to
        ``exchange`` and its answers to ``<output_root>/<account_id>/``."""
        if account_id in self._desks:
            raise ParameterError(
                f"the terminal already serves account {account_id!r}", name="account_id", value=account_id
            )
        self._desks[account_id] = _Desk(account_id, exchange, self.output_root / account_id)

    def start(self) -> None:
        """Bind to the exchanges, create the output files (headers, BOM) and start scanning."""
        for desk in self._desks.values():
            desk.exchange.bind(functools.partial(self._on_exchange_event, desk))
            desk.output_dir.mkdir(parents=True, exist_ok=True)
            for name, header in (
                (EXECUTION_REPORT_FILE, EXECUTION_REPORT_HEADER),
                (ORDER_STATUS_CHANGE_FILE, ORDER_STATUS_HEADER),
            ):
                path = desk.output_dir / name
                if not path.exists():
                    path.write_text(BOM + render_csv(header, []), encoding="utf-8", newline="")
        self._running = True
        self._write_snapshots()
        now = self._clock.now_ns()
        self._timers = [
            self._clock.call_at(now + self.faults.scan_interval_ns, self._scan_tick, "terminal_scan"),
            self._clock.call_at(now + self.snapshot_interval_ns, self._snapshot_tick, "terminal_snapshot"),
        ]

    def stop(self) -> None:
        self._running = False
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _scan_tick(self) -> None:
        if not self._running:
            return
        self._timers[0] = self._clock.call_at(
            self._clock.now_ns() + self.faults.scan_interval_ns, self._scan_tick, "terminal_scan"
        )
        self.scan()

    def _snapshot_tick(self) -> None:
        if not self._running:
            return
        self._timers[1] = self._clock.call_at(
            self._clock.now_ns() + self.snapshot_interval_ns, self._snapshot_tick, "terminal_snapshot"
        )
        self._write_snapshots()

    # ------------------------------------------------------------------------------------- scanning
    def scan(self) -> int:
        """One pass over the input folder; returns how many files were processed."""
        self.stats.scans += 1
        scan_no = self.stats.scans
        names = sorted(
            [p.name for p in self.input_dir.glob(f"*{ORDER_SUFFIX}")]
            + [p.name for p in self.input_dir.glob(f"*{CANCEL_SUFFIX}")]
        )
        done = 0
        for name in names:
            if name in self._processed:
                continue
            if self.require_marker and not (self.input_dir / f"{name}{MARKER_SUFFIX}").exists():
                continue
            if name not in self._hidden_until:
                missed = (
                    self.faults.miss_probability > 0 and self._rng.random() < self.faults.miss_probability
                )
                self._hidden_until[name] = scan_no + (self.faults.miss_scans if missed else 0)
                if missed:
                    self.stats.files_missed += 1
            if scan_no < self._hidden_until[name]:
                continue
            self._processed.add(name)
            self._process_file(self.input_dir / name)
            done += 1
        self.stats.files_processed += done
        return done

    def _process_file(self, path: Path) -> None:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.stats.bad_files += 1
            log.warning("terminal_bad_file", file=path.name, error=str(exc))
            return
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            self.stats.bad_files += 1
            return
        header = [h.strip() for h in split_line(lines[0])]
        is_order = path.name.endswith(ORDER_SUFFIX)
        expected = ORDER_HEADER if is_order else CANCEL_HEADER
        if tuple(header) != expected:
            self.stats.bad_files += 1
            log.warning("terminal_bad_header", file=path.name, header=header)
            return
        columns = column_aliases(header)
        for line in lines[1:]:
            values = split_line(line)
            if is_order:
                self._order_row(columns, values)
            else:
                self._cancel_row(values[columns["sid"]].strip() if values else "")

    def _order_row(self, columns: dict[str, int], values: Sequence[str]) -> None:
        def get(name: str) -> str:
            i = columns[name]
            return values[i].strip() if i < len(values) else ""

        now = self._clock.now_ns()
        sid = get("sid")
        self._seq += 1
        desk = self._desks.get(get("account_id"))
        rec = _TermOrder(
            sid=sid,
            desk=desk or self._desks[self.account_id],
            cl_ord_id=f"CL{self._seq:08d}",
            symbol="",
            side=Side.BUY,
            price=0,
            volume=0,
            created_ns=now,
        )
        refusal: tuple[int, str] | None = None
        try:
            rec.side = SIDE_OF_BIZ[parse_int(get("order_business"))]
            rec.symbol = from_gm(get("symbol"))
            rec.volume = parse_int(get("volume"))
            rec.price = price_from_yuan(get("price")) if get("price") else 0
        except (InputError, ValueError, KeyError, ArithmeticError) as exc:
            refusal = (REJECT_ILLEGAL_SYMBOL if not rec.symbol else REJECT_ILLEGAL_VOLUME, str(exc))
        if refusal is None:
            if not sid:
                refusal = (REJECT_UNKNOWN, "empty sid")
            elif sid in self._orders:
                refusal = (REJECT_UNKNOWN, DUPLICATE_SID)
            elif desk is None:
                refusal = (REJECT_ILLEGAL_ACCOUNT_ID, f"account {get('account_id')!r}")
            elif (rec.symbol[-2:], get("order_type")) not in _KIND_OF_CODE:
                refusal = (REJECT_ORDER_TYPE_NOT_SUPPORTED, f"order_type {get('order_type')}")
            elif rec.volume <= 0:
                refusal = (REJECT_ILLEGAL_VOLUME, f"volume {rec.volume}")
            elif rec.price <= 0 and get("order_type") == str(ORDER_TYPE_LIMIT):
                refusal = (REJECT_ILLEGAL_PRICE, "limit order without a price")
        if refusal is not None:
            # a refused row gets a status row of its own; for a duplicate sid it has no order id,
            # and the order already known under that sid is left alone
            self.stats.orders_refused += 1
            rec.status, rec.reject_code, rec.reject_detail = STATUS_REJECTED, refusal[0], refusal[1]
            rec.updated_ns = now
            self._status_row(rec)
            log.info("terminal_order_refused", sid=sid, reason=refusal[1])
            return
        order = Order(
            client_order_id=sid,
            symbol=rec.symbol,
            side=rec.side,
            price=rec.price,
            quantity=rec.volume,
            order_type=_KIND_OF_CODE[(rec.symbol[-2:], get("order_type"))],
        )
        rec.order = order
        rec.updated_ns = now
        self._orders[sid] = rec
        self._status_row(rec)  # PendingNew
        _run_now(rec.desk.exchange.submit(order))
        self.stats.orders_submitted += 1
        self.stats.sids.append(sid)

    def _cancel_row(self, sid: str) -> None:
        self.stats.cancels += 1
        rec = self._orders.get(sid)
        if rec is None or rec.order is None:
            primary = self._desks[self.account_id]
            self._exec_row(
                None, sid, EXEC_CANCEL_REJECTED, self._clock.now_ns(), detail="unknown sid", desk=primary
            )
            return
        _run_now(rec.desk.exchange.cancel(rec.order))

    # ------------------------------------------------------------------------------------- exchange events
    def _on_exchange_event(self, desk: _Desk, event: OrderEvent) -> None:
        rec = self._orders.get(event.client_order_id)
        if rec is None or rec.desk is not desk:
            log.warning("terminal_unknown_event", client_order_id=event.client_order_id)
            return
        rec.updated_ns = event.ts_event
        if isinstance(event, OrderAccepted):
            rec.order_id = event.broker_order_id
            rec.status = STATUS_NEW if rec.filled == 0 else rec.status
            self._status_row(rec)
        elif isinstance(event, OrderFilled):
            rec.filled += event.quantity
            rec.status = STATUS_FILLED if rec.filled >= rec.volume else STATUS_PARTIALLY_FILLED
            self._exec_row(
                rec,
                rec.sid,
                EXEC_TRADE,
                event.ts_event,
                exec_id=event.trade_id,
                price=event.price,
                volume=event.quantity,
            )
            self._status_row(rec)
        elif isinstance(event, OrderCanceled):
            rec.status = STATUS_CANCELED
            self._status_row(rec)
        elif isinstance(event, OrderExpired):
            rec.status = STATUS_EXPIRED
            self._status_row(rec)
        elif isinstance(event, OrderRejected):
            rec.status, rec.reject_code, rec.reject_detail = (
                STATUS_REJECTED,
                _reject_code(event.reason),
                event.reason,
            )
            self._status_row(rec)
        elif isinstance(event, OrderCancelRejected):
            self._exec_row(rec, rec.sid, EXEC_CANCEL_REJECTED, event.ts_event, detail=event.reason)

    # ------------------------------------------------------------------------------------- output rows
    def _status_values(self, rec: _TermOrder) -> list[object]:
        return status_values(
            account_id=rec.desk.account_id,
            sid=rec.sid,
            cl_ord_id=rec.cl_ord_id,
            order_id=rec.order_id,
            symbol=rec.symbol,
            side=rec.side,
            status=rec.status,
            reject_code=rec.reject_code,
            reject_detail=rec.reject_detail,
            price=rec.price,
            volume=rec.volume,
            filled=rec.filled,
            created_ns=rec.created_ns,
            updated_ns=rec.updated_ns,
            recv_ns=self._clock.now_ns(),
        )

    def _status_row(self, rec: _TermOrder) -> None:
        self._append(rec.desk, ORDER_STATUS_CHANGE_FILE, self._status_values(rec))

    def _exec_row(
        self,
        rec: _TermOrder | None,
        sid: str,
        exec_type: int,
        ts_ns: int,
        *,
        exec_id: str = "",
        price: int = 0,
        volume: int = 0,
        detail: str = "",
        desk: _Desk | None = None,
    ) -> None:
        """Append an execution row for ``rec`` (None: a sid the terminal does not know, answered in
        ``desk``'s folder)."""
        self._seq += 1
        desk = rec.desk if rec is not None else desk
        assert desk is not None
        values = exec_values(
            account_id=desk.account_id,
            sid=sid,
            cl_ord_id=rec.cl_ord_id if rec else "",
            order_id=rec.order_id if rec else "",
            exec_id=exec_id or f"X{self._seq:08d}",
            symbol=rec.symbol if rec else "",
            side=rec.side if rec else Side.BUY,
            exec_type=exec_type,
            price=price,
            volume=volume,
            detail=detail,
            created_ns=ts_ns,
            recv_ns=self._clock.now_ns(),
        )
        self._append(desk, EXECUTION_REPORT_FILE, values)

    def _append(self, desk: _Desk, name: str, values: Sequence[object]) -> None:
        copies = 1
        if self.faults.duplicate_probability > 0 and self._rng.random() < self.faults.duplicate_probability:
            copies = 2
            self.stats.duplicate_rows_written += 1
        with open(desk.output_dir / name, "a", encoding="utf-8", newline="") as handle:
            handle.write(render_rows([values] * copies))

    def _write_snapshots(self) -> None:
        """Rewrite order_status.csv, cash.csv and position.csv (temp file, then rename)."""
        now = self._clock.now_ns()
        for desk in self._desks.values():
            statuses = [self._status_values(r) for r in self._orders.values() if r.desk is desk]
            self._replace(desk, ORDER_STATUS_FILE, ORDER_STATUS_HEADER, statuses)
            account = _run_now(desk.exchange.query_account())
            self._replace(desk, CASH_FILE, CASH_HEADER, [cash_values(desk.account_id, account, now)])
            positions = _run_now(desk.exchange.query_positions())
            rows = [position_values(desk.account_id, p, now) for p in positions]
            self._replace(desk, POSITION_FILE, POSITION_HEADER, rows)

    def _replace(
        self, desk: _Desk, name: str, header: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        final = desk.output_dir / name
        temp = desk.output_dir / f".{name}.tmp"
        temp.write_text(BOM + render_csv(header, rows), encoding="utf-8", newline="")
        os.replace(temp, final)

    # ------------------------------------------------------------------------------------- views
    def gm_status(self, sid: str) -> int | None:
        """The GM status code the terminal last wrote for ``sid`` (None: never seen)."""
        rec = self._orders.get(sid)
        return None if rec is None else rec.status
