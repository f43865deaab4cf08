"""A virtual event loop and fake host clocks for the time tests: no wall time is read, nothing sleeps.

``VirtualLoop`` is an asyncio selector loop whose ``time()`` is a virtual monotonic clock (int ns): when
nothing is ready to run it jumps straight to the next timer (trio's autojump clock, for asyncio), so a
30-minute TWAP runs in milliseconds and every run of a test is the same run. Threads are not welcome on
it (their wait would be skipped): the tests give it in-memory fakes, not aiosqlite.

``HostClocks`` are the host's clocks as the engine can read them: ``monotonic_ns`` (the loop's clock; it
stops while the machine is suspended, as Linux ``CLOCK_MONOTONIC`` does), ``boottime_ns`` (monotonic, but
counting a suspend) and ``wall_ns``, which the test steps in either direction (``step_wall``). ``live_clock``
is the engine's real ``LiveClock`` over them.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar, cast

from tests.fakes import FakeBroker, FakeQuotes, FakeStore, World, oms_with
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import LiveClock
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.risk_controls import RiskLimits
from zhixing.engine.store import StateStore

T = TypeVar("T")
NS = 1_000_000_000
HOUR = 3_600 * NS
MINUTE = 60 * NS
DAY = date(2021, 12, 1)


def at(hhmm: str) -> int:
    """An instant of the test day, Asia/Shanghai."""
    return shanghai_ns(DAY, hhmm)


class _AutojumpSelector:
    """The loop's selector: real readiness first; when nothing is ready, virtual time jumps the timeout."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualLoop) -> None:
        self._inner = inner
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError(
                "virtual loop: nothing is scheduled and nothing is ready (the test would hang)"
            )
        # to the timer's instant, to the nanosecond: now + timeout is the timer's float time again
        self._loop.advance_to_ns(round((self._loop.time() + timeout) * NS))
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualLoop(asyncio.SelectorEventLoop):
    """``time()`` is virtual and autojumps to the next timer when the loop is idle."""

    def __init__(self, start_ns: int = 10_000 * NS) -> None:
        super().__init__()
        self.mono_ns = start_ns
        self.start_ns = start_ns
        self._selector = _AutojumpSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self.mono_ns / NS

    def advance_ns(self, ns: int) -> None:
        self.mono_ns += max(0, ns)

    def advance_to_ns(self, ns: int) -> None:
        self.mono_ns = max(self.mono_ns, ns)


def run_virtual(main: Callable[[VirtualLoop], Awaitable[T]]) -> T:
    """Run ``main(loop)`` to completion on a fresh ``VirtualLoop``."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@dataclass
class HostClocks:
    """The host's clocks over a ``VirtualLoop``; ``wall_at_start_ns`` is the wall time at the loop's start."""

    loop: VirtualLoop
    wall_at_start_ns: int
    stepped_ns: int = 0  # the wall clock's steps so far (sum, signed)
    suspended_ns: int = 0  # time spent suspended: boot time and wall time ran on, the loop's clock did not
    steps: list[tuple[int, int]] = field(default_factory=list)  # (loop ns, step ns)

    def monotonic_ns(self) -> int:
        return self.loop.mono_ns

    def boottime_ns(self) -> int:
        return self.loop.mono_ns + self.suspended_ns

    def wall_ns(self) -> int:
        return self.wall_at_start_ns + (self.boottime_ns() - self.loop.start_ns) + self.stepped_ns

    def step_wall(self, ns: int) -> None:
        self.stepped_ns += ns
        self.steps.append((self.loop.mono_ns, ns))

    def suspend(self, ns: int) -> None:
        self.suspended_ns += ns

    def step_wall_after(self, seconds: float, ns: int) -> None:
        """Step the wall clock ``seconds`` of (loop) time from now."""
        self.loop.call_later(seconds, self.step_wall, ns)

    def live_clock(self) -> LiveClock:
        return LiveClock(self.loop, wall_ns=self.wall_ns, monotonic_ns=self.boottime_ns)


def host_at(loop: VirtualLoop, hhmm: str) -> HostClocks:
    return HostClocks(loop, at(hhmm))


async def live_world(
    clock: LiveClock,
    *,
    auto_ack: bool = True,
    auto_cancel: bool = True,
    fill_on_submit: Callable[[Order], int] | None = None,
    risk: RiskLimits | None = None,
) -> World:
    """The fakes of ``tests.fakes`` on a ``LiveClock``, the OrderManager flushing in the background (live
    mode) as in ``zhixing run``."""
    sim_clock: Any = clock  # the fakes only call now_ns / call_at
    bus = EventBus()
    broker = FakeBroker(sim_clock, auto_ack=auto_ack, auto_cancel=auto_cancel, fill_on_submit=fill_on_submit)
    store = FakeStore()
    quotes = FakeQuotes(sim_clock)
    oms, gate = oms_with(clock, bus, broker, cast(StateStore, store), quotes, risk=risk)
    await oms.start()
    return World(sim_clock, bus, broker, store, oms, quotes, gate)
