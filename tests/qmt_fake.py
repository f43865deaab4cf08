"""A faithful fake of miniQMT as xtquant shows it: ``XtQuantTrader``, ``StockAccount``, the callback class,
the ``xttype`` records, and the ``xtdata`` functions the feed uses.

Public names and signatures match the real package (``tests/adapters/qmt/test_qmt_signatures.py`` parses
the real
``xttrader.py``, ``xttype.py`` and ``xtdata.py`` and checks them). Behaviour copied from the real source:
- ``order_stock_async`` / ``cancel_order_stock_async`` return a request seq at once; the answer
  (``XtOrderResponse`` / ``XtCancelOrderResponse`` carrying that seq) and every push arrive later, from
  the trader's own single worker thread (xtquant uses ``ThreadPoolExecutor(max_workers=1)``);
- ``connect`` is one-shot and returns 0 on success; ``subscribe`` returns 0;
- an order error is pushed after the async response of the same order (xtquant queues it until then).

``FakeQmtTerminal`` is the terminal and its broker counter: it outlives trader objects (a reconnect makes
a new one), owns the day's orders, trades, cash and positions, and is scripted by the test (``ack``,
``fill``, ``reject``; cancels are answered automatically: 已撤/部撤 if the order still works, a cancel
error "already completed" otherwise). ``settle()`` waits until every push has reached the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from zhixing.adapters.qmt.codes import load_xtconstant

XC = load_xtconstant()

_ACCOUNT_TYPES = {2: "STOCK", 3: "CREDIT"}


# ------------------------------------------------------------------------------------------ xttype
class StockAccount:
    def __init__(self, account_id: str, account_type: str = "STOCK") -> None:
        account_type = account_type.upper()
        for int_type, str_type in _ACCOUNT_TYPES.items():
            if account_type == str_type:
                self.account_type = int_type
                self.account_id = account_id
                return
        raise ValueError(f"unsupported account type {account_type}")


class XtAsset:
    def __init__(
        self,
        account_id: str,
        cash: float,
        frozen_cash: float,
        market_value: float,
        total_asset: float,
        fetch_balance: float,
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cash = cash
        self.frozen_cash = frozen_cash
        self.market_value = market_value
        self.total_asset = total_asset
        self.fetch_balance = fetch_balance


class XtOrder:
    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_id: int,
        order_sysid: str,
        order_time: int,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        traded_volume: int,
        traded_price: float,
        order_status: int,
        status_msg: str,
        strategy_name: str,
        order_remark: str,
        direction: int,
        offset_flag: int,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtTrade:
    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_type: int,
        traded_id: str,
        traded_time: int,
        traded_price: float,
        traded_volume: int,
        traded_amount: float,
        order_id: int,
        order_sysid: str,
        strategy_name: str,
        order_remark: str,
        direction: int,
        offset_flag: int,
        commission: float,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_type = order_type
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.traded_amount = traded_amount
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.commission = commission
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtPosition:
    def __init__(
        self,
        account_id: str,
        stock_code: str,
        volume: int,
        can_use_volume: int,
        open_price: float,
        market_value: float,
        frozen_volume: int,
        on_road_volume: int,
        yesterday_volume: int,
        avg_price: float,
        direction: int,
        last_price: float,
        profit_rate: float,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.volume = volume
        self.can_use_volume = can_use_volume
        self.open_price = open_price
        self.market_value = market_value
        self.frozen_volume = frozen_volume
        self.on_road_volume = on_road_volume
        self.yesterday_volume = yesterday_volume
        self.avg_price = avg_price
        self.direction = direction
        self.last_price = last_price
        self.profit_rate = profit_rate
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtOrderError:
    def __init__(
        self,
        account_id: str,
        order_id: int,
        error_id: int | None = None,
        error_msg: str | None = None,
        strategy_name: str | None = None,
        order_remark: str | None = None,
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.error_id = error_id
        self.error_msg = error_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark


class XtCancelError:
    def __init__(
        self,
        account_id: str,
        order_id: int,
        market: int,
        order_sysid: str,
        error_id: int | None = None,
        error_msg: str | None = None,
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.market = market
        self.order_sysid = order_sysid
        self.error_id = error_id
        self.error_msg = error_msg


class XtOrderResponse:
    def __init__(
        self, account_id: str, order_id: int, strategy_name: str, order_remark: str, error_msg: str, seq: int
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtCancelOrderResponse:
    def __init__(
        self, account_id: str, cancel_result: int, order_id: int, order_sysid: str, seq: int, error_msg: str
    ) -> None:
        self.account_type = XC.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cancel_result = cancel_result
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.seq = seq
        self.error_msg = error_msg


class XtAccountStatus:
    def __init__(self, account_id: str, account_type: int, status: int) -> None:
        self.account_type = account_type
        self.account_id = account_id
        self.status = status


# ------------------------------------------------------------------------------------------ xttrader
class XtQuantTraderCallback:
    def on_connected(self) -> None:
        pass

    def on_disconnected(self) -> None:
        pass

    def on_account_status(self, status: Any) -> None:
        pass

    def on_stock_asset(self, asset: Any) -> None:
        pass

    def on_stock_order(self, order: Any) -> None:
        pass

    def on_stock_trade(self, trade: Any) -> None:
        pass

    def on_stock_position(self, position: Any) -> None:
        pass

    def on_order_error(self, order_error: Any) -> None:
        pass

    def on_cancel_error(self, cancel_error: Any) -> None:
        pass

    def on_order_stock_async_response(self, response: Any) -> None:
        pass

    def on_cancel_order_stock_async_response(self, response: Any) -> None:
        pass


class XtQuantTrader:
    """One client session of the fake terminal (same public surface as the real one, for what we use)."""

    def __init__(self, path: str, session: int, callback: Any = None, *, terminal: FakeQmtTerminal) -> None:
        self.path = path
        self.session = session
        self.callback = callback
        self.connected = False
        self.started = False
        self.stopped = False
        self.subscribed: list[str] = []
        self.executor: ThreadPoolExecutor | None = None
        self._terminal = terminal

    def register_callback(self, callback: Any) -> None:
        self.callback = callback

    def start(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"xtquant-{self.session}")
        self.started = True

    def stop(self) -> None:
        self.stopped = True
        self.connected = False
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    def connect(self) -> int:
        result = self._terminal._connect_result(self)
        self.connected = result == 0
        return result

    def subscribe(self, account: StockAccount) -> int:
        self.subscribed.append(account.account_id)
        self._terminal._on_subscribe(self)
        return 0

    def unsubscribe(self, account: StockAccount) -> int:
        self.subscribed.remove(account.account_id)
        return 0

    def order_stock_async(
        self,
        account: StockAccount,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
    ) -> int:
        return self._terminal._order(
            self,
            account,
            stock_code,
            order_type,
            int(order_volume),
            price_type,
            price,
            strategy_name,
            order_remark,
        )

    def cancel_order_stock_async(self, account: StockAccount, order_id: int) -> int:
        return self._terminal._cancel(self, account, order_id)

    def query_stock_asset(self, account: StockAccount) -> XtAsset | None:
        return self._terminal._asset()

    def query_stock_orders(self, account: StockAccount, cancelable_only: bool = False) -> list[XtOrder]:
        return self._terminal._orders_snapshot(cancelable_only)

    def query_stock_trades(self, account: StockAccount) -> list[XtTrade]:
        return self._terminal._trades_snapshot()

    def query_stock_positions(self, account: StockAccount) -> list[XtPosition]:
        return self._terminal._positions_snapshot()

    # the worker thread (xtquant: ``self.executor.submit(callback, data)``)
    def _push(self, method: str, *args: Any) -> None:
        if self.executor is None or self.stopped or self.callback is None:
            return
        self._terminal.pushes += 1
        with contextlib.suppress(RuntimeError):  # stopped by another thread meanwhile
            self.executor.submit(getattr(self.callback, method), *args)

    def _drain(self) -> None:
        if self.executor is not None and not self.stopped:
            self.executor.submit(lambda: None).result()


# ------------------------------------------------------------------------------------------ terminal
@dataclass
class _Book:
    """The counter's record of one order."""

    order: XtOrder
    trades: list[XtTrade] = field(default_factory=list)


class FakeQmtTerminal:
    """miniQMT plus the broker behind it, scripted by the test (see the module doc)."""

    OPEN = frozenset({XC.ORDER_REPORTED, XC.ORDER_PART_SUCC})
    FINAL = frozenset({XC.ORDER_SUCCEEDED, XC.ORDER_CANCELED, XC.ORDER_PART_CANCEL, XC.ORDER_JUNK})

    def __init__(
        self,
        *,
        account_id: str = "88001234",
        cash: float = 1_000_000.0,
        positions: dict[str, tuple[int, int]] | None = None,  # code -> (volume, can_use_volume)
        auto_ack: bool = True,
        repush_on_subscribe: bool = True,
        base_time: int = 1_764_000_000,  # epoch seconds of "now" at the counter
    ) -> None:
        self.account_id = account_id
        self.cash = cash
        self.frozen = 0.0
        self.positions: dict[str, list[int]] = {k: [v, u] for k, (v, u) in (positions or {}).items()}
        self.avg_price: dict[str, float] = {}
        self.auto_ack = auto_ack
        self.repush_on_subscribe = repush_on_subscribe
        self.base_time = base_time
        self.books: dict[int, _Book] = {}
        self.traders: list[XtQuantTrader] = []
        self.connect_results: list[int] = []  # next connect() results; 0 when empty
        self.order_return_codes: list[int] = []  # next order_stock_async results instead of a seq
        self.drop_responses = False  # the async response never comes (lost ack)
        self.response_last = False  # the order push overtakes the async response (B2)
        self.orders_received = 0
        self.cancels_received = 0
        self.pushes = 0
        self._seq = itertools.count(1)
        self._order_ids = itertools.count(1001)
        self._trade_ids = itertools.count(50001)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ the SDK side
    def trader_factory(self, path: str, session: int) -> XtQuantTrader:
        trader = XtQuantTrader(path, session, terminal=self)
        self.traders.append(trader)
        return trader

    @property
    def current(self) -> XtQuantTrader:
        live = [t for t in self.traders if t.connected and not t.stopped]
        assert live, "no connected trader"
        return live[-1]

    def _connect_result(self, trader: XtQuantTrader) -> int:
        return self.connect_results.pop(0) if self.connect_results else 0

    def _on_subscribe(self, trader: XtQuantTrader) -> None:
        trader._push(
            "on_account_status", XtAccountStatus(self.account_id, XC.SECURITY_ACCOUNT, XC.ACCOUNT_STATUS_OK)
        )
        if self.repush_on_subscribe:  # a fresh session is sent the day's orders and trades again
            for book in self.books.values():
                trader._push("on_stock_order", _copy(book.order))
                for trade in book.trades:
                    trader._push("on_stock_trade", _copy(trade))

    def _order(
        self,
        trader: XtQuantTrader,
        account: StockAccount,
        stock_code: str,
        order_type: int,
        volume: int,
        price_type: int,
        price: float,
        strategy_name: str,
        remark: str,
    ) -> int:
        with self._lock:
            self.orders_received += 1
            if self.order_return_codes:
                code = self.order_return_codes.pop(0)
                if code == -1:
                    self.orders_received -= 1
                    return -1  # refused before sending
            else:
                code = next(self._seq)
            order_id = next(self._order_ids)
            order = XtOrder(
                account.account_id,
                stock_code,
                order_id,
                f"SYS{order_id}",
                self.base_time,
                order_type,
                volume,
                price_type,
                price,
                0,
                0.0,
                XC.ORDER_UNREPORTED,
                "",
                strategy_name,
                remark,
                48,
                order_type,
                "A1",
                stock_code,
            )
            self.books[order_id] = _Book(order)
        if self.auto_ack and self.response_last:
            self.ack(order_id)
        if code > 0 and not self.drop_responses:
            trader._push(
                "on_order_stock_async_response",
                XtOrderResponse(account.account_id, order_id, strategy_name, remark, "", code),
            )
        if self.auto_ack and not self.response_last:
            self.ack(order_id)
        return code

    def _cancel(self, trader: XtQuantTrader, account: StockAccount, order_id: int) -> int:
        with self._lock:
            self.cancels_received += 1
            seq = next(self._seq)
            book = self.books.get(order_id)
        if book is None or book.order.order_status in self.FINAL:
            msg = "委托已完成" if book is not None else "委托不存在"
            trader._push(
                "on_cancel_order_stock_async_response",
                XtCancelOrderResponse(account.account_id, -1, order_id, "", seq, msg),
            )
            trader._push("on_cancel_error", XtCancelError(account.account_id, order_id, 0, "", -61, msg))
            return seq
        trader._push(
            "on_cancel_order_stock_async_response",
            XtCancelOrderResponse(account.account_id, 0, order_id, "", seq, ""),
        )
        order = book.order
        order.order_status = XC.ORDER_PART_CANCEL if order.traded_volume else XC.ORDER_CANCELED
        self._broadcast("on_stock_order", order)
        return seq

    def _asset(self) -> XtAsset:
        market_value = sum(v * self.avg_price.get(k, 10.0) for k, (v, _) in self.positions.items())
        return XtAsset(
            self.account_id, self.cash, self.frozen, market_value, self.cash + market_value, self.cash
        )

    def _orders_snapshot(self, cancelable_only: bool) -> list[XtOrder]:
        return [
            _copy(b.order)
            for b in self.books.values()
            if not cancelable_only or b.order.order_status not in self.FINAL
        ]

    def _trades_snapshot(self) -> list[XtTrade]:
        return [_copy(t) for b in self.books.values() for t in b.trades]

    def _positions_snapshot(self) -> list[XtPosition]:
        return [
            XtPosition(
                self.account_id,
                code,
                v,
                u,
                self.avg_price.get(code, 10.0),
                v * self.avg_price.get(code, 10.0),
                0,
                0,
                u,
                self.avg_price.get(code, 10.0),
                48,
                10.0,
                0.0,
                "A1",
                code,
            )
            for code, (v, u) in self.positions.items()
        ]

    def _broadcast(self, method: str, record: Any) -> None:
        for trader in self.traders:
            if trader.connected and not trader.stopped:
                trader._push(method, _copy(record))

    # ------------------------------------------------------------------------------ the test's script
    def order_by_remark(self, remark: str) -> XtOrder:
        (book,) = [b for b in self.books.values() if b.order.order_remark == remark]
        return book.order

    def ack(self, order_id: int) -> None:
        order = self.books[order_id].order
        if order.order_status in (XC.ORDER_UNREPORTED, XC.ORDER_WAIT_REPORTING):
            order.order_status = XC.ORDER_REPORTED
            self._broadcast("on_stock_order", order)

    def fill(self, order_id: int, volume: int, price: float | None = None) -> XtTrade:
        book = self.books[order_id]
        order = book.order
        assert order.order_status in self.OPEN, f"order {order_id} is not working ({order.order_status})"
        assert order.traded_volume + volume <= order.order_volume
        price = order.price if price is None else price
        trade = XtTrade(
            order.account_id,
            order.stock_code,
            order.order_type,
            str(next(self._trade_ids)),
            self.base_time + len(book.trades) + 1,
            price,
            volume,
            price * volume,
            order_id,
            order.order_sysid,
            order.strategy_name,
            order.order_remark,
            48,
            order.order_type,
            5.0,
            "A1",
            order.stock_code,
        )
        book.trades.append(trade)
        value = order.traded_price * order.traded_volume + price * volume
        order.traded_volume += volume
        order.traded_price = value / order.traded_volume
        done = order.traded_volume == order.order_volume
        order.order_status = XC.ORDER_SUCCEEDED if done else XC.ORDER_PART_SUCC
        pos = self.positions.setdefault(order.stock_code, [0, 0])
        if order.order_type == XC.STOCK_BUY:
            pos[0] += volume  # bought today: not sellable before tomorrow (T+1)
            self.cash -= price * volume + 5.0
        else:
            pos[0] -= volume
            pos[1] -= volume
            self.cash += price * volume - 5.0
        self.avg_price[order.stock_code] = price
        self._broadcast("on_stock_trade", trade)
        self._broadcast("on_stock_order", order)
        return trade

    def reject(self, order_id: int, error_id: int, message: str) -> None:
        order = self.books[order_id].order
        order.order_status = XC.ORDER_JUNK
        order.status_msg = message
        self._broadcast(
            "on_order_error",
            XtOrderError(
                order.account_id, order_id, error_id, message, order.strategy_name, order.order_remark
            ),
        )
        self._broadcast("on_stock_order", order)

    def disconnect(self) -> None:
        """The terminal drops the link: the live trader hears ``on_disconnected`` and is dead after it."""
        trader = self.current
        trader._push("on_disconnected")
        trader._drain()
        trader.connected = False

    def drain(self) -> None:
        for trader in list(self.traders):
            trader._drain()

    async def settle(self, rounds: int = 10) -> None:
        """Wait until every push made so far (and any it provoked) has been handled on the loop."""
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            before = self.pushes
            await loop.run_in_executor(None, self.drain)
            await asyncio.sleep(0)  # let tasks woken by the handlers take one step
            if self.pushes == before:
                return
        raise AssertionError("pushes never settled")


def _copy(record: Any) -> Any:
    clone = object.__new__(type(record))
    clone.__dict__.update(record.__dict__)
    return clone


# ------------------------------------------------------------------------------------------ xtdata
class FakeXtData:
    """The ``xtquant.xtdata`` functions the feed calls, as methods with the real parameter names."""

    def __init__(self) -> None:
        self.details: dict[str, dict[str, Any]] = {}
        self.ticks: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[int, tuple[list[str], Any, str]] = {}
        self.connected = False
        self._seq = itertools.count(1)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xtdata")

    def connect(self, ip: str = "", port: int | None = None, remember_if_success: bool = True) -> Any:
        self.connected = True
        return self

    def get_instrument_detail(self, stock_code: str, iscomplete: bool = False) -> dict[str, Any] | None:
        return dict(self.details[stock_code]) if stock_code in self.details else None

    def get_full_tick(self, code_list: list[str]) -> dict[str, dict[str, Any]]:
        return {c: dict(self.ticks[c]) for c in code_list if c in self.ticks}

    def subscribe_quote(
        self,
        stock_code: str,
        period: str = "1d",
        start_time: str = "",
        end_time: str = "",
        count: int = 0,
        callback: Any = None,
    ) -> int:
        assert period == "tick"
        seq = next(self._seq)
        self.subscriptions[seq] = ([stock_code], callback, "tick")
        return seq

    def subscribe_whole_quote(self, code_list: list[str], callback: Any = None) -> int:
        seq = next(self._seq)
        self.subscriptions[seq] = (list(code_list), callback, "whole")
        return seq

    def unsubscribe_quote(self, seq: int) -> None:
        self.subscriptions.pop(seq, None)

    # the test's script: push ticks from xtdata's own thread, in the shape each subscription uses
    def push(self, code: str, tick: dict[str, Any]) -> None:
        for codes, callback, kind in list(self.subscriptions.values()):
            if code in codes and callback is not None:
                datas = {code: [tick]} if kind == "tick" else {code: tick}
                self._thread.submit(callback, datas).result()

    def close(self) -> None:
        self._thread.shutdown(wait=True)
