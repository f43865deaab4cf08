"""The one injectable clock. Nothing outside this module reads a clock (``tests/engine/test_clock_reads.py``).

``LiveClock`` is wall time anchored at start and moved on by the monotonic clock (a wall-clock step
never reaches it), with the running loop's timers. ``SimClock`` holds virtual time that only
moves when the replay harness steps it: it jumps straight to the next timer, fires every timer due at
that instant in scheduling order, and refuses to go backwards. The same engine and algorithm code runs
on both.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

from zhixing.engine.errors import ParameterError

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
        """Current time, int nanoseconds since the Unix epoch (UTC). It never steps: a ``LiveClock``
        moves on monotonically from the wall time it started with."""
        ...

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        """Run ``callback`` (synchronous) at ``when_ns``; a time in the past fires as soon as possible."""
        ...

    async def sleep_until(self, when_ns: int) -> None:
        """Suspend the calling task until ``when_ns``."""
        ...


NsSource = Callable[[], int]
"""A reading of one of the host's clocks, int nanoseconds."""


def _elapsed_source() -> NsSource:
    """The host's monotonic clock, counting time spent suspended where the OS can say (Linux
    ``CLOCK_BOOTTIME``): after the machine slept, the engine's time has moved on with the world."""
    if sys.platform == "linux":
        return partial(time.clock_gettime_ns, time.CLOCK_BOOTTIME)
    return time.monotonic_ns


class AnchoredTime:
    """Wall time read once, at the anchor, plus the monotonic time elapsed since.

    ``now_ns`` never steps when the host's wall clock is stepped (an NTP correction, an operator setting
    the clock, a dual-boot machine's RTC): it moves exactly as the monotonic clock does. ``system_ns``
    is the host's wall clock as it reads now, step included; only the step watch
    (``engine.clock_watch``) and timestamps that a remote server checks against its own clock
    (``host_wall_ns``) read it. A new anchor is taken only by a new process (see docs/RELIABILITY.md (time)).
    """

    __slots__ = ("_mono", "_wall", "mono_anchor_ns", "wall_anchor_ns")

    def __init__(self, wall_ns: NsSource, monotonic_ns: NsSource) -> None:
        self._wall = wall_ns
        self._mono = monotonic_ns
        self.wall_anchor_ns = wall_ns()
        self.mono_anchor_ns = monotonic_ns()

    def now_ns(self) -> int:
        return self.wall_anchor_ns + (self._mono() - self.mono_anchor_ns)

    def system_ns(self) -> int:
        return self._wall()


class LiveClock:
    """Wall time anchored at start, moved on by the monotonic clock. Timers ride on the running loop.

    A wall-clock step never reaches ``now_ns``, so no timer, deadline, in-flight check or rate window
    sees it. Native loop timers are armed at most ``max_native_delay_ns`` ahead and re-armed until due:
    the loop's own clock may stop while the machine is suspended (Linux ``CLOCK_MONOTONIC``) when ours
    does not, and a timer armed before a suspend must not fire that much late. A timer never runs
    before its ``when`` on ``now_ns`` (the loop runs timers up to its clock's resolution early).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        wall_ns: NsSource = time.time_ns,
        monotonic_ns: NsSource | None = None,
        max_native_delay_ns: int = 1_000_000_000,
        timer_resolution_s: float | None = None,
    ) -> None:
        if max_native_delay_ns <= 0:
            raise ParameterError(
                f"must be > 0, got {max_native_delay_ns}",
                name="max_native_delay_ns",
                value=max_native_delay_ns,
            )
        self._loop = loop
        self._time = AnchoredTime(wall_ns, monotonic_ns or _elapsed_source())
        self._max_delay_s = max_native_delay_ns / 1e9
        # the loop runs a timer up to its clock's resolution early (15.6 ms on Windows): a timer that woke
        # early waits at least that long again, so it never spins until the clock ticks
        self._resolution_s = (
            time.get_clock_info("monotonic").resolution if timer_resolution_s is None else timer_resolution_s
        )

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def now_ns(self) -> int:
        return self._time.now_ns()

    def system_ns(self) -> int:
        """The host's wall clock now, steps included: for the step watch only (``host_wall_ns``)."""
        return self._time.system_ns()

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        handle = TimerHandle(when_ns, callback, name)
        self._arm(handle, self._running_loop())
        return handle

    def _arm(self, handle: TimerHandle, loop: asyncio.AbstractEventLoop, *, woke_early: bool = False) -> None:
        delay = max(self._resolution_s if woke_early else 0.0, (handle.when - self.now_ns()) / 1e9)
        handle._native = loop.call_later(min(delay, self._max_delay_s), self._fire, handle, loop)

    def _fire(self, handle: TimerHandle, loop: asyncio.AbstractEventLoop) -> None:
        if handle.cancelled:
            return
        if handle.when > self.now_ns():  # early (the loop's clock resolution) or a long wait re-armed
            self._arm(handle, loop, woke_early=True)
            return
        handle.cancelled = True  # fired: a later cancel() is a no-op
        handle.callback()

    async def sleep_until(self, when_ns: int) -> None:
        if when_ns <= self.now_ns():
            return
        fut: asyncio.Future[None] = self._running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self.call_at(when_ns, wake, "sleep_until")
        try:
            await fut
        finally:
            handle.cancel()


def host_wall_ns(clock: Clock) -> int:
    """The host's wall clock for a timestamp that a remote server checks against its own clock (a
    webhook signature, a mail's Date) or that is compared with a time the host's file system wrote (a
    file's mtime): after a correction the host is more likely right than the engine's anchored time.
    Virtual and paper clocks answer their own time."""
    return clock.system_ns() if isinstance(clock, LiveClock) else clock.now_ns()


class ScaledClock:
    """Paper time: starts at ``start_ns`` and runs ``speed`` times faster than the loop's monotonic
    clock (1.0 = market speed). Real timers, real concurrency: what a paper run rehearses."""

    def __init__(
        self, start_ns: int, speed: float = 1.0, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        if not speed > 0:
            raise ParameterError(f"must be > 0, got {speed}", name="speed", value=speed)
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
            raise ParameterError(
                f"SimClock cannot go backwards: now {self._now}, asked {when_ns}", value=when_ns
            )
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
