"""The synchronous facade of ``zhixing.api`` for plain scripts (a scheduler starts them, no asyncio).

``Client`` owns one event loop on a daemon thread of its own, for the life of the client: the session
(its journal connection, its feed, the OrderManager's flush loop on a live route) lives on that loop
and keeps working between the script's calls. Each call is handed to the loop and waited for
(``asyncio.run_coroutine_threadsafe``); reads run on the loop too, so the script never sees the engine
half-way through an event. ``asyncio.run`` per call is not used: a session's connections belong to the
loop that opened them. Close the client (``with`` does): the session closes, then the thread ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from zhixing.api import (
    AlgoHandle,
    AsyncClient,
    Cash,
    Position,
    Progress,
    Sent,
    Trade,
    Yuan,
    connect,
    connect_replay,
)
from zhixing.engine.enums import OrderType, Side
from zhixing.engine.orders import Order
from zhixing.remote import RemoteAlgoHandle, RemoteClient

__all__ = ["Client", "RemoteSyncAlgoHandle", "RemoteSyncClient", "SyncAlgoHandle"]

T = TypeVar("T")


class _Loop:
    """An event loop running on its own daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="zhixing-client", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.run(call())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class SyncAlgoHandle:
    """``zhixing.api.AlgoHandle`` for a plain script."""

    def __init__(self, loop: _Loop, handle: AlgoHandle) -> None:
        self._loop = loop
        self.handle = handle

    def progress(self) -> Progress:
        return self._loop.call(self.handle.progress)

    def pause(self) -> None:
        self._loop.call(self.handle.pause)

    def resume(self) -> None:
        self._loop.call(self.handle.resume)

    def cancel(self) -> None:
        self._loop.call(self.handle.cancel)

    def wait(self, until: str | int | None = None) -> Progress:
        return self._loop.run(self.handle.wait(until))


class Client:
    """A session for a plain script: ``Client.replay(data=..., cash=...)`` or ``Client.connect(config)``;
    the methods are ``AsyncClient``'s, without ``await``."""

    def __init__(self, loop: _Loop, client: AsyncClient) -> None:
        self._loop = loop
        self.client = client

    @classmethod
    def _open(cls, opener: Callable[[], Awaitable[AsyncClient]]) -> Client:
        loop = _Loop()

        async def open_() -> AsyncClient:
            return await opener()

        try:
            return cls(loop, loop.run(open_()))
        except BaseException:
            loop.stop()
            raise

    @classmethod
    def connect(cls, config: str | Path = "zhixing.toml", **options: Any) -> Client | RemoteSyncClient:
        """``zhixing.api.connect``: the configured route, through the one engine; while ``zhixing run``
        holds the account, a ``RemoteSyncClient`` whose calls reach that running engine."""
        loop = _Loop()
        try:
            client = loop.run(connect(config, **options))
        except BaseException:
            loop.stop()
            raise
        if isinstance(client, RemoteClient):
            loop.stop()  # nothing of it lives on a loop
            return RemoteSyncClient(client)
        return cls(loop, client)

    @classmethod
    def replay(cls, data: str | Path, **options: Any) -> Client:
        """``zhixing.api.connect_replay``: the simulated exchange on a recorded day."""
        return cls._open(lambda: connect_replay(data, **options))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._loop.run(self.client.close())
        finally:
            self._loop.stop()

    def _handle(self, coro: Coroutine[Any, Any, AlgoHandle]) -> SyncAlgoHandle:
        return SyncAlgoHandle(self._loop, self._loop.run(coro))

    # -------------------------------------------------------------------------------- time, account
    def now_ns(self) -> int:
        return self._loop.call(self.client.now_ns)

    def run_until(self, when: str | int) -> None:
        self._loop.run(self.client.run_until(when))

    def cash(self) -> Cash:
        return self._loop.call(self.client.cash)

    def positions(self) -> list[Position]:
        return self._loop.call(self.client.positions)

    def position(self, symbol: str) -> Position | None:
        return self._loop.call(lambda: self.client.position(symbol))

    def orders(self, tag: str | None = None) -> list[Order]:
        return self._loop.call(lambda: self.client.orders(tag))

    def working_orders(self) -> list[Order]:
        return self._loop.call(self.client.working_orders)

    def trades(self) -> list[Trade]:
        return self._loop.call(self.client.trades)

    # -------------------------------------------------------------------------------- orders
    def order_volume(
        self,
        symbol: str,
        volume: int,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return self._loop.run(self.client.order_volume(symbol, volume, side, price, order_type, tag))

    def order_value(
        self,
        symbol: str,
        value: Yuan,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return self._loop.run(self.client.order_value(symbol, value, side, price, order_type, tag))

    def order_percent(
        self,
        symbol: str,
        percent: float,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return self._loop.run(self.client.order_percent(symbol, percent, side, price, order_type, tag))

    def order_target_volume(
        self,
        symbol: str,
        volume: int,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return self._loop.run(self.client.order_target_volume(symbol, volume, price, order_type, tag))

    def order_target_value(
        self,
        symbol: str,
        value: Yuan,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return self._loop.run(self.client.order_target_value(symbol, value, price, order_type, tag))

    def order_target_percent(
        self,
        symbol: str,
        percent: float,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return self._loop.run(self.client.order_target_percent(symbol, percent, price, order_type, tag))

    def cancel(self, order: Order | str) -> bool:
        return self._loop.call(lambda: self.client.cancel(order))

    def cancel_all(self) -> list[str]:
        return self._loop.call(self.client.cancel_all)

    def close_all(self) -> list[Order]:
        return self._loop.run(self.client.close_all())

    # -------------------------------------------------------------------------------- composite
    def rebalance(self, targets: Mapping[str, float] | list[Any], **options: Any) -> SyncAlgoHandle:
        return self._handle(self.client.rebalance(targets, **options))

    def liquidate(self, **options: Any) -> SyncAlgoHandle:
        return self._handle(self.client.liquidate(**options))

    def sell_fraction(self, fraction: float, **options: Any) -> SyncAlgoHandle:
        return self._handle(self.client.sell_fraction(fraction, **options))

    def sell_where(self, predicate: Callable[[str], bool], **options: Any) -> SyncAlgoHandle:
        return self._handle(self.client.sell_where(predicate, **options))

    def algo(self, algo: str, orders: Any, side: Side | None = None, **options: Any) -> SyncAlgoHandle:
        return self._handle(self.client.algo(algo, orders, side, **options))

    def twap(self, orders: Any, side: Side | None = None, **options: Any) -> SyncAlgoHandle:
        return self.algo("twap", orders, side, **options)

    def vwap(self, orders: Any, side: Side | None = None, **options: Any) -> SyncAlgoHandle:
        return self.algo("vwap", orders, side, **options)

    def pov(self, orders: Any, side: Side | None = None, **options: Any) -> SyncAlgoHandle:
        return self.algo("pov", orders, side, **options)

    def iceberg(self, orders: Any, side: Side | None = None, **options: Any) -> SyncAlgoHandle:
        return self.algo("iceberg", orders, side, **options)

    def chase(self, orders: Any, side: Side | None = None, **options: Any) -> SyncAlgoHandle:
        return self.algo("chase", orders, side, **options)

    # -------------------------------------------------------------------------------- files
    def submit_file(self, path: str | Path) -> list[Sent]:
        """``AsyncClient.submit_file``: a 掘金 order or cancel file, checked whole, then sent."""
        return self._loop.run(self.client.submit_file(path))


class RemoteSyncAlgoHandle:
    """``zhixing.remote.RemoteAlgoHandle`` for a plain script."""

    def __init__(self, handle: RemoteAlgoHandle) -> None:
        self.handle = handle
        self.parent_ids = handle.parent_ids

    def progress(self) -> Progress:
        return self.handle.progress()

    def pause(self) -> None:
        self.handle.pause()

    def resume(self) -> None:
        self.handle.resume()

    def cancel(self) -> None:
        self.handle.cancel()

    def wait(self, timeout_s: float | None = None) -> Progress:
        return asyncio.run(self.handle.wait(timeout_s))


class RemoteSyncClient:
    """``zhixing.remote.RemoteClient`` for a plain script (``Client.connect`` while ``zhixing run`` holds
    the account). Its calls hold nothing on an event loop: each write is one ``asyncio.run``."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def __enter__(self) -> RemoteSyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: the engine's session is its own."""

    def cash(self) -> Cash:
        return self.client.cash()

    def positions(self) -> list[Position]:
        return self.client.positions()

    def position(self, symbol: str) -> Position | None:
        return self.client.position(symbol)

    def orders(self) -> list[Order]:
        return self.client.orders()

    def working_orders(self) -> list[Order]:
        return self.client.working_orders()

    def trades(self) -> list[Trade]:
        return self.client.trades()

    def order_volume(
        self,
        symbol: str,
        volume: int,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return asyncio.run(self.client.order_volume(symbol, volume, side, price, order_type, tag))

    def order_value(
        self,
        symbol: str,
        value: Yuan,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return asyncio.run(self.client.order_value(symbol, value, side, price, order_type, tag))

    def order_target_volume(
        self,
        symbol: str,
        volume: int,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return asyncio.run(self.client.order_target_volume(symbol, volume, price, order_type, tag))

    def order_target_value(
        self,
        symbol: str,
        value: Yuan,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        return asyncio.run(self.client.order_target_value(symbol, value, price, order_type, tag))

    def cancel(self, order: Order | str) -> bool:
        return self.client.cancel(order)

    def cancel_all(self) -> str:
        return self.client.cancel_all()

    def halt(self, reason: str = "script") -> str:
        return self.client.halt(reason)

    def resume(self) -> str:
        return self.client.resume()

    def algo(self, algo: str, orders: Any, side: Side | None = None, **options: Any) -> RemoteSyncAlgoHandle:
        return RemoteSyncAlgoHandle(asyncio.run(self.client.algo(algo, orders, side, **options)))

    def twap(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteSyncAlgoHandle:
        return self.algo("twap", orders, side, **options)

    def vwap(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteSyncAlgoHandle:
        return self.algo("vwap", orders, side, **options)

    def pov(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteSyncAlgoHandle:
        return self.algo("pov", orders, side, **options)

    def iceberg(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteSyncAlgoHandle:
        return self.algo("iceberg", orders, side, **options)

    def chase(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteSyncAlgoHandle:
        return self.algo("chase", orders, side, **options)
