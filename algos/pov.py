"""POV (percent of volume): follow the market's traded volume at ``target_rate``.

Every ``interval_s`` of trading time (TWAP's grid: continuous windows only, lunch removed) the market
volume traded since the start is sampled from ``quote.cum_volume`` deltas (a lower cumulative volume is a
new trading day). The cumulative target is ``floor(target_rate x observed)``, never above
``floor(max_rate x observed)`` nor the parent. The work sent brings ``filled + working`` up to that target
through the base's cancel-replace (``ExecAlgo.work``), with the catch-up held: at most one interval's
share (``target_rate`` x the volume of the last interval) plus ``catch_up_lots`` lots above what is
filled, though never below ``floor(min_rate x observed)``. Children are sized on the lot grid, so the
realised participation can trail the target by less than one lot.

At the end (``CANCEL_LEAD_NS`` before a window close when the parent runs to 11:30 or 14:57) working
children are cancelled (``end_policy="cancel"``) or left to the market (``"leave"``). A pause cancels
what is working; on resume the interval volume restarts from the moment of resume (no burst), and so it
does when a timer fires an interval or more late (``algo_timer_late``: a suspended machine, a blocked
loop): that firing sends at most ``catch_up_lots`` above what is filled (or the ``min_rate`` floor).

With ``closing_auction`` > 0 and a window reaching 15:00, the volume-following target is capped at the
parent less the closing-auction part, which goes out as one order in the closing call (``algos.base``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from zhixing.algos.base import AlgoContext, ExecAlgo, PlanField
from zhixing.algos.params import END_POLICIES, ClosingAuctionParams, check_choice, parameter_error
from zhixing.algos.pricing import PricePolicy
from zhixing.algos.saved_state import state_flag, state_index, state_int, state_ints, state_optional_int
from zhixing.algos.schedule import clip_windows, slice_times
from zhixing.algos.windows import end_instant, parent_windows
from zhixing.engine.parents import ParentOrder
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.units import NS_PER_SECOND


@dataclass(frozen=True, slots=True, kw_only=True)
class PovParams(ClosingAuctionParams):
    target_rate: float = field(default=0.1, metadata={"help": "fraction of the market volume to trade"})
    min_rate: float = field(
        default=0.0, metadata={"help": "the catch-up cap never holds the target below this rate"}
    )
    max_rate: float = field(
        default=0.25, metadata={"help": "cap: filled+working <= this x market volume since start"}
    )
    interval_s: int = field(default=30, metadata={"help": "seconds of trading time between samples"})
    price_policy: str = field(
        default="aggressive", metadata={"help": "child price: passive | mid | aggressive"}
    )
    offset_ticks: int = field(
        default=0, metadata={"help": "aggressive only: ticks through the opposite best"}
    )
    catch_up_lots: int = field(
        default=5, metadata={"help": "max lots above one interval's share sent in one interval"}
    )
    end_policy: str = field(
        default="cancel", metadata={"help": "at the end: cancel | leave working children"}
    )

    def __post_init__(self) -> None:
        for name in ("target_rate", "min_rate", "max_rate"):
            value = getattr(self, name)
            if math.isnan(value) or not 0 <= value <= 1:
                raise parameter_error(
                    f"pov parameter {name!r} must be in [0, 1], got {value}", name=name, value=value
                )
        if self.target_rate <= 0:
            raise parameter_error(
                f"pov parameter 'target_rate' must be positive, got {self.target_rate}",
                name="target_rate",
                value=self.target_rate,
            )
        if not self.min_rate <= self.target_rate:
            raise parameter_error(
                f"pov parameter 'min_rate' ({self.min_rate}) must be <= target_rate ({self.target_rate})",
                name="min_rate",
                value=self.min_rate,
            )
        if not self.target_rate <= self.max_rate:
            raise parameter_error(
                f"pov parameter 'max_rate' ({self.max_rate}) must be >= target_rate ({self.target_rate})",
                name="max_rate",
                value=self.max_rate,
            )
        if self.interval_s <= 0:
            raise parameter_error(
                f"pov parameter 'interval_s' must be positive, got {self.interval_s}",
                name="interval_s",
                value=self.interval_s,
            )
        for name in ("offset_ticks", "catch_up_lots"):
            if getattr(self, name) < 0:
                raise parameter_error(
                    f"pov parameter {name!r} must be >= 0, got {getattr(self, name)}",
                    name=name,
                    value=getattr(self, name),
                )
        check_choice("pov", "price_policy", self.price_policy, tuple(PricePolicy))
        check_choice("pov", "end_policy", self.end_policy, END_POLICIES)
        self.check_closing_auction("pov")


class PovAlgo(ExecAlgo):
    name = "pov"
    params_type = PovParams
    params: PovParams

    def __init__(self, parent: ParentOrder, ctx: AlgoContext, **overrides: object) -> None:
        super().__init__(parent, ctx, **overrides)
        self._built = False
        # the plan (``plan_state``), held for the ``_times`` ``PlanField`` (assigning it bumps the version)
        self._plan_times: tuple[int, ...] = ()
        self._next = 0
        self._end_at = 0
        self._market_volume = 0  # traded since the start
        self._interval_base = 0  # market volume at the previous sample
        self._last_cum: int | None = None

    # ------------------------------------------------------------------------------------ plan
    _times = PlanField[tuple[int, ...]]()

    # ------------------------------------------------------------------------------------ views
    @property
    def slice_times(self) -> list[int]:
        return list(self._times)

    @property
    def end_at(self) -> int:
        return self._end_at

    @property
    def market_volume(self) -> int:
        return self._market_volume

    def stats(self) -> dict[str, object]:
        return {**super().stats(), "market_volume": self._market_volume}

    # ------------------------------------------------------------------------------------ schedule
    def _build(self) -> None:
        self._built = True
        windows = parent_windows(self.ctx.calendar, self.parent)
        clipped = clip_windows(windows, self.parent.start_ns, self.parent.end_ns)
        if not clipped:
            self._unfilled = Unfilled(UnfilledCode.NO_TRADING_TIME)
        self._end_at = end_instant(self.ctx.calendar, clipped, self.parent.start_ns)
        self.plan_closing_auction(self.parent.quantity)
        self._times = tuple(
            slice_times(windows, self.parent.start_ns, self._end_at, self.params.interval_s * NS_PER_SECOND)
        )

    def _sample_volume(self) -> None:
        quote = self.ctx.quotes.latest(self.parent.symbol)
        if quote is None:
            return
        cum = quote.cum_volume
        if self._last_cum is not None:
            self._market_volume += cum - self._last_cum if cum >= self._last_cum else cum
        self._last_cum = cum

    def _skip_missed(self) -> None:
        self._next = bisect.bisect_left(self._times, self.ctx.clock.now_ns(), lo=self._next)

    def _arm(self) -> None:
        when = self._end_at
        if self._next < len(self._times):
            when = min(when, self._times[self._next])
        self.set_timer(when, self._on_timer)

    def pov_target(self) -> int:
        """The cumulative quantity ``filled + working`` may be brought up to now (samples the volume)."""
        self._sample_volume()
        params, inst = self.params, self.instrument
        observed = self._market_volume
        interval_volume = max(0, observed - self._interval_base)
        self._interval_base = observed
        target = min(math.floor(params.target_rate * observed), math.floor(params.max_rate * observed))
        share = math.floor(params.target_rate * interval_volume)
        capped = min(target, self._filled + share + params.catch_up_lots * inst.buy_step)
        floor = min(math.floor(params.min_rate * observed), target)
        return min(max(capped, floor), self.parent.quantity - self.auction_quantity)

    # ------------------------------------------------------------------------------------ hooks
    def _on_start(self) -> None:
        if not self._built:
            self._build()
            self._sample_volume()  # the baseline: volume before the start does not count
            self._interval_base = self._market_volume
        self._skip_missed()
        self._arm()

    def _on_resume(self) -> None:
        if not self._built:
            self._build()
        self._sample_volume()  # no burst: the next interval's share counts from now
        self._interval_base = self._market_volume
        self._skip_missed()
        self._arm()

    def _on_timer(self) -> None:
        if self.done or self.ending or self.paused:
            return
        now = self.ctx.clock.now_ns()
        if now >= self._end_at:
            self.end_of_window(cancel_working=self.params.end_policy == "cancel")
            return
        if self._next < len(self._times) and self._times[self._next] <= now:
            index = self.due_slice(self._times, self._next, now)
            if index > self._next:  # fired late: the missed intervals' volume earns no share now
                self._sample_volume()
                self._interval_base = self._market_volume
            self._next = index + 1
            self.work(self.pov_target(), self.params.price_policy, self.params.offset_ticks, f"i{index}")
        if not self.ending and not self.paused:
            self._arm()

    # ------------------------------------------------------------------------------------ state
    def _plan_extra(self) -> dict[str, object]:
        return {"slice_times": list(self._times)}

    def _state_extra(self) -> dict[str, object]:
        return {
            "built": self._built,
            "next_slice": self._next,
            "end_at": self._end_at,
            "market_volume": self._market_volume,
            "interval_base": self._interval_base,
            "last_cum_volume": self._last_cum,
        }

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        self._built = state_flag(state, "built")
        if not self._built:
            return
        self._times = tuple(state_ints(state, "slice_times"))
        self._next = state_index(state, "next_slice", len(self._times))
        self._end_at = state_int(state, "end_at")
        self._market_volume = state_int(state, "market_volume")
        self._interval_base = state_int(state, "interval_base")
        self._last_cum = state_optional_int(state, "last_cum_volume")
