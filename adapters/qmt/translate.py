"""xtquant pushes → engine order events, on the loop thread (``QmtBrokerAdapter`` hops them here).

``PushTranslator`` owns what the route knows per client order id (``TrackedOrder``): the broker order id
learnt from the async response, the order push or a query; whether the ack, a terminal event or a cancel
request is outstanding. It makes each fact reach the engine once:

- ``on_stock_order``: the status (``adapters.qmt.codes``) → one ``OrderAccepted``, one ``OrderCanceled``
  (with ``traded_volume`` as its ``filled_qty``: the fills the broker counts at the end, whose trade rows
  may still be on their way) or one ``OrderRejected(status_msg)`` per order; a stale or re-pushed status
  changes nothing;
- ``on_stock_trade``: ``OrderFilled``, deduplicated by (client order id, ``traded_id``) — a reconnect
  re-pushes the day's trades (RELIABILITY B3, B4);
- ``on_order_error``: ``OrderRejected("xtquant error <id>: <msg>")``;
- ``on_cancel_error`` / a cancel response with ``cancel_result != 0``: one ``OrderCancelRejected`` per
  cancel request (xtquant reports a failed cancel both ways);
- ``on_order_stock_async_response``: links the broker order id through the request seq; a cancel that
  was asked before the id was known is sent at that moment.

One account's view (``engine.order_ids``): a record naming another account (its ``account_id``) is left
out, and an ``order_remark`` becomes a client order id only when it is one of this account's ids; any
other order of the account (typed in by hand, another strategy, another account's zhixing id) is external.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from zhixing.adapters.qmt.codes import StatusAction, XtCodes
from zhixing.engine.clock import Clock
from zhixing.engine.enums import Side
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderRejected,
)
from zhixing.engine.order_ids import LEGACY_IDS, OrderIds
from zhixing.engine.units import NS_PER_SECOND, price_from_yuan


@dataclass(slots=True)
class TrackedOrder:
    """What the route knows about one client order id."""

    client_order_id: str
    symbol: str
    side: Side
    broker_order_id: int = 0
    acked: bool = False
    finished: bool = False  # canceled or rejected has been emitted
    cancel_wanted: bool = False  # cancel asked before the broker id was known: send on link
    cancel_in_flight: bool = False  # a cancel request awaits its answer: at most one reject per request
    canceled: bool = False  # the end emitted was a cancel (部撤/已撤)
    end_filled: int | None = None  # traded volume the cancel push that ended it said (None: not said)


@dataclass(slots=True)
class QmtCounters:
    submitted: int = 0
    submit_unknown: int = 0  # -2, other codes or an exception: left in flight
    cancels_sent: int = 0
    cancels_deferred: int = 0
    duplicate_trades: int = 0
    external_pushes: int = 0  # pushes about orders without a client order id
    other_account_records: int = 0  # pushes and query rows naming another account: left out
    reconnects: int = 0
    reconnect_failures: int = 0


class PushTranslator:
    """Client order id ↔ broker order id book and the push → event translation (see the module doc)."""

    def __init__(
        self,
        codes: XtCodes,
        clock: Clock,
        counters: QmtCounters,
        *,
        emit: Callable[[OrderEvent], None],
        send_cancel: Callable[[TrackedOrder], bool],
        can_send: Callable[[], bool],
        log: Any = None,
        ids: OrderIds = LEGACY_IDS,
        account_id: str = "",
    ) -> None:
        self.codes = codes
        self.ids = ids
        self.account_id = account_id
        self.clock = clock
        self.counters = counters
        self._emit_event = emit
        self._send_cancel = send_cancel
        self._can_send = can_send
        self._log = log if log is not None else structlog.get_logger("zhixing.qmt")
        self.by_cid: dict[str, TrackedOrder] = {}
        self.by_oid: dict[int, str] = {}
        self.by_seq: dict[int, str] = {}  # order request seq -> client order id, until the response
        self.cancel_by_seq: dict[int, str] = {}
        self.trades_seen: set[tuple[str, str]] = set()

    def mine(self, record: Any) -> bool:
        """False for a record that names another account (counted); a record without one is kept."""
        account = getattr(record, "account_id", "") or ""
        if self.account_id and account and account != self.account_id:
            self.counters.other_account_records += 1
            return False
        return True

    # ------------------------------------------------------------------------------------- pushes
    def on_stock_order(self, xo: Any) -> None:
        if not self.mine(xo):
            return
        tracked = self.track(xo.order_remark, xo.order_id, xo.stock_code, self.codes.side_of(xo.order_type))
        if tracked is None:
            self.counters.external_pushes += 1
            return
        action = self.codes.action_of(xo.order_status)
        ts = self.ts(xo.order_time)
        if action is StatusAction.ACCEPT:
            self._ack(tracked, ts)
        elif action is StatusAction.CANCEL:
            self._ack(tracked, ts)
            # 部撤/已撤 carry the order's cumulative traded volume: the engine holds the end until the
            # trade rows (``on_stock_trade``, a separate callback) bring its fills there
            filled = _whole(getattr(xo, "traded_volume", None))
            if not tracked.finished:
                tracked.finished = tracked.canceled = True
                tracked.cancel_wanted = tracked.cancel_in_flight = False
                tracked.end_filled = filled
                self._emit(OrderCanceled, tracked, ts, filled_qty=filled)
            elif (
                tracked.canceled
                and filled is not None
                and (tracked.end_filled is None or filled > tracked.end_filled)
            ):
                # the end pushed again with a (larger) traded volume: the engine must hear the figure
                tracked.end_filled = filled
                self._emit(OrderCanceled, tracked, ts, filled_qty=filled)
        elif action is StatusAction.REJECT:
            self._reject(tracked, xo.status_msg or f"order_status {xo.order_status}", ts)
        elif action is StatusAction.UNKNOWN:
            self._log.warning(
                "qmt_unknown_order_status", client_order_id=tracked.client_order_id, status=xo.order_status
            )

    def on_stock_trade(self, xt: Any) -> None:
        if not self.mine(xt):
            return
        tracked = self.track(xt.order_remark, xt.order_id, xt.stock_code, self.codes.side_of(xt.order_type))
        if tracked is None:
            self.counters.external_pushes += 1
            return
        key = (tracked.client_order_id, str(xt.traded_id))
        if key in self.trades_seen:
            self.counters.duplicate_trades += 1
            return
        self.trades_seen.add(key)
        self._emit(
            OrderFilled,
            tracked,
            self.ts(xt.traded_time),
            trade_id=str(xt.traded_id),
            side=tracked.side,
            price=price_from_yuan(xt.traded_price),
            quantity=int(xt.traded_volume),
            commission=price_from_yuan(xt.commission or 0),
        )

    def on_order_error(self, err: Any) -> None:
        if not self.mine(err):
            return
        tracked = self.track(getattr(err, "order_remark", None) or "", err.order_id, "", None)
        if tracked is None:
            self._log.warning("qmt_order_error_unmatched", order_id=err.order_id, error_msg=err.error_msg)
            return
        self._reject(tracked, f"xtquant error {err.error_id}: {err.error_msg}", self.clock.now_ns())

    def on_cancel_error(self, err: Any) -> None:
        if not self.mine(err):
            return
        cid = self.by_oid.get(err.order_id)
        tracked = self.by_cid.get(cid) if cid is not None else None
        if tracked is None:
            self._log.warning("qmt_cancel_error_unmatched", order_id=err.order_id, error_msg=err.error_msg)
            return
        self._cancel_rejected(tracked, f"xtquant cancel error {err.error_id}: {err.error_msg}")

    def on_order_response(self, resp: Any) -> None:
        cid = self.by_seq.pop(resp.seq, None)
        if cid is None:
            self._log.warning("qmt_order_response_unmatched", seq=resp.seq, order_id=resp.order_id)
            return
        tracked = self.by_cid[cid]
        if resp.order_id and resp.order_id > 0:
            self.link(tracked, resp.order_id)
        if resp.error_msg:  # the reject itself arrives through on_order_error
            self._log.info("qmt_order_response_error", client_order_id=cid, error_msg=resp.error_msg)

    def on_cancel_response(self, resp: Any) -> None:
        cid = self.cancel_by_seq.pop(resp.seq, None) or self.by_oid.get(resp.order_id)
        tracked = self.by_cid.get(cid) if cid is not None else None
        if tracked is None or resp.cancel_result == 0:
            return  # accepted: the 已撤/部撤 status push confirms it
        self._cancel_rejected(tracked, resp.error_msg or f"cancel_result {resp.cancel_result}")

    # ------------------------------------------------------------------------------------- the book
    def track(self, remark: str, order_id: int, symbol: str, side: Side | None) -> TrackedOrder | None:
        """The order a record is about (by broker id, else by ``order_remark`` when it is one of this
        account's ids), linking the two."""
        cid = self.by_oid.get(order_id) if order_id else None
        if cid is None and remark and self.ids.is_ours(remark):
            cid = remark
        if cid is None:
            return None
        tracked = self.by_cid.get(cid)
        if tracked is None:
            if side is None or not symbol:
                return None
            tracked = TrackedOrder(client_order_id=cid, symbol=symbol, side=side)
            self.by_cid[cid] = tracked
        if order_id and order_id > 0 and not tracked.broker_order_id:
            self.link(tracked, order_id)
        return tracked

    def link(self, tracked: TrackedOrder, order_id: int) -> None:
        tracked.broker_order_id = order_id
        self.by_oid[order_id] = tracked.client_order_id
        if tracked.cancel_wanted and not tracked.finished and self._can_send():
            self.deferred_cancel(tracked)

    def deferred_cancel(self, tracked: TrackedOrder) -> None:
        """Send a cancel that waited for the broker id; a local refusal is reported as a cancel reject."""
        if not self._send_cancel(tracked):
            self._emit(
                OrderCancelRejected,
                tracked,
                self.clock.now_ns(),
                reason="cancel_order_stock_async returned -1: not sent",
            )

    def ts(self, seconds: Any) -> int:
        """xtquant times are epoch seconds; 0 or missing means "now"."""
        try:
            value = int(seconds)
        except (TypeError, ValueError):
            value = 0
        return value * NS_PER_SECOND if value > 0 else self.clock.now_ns()

    # ------------------------------------------------------------------------------------- emit once
    def _ack(self, tracked: TrackedOrder, ts: int) -> None:
        if tracked.acked or tracked.finished or not tracked.broker_order_id:
            return
        tracked.acked = True
        self._emit(OrderAccepted, tracked, ts, broker_order_id=str(tracked.broker_order_id))

    def _reject(self, tracked: TrackedOrder, reason: str, ts: int) -> None:
        if tracked.finished:
            return
        tracked.finished = True
        tracked.cancel_wanted = tracked.cancel_in_flight = False
        self._emit(OrderRejected, tracked, ts, reason=reason)

    def _cancel_rejected(self, tracked: TrackedOrder, reason: str) -> None:
        if not tracked.cancel_in_flight:
            return  # the error push and the failed response describe the same request: one reject
        tracked.cancel_in_flight = False
        self._emit(OrderCancelRejected, tracked, self.clock.now_ns(), reason=reason)

    def _emit(
        self, kind: Callable[..., OrderEvent], tracked: TrackedOrder, ts_event: int, **fields: Any
    ) -> None:
        self._emit_event(
            kind(
                ts_event=ts_event,
                ts_init=self.clock.now_ns(),
                client_order_id=tracked.client_order_id,
                symbol=tracked.symbol,
                **fields,
            )
        )


def _whole(value: Any) -> int | None:
    """A volume xtquant reported, as a non-negative int; None when it is missing or not a number."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
