"""A script's calls reach the running engine: ``connect(config)`` while ``zhixing run`` holds the account.

The instance lock lets one engine own an account's journal. When ``zhixing run`` holds it, ``connect``
returns a ``RemoteClient`` instead of failing: reads come from the journal, opened read-only (as ``zhixing
status`` reads it: the account, positions, orders and fills as the engine last committed them), and each
write is a command queued in the journal's ``control_commands`` table (``engine.control.queue_command``)
that the running engine applies (``engine.api_commands``): the client waits for the command's done mark
and reads its result. The channel is the journal file itself: local, the same on Windows, open to the OS
users who may write that file and to nobody on the network.

What it supports, under ``AsyncClient``'s names: ``cash``, ``positions``, ``position``, ``orders``,
``working_orders``, ``trades``; ``order_volume``, ``order_value``, ``order_target_volume``,
``order_target_value`` (a price is required: the client has no quotes), ``cancel``, ``cancel_all``,
``halt``, ``resume``; ``algo`` / ``twap`` / ``vwap`` / ``pov`` / ``iceberg`` / ``chase``
returning a ``RemoteAlgoHandle`` whose ``progress()`` reads the journal. The engine sizes an order as
``AsyncClient`` does (the day's lot grid, sells clipped to T+1 sellable; a size that rounds to nothing is
refused ``size``), and its risk gate decides (``OrderDenied`` with the code).

A command the engine does not apply within ``timeout_s`` raises ``EngineNotAnswering`` naming the journal
(the command stays queued: the engine applies it when it next polls, or at its next start).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zhixing.api import Cash, OrderDenied, Position, Progress, Trade, Yuan
from zhixing.engine.control import Command, queue_command
from zhixing.engine.enums import WORKING_STATUSES, OrderStatus, OrderType, Side, order_type_named
from zhixing.engine.errors import ParameterError, StoreError, ZhixingError
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentStatus
from zhixing.engine.reasons import DenialCode
from zhixing.engine.store import schema
from zhixing.engine.store.state_store import fill_from_row, order_from_row
from zhixing.engine.units import price_from_yuan

__all__ = ["EngineNotAnswering", "RemoteAlgoHandle", "RemoteClient"]

DEFAULT_TIMEOUT_S = 30.0
POLL_S = 0.05
_FINISHED = frozenset({ParentStatus.DONE.value, ParentStatus.CANCELED.value})
_OPEN = WORKING_STATUSES | {OrderStatus.INITIALIZED}


class EngineNotAnswering(ZhixingError):
    """The running engine did not apply a queued command in time (see the module docstring)."""


class RemoteError(ZhixingError):
    """The running engine refused a command (its recorded result says why)."""

    def __init__(self, command: str, result: dict[str, Any]) -> None:
        super().__init__(
            f"{command} refused by the running engine: {result.get('code')}: {result.get('text')}"
        )
        self.result = result


# ---------------------------------------------------------------------------------------- the journal
class JournalChannel:
    """Queue a command and wait for its result; read the journal read-only. Synchronous."""

    def __init__(self, db: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.db = db
        self.timeout_s = timeout_s

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            conn = sqlite3.connect(f"{self.db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.db}: cannot open journal read-only: {exc}") from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.db}: journal read failed: {exc}") from exc
        finally:
            conn.close()

    def call(self, command: Command, arg: str = "") -> str:
        """Queue ``command`` and wait for the engine's result (its text)."""
        command_id = queue_command(self.db, command, arg)
        deadline = time.monotonic() + self.timeout_s
        while True:
            rows = self._read("SELECT done, result FROM control_commands WHERE id = ?", (command_id,))
            if rows and int(rows[0][0]) == 1:
                return str(rows[0][1])
            if time.monotonic() >= deadline:
                raise EngineNotAnswering(
                    f"{self.db}: the running engine did not apply {command.value} (command {command_id}) "
                    f"within {self.timeout_s:g} s; it stays queued and is applied when the engine next polls"
                )
            time.sleep(POLL_S)

    def call_json(self, command: Command, arg: str) -> dict[str, Any]:
        text = self.call(command, arg)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = {"ok": False, "code": "error", "text": text}
        return value if isinstance(value, dict) else {"ok": False, "code": "error", "text": text}

    def orders(self) -> list[Order]:
        trade_ids: dict[str, set[str]] = {}
        for cid, trade_id in self._read(schema.SELECT_TRADE_IDS):
            trade_ids.setdefault(str(cid), set()).add(str(trade_id))
        return [order_from_row(row, trade_ids) for row in self._read(schema.SELECT_ORDERS)]

    def order(self, client_order_id: str) -> Order:
        found = next((o for o in self.orders() if o.client_order_id == client_order_id), None)
        if found is None:
            raise StoreError(f"{self.db}: order {client_order_id} not in the journal")
        return found

    def parents(self, parent_ids: list[str]) -> list[tuple[str, int, str]]:
        """``(parent_id, quantity, status)`` of each given parent the journal has."""
        rows = self._read("SELECT parent_id, quantity, status FROM parents")
        wanted = set(parent_ids)
        return [(str(p), int(q), str(s)) for p, q, s in rows if p in wanted]


# ---------------------------------------------------------------------------------------- the client
class RemoteAlgoHandle:
    """Parents a ``RemoteClient`` started in the running engine; progress read from the journal."""

    def __init__(self, client: RemoteClient, parent_ids: list[str]) -> None:
        self._client = client
        self.parent_ids = list(parent_ids)

    def progress(self) -> Progress:
        channel = self._client.channel
        parents = channel.parents(self.parent_ids)
        children = [o for o in channel.orders() if o.parent_id in set(self.parent_ids)]
        done = len(parents) == len(self.parent_ids) and all(s in _FINISHED for _, _, s in parents)
        return Progress(
            quantity=sum(q for _, q, _ in parents),
            filled=sum(o.filled_quantity for o in children),
            working=sum(o.leaves_quantity for o in children if o.status in _OPEN),
            done=done,
            paused=any(s == ParentStatus.PAUSED.value for _, _, s in parents),
        )

    @property
    def done(self) -> bool:
        return self.progress().done

    def pause(self) -> None:
        for parent_id in self.parent_ids:
            self._client.channel.call(Command.PAUSE, parent_id)

    def resume(self) -> None:
        for parent_id in self.parent_ids:
            self._client.channel.call(Command.RESUME_ALGO, parent_id)

    def cancel(self) -> None:
        for parent_id in self.parent_ids:
            self._client.channel.call(Command.CANCEL_ALGO, parent_id)

    async def wait(self, timeout_s: float | None = None) -> Progress:
        """Until every parent is done (the engine's clock runs on its own), at most ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            progress = await asyncio.to_thread(self.progress)
            if progress.done or (deadline is not None and time.monotonic() >= deadline):
                return progress
            await asyncio.sleep(POLL_S * 4)


class RemoteClient:
    """A script's session through the running engine's journal (see the module docstring)."""

    remote = True

    def __init__(self, db: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.channel = JournalChannel(db, timeout_s=timeout_s)

    async def __aenter__(self) -> RemoteClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Nothing to release: the engine's session is its own."""

    # --------------------------------------------------------------------------------- account
    def positions(self) -> list[Position]:
        rows = self.channel._read(schema.SELECT_POSITIONS)
        return [
            Position(
                symbol=str(s),
                quantity=int(q),
                sellable=int(sellable),
                avg_cost=int(cost),
                price=int(cost),  # the journal has no quotes: valued at cost
                market_value=int(cost) * int(q),
            )
            for s, q, sellable, cost in rows
            if int(q) > 0
        ]

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions() if p.symbol == symbol), None)

    def cash(self) -> Cash:
        """As the engine last journaled it (positions valued at cost: the journal has no quotes)."""
        rows = self.channel._read(schema.SELECT_META, ("account",))
        account = json.loads(rows[0][0]) if rows and rows[0][0] else {}
        value = sum(p.market_value for p in self.positions())
        total = int(account.get("cash", 0))
        return Cash(
            total=total,
            frozen=int(account.get("frozen", 0)),
            available=int(account.get("available", 0)),
            market_value=value,
            total_asset=total + value,
        )

    def orders(self) -> list[Order]:
        """Every order the journal has (the engine's, the scripts' and the jobs'), as last committed."""
        return self.channel.orders()

    def working_orders(self) -> list[Order]:
        return [o for o in self.channel.orders() if o.status in _OPEN]

    def trades(self) -> list[Trade]:
        return [
            Trade(
                client_order_id=f.client_order_id,
                trade_id=f.trade_id,
                symbol=f.symbol,
                side=f.side,
                price=f.price,
                quantity=f.quantity,
                fees=f.fees,
                ts_ns=f.ts_event,
            )
            for f, _ in (fill_from_row(row) for row in self.channel._read(schema.SELECT_FILLS))
        ]

    # --------------------------------------------------------------------------------- orders
    async def order_volume(
        self,
        symbol: str,
        volume: int,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """``volume`` shares through the running engine, sized there as ``AsyncClient`` sizes (the day's
        lot grid, sells clipped to T+1 sellable); raises ``OrderDenied`` when its risk gate denies it."""
        return await self._submit(symbol, side, {"quantity": volume}, price, order_type, tag)

    async def order_value(
        self,
        symbol: str,
        value: Yuan,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """``value`` yuan's worth at ``price`` (required): volume = value / price, sized by the engine."""
        if price is None:
            raise ParameterError(f"{symbol}: order_value needs a price (no quotes here)", name="price")
        return await self._submit(symbol, side, {"value": str(value)}, price, order_type, tag)

    async def order_target_volume(
        self,
        symbol: str,
        volume: int,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """Buy or sell the difference between ``volume`` and the shares the journal says are held."""
        pos = self.position(symbol)
        held = 0 if pos is None else pos.quantity
        if volume == held:
            raise ParameterError(f"{symbol}: already holds {held}", name="volume", value=volume)
        side = Side.BUY if volume > held else Side.SELL
        return await self.order_volume(symbol, abs(volume - held), side, price, order_type, tag)

    async def order_target_value(
        self,
        symbol: str,
        value: Yuan,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """To ``value`` yuan held in ``symbol``, valued at ``price`` (required)."""
        if price is None:
            raise ParameterError(f"{symbol}: order_target_value needs a price (no quotes here)", name="price")
        target = price_from_yuan(value) // price_from_yuan(price)
        return await self.order_target_volume(symbol, target, price, order_type, tag)

    async def _submit(
        self,
        symbol: str,
        side: Side,
        size: dict[str, object],
        price: Yuan | None,
        order_type: OrderType | str,
        tag: str,
    ) -> Order:
        kind = order_type if isinstance(order_type, OrderType) else order_type_named(order_type)
        if kind is OrderType.LIMIT and price is None:
            raise ParameterError(
                f"{symbol}: a limit order through the running engine needs a price (no quotes here)",
                name="price",
            )
        payload: dict[str, object] = {"symbol": symbol, "side": side.value, **size, "order_type": kind.value}
        if tag:
            payload["tag"] = tag
        if price is not None:
            payload["price"] = str(price)
        result = await asyncio.to_thread(self.channel.call_json, Command.SUBMIT_ORDER, json.dumps(payload))
        if result.get("code") == "size":  # as AsyncClient: a size that rounds to nothing
            raise ParameterError(str(result.get("text", "")), name="volume")
        if "client_order_id" not in result:
            raise RemoteError("submit_order", result)
        if not result.get("ok"):  # a denied order is not journaled: the result has all of it
            raise OrderDenied(
                Order(
                    client_order_id=str(result["client_order_id"]),
                    symbol=symbol,
                    side=side,
                    price=0 if price is None else price_from_yuan(price),
                    quantity=int(str(size.get("quantity", 0))),
                    tag=str(result.get("tag", "")),
                    status=OrderStatus.DENIED,
                    reason=str(result.get("text", "")),
                    denial=_denial(result),
                    order_type=kind,
                )
            )
        return self.channel.order(str(result["client_order_id"]))

    def cancel(self, order: Order | str) -> bool:
        """Cancel one order (its client order id, or an ``api:<command id>`` tag); waits for the engine."""
        key = order if isinstance(order, str) else order.client_order_id
        result = self.channel.call_json(Command.CANCEL_ORDER, key)
        return bool(result.get("cancel_queued"))

    def cancel_all(self) -> str:
        """``zhixing cancel-all``: every algorithm and working order of the engine; its result text."""
        return self.channel.call(Command.CANCEL_ALL)

    def halt(self, reason: str = "script") -> str:
        return self.channel.call(Command.HALT, reason)

    def resume(self) -> str:
        return self.channel.call(Command.RESUME)

    # --------------------------------------------------------------------------------- algorithms
    async def algo(
        self,
        algo: str,
        orders: Mapping[str, int] | list[tuple[str, Side, int]],
        side: Side | None = None,
        *,
        minutes: float | None = None,
        end_ns: int | None = None,
        limit: Yuan | None = None,
        **params: object,
    ) -> RemoteAlgoHandle:
        """Parents worked by ``algo`` in the running engine, one command each; the window ends ``minutes``
        after the engine's now (its clock, which a replayed day runs fast) or at ``end_ns``."""
        if (minutes is None) == (end_ns is None):
            raise ParameterError("give one of minutes= and end_ns=", name="minutes")
        if isinstance(orders, Mapping):
            if side is None:
                raise ParameterError("give side= with a symbol -> shares mapping", name="side")
            rows = [(s, side, q) for s, q in orders.items()]
        else:
            rows = list(orders)
        parent_ids = []
        for symbol, row_side, quantity in rows:
            payload: dict[str, object] = {
                "symbol": symbol,
                "side": row_side.value,
                "quantity": quantity,
                "algo": algo,
                "params": {k: str(v) for k, v in params.items()},
            }
            if minutes is not None:
                payload["window_s"] = max(1, int(minutes * 60))
            else:
                payload["end_ns"] = end_ns
            if limit is not None:
                payload["limit"] = str(limit)
            result = await asyncio.to_thread(
                self.channel.call_json, Command.START_PARENT, json.dumps(payload)
            )
            if not result.get("ok"):
                raise RemoteError("start_parent", result)
            parent_ids.append(str(result["parent_id"]))
        return RemoteAlgoHandle(self, parent_ids)

    async def twap(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteAlgoHandle:
        return await self.algo("twap", orders, side, **options)

    async def vwap(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteAlgoHandle:
        return await self.algo("vwap", orders, side, **options)

    async def pov(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteAlgoHandle:
        return await self.algo("pov", orders, side, **options)

    async def iceberg(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteAlgoHandle:
        return await self.algo("iceberg", orders, side, **options)

    async def chase(self, orders: Any, side: Side | None = None, **options: Any) -> RemoteAlgoHandle:
        return await self.algo("chase", orders, side, **options)


def _denial(result: dict[str, Any]) -> DenialCode | None:
    try:
        return DenialCode(str(result.get("code") or ""))
    except ValueError:
        return None
