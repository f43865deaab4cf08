"""What the terminal's rows mean for zhixing: typed rows in, order events and reports out (no I/O).

- execution rows: trades (exec type 15) become ``OrderFilled`` with the exec id as trade id, each exec id
  once (the terminal may repeat a row; a re-read file repeats them all); cancel rejects (19) become
  ``OrderCancelRejected``;
- status rows (``order_status_change.csv``, ``order_status.csv``): any status only a sent order can have
  becomes one ``OrderAccepted`` per sid; Canceled, Rejected and Expired become ``OrderCanceled``,
  ``OrderRejected(reason)`` and ``OrderExpired``, once per sid (an end carries the row's filled column
  as ``filled_qty``, and is produced again only when a later row says a larger figure; an execution
  row's end says none);
- the latest status per sid is kept for ``query_orders``: a final status is never replaced by a stale
  row and the filled quantity only grows; a row of another terminal order under a known sid (another
  ``cl_ord_id``, e.g. the terminal refusing a duplicate sid) is ignored;
- a sid ``disown``-ed (the terminal knew it before zhixing wrote it: another tool's order under an id
  of ours) is left out from then on, its rows already read forgotten: never an event, never a report;
- fees: a trade row that carries fee columns is taken as written. The terminal's rows observed so far
  carry none; given a ``FeeSchedule`` (the account's rates), the tracker then estimates each trade's fees
  as the order's cumulative fees on its total traded value minus what its earlier trades were charged
  (so the minimum commission counts once per order, as brokers charge it). Without an estimate the
  engine's cash would run ahead of the broker's by the fees until the next reconciliation, and a buy
  sized from it could be refused for cash. The same rows give the same estimates after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import structlog

from zhixing.adapters.fileorder.format import (
    ENGINE_STATUS_OF_GM,
    EXEC_CANCEL_REJECTED,
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_TRADE,
    FINAL_GM_STATUSES,
    REJECT_REASON_NAMES,
    STATUS_CANCELED,
    STATUS_EXPIRED,
    STATUS_REJECTED,
)
from zhixing.adapters.fileorder.reader import ExecRow, StatusRow
from zhixing.engine.events import (
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
)
from zhixing.engine.market import FeeSchedule, MarketRules, trading_date_of

log = structlog.get_logger("zhixing.fileorder")

_ACKED = frozenset({1, 2, 3, 5, 6, 9, 12})  # statuses only an order the terminal sent on can have


@dataclass(slots=True)
class TrackerStats:
    duplicate_exec_rows: int = 0  # execution rows seen again (terminal repeats, file re-read): not applied
    foreign_rows: int = 0  # status rows of another terminal order under a known sid: ignored
    disowned_rows: int = 0  # rows of a disowned sid: ignored
    fees_estimated: int = 0  # trade rows without fee columns whose fees were estimated
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


def reject_reason(code: int, detail: str) -> str:
    """``no_enough_cash: 资金不足``: the GM reason name, then the terminal's text."""
    name = REJECT_REASON_NAMES.get(code, f"reject_code_{code}")
    return f"{name}: {detail}" if detail else name


class ReportTracker:
    def __init__(self, fees: FeeSchedule | None = None) -> None:
        self.stats = TrackerStats()
        self.fees = fees  # None: a trade row without fee columns books no fees
        self._rules = MarketRules()  # the dated table: the account's commission, the day's duty and fee
        self._traded: dict[str, tuple[int, tuple[int, int, int]]] = {}  # sid -> (value, fees charged)
        self._status: dict[str, StatusRow] = {}
        self._emitted: dict[str, set[str]] = {}  # sid -> kinds of event already produced
        self._end_filled: dict[str, int | None] = {}  # sid -> filled figure its end said
        self._exec_ids: set[str] = set()
        self._trades: dict[str, FillReport] = {}
        self._seen: set[str] = set()  # every sid a status or execution row named
        self._disowned: set[str] = set()

    def knows(self, sid: str) -> bool:
        """Has the terminal written a status for ``sid``?"""
        return sid in self._status

    def seen(self, sid: str) -> bool:
        """Has the terminal written any row (status or execution) naming ``sid``?"""
        return sid in self._seen

    def disown(self, sid: str) -> None:
        """Leave ``sid`` out from now on and forget what was read of it (see the module docstring)."""
        self._disowned.add(sid)
        self._status.pop(sid, None)
        self._emitted.pop(sid, None)
        self._traded.pop(sid, None)
        for exec_id in [e for e, t in self._trades.items() if t.client_order_id == sid]:
            del self._trades[exec_id]

    def trades(self) -> list[FillReport]:
        return list(self._trades.values())

    def status_reports(self) -> list[OrderStatusReport]:
        reports = []
        for sid, row in self._status.items():
            reports.append(
                OrderStatusReport(
                    client_order_id=sid,
                    broker_order_id=row.order_id,
                    symbol=row.symbol,
                    side=row.side,
                    price=row.price,
                    quantity=row.volume,
                    filled_quantity=row.filled,
                    status=ENGINE_STATUS_OF_GM[row.status],
                    reason=reject_reason(row.reject_code, row.reject_detail)
                    if row.status == STATUS_REJECTED
                    else "",
                    ts_event=row.ts_event,
                )
            )
        return reports

    # ------------------------------------------------------------------------------------- status rows
    def on_status(self, row: StatusRow, now: int) -> list[OrderEvent]:
        sid = row.sid
        if not sid:
            return []  # an order not placed through 文件单 (manual, another tool)
        self._seen.add(sid)
        if sid in self._disowned:
            self.stats.disowned_rows += 1
            return []
        if row.status not in ENGINE_STATUS_OF_GM:
            codes = self.stats.unknown_status_codes
            codes[row.status] = codes.get(row.status, 0) + 1
            log.warning("fileorder_unknown_status", sid=sid, status=row.status)
            return []
        known = self._status.get(sid)
        if known is not None and known.cl_ord_id and row.cl_ord_id and row.cl_ord_id != known.cl_ord_id:
            self.stats.foreign_rows += 1
            log.warning("fileorder_foreign_row_ignored", sid=sid, status=row.status, detail=row.reject_detail)
            return []
        if _better(row, known):
            self._status[sid] = row
        ts = row.ts_event or now
        events: list[OrderEvent] = []
        if row.status in _ACKED:
            accepted = OrderAccepted(
                ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, broker_order_id=row.order_id
            )
            self._once(sid, "accepted", accepted, events)
        if row.status == STATUS_CANCELED:
            # the status row's filled column is the terminal's count at the end: its trade rows
            # (execution_report.csv, another file) may be late
            self._end(
                sid,
                OrderCanceled(
                    ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, filled_qty=row.filled
                ),
                events,
            )
        elif row.status == STATUS_REJECTED:
            reason = reject_reason(row.reject_code, row.reject_detail)
            rejected = OrderRejected(
                ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, reason=reason
            )
            self._once(sid, "final", rejected, events)
        elif row.status == STATUS_EXPIRED:
            self._end(
                sid,
                OrderExpired(
                    ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, filled_qty=row.filled
                ),
                events,
            )
        return events

    # ------------------------------------------------------------------------------------- execution rows
    def _with_fees(self, row: ExecRow, now: int) -> ExecRow:
        """``row`` with its fees: as written, or estimated at the rates of the trade's day (the row's time,
        else ``now`` for a row without one; see the module docstring)."""
        value, charged = self._traded.get(row.sid, (0, (0, 0, 0)))
        value += row.price * row.volume
        if row.fees_reported or self.fees is None:
            self._traded[row.sid] = (value, charged)
            return row
        day = self._rules.on(trading_date_of(row.ts_event or now))  # the day's stamp duty and transfer fee
        total = day.fees(self.fees).fees(day.instrument(row.symbol), row.side, value, 1)
        share = tuple(t - c for t, c in zip(total, charged, strict=True))
        self._traded[row.sid] = (value, total)
        self.stats.fees_estimated += 1
        if self.stats.fees_estimated == 1:
            log.info("fileorder_fees_estimated", reason="execution_report.csv has no fee columns")
        return replace(row, commission=share[0], stamp_duty=share[1], transfer_fee=share[2])

    def on_exec(self, row: ExecRow, now: int) -> list[OrderEvent]:
        if row.exec_id in self._exec_ids:
            self.stats.duplicate_exec_rows += 1
            return []
        self._exec_ids.add(row.exec_id)
        sid = row.sid
        if not sid:
            return []
        self._seen.add(sid)
        if sid in self._disowned:
            self.stats.disowned_rows += 1
            return []
        ts = row.ts_event or now
        events: list[OrderEvent] = []
        if row.exec_type == EXEC_TRADE:
            if row.volume > 0:
                row = self._with_fees(row, now)
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
                events.append(
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
        elif row.exec_type == EXEC_CANCEL_REJECTED:
            reason = row.reject_detail or "cancel_rejected"
            events.append(
                OrderCancelRejected(
                    ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, reason=reason
                )
            )
        elif row.exec_type == EXEC_NEW:
            accepted = OrderAccepted(
                ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, broker_order_id=row.order_id
            )
            self._once(sid, "accepted", accepted, events)
        elif row.exec_type == EXEC_CANCELED:
            # an execution row does not count the order's fills: the end says None (held by the engine
            # until the status row, or a query, says the figure)
            self._end(
                sid, OrderCanceled(ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol), events
            )
        elif row.exec_type == EXEC_REJECTED:
            reason = reject_reason(row.reject_code, row.reject_detail)
            rejected = OrderRejected(
                ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol, reason=reason
            )
            self._once(sid, "final", rejected, events)
        elif row.exec_type == EXEC_EXPIRED:
            self._end(
                sid, OrderExpired(ts_event=ts, ts_init=now, client_order_id=sid, symbol=row.symbol), events
            )
        return events

    def _end(self, sid: str, event: OrderCanceled | OrderExpired, out: list[OrderEvent]) -> None:
        """An end, once per sid like every final; again only when a later row says a larger filled
        figure than the end already produced (an execution row's end says none, the status row's does)."""
        seen = self._emitted.setdefault(sid, set())
        if "final" not in seen:
            self._end_filled[sid] = event.filled_qty
            self._once(sid, "final", event, out)
            return
        if sid not in self._end_filled or event.filled_qty is None:
            return  # ended otherwise (rejected), or says nothing new
        said = self._end_filled[sid]
        if said is None or event.filled_qty > said:
            self._end_filled[sid] = event.filled_qty
            out.append(event)

    def _once(self, sid: str, kind: str, event: OrderEvent, out: list[OrderEvent]) -> None:
        seen = self._emitted.setdefault(sid, set())
        if kind not in seen:
            seen.add(kind)
            out.append(event)
