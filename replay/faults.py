"""Seeded fault injection between a broker adapter and the engine (RELIABILITY rule 9).

``FaultyAdapter`` wraps any ``BrokerAdapter``: requests and queries go straight through, and every event
the inner adapter delivers passes a ``FaultPlan`` first. Each decision comes from one
``random.Random(plan.seed)`` (never the global generator), and every event consumes the same number of
draws whatever its type or the plan's probabilities, so the same seed over the same scenario gives the
same delivered sequence, and a failing schedule replays exactly from its seed.

Faults, each counted in ``injected``:

- ``drop_ack``: an ``OrderAccepted`` is never delivered (fills must drive the order on their own);
- ``drop_reject_callback``: an ``OrderRejected`` is never delivered (B8: the in-flight timeout finds it);
- ``broker_reject``: a submit is refused by the broker itself (its counter system, e.g. insufficient
  funds) and never reaches the exchange: the adapter lists it as REJECTED in its order reports and
  answers with an ``OrderRejected`` 1 ms later, which ``drop_reject_callback`` may drop like any reject
  (B8). Decided by a second generator (one draw per submit), so a plan without it keeps its schedule;
- ``repeated_rejects``: from its instant on, a suspended symbol (``suspensions``: (symbol, from ns)) has
  every submit refused by the broker as ``broker_reject`` does, with the suspension's reason
  (``SUSPENDED_REASON``, gm's text), one count per reject. Draws nothing (after ``broker_reject``'s draw);
- ``duplicate_fill``: an ``OrderFilled`` is delivered twice, same ``trade_id`` (B3 re-login replay);
- ``delay``: with ``delay_ns_max > 0`` each delivered copy waits a uniform ``0..delay_ns_max`` ns on the
  clock (counted when > 0); unequal delays reorder events naturally. ``ts_init`` becomes delivery time;
- ``reorder``: an event is held back and delivered right after the next event that goes through (or,
  if none comes, ``max(delay_ns_max, 1 ms)`` later), so two consecutive events swap;
- ``disconnect``: at each of ``outages`` (start, duration) the link drops (RELIABILITY D1-D3): every event
  the broker would deliver meanwhile is lost (the broker keeps its orders and trades), ``submit``,
  ``cancel`` and the queries raise ``BrokerDisconnected`` (nothing reaches the broker), and the connection
  listener hears ``(False, "link_dropped")``; when it ends, the adapter re-pushes ALL of the day's trades
  (as a real re-login does, B4) and then tells the listener ``(True)``. The schedule is fixed by the plan,
  so it draws nothing;
- ``cancel_reject``: the venue refuses a cancel (``OrderCancelRejected`` 1 ms later; the order works on),
  decided by a third generator, one draw per cancel;
- ``cancel_not_found``: the broker loses a cancel while the order still works at the exchange: half the
  time it answers "not found" (``OrderCancelRejected`` reason ``order_not_found`` 1 ms later), half the
  time it never answers at all (the in-flight checks find the cancel unconfirmed). A fourth generator,
  two draws per cancel (after ``cancel_reject``'s, so a plan without it keeps its schedule);
- ``stale_snapshot``: a query is answered from the broker's view of ``stale_ns`` ago: orders it had not
  received yet are not listed, statuses and filled quantities are what they were then, trades since are
  missing and positions are without them (the engine's pushes are newer). A fifth generator, one draw per
  query call, so the orders, trades and positions of one check may be of different ages;
- ``cancel_ahead_of_fill``: on that fraction of the orders, the broker's trade rows come
  ``fill_row_lag_ns`` after the fill while its status pushes come at once (a trade feed behind the order
  feed, as QMT's ``on_stock_trade`` behind ``on_stock_order``, or gm's execution reports behind its order
  status): a cancel (or expiry) confirmation, which carries the exchange's exact filled count, overtakes
  the rows of the fills just before it. The broker's books have the trades at once (queries list them).
  Counted per confirmation that overtook at least one row. A sixth generator, one draw per submit.

``SteppedWall`` is the host's wall clock of a replay (``clock_step``, not a wire fault): the virtual time
plus every step injected so far, ± seconds to hours at planned instants. Only the engine's anchored view
(``replay.recovery.ProcessClock`` with ``wall``) and the step watch read it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from zhixing.engine.broker import BrokerAdapter, EventSink
from zhixing.engine.clock import Clock, SimClock, TimerHandle
from zhixing.engine.connection import (
    ConnectionMonitor,
    IncidentCallback,
    LinkAwareInflightChecker,
    Pausable,
    ReportsConnection,
    attach_to_adapter,
)
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerDisconnected, ParameterError
from zhixing.engine.events import (
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
from zhixing.engine.orders import Order
from zhixing.replay.harness import Progress, ReplaySession

FAULTS = (
    "drop_ack",
    "duplicate_fill",
    "delay",
    "reorder",
    "drop_reject_callback",
    "broker_reject",
    "disconnect",
    "cancel_reject",
    "cancel_not_found",
    "stale_snapshot",
    "cancel_ahead_of_fill",
    "repeated_rejects",
)
_REORDER_HOLD_MIN_NS = 1_000_000
_BROKER_REJECT_NS = 1_000_000
BROKER_REJECT_REASON = "broker_rejected"
SUSPENDED_REASON = "symbol_suspended: 交易代码停牌"
CANCEL_REJECT_REASON = "cancel_refused_by_venue"
CANCEL_NOT_FOUND_REASON = "order_not_found"
LINK_DROPPED = "link_dropped"
ConnectionListener = Callable[..., None]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """What to inject, as probabilities per event (``delay_ns_max`` in ns). All zero: a clean wire."""

    seed: int
    drop_ack: float = 0.0
    duplicate_fill: float = 0.0
    delay_ns_max: int = 0
    reorder: float = 0.0
    drop_reject_callback: float = 0.0
    broker_reject: float = 0.0
    outages: tuple[tuple[int, int], ...] = ()  # (start ns, duration ns), in time order, not overlapping
    cancel_reject: float = 0.0
    cancel_not_found: float = 0.0
    stale_snapshot: float = 0.0
    stale_ns: int = 0  # how old a stale answer's view is
    cancel_ahead_of_fill: float = 0.0
    fill_row_lag_ns: int = 0  # how long after the confirmation the held-back fill rows come
    suspensions: tuple[tuple[str, int], ...] = ()  # (symbol, from ns): every submit rejected from then

    def __post_init__(self) -> None:
        names = (
            "drop_ack",
            "duplicate_fill",
            "reorder",
            "drop_reject_callback",
            "broker_reject",
            "cancel_reject",
            "cancel_not_found",
            "stale_snapshot",
            "cancel_ahead_of_fill",
        )
        for name in names:
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ParameterError(
                    f"must be a probability in [0, 1], got {p}", name=f"FaultPlan.{name}", value=p
                )
        for name in ("delay_ns_max", "stale_ns", "fill_row_lag_ns"):
            ns = getattr(self, name)
            if ns < 0:
                raise ParameterError(f"must be >= 0, got {ns}", name=f"FaultPlan.{name}", value=ns)
        end = None
        for start, duration in self.outages:
            if duration <= 0 or (end is not None and start <= end):
                raise ParameterError(
                    f"must be positive and in order, apart: {self.outages}",
                    name="FaultPlan.outages",
                    value=self.outages,
                )
            end = start + duration


class FaultyAdapter:
    """A ``BrokerAdapter`` that delegates to ``inner`` and mangles its events per a ``FaultPlan``."""

    def __init__(self, inner: BrokerAdapter, plan: FaultPlan, clock: Clock) -> None:
        self.inner = inner
        self.plan = plan
        self.name = f"faulty:{inner.name}"
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.delivered: list[OrderEvent] = []
        self._clock = clock
        self._rng = random.Random(plan.seed)
        self._submit_rng = random.Random(plan.seed * 31 + 7)
        self._rejected: list[OrderStatusReport] = []
        self._sink: EventSink | None = None
        self._held: OrderEvent | None = None
        self._held_timer: TimerHandle | None = None
        self._cancel_rng = random.Random(plan.seed * 131 + 17)
        self._lost_cancel_rng = random.Random(plan.seed * 733 + 29)
        self._stale_rng = random.Random(plan.seed * 977 + 41)
        self.cancels_unanswered = 0  # cancel_not_found that never answered (the rest: "not found")
        self._late_row_rng = random.Random(plan.seed * 1_409 + 53)
        self._slow_rows: set[str] = set()  # orders whose trade rows lag (cancel_ahead_of_fill)
        self._rows_behind: dict[str, list[OrderFilled]] = {}  # ... their rows not pushed yet
        self.rows_pushed_late = 0  # rows pushed after their order's end
        # the broker's view over time, for stale answers: per client id (time, status, filled) as the
        # exchange reported it; each trade's time; each fill's (time, symbol, signed quantity)
        self._history: dict[str, list[tuple[int, OrderStatus, int]]] = {}
        self._quantity: dict[str, int] = {}
        self._trade_ns: dict[str, int] = {}
        self._fill_moves: list[tuple[int, str, int]] = []
        self._listener: ConnectionListener | None = None
        self._down = False
        self.day_fills: list[OrderFilled] = []  # every fill the broker reported today (its trade log)
        self.lost_while_down = 0  # events the broker pushed while the link was down
        self.repushed = 0  # fills re-pushed at reconnects
        self.refused_while_down = {"submit": 0, "cancel": 0, "query": 0}
        self.outage_spans: list[tuple[int, int]] = []  # (down, up) of every outage scheduled
        for start, duration in plan.outages:
            self.schedule_outage(start, duration)

    def schedule_outage(self, start_ns: int, duration_ns: int) -> None:
        """One more link outage (the plan's are scheduled at construction; the chaos suite adds one
        around a restart). Outages must not overlap."""
        if duration_ns <= 0:
            raise ParameterError(f"must be > 0 ns, got {duration_ns}", name="duration_ns", value=duration_ns)
        self.outage_spans.append((start_ns, start_ns + duration_ns))
        self._clock.call_at(start_ns, self._drop_link, "fault_disconnect")
        self._clock.call_at(start_ns + duration_ns, self._restore_link, "fault_reconnect")

    # ------------------------------------------------------------------------------------- adapter
    def bind(self, sink: EventSink) -> None:
        self._sink = sink
        self.inner.bind(self._on_inner_event)

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    def set_connection_listener(self, listener: ConnectionListener | None) -> None:
        """``listener(False, reason)`` when the link drops, ``listener(True)`` when it is back."""
        self._listener = listener

    @property
    def connected(self) -> bool:
        return not self._down

    def _refuse_while_down(self, what: str) -> None:
        if self._down:
            self.refused_while_down[what] += 1
            raise BrokerDisconnected(f"{self.name}: link down; {what} not sent")

    async def submit(self, order: Order) -> None:
        self._refuse_while_down("submit")
        if self._late_row_rng.random() < self.plan.cancel_ahead_of_fill:
            self._slow_rows.add(order.client_order_id)
        if self._submit_rng.random() < self.plan.broker_reject:
            self._broker_reject(order)
            return
        if any(s == order.symbol and at <= self._clock.now_ns() for s, at in self.plan.suspensions):
            self._broker_reject(order, SUSPENDED_REASON, "repeated_rejects")
            return
        self._quantity[order.client_order_id] = order.quantity
        self._history.setdefault(order.client_order_id, []).append(
            (self._clock.now_ns(), OrderStatus.SUBMITTED, 0)
        )
        await self.inner.submit(order)

    async def cancel(self, order: Order) -> None:
        self._refuse_while_down("cancel")
        if self._cancel_rng.random() < self.plan.cancel_reject:
            self.injected["cancel_reject"] += 1
            now = self._clock.now_ns()
            event = OrderCancelRejected(
                ts_event=now,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                reason=CANCEL_REJECT_REASON,
            )
            self._clock.call_at(
                now + _BROKER_REJECT_NS, partial(self._on_inner_event, event), "fault_cxl_rej"
            )
            return
        lost, unanswered = self._lost_cancel_rng.random(), self._lost_cancel_rng.random()
        if lost < self.plan.cancel_not_found:
            self.injected["cancel_not_found"] += 1
            if unanswered < 0.5:
                self.cancels_unanswered += 1  # swallowed: no answer ever comes
                return
            now = self._clock.now_ns()
            event = OrderCancelRejected(
                ts_event=now,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                reason=CANCEL_NOT_FOUND_REASON,
            )
            self._clock.call_at(
                now + _BROKER_REJECT_NS, partial(self._on_inner_event, event), "fault_cxl_not_found"
            )
            return
        await self.inner.cancel(order)

    async def query_account(self) -> AccountReport:
        self._refuse_while_down("query")
        return await self.inner.query_account()

    async def query_positions(self) -> list[PositionReport]:
        self._refuse_while_down("query")
        positions = await self.inner.query_positions()
        as_of = self._view_time()
        if as_of is None:
            return positions
        since: dict[str, int] = {}
        for ts, symbol, signed in self._fill_moves:
            if ts > as_of:
                since[symbol] = since.get(symbol, 0) + signed
        return [
            dataclasses.replace(p, quantity=p.quantity - since[p.symbol]) if p.symbol in since else p
            for p in positions
        ]

    async def query_orders(self) -> list[OrderStatusReport]:
        self._refuse_while_down("query")
        reports = [*await self.inner.query_orders(), *self._rejected]
        as_of = self._view_time()
        if as_of is None:
            return reports
        stale: list[OrderStatusReport] = []
        for report in reports:
            history = self._history.get(report.client_order_id)
            if history is None:  # a broker reject (listed from its time on)
                if report.ts_event <= as_of:
                    stale.append(report)
                continue
            then = [entry for entry in history if entry[0] <= as_of]
            if not then:
                continue  # not received yet at that time
            _, status, filled = then[-1]
            stale.append(dataclasses.replace(report, status=status, filled_quantity=filled))
        return stale

    async def query_trades(self) -> list[FillReport]:
        self._refuse_while_down("query")
        trades = await self.inner.query_trades()
        as_of = self._view_time()
        if as_of is None:
            return trades
        return [t for t in trades if self._trade_ns.get(t.trade_id, t.ts_event) <= as_of]

    def _view_time(self) -> int | None:
        """The time of the view this query is answered from: None for now (one draw per query)."""
        if self._stale_rng.random() >= self.plan.stale_snapshot or self.plan.stale_ns <= 0:
            return None
        self.injected["stale_snapshot"] += 1
        return self._clock.now_ns() - self.plan.stale_ns

    def _remember(self, event: OrderEvent) -> None:
        """The exchange's view as it changes, for the stale answers."""
        cid = event.client_order_id
        history = self._history.get(cid)
        if history is None:
            return
        now = self._clock.now_ns()
        _, status, filled = history[-1]
        if isinstance(event, OrderFilled):
            self._trade_ns.setdefault(event.trade_id, now)
            signed = event.quantity if event.side is Side.BUY else -event.quantity
            self._fill_moves.append((now, event.symbol, signed))
            filled += event.quantity
            if status not in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                full = filled >= self._quantity.get(cid, filled)
                status = OrderStatus.FILLED if full else OrderStatus.PARTIALLY_FILLED
        elif isinstance(event, OrderAccepted) and status is OrderStatus.SUBMITTED:
            status = OrderStatus.ACCEPTED
        elif isinstance(event, OrderCanceled):
            status = OrderStatus.CANCELED
        elif isinstance(event, OrderExpired):
            status = OrderStatus.EXPIRED
        elif isinstance(event, OrderRejected):
            status = OrderStatus.REJECTED
        else:
            return
        history.append((now, status, filled))

    # ------------------------------------------------------------------------------------- the link
    def _drop_link(self) -> None:
        self._down = True
        self.injected["disconnect"] += 1
        if self._listener is not None:
            self._listener(False, LINK_DROPPED)

    def _restore_link(self) -> None:
        self._down = False
        for fill in list(self.day_fills):  # a re-login re-pushes the whole day's trades (B4)
            self.repushed += 1
            self._deliver(fill)
        if self._listener is not None:
            self._listener(True)

    # ------------------------------------------------------------------------------------- faults
    def _broker_reject(
        self, order: Order, reason: str = BROKER_REJECT_REASON, fault: str = "broker_reject"
    ) -> None:
        self.injected[fault] += 1
        now = self._clock.now_ns()
        cid = order.client_order_id
        self._rejected.append(
            OrderStatusReport(
                client_order_id=cid,
                broker_order_id="",
                symbol=order.symbol,
                side=order.side,
                price=order.price,
                quantity=order.quantity,
                filled_quantity=0,
                status=OrderStatus.REJECTED,
                reason=reason,
                ts_event=now,
            )
        )
        event = OrderRejected(
            ts_event=now, ts_init=now, client_order_id=cid, symbol=order.symbol, reason=reason
        )
        self._clock.call_at(now + _BROKER_REJECT_NS, partial(self._on_inner_event, event), "fault_reject")

    def _on_inner_event(self, event: OrderEvent) -> None:
        if isinstance(event, OrderFilled):
            self.day_fills.append(event)
        if not isinstance(event, OrderCancelRejected):
            self._remember(event)
        cid = event.client_order_id
        if cid in self._slow_rows:
            rows = self._rows_behind.setdefault(cid, [])
            if isinstance(event, OrderFilled):
                rows.append(event)  # the trade row lags the fill; the status pushes do not
                self._clock.call_at(
                    self._clock.now_ns() + self.plan.fill_row_lag_ns,
                    partial(self._push_late_row, cid, event),
                    "fault_late_row",
                )
                return
            if isinstance(event, OrderCanceled | OrderExpired) and rows:
                self.injected["cancel_ahead_of_fill"] += 1  # the end overtakes the rows of its fills
        self._wire(event)

    def _push_late_row(self, cid: str, row: OrderFilled) -> None:
        rows = self._rows_behind[cid]
        rows.remove(row)
        self.rows_pushed_late += 1
        self._wire(row)

    def _wire(self, event: OrderEvent) -> None:
        """The wire's own faults (drop, duplicate, delay, reorder) on one event the broker pushes."""
        plan, rng = self.plan, self._rng
        # fixed draws per event, whatever happens to it: the schedule depends on the seed and the
        # event count only
        u_drop, u_dup, u_reorder = rng.random(), rng.random(), rng.random()
        delays = (rng.randint(0, plan.delay_ns_max), rng.randint(0, plan.delay_ns_max))
        if isinstance(event, OrderAccepted) and u_drop < plan.drop_ack:
            self.injected["drop_ack"] += 1
            return
        if isinstance(event, OrderRejected) and u_drop < plan.drop_reject_callback:
            self.injected["drop_reject_callback"] += 1
            return
        copies = 1
        if isinstance(event, OrderFilled) and u_dup < plan.duplicate_fill:
            self.injected["duplicate_fill"] += 1
            copies = 2
        reorder = u_reorder < plan.reorder
        for delay in delays[:copies]:
            if delay > 0:
                self.injected["delay"] += 1
                self._clock.call_at(
                    self._clock.now_ns() + delay, partial(self._pass, event, reorder), "fault_delay"
                )
            else:
                self._pass(event, reorder)

    def _pass(self, event: OrderEvent, reorder: bool) -> None:
        """Deliver now, or hold back behind the next event when reordering."""
        if reorder and self._held is None:
            self.injected["reorder"] += 1
            self._held = event
            hold = max(self.plan.delay_ns_max, _REORDER_HOLD_MIN_NS)
            self._held_timer = self._clock.call_at(
                self._clock.now_ns() + hold, self._release_held, "fault_reorder"
            )
            return
        self._deliver(event)
        self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if held is not None:
            self._deliver(held)

    def _deliver(self, event: OrderEvent) -> None:
        if self._down:  # pushed to a dead link: lost (the broker still has it)
            self.lost_while_down += 1
            return
        now = self._clock.now_ns()
        if event.ts_init != now:
            event = dataclasses.replace(event, ts_init=now)
        self.delivered.append(event)
        if self._sink is not None:
            self._sink(event)


# ---------------------------------------------------------------------------------------- the host clock
@dataclass(frozen=True, slots=True)
class WallStep:
    """At ``at_ns`` (virtual time) the host's wall clock is stepped by ``step_ns`` (signed)."""

    at_ns: int
    step_ns: int


class SteppedWall:
    """The host's wall clock in a replay: ``clock``'s virtual time plus the steps fired so far. Callable,
    like ``time.time_ns``. The steps are ``SimClock`` timers of the world, so they outlive an engine crash."""

    def __init__(self, clock: SimClock, steps: tuple[WallStep, ...] = ()) -> None:
        self._clock = clock
        self.offset_ns = 0
        self.fired: list[WallStep] = []
        self._timers = [
            clock.call_at(step.at_ns, partial(self._step, step), "fault_clock_step") for step in steps
        ]

    def __call__(self) -> int:
        return self._clock.now_ns() + self.offset_ns

    @property
    def injected(self) -> int:
        """Steps that happened (a zero step is a step that changes nothing: a run's baseline)."""
        return sum(1 for step in self.fired if step.step_ns)

    def stop(self) -> None:
        """No more steps (the run is over)."""
        for timer in self._timers:
            timer.cancel()

    def _step(self, step: WallStep) -> None:
        self.offset_ns += step.step_ns
        self.fired.append(step)


# ---------------------------------------------------------------------------------------- driving
class LinkedRun:
    """``ReplaySession.run`` for a session whose broker link may drop: a ``ConnectionMonitor`` on the
    session (hooked to a ``FaultyAdapter``), the in-flight checks made link-aware, and after every clock
    step the monitor's due resynchronisation runs BEFORE the OrderManager flushes, so a reconnect is
    handled at the instant it happens, on the virtual clock (no background task: same seed, same run)."""

    def __init__(
        self,
        session: ReplaySession,
        algos: Mapping[str, Pausable],
        *,
        on_incident: IncidentCallback | None = None,
    ) -> None:
        self.session = session
        adapter = session.oms.adapter
        self.monitor = ConnectionMonitor(
            session.oms, algos, link=session.engine.link, on_incident=on_incident
        )
        attach_to_adapter(self.monitor, adapter)
        session.inflight = LinkAwareInflightChecker(
            session.oms,
            adapter,
            self.monitor,
            timeout_ns=session.inflight.timeout_ns,
            max_queries=session.inflight.max_queries,
        )
        self._check_timer: TimerHandle | None = None
        self._check_due = False

    def detach(self) -> None:
        """The engine died (a crash): the adapter's link reports go nowhere until a new monitor hooks in."""
        adapter = self.session.oms.adapter
        if isinstance(adapter, ReportsConnection):
            adapter.set_connection_listener(None)

    async def run(
        self, end_ns: int, done: Callable[[], bool], progress: Progress | None = None, *, expire: bool = True
    ) -> None:
        session = self.session
        start = session.clock.now_ns()
        span = max(1, end_ns - start)
        while session.clock.step(until_ns=end_ns):
            await self.after_step()
            if progress is not None:
                progress(session.clock.now_ns() - start, span)
            if done() and not session.oms.working_orders() and self.monitor.up:
                break
        if expire:
            await self.expire()

    async def expire(self) -> None:
        """The end of the day: the exchange expires what still works; every timer left runs out."""
        self.session.exchange.expire_all()
        while self.session.clock.step():
            await self.after_step()

    async def after_step(self) -> None:
        session = self.session
        await self.monitor.settle()
        await session.oms.flush()
        if self._check_due:
            self._check_due = False
            await session.inflight.check()
            await session.oms.flush()
        due = session.inflight.next_due_ns()
        if due is not None and (self._check_timer is None or self._check_timer.cancelled):
            self._check_timer = session.clock.call_at(due, self._mark_check_due, "inflight_check")

    def _mark_check_due(self) -> None:
        self._check_due = True
