"""The clock-step watch: each step of the host's wall clock beyond the threshold is told exactly once, as a
``clock_step_notice`` through the notifications; small steps, slews and suspends are not steps; the
scheduler on a ``LiveClock`` fires every job once, at its instant, whatever the wall clock does. Runs on
the virtual event loop of ``tests.virtual_time`` (no wall time, no sleeps)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes import calendar
from tests.virtual_time import HOUR, MINUTE, NS, HostClocks, VirtualLoop, at, host_at, run_virtual
from zhixing.engine.clock import SimClock
from zhixing.engine.clock_watch import ClockStep, ClockWatch, watch_clock_steps
from zhixing.engine.config import ClockConfig, load_config
from zhixing.engine.errors import ConfigError
from zhixing.engine.notify import Message, NotificationDispatcher, Severity, clock_step_notice
from zhixing.engine.schedule import CronJob, Scheduler


def _watch(loop: VirtualLoop, start: str = "10:00") -> tuple[ClockWatch, list[ClockStep], HostClocks]:
    host = host_at(loop, start)
    clock = host.live_clock()
    steps: list[ClockStep] = []
    watch = ClockWatch(clock, clock.system_ns, on_step=steps.append)
    watch.start(reference_offset_ns=0)
    return watch, steps, host


def test_a_step_is_told_once_not_at_every_check_after_it() -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        host.step_wall_after(3.5, HOUR)
        await asyncio.sleep(60)
        assert watch.checks == 60
        assert [(s.number, s.step_ns, s.offset_ns) for s in steps] == [(1, HOUR, HOUR)]
        assert steps[0].engine_ns == at("10:00") + 4 * NS  # seen at the first check after it
        assert steps[0].system_ns == steps[0].engine_ns + HOUR
        watch.stop()

    run_virtual(main)


@pytest.mark.parametrize("step", [HOUR, -HOUR, 3 * NS, -30 * MINUTE, 24 * HOUR])
def test_a_step_either_way_beyond_the_threshold_is_told_with_its_size(step: int) -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        host.step_wall_after(10.25, step)
        await asyncio.sleep(30)
        assert [s.step_ns for s in steps] == [step]
        watch.stop()

    run_virtual(main)


def test_small_steps_are_not_told_until_together_they_pass_the_threshold() -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        host.step_wall_after(5.5, NS)
        host.step_wall_after(15.5, -NS // 2)  # back: +0.5 s in all
        await asyncio.sleep(30)
        assert steps == []  # +1 s, -0.5 s: within the 2 s threshold
        host.step_wall_after(5.5, 1_600_000_000)  # now +2.1 s from the reference
        await asyncio.sleep(30)
        assert [s.step_ns for s in steps] == [2_100_000_000]
        watch.stop()

    run_virtual(main)


def test_a_step_and_its_correction_are_two_notices_and_the_offset_returns_to_zero() -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        host.step_wall_after(10.5, 2 * HOUR)
        host.step_wall_after(70.5, -2 * HOUR)
        await asyncio.sleep(120)
        assert [(s.step_ns, s.offset_ns) for s in steps] == [(2 * HOUR, 2 * HOUR), (-2 * HOUR, 0)]
        watch.stop()

    run_virtual(main)


def test_repeated_steps_are_each_told_exactly_once() -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        sizes = [(-1) ** k * (k + 3) * NS * 60 for k in range(12)]
        for k, size in enumerate(sizes):
            host.step_wall_after(5.5 + 7 * k, size)
        await asyncio.sleep(120)
        assert [s.step_ns for s in steps] == sizes
        assert [s.number for s in steps] == list(range(1, 13))
        watch.stop()

    run_virtual(main)


def test_two_steps_inside_one_interval_are_told_as_their_sum() -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        host.step_wall_after(4.2, HOUR)
        host.step_wall_after(4.4, 10 * MINUTE)
        await asyncio.sleep(10)
        assert [s.step_ns for s in steps] == [HOUR + 10 * MINUTE]
        watch.stop()

    run_virtual(main)


def test_a_step_between_the_anchor_and_the_watch_start_is_still_told() -> None:
    """``zhixing run`` starts the watch after the clock is made; the anchor's offset (0) is the reference."""

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "09:00")
        clock = host.live_clock()
        loop.advance_ns(3 * NS)
        host.step_wall(-HOUR)  # e.g. while the route was still connecting
        steps: list[ClockStep] = []
        watch = ClockWatch(clock, clock.system_ns, on_step=steps.append)
        watch.start(reference_offset_ns=0)
        await asyncio.sleep(2)
        assert [s.step_ns for s in steps] == [-HOUR]
        watch.stop()

    run_virtual(main)


def test_a_suspend_is_no_step_and_a_stopped_watch_checks_nothing() -> None:
    async def main(loop: VirtualLoop) -> None:
        watch, steps, host = _watch(loop)
        loop.call_later(5.5, host.suspend, 2 * HOUR)
        await asyncio.sleep(20)
        assert steps == []
        watch.stop()
        checks = watch.checks
        host.step_wall(HOUR)
        await asyncio.sleep(20)
        assert watch.checks == checks
        assert steps == []

    run_virtual(main)


def test_a_failing_notice_callback_does_not_stop_the_watch() -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        calls: list[int] = []

        def broken(step: ClockStep) -> None:
            calls.append(step.number)
            raise RuntimeError("mail server on fire")

        watch = ClockWatch(clock, clock.system_ns, on_step=broken)
        watch.start(reference_offset_ns=0)
        host.step_wall_after(2.5, HOUR)
        host.step_wall_after(12.5, HOUR)
        await asyncio.sleep(20)
        assert calls == [1, 2]
        watch.stop()

    run_virtual(main)


def test_the_watch_refuses_nonpositive_settings_and_a_check_before_start() -> None:
    clock = SimClock(0)
    with pytest.raises(ValueError, match="must be > 0"):
        ClockWatch(clock, clock.now_ns, check_interval_ns=0)
    with pytest.raises(ValueError, match="must be > 0"):
        ClockWatch(clock, clock.now_ns, step_alert_ns=-1)
    with pytest.raises(RuntimeError, match="before start"):
        ClockWatch(clock, clock.now_ns).check()


# ---------------------------------------------------------------------------------------- to the operator
class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def send(self, message: Message) -> None:
        self.received.append(message)


def test_a_step_reaches_the_notifications_as_one_clock_step_notice() -> None:
    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "10:00")
        clock = host.live_clock()
        channel = Recorder()
        dispatcher = NotificationDispatcher([channel], clock)
        dispatcher.start()
        watch = watch_clock_steps(
            clock, ClockConfig(check_interval_s=0.5, step_alert_s=5.0), dispatcher.post, account="8800123456"
        )
        assert watch is not None
        assert watch.check_interval_ns == NS // 2
        assert watch.step_alert_ns == 5 * NS
        host.step_wall_after(1.2, 4 * NS)  # below this config's threshold
        host.step_wall_after(30.2, -HOUR)
        await asyncio.sleep(90)
        watch.stop()
        await dispatcher.close()
        assert dispatcher.stats.posted == 1
        (message,) = channel.received
        # told: how far the host moved since the engine last told (the unreported +4 s included)
        assert message.subject == "[zhixing] [88******56] host clock stepped -59m56.000s"
        assert message.severity is Severity.CRITICAL
        assert "restart the engine" in message.body
        assert "engine 10:00:30, host 09:00:34" in message.body

    run_virtual(main)


def test_no_watch_on_a_virtual_clock() -> None:
    assert watch_clock_steps(SimClock(0), ClockConfig(), lambda m: None) is None


def test_a_small_step_notice_is_a_warning_and_names_both_sizes() -> None:
    message = clock_step_notice(-3 * NS, 5 * NS, at("10:00"))
    assert message.subject == "[zhixing] host clock stepped -0m03.000s"
    assert message.severity is Severity.WARNING
    assert "now +0m05.000s from it" in message.body


# ---------------------------------------------------------------------------------------- [clock] config
BASE = '[account]\nid = "1"\n[store]\npath = "z.db"\n[route]\nkind = "sim"\n[route.sim]\ndata = "d"\n'


def test_clock_config_defaults_and_values(tmp_path: Path) -> None:
    path = tmp_path / "z.toml"
    path.write_text(BASE, encoding="utf-8")
    assert load_config(path).clock == ClockConfig(check_interval_s=1.0, step_alert_s=2.0)
    path.write_text(BASE + "[clock]\ncheck_interval_s = 0.5\nstep_alert_s = 10\n", encoding="utf-8")
    assert load_config(path).clock == ClockConfig(check_interval_s=0.5, step_alert_s=10.0)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("check_interval_s = 0", "clock.check_interval_s"),
        ("check_interval_s = 120", "clock.check_interval_s"),
        ('check_interval_s = "1s"', "clock.check_interval_s"),
        ("step_alert_s = 0", "clock.step_alert_s"),
        ("step_alert_s = -2", "clock.step_alert_s"),
        ("step_alert = 2", "clock.step_alert"),
    ],
)
def test_a_bad_clock_setting_names_the_file_and_key(tmp_path: Path, table: str, key: str) -> None:
    path = tmp_path / "z.toml"
    path.write_text(BASE + "[clock]\n" + table + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert f"'{key}'" in str(info.value)


# ---------------------------------------------------------------------------------------- the scheduler
@pytest.mark.parametrize(
    "steps",
    [
        [(2_700.5, HOUR)],  # 09:45: +1 h
        [(2_700.5, -HOUR)],  # 09:45: -1 h
        [(9_000.5, 90 * MINUTE)],  # 11:30:00.5, into the lunch break: the afternoon job's time on the wall
        [(9_030.5, -2 * HOUR)],  # at the lunch break, back to before the morning jobs
        [(1_800.5 + 600 * k, (-1) ** k * 45 * MINUTE) for k in range(12)],  # repeated, both ways
    ],
    ids=["plus_1h", "minus_1h", "lunch_plus_90min", "lunch_minus_2h", "repeated"],
)
@pytest.mark.slow
def test_each_job_fires_once_at_its_instant_whatever_the_wall_clock_does(
    steps: list[tuple[float, int]],
) -> None:
    """Jobs at 09:30, 11:29, 11:30, 13:00 and 14:57 on the wall-clock watchdog of ``zhixing run``: each fires
    exactly once, at its engine instant and at the loop instant it was due; none is missed or doubled."""

    async def main(loop: VirtualLoop) -> None:
        host = host_at(loop, "09:00")
        clock = host.live_clock()
        jobs = [
            CronJob(name="open", cron="30 9 * * *"),
            CronJob(name="before_lunch", cron="29 11 * * *"),
            CronJob(name="lunch", cron="30 11 * * *"),
            CronJob(name="afternoon", cron="0 13 * * *"),
            CronJob(name="close", cron="57 14 * * *"),
        ]
        fired: list[tuple[str, int, int, int]] = []
        missed: list[str] = []
        scheduler = Scheduler(
            clock,
            calendar(),
            jobs,
            on_fire=lambda job, when: fired.append((job.name, when, clock.now_ns(), loop.mono_ns)),
            on_missed=lambda job, when: missed.append(job.name),
            watchdog_ns=60 * NS,
        )
        for seconds, ns in steps:
            host.step_wall_after(seconds, ns)
        scheduler.start()
        await asyncio.sleep(6 * 3_600 + 60)  # to 15:01 on the loop's clock
        scheduler.stop()
        assert missed == []
        names = ["open", "before_lunch", "lunch", "afternoon", "close"]
        assert [name for name, *_ in fired] == names
        for (_, scheduled, engine_at, loop_at), hhmm in zip(
            fired, ["09:30", "11:29", "11:30", "13:00", "14:57"], strict=True
        ):
            assert scheduled == engine_at == at(hhmm)
            assert loop_at - loop.start_ns == at(hhmm) - at("09:00")
        assert host.steps  # the wall clock did step

    run_virtual(main)


# ---------------------------------------------------------------------------------------- zhixing run
SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
RUN_CONFIG = """
[account]
id = "8800123456"
cash_yuan = 1000000
[store]
path = "state/zhixing.db"
[route]
kind = "sim"
[route.sim]
data = "{data}"
[clock]
check_interval_s = 0.5
step_alert_s = 3
"""


async def test_zhixing_run_watches_the_host_clock_of_a_live_clock_and_stops_at_close(tmp_path: Path) -> None:
    """``open_configured`` on a ``LiveClock`` (here over a host wall clock the test steps, on the real loop)
    starts the watch with the ``[clock]`` settings; a step reaches the dispatcher; close stops the watch."""
    from zhixing.engine.cli.run_cmd import open_configured
    from zhixing.engine.clock import LiveClock

    path = tmp_path / "zhixing.toml"
    path.write_text(RUN_CONFIG.format(data=SAMPLE.as_posix()), encoding="utf-8")
    stepped = [0]
    mono = [0]
    clock = LiveClock(wall_ns=lambda: at("09:00") + mono[0] + stepped[0], monotonic_ns=lambda: mono[0])
    run = await open_configured(load_config(path), clock=clock)
    try:
        watch = run.clock_watch
        assert watch is not None
        assert (watch.check_interval_ns, watch.step_alert_ns) == (NS // 2, 3 * NS)
        stepped[0] = -HOUR
        assert watch.check() is not None
        assert watch.check() is None  # told once
        assert run.dispatcher.stats.posted == 1
    finally:
        await run.close()
    assert watch.checks == 2  # the fake monotonic clock never moved: only the explicit checks ran
    assert watch._timer is None
