"""The notification dispatcher on a SimClock: never raises, bounded retries, digests, bounded queue."""

from __future__ import annotations

import asyncio

import pytest

from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.notify import (
    Message,
    MessageKind,
    NotificationDispatcher,
    NotifyError,
    ParentResult,
    Severity,
    SignalLine,
    error_notice,
    execution_report,
    halt_notice,
    risk_denial,
    signal_summary,
    slippage_bps,
)
from zhixing.engine.units import NS_PER_SECOND

T0 = 1_727_830_800 * NS_PER_SECOND  # 2024-10-02 09:00 Shanghai
WINDOW = 60 * NS_PER_SECOND
BACKOFF = 2 * NS_PER_SECOND


class Recorder:
    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.received: list[Message] = []

    async def send(self, message: Message) -> None:
        self.received.append(message)


class Flaky:
    """Fails the first ``failures`` sends, then records."""

    def __init__(self, failures: int) -> None:
        self.name = "flaky"
        self.failures = failures
        self.attempts = 0
        self.received: list[Message] = []

    async def send(self, message: Message) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise NotifyError(f"server down (attempt {self.attempts})")
        self.received.append(message)


class Hanging:
    name = "hanging"

    def __init__(self) -> None:
        self.started = 0
        self.abandoned = asyncio.Event()  # set when the dispatcher's timeout cancels the send

    async def send(self, message: Message) -> None:
        self.started += 1
        try:
            await asyncio.Event().wait()
        finally:
            self.abandoned.set()


async def settle() -> None:
    """Let the dispatcher task run until it waits again (no time passes)."""
    for _ in range(50):
        await asyncio.sleep(0)


def msg(i: int, kind: MessageKind = MessageKind.RISK) -> Message:
    return Message(kind=kind, subject=f"subject {i}", body=f"body {i}", severity=Severity.WARNING)


def dispatcher(channels: list[object], clock: SimClock, **kwargs: object) -> NotificationDispatcher:
    options: dict[str, object] = {
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_ns": BACKOFF,
        "digest_window_ns": WINDOW,
        "queue_limit": 100,
    }
    options.update(kwargs)
    return NotificationDispatcher(channels, clock, **options)  # type: ignore[arg-type]


async def test_first_message_is_sent_at_once_and_a_burst_becomes_one_digest() -> None:
    clock = SimClock(T0)
    rec = Recorder()
    d = dispatcher([rec], clock, queue_limit=1000)
    d.start()
    d.post(msg(0))
    await settle()
    assert [m.subject for m in rec.received] == ["subject 0"]
    for i in range(1, 501):
        d.post(msg(i))
    await settle()
    assert len(rec.received) == 1  # held inside the digest window
    assert clock.step()  # the window ends
    await settle()
    assert clock.now_ns() == T0 + WINDOW
    assert len(rec.received) == 2
    combined = rec.received[1]
    assert combined.subject == "[zhixing] 500 notifications: 500 risk"
    assert "== subject 1\nbody 1" in combined.body
    assert "... and 470 more" in combined.body
    assert d.stats.digests == 1
    assert d.stats.delivered == 2
    await d.close()


async def test_post_never_raises_and_retries_are_bounded_with_backoff_on_the_clock() -> None:
    clock = SimClock(T0)
    down = Flaky(failures=100)
    d = dispatcher([down], clock)
    d.start()
    d.post(msg(1))
    await settle()
    attempt_times = [clock.now_ns()]
    while clock.step():
        attempt_times.append(clock.now_ns())
        await settle()
    assert down.attempts == 3  # one try and max_retries=2 retries, then given up
    assert attempt_times == [T0, T0 + BACKOFF, T0 + 3 * BACKOFF]
    assert d.stats.gave_up == 1
    assert d.stats.failed_attempts == 3
    assert d.stats.delivered == 0
    assert clock.next_timer_ns() is None  # nothing left armed: no endless retry
    d.post(msg(2))  # still accepts work after giving up
    await settle()
    await d.close(deadline_s=1.0)


async def test_a_retry_that_succeeds_delivers_once() -> None:
    clock = SimClock(T0)
    flaky = Flaky(failures=1)
    other = Recorder()
    d = dispatcher([flaky, other], clock)
    d.start()
    d.post(msg(1))
    await settle()
    assert len(other.received) == 1
    assert flaky.received == []
    clock.step()
    await settle()
    assert [m.subject for m in flaky.received] == ["subject 1"]
    assert d.stats.delivered == 2
    assert d.stats.gave_up == 0
    await d.close()


async def test_full_queue_drops_oldest_and_reports_the_drop_in_the_next_message() -> None:
    clock = SimClock(T0)
    rec = Recorder()
    d = dispatcher([rec], clock, queue_limit=3)
    d.start()
    d.post(msg(0))
    await settle()
    for i in range(1, 11):
        d.post(msg(i))
    assert d.queue_depth == 3
    assert d.stats.dropped == 7
    await settle()
    assert clock.step()
    await settle()
    body = rec.received[1].body
    assert body.startswith("7 earlier notifications were dropped (queue full)")
    assert "subject 8" in body
    assert "subject 10" in body
    assert "subject 7" not in body
    await d.close()


async def test_a_hanging_channel_times_out_and_does_not_hold_back_the_others() -> None:
    clock = SimClock(T0)
    hang, rec = Hanging(), Recorder()
    d = dispatcher([hang, rec], clock, timeout_s=0.05, max_retries=0)
    d.start()
    d.post(msg(1))
    await settle()
    assert len(rec.received) == 1
    await asyncio.wait_for(hang.abandoned.wait(), timeout=2)
    await settle()
    assert hang.started == 1
    assert d.stats.by_channel_failures["hanging"] == 1
    await d.close()


async def test_close_flushes_without_waiting_for_the_digest_window() -> None:
    clock = SimClock(T0)
    rec = Recorder()
    d = dispatcher([rec], clock)
    d.start()
    d.post(msg(0))
    await settle()
    d.post(msg(1))
    d.post(msg(2))
    await d.close(deadline_s=1.0)
    assert clock.now_ns() == T0  # no virtual time had to pass
    assert rec.received[-1].subject == "[zhixing] 2 notifications: 2 risk"
    d.post(msg(3))  # after close: ignored, not raised
    assert d.queue_depth == 0


async def test_close_gives_up_at_its_deadline_when_a_channel_hangs() -> None:
    clock = SimClock(T0)
    d = dispatcher([Hanging()], clock, timeout_s=30.0)
    d.start()
    d.post(msg(1))
    await settle()
    async with asyncio.timeout(2):
        await d.close(deadline_s=0.05)


async def test_post_from_the_trading_path_does_not_wait_for_a_slow_channel() -> None:
    clock = SimClock(T0)
    hang = Hanging()
    d = dispatcher([hang], clock, timeout_s=30.0, max_retries=0)
    d.start()
    d.post(msg(1))
    await settle()
    for i in range(2, 1000):
        d.post(msg(i))  # returns at once while a send is stuck
    assert d.stats.posted == 999
    assert d.queue_depth == 100
    await d.close(deadline_s=0.05)


def test_slippage_is_positive_when_worse_for_either_side() -> None:
    assert slippage_bps(Side.BUY, 10_010, 10_000) == pytest.approx(10.0)
    assert slippage_bps(Side.SELL, 9_990, 10_000) == pytest.approx(10.0)
    assert slippage_bps(Side.SELL, 10_010, 10_000) == pytest.approx(-10.0)
    assert slippage_bps(Side.BUY, None, 10_000) is None


def test_execution_report_lists_filled_unfilled_reason_and_slippage() -> None:
    message = execution_report(
        [
            ParentResult(
                parent_id="P1",
                symbol="600000.SH",
                side=Side.BUY,
                quantity=1000,
                filled=1000,
                avg_price=10_010,
                arrival_price=10_000,
            ),
            ParentResult(
                parent_id="P2",
                symbol="000001.SZ",
                side=Side.SELL,
                quantity=500,
                filled=200,
                avg_price=12_000,
                arrival_price=12_100,
                unfilled_reason="limit down: no bids",
            ),
        ],
        account="12345678",
    )
    assert message.kind is MessageKind.EXECUTION_REPORT
    assert message.severity is Severity.WARNING
    assert message.subject == "[zhixing] [12****78] execution: 1/2 filled"
    lines = message.body.splitlines()
    p1 = next(line for line in lines if line.startswith("P1"))
    p2 = next(line for line in lines if line.startswith("P2"))
    assert "1000/1000" in p1
    assert "10.010" in p1
    assert "+10.0" in p1
    assert "200/500" in p2
    assert "+82.6" in p2
    assert "limit down: no bids" in p2
    assert "12345678" not in message.body + message.subject


def test_signal_summary_counts_changes() -> None:
    message = signal_summary(
        "morning",
        [
            SignalLine(symbol="600000.SH", current=0, target=1000),
            SignalLine(symbol="000001.SZ", current=500, target=500),
        ],
    )
    assert message.subject == "[zhixing] signal morning: 1 changes"
    assert "600000.SH  0        1000    +1000" in message.body


def test_risk_halt_and_error_messages() -> None:
    assert risk_denial("C1", "600000.SH", "price collar").severity is Severity.WARNING
    halt = halt_notice("5 consecutive rejects")
    assert halt.kind is MessageKind.HALT
    assert halt.severity is Severity.CRITICAL
    err = error_notice("signal job", RuntimeError("exit 1"))
    assert err.body == "RuntimeError: exit 1"
    assert err.kind is MessageKind.ERROR
