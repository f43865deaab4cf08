"""``FileOrderAdapter``: the 掘金/东方财富 文件单 route as a ``BrokerAdapter``.

``submit`` drops one ``*.order.csv`` (sid = client order id) and ``cancel`` one ``*.cancel_order.csv``
through ``OrderFileWriter`` (atomic, ledger-checked); both return once the file is in place and raise
``BrokerError`` only when nothing was written. Answers come back by polling the terminal's output folder
``<output_dir>/<account_id>/`` on the injected clock (``call_at`` every ``poll_interval_ns``); the rows
become events in ``ReportTracker`` (see there for the mapping). The reads are small incremental ones and
run on the loop; the writes (fsync) run in a worker thread.

An order the terminal has not answered stays in flight: ``query_orders`` answers with the latest status
per sid and, as SUBMITTED, every order whose file still waits in the input folder, so the in-flight
checker keeps waiting for the terminal instead of giving the order up; nothing is ever dropped again
under a new sid (RELIABILITY E3). Cash and positions come from ``cash.csv`` and ``position.csv``.

One account's route (``engine.order_ids``): sids are the account's client order ids and the files it
drops are named with the account key, so two engines on two accounts can share the input folder and the
state directory. It reads only its own: rows naming another account (the account column) or carrying
another account's ids are left out, and of the input folder only its own files (its key in the name, or
the name of a file written before names carried it) are read back. A sid the terminal already lists
before zhixing wrote it (another tool's order under an id of ours) is never written and never adopted:
refused, recorded ``foreign`` in the sid ledger, its rows left out for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from zhixing.adapters.fileorder import trust
from zhixing.adapters.fileorder.config import FileOrderConfig
from zhixing.adapters.fileorder.format import (
    BIZ_OF_SIDE,
    CASH_FILE,
    EXECUTION_REPORT_FILE,
    FILE_ORDER_TYPE,
    ORDER_STATUS_CHANGE_FILE,
    ORDER_STATUS_FILE,
    ORDER_SUFFIX,
    POSITION_FILE,
    Row,
    price_text,
)
from zhixing.adapters.fileorder.reader import (
    StatusRow,
    account_report,
    dropped_order_report,
    exec_row,
    of_account,
    parse_rows,
    position_report,
    read_snapshot,
    status_row,
)
from zhixing.adapters.fileorder.tail import TailFile
from zhixing.adapters.fileorder.tracker import ReportTracker
from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger
from zhixing.engine.broker import EventSink
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import BrokerError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderEvent,
    OrderStatusReport,
    PositionReport,
)
from zhixing.engine.market.symbols import to_gm
from zhixing.engine.order_ids import KEY_LENGTH, OrderIds
from zhixing.engine.orders import Order

log = structlog.get_logger("zhixing.fileorder")

# nothing a CSV field, a spreadsheet or a file system could mangle: no leading '-', '.', '=' ...
_SID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
COMMENT = "zhixing"
# the names OrderFileWriter gives: <ns>_<account key>_<pid>_<seq>, or <ns>_<pid>_<seq> before names had a key
_OUR_NAME = re.compile(rf"^\d+_(?:([a-z]{{{KEY_LENGTH}}})_)?\d+_\d+{re.escape(ORDER_SUFFIX)}$")
FOREIGN = "foreign"  # sid ledger state: the terminal knew the sid before us (never written)


@dataclass(slots=True)
class FileOrderStats:
    orders_dropped: int = 0
    cancels_dropped: int = 0
    polls: int = 0
    events: int = 0
    poll_errors: int = 0
    other_account_rows: dict[str, int] = field(default_factory=dict)  # file name -> rows left out
    other_account_files: int = 0  # order files in the input folder that are not this account's: unread
    foreign_sids: int = 0  # sids refused because the terminal already listed them (another tool's)


class FileOrderAdapter:
    name = "fileorder"

    def __init__(self, config: FileOrderConfig, clock: Clock) -> None:
        self.config = config
        self.stats = FileOrderStats()
        self.tracker = ReportTracker(config.fee_schedule())
        self.order_ids = OrderIds.for_account(config.account_id)  # the OrderManager issues these
        self._clock = clock
        self._sink: EventSink | None = None
        self._ledger: SidLedger | None = None
        self._writer: OrderFileWriter | None = None
        self._timer: TimerHandle | None = None
        out = self._out = config.account_output_dir  # checked once (engine.names), used at every poll
        self._exec_tail = TailFile(out / EXECUTION_REPORT_FILE, config.encoding)
        self._change_tail = TailFile(out / ORDER_STATUS_CHANGE_FILE, config.encoding)
        self._status_stamp: tuple[int, int, int, int] | None = None
        self._dropped: dict[str, list[OrderStatusReport]] = {}  # input file name -> its orders
        self._cash: AccountReport | None = None
        self._positions: list[PositionReport] | None = None
        self._last_poll_error = ""
        self._output_guard = trust.FolderGuard(out, "route.fileorder.output_dir (the account sub-folder)")

    # ------------------------------------------------------------------------------------- lifecycle
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        """Check the folders (``trust.py``: nobody else may write them), open the sid ledger, read what
        the terminal wrote so far and start polling. Raises ``BrokerError`` naming the folder and the
        fix when a folder is missing or untrusted."""
        cfg = self.config
        if not cfg.input_dir.is_dir():
            raise BrokerError(
                f"fileorder: input folder {cfg.input_dir} does not exist (route.fileorder.input_dir)"
            )
        trust.check_folder(cfg.input_dir, "route.fileorder.input_dir")
        trust.make_private_folder(cfg.state_dir)
        trust.check_folder(cfg.state_dir, "route.fileorder.state_dir")
        if cfg.output_dir.exists():
            trust.check_folder(cfg.output_dir, "route.fileorder.output_dir")
        self._check_output_folder()
        self._ledger = SidLedger(cfg.ledger_path)
        self._writer = OrderFileWriter(
            cfg.input_dir,
            self._ledger,
            self._clock,
            encoding=cfg.encoding,
            completion_marker=cfg.completion_marker,
            tag=self.order_ids.key or "",
        )
        for sid in self._ledger.sids_in_state(FOREIGN):
            self.tracker.disown(sid)
        try:
            self._writer.cleanup_temp()
            self.poll()
        except BaseException:
            await self.close()  # an untrusted output file: refuse, leave no ledger connection open
            raise
        self._schedule()
        log.info("fileorder_connected", input_dir=str(cfg.input_dir), output_dir=str(cfg.account_output_dir))

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self._writer = None

    # ------------------------------------------------------------------------------------- commands
    async def submit(self, order: Order) -> None:
        writer = self._require_writer()
        sid = _checked_sid(order.client_order_id)
        if order.price <= 0 or order.quantity <= 0:
            raise BrokerError(f"fileorder: {sid} needs a limit price and a quantity; nothing written")
        order_type = FILE_ORDER_TYPE.get((order.symbol[-2:], order.order_type))
        if order_type is None:
            raise BrokerError(
                f"fileorder: {sid}: the file route has no order_type for {order.order_type.value} on "
                f"{order.symbol}; nothing written"
            )
        if self.tracker.seen(sid):
            await self._refuse_foreign(sid)
        row = (
            sid,
            self.config.account_id,
            to_gm(order.symbol),
            order.quantity,
            order_type,
            BIZ_OF_SIDE[order.side],
            price_text(order.price),
            COMMENT,
        )
        path = await asyncio.to_thread(writer.drop_order, row)
        self.stats.orders_dropped += 1
        log.info("fileorder_order_dropped", client_order_id=sid, file=path.name)

    async def _refuse_foreign(self, sid: str) -> None:
        """The terminal lists ``sid`` though zhixing never wrote it: another tool's order under one of our
        ids. Never written, never adopted (recorded ``foreign``, its rows left out); raises."""
        ledger = self._ledger
        assert ledger is not None  # connected: the writer exists
        self.tracker.disown(sid)
        self.stats.foreign_sids += 1
        log.error("fileorder_sid_used_by_another_tool", sid=sid)
        with contextlib.suppress(BrokerError):  # recorded before: refused all the same
            await asyncio.to_thread(ledger.reserve, sid, self._clock.now_ns(), "", FOREIGN)
        raise BrokerError(
            f"fileorder: sid {sid} is already listed by the terminal for an order zhixing did not write "
            "(another tool writes our ids into the folder?); nothing written, its rows are ignored"
        )

    async def cancel(self, order: Order) -> None:
        writer = self._require_writer()
        path = await asyncio.to_thread(writer.drop_cancel, _checked_sid(order.client_order_id), COMMENT)
        self.stats.cancels_dropped += 1
        log.info("fileorder_cancel_dropped", client_order_id=order.client_order_id, file=path.name)

    def _require_writer(self) -> OrderFileWriter:
        if self._writer is None:
            raise BrokerError("fileorder: not connected; nothing written")
        return self._writer

    # ------------------------------------------------------------------------------------- queries
    async def query_orders(self) -> list[OrderStatusReport]:
        """The latest status per sid (read afresh first), and, as SUBMITTED, every order whose file
        still waits unanswered in the input folder (the terminal will process it when it next scans)."""
        self.poll()
        waiting = [r for r in self._waiting_in_folder() if not self.tracker.knows(r.client_order_id)]
        return waiting + self.tracker.status_reports()

    async def query_trades(self) -> list[FillReport]:
        self.poll()
        return self.tracker.trades()

    async def query_account(self) -> AccountReport:
        path = self._out / CASH_FILE
        rows = read_snapshot(path, self.config.encoding)
        if rows is not None:
            mine = self._mine(path, rows)
            reports = parse_rows(path, mine, account_report)
            if reports:
                self._cash = reports[-1]
        if self._cash is None:
            raise BrokerError(f"fileorder: no cash row readable in {path} (is the output of cash enabled?)")
        return self._cash

    async def query_positions(self) -> list[PositionReport]:
        path = self._out / POSITION_FILE
        rows = read_snapshot(path, self.config.encoding)
        if rows is not None:
            mine = self._mine(path, rows)
            latest = {p.symbol: p for p in parse_rows(path, mine, position_report)}
            self._positions = [p for _, p in sorted(latest.items()) if p.quantity > 0]
        if self._positions is None:
            raise BrokerError(f"fileorder: {path} not readable (is the output of positions enabled?)")
        return list(self._positions)

    def _waiting_in_folder(self) -> list[OrderStatusReport]:
        folder = self.config.input_dir
        reports: list[OrderStatusReport] = []
        for name in sorted(p.name for p in folder.glob(f"*{ORDER_SUFFIX}")):
            known = self._dropped.get(name)
            if known is None:
                named = _OUR_NAME.match(name)
                if named is None or named.group(1) not in (None, self.order_ids.key):
                    self.stats.other_account_files += 1  # another account's or another tool's: unread
                    self._dropped[name] = []
                    continue
                rows = read_snapshot(folder / name, self.config.encoding)
                if rows is None:
                    continue  # incomplete: not one of ours (ours appear whole)
                mine = self._mine(folder / name, rows)  # a shared input folder: our account's only
                known = self._dropped[name] = parse_rows(folder / name, mine, dropped_order_report)
            reports.extend(known)
        return reports

    # ------------------------------------------------------------------------------------- polling
    def _schedule(self) -> None:
        when = self._clock.now_ns() + self.config.poll_interval_ns
        self._timer = self._clock.call_at(when, self._tick, "fileorder_poll")

    def _tick(self) -> None:
        self._schedule()
        try:
            self.poll()
            self._last_poll_error = ""
        except Exception as exc:  # a bad poll must not stop the next one; logged with context
            self.stats.poll_errors += 1
            if str(exc) != self._last_poll_error:  # once per distinct failure, not every 0.5 s
                self._last_poll_error = str(exc)
                log.exception("fileorder_poll_failed", error=str(exc))

    def poll(self) -> int:
        """Read what the terminal added since the last poll and deliver it; returns events delivered.
        Acks first (an order that traded on arrival is acknowledged before its fills, as on every other
        route), then execution rows, then the other status changes: a fill is applied before a cancel
        written after it."""
        self.stats.polls += 1
        self._check_output_folder()
        out = self._out
        tracker = self.tracker
        events: list[OrderEvent] = []
        exec_path, change_path = out / EXECUTION_REPORT_FILE, out / ORDER_STATUS_CHANGE_FILE
        for exec_rec in parse_rows(exec_path, self._mine(exec_path, self._exec_tail.poll()), exec_row):
            events += tracker.on_exec(exec_rec, self._clock.now_ns())
        for status_rec in parse_rows(
            change_path, self._mine(change_path, self._change_tail.poll()), status_row
        ):
            events += tracker.on_status(status_rec, self._clock.now_ns())
        for status_rec in self._status_snapshot():
            events += tracker.on_status(status_rec, self._clock.now_ns())
        events.sort(key=lambda event: not isinstance(event, OrderAccepted))  # stable: the rest keep order
        for event in events:
            self._deliver(event)
        self.stats.events += len(events)
        return len(events)

    def _check_output_folder(self) -> None:
        """The account's output folder, once the terminal created it: nobody else may write it."""
        self._output_guard.check()

    def _mine(self, path: Path, rows: list[tuple[int, Row]]) -> list[tuple[int, Row]]:
        """The rows of this account: its account column (where the terminal writes one) and no id of
        another account's engine."""
        skipped = self.stats.other_account_rows
        mine = of_account(path, rows, self.config.account_id, skipped)
        kept = [(n, row) for n, row in mine if not self.order_ids.is_another_accounts(row.get("sid"))]
        if len(kept) != len(mine):
            if path.name not in skipped:
                log.warning("fileorder_other_account_ids", file=str(path), rows=len(mine) - len(kept))
            skipped[path.name] = skipped.get(path.name, 0) + len(mine) - len(kept)
        return kept

    def _status_snapshot(self) -> list[StatusRow]:
        """``order_status.csv`` when it changed. The terminal rewrites it whole; a rewrite that keeps
        its inode, size and both timestamps is read at its next change (statuses also arrive through
        ``order_status_change.csv`` and the execution rows)."""
        path = self._out / ORDER_STATUS_FILE
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return []
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stamp == self._status_stamp:
            return []
        rows = read_snapshot(path, self.config.encoding)
        if rows is None:
            return []  # mid-write: read it at the next poll
        self._status_stamp = stamp
        return parse_rows(path, self._mine(path, rows), status_row)

    def _deliver(self, event: OrderEvent) -> None:
        if self._sink is None:
            log.warning("fileorder_event_without_sink", client_order_id=event.client_order_id)
            return
        self._sink(event)


def _checked_sid(sid: str) -> str:
    if not _SID.fullmatch(sid):
        raise BrokerError(f"fileorder: client order id {sid!r} cannot be a sid; nothing written")
    return sid
