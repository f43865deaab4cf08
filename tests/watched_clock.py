"""Virtual time for tests of code that waits on its clock while also doing real work (threads, sockets).

A ``SimClock`` stepped blindly (every loop turn) races the real work: how far virtual time gets while a
journal write is on aiosqlite's thread depends on the machine's speed. ``WatchedClock`` wraps the clock
the code under test uses and counts the tasks that are waiting on it (``sleep_until``); ``drive`` steps
virtual time only while one is, and never while the awaited work is on a thread or a socket (nobody is
sleeping on the clock then). What the code does at which virtual instant is then a function of the code
alone: a loaded machine only makes the same run take longer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from zhixing.engine.clock import SimClock, TimerCallback, TimerHandle

T = TypeVar("T")


class WatchedClock:
    """The code's clock: a ``SimClock`` that also says when the code is waiting on it."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.sleeping = 0

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def call_at(self, when_ns: int, callback: TimerCallback, name: str = "") -> TimerHandle:
        return self.clock.call_at(when_ns, callback, name)

    async def sleep_until(self, when_ns: int) -> None:
        self.sleeping += 1
        try:
            await self.clock.sleep_until(when_ns)
        finally:
            self.sleeping -= 1


async def drive(watched: WatchedClock, work: Awaitable[T]) -> T:
    """Run ``work`` to its end, stepping ``watched``'s clock to its next timer whenever a task sleeps on
    it (and only then); stops stepping when no timer is left."""
    task = asyncio.ensure_future(work)
    while not task.done():
        if watched.sleeping and not watched.clock.step():
            break
        await asyncio.sleep(0)
    return await task
