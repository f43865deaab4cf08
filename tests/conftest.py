"""Test-wide safety: a test that fails before closing a journal must not hang the run.

aiosqlite runs each connection on a non-daemon thread, so one leaked connection keeps the interpreter
alive after the last test. Every ``StateStore`` opened during a test is closed at its teardown (closing
twice is a no-op).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.store import StateStore


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
