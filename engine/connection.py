"""The broker link going down and coming back (RELIABILITY D1-D3).

An adapter tells a ``ConnectionMonitor`` ``connected(False, reason)`` when its link drops and
``connected(True)`` when it is back: through ``set_connection_listener`` if it has one
(``ReportsConnection``), or the monitor polls its ``connected`` flag (``watch``; the QMT and gm adapters
have one).

- **Down** (D1, D2): every new order is denied locally with the reason ``broker_disconnected`` (a
  pre-trade check, first in the OrderManager's chain: no silent queue, nothing replayed later); cancels
  still go to the adapter, which refuses them while down: the monitor remembers each of them. Every
  running algorithm is paused (its children are cancelled, no slicing), so none is stopped by the
  repeated-denial breaker; an algorithm that asks for a child while down (one that joined or was resumed
  by someone else) is paused at its first denial. The monitor resumes only what it paused.
- **Up**: first a full resynchronisation with the broker (``engine.reconcile.resync``: its orders and
  trades, the truth adopted for every open order, fills deduplicated by trade id — the adapter re-pushes
  the day's trades too), the cancels refused while down sent again for the orders the broker still works,
  then the denial is lifted and the paused algorithms resume (they re-plan what is left over the slices
  ahead: no catch-up burst; the rate caps apply as always). In a live session the resync runs as a task
  (``auto_resync``); a replay calls ``settle()`` after each clock step, so everything stays on the clock.
- **Flapping** (D3): each drop from a working (or resynchronising) link is one incident, logged and
  counted once however many times the adapter repeats itself, with at most one ``on_incident`` call
  (for a notification). Backoff between reconnect attempts is the adapter's (QMT: doubling with jitter).

``LinkAwareInflightChecker`` is the in-flight checker that does not query a broker that is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import structlog

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.enums import OrderStatus
from zhixing.engine.errors import BrokerError
from zhixing.engine.events import OrderCancelRejected, OrderDenied, OrderPendingCancel
from zhixing.engine.freshness import AlertCallback
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reasons import Denial, DenialCode, Unfilled, UnfilledCode
from zhixing.engine.reconcile import ReconcileReport, resync

log = structlog.get_logger("zhixing.connection")

DISCONNECTED = Denial(DenialCode.BROKER_DISCONNECTED)
CANCEL_NOT_SENT_REASON = "cancel_not_sent_while_disconnected"
RESYNC_RETRY_NS = 1_000_000_000
WATCH_INTERVAL_NS = 1_000_000_000


class LinkState(StrEnum):
    UP = "UP"
    DOWN = "DOWN"
    RESYNCING = "RESYNCING"  # the adapter is back; the engine is not yet in step with the broker


@dataclass(slots=True)
class LinkGate:
    """The broker link's pre-trade check: nothing new goes to a broker we are not in step with.

    Built before the OrderManager (one of the checks it is constructed with); the ``ConnectionMonitor``
    moves its state."""

    state: LinkState = LinkState.UP

    def check(self, order: Order) -> Denial | None:
        return None if self.state is LinkState.UP else DISCONNECTED


ConnectionListener = Callable[..., None]
"""``listener(connected: bool, reason: str = "")``."""


@runtime_checkable
class ReportsConnection(Protocol):
    """An adapter that pushes its link state (``listener(False, reason)``, ``listener(True)``)."""

    def set_connection_listener(self, listener: ConnectionListener | None) -> None: ...


class Pausable(Protocol):
    """What the monitor needs of an algorithm (``algos.base.ExecAlgo`` has it)."""

    @property
    def done(self) -> bool: ...

    @property
    def paused(self) -> bool: ...

    def pause(self, why: Unfilled | None = None) -> None: ...

    def resume(self) -> None: ...


@dataclass(slots=True)
class ConnectionIncident:
    """One drop of the link, from the first ``connected(False)`` until trading resumed."""

    number: int
    down_ns: int
    reason: str
    up_ns: int | None = None  # the adapter said it is back
    resumed_ns: int | None = None  # resynchronised, denial lifted, algorithms resumed
    algos_paused: int = 0
    algos_resumed: int = 0
    orders_denied: int = 0
    cancels_refused: int = 0  # cancels the adapter could not send while down
    cancels_resent: int = 0
    orders_adopted: int = 0  # open orders that took the broker's truth at the resync
    fills_applied: int = 0  # trades the resync found that no push had delivered


@dataclass(slots=True)
class ConnectionCounters:
    incidents: int = 0
    repeated_notices: int = 0  # "down" while already down, "up" while up: ignored
    resyncs: int = 0
    resync_failures: int = 0


IncidentCallback = Callable[[ConnectionIncident], None]


class ConnectionMonitor:
    def __init__(
        self,
        oms: OrderManager,
        algos: Mapping[str, Pausable],
        *,
        link: LinkGate,
        adapter: BrokerAdapter | None = None,
        clock: Clock | None = None,
        on_incident: IncidentCallback | None = None,
        auto_resync: bool = False,
    ) -> None:
        self.oms = oms
        self.algos = algos  # parent id -> algorithm, read live (e.g. an ``AlgoDirectory``)
        self.adapter = adapter or oms.adapter
        self.clock = clock or oms.clock
        self.on_incident = on_incident
        self.auto_resync = auto_resync
        self.link = link  # the OrderManager's check: its state is the link's
        self.counters = ConnectionCounters()
        self.incidents: list[ConnectionIncident] = []
        self.paused_by_monitor: set[str] = set()
        self.last_resync: ReconcileReport | None = None
        self._cancels_refused: set[str] = set()
        self._resync_due = False
        self._lock = asyncio.Lock()
        self._retry: TimerHandle | None = None
        self._watch: TimerHandle | None = None
        self._tasks: set[asyncio.Task[bool]] = set()
        oms.bus.subscribe(OrderDenied, self._on_denied)
        oms.bus.subscribe(OrderPendingCancel, self._on_pending_cancel)

    @property
    def state(self) -> LinkState:
        return self.link.state

    @state.setter
    def state(self, value: LinkState) -> None:
        self.link.state = value

    @property
    def up(self) -> bool:
        return self.state is LinkState.UP

    @property
    def incident(self) -> ConnectionIncident | None:
        """The incident in progress (not yet resumed), if any."""
        if self.incidents and self.incidents[-1].resumed_ns is None:
            return self.incidents[-1]
        return None

    # ------------------------------------------------------------------------------------- told
    def connected(self, up: bool, reason: str = "") -> None:
        """The adapter's listener (call on the loop thread)."""
        if up:
            self._on_up()
        else:
            self._on_down(reason or "link_dropped")

    def _on_down(self, reason: str) -> None:
        if self.state is LinkState.DOWN:
            self.counters.repeated_notices += 1
            return
        now = self.clock.now_ns()
        was_up = self.state is LinkState.UP
        self.state = LinkState.DOWN
        self._resync_due = False
        self.counters.incidents += 1
        incident = ConnectionIncident(number=self.counters.incidents, down_ns=now, reason=reason)
        self.incidents.append(incident)
        if was_up:
            for parent_id in list(self.algos):
                self._pause(parent_id, incident)
        else:  # dropped again before the resync finished: still paused, still denied
            incident.algos_paused = len(self.paused_by_monitor)
        log.warning(
            "broker_disconnected", incident=incident.number, reason=reason, algos_paused=incident.algos_paused
        )
        if self.on_incident is not None:
            try:
                self.on_incident(incident)
            except Exception:  # a notification must never break the engine
                log.exception("incident_callback_failed", incident=incident.number)

    def _on_up(self) -> None:
        if self.state is not LinkState.DOWN:
            self.counters.repeated_notices += 1
            return
        self.state = LinkState.RESYNCING
        incident = self.incidents[-1]
        incident.up_ns = self.clock.now_ns()
        self._resync_due = True
        log.info("broker_reconnected", incident=incident.number, down_ns=incident.up_ns - incident.down_ns)
        if self.auto_resync:
            self._spawn()

    def _spawn(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: whoever drives the engine calls settle()
        task = loop.create_task(self.settle(), name="connection:resync")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task_failed", task=task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------------------------- while down
    def _on_denied(self, event: OrderDenied) -> None:
        if event.code is not DenialCode.BROKER_DISCONNECTED:
            return
        incident = self.incident
        if incident is not None:
            incident.orders_denied += 1
        order = self.oms.orders.get(event.client_order_id)
        if order is not None and order.parent_id and incident is not None:
            self._pause(order.parent_id, incident)

    def _on_pending_cancel(self, event: OrderPendingCancel) -> None:
        if self.state is LinkState.DOWN:  # the adapter refuses it: it never reaches the broker
            self._cancels_refused.add(event.client_order_id)
            incident = self.incident
            if incident is not None:
                incident.cancels_refused += 1

    def _pause(self, parent_id: str, incident: ConnectionIncident) -> None:
        algo = self.algos.get(parent_id)
        if algo is None or algo.done or algo.paused:
            return
        algo.pause(Unfilled(UnfilledCode.PAUSED, "broker link down"))
        self.paused_by_monitor.add(parent_id)
        incident.algos_paused += 1
        log.warning("algo_paused_broker_disconnected", parent_id=parent_id)

    # ------------------------------------------------------------------------------------- back up
    async def settle(self) -> bool:
        """Run a due resynchronisation now; True when the link is up and trading has resumed."""
        async with self._lock:
            while self._resync_due and self.state is LinkState.RESYNCING:
                self._resync_due = False
                try:
                    report = await resync(self.oms, self.adapter)
                except Exception as exc:  # BrokerError, or an answer the route could not read: unanswered
                    self.counters.resync_failures += 1
                    if isinstance(exc, BrokerError):
                        log.warning("resync_failed", error=str(exc))
                    else:  # a malformed row (a route bug or a broker change): asked again, and logged loud
                        log.error(
                            "resync_answer_unreadable", error=f"{type(exc).__name__}: {exc}", exc_info=exc
                        )
                    if self.state is LinkState.RESYNCING:
                        self._arm_retry()
                    return False
                self.counters.resyncs += 1
                if self.state is not LinkState.RESYNCING or self._resync_due:
                    continue  # dropped (and maybe back) while we asked: that truth may be stale
                self._resume(report)
            return self.state is LinkState.UP

    def _arm_retry(self) -> None:
        if self._retry is not None and not self._retry.cancelled:
            return
        self._retry = self.clock.call_at(
            self.clock.now_ns() + RESYNC_RETRY_NS, self._retry_due, "connection:resync_retry"
        )

    def _retry_due(self) -> None:
        self._retry = None
        if self.state is LinkState.RESYNCING:
            self._resync_due = True
            if self.auto_resync:
                self._spawn()

    def _resume(self, report: ReconcileReport) -> None:
        incident = self.incidents[-1]
        self.last_resync = report
        incident.orders_adopted += len(report.adopted)
        incident.fills_applied += report.fills_applied
        incident.cancels_resent += self._resend_refused_cancels(set(report.working_at_broker))
        self.state = LinkState.UP
        for parent_id in sorted(self.paused_by_monitor):
            algo = self.algos.get(parent_id)
            if algo is not None and not algo.done and algo.paused:
                algo.resume()
                incident.algos_resumed += 1
        self.paused_by_monitor.clear()
        incident.resumed_ns = self.clock.now_ns()
        log.info(
            "trading_resumed_after_reconnect",
            incident=incident.number,
            down_ns=incident.resumed_ns - incident.down_ns,
            orders_adopted=incident.orders_adopted,
            fills_applied=incident.fills_applied,
            cancels_resent=incident.cancels_resent,
            algos_resumed=incident.algos_resumed,
        )

    def _resend_refused_cancels(self, working_at_broker: set[str]) -> int:
        """A cancel the adapter refused while down left its order PENDING_CANCEL with no answer coming:
        give the order back its previous state and cancel it again (once), if the broker still works it."""
        refused, self._cancels_refused = sorted(self._cancels_refused), set()
        resent = 0
        for cid in refused:
            order = self.oms.orders.get(cid)
            if (
                order is None
                or order.status is not OrderStatus.PENDING_CANCEL
                or cid not in working_at_broker
            ):
                continue
            now = self.clock.now_ns()
            self.oms.on_event(
                OrderCancelRejected(
                    ts_event=now,
                    ts_init=now,
                    client_order_id=cid,
                    symbol=order.symbol,
                    reason=CANCEL_NOT_SENT_REASON,
                )
            )
            if self.oms.cancel(cid):
                resent += 1
        return resent

    # ------------------------------------------------------------------------------------- polling
    def watch(self, probe: Callable[[], bool], interval_ns: int = WATCH_INTERVAL_NS) -> None:
        """Poll ``probe()`` (an adapter's ``connected``) every ``interval_ns`` on the clock."""

        def tick() -> None:
            is_up = probe()
            if is_up and self.state is LinkState.DOWN:
                self.connected(True)
            elif not is_up and self.state is not LinkState.DOWN:
                self.connected(False, "adapter_not_connected")
            self._watch = self.clock.call_at(self.clock.now_ns() + interval_ns, tick, "connection:watch")

        self._watch = self.clock.call_at(self.clock.now_ns() + interval_ns, tick, "connection:watch")

    def stop(self) -> None:
        """Stop polling and retrying (the session is closing)."""
        for timer in (self._watch, self._retry):
            if timer is not None:
                timer.cancel()
        self._watch = self._retry = None


def attach_to_adapter(monitor: ConnectionMonitor, adapter: object) -> str | None:
    """Hook ``monitor`` to ``adapter``: its listener if it has one, else poll its ``connected`` flag.
    Returns how (``"listener"``, ``"poll"``) or None for a route that reports no link state."""
    if isinstance(adapter, ReportsConnection):
        adapter.set_connection_listener(monitor.connected)
        return "listener"
    flag = getattr(type(adapter), "connected", None)
    if isinstance(flag, property):
        monitor.watch(lambda: bool(getattr(adapter, "connected", True)))
        return "poll"
    return None


@dataclass(slots=True)
class _Skipped:
    checks: int = 0
    errors: list[str] = field(default_factory=list)


class LinkAwareInflightChecker(InflightChecker):
    """In-flight checks that wait while the link is down or resynchronising (the resync does their job
    when it comes back), and treat a query refused as "down" as nothing learnt."""

    def __init__(
        self,
        oms: OrderManager,
        adapter: BrokerAdapter,
        monitor: ConnectionMonitor,
        *,
        timeout_ns: int = 5_000_000_000,
        max_queries: int = 3,
        on_alert: AlertCallback | None = None,
    ) -> None:
        super().__init__(oms, adapter, timeout_ns=timeout_ns, max_queries=max_queries, on_alert=on_alert)
        self.monitor = monitor
        self.skipped = _Skipped()

    def due(self) -> list[str]:
        return super().due() if self.monitor.up else []

    def next_due_ns(self) -> int | None:
        return super().next_due_ns() if self.monitor.up else None

    async def check(self) -> int:
        if not self.monitor.up:
            self.skipped.checks += 1
            return 0
        try:
            return await super().check()
        except BrokerError as exc:
            self.skipped.errors.append(str(exc))
            log.warning("inflight_check_failed", error=str(exc))
            return 0
        except Exception as exc:  # an answer the route could not read: unanswered, asked again later
            self.skipped.errors.append(f"unreadable answer: {type(exc).__name__}: {exc}")
            log.error("inflight_answer_unreadable", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            return 0
