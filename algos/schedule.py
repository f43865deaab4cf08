"""Pure, exact slicing maths (STYLE.md point 7): integers only, computed once, asserted to add up.

Time is measured in *trading time*: the continuous-trading windows of the day (09:30-11:30 and
13:00-14:57 Asia/Shanghai) laid end to end, with the lunch break removed. A schedule with an interval of
60 s whose last morning slice is at 11:29:40 has its next slice at 13:00:40: slices are evenly spaced in
trading time, there is never a slice inside the lunch break and never an extra "catch-up" slice at 13:00.

Quantities are split on the lot grid: the lots are shared out evenly, the remainder lots go one each to
the earliest slices, and the odd tail (``quantity % lot``, which only a sell can have) rides on the last
slice, where the parent's final child sells it whole.
"""

from __future__ import annotations

from itertools import accumulate

from zhixing.algos.params import parameter_error

Window = tuple[int, int]


def clip_windows(windows: list[Window], start_ns: int, end_ns: int) -> list[Window]:
    """The parts of ``windows`` inside ``[start_ns, end_ns)``, in order, empty parts dropped."""
    out: list[Window] = []
    last_end: int | None = None
    for w_start, w_end in sorted(windows):
        if w_start >= w_end:
            raise parameter_error(
                f"empty or reversed window ({w_start}, {w_end})", name="windows", value=(w_start, w_end)
            )
        if last_end is not None and w_start < last_end:
            raise parameter_error(f"overlapping windows at {w_start}", name="windows", value=w_start)
        last_end = w_end
        lo, hi = max(w_start, start_ns), min(w_end, end_ns)
        if lo < hi:
            out.append((lo, hi))
    return out


def trading_time(windows: list[Window], start_ns: int, end_ns: int) -> int:
    """Nanoseconds of trading time in ``[start_ns, end_ns)``."""
    return sum(hi - lo for lo, hi in clip_windows(windows, start_ns, end_ns))


def slice_times(windows: list[Window], start_ns: int, end_ns: int, interval_ns: int) -> list[int]:
    """Slice start times every ``interval_ns`` of trading time from the first trading instant >= start.

    Every time lies inside a window clipped to ``[start_ns, end_ns)``; none falls in a break between
    windows. The grid runs on across a break (it is not restarted at each window), so the first afternoon
    slice comes ``interval`` of trading time after the last morning one.
    """
    if interval_ns <= 0:
        raise parameter_error(
            f"interval_ns must be positive, got {interval_ns}", name="interval_ns", value=interval_ns
        )
    times: list[int] = []
    elapsed = 0  # trading time before the current window
    for lo, hi in clip_windows(windows, start_ns, end_ns):
        k = -(-elapsed // interval_ns)  # first grid point at or after ``elapsed``
        t = lo + k * interval_ns - elapsed
        while t < hi:
            times.append(t)
            t += interval_ns
        elapsed += hi - lo
    return times


def instant_before_end(windows: list[Window], start_ns: int, end_ns: int, lead_ns: int) -> int | None:
    """The instant that leaves ``lead_ns`` of trading time before ``end_ns`` (clipped windows).

    When the whole span holds less trading time than ``lead_ns``, the first trading instant. None when
    there is no trading time at all.
    """
    clipped = clip_windows(windows, start_ns, end_ns)
    if not clipped:
        return None
    left = lead_ns
    for lo, hi in reversed(clipped):
        if hi - lo >= left:
            return hi - left
        left -= hi - lo
    return clipped[0][0]


def split_quantity(quantity: int, n_slices: int, lot: int, min_first: int | None = None) -> list[int]:
    """Split ``quantity`` into at most ``n_slices`` slices on the lot grid; the result sums to ``quantity``.

    ``lot`` is the step (100 on the main board, 1 on STAR); ``min_first`` (default ``lot``) is the smallest
    size any slice may have (STAR: 200). ``base = lots // n``; the remainder lots go one each to the
    earliest slices; the odd tail ``quantity % lot`` goes onto the last slice. When there are too few lots
    for ``n_slices`` slices of at least ``min_first``, there are fewer slices; a quantity below
    ``min_first`` is one slice (a sell's odd lot, sold whole).
    """
    if quantity < 0:
        raise parameter_error(f"quantity must be >= 0, got {quantity}", name="quantity", value=quantity)
    if n_slices <= 0:
        raise parameter_error(f"n_slices must be positive, got {n_slices}", name="n_slices", value=n_slices)
    if lot <= 0:
        raise parameter_error(f"lot must be positive, got {lot}", name="lot", value=lot)
    min_size = lot if min_first is None else max(min_first, 1)
    if quantity == 0:
        return []
    lots, tail = divmod(quantity, lot)
    min_lots = max(1, -(-min_size // lot))
    n = min(n_slices, lots // min_lots)
    if n == 0:
        return [quantity]
    base, extra = divmod(lots, n)
    parts = [(base + (1 if i < extra else 0)) * lot for i in range(n)]
    parts[-1] += tail
    assert sum(parts) == quantity, (quantity, parts)
    return parts


def spread(parts: list[int], n_times: int) -> list[int]:
    """Place ``len(parts) <= n_times`` slices evenly over ``n_times`` slots (unused slots get 0).

    Slice ``k`` lands in slot ``k * n_times // len(parts)``: the first in slot 0, the rest spaced out, so
    a small parent is not bunched into the first few minutes.
    """
    if len(parts) > n_times:
        raise parameter_error(
            f"{len(parts)} slices do not fit in {n_times} slots", name="parts", value=len(parts)
        )
    out = [0] * n_times
    for k, part in enumerate(parts):
        out[k * n_times // len(parts)] += part
    assert sum(out) == sum(parts)
    return out


def cumulative_targets(
    quantity: int, n_times: int, lot: int, min_first: int | None = None, base: int = 0
) -> list[int]:
    """Cumulative target after each of ``n_times`` slices: ``base`` plus the running sum of the split.

    The last target is ``base + quantity`` (empty when ``n_times`` is 0).
    """
    if n_times <= 0:
        return []
    per_slot = spread(split_quantity(quantity, n_times, lot, min_first), n_times)
    targets = [base + c for c in accumulate(per_slot)]
    assert targets[-1] == base + quantity
    return targets
