"""Stop means stop: what SIGINT and SIGTERM do to a zhixing process, its deadline, its exit status.

**Any command.** ``install_process_stop`` (called by ``zhixing``'s ``main``) turns the first SIGINT or
SIGTERM into ``Stopped`` raised in the main thread (SIGINT as Python's own ``KeyboardInterrupt`` would),
so a one-shot command (``journal export``, ``journal backup``, ...) unwinds through its cleanup: what it
writes is written atomically, so a stop leaves the previous file or the new one, never half of one. It
exits ``128 + signal`` (130, 143). A watchdog ends the process ``ONE_SHOT_BOUND_S`` after the signal if the
cleanup hangs (a journal lock held by another process), and a second signal ends it at once.

**``zhixing run``** replaces these while its event loop runs (``LoopStop``, used by ``engine.cli.run_cmd``):
the first signal stops the run (jobs cancelled, their process trees ended, working orders cancelled and
checked, notifications flushed, the journal committed and closed), the second forces it (children
killed at once, the cancels sent but not waited for, notifications given ``FORCED_NOTIFY_S``). The
watchdog (``StopWatchdog``) guarantees the bound: past it, it kills every child process tree and ends
the process with ``EXIT_UNCLEAN``. docs/OPERATIONS.md documents the bound and the exit codes.

Threads (``DaemonExecutor``): a thread blocked in a call that cannot be interrupted (a backup on a hung
share, a vendor SDK's connect, a DNS lookup) must not hold the process: the event loop's executor runs
each call on a daemon thread and its shutdown waits for them at most ``THREAD_LINGER_S``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

import structlog

from zhixing.engine.cancels import SETTLE_NS
from zhixing.engine.child_processes import kill_all_now
from zhixing.engine.clock import Clock, LiveClock
from zhixing.engine.config import Config
from zhixing.engine.freshness import DEFAULT_ANSWERS, DEFAULT_GRACE_NS
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.stop")
HOST: Clock = LiveClock()  # a stop's bound is the host's seconds, whatever the engine's clock

EXIT_OK: Final = 0  # stopped cleanly, every job that ran is ok
EXIT_NOT_OK: Final = 1  # stopped cleanly; a job is not ok (one the stop cut short too) or orders left working
EXIT_BAD_INPUT: Final = 2  # refused to start: bad config or input, damaged journal, route never ready
EXIT_UNCLEAN: Final = 3  # not a clean stop: final journal commit/close failed, a child survived, forced
EXIT_BUG: Final = 70  # an exception that is no ZhixingError reached the command line: a bug (EX_SOFTWARE)
# a one-shot command (or ``zhixing run`` before its loop) stopped by a signal: 128 + the signal's number

ONE_SHOT_BOUND_S: Final = 10.0  # a one-shot command's cleanup after a signal, then the watchdog
FORCED_BOUND_S: Final = 5.0  # after the second signal to ``zhixing run``
STOP_MARGIN_S: Final = 15.0  # the stop's own work: jobs' answers, notifications, the journal's commit/close
STOP_NOTIFY_S: Final = 5.0  # the notification flush at a signal's stop (not a signal: 30 s)
FORCED_NOTIFY_S: Final = 1.0
THREAD_LINGER_S: Final = 2.0

STOP_SIGNALS: tuple[int, ...]
if sys.platform == "win32":
    STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGBREAK)  # SIGBREAK: Ctrl-Break
else:
    STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_exit_code(signum: int) -> int:
    return 128 + signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT/SIGTERM of a one-shot command."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


# ---------------------------------------------------------------------------------------- the watchdog
class StopWatchdog:
    """Ends the process if the stop overruns its deadline: every child tree killed, a line on stderr,
    ``exit(code)`` (``os._exit``: no cleanup can hang it). ``arm`` only ever moves the deadline earlier.
    ``expire`` is what the timer calls (a test calls it directly)."""

    def __init__(self, exit: Callable[[int], Any] = os._exit) -> None:
        self._exit = exit
        self._timer: threading.Timer | None = None
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self.code = EXIT_UNCLEAN
        self.why = ""

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def arm(self, seconds: float, why: str, code: int = EXIT_UNCLEAN) -> None:
        deadline = (HOST.now_ns() / 1e9) + seconds
        with self._lock:
            if self._deadline is not None and self._deadline <= deadline:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._deadline, self.why, self.code = deadline, why, code
            timer = threading.Timer(seconds, self.expire)
            timer.daemon = True
            timer.name = "zhixing-stop-watchdog"
            self._timer = timer
        timer.start()

    def disarm(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._deadline = None

    def expire(self) -> None:
        kill_all_now()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"zhixing: {self.why}; the stop overran its bound, ending the process now\n")
            sys.stderr.flush()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        self._exit(self.code)


# ------------------------------------------------------------------------------- one-shot commands
_previous: dict[int, Any] = {}
_watchdog: StopWatchdog | None = None


def install_process_stop(watchdog: StopWatchdog | None = None) -> None:
    """For a whole ``zhixing`` process (main thread only; a no-op elsewhere): see the module docstring."""
    global _watchdog
    if threading.current_thread() is not threading.main_thread():
        return
    _watchdog = watchdog or StopWatchdog()
    for signum in STOP_SIGNALS:
        _previous[signum] = signal.signal(signum, _on_process_signal)


def uninstall_process_stop() -> None:
    for signum, previous in _previous.items():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signum, previous)
    _previous.clear()


def _on_process_signal(signum: int, frame: FrameType | None) -> None:
    watchdog = _watchdog
    if watchdog is not None and watchdog.armed:  # the second: at once
        watchdog.why = f"{signal_name(signum)} again"
        watchdog.expire()
        return
    if watchdog is not None:
        watchdog.arm(ONE_SHOT_BOUND_S, f"stopped by {signal_name(signum)}", signal_exit_code(signum))
    raise Stopped(signum)


def process_watchdog() -> StopWatchdog | None:
    """The watchdog ``install_process_stop`` installed (``zhixing run`` arms it with its own bound)."""
    return _watchdog


# ----------------------------------------------------------------------------------- zhixing run's loop
class LoopStop:
    """SIGINT/SIGTERM handlers on a running event loop: the first calls ``on_stop(signum)``, the second
    (and later ones) ``on_force(signum)``; the watchdog (if any) gets ``bound_s`` from the first and
    ``FORCED_BOUND_S`` from the second. ``trigger`` is what a handler does."""

    def __init__(
        self,
        *,
        bound_s: float,
        on_stop: Callable[[int], None],
        on_force: Callable[[int], None],
        watchdog: StopWatchdog | None = None,
    ) -> None:
        self.bound_s = bound_s
        self.on_stop = on_stop
        self.on_force = on_force
        self.watchdog = watchdog
        self.signum: int | None = None  # the first signal
        self.forced = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed: dict[int, Any] = {}
        self._via_loop = False

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal_name(self.signum)

    def install(self) -> None:
        """On the running loop; not on a thread other than the main one (then signals stay as they were)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = self._loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, self.trigger, signum)
                self._via_loop = True
            except (NotImplementedError, RuntimeError, ValueError):  # Windows: no loop handlers
                signal.signal(signum, self._from_signal_module)
            self._installed[signum] = previous

    def uninstall(self) -> None:
        for signum, previous in self._installed.items():
            if self._via_loop and self._loop is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    self._loop.remove_signal_handler(signum)
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, previous)  # what ``main`` had installed, not the default
        self._installed.clear()

    def _from_signal_module(self, signum: int, frame: FrameType | None) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.trigger, signum)

    def trigger(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            log.warning("stop_requested", signal=signal_name(signum), bound_s=self.bound_s)
            if self.watchdog is not None:
                self.watchdog.arm(self.bound_s, f"stopped by {signal_name(signum)}")
            self.on_stop(signum)
            return
        if self.forced:
            return
        self.forced = True
        log.warning("stop_forced", signal=signal_name(signum), bound_s=FORCED_BOUND_S)
        if self.watchdog is not None:
            self.watchdog.arm(FORCED_BOUND_S, f"{signal_name(signum)} again: forced")
        self.on_force(signum)


# ------------------------------------------------------------------------------------------- threads
class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor: each call on its own daemon thread; ``shutdown`` waits for the calls
    still running at most ``linger_s`` in all, then leaves them (they end with the process)."""

    def __init__(self, linger_s: float = THREAD_LINGER_S) -> None:
        super().__init__(max_workers=1, thread_name_prefix="zhixing-daemon")
        self.linger_s = linger_s
        self._running: set[threading.Thread] = set()
        self._guard = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            finally:
                with self._guard:
                    self._running.discard(thread)

        thread = threading.Thread(target=run, daemon=True, name=f"zhixing-daemon-{id(future):x}")
        with self._guard:
            self._running.add(thread)
        thread.start()
        return future

    def running(self) -> list[threading.Thread]:
        with self._guard:
            return list(self._running)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            deadline = (HOST.now_ns() / 1e9) + self.linger_s
            for thread in self.running():
                thread.join(max(0.0, deadline - (HOST.now_ns() / 1e9)))
        left = self.running()
        if left:
            log.warning("threads_abandoned", threads=[t.name for t in left], linger_s=self.linger_s)
        super().shutdown(wait=False, cancel_futures=cancel_futures)


def use_daemon_executor(loop: asyncio.AbstractEventLoop | None = None) -> DaemonExecutor:
    """Make a ``DaemonExecutor`` the running loop's default executor (``asyncio.to_thread`` uses it)."""
    executor = DaemonExecutor()
    (loop or asyncio.get_running_loop()).set_default_executor(executor)
    return executor


def stop_bound_s(config: Config) -> float:
    """How long ``zhixing run`` may take from its first signal to its end: ``STOP_MARGIN_S``, the longest
    ``kill_grace_s`` of its signal jobs, and with ``shutdown = "cancel"`` the shutdown's cancel wait (the
    first answer waited for ``SETTLE_NS``, then up to ``DEFAULT_ANSWERS`` queries ``DEFAULT_GRACE_NS``
    apart). With the defaults: 15 + 5 + 19 = 39 s."""
    grace = max((j.kill_grace_s for j in config.jobs if j.kind == "signal"), default=0.0)
    cancel_wait = 0.0
    if config.shutdown == "cancel":
        cancel_wait = (SETTLE_NS + DEFAULT_ANSWERS * DEFAULT_GRACE_NS) / NS_PER_SECOND
    return STOP_MARGIN_S + grace + cancel_wait
