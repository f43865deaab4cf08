"""One freshness rule for a broker's answer that may be older than what we know.

A broker answers a query (its orders, its trades, its positions) from a view taken some time before we
read it, while our own view moves on with every push: a snapshot can show an order with fewer shares
filled than the fill we already applied, a position from before a buy, an order still working that we
know is filled or cancelled. Reconciliation at start (``engine.reconcile.recover``), the resync after a
reconnect (``engine.reconcile.resync``) and the in-flight checks (``engine.inflight``) merge every answer
by the same three rules, all of them here:

1. **Forward only** (``adopt``-side, in ``engine.reconcile.adopt_broker_truth``, with ``holds_terminal``
   from here): what an answer adds is applied (the ack, trades not yet applied, by trade id, a terminal
   status for an open order); nothing is taken back. A filled quantity or a position never decreases
   because a snapshot shows less, and a terminal status we know is never undone by a snapshot that shows
   the order working. A terminal status (cancelled, expired) whose filled quantity is above the fills we
   hold is **not applied yet**: its trade rows are on their way (a cancel confirmed ahead of its fill), and
   until they are in the order stays open with its leaves reserved, so nothing is sized from a number that
   is about to change, and the late fill is applied once, never beyond the order's quantity. The
   OrderManager holds a pushed end by the same rule (``engine.held_ends``).
2. **What still differs is asked again**: ``order_differences`` and ``position_differences`` name every
   difference left after the merge; a ``FreshnessTracker`` records when each was first seen and when the
   next question is due (``grace_ns`` after the last answer).
3. **Halt only on a difference that persists**: one seen in ``answers`` answers in a row spanning at
   least ``(answers - 1) * grace_ns``. A lagging side that reaches what the other side showed when the
   difference was first seen settles it, even if a newer difference opens meanwhile: an order that keeps
   filling is followed by a stale view that moves on behind ours; it is not stuck.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from zhixing.engine.account import Account
from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import ParameterError
from zhixing.engine.events import FillReport, OrderStatusReport
from zhixing.engine.held_ends import end_waits
from zhixing.engine.orders import Order
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.freshness")

S = OrderStatus

DEFAULT_GRACE_NS = 3 * NS_PER_SECOND
DEFAULT_ANSWERS = 3

# statuses in which the broker still works an order
BROKER_WORKING = frozenset({S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
_BROKER_FINAL = frozenset({S.CANCELED, S.REJECTED, S.EXPIRED, S.FILLED})
# terminal statuses a snapshot brings that still take fills (a late fill is a fact)
_HOLDABLE = frozenset({S.CANCELED, S.EXPIRED})
# open local statuses that say the broker acknowledged the order: it must be in the broker's answer
_ACKED_LOCALLY = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
ASKED = "answer"  # the ``what`` of an ``ask_about`` watch: settled by the next answer about the order
NOT_LISTED = "not listed"

AlertCallback = Callable[[str, str], None]
"""``alert(title, body)``: something the operator must hear about now (a notification)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One thing a broker's answer and our books still disagree on, after the forward-only merge.

    ``local`` and ``broker`` are quantities (shares) or statuses; for quantities, ``broker_behind`` says
    the broker shows less than we applied (its view is older than ours, most likely)."""

    key: str  # "order Z000000001", "position 600000.SH"
    what: str  # "filled", "status", "listed", "quantity"
    local: int | str
    broker: int | str

    @property
    def broker_behind(self) -> bool:
        return isinstance(self.local, int) and isinstance(self.broker, int) and self.broker < self.local

    def __str__(self) -> str:
        return f"{self.key} {self.what}: local={self.local} broker={self.broker}"


def order_key(client_order_id: str) -> str:
    return f"order {client_order_id}"


def position_key(symbol: str) -> str:
    return f"position {symbol}"


def holds_terminal(order: Order, report: OrderStatusReport) -> bool:
    """True when ``report``'s terminal status must wait: it says more shares filled than we hold fills
    for (the trade rows are late), so applying it now would release leaves that are about to fill. The
    OrderManager applies the same rule to every end, pushed or from an answer (``engine.held_ends``)."""
    return report.status in _HOLDABLE and end_waits(order, report.filled_quantity)


def order_differences(order: Order, report: OrderStatusReport | None) -> list[Difference]:
    """What still differs between ``order`` (after the merge) and the broker's ``report`` of it
    (None: the broker does not list it)."""
    key = order_key(order.client_order_id)
    if report is None:
        return [Difference(key=key, what="listed", local=str(order.status), broker=NOT_LISTED)]
    found: list[Difference] = []
    if report.filled_quantity != order.filled_quantity:
        found.append(
            Difference(key=key, what="filled", local=order.filled_quantity, broker=report.filled_quantity)
        )
    if order.is_terminal and report.status in BROKER_WORKING:
        # a stale "working" for an order we know ended: kept ended, asked again
        found.append(Difference(key=key, what="status", local=str(order.status), broker=str(report.status)))
    elif report.status in _BROKER_FINAL and order.status is not report.status and not found:
        # ended differently at the broker (or an end we could not apply): the filled difference, if
        # any, says why; otherwise the statuses themselves disagree
        found.append(Difference(key=key, what="status", local=str(order.status), broker=str(report.status)))
    return found


def position_differences(local: Mapping[str, int], broker: Mapping[str, int]) -> list[Difference]:
    """Every symbol whose quantity differs (a symbol absent on one side counts as 0)."""
    return [
        Difference(key=position_key(symbol), what="quantity", local=local.get(symbol, 0), broker=theirs)
        for symbol in sorted(set(local) | set(broker))
        if local.get(symbol, 0) != (theirs := broker.get(symbol, 0))
    ]


@dataclass(slots=True)
class BrokerView:
    """One answer of the broker: its orders by client order id, its trades by client order id, and (when
    asked) its positions."""

    orders: dict[str, OrderStatusReport]
    trades: dict[str, list[FillReport]]
    positions: dict[str, int] | None = None

    @classmethod
    async def ask(cls, adapter: BrokerAdapter, *, positions: bool) -> BrokerView:
        orders = {r.client_order_id: r for r in await adapter.query_orders()}
        trades: dict[str, list[FillReport]] = {}
        for trade in await adapter.query_trades():
            trades.setdefault(trade.client_order_id, []).append(trade)
        held = {p.symbol: p.quantity for p in await adapter.query_positions()} if positions else None
        return cls(orders=orders, trades=trades, positions=held)


def differences(
    orders_by_id: Mapping[str, Order],
    account: Account | None,
    view: BrokerView,
    *,
    orders: Iterable[Order] | None = None,
    trading_day_start_ns: int | None = None,
) -> tuple[list[str], list[Difference]]:
    """What ``view`` covers and what still differs, for ``orders`` (default: every order) and, when the
    view has positions, every symbol either side holds. An order the broker does not list differs only
    if it should be listed: open and acknowledged (of today, when ``trading_day_start_ns`` is given)."""
    keys: list[str] = []
    found: list[Difference] = []
    for order in orders_by_id.values() if orders is None else orders:
        cid = order.client_order_id
        keys.append(order_key(cid))
        known = view.orders.get(cid)
        if known is not None:
            found.extend(order_differences(order, known))
        elif _should_be_listed(order, trading_day_start_ns):
            found.extend(order_differences(order, None))
    if view.positions is not None and account is not None:
        local = {s: p.quantity for s, p in account.positions.items()}
        keys.extend(position_key(s) for s in set(local) | set(view.positions))
        found.extend(position_differences(local, view.positions))
    return keys, found


def _should_be_listed(order: Order, trading_day_start_ns: int | None) -> bool:
    """An open order the broker acknowledged must be in its answer."""
    if order.status not in _ACKED_LOCALLY:
        return False
    return trading_day_start_ns is None or order.ts_created >= trading_day_start_ns


@dataclass(slots=True)
class _Watch:
    first: Difference  # as first seen (what the lagging side must reach)
    first_ns: int
    last_ns: int
    answers: int
    latest: Difference | None = None  # as the last answer showed it (None: as first seen)


class FreshnessTracker:
    """The differences still being asked about: when each was first seen, how many answers showed it,
    when the next question is due. ``observe`` is fed each answer; it returns the differences that
    persisted (rule 3 of the module docstring)."""

    def __init__(
        self, clock: Clock, *, grace_ns: int = DEFAULT_GRACE_NS, answers: int = DEFAULT_ANSWERS
    ) -> None:
        if grace_ns <= 0 or answers < 1:
            raise ParameterError(
                f"need grace_ns > 0 and answers >= 1, got {grace_ns} and {answers}", value=(grace_ns, answers)
            )
        self.clock = clock
        self.grace_ns = grace_ns
        self.answers = answers
        self._watch: dict[tuple[str, str], _Watch] = {}
        self.seen = 0  # differences first seen
        self.settled = 0  # ... that went away when asked again
        self.persisted: list[Difference] = []  # ... that did not (each halted trading)

    @property
    def open(self) -> list[Difference]:
        return [w.first for w in self._watch.values()]

    def __bool__(self) -> bool:
        return bool(self._watch)

    def observe(self, looked_at: Iterable[str], differences: Iterable[Difference]) -> list[Difference]:
        """One answer: ``looked_at`` are the keys it covered, ``differences`` what still differs among
        them. A watched key the answer covered without a difference is settled. Returns the differences
        that persisted (they stay watched until an answer settles them)."""
        now = self.clock.now_ns()
        current = {(d.key, d.what): d for d in differences}
        covered = set(looked_at) | {d.key for d in current.values()}
        for pair in [p for p in self._watch if p[0] in covered and p not in current]:
            del self._watch[pair]
            self.settled += pair[1] != ASKED
        persistent: list[Difference] = []
        for pair, diff in current.items():
            watch = self._watch.get(pair)
            if watch is None or _caught_up(watch.first, diff):
                if watch is not None:
                    self.settled += 1
                self._watch[pair] = _Watch(first=diff, first_ns=now, last_ns=now, answers=1)
                self.seen += 1
                log.info("broker_view_differs", difference=str(diff))
            elif now > watch.last_ns:  # a new answer (two looks at one instant count once)
                watch.answers += 1
                watch.last_ns = now
            watch = self._watch[pair]
            watch.latest = diff
            if watch.answers >= self.answers and now - watch.first_ns >= (self.answers - 1) * self.grace_ns:
                persistent.append(diff)
        for diff in persistent:
            if all(str(diff) != str(p) for p in self.persisted):
                self.persisted.append(diff)
                log.error("broker_view_difference_persists", difference=str(diff), answers=self.answers)
        return persistent

    def ask_about(self, client_order_id: str, why: str) -> None:
        """Ask the broker about an order at the next check after the grace (a cancel answered "not
        found": a fill we have not heard of?); the next answer covering the order settles it."""
        pair = (order_key(client_order_id), ASKED)
        if pair not in self._watch:
            now = self.clock.now_ns()
            diff = Difference(key=pair[0], what=ASKED, local="working", broker=why)
            self._watch[pair] = _Watch(first=diff, first_ns=now, last_ns=now, answers=1)

    def next_due_ns(self) -> int | None:
        """When the next question is due (None: nothing is watched)."""
        if not self._watch:
            return None
        return min(w.last_ns for w in self._watch.values()) + self.grace_ns

    def due_orders(self) -> list[str]:
        """Client order ids with a watched difference whose next question is due now."""
        now = self.clock.now_ns()
        prefix = order_key("")
        return sorted(
            {
                key[len(prefix) :]
                for (key, _), watch in self._watch.items()
                if key.startswith(prefix) and now - watch.last_ns >= self.grace_ns
            }
        )

    def positions_due(self) -> bool:
        """A watched position difference is due to be asked again."""
        now = self.clock.now_ns()
        prefix = position_key("")
        return any(
            key.startswith(prefix) and now - watch.last_ns >= self.grace_ns
            for (key, _), watch in self._watch.items()
        )

    def position_differences(self) -> list[Difference]:
        """The position differences that persisted and are still watched (latest answer's figures)."""
        prefix = position_key("")
        persisted = {(p.key, p.what) for p in self.persisted}
        return [
            w.latest or w.first
            for pair, w in self._watch.items()
            if pair[0].startswith(prefix) and pair[1] == "quantity" and pair in persisted
        ]

    def accept(self, diff: Difference) -> None:
        """The operator took the broker's side of ``diff``: no longer watched, no longer persisting."""
        self._watch.pop((diff.key, diff.what), None)
        self.persisted = [p for p in self.persisted if (p.key, p.what) != (diff.key, diff.what)]

    def watched_keys(self) -> set[str]:
        return {key for key, _ in self._watch}


def _caught_up(first: Difference, now: Difference) -> bool:
    """The side that lagged when ``first`` was seen has since reached what the other side showed then."""
    if not all(isinstance(v, int) for v in (first.local, first.broker, now.local, now.broker)):
        return False
    lo, bo, ln, bn = int(first.local), int(first.broker), int(now.local), int(now.broker)
    return (bo < lo and bn >= lo) or (bo > lo and ln >= bo)
