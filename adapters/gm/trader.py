"""``GmBrokerAdapter``: the 掘金 API route (``gm.api``) as a ``BrokerAdapter``.

- ``submit``: the link ledger commits the intent first (``adapters.gm.ledger``), then ``order_volume``
  (limit, ``OrderSide_*``, ``PositionEffect_Open``/``Close``, price in float yuan, our account) runs on the
  adapter's one gm worker thread; the ``cl_ord_id`` gm returns is committed next to our client order id. An
  exception or an empty answer from ``order_volume`` is an *unknown* outcome: the order stays in flight and
  queries settle it (RELIABILITY rule 2); only checks made before the call raise ``BrokerError``.
- ``cancel``: ``order_cancel(wait_cancel_orders=[{cl_ord_id, account_id}])``.
- Callbacks (``on_order_status``, ``on_execution_report``, trade-data connected/disconnected, ``on_error``)
  arrive through ``adapters.gm.bridge`` already on the loop. Status codes map as in ``adapters.gm.codes``;
  trades (``ExecType_Trade``) become ``OrderFilled`` keyed by ``exec_id`` and are applied once; cancel rejects
  (``ExecType_CancelRejected``) become ``OrderCancelRejected`` with the reason. A report for a ``cl_ord_id``
  not linked yet (it can overtake ``order_volume``'s return) is held and replayed once linked.
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
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from adapters.gm.bridge import GmBridge, Payload
from adapters.gm.codes import (
    ACKED_STATUSES,
    ENGINE_STATUS_OF_GM,
    EXEC_CANCEL_REJECTED,
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_TRADE,
    FINAL_STATUSES,
    GM_POSITION_EFFECT,
    GM_SIDE,
    ORDER_DURATION_UNKNOWN,
    ORDER_QUALIFIER_UNKNOWN,
    ORDER_TYPE_LIMIT,
    SIDE_OF_GM,
    STATUS_CANCELED,
    STATUS_EXPIRED,
    STATUS_REJECTED,
    code,
    money,
    reject_reason,
    text,
    timestamp_ns,
    whole,
)
from adapters.gm.config import GmRouteConfig
from adapters.gm.ledger import Candidate, LinkLedger
from engine.broker import EventSink
from engine.clock import Clock, TimerHandle
from engine.errors import BrokerDisconnected, BrokerError
from engine.events import (
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
from engine.market.symbols import from_gm, to_gm
from engine.orders import Order
from engine.secrets import resolve_secret
from engine.units import yuan

log = structlog.get_logger("zhixing.gm")

T = TypeVar("T")
EXTERNAL_PREFIX = "gm:"
GAP_QUERY_INTERVAL_NS = 1_000_000_000  # a status ahead of its trades asks at most once a second
MAX_HELD_REPORTS = 10_000  # reports for cl_ord_ids not linked yet; beyond this the oldest are dropped


@dataclass(slots=True)
class GmStats:
    orders_placed: int = 0
    cancels_sent: int = 0
    unknown_submits: int = 0  # order_volume raised or answered nothing: left in flight
    duplicate_exec_reports: int = 0
    held_reports: int = 0
    external_reports: int = 0  # reports of gm orders with no link (manual, another tool): not applied
    unknown_status_codes: int = 0
    bad_reports: int = 0
    disconnects: int = 0
    resyncs: int = 0
    fill_gaps: int = 0  # status reports counting more filled shares than the trades seen
    errors: int = 0


@dataclass(frozen=True, slots=True)
class _GmOrder:
    """The latest status gm reported for one ``cl_ord_id``."""

    cl_ord_id: str
    symbol: str
    side: int
    price: int
    volume: int
    filled: int
    status: int
    reason: str
    ts_event: int


def _gm_order(payload: Payload) -> _GmOrder:
    return _GmOrder(
        cl_ord_id=text(payload.get("cl_ord_id")),
        symbol=text(payload.get("symbol")),
        side=code(payload.get("side")),
        price=money(payload.get("price")),
        volume=whole(payload.get("volume")),
        filled=whole(payload.get("filled_volume")),
        status=code(payload.get("status")),
        reason=reject_reason(code(payload.get("ord_rej_reason")), text(payload.get("ord_rej_reason_detail"))),
        ts_event=timestamp_ns(payload.get("updated_at")) or timestamp_ns(payload.get("created_at")),
    )


def _better(new: _GmOrder, old: _GmOrder | None) -> bool:
    """Does ``new`` say more than ``old``? A final status is never replaced; fills only grow."""
    if old is None:
        return True
    if old.status in FINAL_STATUSES:
        return False
    if new.status in FINAL_STATUSES:
        return True
    return (new.filled, new.ts_event) >= (old.filled, old.ts_event)


class GmBrokerAdapter:
    name = "gm"

    def __init__(self, config: GmRouteConfig, clock: Clock, *, api: Any, bridge: GmBridge) -> None:
        self.config = config
        self.stats = GmStats()
        self._clock = clock
        self._api = api
        self._bridge = bridge
        self._sink: EventSink | None = None
        self._ledger: LinkLedger | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._connected = False
        self._cid_of: dict[str, str] = {}  # cl_ord_id -> client order id
        self._cl_of: dict[str, str] = {}  # client order id -> cl_ord_id
        self._orders: dict[str, _GmOrder] = {}  # cl_ord_id -> latest
        self._held: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # cl_ord_id -> [(kind, payload)]
        self._exec_ids: set[str] = set()
        self._trades: dict[str, FillReport] = {}
        self._emitted: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._resync_pending = False
        self._in_resync = False  # replaying queried reports: a gap seen then is not a new loss
        self._gap_timer: TimerHandle | None = None
        self._last_gap_query_ns = -GAP_QUERY_INTERVAL_NS
        self._filled_seen: dict[str, int] = {}  # cl_ord_id -> shares in trades applied

    # ------------------------------------------------------------------------------------- lifecycle
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gm-api")
        self._ledger = await self._call(LinkLedger, self.config.ledger_path)
        for link in await self._call(self._ledger.links):
            if link.cl_ord_id:
                self._cid_of[link.cl_ord_id] = link.client_order_id
                self._cl_of[link.client_order_id] = link.cl_ord_id
        if self.config.token:
            token = resolve_secret(self.config.token, key="route.gm.token")
            await self._call(self._api.set_token, token.reveal())
        if self.config.serv_addr:
            await self._call(self._api.set_serv_addr, self.config.serv_addr)
        self._bridge.attach(asyncio.get_running_loop())
        self._bridge.order_handlers.append(self._on_order_payload)
        self._bridge.exec_handlers.append(self._on_exec_payload)
        self._bridge.connected_handlers.append(self._on_connected)
        self._bridge.disconnected_handlers.append(self._on_disconnected)
        self._bridge.error_handlers.append(self._on_error)
        self._connected = True
        await self.resync()
        log.info("gm_connected", links=len(self._cl_of))

    async def close(self) -> None:
        self._connected = False
        for handlers, handler in (
            (self._bridge.order_handlers, self._on_order_payload),
            (self._bridge.exec_handlers, self._on_exec_payload),
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
                order_type=ORDER_TYPE_LIMIT,
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
        self._link(cid, cl_ord_id)
        self._on_order_payload(placed[0])

    async def cancel(self, order: Order) -> None:
        cid = order.client_order_id
        cl_ord_id = self._cl_of.get(cid)
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
    def _link(self, cid: str, cl_ord_id: str) -> None:
        self._cid_of[cl_ord_id] = cid
        self._cl_of[cid] = cl_ord_id
        for kind, payload in self._held.pop(cl_ord_id, []):
            if kind == "order":
                self._on_order_payload(payload)
            else:
                self._on_exec_payload(payload)

    def _hold(self, cl_ord_id: str, kind: str, payload: Payload) -> None:
        self.stats.held_reports += 1
        self._held.setdefault(cl_ord_id, []).append((kind, dict(payload)))
        while sum(len(v) for v in self._held.values()) > MAX_HELD_REPORTS:
            oldest = next(iter(self._held))
            self._held.pop(oldest)
            self.stats.external_reports += 1

    def _mine(self, payload: Payload) -> bool:
        account = text(payload.get("account_id"))
        return account in ("", self.config.account_id)

    # ------------------------------------------------------------------------------------- reports in
    def _on_order_payload(self, payload: Payload) -> None:
        if not self._mine(payload):
            return
        try:
            row = _gm_order(payload)
        except ValueError as exc:
            self.stats.bad_reports += 1
            log.warning("gm_bad_order_report", error=str(exc))
            return
        if not row.cl_ord_id:
            self.stats.bad_reports += 1
            return
        cid = self._cid_of.get(row.cl_ord_id)
        if cid is None:
            self._hold(row.cl_ord_id, "order", payload)
            return
        if row.status not in ENGINE_STATUS_OF_GM:
            self.stats.unknown_status_codes += 1
            log.warning("gm_unknown_status", client_order_id=cid, status=row.status)
            return
        if _better(row, self._orders.get(row.cl_ord_id)):
            self._orders[row.cl_ord_id] = row
        if row.filled > self._filled_seen.get(row.cl_ord_id, 0) and not self._in_resync:
            # the status counts more shares than the trades we have seen: an execution report was lost
            # (or is still on its way); ask for the day's reports rather than wait for a reconnect
            self.stats.fill_gaps += 1
            self._on_fill_gap()
        symbol = self._symbol(row.symbol, cid)
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
        if row.status == STATUS_CANCELED:
            self._once(
                cid, "final", OrderCanceled(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol)
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
            self._once(
                cid, "final", OrderExpired(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol)
            )

    def _on_exec_payload(self, payload: Payload) -> None:
        if not self._mine(payload):
            return
        exec_id = text(payload.get("exec_id"))
        cl_ord_id = text(payload.get("cl_ord_id"))
        if not cl_ord_id:
            self.stats.bad_reports += 1
            return
        if exec_id and exec_id in self._exec_ids:
            self.stats.duplicate_exec_reports += 1
            return
        cid = self._cid_of.get(cl_ord_id)
        if cid is None:
            self._hold(cl_ord_id, "exec", payload)
            return
        exec_type = code(payload.get("exec_type"))
        symbol = self._symbol(text(payload.get("symbol")), cid)
        now = self._clock.now_ns()
        ts = timestamp_ns(payload.get("created_at")) or now
        reason = reject_reason(
            code(payload.get("ord_rej_reason")), text(payload.get("ord_rej_reason_detail"))
        )
        if exec_type == EXEC_TRADE:
            self._on_trade(payload, exec_id, cid, cl_ord_id, symbol, ts, now)
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
            self._once(
                cid, "final", OrderCanceled(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol)
            )
        elif exec_type == EXEC_REJECTED:
            self._once(
                cid,
                "final",
                OrderRejected(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol, reason=reason),
            )
        elif exec_type == EXEC_EXPIRED:
            self._once(
                cid, "final", OrderExpired(ts_event=ts, ts_init=now, client_order_id=cid, symbol=symbol)
            )

    def _on_trade(
        self, payload: Payload, exec_id: str, cid: str, cl_ord_id: str, symbol: str, ts: int, now: int
    ) -> None:
        side = SIDE_OF_GM.get(code(payload.get("side")))
        price, volume = money(payload.get("price")), whole(payload.get("volume"))
        if not exec_id or side is None or price <= 0 or volume <= 0:
            self.stats.bad_reports += 1
            log.warning("gm_bad_trade_report", client_order_id=cid, exec_id=exec_id)
            return
        self._exec_ids.add(exec_id)
        self._filled_seen[cl_ord_id] = self._filled_seen.get(cl_ord_id, 0) + volume
        commission = money(payload.get("commission"))
        self._trades[exec_id] = FillReport(
            trade_id=exec_id,
            client_order_id=cid,
            broker_order_id=cl_ord_id,
            symbol=symbol,
            side=side,
            price=price,
            quantity=volume,
            commission=commission,
            stamp_duty=0,
            transfer_fee=0,
            ts_event=ts,
        )
        self._deliver(
            OrderFilled(
                ts_event=ts,
                ts_init=now,
                client_order_id=cid,
                symbol=symbol,
                trade_id=exec_id,
                side=side,
                price=price,
                quantity=volume,
                commission=commission,
            )
        )

    def _symbol(self, gm_symbol: str, cid: str) -> str:
        try:
            return from_gm(gm_symbol)
        except ValueError:
            log.warning("gm_bad_symbol", client_order_id=cid, symbol=gm_symbol)
            return gm_symbol

    def _once(self, cid: str, kind: str, event: OrderEvent) -> None:
        seen = self._emitted.setdefault(cid, set())
        if kind not in seen:
            seen.add(kind)
            self._deliver(event)

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
        self._in_resync = True
        try:  # trades first, so a status never runs ahead of the trades it counts
            for payload in reports or []:
                if isinstance(payload, Mapping):
                    self._on_exec_payload(payload)
            for payload in orders:
                self._on_order_payload(payload)
        finally:
            self._in_resync = False

    async def _day_orders(self) -> list[Payload]:
        """``get_orders`` for our account, linking any ledger row a crash left unlinked."""
        raw = await self._call(self._api.get_orders)
        orders = [p for p in raw or [] if isinstance(p, Mapping) and self._mine(p)]
        unlinked = [p for p in orders if text(p.get("cl_ord_id")) not in self._cid_of]
        if unlinked and self._ledger is not None:
            candidates = [
                Candidate(
                    cl_ord_id=text(p.get("cl_ord_id")),
                    symbol=text(p.get("symbol")),
                    side=code(p.get("side")),
                    price=money(p.get("price")),
                    volume=whole(p.get("volume")),
                    ts_ns=timestamp_ns(p.get("created_at")),
                )
                for p in unlinked
            ]
            for cid, cl_ord_id in (await self._call(self._ledger.claim_unlinked, candidates)).items():
                log.warning("gm_link_recovered", client_order_id=cid, cl_ord_id=cl_ord_id)
                self._link(cid, cl_ord_id)
        return orders

    # ------------------------------------------------------------------------------------- queries
    async def query_orders(self) -> list[OrderStatusReport]:
        reports = []
        for payload in await self._day_orders():
            row = _gm_order(payload)
            status = ENGINE_STATUS_OF_GM.get(row.status)
            side = SIDE_OF_GM.get(row.side)
            if status is None or side is None or not row.cl_ord_id:
                continue
            cid = self._cid_of.get(row.cl_ord_id, EXTERNAL_PREFIX + row.cl_ord_id)
            reports.append(
                OrderStatusReport(
                    client_order_id=cid,
                    broker_order_id=row.cl_ord_id,
                    symbol=self._symbol(row.symbol, cid),
                    side=side,
                    price=row.price,
                    quantity=row.volume,
                    filled_quantity=row.filled,
                    status=status,
                    reason=row.reason if row.status == STATUS_REJECTED else "",
                    ts_event=row.ts_event,
                )
            )
        return reports

    async def query_trades(self) -> list[FillReport]:
        await self._day_orders()  # links first, so a recovered link names its trades
        trades = []
        for payload in await self._call(self._api.get_execution_reports) or []:
            if not isinstance(payload, Mapping) or not self._mine(payload):
                continue
            if code(payload.get("exec_type")) != EXEC_TRADE:
                continue
            side = SIDE_OF_GM.get(code(payload.get("side")))
            exec_id, cl_ord_id = text(payload.get("exec_id")), text(payload.get("cl_ord_id"))
            price, volume = money(payload.get("price")), whole(payload.get("volume"))
            if side is None or not exec_id or price <= 0 or volume <= 0:
                continue
            cid = self._cid_of.get(cl_ord_id, EXTERNAL_PREFIX + cl_ord_id)
            trades.append(
                FillReport(
                    trade_id=exec_id,
                    client_order_id=cid,
                    broker_order_id=cl_ord_id,
                    symbol=self._symbol(text(payload.get("symbol")), cid),
                    side=side,
                    price=price,
                    quantity=volume,
                    commission=money(payload.get("commission")),
                    stamp_duty=0,
                    transfer_fee=0,
                    ts_event=timestamp_ns(payload.get("created_at")),
                )
            )
        return trades

    async def query_account(self) -> AccountReport:
        cash = await self._call(self._api.get_cash, account_id=self.config.account_id)
        if not isinstance(cash, Mapping) or not cash:
            raise BrokerError("gm: get_cash returned nothing for the configured account")
        balance, available = money(cash.get("balance")), money(cash.get("available"))
        market_value = money(cash.get("market_value"))
        return AccountReport(
            cash=balance,
            frozen=max(0, balance - available),
            total_asset=money(cash.get("nav")) or balance + market_value,
            market_value=market_value,
        )

    async def query_positions(self) -> list[PositionReport]:
        rows = await self._call(self._api.get_position, account_id=self.config.account_id)
        positions: dict[str, PositionReport] = {}
        for row in rows or []:
            if not isinstance(row, Mapping):
                continue
            try:
                symbol = from_gm(text(row.get("symbol")))
            except ValueError:
                self.stats.bad_reports += 1
                continue
            quantity = whole(row.get("volume"))
            if quantity <= 0:
                continue
            positions[symbol] = PositionReport(
                symbol=symbol,
                quantity=quantity,
                sellable=whole(row.get("available_now")),  # what may be sold now (T+1 applied by gm)
                avg_cost=money(row.get("vwap")),
            )
        return [positions[s] for s in sorted(positions)]
