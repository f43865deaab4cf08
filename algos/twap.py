"""TWAP: spread a parent evenly over its window, in trading time.

The schedule is computed once, in integers (``algos.schedule``): slice times every ``interval_s`` of
trading time inside the continuous windows clipped to the parent's ``[start, end)``, and a cumulative
target per slice (lots shared evenly, remainder lots to the earliest slices, a sell's odd tail on the
last). At slice ``i`` the algorithm brings ``filled + working`` up to ``target[i]``: a child still working
is cancelled and replaced once the cancel is confirmed (see ``algos.base``).

Catch-up rules, kept deliberately simple:

- a slice that sends nothing (no usable quote, sealed limit, unfilled child) leaves its quantity to the
  next slice, which sends one slice's worth plus that carried remainder (the cumulative target);
- slices that never fired at all — skipped while paused, while the process was down before a
  ``restore``, or because the timer itself fired an interval or more late (a suspended machine, a
  blocked loop: ``algo_timer_late``) — are NOT caught up: what is left is re-spread evenly over the
  slices still ahead, the late one included. The window's end does not move.

At ``end - final_sweep_s`` (trading time) whatever is working is cancelled and everything left is sent
at the opposite best plus ``sweep_offset_ticks``. At the end (``CANCEL_LEAD_NS`` before a window close,
when the parent runs to 11:30 or 14:57, since the exchange takes no cancels at lunch or in the closing
call) working children are cancelled (``end_policy="cancel"``) or left to the market (``"leave"``).

With ``closing_auction`` > 0 and a window reaching 15:00, the slices and the sweep aim at the parent less
the closing-auction part, which goes out as one order in the closing call (``algos.base``): the sweep
never doubles up with it.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

from zhixing.algos.base import AlgoContext, ExecAlgo, PlanField
from zhixing.algos.params import END_POLICIES, ClosingAuctionParams, parameter_error
from zhixing.algos.pricing import PricePolicy
from zhixing.algos.saved_state import state_flag, state_index, state_int, state_ints, state_optional_int
from zhixing.algos.schedule import clip_windows, cumulative_targets, instant_before_end, slice_times
from zhixing.algos.windows import end_instant, parent_windows
from zhixing.engine.enums import Side
from zhixing.engine.market import round_buy_quantity
from zhixing.engine.parents import ParentOrder
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.units import NS_PER_SECOND


@dataclass(frozen=True, slots=True, kw_only=True)
class TwapParams(ClosingAuctionParams):
    interval_s: int = field(default=60, metadata={"help": "seconds of trading time between slices"})
    price_policy: str = field(
        default="aggressive", metadata={"help": "child price: passive | mid | aggressive"}
    )
    offset_ticks: int = field(
        default=0, metadata={"help": "aggressive only: ticks through the opposite best"}
    )
    final_sweep_s: int = field(
        default=30,
        metadata={"help": "seconds before the end to cancel and send the rest aggressively (0: no sweep)"},
    )
    sweep_offset_ticks: int = field(
        default=2, metadata={"help": "final sweep: ticks through the opposite best"}
    )
    end_policy: str = field(
        default="cancel", metadata={"help": "at the end: cancel | leave working children"}
    )

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise parameter_error(
                f"twap parameter 'interval_s' must be positive, got {self.interval_s}",
                name="interval_s",
                value=self.interval_s,
            )
        if self.price_policy not in tuple(PricePolicy):
            raise parameter_error(
                f"twap parameter 'price_policy' must be one of "
                f"{', '.join(PricePolicy)}, got {self.price_policy!r}",
                name="price_policy",
                value=self.price_policy,
            )
        for name in ("offset_ticks", "final_sweep_s", "sweep_offset_ticks"):
            if getattr(self, name) < 0:
                raise parameter_error(
                    f"twap parameter {name!r} must be >= 0, got {getattr(self, name)}",
                    name=name,
                    value=getattr(self, name),
                )
        if self.end_policy not in END_POLICIES:
            raise parameter_error(
                f"twap parameter 'end_policy' must be one of {', '.join(END_POLICIES)}, "
                f"got {self.end_policy!r}",
                name="end_policy",
                value=self.end_policy,
            )
        self.check_closing_auction("twap")


class TwapAlgo(ExecAlgo):
    name = "twap"
    params_type = TwapParams
    params: TwapParams

    def __init__(self, parent: ParentOrder, ctx: AlgoContext, **overrides: object) -> None:
        super().__init__(parent, ctx, **overrides)
        self._built = False
        # the plan (``plan_state``): held for the ``_times`` / ``_targets`` ``PlanField``s, whose assignments
        # bump the plan version; tuples, so nothing can change them in place behind the version's back
        self._plan_times: tuple[int, ...] = ()
        self._plan_targets: tuple[int, ...] = ()  # cumulative target after each slice
        self._next = 0  # index of the next slice to fire
        self._sweep_at: int | None = None
        self._swept = False
        self._end_at = 0
        self._total = 0  # what the schedule aims to fill

    # ------------------------------------------------------------------------------------ plan
    _times = PlanField[tuple[int, ...]]()
    _targets = PlanField[tuple[int, ...]]()  # cumulative target after each slice

    # ------------------------------------------------------------------------------------ views
    @property
    def slice_times(self) -> list[int]:
        return list(self._times)

    @property
    def targets(self) -> list[int]:
        return list(self._targets)

    @property
    def next_slice(self) -> int:
        return self._next

    @property
    def sweep_at(self) -> int | None:
        return self._sweep_at

    @property
    def end_at(self) -> int:
        return self._end_at

    @property
    def continuous_total(self) -> int:
        """What the slices and the sweep aim to fill: the schedule's total less the closing-auction part."""
        return self._total - self.auction_quantity

    # ------------------------------------------------------------------------------------ schedule
    def _build(self) -> None:
        self._built = True
        parent, params, inst = self.parent, self.params, self.instrument
        windows = parent_windows(self.ctx.calendar, parent)
        clipped = clip_windows(windows, parent.start_ns, parent.end_ns)
        self._total = (
            parent.quantity if parent.side is Side.SELL else round_buy_quantity(inst, parent.quantity)
        )
        self.plan_closing_auction(self._total)
        self._end_at = end_instant(self.ctx.calendar, clipped, parent.start_ns)
        if not clipped:
            self._unfilled = Unfilled(UnfilledCode.NO_TRADING_TIME)
            return
        slices_end = self._end_at
        if params.final_sweep_s > 0:
            self._sweep_at = instant_before_end(
                windows, parent.start_ns, self._end_at, params.final_sweep_s * NS_PER_SECOND
            )
            if self._sweep_at is not None:
                slices_end = self._sweep_at
        self._times = tuple(
            slice_times(windows, parent.start_ns, slices_end, params.interval_s * NS_PER_SECOND)
        )
        self._targets = tuple(
            cumulative_targets(self.continuous_total, len(self._times), inst.buy_step, inst.buy_min)
        )

    def _replan_from(self, index: int) -> None:
        """Spread what is left evenly over slices ``index..``; no catch-up for the ones skipped."""
        base = self.filled_quantity + self.working_quantity
        left = len(self._times) - index
        if left > 0:
            self._targets = self._targets[:index] + tuple(
                cumulative_targets(
                    max(0, self.continuous_total - base),
                    left,
                    self.instrument.buy_step,
                    self.instrument.buy_min,
                    base,
                )
            )
        self._next = index

    def _skip_missed(self) -> None:
        now = self.ctx.clock.now_ns()
        index = bisect.bisect_left(self._times, now, lo=self._next)
        if index > self._next:
            self._replan_from(index)

    def _arm(self) -> None:
        when = self._end_at
        if self._next < len(self._times):
            when = min(when, self._times[self._next])
        if self._sweep_at is not None and not self._swept:
            when = min(when, self._sweep_at)
        self.set_timer(when, self._on_timer)

    # ------------------------------------------------------------------------------------ hooks
    def _on_start(self) -> None:
        if not self._built:
            self._build()
        self._skip_missed()
        self._arm()

    def _on_resume(self) -> None:
        if not self._built:  # paused before it ever started
            self._build()
        self._skip_missed()
        self._arm()

    def _on_timer(self) -> None:
        if self.done or self.ending or self.paused:
            return
        now = self.ctx.clock.now_ns()
        if now >= self._end_at:
            self.end_of_window(cancel_working=self.params.end_policy == "cancel")
            return
        params = self.params
        if self._sweep_at is not None and not self._swept and now >= self._sweep_at:
            self._swept = True
            self._next = len(self._times)
            self.work(self.continuous_total, PricePolicy.AGGRESSIVE, params.sweep_offset_ticks, "sweep")
        elif self._next < len(self._times) and self._times[self._next] <= now:
            index = self.due_slice(self._times, self._next, now)
            if index > self._next:  # fired late: the missed slices are re-spread, not sent now
                self._replan_from(index)
            self._next = index + 1
            self.work(self._targets[index], params.price_policy, params.offset_ticks, f"s{index}")
        if not self.ending and not self.paused:
            self._arm()

    # ------------------------------------------------------------------------------------ state
    def _plan_extra(self) -> dict[str, object]:
        return {"slice_times": list(self._times), "targets": list(self._targets)}

    def _state_extra(self) -> dict[str, object]:
        return {
            "built": self._built,
            "next_slice": self._next,
            "sweep_at": self._sweep_at,
            "swept": self._swept,
            "end_at": self._end_at,
            "total": self._total,
        }

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        self._built = state_flag(state, "built")
        if not self._built:
            return
        self._times = tuple(state_ints(state, "slice_times"))
        self._targets = tuple(state_ints(state, "targets"))
        if len(self._times) != len(self._targets):
            raise parameter_error(
                "algo state: slice_times and targets differ in length",
                name="targets",
                value=len(self._targets),
            )
        self._next = state_index(state, "next_slice", len(self._times))
        self._sweep_at = state_optional_int(state, "sweep_at")
        self._swept = state_flag(state, "swept")
        self._end_at = state_int(state, "end_at")
        self._total = state_int(state, "total")
