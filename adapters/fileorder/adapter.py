"""``FileOrderAdapter``: the 掘金/东方财富 文件单 route as a ``BrokerAdapter``.

``submit`` drops one ``*.order.csv`` (sid = client order id) and ``cancel`` one ``*.cancel_order.csv``
through ``OrderFileWriter`` (atomic, ledger-checked); both return once the file is in place and raise
``BrokerError`` only when nothing was written. Answers come back by polling the terminal's output folder
``<output_dir>/<account_id>/`` on the injected clock (``call_at`` every ``poll_interval_ns``):

- ``execution_report.csv``: trades (exec type 15) become ``OrderFilled`` with the exec id as trade id,
  deduplicated; cancel rejects (19) become ``OrderCancelRejected``;
- ``order_status_change.csv`` and ``order_status.csv``: New/PartiallyFilled/... become one
  ``OrderAccepted``, Canceled ``OrderCanceled``, Rejected ``OrderRejected(reason)``, Expired
  ``OrderExpired``, each once per sid.

An order the terminal never answers stays in flight: the engine's in-flight checker asks
``query_orders`` (the latest status seen per sid) and ``query_trades``; nothing is ever dropped again
under a new sid (RELIABILITY E3). Queries of cash and positions read ``cash.csv`` and ``position.csv``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import structlog

from adapters.fileorder.format import (
    BIZ_OF_SIDE,
    CASH_FILE,
    ENGINE_STATUS_OF_GM,
    EXEC_CANCEL_REJECTED,
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_TRADE,
    EXECUTION_REPORT_FILE,
    FINAL_GM_STATUSES,
    ORDER_STATUS_CHANGE_FILE,
    ORDER_STATUS_FILE,
    ORDER_SUFFIX,
    ORDER_TYPE_LIMIT,
    POSITION_FILE,
    REJECT_REASON_NAMES,
    STATUS_CANCELED,
    STATUS_EXPIRED,
    STATUS_REJECTED,
    price_text,
)
from adapters.fileorder.reader import (
    ExecRow,
    StatusRow,
    TailFile,
    account_report,
    dropped_order_report,
    exec_row,
    parse_rows,
    position_report,
    read_snapshot,
    status_row,
)
from adapters.fileorder.writer import OrderFileWriter, SidLedger
from engine.broker import EventSink
from engine.clock import Clock, TimerHandle
from engine.errors import BrokerError, ConfigError
from engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    PositionReport,
)
from engine.market.symbols import to_gm
from engine.orders import Order

log = structlog.get_logger("zhixing.fileorder")

_SID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # nothing a CSV field or a file system could mangle
_KEY = "route.fileorder"
_ACKED = frozenset({1, 2, 3, 5, 6, 9, 12})  # statuses only an order the terminal sent can have
COMMENT = "zhixing"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileOrderConfig:
    """The ``[route.fileorder]`` section. ``output_dir`` is the terminal's output root: it writes each
    account's files under ``<output_dir>/<account_id>/``."""

    input_dir: Path
    output_dir: Path
    account_id: str
    state_dir: Path
    poll_interval_ns: int = 500_000_000
    completion_marker: bool = False
    encoding: str = "utf-8-sig"

    def __post_init__(self) -> None:
        if not self.account_id.strip() or "," in self.account_id:
            raise ConfigError(
                f"{_KEY}.account_id: must be the terminal's account id, got {self.account_id!r}"
            )
        if self.poll_interval_ns <= 0:
            raise ConfigError(f"key '{_KEY}.poll_interval_ns': must be > 0, got {self.poll_interval_ns}")
        try:
            "sid".encode(self.encoding)
        except LookupError as exc:
            raise ConfigError(f"key '{_KEY}.encoding': unknown encoding {self.encoding!r}") from exc

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], source: str = "config") -> FileOrderConfig:
        """Build from the ``[route.fileorder]`` table of the config file (``engine.config`` keeps it raw).
        Every problem is a ``ConfigError`` naming ``source`` and the key; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        for key in settings:
            if key not in known:
                raise ConfigError(f"{source}: key '{_KEY}.{key}': unknown (expected one of {sorted(known)})")
        values: dict[str, Any] = {}
        for key in ("input_dir", "output_dir", "account_id", "state_dir"):
            value = settings.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: key '{_KEY}.{key}': required, a non-empty string")
            values[key] = value if key == "account_id" else Path(value)
        if "poll_interval_ns" in settings:
            interval = settings["poll_interval_ns"]
            if not isinstance(interval, int) or isinstance(interval, bool):
                raise ConfigError(f"{source}: key '{_KEY}.poll_interval_ns': expected an integer (ns)")
            values["poll_interval_ns"] = interval
        if "completion_marker" in settings:
            if not isinstance(settings["completion_marker"], bool):
                raise ConfigError(f"{source}: key '{_KEY}.completion_marker': expected true or false")
            values["completion_marker"] = settings["completion_marker"]
        if "encoding" in settings:
            if not isinstance(settings["encoding"], str):
                raise ConfigError(f"{source}: key '{_KEY}.encoding': expected a string")
            values["encoding"] = settings["encoding"]
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    @property
    def account_output_dir(self) -> Path:
        return self.output_dir / self.account_id

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "fileorder_sids.sqlite"


@dataclass(slots=True)
class FileOrderStats:
    orders_dropped: int = 0
    cancels_dropped: int = 0
    polls: int = 0
    events: int = 0
    duplicate_exec_rows: int = 0  # execution rows seen again (terminal repeats, file re-read): not applied
    poll_errors: int = 0
    foreign_rows: int = 0  # status rows of another terminal order under a known sid: ignored
    unknown_status_codes: dict[int, int] = field(default_factory=dict)


def _better(new: StatusRow, old: StatusRow | None) -> bool:
    """Does ``new`` say more than ``old``? A final status is never replaced; fills only grow."""
    if old is None:
        return True
    if old.status in FINAL_GM_STATUSES:
        return False
    if new.status in FINAL_GM_STATUSES:
        return True
    return (new.filled, new.ts_event) >= (old.filled, old.ts_event)


def _reason(code: int, detail: str) -> str:
    name = REJECT_REASON_NAMES.get(code, f"reject_code_{code}")
    return f"{name}: {detail}" if detail else name


class FileOrderAdapter:
    name = "fileorder"

    def __init__(self, config: FileOrderConfig, clock: Clock) -> None:
        self.config = config
        self.stats = FileOrderStats()
        self._clock = clock
        self._sink: EventSink | None = None
        self._ledger: SidLedger | None = None
        self._writer: OrderFileWriter | None = None
        self._timer: TimerHandle | None = None
        out = config.account_output_dir
        self._exec_tail = TailFile(out / EXECUTION_REPORT_FILE, config.encoding)
        self._change_tail = TailFile(out / ORDER_STATUS_CHANGE_FILE, config.encoding)
        self._status_stamp: tuple[int, int, int] | None = None
        self._status: dict[str, StatusRow] = {}
        self._emitted: dict[str, set[str]] = {}  # sid -> kinds of event already delivered
        self._exec_ids: set[str] = set()
        self._trades: dict[str, FillReport] = {}
        self._dropped: dict[str, list[OrderStatusReport]] = {}  # input file name -> its orders
        self._cash: AccountReport | None = None
        self._positions: list[PositionReport] | None = None

    # ------------------------------------------------------------------------------------- lifecycle
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        cfg = self.config
        if not cfg.input_dir.is_dir():
            raise BrokerError(f"fileorder: input folder {cfg.input_dir} does not exist ({_KEY}.input_dir)")
        self._ledger = SidLedger(cfg.ledger_path)
        self._writer = OrderFileWriter(
            cfg.input_dir,
            self._ledger,
            self._clock,
            encoding=cfg.encoding,
            completion_marker=cfg.completion_marker,
        )
        self._writer.cleanup_temp()
        self.poll()
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
        sid = order.client_order_id
        if not _SID.fullmatch(sid):
            raise BrokerError(f"fileorder: client order id {sid!r} cannot be a sid; nothing written")
        if order.price <= 0 or order.quantity <= 0:
            raise BrokerError(f"fileorder: {sid} needs a limit price and a quantity; nothing written")
        row = (
            sid,
            self.config.account_id,
            to_gm(order.symbol),
            order.quantity,
            ORDER_TYPE_LIMIT,
            BIZ_OF_SIDE[order.side],
            price_text(order.price),
            COMMENT,
        )
        path = await asyncio.to_thread(writer.drop_order, row)
        self.stats.orders_dropped += 1
        log.info("fileorder_order_dropped", client_order_id=sid, file=path.name)

    async def cancel(self, order: Order) -> None:
        writer = self._require_writer()
        path = await asyncio.to_thread(writer.drop_cancel, order.client_order_id, COMMENT)
        self.stats.cancels_dropped += 1
        log.info("fileorder_cancel_dropped", client_order_id=order.client_order_id, file=path.name)

    def _require_writer(self) -> OrderFileWriter:
        if self._writer is None:
            raise BrokerError("fileorder: not connected; nothing written")
        return self._writer

    # ------------------------------------------------------------------------------------- queries
    async def query_orders(self) -> list[OrderStatusReport]:
        """The latest status the terminal wrote for each sid (read afresh first), and, as SUBMITTED,
        every order whose file still waits in the input folder unanswered: the terminal will process it
        when it next scans, so the engine must keep waiting rather than give it up (RELIABILITY E3)."""
        self.poll()
        reports = [r for r in self._waiting_in_folder() if r.client_order_id not in self._status]
        for sid, row in self._status.items():
            status = ENGINE_STATUS_OF_GM.get(row.status)
            if status is None:
                continue
            reports.append(
                OrderStatusReport(
                    client_order_id=sid,
                    broker_order_id=row.order_id,
                    symbol=row.symbol,
                    side=row.side,
                    price=row.price,
                    quantity=row.volume,
                    filled_quantity=row.filled,
                    status=status,
                    reason=_reason(row.reject_code, row.reject_detail)
                    if row.status == STATUS_REJECTED
                    else "",
                    ts_event=row.ts_event,
                )
            )
        return reports

    def _waiting_in_folder(self) -> list[OrderStatusReport]:
        folder = self.config.input_dir
        present = sorted(p.name for p in folder.glob(f"*{ORDER_SUFFIX}"))
        reports: list[OrderStatusReport] = []
        for name in present:
            known = self._dropped.get(name)
            if known is None:
                rows = read_snapshot(folder / name, self.config.encoding)
                if rows is None:
                    continue  # not complete (not one of ours: ours appear whole)
                known = self._dropped[name] = parse_rows(folder / name, rows, dropped_order_report)
            reports.extend(known)
        return reports

    async def query_trades(self) -> list[FillReport]:
        self.poll()
        return list(self._trades.values())

    async def query_account(self) -> AccountReport:
        path = self.config.account_output_dir / CASH_FILE
        rows = read_snapshot(path, self.config.encoding)
        if rows is not None:
            mine = [(n, r) for n, r in rows if r.get("account_id") in ("", self.config.account_id)]
            reports = parse_rows(path, mine, account_report)
            if reports:
                self._cash = reports[-1]
        if self._cash is None:
            raise BrokerError(f"fileorder: no cash row readable in {path} (is the output of cash enabled?)")
        return self._cash

    async def query_positions(self) -> list[PositionReport]:
        path = self.config.account_output_dir / POSITION_FILE
        rows = read_snapshot(path, self.config.encoding)
        if rows is not None:
            mine = [(n, r) for n, r in rows if r.get("account_id") in ("", self.config.account_id)]
            latest = {p.symbol: p for p in parse_rows(path, mine, position_report)}
            self._positions = [p for _, p in sorted(latest.items()) if p.quantity > 0]
        if self._positions is None:
            raise BrokerError(f"fileorder: {path} not readable (is the output of positions enabled?)")
        return list(self._positions)

    # ------------------------------------------------------------------------------------- polling
    def _schedule(self) -> None:
        when = self._clock.now_ns() + self.config.poll_interval_ns
        self._timer = self._clock.call_at(when, self._tick, "fileorder_poll")

    def _tick(self) -> None:
        self._schedule()
        try:
            self.poll()
        except Exception as exc:  # a bad poll must not stop the next one; logged with context
            self.stats.poll_errors += 1
            log.exception("fileorder_poll_failed", error=str(exc))

    def poll(self) -> int:
        """Read what the terminal added since the last poll and deliver it; returns events delivered."""
        self.stats.polls += 1
        out = self.config.account_output_dir
        delivered = 0
        for exec_rec in parse_rows(out / EXECUTION_REPORT_FILE, self._exec_tail.poll(), exec_row):
            delivered += self._on_exec(exec_rec)
        for status_rec in parse_rows(out / ORDER_STATUS_CHANGE_FILE, self._change_tail.poll(), status_row):
            delivered += self._on_status(status_rec)
        for status_rec in self._status_snapshot():
            delivered += self._on_status(status_rec)
        self.stats.events += delivered
        return delivered

    def _status_snapshot(self) -> list[StatusRow]:
        path = self.config.account_output_dir / ORDER_STATUS_FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._status_stamp:
            return []
        rows = read_snapshot(path, self.config.encoding)
        if rows is None:
            return []  # mid-write: read it at the next poll
        self._status_stamp = stamp
        return parse_rows(path, rows, status_row)

    # ------------------------------------------------------------------------------------- mapping
    def _on_status(self, row: StatusRow) -> int:
        sid = row.sid
        if not sid:
            return 0  # an order not placed through 文件单 (manual, another tool)
        if row.status not in ENGINE_STATUS_OF_GM:
            codes = self.stats.unknown_status_codes
            codes[row.status] = codes.get(row.status, 0) + 1
            log.warning("fileorder_unknown_status", sid=sid, status=row.status)
            return 0
        known = self._status.get(sid)
        if known is not None and known.cl_ord_id and row.cl_ord_id and row.cl_ord_id != known.cl_ord_id:
            # another order row under the same sid (not one of ours: the ledger forbids it), e.g. the
            # terminal refusing a duplicate sid: it says nothing about the order we know
            self.stats.foreign_rows += 1
            log.warning("fileorder_foreign_row_ignored", sid=sid, status=row.status, detail=row.reject_detail)
            return 0
        if _better(row, known):
            self._status[sid] = row
        delivered = 0
        now = self._clock.now_ns()
        ts = row.ts_event or now
        if row.status in _ACKED:
            delivered += self._once(
                sid,
                "accepted",
                OrderAccepted(
                    ts_event=ts,
                    ts_init=now,
                    client_order_id=sid,
                    symbol=row.symbol,
                    broker_order_id=row.order_id,
                ),
            )
        if row.status == STATUS_CANCELED:
            delivered += self._once(
                sid, "final", OrderCanceled(ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol)
            )
        elif row.status == STATUS_REJECTED:
            reason = _reason(row.reject_code, row.reject_detail)
            delivered += self._once(
                sid,
                "final",
                OrderRejected(
                    ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, reason=reason
                ),
            )
        elif row.status == STATUS_EXPIRED:
            delivered += self._once(
                sid, "final", OrderExpired(ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol)
            )
        return delivered

    def _on_exec(self, row: ExecRow) -> int:
        if row.exec_id in self._exec_ids:
            self.stats.duplicate_exec_rows += 1
            return 0
        self._exec_ids.add(row.exec_id)
        sid = row.sid
        if not sid:
            return 0
        now = self._clock.now_ns()
        ts = row.ts_event or now
        if row.exec_type == EXEC_TRADE:
            if row.volume <= 0:
                return 0
            self._trades[row.exec_id] = FillReport(
                trade_id=row.exec_id,
                client_order_id=sid,
                broker_order_id=row.order_id,
                symbol=row.symbol,
                side=row.side,
                price=row.price,
                quantity=row.volume,
                commission=row.commission,
                stamp_duty=row.stamp_duty,
                transfer_fee=row.transfer_fee,
                ts_event=ts,
            )
            return self._deliver(
                OrderFilled(
                    ts_event=ts,
                    ts_init=now,
                    client_order_id=sid,
                    symbol=row.symbol,
                    trade_id=row.exec_id,
                    side=row.side,
                    price=row.price,
                    quantity=row.volume,
                    commission=row.commission,
                    stamp_duty=row.stamp_duty,
                    transfer_fee=row.transfer_fee,
                )
            )
        if row.exec_type == EXEC_CANCEL_REJECTED:
            reason = row.reject_detail or "cancel_rejected"
            return self._deliver(
                OrderCancelRejected(
                    ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, reason=reason
                )
            )
        if row.exec_type == EXEC_NEW:
            return self._once(
                sid,
                "accepted",
                OrderAccepted(
                    ts_event=ts,
                    ts_init=now,
                    client_order_id=sid,
                    symbol=row.symbol,
                    broker_order_id=row.order_id,
                ),
            )
        if row.exec_type == EXEC_CANCELED:
            event: OrderEvent = OrderCanceled(
                ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol
            )
            return self._once(sid, "final", event)
        if row.exec_type == EXEC_REJECTED:
            reason = _reason(row.reject_code, row.reject_detail)
            event = OrderRejected(
                ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, reason=reason
            )
            return self._once(sid, "final", event)
        if row.exec_type == EXEC_EXPIRED:
            event = OrderExpired(ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol)
            return self._once(sid, "final", event)
        return 0

    def _once(self, sid: str, kind: str, event: OrderEvent) -> int:
        seen = self._emitted.setdefault(sid, set())
        if kind in seen:
            return 0
        seen.add(kind)
        return self._deliver(event)

    def _deliver(self, event: OrderEvent) -> int:
        if self._sink is None:
            log.warning("fileorder_event_without_sink", client_order_id=event.client_order_id)
            return 0
        self._sink(event)
        return 1
