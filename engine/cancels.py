"""Making cancels stick, and checking by query that they did.

``CancelRetry`` (owned by the ``OrderManager``): a cancel that came back without effect while its order
still works (the venue refused it, the broker answered "not found", or the in-flight checks found it
never confirmed: an ``OrderCancelRejected`` that leaves the order working) is sent again, on a doubling
backoff (``first_backoff_ns``, doubling up to ``max_backoff_ns``), at most ``max_failures`` times. Each
failure also asks the broker about the order at the next in-flight check (``FreshnessTracker.ask_about``:
a "not found" may mean a fill we have not heard of). After the last failure the operator is told
(``on_alert``) and the engine stops asking: the order is theirs to cancel at the terminal. A cancel the
adapter could not even send while the link was down is not a failure here (the connection monitor sends
it again after the resync).

``GoneCheck``: after ``cancel-all``, ``halt`` or at shutdown, whether every order of ours is really gone
at the broker. It waits for the confirmations (up to ``settle_ns``), then asks the broker; an order the
broker still shows working, or that we still think works, is asked about again after the freshness
grace (a stale "working" must not be reported as a survivor), and what is still working after
``answers`` answers is listed (``GoneReport.survivors``). A broker that does not answer is reported as
such: nothing is verified then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import structlog

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import BrokerError, ParameterError
from zhixing.engine.freshness import BROKER_WORKING, AlertCallback, BrokerView, FreshnessTracker
from zhixing.engine.orders import Order
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.cancels")

FIRST_BACKOFF_NS = NS_PER_SECOND
MAX_BACKOFF_NS = 16 * NS_PER_SECOND
MAX_FAILURES = 5
SETTLE_NS = 10 * NS_PER_SECOND
# reasons that are no answer of the broker's: whoever set them sends the cancel again itself
NOT_A_BROKER_ANSWER = frozenset({"cancel_not_sent_while_disconnected"})


class CancelRetry:
    """See the module docstring. ``resend(client_order_id)`` queues the cancel again (``oms.cancel``)."""

    def __init__(
        self,
        clock: Clock,
        resend: Callable[[str], bool],
        freshness: FreshnessTracker | None = None,
        *,
        first_backoff_ns: int = FIRST_BACKOFF_NS,
        max_backoff_ns: int = MAX_BACKOFF_NS,
        max_failures: int = MAX_FAILURES,
        on_alert: AlertCallback | None = None,
    ) -> None:
        if not 0 < first_backoff_ns <= max_backoff_ns or max_failures < 1:
            raise ParameterError(
                "need 0 < first_backoff_ns <= max_backoff_ns and max_failures >= 1, got "
                f"{first_backoff_ns}, {max_backoff_ns}, {max_failures}",
                value=(first_backoff_ns, max_backoff_ns, max_failures),
            )
        self.clock = clock
        self.resend = resend
        self.freshness = freshness
        self.first_backoff_ns = first_backoff_ns
        self.max_backoff_ns = max_backoff_ns
        self.max_failures = max_failures
        self.on_alert = on_alert
        self.failures: dict[str, int] = {}  # client order id -> cancels that came back without effect
        self.failed_total = 0  # cancels that came back without effect, all orders
        self.resent = 0
        self.escalated: list[str] = []
        self._timers: dict[str, TimerHandle] = {}
        self._given_up: set[str] = set()

    def backoff_ns(self, failures: int) -> int:
        """The wait before the re-send that follows the ``failures``-th failure."""
        return int(min(self.first_backoff_ns << (failures - 1), self.max_backoff_ns))

    def failed(self, order: Order, reason: str) -> None:
        """The cancel of ``order`` came back without effect (``OrderCancelRejected``) and it works on."""
        cid = order.client_order_id
        if order.is_terminal or reason in NOT_A_BROKER_ANSWER or cid in self._given_up:
            return  # (given up: told once; a cancel someone sends later goes once, not on a backoff)
        failures = self.failures[cid] = self.failures.get(cid, 0) + 1
        self.failed_total += 1
        if self.freshness is not None:
            self.freshness.ask_about(cid, reason)
        if failures > self.max_failures:
            self._escalate(order, failures - 1, reason)
            return
        wait = self.backoff_ns(failures)
        log.warning(
            "cancel_failed_will_resend", client_order_id=cid, reason=reason, failures=failures, wait_ns=wait
        )
        previous = self._timers.pop(cid, None)
        if previous is not None:
            previous.cancel()
        self._timers[cid] = self.clock.call_at(
            self.clock.now_ns() + wait, partial(self._due, cid), "oms:cancel_resend"
        )

    def ended(self, client_order_id: str) -> None:
        """The order is terminal: nothing more to cancel."""
        timer = self._timers.pop(client_order_id, None)
        if timer is not None:
            timer.cancel()
        self.failures.pop(client_order_id, None)

    @property
    def waiting(self) -> list[str]:
        """Orders whose cancel is due to be sent again."""
        return sorted(self._timers)

    def _due(self, cid: str) -> None:
        self._timers.pop(cid, None)
        if self.resend(cid):  # False: terminal meanwhile, or someone already cancelled it again
            self.resent += 1

    def _escalate(self, order: Order, failures: int, reason: str) -> None:
        cid = order.client_order_id
        self.failures.pop(cid, None)
        self.escalated.append(cid)
        self._given_up.add(cid)
        log.error("cancel_not_effective", client_order_id=cid, failures=failures, reason=reason)
        if self.on_alert is None:
            return
        try:
            self.on_alert(
                "cancel not effective",
                f"order {cid} ({order.symbol} {order.side} {order.filled_quantity}/{order.quantity}, "
                f"{order.status}) still works after {failures} cancel attempts (last answer: {reason}); "
                "zhixing stops asking: cancel it at the broker's terminal",
            )
        except Exception:  # a notification must never break the engine
            log.exception("alert_callback_failed")


# ---------------------------------------------------------------------------------------- verification
@dataclass(frozen=True, slots=True, kw_only=True)
class Survivor:
    """An order of ours that still works after a cancel-all, a halt or a shutdown."""

    client_order_id: str
    symbol: str
    side: str
    quantity: int
    filled: int
    local: str  # our status
    broker: str  # the broker's status, or "not listed"

    def __str__(self) -> str:
        return (
            f"{self.client_order_id} {self.symbol} {self.side} {self.filled}/{self.quantity} "
            f"(local {self.local}, broker {self.broker})"
        )


@dataclass(slots=True, kw_only=True)
class GoneReport:
    what: str  # "halt", "cancel-all", "shutdown"
    started_ns: int
    finished_ns: int = 0
    answers: int = 0  # broker answers read
    checked: int = 0  # our orders the last answer covered
    survivors: list[Survivor] = field(default_factory=list)
    error: str = ""  # the broker did not answer: nothing was verified

    @property
    def ok(self) -> bool:
        return not self.survivors and not self.error

    def headline(self) -> str:
        if self.error:
            return f"{self.what}: NOT verified, the broker did not answer ({self.error})"
        if not self.survivors:
            return f"{self.what}: verified by query, no order of ours works at the broker"
        return f"{self.what}: {len(self.survivors)} order(s) still working after {self.answers} queries"

    def summary(self) -> str:
        """The headline and every order still working (for a notification)."""
        if not self.survivors:
            return self.headline()
        return self.headline() + ": " + "; ".join(str(s) for s in self.survivors)

    def to_record(self) -> dict[str, object]:
        return {
            "what": self.what,
            "started_ns": self.started_ns,
            "finished_ns": self.finished_ns,
            "ok": self.ok,
            "answers": self.answers,
            "error": self.error,
            "survivors": [str(s) for s in self.survivors],
            "headline": self.headline(),
            "summary": self.summary(),
        }


class GoneCheck:
    """Verifies by query that every order of ``orders`` is gone at the broker (module docstring).
    Driven by ``poll()``: call it on each pass of the driver (the control channel's poll, the shutdown
    loop); it returns the ``GoneReport`` once done, None meanwhile."""

    def __init__(
        self,
        what: str,
        orders: Callable[[], dict[str, Order]],
        adapter: BrokerAdapter,
        clock: Clock,
        *,
        grace_ns: int,
        answers: int,
        settle_ns: int = SETTLE_NS,
        merge: Callable[[Order, BrokerView], None] | None = None,
    ) -> None:
        self.what = what
        self.orders = orders
        self.adapter = adapter
        self.clock = clock
        self.grace_ns = grace_ns
        self.answers = answers
        self.merge = merge  # merges an answer's report of one order forward (reconcile.merge_order)
        now = clock.now_ns()
        self.settle_until = now + settle_ns
        self.report = GoneReport(what=what, started_ns=now)
        self._next_ns = now
        self._failures = 0
        self.done = False

    def next_due_ns(self) -> int | None:
        if self.done:
            return None
        if self._working_here() and self.report.answers == 0:
            return max(self.settle_until, self._next_ns)  # waiting for the confirmations
        return self._next_ns

    def _working_here(self) -> list[Order]:
        return [o for o in self.orders().values() if o.is_working or o.status is OrderStatus.INITIALIZED]

    async def poll(self) -> GoneReport | None:
        if self.done:
            return self.report
        now = self.clock.now_ns()
        if now < self._next_ns or (
            self.report.answers == 0 and now < self.settle_until and self._working_here()
        ):
            return None
        try:
            reports = {r.client_order_id: r for r in await self.adapter.query_orders()}
            trades = await self.adapter.query_trades()
        except BrokerError as exc:
            self._failures += 1
            log.warning("cancel_check_query_failed", what=self.what, error=str(exc), attempt=self._failures)
            if self._failures >= self.answers:
                self.report.error = f"{type(exc).__name__}: {exc}"
                self.report.survivors = [_survivor(o, None) for o in self._working_here()]
                return self._finish()
            self._next_ns = now + self.grace_ns
            return None
        self.report.answers += 1
        ours = self.orders()
        if self.merge is not None:
            view = BrokerView(orders=reports, trades={})
            for trade in trades:
                view.trades.setdefault(trade.client_order_id, []).append(trade)
            for cid in sorted(set(reports) & set(ours)):
                self.merge(ours[cid], view)
        survivors: list[Survivor] = []
        for cid, order in sorted(ours.items()):
            known = reports.get(cid)
            if known is not None and known.status in BROKER_WORKING:
                survivors.append(_survivor(order, str(known.status)))
            elif order.is_working or order.status is OrderStatus.INITIALIZED:
                survivors.append(_survivor(order, str(known.status) if known is not None else "not listed"))
        self.report.checked = len(set(reports) & set(ours))
        self.report.survivors = survivors
        if not survivors or self.report.answers >= self.answers:
            return self._finish()
        self._next_ns = now + self.grace_ns  # asked again: a stale "working" settles, a real one stays
        return None

    def _finish(self) -> GoneReport:
        self.done = True
        self.report.finished_ns = self.clock.now_ns()
        if self.report.ok:
            log.info("cancel_check_ok", what=self.what, answers=self.report.answers)
        else:
            log.error("cancel_check_survivors", what=self.what, summary=self.report.summary())
        return self.report


def _survivor(order: Order, broker: str | None) -> Survivor:
    return Survivor(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=str(order.side),
        quantity=order.quantity,
        filled=order.filled_quantity,
        local=str(order.status),
        broker=broker or "unknown",
    )
