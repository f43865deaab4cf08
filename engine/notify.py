"""Notifications: the message model, message builders and a dispatcher that is never on the trading path.

The trading path calls ``NotificationDispatcher.post(message)``: synchronous, never blocks, never raises.
A background task delivers to every channel (``Notifier``: SMTP, WeCom, DingTalk, Feishu; see
``adapters/notify``) with a timeout on each attempt and a bounded number of retries with backoff.
Messages that arrive while a send is under way or within ``digest_window_ns`` of the last send are
combined into one digest (1,000 risk denials in a minute make a handful of mails, not 1,000). The queue
is bounded: on overflow the oldest message is dropped, counted and reported in the next message.
Failures are logged and counted, never propagated.

Waits that belong to the schedule (digest window, retry backoff) run on the injected ``Clock``, so a
``SimClock`` test is deterministic; the network awaits themselves are plain asyncio with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

import structlog

from zhixing.engine.clock import Clock
from zhixing.engine.enums import Side
from zhixing.engine.errors import ParameterError, ZhixingError
from zhixing.engine.logs import mask_account
from zhixing.engine.market import ns_to_shanghai
from zhixing.engine.readiness import NotReady
from zhixing.engine.units import NS_PER_SECOND, yuan_str

log = structlog.get_logger("zhixing.notify")

MAX_DIGEST_ITEMS: Final = 30  # a digest lists this many messages in full, then counts the rest by kind


class NotifyError(ZhixingError):
    """A notification channel could not deliver (connection, timeout, refused by the server)."""


class MessageKind(StrEnum):
    SIGNAL_SUMMARY = "signal_summary"
    EXECUTION_REPORT = "execution_report"
    RISK = "risk"
    HALT = "halt"
    ERROR = "error"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_SEVERITY_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    kind: MessageKind
    subject: str
    body: str
    severity: Severity = Severity.INFO


class Notifier(Protocol):
    """One delivery channel. ``send`` raises (``NotifyError`` or anything) when delivery failed."""

    name: str

    async def send(self, message: Message) -> None: ...


# --- message builders (plain inputs, no OMS internals) ----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalLine:
    symbol: str
    current: int  # shares held now
    target: int  # shares wanted
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentResult:
    """One parent order's outcome, as the execution report shows it."""

    parent_id: str
    symbol: str
    side: Side
    quantity: int
    filled: int
    avg_price: int | None = None  # milli-yuan, None when nothing filled
    arrival_price: int | None = None  # milli-yuan, the reference at the decision
    unfilled_reason: str = ""


def slippage_bps(side: Side, avg_price: int | None, arrival_price: int | None) -> float | None:
    """Cost against the arrival price in basis points: positive is worse (paid more / sold for less)."""
    if avg_price is None or not arrival_price:
        return None
    signed = avg_price - arrival_price if side is Side.BUY else arrival_price - avg_price
    return signed * 10_000 / arrival_price


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _account(account: str | None) -> str:
    return f" [{mask_account(account)}]" if account else ""


def signal_summary(job: str, lines: Sequence[SignalLine], *, account: str | None = None) -> Message:
    """The day's targets against current holdings."""
    rows = [
        [ln.symbol, str(ln.current), str(ln.target), f"{ln.target - ln.current:+d}", ln.note] for ln in lines
    ]
    changes = sum(1 for ln in lines if ln.target != ln.current)
    body = f"signal job {job}: {len(lines)} symbols, {changes} to trade\n\n"
    body += _table(["symbol", "current", "target", "change", "note"], rows) if rows else "(no targets)"
    return Message(
        kind=MessageKind.SIGNAL_SUMMARY,
        subject=f"[zhixing]{_account(account)} signal {job}: {changes} changes",
        body=body,
    )


def execution_report(results: Sequence[ParentResult], *, account: str | None = None) -> Message:
    """Per parent: filled, unfilled and why, average price and slippage against arrival."""
    rows: list[list[str]] = []
    for r in results:
        bps = slippage_bps(r.side, r.avg_price, r.arrival_price)
        rows.append(
            [
                r.parent_id,
                r.symbol,
                str(r.side),
                f"{r.filled}/{r.quantity}",
                yuan_str(r.avg_price, 3) if r.avg_price is not None else "-",
                f"{bps:+.1f}" if bps is not None else "-",
                r.unfilled_reason if r.filled < r.quantity else "",
            ]
        )
    complete = sum(1 for r in results if r.filled >= r.quantity)
    worst = Severity.WARNING if complete < len(results) else Severity.INFO
    body = f"{complete} of {len(results)} parent orders completely filled\n\n"
    header = ["parent", "symbol", "side", "filled", "avg", "slip_bps", "unfilled_reason"]
    body += _table(header, rows) if rows else "(no parent orders)"
    return Message(
        kind=MessageKind.EXECUTION_REPORT,
        subject=f"[zhixing]{_account(account)} execution: {complete}/{len(results)} filled",
        body=body,
        severity=worst,
    )


def risk_denial(client_order_id: str, symbol: str, reason: str, *, account: str | None = None) -> Message:
    return Message(
        kind=MessageKind.RISK,
        subject=f"[zhixing]{_account(account)} order denied: {symbol} {reason}",
        body=f"order {client_order_id} on {symbol} was denied by the risk gate: {reason}",
        severity=Severity.WARNING,
    )


def denial_digest(
    count: int,
    by_reason: Counter[str],
    by_symbol: Counter[str],
    first: Sequence[tuple[str, str, str]],
    *,
    minutes: float = 1.0,
    account: str | None = None,
) -> Message:
    """The orders the risk gate denied over the last period, after the first one was told alone."""
    reasons = ", ".join(f"{n} {reason}" for reason, n in by_reason.most_common())
    symbols = ", ".join(f"{symbol} {n}" for symbol, n in by_symbol.most_common(10))
    more = len(by_symbol) - 10
    lines = [
        f"{count} more orders denied by the risk gate in the last {minutes:g} min",
        f"by reason: {reasons}",
        f"by symbol: {symbols}" + (f" and {more} more" if more > 0 else ""),
        "",
    ]
    lines += [f"{cid} {symbol}: {reason}" for cid, symbol, reason in first]
    if count > len(first):
        lines.append(f"... and {count - len(first)} more")
    return Message(
        kind=MessageKind.RISK,
        subject=f"[zhixing]{_account(account)} {count} more orders denied: {reasons}",
        body="\n".join(lines),
        severity=Severity.WARNING,
    )


def halt_notice(reason: str, *, halted: bool = True, account: str | None = None) -> Message:
    state = "HALTED: new orders are denied, working orders cancelled" if halted else "resumed"
    return Message(
        kind=MessageKind.HALT,
        subject=f"[zhixing]{_account(account)} trading {'halted' if halted else 'resumed'}",
        body=f"trading {state}\nreason: {reason}",
        severity=Severity.CRITICAL if halted else Severity.INFO,
    )


def error_notice(where: str, error: BaseException | str, *, account: str | None = None) -> Message:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return Message(
        kind=MessageKind.ERROR,
        subject=f"[zhixing]{_account(account)} error in {where}",
        body=text,
        severity=Severity.CRITICAL,
    )


def stale_feed_notice(symbol: str, silent_s: float, *, account: str | None = None) -> Message:
    """A symbol's quotes stopped while the market trades: its slicing is paused until they return."""
    return Message(
        kind=MessageKind.ERROR,
        subject=f"[zhixing]{_account(account)} market data stale: {symbol}",
        body=(
            f"{symbol}: no new quote for {silent_s:g} s during trading; its algorithms are paused (nothing "
            "is priced from an old quote) and the feed is re-subscribed on a backoff. Slicing resumes when "
            "quotes return."
        ),
        severity=Severity.WARNING,
    )


def not_ready_notice(failure: NotReady, *, account: str | None = None) -> Message:
    """At start, the route or the feed did not answer: still retrying (until when), or given up."""
    deadline = ns_to_shanghai(failure.deadline_ns).strftime("%H:%M:%S")
    if failure.next_try_ns is None:
        state, severity = f"gave up after {failure.attempt} attempt(s); nothing was traded", Severity.CRITICAL
    else:
        state, severity = f"still trying until {deadline} (Asia/Shanghai)", Severity.WARNING
    return Message(
        kind=MessageKind.ERROR,
        subject=f"[zhixing]{_account(account)} {failure.what} not reachable at start",
        body=f"{failure.what} did not answer: {failure.error}\n{state}",
        severity=severity,
    )


def _signed_duration(ns: int) -> str:
    sign, ns = ("-" if ns < 0 else "+"), abs(ns)
    hours, rest = divmod(ns, 3600 * NS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * NS_PER_SECOND)
    seconds = rest / NS_PER_SECOND
    return f"{sign}{hours}h{minutes:02d}m{seconds:06.3f}s" if hours else f"{sign}{minutes}m{seconds:06.3f}s"


def clock_step_notice(step_ns: int, offset_ns: int, engine_ns: int, *, account: str | None = None) -> Message:
    """The host's wall clock stepped (``engine.clock_watch``): the engine did not follow; what to do."""
    engine_at = ns_to_shanghai(engine_ns).strftime("%H:%M:%S")
    host_at = ns_to_shanghai(engine_ns + offset_ns).strftime("%H:%M:%S")
    return Message(
        kind=MessageKind.ERROR,
        subject=f"[zhixing]{_account(account)} host clock stepped {_signed_duration(step_ns)}",
        body=(
            f"The host's wall clock moved {_signed_duration(step_ns)} against the engine's clock; it is now "
            f"{_signed_duration(offset_ns)} from it (engine {engine_at}, host {host_at}, Asia/Shanghai).\n"
            "The engine does not follow a step: its timers, in-flight checks, rate windows and the trading "
            "session keep the time it started with, so nothing ends, stalls, bursts or fires twice.\n"
            "If the host's clock was wrong and has just been corrected, the engine's session times are off "
            "by the offset: restart the engine at a quiet moment (it resumes from the journal and takes "
            "the host's time). If the step was wrong, set the host's clock back. Check the time service "
            "(NTP / w32time) logs for what stepped it."
        ),
        severity=Severity.CRITICAL if abs(offset_ns) >= 60 * NS_PER_SECOND else Severity.WARNING,
    )


def digest(messages: Sequence[Message], *, dropped: int = 0) -> Message:
    """One message standing for many: the most severe kind leads; counts by kind; the first ones in full."""
    if len(messages) == 1 and not dropped:
        return messages[0]
    lead = max(messages, key=lambda m: _SEVERITY_RANK[m.severity]) if messages else None
    counts = Counter(m.kind for m in messages)
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
    parts: list[str] = []
    if dropped:
        parts.append(f"{dropped} earlier notifications were dropped (queue full)")
    if len(messages) > 1:
        parts.append(f"{len(messages)} notifications: {summary}")
    for m in messages[:MAX_DIGEST_ITEMS]:
        parts.append(f"== {m.subject}\n{m.body}")
    if len(messages) > MAX_DIGEST_ITEMS:
        parts.append(f"... and {len(messages) - MAX_DIGEST_ITEMS} more")
    if lead is None:
        return Message(kind=MessageKind.ERROR, subject="[zhixing] notifications dropped", body=parts[0])
    subject = lead.subject if len(messages) == 1 else f"[zhixing] {len(messages)} notifications: {summary}"
    return Message(kind=lead.kind, subject=subject, body="\n\n".join(parts), severity=lead.severity)


# --- the dispatcher -----------------------------------------------------------------------------------


@dataclass(slots=True)
class DispatchStats:
    posted: int = 0
    delivered: int = 0  # (message, channel) pairs delivered
    gave_up: int = 0  # (message, channel) pairs abandoned after the last retry
    failed_attempts: int = 0
    dropped: int = 0  # messages dropped from a full queue
    digests: int = 0  # sends that combined more than one message
    by_channel_failures: Counter[str] = field(default_factory=Counter)


class NotificationDispatcher:
    """Delivers posted messages to every channel from one background task."""

    def __init__(
        self,
        channels: Sequence[Notifier],
        clock: Clock,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_ns: int = 2 * NS_PER_SECOND,
        digest_window_ns: int = 60 * NS_PER_SECOND,
        queue_limit: int = 1000,
    ) -> None:
        if queue_limit < 1 or max_retries < 0 or timeout_s <= 0:
            raise ParameterError(
                "queue_limit >= 1, max_retries >= 0 and timeout_s > 0 are required",
                value=(queue_limit, max_retries, timeout_s),
            )
        self._channels = tuple(channels)
        self._clock = clock
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_ns = backoff_ns
        self._window_ns = digest_window_ns
        self._queue: deque[Message] = deque()
        self._limit = queue_limit
        self._unreported_drops = 0
        self._wake = asyncio.Event()
        self._waits: set[asyncio.Event] = set()  # clock waits that close() cuts short
        self._closing = False
        self._last_send_ns: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = DispatchStats()

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Start the delivery task on the running loop (idempotent)."""
        if self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(), name="notify-dispatcher")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notify_dispatcher_failed", error=repr(task.exception()))

    def post(self, message: Message) -> None:
        """Queue ``message`` for delivery. Never blocks, never raises (the trading path calls this)."""
        try:
            if self._closing:
                log.warning("notify_post_after_close", kind=str(message.kind), subject=message.subject)
                return
            self.stats.posted += 1
            if len(self._queue) >= self._limit:
                self._queue.popleft()
                self.stats.dropped += 1
                self._unreported_drops += 1
            self._queue.append(message)
            self._wake.set()
        except Exception as exc:  # a notification must never break the caller
            log.error("notify_post_failed", error=repr(exc))

    async def close(self, deadline_s: float = 30.0) -> None:
        """Send what is queued (no digest wait, no backoff wait) within ``deadline_s``, then stop."""
        self._closing = True
        self._wake.set()
        for event in self._waits:
            event.set()
        tasks = list(self._tasks)
        if not tasks:
            if self._queue:  # never started: deliver once, inline, within the deadline
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline_s):
                        await self._send_batch()
            return
        _, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.warning("notify_close_deadline", unsent=len(self._queue), deadline_s=deadline_s)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            if not self._closing and self._last_send_ns is not None:
                # inside the digest window of the last send: wait for it to pass, gathering whatever comes
                await self._sleep_until(self._last_send_ns + self._window_ns)
            await self._send_batch()

    async def _send_batch(self) -> None:
        batch = list(self._queue)
        self._queue.clear()
        dropped, self._unreported_drops = self._unreported_drops, 0
        if not batch and not dropped:
            return
        message = digest(batch, dropped=dropped)
        if len(batch) > 1:
            self.stats.digests += 1
        self._last_send_ns = self._clock.now_ns()
        await asyncio.gather(*(self._deliver(channel, message) for channel in self._channels))

    async def _deliver(self, channel: Notifier, message: Message) -> None:
        name = getattr(channel, "name", type(channel).__name__)
        for attempt in range(1, self._max_retries + 2):
            try:
                async with asyncio.timeout(self._timeout_s):
                    await channel.send(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.failed_attempts += 1
                last = attempt > self._max_retries
                log.warning(
                    "notify_send_failed",
                    channel=name,
                    attempt=attempt,
                    giving_up=last,
                    error=f"{type(exc).__name__}: {exc}",
                    queue_depth=len(self._queue),
                )
                if last:
                    self.stats.gave_up += 1
                    self.stats.by_channel_failures[name] += 1
                    return
                if not self._closing:
                    await self._sleep_until(self._clock.now_ns() + self._backoff_ns * 2 ** (attempt - 1))
            else:
                self.stats.delivered += 1
                log.info("notify_sent", channel=name, kind=str(message.kind), attempt=attempt)
                return

    async def _sleep_until(self, when_ns: int) -> None:
        """Wait on the clock until ``when_ns``; ``close()`` cuts the wait short."""
        if when_ns <= self._clock.now_ns():
            return
        event = asyncio.Event()
        self._waits.add(event)
        handle = self._clock.call_at(when_ns, event.set, "notify_wait")
        try:
            await event.wait()
        finally:
            handle.cancel()
            self._waits.discard(event)
