"""``GmBrokerAdapter``: the 掘金 API route (``gm.api``) as a ``BrokerAdapter``.

- ``submit``: the link ledger commits the intent first (``adapters.gm.ledger``), then ``order_volume``
  (limit, ``OrderSide_*``, ``PositionEffect_Open``/``Close``, price in float yuan, our account) runs on the
  adapter's one gm worker thread; the ``cl_ord_id`` gm returns is committed next to our client order id. An
  exception or an empty answer from ``order_volume`` is an *unknown* outcome: the order stays in flight and
  queries settle it (RELIABILITY rule 2); only checks made before the call raise ``BrokerError``.
- ``cancel``: ``order_cancel(wait_cancel_orders=[{cl_ord_id, account_id}])``.
- Callbacks (``on_order_status``, ``on_execution_report``, trade-data connected/disconnected, ``on_error``)
  arrive through ``adapters.gm.bridge`` already on the loop and are mapped by ``adapters.gm.mapper``: trades
  (``ExecType_Trade``) become ``OrderFilled`` keyed by ``exec_id``, applied once; cancel rejects
  (``ExecType_CancelRejected``) become ``OrderCancelRejected`` with the reason; a report for a ``cl_ord_id``
  not linked yet (it can overtake ``order_volume``'s return) is held and replayed once linked. A status
  counting more filled shares than the trades seen queries the day's reports (at most once a second).
- Disconnect: nothing is resent, orders stay in flight, ``submit`` is refused locally until reconnected.
  Reconnect (and ``connect``): every order and execution report of the day is queried and replayed through
  the same mapping; what was already delivered is deduplicated.
- Queries: ``get_orders``, ``get_execution_reports``, ``get_cash``, ``get_position`` mapped to the engine's
  reports; a gm order with no link is reported as ``gm:<cl_ord_id>`` (external to the engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from zhixing.adapters.gm.bridge import GmBridge, Payload
from zhixing.adapters.gm.codes import (
    GM_ORDER_TYPE,
    GM_POSITION_EFFECT,
    GM_SIDE,
    ORDER_DURATION_UNKNOWN,
    ORDER_QUALIFIER_UNKNOWN,
    text,
)
from zhixing.adapters.gm.config import GmRouteConfig
from zhixing.adapters.gm.ledger import LinkLedger
from zhixing.adapters.gm.mapper import ReportMapper
from zhixing.adapters.gm.reports import (
    account_report,
    candidate,
    fill_report,
    order_row,
    position_reports,
    status_report,
    trade,
)
from zhixing.adapters.gm.stats import GmStats
from zhixing.engine.broker import EventSink
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import BrokerDisconnected, BrokerError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderEvent,
    OrderStatusReport,
    PositionReport,
)
from zhixing.engine.market.symbols import to_gm
from zhixing.engine.order_ids import OrderIds
from zhixing.engine.orders import Order
from zhixing.engine.secrets import resolve_secret
from zhixing.engine.units import yuan

log = structlog.get_logger("zhixing.gm")

T = TypeVar("T")
GAP_QUERY_INTERVAL_NS = 1_000_000_000  # a status ahead of its trades asks at most once a second


class GmBrokerAdapter:
    name = "gm"

    def __init__(self, config: GmRouteConfig, clock: Clock, *, api: Any, bridge: GmBridge) -> None:
        self.config = config
        self.stats = GmStats()
        self._clock = clock
        self._api = api
        self._bridge = bridge
        self._sink: EventSink | None = None
        self._connection_listener: Callable[[bool, str], None] | None = None
        self._ledger: LinkLedger | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._connected = False
        self.order_ids = OrderIds.for_account(config.account_id)  # the OrderManager issues these
        self.mapper = ReportMapper(clock, config.account_id, self.stats, self._deliver, self._on_fill_gap)
        self._tasks: set[asyncio.Task[None]] = set()
        self._resync_pending = False
        self._gap_timer: TimerHandle | None = None
        self._last_gap_query_ns = -GAP_QUERY_INTERVAL_NS

    # ------------------------------------------------------------------------------------- lifecycle
    def set_connection_listener(self, listener: Callable[[bool, str], None] | None) -> None:
        """Told ``(False, reason)`` when gm's trade channel drops and ``(True, "")`` when it is back
        (``engine.connection.ConnectionMonitor``)."""
        self._connection_listener = listener

    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gm-api")
        self._ledger = await self._call(LinkLedger, self.config.ledger_path)
        for link in await self._call(self._ledger.links, self.order_ids.is_ours):
            if link.cl_ord_id:
                self.mapper.cid_of[link.cl_ord_id] = link.client_order_id
                self.mapper.cl_of[link.client_order_id] = link.cl_ord_id
        if self.config.token:
            token = resolve_secret(self.config.token, key="route.gm.token")
            await self._call(self._api.set_token, token.reveal())
        if self.config.serv_addr:
            await self._call(self._api.set_serv_addr, self.config.serv_addr)
        self._bridge.attach(asyncio.get_running_loop())
        self._bridge.order_handlers.append(self.mapper.on_order)
        self._bridge.exec_handlers.append(self.mapper.on_exec)
        self._bridge.connected_handlers.append(self._on_connected)
        self._bridge.disconnected_handlers.append(self._on_disconnected)
        self._bridge.error_handlers.append(self._on_error)
        self._connected = True
        await self.resync()
        log.info("gm_connected", links=len(self.mapper.cl_of))

    async def close(self) -> None:
        self._connected = False
        for handlers, handler in (
            (self._bridge.order_handlers, self.mapper.on_order),
            (self._bridge.exec_handlers, self.mapper.on_exec),
            (self._bridge.connected_handlers, self._on_connected),
            (self._bridge.disconnected_handlers, self._on_disconnected),
            (self._bridge.error_handlers, self._on_error),
        ):
            if handler in handlers:
                handlers.remove(handler)  # type: ignore[arg-type]  # each list holds its own handler type
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ledger is not None:
            await self._call(self._ledger.close)
            self._ledger = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking gm (or ledger) call on the adapter's single worker thread."""
        if self._executor is None:
            raise BrokerDisconnected("gm: not connected; nothing sent")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # ------------------------------------------------------------------------------------- commands
    async def submit(self, order: Order) -> None:
        if not self._connected or self._ledger is None:
            raise BrokerDisconnected(f"gm: trade data not connected; {order.client_order_id} not sent")
        cid = order.client_order_id
        if order.price <= 0 or order.quantity <= 0:
            raise BrokerError(f"gm: {cid} needs a limit price and a quantity; nothing sent")
        order_type = GM_ORDER_TYPE.get((order.symbol[-2:], order.order_type))
        if order_type is None:
            raise BrokerError(
                f"gm: {cid}: 掘金 has no order_type for {order.order_type.value} on {order.symbol}; "
                "nothing sent"
            )
        symbol = to_gm(order.symbol)
        side = GM_SIDE[order.side]
        await self._call(
            self._ledger.begin,
            cid,
            symbol=symbol,
            side=side,
            price=order.price,
            volume=order.quantity,
            ts_ns=self._clock.now_ns(),
        )
        try:
            answer = await self._call(
                self._api.order_volume,
                symbol=symbol,
                volume=order.quantity,
                side=side,
                order_type=order_type,
                position_effect=GM_POSITION_EFFECT[order.side],
                price=yuan(order.price),
                order_duration=ORDER_DURATION_UNKNOWN,
                order_qualifier=ORDER_QUALIFIER_UNKNOWN,
                account=self.config.account_id,
            )
        except Exception as exc:  # the SDK's errors are not definitive about the counter: unknown outcome
            self.stats.unknown_submits += 1
            log.error("gm_submit_outcome_unknown", client_order_id=cid, error=str(exc))
            return
        placed = [a for a in answer or [] if isinstance(a, Mapping) and text(a.get("cl_ord_id"))]
        if not placed:
            self.stats.unknown_submits += 1
            log.error(
                "gm_submit_outcome_unknown", client_order_id=cid, error="order_volume returned no order"
            )
            return
        cl_ord_id = text(placed[0].get("cl_ord_id"))
        await self._call(self._ledger.link, cid, cl_ord_id)
        self.stats.orders_placed += 1
        self.mapper.link(cid, cl_ord_id)
        self.mapper.on_order(placed[0])

    async def cancel(self, order: Order) -> None:
        cid = order.client_order_id
        cl_ord_id = self.mapper.cl_of.get(cid)
        if cl_ord_id is None:
            raise BrokerError(f"gm: {cid} has no gm cl_ord_id yet; cancel not sent")
        request = [{"cl_ord_id": cl_ord_id, "account_id": self.config.account_id}]
        try:
            await self._call(self._api.order_cancel, wait_cancel_orders=request)
        except BrokerError:
            raise
        except Exception as exc:
            raise BrokerError(f"gm: order_cancel failed for {cid}: {exc}") from exc
        self.stats.cancels_sent += 1

    # ------------------------------------------------------------------------------------- linking
    def _deliver(self, event: OrderEvent) -> None:
        if self._sink is None:
            log.warning("gm_event_without_sink", client_order_id=event.client_order_id)
            return
        self._sink(event)

    # ------------------------------------------------------------------------------------- connection
    def _on_connected(self) -> None:
        was = self._connected
        self._connected = True
        log.info("gm_trade_data_connected", reconnect=not was)
        if not was:
            self._schedule_resync("reconnect")
            if self._connection_listener is not None:
                self._connection_listener(True, "")

    def _on_fill_gap(self) -> None:
        """At most one gap query per ``GAP_QUERY_INTERVAL_NS`` (on the injected clock)."""
        if self._gap_timer is not None:
            return
        now = self._clock.now_ns()
        when = self._last_gap_query_ns + GAP_QUERY_INTERVAL_NS
        if when <= now:
            self._gap_query_due()
        else:
            self._gap_timer = self._clock.call_at(when, self._gap_query_due, "gm_fill_gap_query")

    def _gap_query_due(self) -> None:
        self._gap_timer = None
        self._last_gap_query_ns = self._clock.now_ns()
        self._schedule_resync("fill_gap")

    def _schedule_resync(self, why: str) -> None:
        """One resync task at a time; a request while one is queued is folded into it."""
        if self._resync_pending or self._executor is None:
            return
        self._resync_pending = True
        log.info("gm_resync_scheduled", reason=why)
        task = asyncio.get_running_loop().create_task(self._resync_task(), name=f"gm_resync_{why}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _resync_task(self) -> None:
        self._resync_pending = False  # a request arriving from here on needs another pass
        await self.resync()

    def _on_disconnected(self) -> None:
        if self._connected:
            self.stats.disconnects += 1
            if self._connection_listener is not None:
                self._connection_listener(False, "gm_trade_data_disconnected")
        self._connected = False
        log.warning("gm_trade_data_disconnected", in_flight_kept=True)

    def _on_error(self, error_code: int, info: str) -> None:
        self.stats.errors += 1
        log.error("gm_error", error_code=error_code, info=info)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gm_task_failed", task=task.get_name(), error=str(task.exception()))

    async def resync(self) -> None:
        """Query the day's orders and execution reports and replay them (deduplicated)."""
        self.stats.resyncs += 1
        orders = await self._day_orders()
        reports = await self._call(self._api.get_execution_reports)
        self.mapper.in_resync = True
        try:  # trades first, so a status never runs ahead of the trades it counts
            for payload in reports or []:
                if isinstance(payload, Mapping):
                    self.mapper.on_exec(payload)
            for payload in orders:
                self.mapper.on_order(payload)
        finally:
            self.mapper.in_resync = False

    async def _day_orders(self) -> list[Payload]:
        """``get_orders`` for our account, linking any ledger row a crash left unlinked."""
        raw = await self._call(self._api.get_orders)
        orders = [p for p in raw or [] if isinstance(p, Mapping) and self.mapper.mine(p)]
        unlinked = [p for p in orders if text(p.get("cl_ord_id")) not in self.mapper.cid_of]
        if unlinked and self._ledger is not None:
            candidates = [candidate(p) for p in unlinked]
            claim = self._ledger.claim_unlinked
            for cid, cl_ord_id in (await self._call(claim, candidates, owns=self.order_ids.is_ours)).items():
                log.warning("gm_link_recovered", client_order_id=cid, cl_ord_id=cl_ord_id)
                self.mapper.link(cid, cl_ord_id)
        return orders

    # ------------------------------------------------------------------------------------- queries
    async def query_orders(self) -> list[OrderStatusReport]:
        reports = []
        for payload in await self._day_orders():
            row = order_row(payload)
            report = status_report(row, self.mapper.client_id(row.cl_ord_id))
            if report is not None:
                reports.append(report)
        return reports

    async def query_trades(self) -> list[FillReport]:
        await self._day_orders()  # links first, so a recovered link names its trades
        trades = []
        for payload in await self._call(self._api.get_execution_reports) or []:
            if not isinstance(payload, Mapping) or not self.mapper.mine(payload):
                continue
            if (fill := trade(payload)) is not None:
                trades.append(fill_report(fill, self.mapper.client_id(fill.cl_ord_id)))
        return trades

    async def query_account(self) -> AccountReport:
        cash = await self._call(self._api.get_cash, account_id=self.config.account_id)
        if not isinstance(cash, Mapping) or not cash:
            raise BrokerError("gm: get_cash returned nothing for the configured account")
        return account_report(cash)

    async def query_positions(self) -> list[PositionReport]:
        rows = await self._call(self._api.get_position, account_id=self.config.account_id)
        positions, bad = position_reports(rows or [])
        self.stats.bad_reports += bad
        return positions
