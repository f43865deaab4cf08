"""In-flight checks: orders the broker has not answered are asked about, never resent blindly.

An order SUBMITTED without an ack, or PENDING_CANCEL without an answer, for longer than ``timeout_ns``
is looked up in the broker's order and trade reports (RELIABILITY B1, B8, C4):

- found: the broker's truth is applied (ack, missed fills, cancel, reject, expiry) — resolved by query;
- not found, ``max_queries`` times in a row: a SUBMITTED order is resolved by policy as
  ``OrderRejected(reason="no_response_from_broker", venue_confirmed=False)`` and an alert is logged; a
  PENDING_CANCEL whose order the broker still works gets ``OrderCancelRejected("cancel_unconfirmed")``,
  so its owner may decide again and the OrderManager sends the cancel again on its bounded backoff
  (``engine.cancels``; no cancel storm: one cancel at a time, bounded queries, bounded re-sends).

An order whose pushed end is held because its fills are not all in (``engine.held_ends``) is asked about
the same way, never resolved by policy: the answer's trades and end are merged (which finishes it once
the fills reach the broker's figure), and an answer that keeps disagreeing (more filled than its trades
show, the end not shown) is a difference for the freshness rule.

The same check asks again about every difference the freshness rule is watching (``oms.freshness``,
``engine.freshness``: left by a resync, a reconciliation or an earlier check), when its grace has passed:
the broker's answer is merged forward only, and a difference that persists across the re-queries halts
trading (``HALT_REASON``) and is told to ``on_alert``.

One query per check covers every in-flight order, so the broker sees a bounded message rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.enums import OrderStatus
from zhixing.engine.events import OrderCancelRejected, OrderRejected, OrderStatusReport
from zhixing.engine.freshness import (
    BROKER_WORKING,
    AlertCallback,
    BrokerView,
    Difference,
    differences,
    order_key,
)
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import HALT_REASON, ReconcileReport, adopt_broker_truth, merge_order

log = structlog.get_logger("zhixing.inflight")

END_PUSHED = "end"  # the ``what`` of a held end the broker's answer does not show

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
    requeried: int = 0  # orders (and position sets) asked again for a difference (freshness)
    persistent: list[str] = field(default_factory=list)  # differences that persisted: trading halted


class InflightChecker:
    def __init__(
        self,
        oms: OrderManager,
        adapter: BrokerAdapter,
        *,
        timeout_ns: int = 5_000_000_000,
        max_queries: int = 3,
        on_alert: AlertCallback | None = None,
    ) -> None:
        self.oms = oms
        self.adapter = adapter
        self.timeout_ns = timeout_ns
        self.max_queries = max_queries
        self.on_alert = on_alert
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
        dues = [self.oms.freshness.next_due_ns()]
        if self.oms.in_flight:
            dues.append(min(self.oms.in_flight.values()) + self.timeout_ns)
        return min((d for d in dues if d is not None), default=None)

    async def check(self) -> int:
        """Query the broker about every overdue order and every difference due to be asked again;
        returns how many in-flight orders were resolved."""
        due = self.due()
        tracker = self.oms.freshness
        requery = [cid for cid in tracker.due_orders() if cid not in set(due) and cid in self.oms.orders]
        positions = tracker.positions_due()
        if not due and not requery and not positions:
            return 0
        self.stats.checks += 1
        self.stats.queried += len(due)
        self.stats.requeried += len(requery) + int(positions)
        view = await BrokerView.ask(self.adapter, positions=positions)
        resolved = 0
        scratch = ReconcileReport()
        now = self.oms.clock.now_ns()
        for cid in due:
            order = self.oms.orders[cid]
            status_before = order.status
            known = view.orders.get(cid)
            if cid in self.oms.held_ends:
                resolved += self._held_end(order, known, view, scratch, now)
                continue
            if known is not None:
                adopt_broker_truth(self.oms, order, known, view.trades.get(cid, []), scratch)
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
        for cid in requery:
            merge_order(self.oms, self.oms.orders[cid], view)
        considered = [self.oms.orders[cid] for cid in [*due, *requery]]
        keys, found = differences(self.oms.orders, self.oms.account, view, orders=considered)
        found.extend(held_end_differences(self.oms, considered, view))
        self._judge(keys, found)
        return resolved

    def _held_end(
        self,
        order: Order,
        known: OrderStatusReport | None,
        view: BrokerView,
        scratch: ReconcileReport,
        now: int,
    ) -> int:
        """An order whose pushed end waits for its fills (``engine.held_ends``): the broker's answer is
        merged (its trades, its end with its own figure), which finishes the order once the fills reach
        what the broker counts. Never resolved by policy: the broker said it ended, so the order is
        asked about until its answer agrees or the difference persists (freshness: halt, operator told)."""
        cid = order.client_order_id
        self._misses.pop(cid, None)
        if known is not None:
            adopt_broker_truth(self.oms, order, known, view.trades.get(cid, []), scratch)
        if order.is_terminal:
            self.stats.resolved_by_query += 1
            return 1
        self.oms.in_flight[cid] = now  # its rows (or an answer that says the end) still missing: ask again
        return 0

    def _judge(self, keys: list[str], found: list[Difference]) -> None:
        persistent = self.oms.freshness.observe(keys, found)
        if not persistent:
            return
        lines = [str(d) for d in persistent]
        fresh = [line for line in lines if line not in self.stats.persistent]
        self.stats.persistent.extend(fresh)
        self.oms.halt(HALT_REASON)
        log.error("broker_view_mismatch", differences=lines)
        if fresh and self.on_alert is not None:
            try:
                self.on_alert(
                    "broker view differs",
                    "trading halted: these differences with the broker persisted across re-queries: "
                    + "; ".join(fresh),
                )
            except Exception:  # a notification must never break the engine
                log.exception("alert_callback_failed")

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


def held_end_differences(oms: OrderManager, orders: list[Order], view: BrokerView) -> list[Difference]:
    """For each of ``orders`` whose pushed end is held: the broker's answer does not show that end (the
    order not listed, or still working there). A filled figure above ours is ``order_differences``'."""
    found: list[Difference] = []
    for order in orders:
        held = oms.held_ends.get(order.client_order_id)
        if held is None or order.is_terminal:
            continue
        known = view.orders.get(order.client_order_id)
        if known is None or known.status in BROKER_WORKING:
            found.append(
                Difference(
                    key=order_key(order.client_order_id),
                    what=END_PUSHED,
                    local=f"{type(held.event).__name__} pushed",
                    broker=str(known.status) if known is not None else "not listed",
                )
            )
    return found
