"""Running zhixing under 掘金: gm's ``run()`` owns the main thread, zhixing's loop runs beside it.

``gm.api.run`` blocks in its poll loop and registers signal handlers (``signal.signal`` works only on the
main thread), so it must be called from the main thread. ``run_live`` therefore starts zhixing's asyncio
loop on a worker thread with the bridge installed, then calls ``run(strategy_id, filename=<entry module>,
mode=MODE_LIVE, token, serv_addr)`` with ``sys.argv`` cut to the program name (gm parses it with
optparse and exits on options it does not know); gm imports ``adapters.gm.entry`` and calls its
callbacks on the main thread, which the bridge hops onto zhixing's loop. When the engine coroutine
ends (or fails), ``stop()`` ends gm's loop; when gm's loop ends first, the engine task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

from zhixing.adapters.gm import entry
from zhixing.adapters.gm.bridge import GmBridge, install, uninstall
from zhixing.adapters.gm.codes import MODE_LIVE, installed_enum_mismatches
from zhixing.adapters.gm.config import GmFeedConfig, GmRouteConfig
from zhixing.engine.errors import BrokerError
from zhixing.engine.secrets import resolve_secret

log = structlog.get_logger("zhixing.gm")

Engine = Callable[[GmBridge], Coroutine[Any, Any, None]]


def entry_filename() -> str:
    """The path gm's ``run`` turns into the module name ``adapters.gm.entry`` (it strips the longest
    ``sys.path`` prefix, the ``.py`` suffix and turns separators into dots)."""
    return str(Path(entry.__file__).resolve())


def run_live(
    api: Any, session: GmRouteConfig | GmFeedConfig, engine: Engine, *, bridge: GmBridge | None = None
) -> None:
    """Blocking. Run ``engine(bridge)`` on a worker thread's event loop while gm runs on this thread.
    ``session``: whose strategy id, token and address gm's ``run()`` is started with: the gm route's, or
    the gm feed's when gm only feeds another route. Re-raises the engine's exception, if any, after gm
    has stopped."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("gm.api.run must be called from the main thread (it installs signal handlers)")
    mismatches = installed_enum_mismatches()
    if mismatches:  # a gm release that renumbered a code: refuse rather than misread statuses
        raise BrokerError("gm: installed gm.enum differs from adapters/gm/codes.py: " + "; ".join(mismatches))
    bridge = bridge or GmBridge()
    install(bridge)
    failure: list[BaseException] = []
    started = threading.Event()
    running: dict[str, Any] = {}

    async def main() -> None:
        running["loop"] = asyncio.get_running_loop()
        running["task"] = asyncio.current_task()
        started.set()
        await engine(bridge)

    def engine_thread() -> None:
        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            log.info("gm_engine_cancelled")  # gm's run ended first
        except BaseException as exc:  # handed to the main thread and re-raised there
            failure.append(exc)
            log.error("gm_engine_failed", error=str(exc))
        finally:
            started.set()
            with contextlib.suppress(SystemExit):  # gm's stop() ends its poll loop with sys.exit(2)
                api.stop()

    worker = threading.Thread(target=engine_thread, name="zhixing-engine")
    key = "route.gm.token" if isinstance(session, GmRouteConfig) else "feed.gm.token"
    token = resolve_secret(session.token, key=key).reveal() if session.token else ""
    worker.start()
    argv = sys.argv
    # gm's run() parses sys.argv with optparse (--strategy_id, --token, ...) and exits on options it does
    # not know, such as zhixing's own --config: it must see none of ours
    sys.argv = argv[:1]
    try:
        api.run(
            strategy_id=session.strategy_id,
            filename=entry_filename(),
            mode=MODE_LIVE,
            token=token,
            serv_addr=session.serv_addr,
        )
    except SystemExit:
        pass  # gm's stop() exits its loop this way
    finally:
        sys.argv = argv
        started.wait()
        loop, task = running.get("loop"), running.get("task")
        if worker.is_alive() and loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)  # gm stopped (or failed): the engine stops too
        worker.join()
        uninstall(bridge)
    if failure:
        raise failure[0]
