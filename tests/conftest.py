"""Test-wide safety.

- A test that fails before closing a journal must not hang the run: aiosqlite runs each connection on a
  non-daemon thread, so one leaked connection keeps the interpreter alive after the last test. Every
  ``StateStore`` opened during a test is closed at its teardown (closing twice is a no-op).
- Property tests never depend on the machine's speed: the ``ci`` hypothesis profile (loaded here, the
  default) has no per-example wall deadline and does not fail an example for being slow to generate,
  and it is derandomized (the examples are a function of the test alone, so a run on a loaded CI
  machine tries exactly what a run on a laptop tries, and a failure replays); no example database is
  written. ``pytest --hypothesis-profile=explore`` searches with fresh random examples (and more of
  them), still without deadlines, to look for new counterexamples by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from zhixing.engine.store import StateStore

_NO_WALL_TIME = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_NO_WALL_TIME)
settings.register_profile("explore", max_examples=1000, **_NO_WALL_TIME)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def close_leaked_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    opened: list[StateStore] = []
    original = StateStore.open.__func__  # type: ignore[attr-defined]

    async def tracking_open(cls: type[StateStore], path: str | Path, **kwargs: Any) -> StateStore:
        store: StateStore = await original(cls, path, **kwargs)
        opened.append(store)
        return store

    monkeypatch.setattr(StateStore, "open", classmethod(tracking_open))
    yield
    leaked = [s for s in opened if not s._closed]
    if leaked:
        asyncio.run(_close_all(leaked))


async def _close_all(stores: list[StateStore]) -> None:
    for store in stores:
        await store.close()
