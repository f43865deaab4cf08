"""The thread bridge between gm's strategy callbacks and zhixing's event loop.

``gm.api.run()`` imports a strategy module and calls its ``on_order_status(context, order)``,
``on_execution_report(context, execrpt)``, ``on_trade_data_connected(context)``,
``on_trade_data_disconnected(context)``, ``on_account_status(context, account)``, ``on_error(context, code,
info)`` and ``on_tick(context, tick)`` from gm's own thread (the one polling in ``run``).
``adapters.gm.entry`` is that module: each function forwards to the ``GmBridge`` installed with
``install``. The bridge never runs engine code on gm's thread: it copies the payload (gm reuses nothing,
but a copy makes that independent of the SDK) and hops onto the loop with ``loop.call_soon_threadsafe``.
A callback that arrives before a loop is attached, or after it closed, is counted and dropped (the
reconnect queries recover anything it said).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("zhixing.gm")

Payload = Mapping[str, Any]
PayloadHandler = Callable[[Payload], None]
Notice = Callable[[], None]
ErrorHandler = Callable[[int, str], None]


@dataclass(slots=True)
class BridgeCounters:
    delivered: int = 0
    dropped_no_loop: int = 0  # arrived with no loop attached (or the loop closed)
    handler_errors: int = 0


class GmBridge:
    """Fan-in of gm callbacks onto one asyncio loop. Handlers are set by the adapter and the feed."""

    def __init__(self) -> None:
        self.counters = BridgeCounters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.order_handlers: list[PayloadHandler] = []
        self.exec_handlers: list[PayloadHandler] = []
        self.tick_handlers: list[PayloadHandler] = []
        self.connected_handlers: list[Notice] = []
        self.disconnected_handlers: list[Notice] = []
        self.account_status_handlers: list[PayloadHandler] = []
        self.error_handlers: list[ErrorHandler] = []

    # ------------------------------------------------------------------------------------- loop
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self._loop is not None and self._loop is not loop:
                raise RuntimeError("GmBridge is already attached to another event loop")
            self._loop = loop

    def detach(self) -> None:
        with self._lock:
            self._loop = None

    async def drain(self) -> None:
        """Wait until every callback handed over before this call has run on the loop (FIFO)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        loop.call_soon_threadsafe(_resolve, done)
        await done

    def _hop(self, name: str, call: Callable[[], None]) -> None:
        with self._lock:
            loop = self._loop
        if loop is None or loop.is_closed():
            self.counters.dropped_no_loop += 1
            log.warning("gm_callback_dropped_no_loop", callback=name)
            return
        try:
            loop.call_soon_threadsafe(self._run, name, call)
        except RuntimeError:  # the loop closed between the check and the call
            self.counters.dropped_no_loop += 1
            log.warning("gm_callback_dropped_no_loop", callback=name)

    def _run(self, name: str, call: Callable[[], None]) -> None:
        try:
            call()
            self.counters.delivered += 1
        except Exception as exc:  # isolated: one bad report must not stop the next (logged with context)
            self.counters.handler_errors += 1
            log.exception("gm_callback_handler_failed", callback=name, error=str(exc))

    # ------------------------------------------------------------------------------------- gm side
    # These run on gm's thread. Payloads are copied to plain dicts before the hop.
    def on_order_status(self, order: Payload) -> None:
        payload = dict(order)
        self._hop("on_order_status", lambda: _each(self.order_handlers, payload))

    def on_execution_report(self, execrpt: Payload) -> None:
        payload = dict(execrpt)
        self._hop("on_execution_report", lambda: _each(self.exec_handlers, payload))

    def on_tick(self, tick: Payload) -> None:
        payload = _plain_tick(tick)
        self._hop("on_tick", lambda: _each(self.tick_handlers, payload))

    def on_trade_data_connected(self) -> None:
        self._hop("on_trade_data_connected", lambda: _notify(self.connected_handlers))

    def on_trade_data_disconnected(self) -> None:
        self._hop("on_trade_data_disconnected", lambda: _notify(self.disconnected_handlers))

    def on_account_status(self, account: Payload) -> None:
        payload = dict(account)
        self._hop("on_account_status", lambda: _each(self.account_status_handlers, payload))

    def on_error(self, error_code: object, info: object) -> None:
        try:
            number = int(str(error_code))
        except ValueError:
            number = -1
        message = str(info)
        self._hop("on_error", lambda: _errors(self.error_handlers, number, message))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # guarded: a cancelled waiter must not make the loop raise
        future.set_result(None)


def _each(handlers: list[PayloadHandler], payload: Payload) -> None:
    for handler in list(handlers):
        handler(payload)


def _notify(handlers: list[Notice]) -> None:
    for handler in list(handlers):
        handler()


def _errors(handlers: list[ErrorHandler], number: int, message: str) -> None:
    for handler in list(handlers):
        handler(number, message)


def _plain_tick(tick: Payload) -> dict[str, Any]:
    payload = dict(tick)
    quotes = payload.get("quotes")
    if isinstance(quotes, list | tuple):
        payload["quotes"] = [dict(q) if isinstance(q, Mapping) else q for q in quotes]
    return payload


# ----------------------------------------------------------------------------------------- registrar
_installed: GmBridge | None = None
_installed_lock = threading.Lock()


def install(bridge: GmBridge) -> None:
    """Make ``bridge`` the one ``adapters.gm.entry`` forwards to (one gm strategy per process)."""
    global _installed
    with _installed_lock:
        _installed = bridge


def uninstall(bridge: GmBridge) -> None:
    global _installed
    with _installed_lock:
        if _installed is bridge:
            _installed = None


def installed() -> GmBridge | None:
    with _installed_lock:
        return _installed
