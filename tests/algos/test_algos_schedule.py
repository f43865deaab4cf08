"""Slicing maths: exact integer splits on the lot grid and slice times only in continuous trading."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.algos.schedule import (
    clip_windows,
    cumulative_targets,
    instant_before_end,
    slice_times,
    split_quantity,
    spread,
    trading_time,
)
from zhixing.engine.market import shanghai_ns
from zhixing.engine.units import NS_PER_MINUTE, NS_PER_SECOND

DAY = date(2021, 12, 1)
MORNING = (shanghai_ns(DAY, "09:30"), shanghai_ns(DAY, "11:30"))
AFTERNOON = (shanghai_ns(DAY, "13:00"), shanghai_ns(DAY, "14:57"))
WINDOWS = [MORNING, AFTERNOON]
DAY_START = shanghai_ns(DAY, "09:00")
DAY_END = shanghai_ns(DAY, "15:30")


def in_lunch(t: int) -> bool:
    return MORNING[1] <= t < AFTERNOON[0]


# ------------------------------------------------------------------------------------------ quantities
@given(
    quantity=st.integers(min_value=0, max_value=5_000_000),
    n_slices=st.integers(min_value=1, max_value=400),
    board=st.sampled_from([(100, 100), (1, 200), (1, 100)]),  # (lot, minimum): main, STAR, BSE
)
def test_split_sums_to_the_parent_on_the_lot_grid(
    quantity: int, n_slices: int, board: tuple[int, int]
) -> None:
    lot, minimum = board
    parts = split_quantity(quantity, n_slices, lot, minimum)
    assert sum(parts) == quantity
    assert len(parts) <= n_slices
    assert all(p > 0 for p in parts)
    assert all(p % lot == 0 for p in parts[:-1])
    if quantity >= minimum:
        assert all(p >= minimum for p in parts)
        assert parts[-1] - parts[-1] % lot >= minimum  # the tail rides on a full slice
    else:
        assert parts == ([quantity] if quantity else [])
    # remainder lots go to the earliest slices: sizes (tail aside) never increase
    sizes = [*parts[:-1], parts[-1] - quantity % lot] if parts else []
    assert sizes == sorted(sizes, reverse=True)
    assert not sizes or max(sizes) - min(sizes) <= lot


def test_split_puts_remainder_lots_first_and_the_odd_tail_last() -> None:
    assert split_quantity(1_050, 3, 100) == [400, 300, 350]
    assert split_quantity(1_000, 3, 100) == [400, 300, 300]
    assert split_quantity(50, 3, 100) == [50]  # an odd lot: one slice, sold whole
    assert split_quantity(300, 10, 100) == [100, 100, 100]  # fewer lots than slices


def test_split_star_keeps_every_slice_at_least_200_shares() -> None:
    assert split_quantity(1_000, 10, 1, 200) == [200] * 5
    assert split_quantity(1_001, 4, 1, 200) == [251, 250, 250, 250]
    assert split_quantity(150, 4, 1, 200) == [150]


def test_split_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="n_slices"):
        split_quantity(100, 0, 100)
    with pytest.raises(ValueError, match="quantity"):
        split_quantity(-1, 1, 100)


@given(
    parts=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=50),
    extra=st.integers(min_value=0, max_value=200),
)
def test_spread_keeps_order_and_sum(parts: list[int], extra: int) -> None:
    n = len(parts) + extra
    out = spread(parts, n)
    assert len(out) == n
    assert sum(out) == sum(parts)
    assert [p for p in out if p] == parts
    assert out[0] == parts[0]


@given(
    quantity=st.integers(min_value=0, max_value=1_000_000),
    n=st.integers(min_value=1, max_value=300),
    base=st.integers(min_value=0, max_value=10_000),
)
def test_cumulative_targets_are_monotone_and_end_at_the_parent(quantity: int, n: int, base: int) -> None:
    targets = cumulative_targets(quantity, n, 100, 100, base)
    assert len(targets) == n
    assert targets == sorted(targets)
    assert targets[0] >= base
    assert targets[-1] == base + quantity


# ------------------------------------------------------------------------------------------ times
times_in_day = st.integers(min_value=DAY_START, max_value=DAY_END)


@given(
    a=times_in_day,
    b=times_in_day,
    interval_s=st.integers(min_value=1, max_value=3_600),
)
@pytest.mark.slow
def test_slice_times_only_inside_clipped_windows_never_at_lunch(a: int, b: int, interval_s: int) -> None:
    start, end = min(a, b), max(a, b)
    interval = interval_s * NS_PER_SECOND
    times = slice_times(WINDOWS, start, end, interval)
    assert times == sorted(set(times))
    for t in times:
        assert start <= t < end
        assert any(lo <= t < hi for lo, hi in WINDOWS)
        assert not in_lunch(t)
    # evenly spaced in trading time: the k-th slice sits k intervals of trading time after the first
    total = trading_time(WINDOWS, start, end)
    assert len(times) == -(-total // interval)
    if times:
        first = times[0]
        for k, t in enumerate(times):
            assert trading_time(WINDOWS, first, t) == k * interval


def test_slice_grid_runs_on_across_lunch_without_a_catch_up_slice() -> None:
    start = shanghai_ns(DAY, "11:28:20")
    end = shanghai_ns(DAY, "13:02:00")
    times = slice_times(WINDOWS, start, end, NS_PER_MINUTE)
    assert times == [
        shanghai_ns(DAY, "11:28:20"),
        shanghai_ns(DAY, "11:29:20"),
        shanghai_ns(DAY, "13:00:20"),
        shanghai_ns(DAY, "13:01:20"),
    ]


def test_slice_times_start_at_the_open_when_the_parent_starts_before_it() -> None:
    times = slice_times(WINDOWS, shanghai_ns(DAY, "09:15"), shanghai_ns(DAY, "09:33"), NS_PER_MINUTE)
    assert times == [shanghai_ns(DAY, f"09:3{m}") for m in range(3)]


def test_clip_windows_and_instant_before_end() -> None:
    start, end = shanghai_ns(DAY, "11:00"), shanghai_ns(DAY, "13:10")
    assert clip_windows(WINDOWS, start, end) == [(start, MORNING[1]), (AFTERNOON[0], end)]
    # 30 s before an end 10 s after 13:00 reaches back across lunch, into the morning
    end = shanghai_ns(DAY, "13:00:10")
    assert instant_before_end(WINDOWS, start, end, 30 * NS_PER_SECOND) == shanghai_ns(DAY, "11:29:40")
    assert instant_before_end(WINDOWS, start, start + 5, NS_PER_MINUTE) == start
    assert instant_before_end(WINDOWS, MORNING[1], AFTERNOON[0], NS_PER_MINUTE) is None
    with pytest.raises(ValueError, match="overlapping"):
        clip_windows([(0, 10), (5, 20)], 0, 20)
