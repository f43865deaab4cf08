"""An algorithm's state journaled in two parts: the plan once per version, the progress at every change.

What must hold: after every commit the journal, joined back (``StateStore.load_algo_states``), equals each
live algorithm's ``state()`` exactly, through pauses and re-plans, while a plan is staged only when its
version moved; a progress row never loads without the plan version it names; a version 1 journal
(complete states in ``algo_states``) migrates in place and resumes the same.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from zhixing.algos.base import ExecAlgo
from zhixing.algos.basket import Basket
from zhixing.algos.registry import create_algo
from zhixing.engine.enums import Side
from zhixing.engine.errors import StoreError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.store import SCHEMA_VERSION, StateStore, ops, schema
from zhixing.engine.store.staging import parent_row, to_json
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data"
SYMBOLS = ["600258.SH", "600446.SH"]
ALGOS: tuple[tuple[str, dict[str, object]], ...] = (
    ("twap", {"interval_s": 30}),
    ("vwap", {"profile": "u_shape", "interval_s": 30}),
    ("pov", {"target_rate": 0.05}),
    ("iceberg", {"display_qty": 1000, "seed": 3}),
    ("chase", {}),
)


class RecordingJournal:
    """The store, with what ``Basket.journal`` staged counted: plans and progress rows per parent."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        # the engine's own journal hook stages into ``store``: what it stages is counted on the way
        self._plan, self._progress = store.stage_algo_plan, store.stage_algo_progress
        store.stage_algo_plan = self.stage_algo_plan  # type: ignore[method-assign]
        store.stage_algo_progress = self.stage_algo_progress  # type: ignore[method-assign]
        self.plans: dict[str, list[int]] = {}  # parent id -> plan versions staged, in order
        self.plan_sizes: dict[str, int] = {}
        self.progress: dict[str, int] = {}  # parent id -> progress rows offered
        self.progress_sizes: dict[str, int] = {}

    def stage_algo_plan(self, parent_id: str, algo: str, plan_version: int, plan: dict[str, object]) -> None:
        self.plans.setdefault(parent_id, []).append(plan_version)
        self.plan_sizes[parent_id] = len(to_json(plan))
        self._plan(parent_id, algo, plan_version, plan)

    def stage_algo_progress(
        self, parent_id: str, algo: str, plan_version: int, progress: dict[str, object]
    ) -> None:
        self.progress[parent_id] = self.progress.get(parent_id, 0) + 1
        self.progress_sizes[parent_id] = max(self.progress_sizes.get(parent_id, 0), len(to_json(progress)))
        self._progress(parent_id, algo, plan_version, progress)

    def stage_parent(self, parent: dict[str, object]) -> None:
        self.store.stage_parent(parent)


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE / "snapshots_20211201", symbols=SYMBOLS)


def at(market: MarketData, hhmm: str) -> int:
    return shanghai_ns(market.trade_date, hhmm)


def parents(market: MarketData) -> list[ParentOrder]:
    out = []
    for i, (algo, params) in enumerate(ALGOS):
        out.append(
            ParentOrder(
                parent_id=f"P{i}",
                symbol=SYMBOLS[i % len(SYMBOLS)],
                side=Side.BUY,
                quantity=30_000,
                start_ns=at(market, "09:30"),
                end_ns=at(market, "10:15"),
                algo=algo,
                # today's slicing (no minimum child value): the many small steps this test walks through
                params={"min_child_value": "0", **{k: str(v) for k, v in params.items()}},
            )
        )
    return out


async def session_with_basket(market: MarketData, db: Path) -> tuple[ReplaySession, Basket, RecordingJournal]:
    session = await open_session(market, ReplayConfig(cash=10**12, db_path=db), at(market, "09:30"))
    basket = Basket(session.ctx)
    journal = RecordingJournal(session.store)
    session.engine.add_basket(basket)
    for parent in parents(market):
        basket.add(parent)
    basket.start()
    return session, basket, journal


def live_states(basket: Basket) -> dict[str, tuple[str, dict[str, object]]]:
    return {pid: (algo.parent.algo, algo.state()) for pid, algo in basket.algos.items()}


async def run_checking(session: ReplaySession, basket: Basket, until: int) -> int:
    """Step the replay to ``until``; after every flush the joined journal equals the live states."""
    checks = 0
    while session.clock.step(until_ns=until):
        await session.oms.flush()
        assert not session.store.has_staged
        assert await session.store.load_algo_states() == live_states(basket)
        checks += 1
    return checks


async def test_journal_equals_every_live_state_after_each_commit_and_plans_are_staged_per_version(
    market: MarketData, tmp_path: Path
) -> None:
    session, basket, journal = await session_with_basket(market, tmp_path / "j.db")
    try:
        checks = await run_checking(session, basket, at(market, "09:45"))
        twap = basket.algos["P0"]
        plan_before_pause = twap.state()["targets"]
        version_before_pause = twap.plan_version
        basket.pause()
        session.clock.call_at(at(market, "09:50"), lambda: None, "test:resume")  # the clock gets there
        checks += await run_checking(session, basket, at(market, "09:50"))
        assert session.clock.now_ns() == at(market, "09:50")
        basket.resume()  # slices skipped while paused: what is left is re-planned over the rest
        await session.oms.flush()
        assert await session.store.load_algo_states() == live_states(basket)
        checks += await run_checking(session, basket, at(market, "10:16"))
    finally:
        await session.store.close()
    assert checks > 300
    assert twap.plan_version > version_before_pause
    assert twap.state()["targets"] != plan_before_pause
    assert basket.done
    for pid, algo in basket.algos.items():
        versions = journal.plans[pid]
        # a plan goes to the journal once per version it had when journaled, never twice the same
        assert versions == sorted(set(versions)), (pid, versions)
        assert versions[-1] == algo.plan_version
    # the schedule-keeping algorithms: many progress rows, few plans; the progress stays small
    for pid in ("P0", "P1", "P2"):
        assert journal.progress[pid] >= 5 * len(journal.plans[pid]), (pid, journal.progress[pid])
        assert journal.plan_sizes[pid] > 1_000
        assert journal.progress_sizes[pid] < 700
    assert len(journal.plans["P0"]) >= 2  # built, then re-planned on resume


async def test_each_algorithm_restores_from_the_joined_journal_to_the_same_state(
    market: MarketData, tmp_path: Path
) -> None:
    session, basket, _ = await session_with_basket(market, tmp_path / "j.db")
    try:
        await session.run(at(market, "09:52"), lambda: basket.done, expire=False)
        states = await session.store.load_algo_states()
    finally:
        await session.store.close()
    for pid, algo in basket.algos.items():
        _, state = states[pid]
        fresh = create_algo(algo.parent, session.ctx)
        fresh.restore(state)
        assert fresh.state() == algo.state()
        assert fresh.plan_version == algo.plan_version
        assert fresh.plan_dirty  # journaled again at the next commit (the journal may be another file)


async def test_progress_without_the_plan_version_it_names_is_refused(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db")
    try:
        store.stage_algo_plan("P1", "twap", 1, {"slice_times": [1, 2]})
        store.stage_algo_progress("P1", "twap", 1, {"next_slice": 0})
        await store.commit()
        assert await store.load_algo_states() == {"P1": ("twap", {"slice_times": [1, 2], "next_slice": 0})}
        store.stage_algo_progress("P1", "twap", 2, {"next_slice": 1})  # version 2's plan never staged
        await store.commit()
        with pytest.raises(StoreError, match=r"parent 'P1' \(twap\) needs plan version 2; .* version 1"):
            await store.load_algo_states()
        store.stage_algo_progress("P2", "pov", 0, {"next_slice": 1})
        await store.commit()
        with pytest.raises(StoreError, match="parent 'P1'"):
            await store.load_algo_states()
        # a complete state needs no plan: it replaces the progress row and loads as it is
        store.stage_algo_state("P1", "twap", {"slice_times": [5], "next_slice": 1})
        store.stage_algo_state("P2", "pov", {"next_slice": 1})
        await store.commit()
        assert await store.load_algo_states() == {
            "P1": ("twap", {"slice_times": [5], "next_slice": 1}),
            "P2": ("pov", {"next_slice": 1}),
        }
    finally:
        await store.close()


async def test_a_plan_is_refused_for_another_algorithm(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db")
    try:
        store.stage_algo_plan("P1", "vwap", 1, {"slice_times": [1]})
        store.stage_algo_progress("P1", "twap", 1, {"next_slice": 0})
        await store.commit()
        with pytest.raises(StoreError, match="holds version 1 of algo 'vwap'"):
            await store.load_algo_states()
        with pytest.raises(TypeError, match="plan_version must be int"):
            store.stage_algo_plan("P1", "twap", True, {})
    finally:
        await store.close()


async def test_a_progress_row_is_staged_again_with_each_new_plan(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db")
    try:
        store.stage_algo_plan("P1", "twap", 1, {"targets": [100]})
        store.stage_algo_progress("P1", "twap", 1, {"next_slice": 0})
        await store.commit()
        store.stage_algo_progress("P1", "twap", 1, {"next_slice": 0})  # unchanged: skipped
        assert not store.has_staged
        store.stage_algo_plan("P1", "twap", 1, {"targets": [200]})  # staged as given
        assert store.has_staged
        store.stage_algo_progress("P1", "twap", 1, {"next_slice": 0})
        await store.commit()
        assert await store.load_algo_states() == {"P1": ("twap", {"targets": [200], "next_slice": 0})}
    finally:
        await store.close()


def write_version_1_journal(path: Path, rows: list[tuple[dict[str, object], str, dict[str, object]]]) -> None:
    """A journal as schema version 1 wrote it: ``(parent row, algo, complete state)`` per parent, the
    state JSON as the version 1 journal encoded it (sorted keys, no spaces), without ``plan_version``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert ops.migrate(conn, {1: schema.MIGRATIONS[1]}, str(path), ops.BusyCounter()) == 1
        conn.execute("BEGIN")
        for parent, algo, state in rows:
            row = parent_row(parent)  # the version 1 parent row, unchanged since
            marks = ", ".join("?" * len(row))
            conn.execute(f"INSERT INTO parents ({', '.join(schema.PARENT_COLUMNS)}) VALUES ({marks})", row)
            conn.execute(
                "INSERT INTO algo_states (parent_id, algo, state) VALUES (?, ?, ?)",
                (parent["parent_id"], algo, to_json(state)),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def without_plan_version(state: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in state.items() if k != "plan_version"}


async def test_a_version_1_journal_migrates_in_place_and_resumes_the_same(
    market: MarketData, tmp_path: Path
) -> None:
    session, basket, _ = await session_with_basket(market, tmp_path / "run.db")
    try:
        await session.run(at(market, "09:40"), lambda: basket.done, expire=False)
    finally:
        await session.store.close()
    live: dict[str, ExecAlgo] = basket.algos
    old = tmp_path / "v1.db"
    write_version_1_journal(
        old, [(a.parent.to_row(), a.parent.algo, without_plan_version(a.state())) for a in live.values()]
    )

    store = await StateStore.open(old)
    try:
        assert store.schema_version == SCHEMA_VERSION == 4
        conn = sqlite3.connect(old)
        try:
            assert conn.execute("SELECT COUNT(*), COUNT(plan_version) FROM algo_states").fetchone() == (5, 0)
            assert conn.execute("SELECT COUNT(*) FROM algo_plans").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM control_commands").fetchone() == (0,)
        finally:
            conn.close()
        states = await store.load_algo_states()
        assert {pid: (algo, without_plan_version(s)) for pid, (algo, s) in states.items()} == {
            pid: (a.parent.algo, without_plan_version(a.state())) for pid, a in live.items()
        }
        resumed = Basket.restore(session.ctx, await store.load_parents(), states)
        for pid, algo in resumed.algos.items():
            assert algo.plan_version == 0  # absent from a version 1 state
            assert without_plan_version(algo.state()) == without_plan_version(live[pid].state())
        # the next journal writes them split: the progress names its plan, which is in algo_plans
        assert resumed.journal(store) == 5
        await store.commit()
        assert await store.load_algo_states() == live_states(resumed)
    finally:
        await store.close()
    conn = sqlite3.connect(old)
    try:
        rows = conn.execute("SELECT parent_id, plan_version, length(state) FROM algo_states").fetchall()
        plans = dict(conn.execute("SELECT parent_id, length(plan) FROM algo_plans").fetchall())
    finally:
        conn.close()
    assert [(pid, version) for pid, version, _ in rows] == [(f"P{i}", 0) for i in range(5)]
    assert set(plans) == {f"P{i}" for i in range(5)}
    twap_progress = next(size for pid, _, size in rows if pid == "P0")
    assert twap_progress < 700 < plans["P0"]
