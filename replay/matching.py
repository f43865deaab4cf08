"""Matching maths of the simulated exchange: one ``SymbolBook`` per symbol that has orders.

Nothing here runs per snapshot. When the first order for a symbol arrives, its ``SymbolDay`` arrays are
reduced once, vectorised, to two keys per snapshot:

- ``buy_key[k]``: the lowest price a resting buy could trade at in snapshot ``k``: the best ask level
  that may have *fresh* quantity, or the last price when the market traded since snapshot ``k - 1``;
  ``INT64_MAX`` when nothing;
- ``sell_key[k]``: the highest such price for a resting sell (fresh bid, or last); 0 when nothing.

The keys are permissive bounds (``_fresh_best``): they may wake an order for nothing, never miss a fill;
the exact amounts are settled at the wake-up by ``take_depth`` and ``take_volume``.

Both are masked to continuous trading. A resting buy at ``P`` can fill at snapshot ``k`` only if
``buy_key[k] <= P`` (a sell: ``sell_key[k] >= P``), so finding its next wake-up is one numpy comparison
over a window of snapshots (``next_fill_index``). The exchange then sleeps until that snapshot.

*Fresh* quantity is what a price level shows beyond what the same price showed in the previous snapshot
of the same continuous window. A resting order takes displayed depth only from fresh quantity: the same
displayed order, still shown three seconds later, is not handed out a second time (without this rule a
large order priced through the market took the same displayed orders at every snapshot). An arriving
order takes the whole displayed depth, as a real one would.

Liquidity is finite: the displayed quantity of a level and the volume traded between two snapshots are
each handed out once, whoever of our orders asks first (``used_depth``, ``used_volume``: sparse dicts
keyed by snapshot, since only snapshots where we traded ever get an entry).

The closing call auction (``close_print``, used by ``SimExchange`` when its closing auction is on) is
read from the data, not rebuilt: the close snapshot (the first one stamped at or after 15:00:00, within
``CLOSE_SNAPSHOT_WITHIN_NS``) gives the one uncross price (its last price) and the volume matched in the
uncross: its cumulative volume minus the one of the snapshot just before it. Nothing trades during the
call, so that jump is the auction's volume; taking the snapshot just before the close (rather than the
last one before 14:57) never counts continuous trading the feed reports late.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from zhixing.replay.data import SymbolDay

INT64_MAX: Final = int(np.iinfo(np.int64).max)
FIRST_WINDOW: Final = 64
"""Snapshots looked at by the first search step (~3 minutes of 3-second snapshots); later steps grow x4."""
CLOSE_SNAPSHOT_WITHIN_NS: Final = 60 * 1_000_000_000
"""The close snapshot must be stamped within this of 15:00:00 (the feeds put it at 15:00:00-15:00:03); a
later one is no evidence of the uncross, and there is no closing auction for that symbol."""

Int64Array = NDArray[np.int64]


class ContinuousWindows:
    """The day's continuous-trading windows ``[start, end)`` (start-inclusive, end-exclusive, as
    ``TradingCalendar`` defines its phases), for vectorised and scalar membership tests."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, windows: list[tuple[int, int]]) -> None:
        ordered = sorted(windows)
        self._starts = [start for start, _ in ordered]
        self._ends = [end for _, end in ordered]

    def window_of(self, ts_ns: int) -> int:
        """Index of the window containing ``ts_ns``, or -1 outside continuous trading."""
        j = bisect.bisect_right(self._starts, ts_ns) - 1
        return j if j >= 0 and ts_ns < self._ends[j] else -1

    def window_ids(self, ts: Int64Array) -> NDArray[np.int16]:
        """``window_of`` for every element of ``ts``, vectorised."""
        if not self._starts:
            return np.full(ts.shape, -1, dtype=np.int16)
        starts = np.asarray(self._starts, dtype=np.int64)
        ends = np.asarray(self._ends, dtype=np.int64)
        j = np.searchsorted(starts, ts, side="right") - 1
        inside = (j >= 0) & (ts < ends[np.maximum(j, 0)])
        return np.where(inside, j, -1).astype(np.int16)


class SymbolBook:
    """Per-symbol matching state, built once from a ``SymbolDay`` when the symbol gets its first order."""

    __slots__ = (
        "_row_cache",
        "_row_k",
        "ask_px",
        "ask_qty",
        "bid_px",
        "bid_qty",
        "buy_key",
        "day",
        "last",
        "n",
        "sell_key",
        "traded",
        "ts",
        "used_depth",
        "used_volume",
        "window",
    )

    def __init__(self, day: SymbolDay, windows: ContinuousWindows) -> None:
        self.day = day
        self.n = len(day)
        self.ts = day.ts
        self.last = day.last
        self.bid_px, self.bid_qty = day.bid_px, day.bid_qty
        self.ask_px, self.ask_qty = day.ask_px, day.ask_qty
        self.window = windows.window_ids(day.ts)
        cont = self.window >= 0
        traded = np.where(cont, day.traded_volume(), 0)
        if self.n:
            traded[0] = 0  # volume before the file's first snapshot: when it traded is unknown
        self.traded: Int64Array = traded
        last_ok = (traded > 0) & (day.last > 0)
        fresh_ask = _fresh_best(day.ask_px, day.ask_qty, self.window, best_is_min=True)
        fresh_bid = _fresh_best(day.bid_px, day.bid_qty, self.window, best_is_min=False)
        self.buy_key: Int64Array = np.minimum(
            np.where(cont, fresh_ask, INT64_MAX), np.where(last_ok, day.last, INT64_MAX)
        )
        self.sell_key: Int64Array = np.maximum(np.where(cont, fresh_bid, 0), np.where(last_ok, day.last, 0))
        self.used_volume: dict[int, int] = {}
        self.used_depth: dict[int, int] = {}  # key: (k * 2 + side) * levels + level
        self._row_k = [-1, -1]
        self._row_cache: list[tuple[list[int], list[int], list[int]]] = [([], [], []), ([], [], [])]

    # ------------------------------------------------------------------------------------- search
    def next_fill_index(self, is_buy: bool, price: int, start: int) -> int:
        """The first snapshot ``k >= start`` where an order resting at ``price`` could fill, or -1.

        Looks at ``FIRST_WINDOW`` snapshots, then windows four times larger, so an order near the market
        costs one small comparison and one far from it a handful, never a Python loop over snapshots.
        """
        n = self.n
        lo = max(start, 0)
        width = FIRST_WINDOW
        key = self.buy_key if is_buy else self.sell_key
        while lo < n:
            hi = min(n, lo + width)
            segment = key[lo:hi]
            hits = segment <= price if is_buy else segment >= price
            j = int(hits.argmax())
            if hits[j]:
                return lo + j
            lo = hi
            width *= 4
        return -1

    # ------------------------------------------------------------------------------------- liquidity
    def take_depth(
        self,
        k: int,
        is_buy: bool,
        price: int,
        want: int,
        *,
        fresh_only: bool,
        max_levels: int = 0,
        dry_run: bool = False,
    ) -> list[tuple[int, int]]:
        """Take up to ``want`` shares from the opposite levels of snapshot ``k`` priced at or better than
        ``price``, best level first, each up to its displayed quantity (``fresh_only``: its fresh
        quantity) less what our orders already took. Returns ``(level price, shares)`` per level touched
        and marks the shares as used (``dry_run``: only says what it would take). ``max_levels`` > 0
        looks at that many price levels from the best one (a best-five market order: 5)."""
        if want <= 0 or self.window[k] < 0:
            return []
        side = 1 if is_buy else 0
        prices, quantities, fresh = self._row(k, side)
        levels = len(prices)
        base = (k * 2 + side) * levels
        used = self.used_depth
        taken: list[tuple[int, int]] = []
        for level in range(levels if max_levels <= 0 else min(levels, max_levels)):
            px, qty = prices[level], quantities[level]
            if px <= 0 or qty <= 0:
                continue
            if (px > price) if is_buy else (px < price):
                break  # levels are sorted away from the touch
            key = base + level
            already = used.get(key, 0)
            free = qty - already
            if fresh_only:
                free = min(free, fresh[level])
            if free <= 0:
                continue
            take = min(free, want)
            if not dry_run:
                used[key] = already + take
            taken.append((px, take))
            want -= take
            if want == 0:
                break
        return taken

    def best(self, k: int, is_buy_side: bool) -> int:
        """The best displayed price of one side of snapshot ``k`` (bids when ``is_buy_side``), 0 if empty."""
        px, qty = (self.bid_px, self.bid_qty) if is_buy_side else (self.ask_px, self.ask_qty)
        return int(px[k, 0]) if px.shape[1] and px[k, 0] > 0 and qty[k, 0] > 0 else 0

    def _row(self, k: int, side: int) -> tuple[list[int], list[int], list[int]]:
        """Prices, quantities and fresh quantities of one side (1 asks, 0 bids) of snapshot ``k`` as
        lists, cached for the last snapshot asked per side (every order due at a snapshot reads it)."""
        if self._row_k[side] == k:
            return self._row_cache[side]
        book_px, book_qty = (self.ask_px, self.ask_qty) if side else (self.bid_px, self.bid_qty)
        prices, quantities = book_px[k].tolist(), book_qty[k].tolist()
        shown_before: dict[int, int] = {}
        if k > 0 and self.window[k - 1] == self.window[k]:
            shown_before = {
                px: qty
                for px, qty in zip(book_px[k - 1].tolist(), book_qty[k - 1].tolist(), strict=True)
                if px > 0 and qty > 0
            }
        fresh = [qty - shown_before.get(px, 0) for px, qty in zip(prices, quantities, strict=True)]
        row = self._row_cache[side] = (prices, quantities, fresh)
        self._row_k[side] = k
        return row

    def take_volume(self, k: int, is_buy: bool, price: int, want: int) -> int:
        """Take up to ``want`` shares of the volume traded since snapshot ``k - 1`` if the market traded at
        or through ``price`` (buy: last <= price; sell: last >= price). Marks the shares as used."""
        if want <= 0:
            return 0
        traded = int(self.traded[k])
        if traded <= 0:
            return 0
        last = int(self.last[k])
        if last <= 0 or ((last > price) if is_buy else (last < price)):
            return 0
        used = self.used_volume.get(k, 0)
        take = min(traded - used, want)
        if take <= 0:
            return 0
        self.used_volume[k] = used + take
        return take


def _fresh_best(
    px: Int64Array, qty: Int64Array, window: NDArray[np.int16], *, best_is_min: bool
) -> Int64Array:
    """Per snapshot, a bound on the best price among levels with fresh quantity: ``INT64_MAX`` (asks,
    ``best_is_min``) / 0 (bids) when there is surely none.

    A level counts as stale only when the same level index showed the same price with at least as much
    quantity one snapshot earlier (in the same window). That misses a level that moved to another index,
    so it may call a stale level fresh, never the reverse: the bound is on the permissive side and an
    order can only be woken for nothing, which ``take_depth(fresh_only=True)`` then settles exactly.
    Comparing only the same index costs two vectorised comparisons per side instead of a search.
    """
    n = px.shape[0]
    valid = (px > 0) & (qty > 0)
    stale = np.zeros(px.shape, dtype=np.bool_)
    stale[1:] = (px[1:] == px[:-1]) & (qty[1:] <= qty[:-1])
    same_window = np.zeros(n, dtype=np.bool_)
    same_window[1:] = (window[1:] == window[:-1]) & (window[1:] >= 0)
    fresh = valid & ~(stale & same_window[:, None])  # a window's first snapshot: everything is fresh
    if best_is_min:
        best: Int64Array = np.where(fresh, px, INT64_MAX).min(axis=1, initial=INT64_MAX)
    else:
        best = np.where(fresh, px, 0).max(axis=1, initial=0)
    return best


@dataclass(frozen=True, slots=True)
class ClosePrint:
    """The closing call's uncross as the data shows it: one price, the volume matched, the snapshot."""

    price: int  # milli-yuan: the close snapshot's last price
    volume: int  # shares matched in the uncross
    index: int  # the close snapshot's row


def close_print(
    day: SymbolDay, match_ns: int, within_ns: int = CLOSE_SNAPSHOT_WITHIN_NS
) -> ClosePrint | None:
    """The uncross at ``match_ns`` (15:00:00): the first snapshot stamped in ``[match_ns, match_ns +
    within_ns)`` gives the price (its last) and the volume (its ``cum_volume`` minus the previous
    snapshot's). None when there is no such snapshot, no earlier one, no price, or nothing matched."""
    c = int(np.searchsorted(day.ts, match_ns, side="left"))
    if c == 0 or c >= len(day) or int(day.ts[c]) >= match_ns + within_ns:
        return None
    price = int(day.last[c])
    volume = int(day.cum_volume[c]) - int(day.cum_volume[c - 1])
    if price <= 0 or volume <= 0:
        return None
    return ClosePrint(price=price, volume=volume, index=c)


def auction_eligible(is_buy: bool, limit_price: int, close_price: int) -> bool:
    """An order takes part in the uncross when its limit is at or through the close: a buy priced at or
    above it, a sell at or below it."""
    return limit_price >= close_price if is_buy else limit_price <= close_price


def allocate_uncross(wants: list[int], budget: int) -> list[int]:
    """Hand ``budget`` shares to ``wants`` (already in price-time priority) first come, first served:
    each gets ``min(want, what is left)``. Sums to ``min(budget, sum(wants))``."""
    shares: list[int] = []
    left = max(budget, 0)
    for want in wants:
        take = min(max(want, 0), left)
        shares.append(take)
        left -= take
    return shares
