"""VWAP: TWAP's machinery (slice times, cancel-replace, sweep, pause, restore) with profile-shaped targets.

The slice times are TWAP's (``interval_s`` of trading time inside the continuous windows). Each slice's
weight is the volume profile's mass over the trading time it covers (up to the next slice; the last one
up to the sweep, or the end), renormalised over the parent's window; the cumulative targets follow the
cumulative weights in whole lots and end exactly at the parent quantity (a sell's odd tail on the last).

Participation cap: ``filled + working`` is never brought above ``max_participation`` x the market volume
seen since the start (deltas of ``quote.cum_volume``, sampled at each slice) plus one minimum lot. The
cap holds for the final sweep too, so a thin market can leave part of the parent unfilled.

Slices skipped while paused (or down before a restore) are not caught up: what is left is re-spread over
the slices ahead by their profile weights. ``profile`` is required: a path to a JSON written by
``zhixing profile build`` or ``"u_shape"`` for the synthetic default.

``closing_auction`` works as in TWAP: the profile-weighted slices aim at the parent less the
closing-auction part, whose one order in the call is not held to the participation cap (the exchange
bounds it by the close's volume).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate, pairwise

from zhixing.algos.base import AlgoContext
from zhixing.algos.params import parameter_error
from zhixing.algos.pricing import PricePolicy
from zhixing.algos.profile import U_SHAPE, curve_for, resolve_profile
from zhixing.algos.saved_state import state_int, state_optional_int
from zhixing.algos.schedule import clip_windows, cumulative_targets
from zhixing.algos.twap import TwapAlgo, TwapParams
from zhixing.algos.windows import parent_windows
from zhixing.engine.errors import ParameterError
from zhixing.engine.parents import ParentOrder
from zhixing.engine.units import NS_PER_MINUTE, NS_PER_SECOND

CHINA_OFFSET_NS = 8 * 3600 * NS_PER_SECOND  # Asia/Shanghai has had no DST since 1991
NS_PER_DAY = 86_400 * NS_PER_SECOND
_MORNING_OPEN_MIN = 9 * 60 + 30
_AFTERNOON_OPEN_MIN = 13 * 60
_HALF_SESSION = 120


@dataclass(frozen=True, slots=True, kw_only=True)
class VwapParams(TwapParams):
    profile: str = field(
        default="",
        metadata={"help": "REQUIRED: volume profile JSON (zhixing profile build) or 'u_shape'"},
    )
    max_participation: float = field(
        default=0.2,
        metadata={"help": "cap: filled+working <= this x market volume since start, plus one lot"},
    )

    def __post_init__(self) -> None:
        if not self.profile:
            raise parameter_error(
                f"vwap parameter 'profile' is required: a volume profile JSON path or {U_SHAPE!r}",
                name="profile",
                value=self.profile,
            )
        if not (0 < self.max_participation <= 1) or math.isnan(self.max_participation):
            raise parameter_error(
                f"vwap parameter 'max_participation' must be in (0, 1], got {self.max_participation}",
                name="max_participation",
                value=self.max_participation,
            )
        try:
            TwapParams.__post_init__(self)
        except ParameterError as exc:
            raise parameter_error(
                str(exc).replace("twap parameter", "vwap parameter", 1), name=exc.name, value=exc.value
            ) from None


def session_minute(ns: int) -> int | None:
    """The continuous-session minute (0..239) containing instant ``ns``, None outside 09:30-11:30/13-15."""
    minute_of_day = ((ns + CHINA_OFFSET_NS) % NS_PER_DAY) // NS_PER_MINUTE
    if _MORNING_OPEN_MIN <= minute_of_day < _MORNING_OPEN_MIN + _HALF_SESSION:
        return minute_of_day - _MORNING_OPEN_MIN
    if _AFTERNOON_OPEN_MIN <= minute_of_day < _AFTERNOON_OPEN_MIN + _HALF_SESSION:
        return _HALF_SESSION + minute_of_day - _AFTERNOON_OPEN_MIN
    return None


def profile_mass(curve: list[float], windows: list[tuple[int, int]], start_ns: int, end_ns: int) -> float:
    """The profile's mass over the trading time of ``windows`` inside ``[start_ns, end_ns)``."""
    mass = 0.0
    for lo, hi in clip_windows(windows, start_ns, end_ns):
        t = lo
        while t < hi:
            step_end = min(hi, (t // NS_PER_MINUTE + 1) * NS_PER_MINUTE)
            minute = session_minute(t)
            if minute is not None:
                mass += curve[minute] * (step_end - t) / NS_PER_MINUTE
            t = step_end
    return mass


def weighted_targets(
    quantity: int, weights: list[float], lot: int, min_first: int | None = None, base: int = 0
) -> list[int]:
    """Cumulative targets (``base`` + running total) following ``weights``, in whole lots.

    The lots are placed by rounding the cumulative weight, so targets never decrease; a sell's odd tail
    (``quantity % lot``) rides on the last slice. The last target is exactly ``base + quantity``. With no
    weight at all the split is even (``cumulative_targets``).
    """
    n = len(weights)
    if n == 0:
        return []
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise parameter_error(
            f"weights must be finite and >= 0, got {weights}", name="weights", value=weights
        )
    total = math.fsum(weights)
    if total <= 0:
        return cumulative_targets(quantity, n, lot, min_first, base)
    lots, tail = divmod(quantity, lot)
    cum_lots = [min(lots, round(c / total * lots)) for c in accumulate(weights)]
    cum_lots[-1] = lots
    targets = [base + c * lot for c in cum_lots]
    targets[-1] += tail
    assert targets[-1] == base + quantity, (quantity, targets)
    assert all(a <= b for a, b in pairwise(targets))
    return targets


class VwapAlgo(TwapAlgo):
    name = "vwap"
    params_type = VwapParams
    params: VwapParams

    def __init__(self, parent: ParentOrder, ctx: AlgoContext, **overrides: object) -> None:
        super().__init__(parent, ctx, **overrides)
        self.curve = curve_for(resolve_profile(self.params.profile), parent.symbol, self.params.profile)
        self._weights: list[float] = []  # profile mass of each slice
        self._market_volume = 0  # traded since the start, from cum_volume deltas
        self._last_cum: int | None = None

    # ------------------------------------------------------------------------------------ views
    @property
    def weights(self) -> list[float]:
        return list(self._weights)

    @property
    def market_volume(self) -> int:
        return self._market_volume

    def participation_cap(self) -> int:
        """The most ``filled + working`` may be now: ``max_participation`` x market volume + one lot."""
        self._sample_volume()
        return int(self.params.max_participation * self._market_volume) + self.instrument.buy_min

    # ------------------------------------------------------------------------------------ schedule
    def _slice_weights(self) -> list[float]:
        if not self._times:
            return []
        windows = parent_windows(self.ctx.calendar, self.parent)
        last_end = self._sweep_at if self._sweep_at is not None else self._end_at
        ends = [*self._times[1:], last_end]
        return [profile_mass(self.curve, windows, t, e) for t, e in zip(self._times, ends, strict=True)]

    def _build(self) -> None:
        super()._build()
        self._weights = self._slice_weights()
        inst = self.instrument
        self._targets = tuple(
            weighted_targets(self.continuous_total, self._weights, inst.buy_step, inst.buy_min)
        )

    def _replan_from(self, index: int) -> None:
        """Spread what is left over slices ``index..`` by their weights; no catch-up for skipped ones."""
        base = self.filled_quantity + self.working_quantity
        if index < len(self._times):
            inst = self.instrument
            self._targets = self._targets[:index] + tuple(
                weighted_targets(
                    max(0, self.continuous_total - base),
                    self._weights[index:],
                    inst.buy_step,
                    inst.buy_min,
                    base,
                )
            )
        self._next = index

    # ------------------------------------------------------------------------------------ participation
    def _sample_volume(self) -> None:
        quote = self.ctx.quotes.latest(self.parent.symbol)
        if quote is None:
            return
        cum = quote.cum_volume
        if self._last_cum is not None:
            # a lower cumulative volume is a new trading day: all of it traded since
            self._market_volume += cum - self._last_cum if cum >= self._last_cum else cum
        self._last_cum = cum

    def _on_start(self) -> None:
        self._sample_volume()  # the baseline: volume before the start does not count
        super()._on_start()

    def work(self, target: int, policy: PricePolicy | str, offset_ticks: int, label: str) -> None:
        """``ExecAlgo.work`` with the target held to the participation cap."""
        super().work(min(target, self.participation_cap()), policy, offset_ticks, label)

    # ------------------------------------------------------------------------------------ state
    def _state_extra(self) -> dict[str, object]:
        return {
            **super()._state_extra(),
            "market_volume": self._market_volume,
            "last_cum_volume": self._last_cum,
        }

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        super()._restore_extra(state)
        self._market_volume = state_int(state, "market_volume")
        self._last_cum = state_optional_int(state, "last_cum_volume")
        if self._built:
            self._weights = self._slice_weights()
            if len(self._weights) != len(self._times):
                raise parameter_error(
                    "algo state: slice weights do not match slice_times",
                    name="weights",
                    value=len(self._weights),
                )
