"""``QmtBrokerAdapter``: the QMT route (miniQMT through ``xtquant.xttrader.XtQuantTrader``).

Requests:
- ``submit`` calls ``order_stock_async(account, code, STOCK_BUY|STOCK_SELL, volume, FIX_PRICE, price,
  strategy_name, order_remark=<client order id>)`` (at most 24 characters, xtquant's limit; the
  account's ids are 15, ``engine.order_ids``) on the loop thread (the SDK only queues it) and keeps
  the returned request seq. A positive seq is correlated with ``on_order_stock_async_response`` (order_id,
  seq) to link the broker order id. ``-1`` is a definitive local failure (``BrokerError``, nothing sent);
  ``-2``, any other value or an exception is *unknown*: the order stays in flight for the in-flight checker
  to query by ``order_remark`` (RELIABILITY B1: never a blind resubmit).
- ``cancel`` calls ``cancel_order_stock_async(account, order_id)``. Without the broker order id (the ack
  has not arrived) the cancel is deferred and sent the moment the id is linked.
- Queries run the SDK's blocking ``query_stock_*`` calls in the default executor and map the records to
  the engine's reports; the client order id comes back from ``order_remark``.

Callbacks arrive on xtquant's own thread; ``_Callback`` hops each one onto the event loop with
``loop.call_soon_threadsafe``; ``adapters.qmt.translate.PushTranslator`` translates it there:
``on_stock_order`` status → one ``OrderAccepted`` / ``OrderCanceled`` / ``OrderRejected`` per order,
``on_stock_trade`` → ``OrderFilled`` deduplicated by (client order id, ``traded_id``), ``on_order_error``
→ ``OrderRejected(reason)``, ``on_cancel_error`` and a failed cancel response → one
``OrderCancelRejected`` per cancel request.

Connection: xtquant's ``connect`` is one-shot. On ``on_disconnected`` the adapter stops accepting orders
(``BrokerDisconnected``, RELIABILITY D2), and reconnects with a NEW trader object (the next session id),
exponential backoff with seeded jitter, bounded by ``reconnect_max_attempts``; after a reconnect it
re-subscribes and replays the day's orders and trades through the same translation (deduplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import structlog

from zhixing.adapters.qmt.codes import SendOutcome, XtCodes, load_codes, send_outcome
from zhixing.adapters.qmt.config import QmtRouteConfig
from zhixing.adapters.qmt.translate import PushTranslator, QmtCounters, TrackedOrder
from zhixing.engine.broker import EventSink
from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import BrokerDisconnected, BrokerError
from zhixing.engine.events import AccountReport, FillReport, OrderEvent, OrderStatusReport, PositionReport
from zhixing.engine.order_ids import MAX_ID_LENGTH, OrderIds
from zhixing.engine.orders import Order
from zhixing.engine.units import NS_PER_SECOND, price_from_yuan, yuan

log = structlog.get_logger("zhixing.qmt")

TraderFactory = Callable[[str, int], Any]
"""``(userdata path, session id) -> XtQuantTrader`` (the real class, or the test fake)."""
AccountFactory = Callable[[str, str], Any]
"""``(account id, account type) -> StockAccount``."""


class ConnectionState(StrEnum):
    IDLE = "IDLE"  # never connected, or closed
    CONNECTED = "CONNECTED"
    RECONNECTING = "RECONNECTING"
    FAILED = "FAILED"  # reconnect attempts exhausted: an operator must look


class _Callback:
    """The ``XtQuantTraderCallback`` handed to the SDK: every method hops onto the loop, nothing else."""

    def __init__(self, adapter: QmtBrokerAdapter, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        self._adapter = adapter
        self._loop = loop
        self._generation = generation

    def _hop(self, handler: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the process is shutting down
            self._loop.call_soon_threadsafe(handler, self._generation, *args)

    def on_connected(self) -> None:
        return None

    def on_disconnected(self) -> None:
        self._hop(self._adapter._on_disconnected)

    def on_account_status(self, status: Any) -> None:
        self._hop(self._adapter._on_account_status, status)

    def on_stock_asset(self, asset: Any) -> None:
        return None

    def on_stock_order(self, order: Any) -> None:
        self._hop(self._adapter._on_push, "on_stock_order", order)

    def on_stock_trade(self, trade: Any) -> None:
        self._hop(self._adapter._on_push, "on_stock_trade", trade)

    def on_stock_position(self, position: Any) -> None:
        return None

    def on_order_error(self, order_error: Any) -> None:
        self._hop(self._adapter._on_push, "on_order_error", order_error)

    def on_cancel_error(self, cancel_error: Any) -> None:
        self._hop(self._adapter._on_push, "on_cancel_error", cancel_error)

    def on_order_stock_async_response(self, response: Any) -> None:
        self._hop(self._adapter._on_push, "on_order_response", response)

    def on_cancel_order_stock_async_response(self, response: Any) -> None:
        self._hop(self._adapter._on_push, "on_cancel_response", response)


def _default_trader_factory(path: str, session: int) -> Any:
    from xtquant.xttrader import XtQuantTrader  # type: ignore[import-untyped]  # Windows-only .pyd inside

    return XtQuantTrader(path, session)


def _default_account_factory(account_id: str, account_type: str) -> Any:
    from xtquant.xttype import StockAccount  # type: ignore[import-untyped]

    return StockAccount(account_id, account_type)


class QmtBrokerAdapter:
    """``engine.broker.BrokerAdapter`` over miniQMT (see the module doc)."""

    name = "qmt"

    def __init__(
        self,
        config: QmtRouteConfig,
        *,
        clock: Clock,
        trader_factory: TraderFactory | None = None,
        account_factory: AccountFactory | None = None,
        xtconstant: Any | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.codes: XtCodes = load_codes(xtconstant)
        self._trader_factory = trader_factory or _default_trader_factory
        self._account = (account_factory or _default_account_factory)(config.account_id, config.account_type)
        self._on_connection = on_connection
        self._connection_listener: Callable[[bool, str], None] | None = None
        self.state = ConnectionState.IDLE
        self.counters = QmtCounters()
        self.last_account_status: int | None = None
        self._sink: EventSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trader: Any = None
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnect_timer: TimerHandle | None = None
        self._rng = random.Random(config.session_id)
        self._log = log.bind(account=config.masked_account)
        self.order_ids = OrderIds.for_account(config.account_id)  # the OrderManager issues these
        self.book = PushTranslator(
            self.codes,
            clock,
            self.counters,
            emit=self._deliver,
            send_cancel=self._send_cancel,
            ids=self.order_ids,
            account_id=config.account_id,
            can_send=lambda: self.connected,
            log=self._log,
        )

    # ------------------------------------------------------------------------------------- lifecycle
    def set_connection_listener(self, listener: Callable[[bool, str], None] | None) -> None:
        """Told ``(False, reason)`` when the link to miniQMT drops, ``(True, "")`` once it is back and
        caught up (``engine.connection.ConnectionMonitor``)."""
        self._connection_listener = listener

    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        """Start, connect and subscribe one trader; raises ``BrokerDisconnected`` if miniQMT says no."""
        self._loop = asyncio.get_running_loop()
        await self._open_trader()
        self._log.info("qmt_connected", session_id=self._session_id())

    async def close(self) -> None:
        self.state = ConnectionState.IDLE
        if self._reconnect_timer is not None:
            self._reconnect_timer.cancel()
            self._reconnect_timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        trader, self._trader = self._trader, None
        if trader is not None:
            await self._stop(trader)

    async def join_background(self) -> None:
        """Wait for the route's background work (reconnect attempts, stopping old traders) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    def _session_id(self) -> int:
        return self.config.session_id + max(0, self._generation - 1)

    async def _open_trader(self) -> None:
        loop = self._require_loop()
        self._generation += 1
        session = self._session_id()
        try:
            # built off the loop thread: XtQuantTrader.__init__ calls asyncio.set_event_loop() with a loop
            # of its own when it runs on the main thread, which must not touch ours
            trader = await loop.run_in_executor(None, self._trader_factory, self.config.path, session)
        except Exception as exc:
            raise BrokerDisconnected(f"xtquant XtQuantTrader() failed: {exc!r}") from exc
        trader.register_callback(_Callback(self, loop, self._generation))
        try:
            await loop.run_in_executor(None, trader.start)
            code = await loop.run_in_executor(None, trader.connect)
            if code != 0:
                raise BrokerDisconnected(
                    f"xtquant connect returned {code} (is miniQMT running and logged in?)"
                )
            code = await loop.run_in_executor(None, trader.subscribe, self._account)
            if code != 0:
                raise BrokerDisconnected(
                    f"xtquant subscribe returned {code} for {self.config.masked_account}"
                )
        except BrokerError:
            await self._stop(trader)
            raise
        except Exception as exc:  # the SDK's own errors, mapped at the boundary
            await self._stop(trader)
            raise BrokerDisconnected(f"xtquant start/connect failed: {exc!r}") from exc
        self._trader = trader
        self.state = ConnectionState.CONNECTED

    async def _stop(self, trader: Any) -> None:
        try:
            await self._require_loop().run_in_executor(None, trader.stop)
        except Exception as exc:  # stopping a dead trader may fail; nothing depends on it
            self._log.info("qmt_stop_failed", error=repr(exc))

    # ------------------------------------------------------------------------------------- requests
    async def submit(self, order: Order) -> None:
        trader = self._require_connected()
        cid = order.client_order_id
        if len(cid) > MAX_ID_LENGTH:
            raise BrokerError(
                f"client order id {cid!r} is longer than order_remark's {MAX_ID_LENGTH}: not sent"
            )
        price_type = self.codes.price_type_of(order.order_type, order.symbol)
        if price_type is None:
            raise BrokerError(
                f"qmt: {cid}: xtconstant has no price type for {order.order_type.value} on {order.symbol}: "
                "not sent"
            )
        if cid in self.book.by_cid:  # the remark is the idempotency key: never a second broker order
            self._log.warning("qmt_duplicate_submit_ignored", client_order_id=cid)
            return
        self.book.by_cid[cid] = TrackedOrder(client_order_id=cid, symbol=order.symbol, side=order.side)
        try:
            code = trader.order_stock_async(
                self._account,
                order.symbol,
                self.codes.order_type_of(order.side),
                order.quantity,
                price_type,
                yuan(order.price),
                self.config.strategy_name,
                cid,
            )
        except Exception as exc:  # it may have left: unknown, never a resend
            self.counters.submit_unknown += 1
            self._log.error("qmt_submit_unknown", client_order_id=cid, error=repr(exc))
            return
        outcome = send_outcome(code)
        if outcome is SendOutcome.SENT:
            self.book.by_seq[code] = cid
            self.counters.submitted += 1
        elif outcome is SendOutcome.FAILED:
            del self.book.by_cid[cid]
            raise BrokerError(f"order_stock_async returned {code}: not sent")
        else:
            self.counters.submit_unknown += 1
            self._log.warning("qmt_submit_unknown", client_order_id=cid, code=code)

    async def cancel(self, order: Order) -> None:
        self._require_connected()
        cid = order.client_order_id
        tracked = self.book.by_cid.get(cid)
        if tracked is None:  # an order from before a restart: the journal knows its broker id
            tracked = TrackedOrder(client_order_id=cid, symbol=order.symbol, side=order.side)
            self.book.by_cid[cid] = tracked
            if order.broker_order_id.isdigit():
                self.book.link(tracked, int(order.broker_order_id))
        if tracked.finished:
            return
        if not tracked.broker_order_id:
            tracked.cancel_wanted = True
            self.counters.cancels_deferred += 1
            self._log.info("qmt_cancel_deferred", client_order_id=cid)
            return
        if not self._send_cancel(tracked):
            raise BrokerError(f"cancel_order_stock_async refused the cancel of {cid}: not sent")

    def _send_cancel(self, tracked: TrackedOrder) -> bool:
        """Send one cancel; False when xtquant refused it locally (-1)."""
        tracked.cancel_wanted = False
        trader = self._trader
        if trader is None or not self.connected:
            tracked.cancel_wanted = True  # sent after the reconnect
            return True
        try:
            code = trader.cancel_order_stock_async(self._account, tracked.broker_order_id)
        except Exception as exc:  # unknown: the in-flight checker releases an unanswered cancel
            self._log.error("qmt_cancel_unknown", client_order_id=tracked.client_order_id, error=repr(exc))
            return True
        outcome = send_outcome(code)
        if outcome is SendOutcome.FAILED:
            return False
        self.counters.cancels_sent += 1
        tracked.cancel_in_flight = True
        if outcome is SendOutcome.SENT:
            self.book.cancel_by_seq[code] = tracked.client_order_id
        else:
            self._log.warning("qmt_cancel_unknown", client_order_id=tracked.client_order_id, code=code)
        return True

    # ------------------------------------------------------------------------------------- queries
    async def query_account(self) -> AccountReport:
        asset = await self._query("query_stock_asset")
        if asset is None:
            raise BrokerError("query_stock_asset returned nothing")
        return AccountReport(
            cash=price_from_yuan(asset.cash),
            frozen=price_from_yuan(asset.frozen_cash),
            total_asset=price_from_yuan(asset.total_asset),
            market_value=price_from_yuan(asset.market_value),
        )

    async def query_positions(self) -> list[PositionReport]:
        rows = await self._query("query_stock_positions")
        return [
            PositionReport(
                symbol=p.stock_code,
                quantity=int(p.volume),
                sellable=int(p.can_use_volume),  # T+1: what may be sold today
                avg_cost=price_from_yuan(p.avg_price),
            )
            for p in rows or []
            if int(p.volume) > 0 and self.book.mine(p)
        ]

    async def query_orders(self) -> list[OrderStatusReport]:
        reports: list[OrderStatusReport] = []
        for xo in await self._query("query_stock_orders") or []:
            side = self.codes.side_of(xo.order_type)
            if side is None or not self.book.mine(xo):
                continue  # not a stock buy/sell (e.g. a fund subscription), another account: not ours
            cid = f"qmt-external-{xo.order_id}"
            tracked = self.book.track(xo.order_remark, xo.order_id, xo.stock_code, side)
            if tracked is not None:
                cid = tracked.client_order_id
            reports.append(
                OrderStatusReport(
                    client_order_id=cid,
                    broker_order_id=str(xo.order_id),
                    symbol=xo.stock_code,
                    side=side,
                    price=price_from_yuan(xo.price),
                    quantity=int(xo.order_volume),
                    filled_quantity=int(xo.traded_volume),
                    status=self.codes.engine_status(xo.order_status, int(xo.traded_volume)),
                    reason=xo.status_msg if xo.order_status == self.codes.ORDER_JUNK else "",
                    ts_event=self.book.ts(xo.order_time),
                )
            )
        return reports

    async def query_trades(self) -> list[FillReport]:
        reports: list[FillReport] = []
        for xt in await self._query("query_stock_trades") or []:
            side = self.codes.side_of(xt.order_type)
            if side is None or not self.book.mine(xt):
                continue
            remark = xt.order_remark if self.order_ids.is_ours(xt.order_remark or "") else ""
            cid = self.book.by_oid.get(xt.order_id) or remark or f"qmt-external-{xt.order_id}"
            reports.append(
                FillReport(
                    trade_id=str(xt.traded_id),
                    client_order_id=cid,
                    broker_order_id=str(xt.order_id),
                    symbol=xt.stock_code,
                    side=side,
                    price=price_from_yuan(xt.traded_price),
                    quantity=int(xt.traded_volume),
                    commission=price_from_yuan(xt.commission or 0),
                    stamp_duty=0,
                    transfer_fee=0,
                    ts_event=self.book.ts(xt.traded_time),
                )
            )
        return reports

    async def _query(self, method: str) -> Any:
        trader = self._require_connected()
        try:
            return await self._require_loop().run_in_executor(None, getattr(trader, method), self._account)
        except Exception as exc:
            raise BrokerError(f"xtquant {method} failed: {exc!r}") from exc

    # ------------------------------------------------------------------------------------- callbacks
    # Each runs on the loop thread (hopped by _Callback); ``generation`` names the trader that sent it.
    def _on_push(self, generation: int, handler: str, record: Any) -> None:
        getattr(self.book, handler)(record)

    def _on_account_status(self, generation: int, status: Any) -> None:
        self.last_account_status = int(status.status)
        level = "info" if status.status == self.codes.ACCOUNT_STATUS_OK else "warning"
        getattr(self._log, level)("qmt_account_status", status=status.status)

    def _on_disconnected(self, generation: int) -> None:
        if generation != self._generation or self.state is not ConnectionState.CONNECTED:
            return  # an old trader's farewell, or we are closing
        self.state = ConnectionState.RECONNECTING
        self._log.warning("qmt_disconnected", session_id=self._session_id())
        if self._on_connection is not None:
            self._on_connection(False)
        if self._connection_listener is not None:
            self._connection_listener(False, "qmt_disconnected")
        old, self._trader = self._trader, None
        if old is not None:
            self._spawn(self._stop(old), "qmt_stop_old_trader")
        self._schedule_reconnect(1)

    # ------------------------------------------------------------------------------------- reconnect
    def backoff_ns(self, attempt: int) -> int:
        """Delay before reconnect ``attempt`` (1-based): doubling from the initial, capped, jittered."""
        base = min(self.config.reconnect_initial_s * 2 ** (attempt - 1), self.config.reconnect_max_s)
        jitter = 1 + self.config.reconnect_jitter * (2 * self._rng.random() - 1)
        return max(1, int(base * jitter * NS_PER_SECOND))

    def _schedule_reconnect(self, attempt: int) -> None:
        delay = self.backoff_ns(attempt)
        self._log.info("qmt_reconnect_scheduled", attempt=attempt, delay_ns=delay)
        self._reconnect_timer = self.clock.call_at(
            self.clock.now_ns() + delay,
            lambda: self._spawn(self._reconnect(attempt), "qmt_reconnect"),
            "qmt_reconnect",
        )

    async def _reconnect(self, attempt: int) -> None:
        self._reconnect_timer = None
        if self.state is not ConnectionState.RECONNECTING:
            return
        try:
            await self._open_trader()
        except BrokerError as exc:
            self.counters.reconnect_failures += 1
            self._log.warning("qmt_reconnect_failed", attempt=attempt, error=str(exc))
            if attempt >= self.config.reconnect_max_attempts:
                self.state = ConnectionState.FAILED
                self._log.error("qmt_reconnect_gave_up", attempts=attempt)
                return
            self.state = ConnectionState.RECONNECTING
            self._schedule_reconnect(attempt + 1)
            return
        self.counters.reconnects += 1
        self._log.info("qmt_reconnected", attempt=attempt, session_id=self._session_id())
        await self._catch_up()
        if self._on_connection is not None:
            self._on_connection(True)
        if self._connection_listener is not None:
            self._connection_listener(True, "")

    async def _catch_up(self) -> None:
        """Replay the day's orders and trades through the push translation (all deduplicated)."""
        try:
            orders = await self._query("query_stock_orders")
            trades = await self._query("query_stock_trades")
        except BrokerError as exc:
            self._log.warning("qmt_catch_up_failed", error=str(exc))
            return
        for xo in orders or []:
            self.book.on_stock_order(xo)
        for xt in trades or []:
            self.book.on_stock_trade(xt)
        for tracked in list(self.book.by_cid.values()):
            if tracked.cancel_wanted and tracked.broker_order_id and not tracked.finished:
                self.book.deferred_cancel(tracked)

    # ------------------------------------------------------------------------------------- helpers
    def _deliver(self, event: OrderEvent) -> None:
        if self._sink is None:
            self._log.error("qmt_event_without_sink", event_type=type(event).__name__)
            return
        self._sink(event)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _require_connected(self) -> Any:
        if self.state is not ConnectionState.CONNECTED or self._trader is None:
            raise BrokerDisconnected(f"QMT route is {self.state.value.lower()}")
        return self._trader

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = self._require_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("qmt_task_failed", task=task.get_name(), error=repr(task.exception()))
