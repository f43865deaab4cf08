"""A step of the host's wall clock, of any size, either way, at any moment, changes nothing the engine
does: the ``LiveClock`` is the wall time at start moved on by the monotonic clock. Everything here runs
the real ``LiveClock`` on a virtual event loop (``tests.virtual_time``) over fake host clocks that the
test steps; no wall time is read, nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.fakes import World, calendar
from tests.virtual_time import HOUR, MINUTE, NS, HostClocks, VirtualLoop, at, host_at, live_world, run_virtual
from zhixing.algos.base import AlgoContext
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.clock import LiveClock, host_wall_ns
from zhixing.engine.enums import Side
from zhixing.engine.errors import BrokerDisconnected
from zhixing.engine.events import Quote, SubmitOrder
from zhixing.engine.feed import QuoteBook
from zhixing.engine.feed_keeper import FeedKeeper
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.readiness import wait_until_ready
from zhixing.engine.risk_controls import RiskLimits

SYMBOL = "600000.SH"


# ---------------------------------------------------------------------------------------- the clock
def test_live_clock_keeps_its_time_across_wall_steps_and_reports_the_host_clock_apart() -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        assert clock.now_ns() == clock.system_ns() == at("10:00")
        loop.advance_ns(5 * NS)
        host.step_wall(HOUR)
        assert clock.now_ns() == at("10:00") + 5 * NS  # not followed
        assert clock.system_ns() == at("10:00") + 5 * NS + HOUR
        host.step_wall(-3 * HOUR)
        loop.advance_ns(NS)
        assert clock.now_ns() == at("10:00") + 6 * NS  # never backwards either
        assert clock.system_ns() == at("10:00") + 6 * NS - 2 * HOUR

    run_virtual(main)


def test_timers_and_sleeps_fire_at_their_instant_on_the_monotonic_clock_whatever_the_wall_does() -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        fired: list[tuple[str, int, int]] = []  # (name, engine ns, loop ns)
        for name, step in (("plus", HOUR), ("minus", -HOUR), ("tiny", NS)):
            when = clock.now_ns() + 30 * NS
            clock.call_at(when, lambda n=name: fired.append((n, clock.now_ns(), loop.mono_ns)))
            host.step_wall_after(10, step)
            await clock.sleep_until(when)
            assert clock.now_ns() == when
        start = loop.start_ns
        assert fired == [
            ("plus", at("10:00") + 30 * NS, start + 30 * NS),
            ("minus", at("10:00") + 60 * NS, start + 60 * NS),
            ("tiny", at("10:00") + 90 * NS, start + 90 * NS),
        ]

    run_virtual(main)


def test_a_timer_armed_before_a_suspend_fires_within_a_second_of_the_wake_not_a_suspend_late() -> None:
    """The loop's clock stops while the machine sleeps; the engine's (boot time) does not. A timer due
    during the suspend fires at the wake; the engine's time has moved on with the world's."""

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        fired: list[int] = []
        clock.call_at(at("10:30"), lambda: fired.append(clock.now_ns()))
        loop.call_later(60, host.suspend, HOUR)  # 10:01: the machine sleeps an hour
        await clock.sleep_until(at("10:30"))
        assert clock.now_ns() <= at("11:01") + NS  # woke at 11:01, at most one re-arm period later
        assert len(fired) == 1
        assert at("11:01") <= fired[0] <= at("11:01") + NS
        assert clock.system_ns() == clock.now_ns()  # a suspend is no step: host and engine agree

    run_virtual(main)


class _Native:
    def cancel(self) -> None:
        return None


class _ManualLoop:
    """Enough of an event loop for ``LiveClock``: records each native timer; the test runs them itself,
    as early as a coarse loop clock would (asyncio runs a timer up to its clock's resolution early)."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, Callable[..., object], tuple[object, ...]]] = []

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> _Native:
        self.armed.append((delay, callback, args))
        return _Native()

    def run_last(self) -> None:
        _, callback, args = self.armed[-1]
        callback(*args)


def test_a_timer_that_the_loop_wakes_early_waits_on_and_never_spins_until_the_clock_ticks() -> None:
    resolution = 0.015_625  # Windows' monotonic clock: asyncio may run a timer up to 15.6 ms early
    mono = [0]
    loop = _ManualLoop()
    clock = LiveClock(
        loop,  # type: ignore[arg-type]
        wall_ns=lambda: at("10:00") + mono[0],
        monotonic_ns=lambda: mono[0],
        timer_resolution_s=resolution,
    )
    fired: list[int] = []
    when = at("10:00") + NS // 2
    clock.call_at(when, lambda: fired.append(clock.now_ns()))
    assert loop.armed[-1][0] == 0.5
    mono[0] = NS // 2 - 10_000_000  # the loop ran it 10 ms early
    loop.run_last()
    assert fired == []  # not before its instant
    assert loop.armed[-1][0] == resolution  # waits a clock tick, not 10 ms again and again
    mono[0] = NS // 2 + 5_625_000
    loop.run_last()
    assert fired == [when + 5_625_000]


def test_host_wall_ns_is_the_host_clock_for_a_live_clock_and_the_clock_itself_otherwise() -> None:
    from zhixing.engine.clock import SimClock

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        host.step_wall(2 * HOUR)
        assert host_wall_ns(clock) == at("12:00")
        assert clock.now_ns() == at("10:00")
        assert host_wall_ns(SimClock(5)) == 5

    run_virtual(main)


def test_live_clock_refuses_a_nonpositive_rearm_period() -> None:
    with pytest.raises(ValueError, match="max_native_delay_ns"):
        LiveClock(wall_ns=lambda: 0, monotonic_ns=lambda: 0, max_native_delay_ns=0)


# ---------------------------------------------------------------------------------------- a TWAP
def _twap(start: str = "10:00", end: str = "10:30", quantity: int = 6_000) -> ParentOrder:
    return ParentOrder(
        parent_id="P1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=quantity,
        start_ns=at(start),
        end_ns=at(end),
        params={"interval_s": "30", "final_sweep_s": "0"},
    )


def _run_twap(
    steps: list[tuple[float, int]], *, begin: str = "09:59:59", parent: ParentOrder | None = None
) -> tuple[list[tuple[int, int, int, int]], int, str, HostClocks]:
    """A TWAP on a LiveClock whose host wall clock steps at ``steps`` ((loop seconds from the start, ns));
    returns (engine time, loop time since the start, quantity, price) of every child, the filled quantity,
    the parent's status and the host clocks. The loop time shows a stall that engine times alone would
    hide (a clock that followed a backward step would shift every later child by the step)."""
    parent = parent or _twap()
    out: list[HostClocks] = []

    async def main(loop: VirtualLoop) -> tuple[list[tuple[int, int, int, int]], int, str]:
        host = host_at(loop, begin)
        out.append(host)
        clock = host.live_clock()
        world = await live_world(clock, fill_on_submit=lambda o: o.quantity)
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000)
        sent: list[tuple[int, int, int, int]] = []
        submit = world.broker.submit

        async def recording_submit(order: Order) -> None:
            sent.append((clock.now_ns(), loop.mono_ns - loop.start_ns, order.quantity, order.price))
            await submit(order)

        world.broker.submit = recording_submit  # type: ignore[method-assign]
        for seconds, ns in steps:
            host.step_wall_after(seconds, ns)
        algo = TwapAlgo(parent, _ctx(world))
        algo.start()
        loop_end = parent.end_ns + MINUTE - at(begin)  # as long as the day needs, in loop time
        await asyncio.sleep(loop_end / NS)
        await world.oms.stop()
        return sent, algo.filled_quantity, str(algo.parent.status)

    sent, filled, status = run_virtual(main)
    return sent, filled, status, out[0]


def _ctx(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


@pytest.mark.parametrize(
    "step",
    [HOUR, -HOUR, NS, -30 * MINUTE, 6 * HOUR, -24 * HOUR],
    ids=["plus_1h", "minus_1h", "plus_1s", "minus_30min", "plus_6h", "minus_1day"],
)
def test_a_wall_step_mid_twap_neither_ends_stalls_nor_bursts_it(step: int) -> None:
    baseline, base_filled, base_status, _ = _run_twap([])
    assert len(baseline) == 60
    assert base_filled == 6_000
    assert base_status == "DONE"
    assert [loop_ns for _, loop_ns, _, _ in baseline] == [(1 + 30 * k) * NS for k in range(60)]
    stepped, filled, status, host = _run_twap([(601.5, step)])  # 10:09:59.5, between two slices
    assert host.stepped_ns == step  # the step happened
    assert stepped == baseline  # every child at the same engine and loop instant, size and price
    assert (filled, status) == (base_filled, base_status)


def test_repeated_wall_steps_both_ways_leave_the_twap_exactly_as_without() -> None:
    baseline, *_ = _run_twap([])
    steps = [(60.0 * k + 7.25, (-1) ** k * (k + 1) * 17 * MINUTE) for k in range(25)]
    stepped, filled, status, host = _run_twap(steps)
    assert len(host.steps) == 25
    assert stepped == baseline
    assert filled == 6_000
    assert status == "DONE"


def test_a_wall_step_at_the_lunch_break_leaves_a_twap_across_lunch_as_without() -> None:
    parent = _twap("11:20", "13:10", 4_400)
    baseline, base_filled, _, _ = _run_twap([], begin="11:19:59", parent=parent)
    lunch = [t for t, *_ in baseline if at("11:30") <= t < at("13:00")]
    assert not lunch
    assert base_filled == 4_400
    for step in (HOUR, -HOUR, 90 * MINUTE):  # 12:00: a step into the afternoon, back into the morning...
        stepped, filled, _, _ = _run_twap([(2_401.0, step)], begin="11:19:59", parent=parent)
        assert stepped == baseline
        assert filled == base_filled


# ---------------------------------------------------------------------------------------- in-flight checks
@pytest.mark.parametrize("step", [HOUR, -HOUR, 3 * NS, -30 * MINUTE])
def test_an_in_flight_check_is_due_exactly_at_its_timeout_whatever_the_wall_did_meanwhile(step: int) -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        world = await live_world(clock, auto_ack=False)  # the broker never answers
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000)
        checker = InflightChecker(world.oms, world.broker, timeout_ns=5 * NS, max_queries=3)
        order = world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=10_000))
        await world.oms.flush()
        sent_at, sent_loop = clock.now_ns(), loop.mono_ns
        host.step_wall_after(2, step)  # in the middle of the wait
        await asyncio.sleep((5 * NS - 1) / NS)
        assert checker.due() == []
        assert checker.next_due_ns() == sent_at + 5 * NS
        await clock.sleep_until(sent_at + 5 * NS)
        assert loop.mono_ns - sent_loop == 5 * NS  # not late, in real (monotonic) time
        assert checker.due() == [order.client_order_id]
        for k in range(3):  # three unanswered queries, one timeout apart, then resolved by policy
            await checker.check()
            await clock.sleep_until(sent_at + (k + 2) * 5 * NS)
        assert checker.stats.queried == 3
        assert checker.stats.resolved_by_policy == [order.client_order_id]
        await world.oms.stop()

    run_virtual(main)


# ---------------------------------------------------------------------------------------- rate windows
@pytest.mark.parametrize("step", [HOUR, -HOUR, 2 * NS, -2 * NS])
def test_a_wall_step_inside_a_rate_window_neither_empties_it_nor_keeps_it_full(step: int) -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        limits = RiskLimits(max_messages_per_second=10, cancel_reserve_pct=0, duplicate_window_ns=0)
        world = await live_world(clock, risk=limits)
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000, last=10_000)

        def buy(price: int) -> str | None:
            order = world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=price))
            return order.denial.value if order.denial else None

        assert [buy(10_000 - k * 10) for k in range(10)] == [None] * 10
        await world.oms.flush()
        full_at, full_loop = clock.now_ns(), loop.mono_ns
        host.step_wall(step)  # the window is full
        loop.advance_ns(NS // 2)
        assert world.risk is not None
        assert buy(9_800) is None  # over the cap: queued, not denied
        await world.oms.flush()
        assert world.risk.report()["queued_now"] == 1  # a forward step does not empty it: no burst
        await clock.sleep_until(full_at + NS)
        assert loop.mono_ns - full_loop == NS  # one second of real time later...
        await world.oms.flush()
        assert world.risk.report()["queued_now"] == 0  # ...a backward step does not keep it full: no stall
        assert world.broker.submit_times[-1] == full_at + NS
        assert world.risk.peak_per_second <= 10
        await world.oms.stop()

    run_virtual(main)


# ---------------------------------------------------------------------------------------- feed staleness
def _quote(clock: LiveClock, symbol: str, seq: int) -> Quote:
    now = clock.now_ns()
    return Quote(
        ts_event=now + seq,  # new every time
        ts_init=now,
        symbol=symbol,
        last=10_000,
        bid_price=9_990,
        bid_quantity=100,
        ask_price=10_000,
        ask_quantity=100,
        cum_volume=seq,
        cum_amount=seq,
        prev_close=10_000,
        high_limit=11_000,
        low_limit=9_000,
    )


class _SilentFeed:
    """Enough of a ``QuoteFeed`` for the keeper: counts re-subscriptions."""

    name = "silent"

    def __init__(self) -> None:
        self.subscribed: list[tuple[int, list[str]]] = []

    async def subscribe(self, symbols: list[str]) -> None:
        self.subscribed.append((0, list(symbols)))

    async def unsubscribe(self, symbols: list[str]) -> None:
        return None


@pytest.mark.parametrize("step", [HOUR, -HOUR, 5 * NS, -30 * MINUTE])
def test_a_wall_step_neither_makes_a_live_feed_stale_nor_hides_a_silent_one(step: int) -> None:
    """600000.SH quotes every second, 000001.SZ goes silent at 10:00:10: only the silent one is stale, at the
    watch's first check (every 7.5 s) 30 s after its last quote, in engine and in loop time; it is
    re-subscribed 30 s later, then on the backoff."""

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        stale: list[tuple[str, int, int]] = []
        book = QuoteBook(clock, stale_after_ns=30 * NS, is_trading=calendar().is_continuous)
        book.on_stale = lambda symbol: stale.append((symbol, clock.now_ns(), loop.mono_ns - loop.start_ns))
        feed = _SilentFeed()
        keeper = FeedKeeper(feed, book, clock, resubscribe_after_ns=30 * NS)  # type: ignore[arg-type]
        book.watch(["600000.SH", "000001.SZ"])
        host.step_wall_after(20.5, step)
        resubscribed: list[int] = []
        for second in range(1, 181):
            await clock.sleep_until(at("10:00") + second * NS)
            book.push(_quote(clock, "600000.SH", second))
            if second <= 10:
                book.push(_quote(clock, "000001.SZ", second))
            if await keeper.check():
                resubscribed.append(second)
        book.stop_watch()
        assert [(s, t) for s, t, _ in stale] == [("000001.SZ", at("10:00:45"))]
        assert stale[0][2] == 45 * NS  # ... in real time as well
        assert resubscribed == [75, 105, 165]  # 30 s after stale, then 30 s, 60 s backoff

    run_virtual(main)


# ---------------------------------------------------------------------------------------- start-up wait
@pytest.mark.parametrize("step", [HOUR, -HOUR])
def test_a_wall_step_while_waiting_for_the_terminal_neither_gives_up_early_nor_waits_longer(
    step: int,
) -> None:
    """The route answers only after 100 s; the start-up wait (timeout 600 s, backoff 1, 2, 4 ... 30 s) is
    stepped mid-wait: it neither gives up at once (+1 h would pass the deadline) nor backs off an hour."""

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "08:30")
        clock = host.live_clock()
        attempts: list[int] = []

        async def attempt() -> None:
            attempts.append(loop.mono_ns - loop.start_ns)
            if loop.mono_ns - loop.start_ns < 100 * NS:
                raise BrokerDisconnected("terminal not logged in yet")

        host.step_wall_after(10.5, step)
        number = await wait_until_ready(
            "broker route", attempt, clock=clock, timeout_ns=600 * NS, give_up=BrokerDisconnected
        )
        assert attempts == [k * NS for k in (0, 1, 3, 7, 15, 31, 61, 91, 121)]
        assert number == 9

    run_virtual(main)


@pytest.mark.parametrize("step", [24 * HOUR, 14 * HOUR])  # a whole day; past midnight (10:00 + 14 h)
def test_a_wall_step_past_midnight_does_not_reset_the_days_message_cap(step: int) -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        limits = RiskLimits(max_messages_per_day=20, cancel_reserve_pct=0, duplicate_window_ns=0)
        world = await live_world(clock, risk=limits)
        world.quotes.set(SYMBOL, bid=9_990, ask=10_000, last=10_000)
        codes = []
        for k in range(21):
            order = world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=9_990 - k))
            await world.oms.flush()
            codes.append(order.denial.value if order.denial else None)
            await clock.sleep_until(clock.now_ns() + 2 * NS)
            if k == 19:
                host.step_wall(step)  # the day's cap is spent; the host clock says it is another day
        assert codes == [None] * 20 + ["rate_per_day"]
        await world.oms.stop()

    run_virtual(main)


# ---------------------------------------------------------------------------------------- remote timestamps
def test_webhook_signatures_carry_the_host_clock_a_remote_server_checks_them_against() -> None:
    """DingTalk and Feishu refuse a signature more than an hour off their own clock. After the host clock
    was corrected by 2 h, the engine's time is the old one; the signature must carry the host's."""
    from zhixing.adapters.notify.webhook import DingTalkNotifier, FeishuNotifier
    from zhixing.engine.notify import Message, MessageKind
    from zhixing.engine.secrets import Secret

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        host.step_wall(2 * HOUR)
        message = Message(kind=MessageKind.ERROR, subject="s", body="b")
        ding = DingTalkNotifier(
            Secret("https://oapi.example/robot/send?access_token=x"), clock=clock, signing_secret=Secret("k")
        )
        url, _ = ding.request(message)
        assert f"timestamp={at('12:00') // 1_000_000}&" in url
        feishu = FeishuNotifier(
            Secret("https://open.example/open-apis/bot/v2/hook/x"), clock=clock, signing_secret=Secret("k")
        )
        _, body = feishu.request(message)
        assert body["timestamp"] == str(at("12:00") // NS)
        assert clock.now_ns() == at("10:00")  # the engine itself did not follow

    run_virtual(main)
