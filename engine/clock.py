"""The one injectable clock. Nothing outside this module reads wall time.

``LiveClock`` uses wall time and the running loop's timers. ``SimClock`` holds virtual time that only
moves when the replay harness steps it: it jumps straight to the next timer, fires every timer due at
that instant in scheduling order, and refuses to go backwards. The same engine and algorithm code runs
on both.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

TimerCallback = Callable[[], None]


class TimerHandle:
    """A scheduled callback; ``cancel()`` is idempotent."""

    __slots__ = ("_native", "callback", "cancelled", "name", "when")

    def __init__(self, when: int, callback: TimerCallback, name: str) -> None:
        self.when = when
        self.callback = callback
        self.name = name
        self.cancelled = False
        self._native: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._native is not None:
            self._native.cancel()


class Clock(Protocol):
    def now_ns(self) -> int:
        """Current time, int nanoseconds since the Unix epoch (UTC)."""
        ...

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        """Run ``callback`` (synchronous) at ``when_ns``; a time in the past fires as soon as possible."""
        ...

    async def sleep_until(self, when_ns: int) -> None:
        """Suspend the calling task until ``when_ns``."""
        ...


class LiveClock:
    """Wall time. Timers ride on the running event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        # monotonic anchor: loop.time() drifts from wall time only by NTP slews, acceptable for timers
        self._wall_anchor_ns = time.time_ns()
        self._mono_anchor = time.monotonic()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def now_ns(self) -> int:
        return time.time_ns()

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        handle = TimerHandle(when_ns, callback, name)
        loop = self._running_loop()
        delay = max(0.0, (when_ns - self.now_ns()) / 1e9)
        handle._native = loop.call_later(delay, callback)
        return handle

    async def sleep_until(self, when_ns: int) -> None:
        delay = (when_ns - self.now_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)


class ScaledClock:
    """Paper time: starts at ``start_ns`` and runs ``speed`` times faster than the loop's monotonic
    clock (1.0 = market speed). Real timers, real concurrency: what a paper run rehearses."""

    def __init__(
        self, start_ns: int, speed: float = 1.0, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._loop = loop
        self._start_ns = start_ns
        self._mono_anchor: float | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def _anchor(self) -> float:
        if self._mono_anchor is None:
            self._mono_anchor = time.monotonic()  # time starts when first looked at
        return self._mono_anchor

    def _elapsed(self) -> float:
        anchor = self._anchor()
        return time.monotonic() - anchor  # the loop's own timer base; readable from any thread

    def now_ns(self) -> int:
        return self._start_ns + int(self._elapsed() * self.speed * 1e9)

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        handle = TimerHandle(when_ns, callback, name)
        # an absolute loop deadline (not a delay from now): timers fire in the order of their times even
        # when the process was descheduled between two call_at, or they are already overdue
        deadline = self._anchor() + (when_ns - self._start_ns) / 1e9 / self.speed
        handle._native = self._running_loop().call_at(deadline, self._fire, handle)
        return handle

    def _fire(self, handle: TimerHandle) -> None:
        if handle.cancelled:
            return
        early = handle.when - self.now_ns()
        if early > 0:  # the loop's float timers can wake a hair early: never run before ``when``
            handle._native = self._running_loop().call_later(early / 1e9 / self.speed, self._fire, handle)
            return
        handle.cancelled = True
        handle.callback()

    async def sleep_until(self, when_ns: int) -> None:
        delay = (when_ns - self.now_ns()) / 1e9 / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class SimClock:
    """Virtual time for replay: deterministic, never sleeps, never goes backwards."""

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        when = max(when_ns, self._now)
        handle = TimerHandle(when, callback, name)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        return handle

    async def sleep_until(self, when_ns: int) -> None:
        if when_ns <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self.call_at(when_ns, wake, "sleep_until")
        await fut

    def next_timer_ns(self) -> int | None:
        """When the next live timer is due, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance_to(self, when_ns: int) -> None:
        """Move time forward without firing anything. Going backwards is a bug and raises."""
        if when_ns < self._now:
            raise ValueError(f"SimClock cannot go backwards: now {self._now}, asked {when_ns}")
        self._now = when_ns

    def step(self, until_ns: int | None = None) -> bool:
        """Jump to the next timer (if due by ``until_ns``) and fire every timer due at that instant.

        Timers scheduled by the callbacks for the same instant fire in the same step, after the ones
        already queued. Returns False when there was nothing to fire.
        """
        when = self.next_timer_ns()
        if when is None or (until_ns is not None and when > until_ns):
            return False
        self.advance_to(when)
        heap = self._heap
        while heap and heap[0][0] == when:
            handle = heapq.heappop(heap)[2]
            if not handle.cancelled:
                handle.cancelled = True  # fired: a later cancel() is a no-op
                handle.callback()
        return True
