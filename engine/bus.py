"""A typed publish/subscribe bus.

Subscribe by event class, optionally narrowed to one symbol. ``publish`` calls handlers synchronously
in subscription order (exact-class subscribers, then base-class subscribers, each general before
symbol-specific). A handler that raises is logged with context and isolated; ``CancelledError`` is
re-raised. A handler may return an awaitable: it is run as a named task held in a strong set, whose
failure is logged by a done-callback.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from zhixing.engine.events import Event

E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None] | None]

log = structlog.get_logger("zhixing.bus")


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[tuple[type[Event], str | None], list[Handler]] = {}
        self._dispatch_cache: dict[tuple[type[Event], str | None], tuple[Handler, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.handler_errors = 0

    def subscribe(self, event_type: type[E], handler: Callable[[E], Any], symbol: str | None = None) -> None:
        self._subs.setdefault((event_type, symbol), []).append(handler)
        self._dispatch_cache.clear()

    def unsubscribe(
        self, event_type: type[E], handler: Callable[[E], Any], symbol: str | None = None
    ) -> None:
        handlers = self._subs.get((event_type, symbol), [])
        if handler in handlers:
            handlers.remove(handler)
        self._dispatch_cache.clear()

    def _handlers_for(self, event_type: type[Event], symbol: str | None) -> tuple[Handler, ...]:
        key = (event_type, symbol)
        cached = self._dispatch_cache.get(key)
        if cached is None:
            found: list[Handler] = []
            for cls in event_type.__mro__:
                if not (isinstance(cls, type) and issubclass(cls, Event)):
                    continue
                found.extend(self._subs.get((cls, None), ()))
                if symbol is not None:
                    found.extend(self._subs.get((cls, symbol), ()))
            cached = tuple(found)
            self._dispatch_cache[key] = cached
        return cached

    def publish(self, event: Event, symbol: str | None = None) -> None:
        """Deliver ``event`` to its subscribers. ``symbol`` defaults to ``event.symbol`` when present."""
        if symbol is None:
            symbol = getattr(event, "symbol", None)
        for handler in self._handlers_for(type(event), symbol):
            try:
                result = handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.handler_errors += 1
                log.exception("bus_handler_failed", handler=_name(handler), event_type=type(event).__name__)
                continue
            if result is not None and inspect.isawaitable(result):
                self._spawn(result, handler, event)

    def _spawn(self, awaitable: Awaitable[None], handler: Handler, event: Event) -> None:
        async def run() -> None:
            await awaitable

        task = asyncio.get_running_loop().create_task(run(), name=f"bus:{_name(handler)}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.handler_errors += 1
                log.error(
                    "bus_handler_failed",
                    handler=_name(handler),
                    event_type=type(event).__name__,
                    exc_info=t.exception(),
                )

        task.add_done_callback(done)

    async def drain(self) -> None:
        """Wait for every handler task started so far (and any they start)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
