"""A faithful fake of the ``gm.api`` functions the gm route and feed call (gm 3.0.192).

``FakeGmApi`` has the same public function names and parameter names (and defaults) as the real ones;
``tests/adapters/gm/test_gm_api_surface.py`` checks both against the real ``gm/api/*.py``.
Payloads are the dicts gm
builds (``protobuf_to_dict`` of ``Order``/``ExecRpt``/``Cash``/``Position``/``Tick``/``Instrument``: field
names from ``gm/pb/*.pyi``, timestamps as Beijing-aware ``datetime``, prices float yuan).

The book is scripted: the test says when an order is acknowledged, filled, cancelled or rejected. Callbacks
are queued and delivered, in order, through ``adapters.gm.entry`` (the module gm's ``run`` imports) from a
background thread, the way gm's own thread calls a strategy; ``deliver()`` runs them and joins the thread.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from zhixing.adapters.gm import entry
from zhixing.adapters.gm.codes import (
    EXEC_CANCEL_REJECTED,
    EXEC_CANCELED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_TRADE,
    FINAL_STATUSES,
    STATUS_CANCELED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_PENDING_NEW,
    STATUS_REJECTED,
)

BJ = timezone(timedelta(hours=8), name="Asia/Shanghai")
START = datetime(2026, 11, 24, 10, 0, 0, tzinfo=BJ)
_CONTEXT = object()  # what gm passes as ``context``; the entry module ignores it


class GmError(Exception):
    """What ``check_gm_status`` raises in the real SDK (``gm.api._errors.GmError``)."""


class FakeGmApi:
    """The ``gm.api`` surface on a scripted book for one account."""

    def __init__(self, account_id: str = "acct-1", *, cash: float = 1_000_000.0) -> None:
        self.account_id = account_id
        self.orders: dict[str, dict[str, Any]] = {}  # cl_ord_id -> order dict
        self.execrpts: list[dict[str, Any]] = []
        self.positions: dict[str, dict[str, Any]] = {}
        self.cash: dict[str, Any] = {
            "account_id": account_id,
            "nav": cash,
            "balance": cash,
            "available": cash,
            "frozen": 0.0,
            "market_value": 0.0,
        }
        self.instruments: dict[str, dict[str, Any]] = {}
        self.ticks: dict[str, dict[str, Any]] = {}
        self.token = ""
        self.serv_addr = ""
        self.subscribed: set[str] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.connected = True
        self.auto_ack = True
        self.callbacks_before_return = False  # deliver the ack before order_volume returns (B2)
        self.fail_next_order: Exception | None = None  # raise before placing (nothing at the counter)
        self.raise_after_place: Exception | None = None  # place, then raise (a lost answer)
        self.reject_next: tuple[int, str] | None = None  # (ord_rej_reason, detail) for the next order
        self._queue: list[Callable[[], None]] = []
        self._lock = threading.Condition()
        self.running = False
        self.run_args: dict[str, Any] = {}
        self._cl_seq = itertools.count(1)
        self._exec_seq = itertools.count(1)
        self._tick = itertools.count(1)

    # ----------------------------------------------------------------------------------- helpers
    def now(self) -> datetime:
        return START + timedelta(milliseconds=next(self._tick))

    def _queue_callback(self, call: Callable[[], None]) -> None:
        if not self.connected:
            return  # nothing reaches a strategy while the link is down (the state still changes)
        with self._lock:
            self._queue.append(call)
            self._lock.notify_all()

    def deliver(self) -> None:
        """Run the queued callbacks in order on a background thread (gm's) and wait for it."""
        with self._lock:
            calls, self._queue = self._queue, []
        thread = threading.Thread(target=lambda: [c() for c in calls], name="gm-fake-callbacks")
        thread.start()
        thread.join()

    def _push_order(self, order: dict[str, Any]) -> None:
        snapshot = dict(order)
        self._queue_callback(lambda: entry.on_order_status(_CONTEXT, snapshot))

    def _exec(self, order: dict[str, Any], exec_type: int, **extra: Any) -> dict[str, Any]:
        report = {
            "strategy_id": "strategy-1",
            "account_id": order["account_id"],
            "account_name": "",
            "channel_id": "",
            "cl_ord_id": order["cl_ord_id"],
            "order_id": order["order_id"],
            "exec_id": f"EX{next(self._exec_seq):06d}",
            "symbol": order["symbol"],
            "order_business": 0,
            "position_effect": order["position_effect"],
            "side": order["side"],
            "ord_rej_reason": 0,
            "ord_rej_reason_detail": "",
            "exec_type": exec_type,
            "price": 0.0,
            "volume": 0,
            "amount": 0.0,
            "commission": 0.0,
            "cost": 0.0,
            "created_at": self.now(),
            "sno": 0,
        }
        report.update(extra)
        self.execrpts.append(report)
        snapshot = dict(report)
        self._queue_callback(lambda: entry.on_execution_report(_CONTEXT, snapshot))
        return report

    def _set_status(self, order: dict[str, Any], status: int, **extra: Any) -> None:
        order.update(extra)
        order["status"] = status
        order["updated_at"] = self.now()
        self._push_order(order)

    # ----------------------------------------------------------------------------------- gm.api: basic
    def set_token(self, token: str) -> None:
        self.calls.append(("set_token", {}))  # the value is never recorded
        self.token = token

    def set_serv_addr(self, addr: str) -> None:
        self.calls.append(("set_serv_addr", {"addr": addr}))
        self.serv_addr = addr

    def subscribe(
        self,
        symbols: str | list[str],
        frequency: str | None = None,
        count: int = 0,
        wait_group: bool = False,
        wait_group_timeout: str = "10s",
        unsubscribe_previous: bool = False,
        fields: str | None = None,
        format: str = "df",
    ) -> None:
        self.calls.append(("subscribe", {"symbols": symbols, "frequency": frequency}))
        names = symbols.split(",") if isinstance(symbols, str) else list(symbols)
        if unsubscribe_previous:
            self.subscribed.clear()
        self.subscribed.update(n.strip() for n in names if n.strip())

    def unsubscribe(self, symbols: str | list[str], frequency: str = "1d") -> None:
        self.calls.append(("unsubscribe", {"symbols": symbols, "frequency": frequency}))
        names = symbols.split(",") if isinstance(symbols, str) else list(symbols)
        self.subscribed.difference_update(n.strip() for n in names)

    def current(
        self, symbols: str | list[str], fields: str = "", include_call_auction: bool = False
    ) -> list[dict[str, Any]]:
        names = symbols.split(",") if isinstance(symbols, str) else list(symbols)
        return [dict(self.ticks[n]) for n in names if n in self.ticks]

    def run(
        self,
        strategy_id: str = "",
        filename: str = "",
        mode: int = 0,
        token: str = "",
        backtest_start_time: str = "",
        backtest_end_time: str = "",
        backtest_initial_cash: float = 1000000,
        backtest_transaction_ratio: float = 1,
        backtest_commission_ratio: float = 0,
        backtest_commission_unit: float = 0,
        backtest_slippage_ratio: float = 0,
        backtest_marginfloat_ratio1: float = 0.2,
        backtest_marginfloat_ratio2: float = 0.4,
        backtest_adjust: int = 0,
        backtest_check_cache: int = 1,
        serv_addr: str = "",
        backtest_match_mode: int = 0,
        backtest_intraday: int = 0,
    ) -> int:
        """Like gm's live ``run``: import the strategy module named by ``filename`` (gm's own path-to-module
        rule), call its ``init``, then poll: deliver queued callbacks on this thread until ``stop``."""
        self.run_args = {"strategy_id": strategy_id, "filename": filename, "mode": mode,
                         "token_set": bool(token), "serv_addr": serv_addr}  # fmt: skip
        module = importlib.import_module(gm_module_name(filename))
        module.init(_CONTEXT)
        self.running = True
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._queue) or not self.running, timeout=30.0)
                calls, self._queue = self._queue, []
                if not calls and not self.running:
                    return 0
            for call in calls:
                call()

    def stop(self) -> None:
        with self._lock:
            self.running = False
            self._lock.notify_all()
        raise SystemExit(2)  # gm's stop() exits with sys.exit(2)

    # ----------------------------------------------------------------------------------- gm.api: query
    def get_instruments(
        self,
        symbols: str | list[str] | None = None,
        exchanges: str | list[str] | None = None,
        sec_types: str | list[str] | int | None = None,
        names: str | list[str] | None = None,
        skip_suspended: bool = True,
        skip_st: bool = True,
        fields: str | list[str] | None = None,
        df: bool = False,
    ) -> list[dict[str, Any]]:
        self.calls.append(("get_instruments", {"skip_suspended": skip_suspended, "skip_st": skip_st}))
        wanted = (symbols.split(",") if isinstance(symbols, str) else list(symbols)) if symbols else []
        rows = [dict(self.instruments[s]) for s in wanted if s in self.instruments]
        if skip_suspended:
            rows = [r for r in rows if not r.get("is_suspended")]
        return rows

    def get_cash(self, account_id: str | None = None) -> dict[str, Any]:
        return dict(self.cash) if account_id in (None, self.account_id) else {}

    def get_position(self, account_id: str | None = None) -> list[dict[str, Any]]:
        if account_id not in (None, self.account_id):
            return []
        return [dict(p) for p in self.positions.values()]

    # ----------------------------------------------------------------------------------- gm.api: trade
    def order_volume(
        self,
        symbol: str,
        volume: int,
        side: int,
        order_type: int,
        position_effect: int,
        price: float = 0,
        trigger_type: int = 0,
        stop_price: float = 0,
        order_duration: int = 0,
        order_qualifier: int = 0,
        account: str = "",
    ) -> list[dict[str, Any]]:
        self.calls.append(("order_volume", {"symbol": symbol, "volume": volume, "side": side,
                                            "price": price, "account": account}))  # fmt: skip
        if self.fail_next_order is not None:
            exc, self.fail_next_order = self.fail_next_order, None
            raise exc
        cl_ord_id = f"CL{next(self._cl_seq):06d}"
        now = self.now()
        order: dict[str, Any] = {
            "strategy_id": "strategy-1",
            "account_id": account or self.account_id,
            "account_name": "",
            "channel_id": "",
            "cl_ord_id": cl_ord_id,
            "order_id": "",
            "ex_ord_id": "",
            "algo_order_id": "",
            "symbol": symbol,
            "side": side,
            "position_effect": position_effect,
            "position_side": 0,
            "order_type": order_type,
            "order_business": 0,
            "order_duration": order_duration,
            "order_qualifier": order_qualifier,
            "order_src": 0,
            "position_src": 0,
            "status": STATUS_PENDING_NEW,
            "ord_rej_reason": 0,
            "ord_rej_reason_detail": "",
            "price": price,
            "stop_price": stop_price,
            "order_style": 1,
            "volume": volume,
            "value": 0.0,
            "percent": 0.0,
            "filled_volume": 0,
            "filled_vwap": 0.0,
            "filled_amount": 0.0,
            "filled_commission": 0.0,
            "created_at": now,
            "updated_at": now,
            "origin_module": None,
            "origin_product": None,
        }
        self.orders[cl_ord_id] = order
        if self.reject_next is not None:
            (reason, detail), self.reject_next = self.reject_next, None
            self._set_status(order, STATUS_REJECTED, ord_rej_reason=reason, ord_rej_reason_detail=detail)
            self._exec(order, EXEC_REJECTED, ord_rej_reason=reason, ord_rej_reason_detail=detail)
        elif self.auto_ack:
            self.ack(cl_ord_id)
        answer = [dict(order)]
        if self.callbacks_before_return:
            with self._lock:
                calls, self._queue = self._queue, []
            for call in calls:  # on the caller's thread, before order_volume returns
                call()
        if self.raise_after_place is not None:
            exc, self.raise_after_place = self.raise_after_place, None
            raise exc
        return answer

    def order_cancel(self, wait_cancel_orders: dict[str, Any] | list[dict[str, Any]]) -> None:
        requests = wait_cancel_orders if isinstance(wait_cancel_orders, list) else [wait_cancel_orders]
        if not requests:
            raise GmError("撤单信息不能为空")
        self.calls.append(("order_cancel", {"wait_cancel_orders": requests}))
        for request in requests:
            order = self.orders.get(request.get("cl_ord_id", ""))
            if order is None:
                continue
            if order["status"] in FINAL_STATUSES:
                self._exec(
                    order, EXEC_CANCEL_REJECTED, ord_rej_reason=101, ord_rej_reason_detail="委托已完成"
                )
                continue
            self._set_status(order, STATUS_CANCELED)
            self._exec(order, EXEC_CANCELED)

    def get_orders(self) -> list[dict[str, Any]]:
        return [dict(o) for o in self.orders.values()]

    def get_unfinished_orders(self) -> list[dict[str, Any]]:
        return [dict(o) for o in self.orders.values() if o["status"] not in FINAL_STATUSES]

    def get_execution_reports(self) -> list[dict[str, Any]]:
        self.calls.append(("get_execution_reports", {}))
        return [dict(r) for r in self.execrpts]

    # ----------------------------------------------------------------------------------- scripting
    def ack(self, cl_ord_id: str) -> None:
        order = self.orders[cl_ord_id]
        order["order_id"] = f"OID{cl_ord_id}"
        self._set_status(order, STATUS_NEW)
        self._exec(order, EXEC_NEW)

    def fill(
        self,
        cl_ord_id: str,
        volume: int,
        price: float | None = None,
        commission: float = 5.0,
        *,
        lose_report: bool = False,
    ) -> None:
        """A trade: its execution report (unless ``lose_report``: gm never pushes it, a query still
        returns it), then the order's new status."""
        order = self.orders[cl_ord_id]
        price = order["price"] if price is None else price
        connected, self.connected = self.connected, self.connected and not lose_report
        self._exec(
            order, EXEC_TRADE, price=price, volume=volume, amount=price * volume, commission=commission
        )
        self.connected = connected
        filled = order["filled_volume"] + volume
        status = STATUS_FILLED if filled >= order["volume"] else STATUS_PARTIALLY_FILLED
        if order["status"] in FINAL_STATUSES:
            status = order["status"]
        self._set_status(order, status, filled_volume=filled)
        symbol = order["symbol"]
        sign = 1 if order["side"] == 1 else -1
        pos = self.positions.setdefault(
            symbol,
            {
                "account_id": self.account_id,
                "symbol": symbol,
                "side": 1,
                "volume": 0,
                "volume_today": 0,
                "vwap": price,
                "available_now": 0,
            },
        )
        pos["volume"] += sign * volume
        if sign > 0:
            pos["volume_today"] += volume  # bought today: not sellable until tomorrow (T+1)
        else:
            pos["available_now"] -= volume
        self.cash["balance"] -= sign * price * volume + commission
        self.cash["available"] -= sign * price * volume + commission

    def reject_cancel(self, cl_ord_id: str, reason: int = 101, detail: str = "委托已完成") -> None:
        self._exec(self.orders[cl_ord_id], EXEC_CANCEL_REJECTED, ord_rej_reason=reason,
                   ord_rej_reason_detail=detail)  # fmt: skip

    def disconnect(self) -> None:
        self._queue_callback(lambda: entry.on_trade_data_disconnected(_CONTEXT))
        self.connected = False

    def reconnect(self, *, repush: bool = True) -> None:
        """The link is back; like gm, re-push every order status and execution report of the day."""
        self.connected = True
        self._queue_callback(lambda: entry.on_trade_data_connected(_CONTEXT))
        if repush:
            for report in list(self.execrpts):
                snapshot = dict(report)
                self._queue_callback(lambda s=snapshot: entry.on_execution_report(_CONTEXT, s))  # type: ignore[misc]
            for order in list(self.orders.values()):
                self._push_order(order)

    def push_tick(self, tick: dict[str, Any]) -> None:
        snapshot = dict(tick)
        self._queue_callback(lambda: entry.on_tick(_CONTEXT, snapshot))

    def error(self, code: int, info: str) -> None:
        self._queue_callback(lambda: entry.on_error(_CONTEXT, code, info))


def gm_module_name(filename: str) -> str:
    """gm's ``run``: strip the longest common prefix with a ``sys.path`` entry, ``.py``, and separators."""
    common = sorted(
        # character-wise on purpose (RUF071): this is gm's own rule, quirks included
        (os.path.commonprefix([p.replace("\\", "/"), filename]) for p in set(sys.path)),  # noqa: RUF071
        key=len,
        reverse=True,
    )[0]
    name = filename.replace(common, "")
    name = name.removeprefix("/")
    name = name.removesuffix(".py")
    return name.replace("/", ".").replace("\\", ".")


def tick(
    symbol: str,
    price: float,
    bid: float,
    ask: float,
    *,
    bid_v: int = 1000,
    ask_v: int = 1000,
    cum_volume: int = 10_000,
    cum_amount: float = 100_000.0,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A tick dict as ``gm``'s ``on_tick``/``current`` gives it (``quotes`` has 5 or 10 levels; one here)."""
    return {
        "symbol": symbol,
        "open": price,
        "high": price,
        "low": price,
        "price": price,
        "quotes": [{"bid_p": bid, "bid_v": bid_v, "ask_p": ask, "ask_v": ask_v}],
        "cum_volume": cum_volume,
        "cum_amount": cum_amount,
        "cum_position": 0,
        "last_amount": 0.0,
        "last_volume": 0,
        "trade_type": 0,
        "created_at": at or START,
    }


def instrument(
    symbol: str, pre_close: float, *, upper: float, lower: float, suspended: bool = False
) -> dict[str, Any]:
    """A ``get_instruments`` row (``Instrument`` with ``info`` unfolded)."""
    return {
        "symbol": symbol,
        "sec_type": 1,
        "sec_name": "浦发银行",
        "price_tick": 0.01,
        "pre_close": pre_close,
        "upper_limit": upper,
        "lower_limit": lower,
        "is_suspended": 1 if suspended else 0,
        "trade_date": START.replace(hour=0, minute=0),
    }
