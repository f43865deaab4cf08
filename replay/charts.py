"""PNG charts of a replay, one pair per parent order (matplotlib, headless Agg backend):

- ``<parent>_<symbol>_fills.png``: the market's last price and running VWAP over the parent's window,
  with every fill as a point at its price and time (buys up-triangles, sells down-triangles);
- ``<parent>_<symbol>_progress.png``: cumulative filled quantity against the algorithm's schedule
  (its cumulative slice targets) over time.

The x axis is Asia/Shanghai wall-clock time, so the lunch break shows as a gap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless; set before pyplot is imported

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from zhixing.engine import names
from zhixing.engine.enums import Side
from zhixing.engine.events import OrderFilled
from zhixing.engine.parents import ParentOrder

if TYPE_CHECKING:
    from zhixing.algos.base import ExecAlgo
    from zhixing.engine.oms import OrderManager
    from zhixing.replay.data import SymbolDay


def _times(ts_ns: np.ndarray) -> np.ndarray:
    """ns epoch -> numpy datetime64 in Shanghai wall time (naive, for matplotlib)."""
    offset = np.timedelta64(8, "h")  # Asia/Shanghai has no DST
    return ts_ns.astype("datetime64[ns]") + offset


def write_charts(
    out_dir: Path,
    parents: list[ParentOrder],
    algos: dict[str, ExecAlgo],
    oms: OrderManager,
    days: dict[str, SymbolDay],
    fills: list[OrderFilled],
) -> list[Path]:
    """Write the two charts of every parent into ``out_dir`` (created); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for parent in parents:
        day = days.get(parent.symbol)
        if day is None:
            continue
        own = {c.client_order_id for c in oms.children_of(parent.parent_id)}
        points = sorted((f.ts_event, f.price, f.quantity) for f in fills if f.client_order_id in own)
        stem = f"{parent.parent_id}_{parent.symbol}"  # a parent id from a journal names a file: checked
        fills_path = names.join(out_dir, f"{stem}_fills.png", "parent id in a chart name")
        written.append(_fills_chart(fills_path, parent, day, points))
        algo = algos.get(parent.parent_id)
        progress_path = names.join(out_dir, f"{stem}_progress.png", "parent id in a chart name")
        written.append(_progress_chart(progress_path, parent, algo, points))
    return written


def _window(day: SymbolDay, parent: ParentOrder) -> slice:
    i0 = max(0, day.index_at(parent.start_ns))
    i1 = max(i0 + 1, day.index_at(parent.end_ns) + 1)
    return slice(i0, i1)


def _fills_chart(path: Path, parent: ParentOrder, day: SymbolDay, fills: list[tuple[int, int, int]]) -> Path:
    window = _window(day, parent)
    ts = day.ts[window]
    last = day.last[window] / 1000.0
    vol = (day.cum_volume[window] - day.cum_volume[window.start]).astype(float)
    amt = (day.cum_amount[window] - day.cum_amount[window.start]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(vol > 0, amt / np.maximum(vol, 1) / 1000.0, np.nan)
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    x = _times(ts)
    ax.plot(x, np.where(last > 0, last, np.nan), lw=0.8, color="#888888", label="last price")
    ax.plot(x, vwap, lw=1.2, color="#1f77b4", label="market VWAP since start")
    if fills:
        fx = _times(np.array([f[0] for f in fills], dtype=np.int64))
        fy = np.array([f[1] / 1000.0 for f in fills])
        size = np.array([f[2] for f in fills], dtype=float)
        marker = "^" if parent.side is Side.BUY else "v"
        color = "#d62728" if parent.side is Side.BUY else "#2ca02c"
        ax.scatter(
            fx,
            fy,
            s=10 + 60 * size / size.max(),
            marker=marker,
            color=color,
            alpha=0.7,
            label=f"our fills ({parent.side.value.lower()})",
        )
    ax.set_title(
        f"{parent.parent_id} {parent.symbol} {parent.side.value} {parent.quantity:,} — {parent.algo}"
    )
    return _save(fig, ax, path, ylabel="price (CNY)", legend_loc="best")


def _progress_chart(
    path: Path, parent: ParentOrder, algo: ExecAlgo | None, fills: list[tuple[int, int, int]]
) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    times = list(getattr(algo, "slice_times", []) or [])
    targets = list(getattr(algo, "targets", []) or [])
    if times and len(times) == len(targets):
        ax.step(
            _times(np.array(times, dtype=np.int64)),
            targets,
            where="post",
            color="#1f77b4",
            label="schedule (cumulative target)",
        )
    if fills:
        fx = _times(np.array([parent.start_ns] + [f[0] for f in fills], dtype=np.int64))
        fy = np.cumsum([0] + [f[2] for f in fills])
        ax.step(fx, fy, where="post", color="#d62728", label="filled (cumulative)")
    ax.axhline(parent.quantity, color="#555555", lw=0.8, ls="--", label="parent quantity")
    ax.set_title(f"{parent.parent_id} {parent.symbol}: filled vs schedule")
    return _save(fig, ax, path, ylabel="shares", legend_loc="lower right")


def _save(fig: Figure, ax: Axes, path: Path, *, ylabel: str, legend_loc: str) -> Path:
    """The styling both charts share: time-of-day axis, legend, grid; then write and free the figure."""
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    ax.legend(loc=legend_loc, fontsize=8)  # type: ignore[call-overload]  # stubs lack the kwargs-only form
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
