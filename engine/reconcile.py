"""Startup reconciliation (RELIABILITY rules 1-4, scenarios A1-A4, A7, A8).

``recover`` runs at startup, before anything is sent. It rebuilds the OrderManager from the journal,
asks the broker what it knows, and makes every local order agree with the broker's truth:

- an order the broker knows (by client order id) takes the broker's state: the ack (broker order id),
  every trade not yet applied (deduplicated by trade id), then the terminal status;
- an order the broker does not know is EXPIRED if it is from before today (A8), REJECTED
  ``not_found_at_broker`` (policy-resolved, ``venue_confirmed=False``) if it was never acknowledged
  (A1), and a difference otherwise (it was acknowledged: the broker should list it);
- with ``in_flight_grace_ns`` > 0, an order of today the broker does not know yet but which was sent
  (or, INITIALIZED, may have been sent just before the crash) less than that long ago is left in flight
  (``pending``): the in-flight checks (``engine.inflight``) ask again and resolve it by the broker's
  truth or, after bounded queries, by policy. A request still on its way must not be declared never sent
  only to be filled a moment later (RELIABILITY B1);
- broker orders we have no record of are reported as external and never adopted;
- positions are compared with the broker's.

The broker's answer may be older than our journal (a fill pushed just before the crash, a position from
before it): every answer is merged by the one freshness rule of ``engine.freshness`` (forward only; what
still differs is asked again every ``grace_ns``; only a difference that persists across the re-queries is
a mismatch). ``recover`` asks again itself, before anything is sent; ``resync`` and the in-flight checks
leave the asking to the in-flight checks' schedule (``oms.freshness``). Any mismatch halts the
OrderManager (fail closed: nothing new trades until an operator looks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import BrokerError, StoreError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    OrderSubmitted,
)
from zhixing.engine.freshness import BROKER_WORKING, BrokerView, differences
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.store import StateStore

log = structlog.get_logger("zhixing.reconcile")

S = OrderStatus

_OPEN = frozenset({S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
# terminal statuses that still take late fills (fills are facts)
_TAKES_LATE_FILLS = frozenset({S.CANCELED, S.EXPIRED})
# broker statuses that imply the broker acknowledged the order
_ACKED = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.FILLED, S.CANCELED, S.EXPIRED})

NOT_FOUND_REASON = "not_found_at_broker"
HALT_REASON = "reconciliation_mismatch"
REQUERY_ROUNDS = 2  # recover asks again at most this many times the tracker's ``answers``
MAX_UNANSWERED = 24  # re-queries at startup the broker may leave unanswered before recover gives up

Wait = Callable[[int], Awaitable[None]]


@dataclass(slots=True)
class ReconcileReport:
    rebuilt: int = 0  # orders loaded from the journal into the OrderManager
    adopted: list[str] = field(default_factory=list)  # local orders that took the broker's truth
    fills_applied: int = 0
    never_sent: list[str] = field(default_factory=list)  # policy-resolved REJECTED not_found_at_broker
    pending: list[str] = field(default_factory=list)  # unknown yet, sent within the grace: left in flight
    expired: list[str] = field(default_factory=list)  # yesterday's orders the broker no longer lists
    external: list[str] = field(default_factory=list)  # broker client order ids we have no record of
    mismatches: list[str] = field(default_factory=list)  # differences that persisted (halted)
    working_at_broker: list[str] = field(default_factory=list)  # resync: orders the broker still works
    differences: list[str] = field(default_factory=list)  # still differing, not yet persistent: re-asked
    requeries: int = 0  # answers asked for again because something differed

    @property
    def ok(self) -> bool:
        return not self.mismatches


async def recover(
    oms: OrderManager,
    store: StateStore,
    adapter: BrokerAdapter,
    *,
    trading_day_start_ns: int,
    in_flight_grace_ns: int = 0,
    wait: Wait | None = None,
    max_unanswered: int = MAX_UNANSWERED,
) -> ReconcileReport:
    """Rebuild from the journal, reconcile with the broker, halt ``oms`` on any mismatch.

    ``in_flight_grace_ns``: how recent a send the broker may not know yet (see the module docstring);
    0 keeps the strict behaviour (unknown today means never sent). A difference left after the merge is
    asked again (``oms.freshness``: every ``grace_ns``, ``wait(until_ns)`` passing the time, by default the
    clock's ``sleep_until``) until it settles or persists; a re-query the broker does not answer is tried
    again, up to ``max_unanswered`` times, then the ``BrokerError`` is raised."""
    report = ReconcileReport()

    # 1. rebuild
    _rebuild(oms, await store.load_orders(), report)

    # 2. ask the broker
    view = await BrokerView.ask(adapter, positions=True)
    broker_account = await adapter.query_account()

    # 3. every local order against the broker
    _reconcile_orders(oms, view, trading_day_start_ns, in_flight_grace_ns, report)

    # 4. broker orders that are not ours
    report.external = sorted(cid for cid in view.orders if cid not in oms.orders)
    if report.external:
        log.warning("external_orders", count=len(report.external), client_order_ids=report.external)

    # 5. what is left different is asked again until it settles or persists (engine.freshness)
    broker_account = await _requery_until_settled(
        oms,
        adapter,
        view,
        broker_account,
        report,
        trading_day_start_ns=trading_day_start_ns,
        pause=wait or oms.clock.sleep_until,
        max_unanswered=max_unanswered,
    )

    # 6. the account: what still works keeps its cash or shares frozen; cash is the broker's (as of the
    # answer that agreed with us, or the last one)
    _settle_account(oms, broker_account)

    if store.has_staged:
        try:
            await store.commit()
        except StoreError as exc:
            report.mismatches.append(f"journal_write_failed: {exc}")

    if report.mismatches:
        oms.halt(HALT_REASON)
        log.error("reconciliation_mismatch", mismatches=report.mismatches)
    log.info(
        "reconciled",
        rebuilt=report.rebuilt,
        adopted=len(report.adopted),
        fills_applied=report.fills_applied,
        never_sent=len(report.never_sent),
        pending=len(report.pending),
        expired=len(report.expired),
        external=len(report.external),
        requeries=report.requeries,
        differences=len(report.differences),
        mismatches=len(report.mismatches),
    )
    return report


def _rebuild(oms: OrderManager, orders: list[Order], report: ReconcileReport) -> None:
    """Step 1 of ``recover``: every journalled order the OrderManager does not hold yet is adopted."""
    for order in orders:
        if order.client_order_id in oms.orders:
            continue
        oms.adopt(order)
        report.rebuilt += 1


def _reconcile_orders(
    oms: OrderManager,
    view: BrokerView,
    trading_day_start_ns: int,
    in_flight_grace_ns: int,
    report: ReconcileReport,
) -> None:
    """Step 3 of ``recover``: every local order against the broker's answer."""
    for order in list(oms.orders.values()):
        cid = order.client_order_id
        known = view.orders.get(cid)
        if order.status in _OPEN:
            if known is not None:
                adopt_broker_truth(oms, order, known, view.trades.get(cid, []), report)
            elif _within_grace(oms, order, trading_day_start_ns, in_flight_grace_ns):
                _leave_in_flight(oms, order, report)
            else:
                _resolve_unknown(oms, order, trading_day_start_ns, report)
        elif known is not None:
            report.fills_applied += _apply_late_trades(oms, order, view.trades.get(cid, []))


async def _requery_until_settled(
    oms: OrderManager,
    adapter: BrokerAdapter,
    view: BrokerView,
    broker_account: AccountReport,
    report: ReconcileReport,
    *,
    trading_day_start_ns: int,
    pause: Wait,
    max_unanswered: int,
) -> AccountReport:
    """Step 5 of ``recover``: ask the broker again while something still differs, until every
    difference settles or persists (``oms.freshness``), at most ``REQUERY_ROUNDS`` times the tracker's
    ``answers``; the persistent ones become mismatches. Returns the broker's last account answer."""
    tracker = oms.freshness
    unanswered = 0
    not_before = 0
    persistent = tracker.observe(
        *differences(oms.orders, oms.account, view, trading_day_start_ns=trading_day_start_ns)
    )
    while len(persistent) < len(tracker.open) and report.requeries < REQUERY_ROUNDS * tracker.answers:
        due = tracker.next_due_ns()
        assert due is not None
        await pause(max(due, not_before))
        try:
            again = await BrokerView.ask(adapter, positions=True)
            answer = await adapter.query_account()
        except BrokerError as exc:
            unanswered += 1
            not_before = oms.clock.now_ns() + tracker.grace_ns  # no answer: ask again after a grace
            log.warning("reconcile_requery_failed", error=str(exc), attempt=unanswered)
            if unanswered >= max_unanswered:
                raise
            continue
        view, broker_account = again, answer
        report.requeries += 1
        _merge(oms, view, report)
        persistent = tracker.observe(
            *differences(oms.orders, oms.account, view, trading_day_start_ns=trading_day_start_ns)
        )
    report.mismatches.extend(str(d) for d in persistent)
    report.differences = [str(d) for d in tracker.open if d not in persistent]
    return broker_account


def _settle_account(oms: OrderManager, broker_account: AccountReport) -> None:
    """Step 6 of ``recover``: what still works keeps its cash or shares frozen; cash is the broker's."""
    account = oms.account
    if account is None:
        return
    for order in oms.orders.values():
        if order.is_working and not account.is_reserved(order.client_order_id):
            account.reserve(order, order.leaves_quantity)
    if account.cash != broker_account.cash:
        log.info("cash_adopted_from_broker", local=account.cash, broker=broker_account.cash)
        account.cash = broker_account.cash


async def resync(oms: OrderManager, adapter: BrokerAdapter) -> ReconcileReport:
    """After a reconnect (RELIABILITY D1, B4): make every open order agree with the broker's truth.

    The same rules as ``recover`` for what the broker knows (ack, every trade not yet applied, deduplicated
    by trade id, then the terminal status; late fills on CANCELED or EXPIRED orders), without a rebuild:
    the engine kept running. An open order the broker does not list and that it never acknowledged is
    left as it is (``pending``): it may still be on its way, and the in-flight checks ask again and
    resolve it. Positions are not compared here (fills may still be on the wire). A difference left after
    the merge is recorded in ``oms.freshness`` and asked again by the in-flight checks; only one that
    persists halts, as at startup. Raises ``BrokerError`` when a query fails (the link dropped again);
    nothing is changed then."""
    report = ReconcileReport()
    view = await BrokerView.ask(adapter, positions=False)
    for order in list(oms.orders.values()):
        cid = order.client_order_id
        known = view.orders.get(cid)
        if order.status in _OPEN:
            if known is None:
                report.pending.append(cid)
                continue
            adopt_broker_truth(oms, order, known, view.trades.get(cid, []), report)
            if known.status in BROKER_WORKING:
                report.working_at_broker.append(cid)
        elif known is not None:
            report.fills_applied += _apply_late_trades(oms, order, view.trades.get(cid, []))
    report.external = sorted(cid for cid in view.orders if cid not in oms.orders)
    persistent = oms.freshness.observe(*differences(oms.orders, oms.account, view))
    report.mismatches.extend(str(d) for d in persistent)
    report.differences = [str(d) for d in oms.freshness.open if d not in persistent]
    if report.mismatches:
        oms.halt(HALT_REASON)
        log.error("resync_mismatch", mismatches=report.mismatches)
    log.info(
        "resynced",
        adopted=len(report.adopted),
        fills_applied=report.fills_applied,
        pending=len(report.pending),
        working_at_broker=len(report.working_at_broker),
        differences=len(report.differences),
        mismatches=len(report.mismatches),
    )
    return report


def merge_order(
    oms: OrderManager, order: Order, view: BrokerView, report: ReconcileReport | None = None
) -> None:
    """Merge the broker's answer about one order forward (``engine.freshness`` rule 1): an open order
    takes the broker's truth, a terminal one its late trades. An open order the broker does not list is
    left as it is (the in-flight checks follow it: it may still be on its way)."""
    report = report if report is not None else ReconcileReport()
    known = view.orders.get(order.client_order_id)
    trades = view.trades.get(order.client_order_id, [])
    if known is None:
        return
    if order.status in _OPEN:
        adopt_broker_truth(oms, order, known, trades, report)
    else:
        report.fills_applied += _apply_late_trades(oms, order, trades)


def end_earlier_days(
    oms: OrderManager, view: BrokerView, *, trading_day_start_ns: int, report: ReconcileReport
) -> None:
    """The start of a trading day (``engine.trading_day``): every order of an earlier day still open takes
    what the broker says about it (ack, trades, end), and one still open after that ends by the startup
    rules: never sent (INITIALIZED) is REJECTED ``not_found_at_broker``, anything else EXPIRED (A8). A day
    order never outlives its day, also when the broker still lists it as working overnight (a broker
    that has not rolled yet): trades it reports later are still applied (fills are facts)."""
    for order in list(oms.orders.values()):
        if order.status not in _OPEN or order.ts_created >= trading_day_start_ns:
            continue
        cid = order.client_order_id
        if cid in view.orders:
            merge_order(oms, order, view, report)
        if order.status in _OPEN:
            _resolve_unknown(oms, order, trading_day_start_ns, report)


def _merge(oms: OrderManager, view: BrokerView, report: ReconcileReport) -> None:
    """A re-query: merge what the broker now says about every order (forward only)."""
    for order in list(oms.orders.values()):
        merge_order(oms, order, view, report)


def adopt_broker_truth(
    oms: OrderManager,
    order: Order,
    known: OrderStatusReport,
    trades: list[FillReport],
    report: ReconcileReport,
) -> None:
    """An open order takes what the broker's report adds: the ack, the trades not yet applied, the end
    (with the report's filled quantity: held while it is above the trades we hold, ``holds_terminal``).
    Nothing is taken back; what still differs is ``order_differences``."""
    cid, symbol = order.client_order_id, order.symbol
    now = oms.clock.now_ns()
    ts_event = known.ts_event or now
    if order.status is S.INITIALIZED:
        # sent, but the crash came before OrderSubmitted reached the journal
        _apply(oms, OrderSubmitted(ts_event=ts_event, ts_init=now, client_order_id=cid, symbol=symbol))
    if known.status in _ACKED and (order.status is S.SUBMITTED or not order.broker_order_id):
        _apply(
            oms,
            OrderAccepted(
                ts_event=ts_event,
                ts_init=now,
                client_order_id=cid,
                symbol=symbol,
                broker_order_id=known.broker_order_id,
            ),
        )
    report.fills_applied += _apply_trades(oms, order, trades)
    terminal: OrderEvent | None = None
    filled = known.filled_quantity
    if known.status is S.CANCELED:
        terminal = OrderCanceled(
            ts_event=ts_event, ts_init=now, client_order_id=cid, symbol=symbol, filled_qty=filled
        )
    elif known.status is S.REJECTED:
        terminal = OrderRejected(
            ts_event=ts_event, ts_init=now, client_order_id=cid, symbol=symbol, reason=known.reason
        )
    elif known.status is S.EXPIRED:
        terminal = OrderExpired(
            ts_event=ts_event, ts_init=now, client_order_id=cid, symbol=symbol, filled_qty=filled
        )
    if terminal is not None and not order.is_terminal:
        # an end whose filled quantity is above the trades we hold waits for them (``holds_terminal``):
        # the OrderManager holds it, leaves reserved, until the rows are in (``engine.held_ends``)
        _apply(oms, terminal)
    report.adopted.append(cid)


def _apply_late_trades(oms: OrderManager, order: Order, trades: list[FillReport]) -> int:
    """A terminal order's trades the broker lists that we have not applied: late fills on a cancelled or
    expired order are facts (never beyond the order's quantity: an overfill halts the symbol)."""
    if order.status not in _TAKES_LATE_FILLS or not trades:
        return 0
    return _apply_trades(oms, order, trades)


def _apply_trades(oms: OrderManager, order: Order, trades: list[FillReport]) -> int:
    applied = 0
    now = oms.clock.now_ns()
    for trade in sorted(trades, key=lambda t: (t.ts_event, t.trade_id)):
        if trade.trade_id in order.trade_ids:
            continue
        before = len(order.trade_ids)
        oms.on_event(
            OrderFilled(
                ts_event=trade.ts_event,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                trade_id=trade.trade_id,
                side=trade.side,
                price=trade.price,
                quantity=trade.quantity,
                commission=trade.commission,
                stamp_duty=trade.stamp_duty,
                transfer_fee=trade.transfer_fee,
            )
        )
        if len(order.trade_ids) > before:
            applied += 1
    return applied


def _within_grace(oms: OrderManager, order: Order, trading_day_start_ns: int, grace_ns: int) -> bool:
    """Sent (or maybe sent) today, less than ``grace_ns`` ago: the broker may not have it yet."""
    if grace_ns <= 0 or order.status not in (S.INITIALIZED, S.SUBMITTED):
        return False
    return order.ts_created >= trading_day_start_ns and oms.clock.now_ns() - order.ts_updated < grace_ns


def _leave_in_flight(oms: OrderManager, order: Order, report: ReconcileReport) -> None:
    cid = order.client_order_id
    if order.status is S.INITIALIZED:
        # the crash may have come between the send and the journal's SUBMITTED: treat it as sent
        now = oms.clock.now_ns()
        _apply(oms, OrderSubmitted(ts_event=now, ts_init=now, client_order_id=cid, symbol=order.symbol))
    oms.in_flight.setdefault(cid, order.ts_updated)
    report.pending.append(cid)
    log.warning("recovered_in_flight", client_order_id=cid)


def _resolve_unknown(
    oms: OrderManager, order: Order, trading_day_start_ns: int, report: ReconcileReport
) -> None:
    cid, symbol = order.client_order_id, order.symbol
    now = oms.clock.now_ns()
    if order.status is S.INITIALIZED or (
        order.status is S.SUBMITTED and order.ts_created >= trading_day_start_ns
    ):
        # A1: the intent is on disk but the broker never saw it. Policy-resolved, not venue-confirmed.
        # (An INITIALIZED order from yesterday lands here too: INITIALIZED cannot expire.)
        _apply(
            oms,
            OrderRejected(
                ts_event=now,
                ts_init=now,
                client_order_id=cid,
                symbol=symbol,
                reason=NOT_FOUND_REASON,
                venue_confirmed=False,
            ),
        )
        report.never_sent.append(cid)
        log.warning("recovered_never_sent", client_order_id=cid)
    elif order.ts_created < trading_day_start_ns:
        # A8: a day order from a previous session that the broker no longer lists: its day is over and
        # nothing more can be learnt of it (its trades are no longer listed either)
        _apply(
            oms,
            OrderExpired(
                ts_event=now,
                ts_init=now,
                client_order_id=cid,
                symbol=symbol,
                filled_qty=order.filled_quantity,
            ),
        )
        report.expired.append(cid)
    # else: acknowledged today, so the broker should list it: a difference, asked again (freshness)


def _apply(oms: OrderManager, event: OrderEvent) -> None:
    oms.on_event(event)
