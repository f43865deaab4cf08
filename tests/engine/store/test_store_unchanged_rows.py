"""The journal's shortcuts for rows staged again unchanged (replay throughput): they must never change
what is written. Real SQLite files (tmp_path), hypothesis for the encoder's byte-for-byte equivalence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.engine.errors import StoreError
from zhixing.engine.store import StateStore
from zhixing.engine.store.json_cache import MIN_LIST, StateEncoder
from zhixing.engine.store.staging import to_json


def algo_state_row(path: Path, parent_id: str) -> tuple[str, str]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT algo, state FROM algo_states WHERE parent_id = ?", (parent_id,)).fetchone()
    finally:
        conn.close()
    return (str(row[0]), str(row[1]))


def schedule(n: int = MIN_LIST * 3) -> list[int]:
    return [1_654_047_000_000_000_000 + i * 60_000_000_000 for i in range(n)]


def parent(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "parent_id": "P1",
        "symbol": "600000.SH",
        "side": "BUY",
        "quantity": 1_000,
        "algo": "twap",
        "start_ns": 1,
        "end_ns": 2,
        "limit_price": 0,
        "params": {"interval_s": "60"},
        "status": "RUNNING",
        "created_ns": 0,
    }
    row.update(overrides)
    return row


# ---------------------------------------------------------------------------------------- the store
async def test_an_unchanged_algo_state_is_not_staged_again(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db", synchronous="OFF")
    try:
        state = {"next_slice": 3, "slice_times": schedule()}
        store.stage_algo_state("P1", "twap", state)
        await store.commit()
        store.stage_algo_state("P1", "twap", {"next_slice": 3, "slice_times": schedule()})  # equal copy
        assert not store.has_staged
        store.stage_algo_state("P1", "twap", {"next_slice": 4, "slice_times": schedule()})
        assert store.has_staged
        await store.commit()
        assert algo_state_row(store.path, "P1") == (
            "twap",
            to_json({"next_slice": 4, "slice_times": schedule()}),
        )
    finally:
        await store.close()


async def test_values_equal_in_python_but_not_in_json_are_staged(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db", synchronous="OFF")
    try:
        store.stage_algo_state("P1", "twap", {"paused": 0, "x": 1})
        await store.commit()
        variants: list[dict[str, object]] = [
            {"paused": False, "x": 1},
            {"paused": 0, "x": 1.0},
            {"paused": 0, "x": True},
        ]
        for state in variants:
            store.stage_algo_state("P1", "twap", state)
            assert store.has_staged, state
            await store.commit()
            assert algo_state_row(store.path, "P1") == ("twap", to_json(state))
        store.stage_algo_state("P1", "vwap", {"paused": 0, "x": True})  # same state, other algo
        assert store.has_staged
    finally:
        await store.close()


async def test_a_state_mutated_after_staging_is_compared_with_what_was_staged(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "j.db", synchronous="OFF")
    try:
        shows = [1, 2]
        state: dict[str, object] = {"shows": shows}
        store.stage_algo_state("P1", "iceberg", state)
        await store.commit()
        shows.append(3)  # the caller mutates what it staged; the journal still holds [1, 2]
        store.stage_algo_state("P1", "iceberg", state)
        assert store.has_staged
        await store.commit()
        assert algo_state_row(store.path, "P1") == ("iceberg", '{"shows":[1,2,3]}')
    finally:
        await store.close()


async def test_a_row_restaged_after_another_caller_changed_it_is_written(tmp_path: Path) -> None:
    """A then B then A again: the second A is not what the journal holds, so it is staged."""
    store = await StateStore.open(tmp_path / "j.db", synchronous="OFF")
    try:
        store.stage_parent(parent(status="RUNNING"))
        await store.commit()
        store.stage_parent(parent(status="PAUSED"))
        await store.commit()
        store.stage_parent(parent(status="RUNNING"))
        assert store.has_staged
        await store.commit()
        (loaded,) = await store.load_parents()
        assert loaded["status"] == "RUNNING"
        store.stage_parent(parent(status="RUNNING"))
        assert not store.has_staged
    finally:
        await store.close()


async def test_a_failed_commit_keeps_the_rows_an_unchanged_restage_skips(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    store = await StateStore.open(path, busy_timeout_ms=1, synchronous="OFF")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        store.stage_algo_state("P1", "twap", {"next_slice": 1})
        with pytest.raises(StoreError):  # the write lock is held
            await store.commit()
        holder.execute("ROLLBACK")
        store.stage_algo_state("P1", "twap", {"next_slice": 1})  # skipped: still staged from the failure
        assert store.has_staged
        await store.commit()
        assert algo_state_row(path, "P1") == ("twap", '{"next_slice":1}')
    finally:
        holder.close()
        await store.close()


# ---------------------------------------------------------------------------------------- the encoder
def test_the_encoder_reuses_an_unchanged_schedule_and_writes_the_same_bytes() -> None:
    encoder = StateEncoder()
    times = schedule()
    for k in range(5):
        state = {"a": k, "slice_times": list(times), "targets": list(range(MIN_LIST)), "z": None}
        assert encoder.encode(state) == to_json(state)
    changed = {"a": 9, "slice_times": [*times[:-1], 7], "targets": list(range(MIN_LIST)), "z": None}
    assert encoder.encode(changed) == to_json(changed)


def test_the_encoder_never_reuses_a_list_equal_only_in_python() -> None:
    encoder = StateEncoder()
    ints = list(range(MIN_LIST))
    assert encoder.encode({"xs": ints}) == to_json({"xs": ints})
    for other in ([float(x) for x in ints], [bool(x % 2) for x in ints[:2]] + ints[2:]):
        assert other == ints
        assert encoder.encode({"xs": other}) == to_json({"xs": other})


def test_a_nested_key_of_the_same_name_falls_back_to_a_full_encode() -> None:
    encoder = StateEncoder()
    xs = list(range(MIN_LIST))
    tricky = {"xs": xs, "inner": {"xs": 0}, 'k"xs': 0, "s": '"xs":0,"xs":0'}
    assert encoder.encode(tricky) == to_json(tricky)
    assert encoder.encode(tricky) == to_json(tricky)


_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.text(max_size=6),
)
_BASE = [i % 3 for i in range(MIN_LIST)]
_POOL: list[list[object]] = [  # equal in Python to _BASE (but for the last), so reuse is tempted often
    list(_BASE),
    [float(x) for x in _BASE],
    [bool(x) if x < 2 else x for x in _BASE],
    [-0.0 if x == 0 else float(x) for x in _BASE],
    [*_BASE[:-1], "2"],
]
_lists = st.one_of(
    st.sampled_from(range(len(_POOL))).map(lambda i: list(_POOL[i])),
    st.lists(_scalars, min_size=MIN_LIST, max_size=MIN_LIST + 3),
)
_keys = st.sampled_from(["xs", "ys", "n", 'x"s', "\u6570"])
_states = st.dictionaries(
    _keys, st.one_of(_scalars, _lists, st.dictionaries(_keys, _scalars, max_size=3)), max_size=5
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_states, min_size=1, max_size=6))
@pytest.mark.slow
def test_the_encoder_is_byte_identical_to_to_json(states: list[dict[str, object]]) -> None:
    encoder = StateEncoder()
    for state in states:
        assert encoder.encode(state) == to_json(state)
