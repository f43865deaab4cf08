"""Waiting at start for the broker and the feed to answer.

A trading process is often started before its terminal: the OS scheduler launches ``zhixing run`` at
08:30 and miniQMT logs in at 08:45, or a restart finds the broker link still down. Nothing may be
reconciled, resumed or sent before the broker answers, so startup tries, waits with a doubling backoff
(1 s up to 30 s) on the engine's clock, and tries again until a deadline; each failed attempt is logged
and reported to ``on_not_ready`` (for a notification), and at the deadline it gives up with an error
that names what was not ready, how many attempts were made over how long, and the last error.
A timeout of 0 makes one attempt. Only the failures of a link are retried (``BrokerError``,
``FeedError``, ``OSError``, ``TimeoutError``); anything else (a bad config, a bug) fails at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock
from zhixing.engine.errors import BrokerDisconnected, BrokerError, FeedError, ParameterError, ZhixingError
from zhixing.engine.events import AccountReport
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.readiness")

RETRYABLE: tuple[type[BaseException], ...] = (BrokerError, FeedError, OSError, TimeoutError)
FIRST_BACKOFF_NS = NS_PER_SECOND
MAX_BACKOFF_NS = 30 * NS_PER_SECOND


@dataclass(slots=True, frozen=True)
class NotReady:
    """One failed attempt: what, which attempt, the error, and when the next try is (None: giving up)."""

    what: str
    attempt: int
    error: str
    next_try_ns: int | None
    deadline_ns: int


Attempt = Callable[[], Awaitable[object]]
Wait = Callable[[int], Awaitable[None]]
NotReadyCallback = Callable[[NotReady], None]


async def wait_until_ready(
    what: str,
    attempt: Attempt,
    *,
    clock: Clock,
    timeout_ns: int,
    give_up: type[ZhixingError],
    wait: Wait | None = None,
    on_not_ready: NotReadyCallback | None = None,
) -> int:
    """Run ``attempt`` until it succeeds or ``timeout_ns`` (engine time) has passed; returns the number of
    attempts. ``wait(until_ns)`` passes the time between attempts (default: the clock's ``sleep_until``;
    a replay hands in something that runs the simulated exchange meanwhile). Giving up raises
    ``give_up`` chained to the last error."""
    if timeout_ns < 0:
        raise ParameterError(f"{what}: timeout_ns must be >= 0, got {timeout_ns}", value=timeout_ns)
    pause = wait or clock.sleep_until
    started = clock.now_ns()
    deadline = started + timeout_ns
    backoff = FIRST_BACKOFF_NS
    number = 0
    while True:
        number += 1
        try:
            await attempt()
        except RETRYABLE as exc:
            error = f"{type(exc).__name__}: {exc}"
            now = clock.now_ns()
            next_try = now + backoff if now + backoff <= deadline else None
            log.warning(
                "not_ready",
                what=what,
                attempt=number,
                error=error,
                retry_in_s=None if next_try is None else (next_try - now) / NS_PER_SECOND,
            )
            if on_not_ready is not None:
                on_not_ready(NotReady(what, number, error, next_try, deadline))
            if next_try is None:
                waited = (now - started) / NS_PER_SECOND
                raise give_up(
                    f"{what} not ready after {number} attempt(s) over {waited:g} s "
                    f"(timeout {timeout_ns / NS_PER_SECOND:g} s); last error: {error}"
                ) from exc
            await pause(next_try)
            backoff = min(backoff * 2, MAX_BACKOFF_NS)
            continue
        if number > 1:
            log.info("ready", what=what, attempts=number, waited_s=(clock.now_ns() - started) / NS_PER_SECOND)
        return number


async def connect_broker(
    adapter: BrokerAdapter,
    *,
    clock: Clock,
    timeout_ns: int,
    on_not_ready: NotReadyCallback | None = None,
) -> AccountReport:
    """Connect ``adapter`` until it answers an account query (connected is not enough), retried as
    ``wait_until_ready`` retries, up to ``timeout_ns``; a half-open link is closed before the next
    attempt. Returns the account the broker answered with; gives up with ``BrokerDisconnected``."""
    answers: list[AccountReport] = []

    async def attempt() -> None:
        try:
            await adapter.connect()
            answers.append(await adapter.query_account())
        except BaseException:
            try:
                await adapter.close()
            except Exception as exc:  # closing what never opened may fail too; the first error counts
                log.info("route_close_failed", adapter=adapter.name, error=repr(exc))
            raise

    await wait_until_ready(
        f"broker route {adapter.name}",
        attempt,
        clock=clock,
        timeout_ns=timeout_ns,
        give_up=BrokerDisconnected,
        on_not_ready=on_not_ready,
    )
    return answers[-1]
