"""In-flight checks: orders the broker has not answered are asked about, never resent blindly.

An order SUBMITTED without an ack, or PENDING_CANCEL without an answer, for longer than ``timeout_ns``
is looked up in the broker's order and trade reports (RELIABILITY B1, B8, C4):

- found: the broker's truth is applied (ack, missed fills, cancel, reject, expiry) — resolved by query;
- not found, ``max_queries`` times in a row: a SUBMITTED order is resolved by policy as
  ``OrderRejected(reason="no_response_from_broker", venue_confirmed=False)`` and an alert is logged; a
  PENDING_CANCEL whose order the broker still works gets ``OrderCancelRejected("cancel_unconfirmed")``,
  so its owner may decide again (no cancel storm: one cancel, bounded queries).

One query per check covers every in-flight order, so the broker sees a bounded message rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from engine.broker import BrokerAdapter
from engine.enums import OrderStatus
from engine.events import FillReport, OrderCancelRejected, OrderRejected
from engine.oms import OrderManager
from engine.reconcile import ReconcileReport, adopt_broker_truth

log = structlog.get_logger("zhixing.inflight")

NO_RESPONSE = "no_response_from_broker"
CANCEL_UNCONFIRMED = "cancel_unconfirmed"
_WORKING_AT_BROKER = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.SUBMITTED})


@dataclass(slots=True)
class InflightStats:
    checks: int = 0
    queried: int = 0
    resolved_by_query: int = 0
    resolved_by_policy: list[str] = field(default_factory=list)
    cancels_unconfirmed: list[str] = field(default_factory=list)


class InflightChecker:
    def __init__(
        self,
        oms: OrderManager,
        adapter: BrokerAdapter,
        *,
        timeout_ns: int = 5_000_000_000,
        max_queries: int = 3,
    ) -> None:
        self.oms = oms
        self.adapter = adapter
        self.timeout_ns = timeout_ns
        self.max_queries = max_queries
        self.stats = InflightStats()
        self._misses: dict[str, int] = {}

    def due(self) -> list[str]:
        """Client ids waiting longer than the timeout, oldest first."""
        now = self.oms.clock.now_ns()
        return sorted(
            (cid for cid, since in self.oms.in_flight.items() if now - since >= self.timeout_ns),
            key=lambda cid: (self.oms.in_flight[cid], cid),
        )

    def next_due_ns(self) -> int | None:
        if not self.oms.in_flight:
            return None
        return min(self.oms.in_flight.values()) + self.timeout_ns

    async def check(self) -> int:
        """Query the broker about every overdue order; returns how many were resolved."""
        due = self.due()
        if not due:
            return 0
        self.stats.checks += 1
        self.stats.queried += len(due)
        reports = {r.client_order_id: r for r in await self.adapter.query_orders()}
        trades: dict[str, list[FillReport]] = {}
        for trade in await self.adapter.query_trades():
            trades.setdefault(trade.client_order_id, []).append(trade)
        resolved = 0
        scratch = ReconcileReport()
        now = self.oms.clock.now_ns()
        for cid in due:
            order = self.oms.orders[cid]
            status_before = order.status
            known = reports.get(cid)
            if known is not None:
                adopt_broker_truth(self.oms, order, known, trades.get(cid, []), scratch)
                if order.status is OrderStatus.PENDING_CANCEL and known.status in _WORKING_AT_BROKER:
                    resolved += self._miss(cid, now, cancel_pending=True)  # the cancel's answer is missing
                    continue
                self._misses.pop(cid, None)
                if order.status is not status_before or order.is_terminal:
                    resolved += 1
                    self.stats.resolved_by_query += 1
                else:
                    self.oms.in_flight[cid] = now  # known to the broker, not yet acked: wait another period
                continue
            resolved += self._miss(cid, now, cancel_pending=False)
        return resolved

    def _miss(self, cid: str, now: int, *, cancel_pending: bool) -> int:
        misses = self._misses[cid] = self._misses.get(cid, 0) + 1
        order = self.oms.orders[cid]
        if misses < self.max_queries:
            self.oms.in_flight[cid] = now  # ask again after another timeout
            return 0
        self._misses.pop(cid, None)
        if cancel_pending:
            self.oms.on_event(
                OrderCancelRejected(
                    ts_event=now,
                    ts_init=now,
                    client_order_id=cid,
                    symbol=order.symbol,
                    reason=CANCEL_UNCONFIRMED,
                )
            )
            self.stats.cancels_unconfirmed.append(cid)
            log.warning("cancel_unconfirmed", client_order_id=cid, queries=misses)
            return 1
        self.oms.on_event(
            OrderRejected(
                ts_event=now,
                ts_init=now,
                client_order_id=cid,
                symbol=order.symbol,
                reason=NO_RESPONSE,
                venue_confirmed=False,
            )
        )
        self.stats.resolved_by_policy.append(cid)
        log.error("order_resolved_by_policy", client_order_id=cid, reason=NO_RESPONSE, queries=misses)
        return 1
