"""gm's order and execution reports, mapped onto one engine order's events exactly once.

``ReportMapper`` holds the links (``cl_ord_id`` <-> client order id), holds reports for a ``cl_ord_id`` not
linked yet and replays them at ``link``, deduplicates trades by ``exec_id``, emits each of accepted and
final (canceled / rejected / expired) once per order (an end with the order's ``filled_volume`` as its
``filled_qty``, delivered again only when a later report says a larger figure), and notices a status
that counts more filled shares than the trades seen (a lost execution report), which it reports through
``on_fill_gap``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import structlog

from zhixing.adapters.gm.bridge import Payload
from zhixing.adapters.gm.codes import (
    ACKED_STATUSES,
    ENGINE_STATUS_OF_GM,
    EXEC_CANCEL_REJECTED,
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_TRADE,
    STATUS_CANCELED,
    STATUS_EXPIRED,
    STATUS_REJECTED,
    code,
    reject_reason,
    text,
    timestamp_ns,
)
from zhixing.adapters.gm.reports import GmOrderRow, canonical, order_row, says_more, trade
from zhixing.adapters.gm.stats import GmStats
from zhixing.engine.clock import Clock
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)

log = structlog.get_logger("zhixing.gm")


def reported_filled(payload: Payload) -> int | None:
    """``filled_volume`` of an order report as whole shares; None when the report does not carry a
    usable one (missing, not a whole non-negative number): an end must not be taken to say 0 then."""
    value = payload.get("filled_volume")
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and value >= 0:
        return int(value)
    return None


EXTERNAL_PREFIX = "gm:"
MAX_HELD_REPORTS = 10_000  # reports for cl_ord_ids not linked yet; beyond this the oldest are dropped


class ReportMapper:
    def __init__(
        self,
        clock: Clock,
        account_id: str,
        stats: GmStats,
        deliver: Callable[[OrderEvent], None],
        on_fill_gap: Callable[[], None],
    ) -> None:
        self._clock = clock
        self._account_id = account_id
        self.stats = stats
        self._deliver_to = deliver
        self._on_fill_gap = on_fill_gap
        self.cid_of: dict[str, str] = {}  # cl_ord_id -> client order id
        self.cl_of: dict[str, str] = {}  # client order id -> cl_ord_id
        self.in_resync = False  # replaying queried reports: a gap seen then is not a new loss
        self._orders: dict[str, GmOrderRow] = {}  # cl_ord_id -> the latest that says the most
        self._held: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # cl_ord_id -> [(kind, payload)]
        self._exec_ids: set[str] = set()
        self._emitted: dict[str, set[str]] = {}
        self._filled_seen: dict[str, int] = {}  # cl_ord_id -> shares in trades applied
        self._end_filled: dict[str, int | None] = {}  # client order id -> filled figure its end said

    def client_id(self, cl_ord_id: str) -> str:
        """Our client order id for ``cl_ord_id``, or ``gm:<cl_ord_id>`` for an order we did not place."""
        return self.cid_of.get(cl_ord_id, EXTERNAL_PREFIX + cl_ord_id)

    def link(self, cid: str, cl_ord_id: str) -> None:
        self.cid_of[cl_ord_id] = cid
        self.cl_of[cid] = cl_ord_id
        for kind, payload in self._held.pop(cl_ord_id, []):
            if kind == "order":
                self.on_order(payload)
            else:
                self.on_exec(payload)

    def _hold(self, cl_ord_id: str, kind: str, payload: Payload) -> None:
        self.stats.held_reports += 1
        self._held.setdefault(cl_ord_id, []).append((kind, dict(payload)))
        while sum(len(v) for v in self._held.values()) > MAX_HELD_REPORTS:
            oldest = next(iter(self._held))
            self._held.pop(oldest)
            self.stats.external_reports += 1

    def mine(self, payload: Payload) -> bool:
        account = text(payload.get("account_id"))
        return account in ("", self._account_id)

    # ------------------------------------------------------------------------------------- reports in
    def on_order(self, payload: Payload) -> None:
        if not self.mine(payload):
            return
        try:
            row = order_row(payload)
        except ValueError as exc:
            self.stats.bad_reports += 1
            log.warning("gm_bad_order_report", error=str(exc))
            return
        if not row.cl_ord_id:
            self.stats.bad_reports += 1
            return
        cid = self.cid_of.get(row.cl_ord_id)
        if cid is None:
            self._hold(row.cl_ord_id, "order", payload)
            return
        if row.status not in ENGINE_STATUS_OF_GM:
            self.stats.unknown_status_codes += 1
            log.warning("gm_unknown_status", client_order_id=cid, status=row.status)
            return
        if says_more(row, self._orders.get(row.cl_ord_id)):
            self._orders[row.cl_ord_id] = row
        if row.filled > self._filled_seen.get(row.cl_ord_id, 0) and not self.in_resync:
            # the status counts more shares than the trades we have seen: an execution report was lost
            # (or is still on its way); ask for the day's reports rather than wait for a reconnect
            self.stats.fill_gaps += 1
            self._on_fill_gap()
        symbol = canonical(row.symbol)
        now = self._clock.now_ns()
        ts = row.ts_event or now
        if row.status in ACKED_STATUSES:
            self._once(
                cid,
                "accepted",
                OrderAccepted(
                    ts_event=ts,
                    ts_init=now,
                    client_order_id=cid,
                    symbol=symbol,
                    broker_order_id=row.cl_ord_id,
                ),
            )
        filled = reported_filled(payload)  # the broker's count at the end: its trade rows may be late
        if row.status == STATUS_CANCELED:
            self._end(
                cid,
                OrderCanceled(
                    ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, filled_qty=filled
                ),
            )
        elif row.status == STATUS_REJECTED:
            self._once(
                cid,
                "final",
                OrderRejected(
                    ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, reason=row.reason
                ),
            )
        elif row.status == STATUS_EXPIRED:
            self._end(
                cid,
                OrderExpired(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, filled_qty=filled),
            )

    def on_exec(self, payload: Payload) -> None:
        if not self.mine(payload):
            return
        exec_id = text(payload.get("exec_id"))
        cl_ord_id = text(payload.get("cl_ord_id"))
        if not cl_ord_id:
            self.stats.bad_reports += 1
            return
        if exec_id and exec_id in self._exec_ids:
            self.stats.duplicate_exec_reports += 1
            return
        cid = self.cid_of.get(cl_ord_id)
        if cid is None:
            self._hold(cl_ord_id, "exec", payload)
            return
        exec_type = code(payload.get("exec_type"))
        symbol = canonical(text(payload.get("symbol")))
        now = self._clock.now_ns()
        ts = timestamp_ns(payload.get("created_at")) or now
        reason = reject_reason(
            code(payload.get("ord_rej_reason")), text(payload.get("ord_rej_reason_detail"))
        )
        if exec_type == EXEC_TRADE:
            self._on_trade(payload, cid, now)
            return
        if exec_id:
            self._exec_ids.add(exec_id)
        if exec_type == EXEC_CANCEL_REJECTED:
            self._deliver(
                OrderCancelRejected(
                    ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, reason=reason
                )
            )
        elif exec_type == EXEC_NEW:
            self._once(
                cid,
                "accepted",
                OrderAccepted(
                    ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, broker_order_id=cl_ord_id
                ),
            )
        elif exec_type == EXEC_CANCELED:
            # an execution report does not count the order's fills: the end says None (the engine holds
            # it until its order status, or a query, says the figure)
            self._end(cid, OrderCanceled(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol))
        elif exec_type == EXEC_REJECTED:
            self._once(
                cid,
                "final",
                OrderRejected(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, reason=reason),
            )
        elif exec_type == EXEC_EXPIRED:
            self._end(cid, OrderExpired(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol))

    def _on_trade(self, payload: Payload, cid: str, now: int) -> None:
        fill = trade(payload)
        if fill is None:
            self.stats.bad_reports += 1
            log.warning("gm_bad_trade_report", client_order_id=cid, exec_id=text(payload.get("exec_id")))
            return
        self._exec_ids.add(fill.exec_id)
        self._filled_seen[fill.cl_ord_id] = self._filled_seen.get(fill.cl_ord_id, 0) + fill.volume
        self._deliver(
            OrderFilled(
                ts_event=fill.ts_event or now,
                ts_init=now,
                client_order_id=cid,
                symbol=canonical(fill.symbol),
                trade_id=fill.exec_id,
                side=fill.side,
                price=fill.price,
                quantity=fill.volume,
                commission=fill.commission,
            )
        )

    def _end(self, cid: str, event: OrderCanceled | OrderExpired) -> None:
        """An end, once per order like every final; again only when a later report says a larger
        filled figure than the end already delivered (an execution report's end says none, the order
        status's that follows says it)."""
        seen = self._emitted.setdefault(cid, set())
        if "final" not in seen:
            self._end_filled[cid] = event.filled_qty
            self._once(cid, "final", event)
            return
        if cid not in self._end_filled or event.filled_qty is None:
            return  # ended otherwise (rejected), or says nothing new
        said = self._end_filled[cid]
        if said is None or event.filled_qty > said:
            self._end_filled[cid] = event.filled_qty
            self._deliver(event)

    def _once(self, cid: str, kind: str, event: OrderEvent) -> None:
        seen = self._emitted.setdefault(cid, set())
        if kind not in seen:
            seen.add(kind)
            self._deliver(event)

    def _deliver(self, event: OrderEvent) -> None:
        self._deliver_to(event)
