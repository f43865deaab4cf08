"""Startup before the terminal is up: the session waits for the broker (and the feed) to answer, with a
doubling backoff on the engine's clock, up to a deadline; it reconciles nothing and sends nothing before.
The route is the real file route over real folders; the terminal (the emulator) starts at 08:45."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest

from tests.watched_clock import WatchedClock, drive
from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig
from zhixing.engine.account import Account
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import BrokerDisconnected, BrokerError, FeedError
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.notify import Severity, not_ready_notice
from zhixing.engine.readiness import NotReady, wait_until_ready
from zhixing.engine.store import StateStore
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed
from zhixing.replay.terminal import TerminalEmulator

SNAPSHOTS = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600103.SH"
ACCOUNT = "acct-late-1"


# ------------------------------------------------------------------------------------- the helper itself
async def test_retries_with_a_doubling_backoff_until_the_attempt_succeeds() -> None:
    clock = SimClock(10 * NS_PER_SECOND)
    tried_at: list[int] = []
    failures: list[NotReady] = []

    async def attempt() -> None:
        tried_at.append(clock.now_ns())
        if len(tried_at) < 4:
            raise BrokerError("terminal not running")

    async def wait(until_ns: int) -> None:
        clock.advance_to(until_ns)

    attempts = await wait_until_ready(
        "broker",
        attempt,
        clock=clock,
        timeout_ns=60 * NS_PER_SECOND,
        give_up=BrokerDisconnected,
        wait=wait,
        on_not_ready=failures.append,
    )
    assert attempts == 4
    assert [(t - tried_at[0]) // NS_PER_SECOND for t in tried_at] == [0, 1, 3, 7]
    assert [f.attempt for f in failures] == [1, 2, 3]
    assert all("terminal not running" in f.error for f in failures)
    assert [f.next_try_ns for f in failures] == tried_at[1:]


async def test_gives_up_at_the_deadline_naming_what_how_often_and_the_last_error() -> None:
    clock = SimClock(0)
    failures: list[NotReady] = []

    async def attempt() -> None:
        raise OSError(f"share not mounted at {clock.now_ns() // NS_PER_SECOND} s")

    async def wait(until_ns: int) -> None:
        clock.advance_to(until_ns)

    with pytest.raises(BrokerDisconnected) as raised:
        await wait_until_ready(
            "broker route fileorder",
            attempt,
            clock=clock,
            timeout_ns=100 * NS_PER_SECOND,
            give_up=BrokerDisconnected,
            wait=wait,
            on_not_ready=failures.append,
        )
    # tries at 0, 1, 3, 7, 15, 31, 61 s (backoff capped at 30 s); the next (91 s) fits, the one after not
    assert [f.attempt for f in failures] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert failures[-1].next_try_ns is None
    assert failures[-2].next_try_ns == 91 * NS_PER_SECOND
    message = str(raised.value)
    assert "broker route fileorder not ready after 8 attempt(s) over 91 s" in message
    assert "share not mounted at 91 s" in message
    assert isinstance(raised.value.__cause__, OSError)


async def test_a_zero_timeout_tries_once() -> None:
    clock = SimClock(0)
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise FeedError("xtdata not connected")

    with pytest.raises(FeedError, match="market-data feed not ready after 1 attempt"):
        await wait_until_ready("market-data feed", attempt, clock=clock, timeout_ns=0, give_up=FeedError)
    assert calls == [1]


async def test_an_error_that_is_not_a_link_failure_is_not_retried() -> None:
    clock = SimClock(0)
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise ValueError("bad setting")

    with pytest.raises(ValueError, match="bad setting"):
        await wait_until_ready(
            "broker", attempt, clock=clock, timeout_ns=60 * NS_PER_SECOND, give_up=BrokerDisconnected
        )
    assert calls == [1]


def test_the_notice_says_until_when_it_keeps_trying_and_when_it_gave_up() -> None:
    deadline = shanghai_ns(date(2021, 12, 1), "08:40")
    trying = not_ready_notice(
        NotReady("broker route qmt", 1, "BrokerDisconnected: connect returned -1", deadline - 1, deadline),
        account="123456789",
    )
    assert "broker route qmt not reachable at start" in trying.subject
    assert "still trying until 08:40:00" in trying.body
    assert "connect returned -1" in trying.body
    assert trying.severity is Severity.WARNING
    assert "123456789" not in trying.subject  # the account is masked
    gave_up = not_ready_notice(NotReady("broker route qmt", 9, "x", None, deadline))
    assert "gave up after 9 attempt(s); nothing was traded" in gave_up.body
    assert gave_up.severity is Severity.CRITICAL


# ------------------------------------------------------------------------------------- a late terminal
class LateTerminal:
    """Real folders, the real file route, and a terminal emulator that comes up at ``up_at``."""

    def __init__(self, tmp_path: Path, market: MarketData, clock: SimClock, up_at: str | None) -> None:
        day = market.trade_date
        self.input_dir, self.output_dir = tmp_path / "scan", tmp_path / "push"
        self.input_dir.mkdir()  # the share is there; the terminal is not running yet
        self.venue = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**9)
        self.terminal = TerminalEmulator(self.input_dir, self.output_dir, ACCOUNT, self.venue, clock)
        if up_at is not None:
            self.up_ns = shanghai_ns(day, up_at)
            clock.call_at(self.up_ns, self.terminal.start, "terminal_up")
        self.adapter = FileOrderAdapter(
            FileOrderConfig(
                input_dir=self.input_dir,
                output_dir=self.output_dir,
                account_id=ACCOUNT,
                state_dir=tmp_path / "state",
                poll_interval_ns=250_000_000,
            ),
            clock,
        )
        self.orders_dropped: Callable[[], int] = lambda: len(list(self.input_dir.glob("*.order.csv")))


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SNAPSHOTS, symbols=[SYMBOL])


async def open_late(
    tmp_path: Path, market: MarketData, up_at: str | None, timeout_s: int
) -> tuple[WatchedClock, LateTerminal, list[NotReady], Awaitable[LiveSession]]:
    clock = SimClock(shanghai_ns(market.trade_date, "08:30"))
    watched = WatchedClock(clock)
    late = LateTerminal(tmp_path, market, clock, up_at)
    failures: list[NotReady] = []
    opening = open_live_session(
        clock=watched,
        adapter=late.adapter,
        feed=RecordedFeed(market, late.venue, watched),
        store_path=tmp_path / "journal.db",
        account=Account(10**9),
        trading_day_start_ns=shanghai_ns(market.trade_date, "00:00"),
        synchronous="NORMAL",
        connect_timeout_ns=timeout_s * NS_PER_SECOND,
        on_not_ready=failures.append,
    )
    return watched, late, failures, opening


async def test_a_session_started_before_the_terminal_waits_for_it_then_reconciles(
    tmp_path: Path, market: MarketData
) -> None:
    watched, late, failures, opening = await open_late(tmp_path, market, "08:45", timeout_s=1800)
    session = await drive(watched, opening)
    try:
        opened = watched.now_ns()
        assert late.up_ns <= opened <= late.up_ns + 30 * NS_PER_SECOND  # within one (capped) backoff
        assert failures[0].attempt == 1
        assert "no cash row readable" in failures[0].error
        assert all(f.next_try_ns is not None for f in failures)
        assert [f.attempt for f in failures] == list(range(1, len(failures) + 1))
        assert len(failures) >= 6  # 08:30 -> 08:45 at 1, 2, 4, 8, 16, 30, 30 ... s
        assert session.reconcile.ok
        assert session.oms.halted_reason is None
        assert late.orders_dropped() == 0
        assert session.account.cash == 10**9
    finally:
        await session.close()


async def test_a_terminal_that_never_comes_up_fails_the_start_cleanly(
    tmp_path: Path, market: MarketData
) -> None:
    watched, late, failures, opening = await open_late(tmp_path, market, None, timeout_s=120)
    with pytest.raises(BrokerDisconnected, match=r"broker route fileorder not ready after \d+ attempt"):
        await drive(watched, opening)
    assert failures[-1].next_try_ns is None
    assert watched.now_ns() <= shanghai_ns(market.trade_date, "08:32")
    assert late.orders_dropped() == 0
    # the journal was closed: a new process opens it and finds nothing was written
    store = await StateStore.open(tmp_path / "journal.db")
    try:
        assert await store.load_orders() == []
    finally:
        await store.close()


async def test_a_feed_that_is_late_is_waited_for_too(tmp_path: Path, market: MarketData) -> None:
    clock = SimClock(shanghai_ns(market.trade_date, "09:00"))
    watched = WatchedClock(clock)
    venue = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**9)
    feed = RecordedFeed(market, venue, watched)
    up_ns = shanghai_ns(market.trade_date, "09:02")
    recorded_connect = feed.connect

    async def late_connect() -> None:
        if watched.now_ns() < up_ns:
            raise FeedError("xtdata: not connected to the quote server")
        await recorded_connect()

    feed.connect = late_connect  # type: ignore[method-assign]
    failures: list[NotReady] = []
    session = await drive(
        watched,
        open_live_session(
            clock=watched,
            adapter=venue,
            feed=feed,
            store_path=tmp_path / "journal.db",
            account=Account(10**9),
            trading_day_start_ns=shanghai_ns(market.trade_date, "00:00"),
            synchronous="NORMAL",
            connect_timeout_ns=600 * NS_PER_SECOND,
            on_not_ready=failures.append,
        ),
    )
    try:
        assert up_ns <= watched.now_ns() <= up_ns + 30 * NS_PER_SECOND
        assert failures
        assert {f.what for f in failures} == {"market-data feed"}
        await session.feed.subscribe([SYMBOL])  # connected for real
    finally:
        await session.close()


# ------------------------------------------------------------------------------------- zhixing run
RUN_CONFIG = """
[account]
id = "8800123456"
cash_yuan = 1000000

[store]
path = "state/zhixing.db"

[route]
kind = "fileorder"
connect_timeout_s = 20
[route.fileorder]
input_dir = "scan"
output_dir = "push"
account_id = "{account}"
state_dir = "state"

[feed]
kind = "qmt"

[notify.email]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "zhixing@example.com"
recipients = ["desk@example.com"]
timeout_s = 5

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


async def test_zhixing_run_mails_that_the_route_is_not_up_and_that_it_gave_up(tmp_path: Path) -> None:
    from tests.adapters.notify.test_notify_support import MailRecorder, smtp_server
    from zhixing.engine.cli.run_cmd import run_config
    from zhixing.engine.config import load_config

    (tmp_path / "scan").mkdir()  # the terminal's input share exists; the terminal never writes its output
    path = tmp_path / "zhixing.toml"
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        path.write_text(RUN_CONFIG.format(account=ACCOUNT, port=port), encoding="utf-8")
        config = load_config(path)
        # the route's 20 s deadline passes on a virtual clock that moves only while the start-up wait
        # sleeps (never during an attempt or a mail): tries at 0, 1, 3, 7 and 15 s, the next (31 s) is past
        # the deadline, however fast or loaded the machine is
        watched = WatchedClock(SimClock(shanghai_ns(date(2021, 12, 1), "08:30")))
        with pytest.raises(
            BrokerDisconnected, match=r"fileorder not ready after 5 attempt\(s\) over 15 s \(timeout 20 s\)"
        ):
            await drive(watched, run_config(config, clock=watched))
    assert watched.now_ns() == shanghai_ns(date(2021, 12, 1), "08:30:15")
    bodies = "\n".join(str(m.get_body(("plain",)).get_content()) for m in recorder.mails)
    subjects = [str(m["Subject"]) for m in recorder.mails]
    assert len(subjects) == 2  # the first failure at once, the giving up at the close (not each attempt)
    assert all("broker route fileorder not reachable at start" in s for s in subjects)
    assert "still trying until 08:30:20 (Asia/Shanghai)" in bodies
    assert "gave up after 5 attempt(s); nothing was traded" in bodies
    assert "no cash row readable" in bodies  # the route's own words
    assert "8800123456" not in " ".join(subjects) + bodies  # the account id is masked
    assert not list((tmp_path / "scan").glob("*.csv"))  # nothing dropped into the terminal's folder
