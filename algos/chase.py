"""Limit chase (like 掘金's smart re-order): post, then step toward the opposite side on a timeout.

The first child posts at ``price_policy`` (own best by default); its price is the anchor ``P0``. Every
``reprice_s`` seconds a child still working is cancelled and replaced (through the base's cancel-replace:
the replacement goes out only after the cancel is confirmed, sized from the confirmed fills) ``step_ticks``
further toward the opposite side: re-price ``k`` asks ``P0 ± k x step_ticks`` ticks, never through the
opposite best, never more than ``max_offset_ticks`` ticks from ``P0``, never beyond the daily price limits
or the parent's limit price. After ``max_reprices`` re-prices the last child is left to work. At the end
whatever works is cancelled (``end_policy="cancel"``) or left (``"leave"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from zhixing.algos.base import AlgoContext, ExecAlgo
from zhixing.algos.params import END_POLICIES, AlgoParams, check_choice, parameter_error
from zhixing.algos.pricing import PricePolicy, limit_band
from zhixing.algos.saved_state import state_int
from zhixing.algos.schedule import Window, clip_windows
from zhixing.algos.windows import end_instant, parent_windows
from zhixing.engine.enums import Side
from zhixing.engine.events import Quote
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.units import NS_PER_SECOND


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaseParams(AlgoParams):
    price_policy: str = field(default="passive", metadata={"help": "first post: passive | mid | aggressive"})
    reprice_s: int = field(default=10, metadata={"help": "seconds a child may rest before it is re-priced"})
    step_ticks: int = field(default=1, metadata={"help": "ticks toward the opposite side per re-price"})
    max_offset_ticks: int = field(
        default=5, metadata={"help": "never more than this many ticks from the first post"}
    )
    max_reprices: int = field(default=5, metadata={"help": "re-prices before the last child is left to work"})
    end_policy: str = field(
        default="cancel", metadata={"help": "at the end: cancel | leave working children"}
    )

    def __post_init__(self) -> None:
        for name in ("reprice_s", "step_ticks"):
            if getattr(self, name) <= 0:
                raise parameter_error(
                    f"chase parameter {name!r} must be positive, got {getattr(self, name)}",
                    name=name,
                    value=getattr(self, name),
                )
        for name in ("max_offset_ticks", "max_reprices"):
            if getattr(self, name) < 0:
                raise parameter_error(
                    f"chase parameter {name!r} must be >= 0, got {getattr(self, name)}",
                    name=name,
                    value=getattr(self, name),
                )
        check_choice("chase", "price_policy", self.price_policy, tuple(PricePolicy))
        check_choice("chase", "end_policy", self.end_policy, END_POLICIES)


class ChaseAlgo(ExecAlgo):
    name = "chase"
    params_type = ChaseParams
    params: ChaseParams

    def __init__(self, parent: ParentOrder, ctx: AlgoContext, **overrides: object) -> None:
        super().__init__(parent, ctx, **overrides)
        self.anchor: int | None = None  # P0, milli-yuan
        self.reprices = 0
        self._windows: list[Window] = []
        self._end_at = 0

    # ------------------------------------------------------------------------------------ pricing
    def price_for(
        self, policy: PricePolicy | str, quote: Quote | None, side: Side, offset_ticks: int
    ) -> int | None:
        """The first post at ``policy``; then ``P0`` stepped toward the opposite side, bounded."""
        base = super().price_for(self.params.price_policy, quote, side, 0)
        if base is None or quote is None:
            return None
        if self.anchor is None:
            self.anchor = base
            return base
        tick = self.instrument.tick
        step = min(self.reprices * self.params.step_ticks, self.params.max_offset_ticks) * tick
        opposite = quote.ask_price if side is Side.BUY else quote.bid_price
        if side is Side.BUY:
            price = self.anchor + step
            if opposite > 0:
                price = min(price, opposite)
        else:
            price = self.anchor - step
            if opposite > 0:
                price = max(price, opposite)
        band = limit_band(self.instrument, quote)
        if band is not None:
            price = min(max(price, band[0]), band[1])
        limit = self.parent.limit_price
        if limit > 0:
            price = min(price, limit) if side is Side.BUY else max(price, limit)
        return price

    # ------------------------------------------------------------------------------------ schedule
    def _tick(self) -> None:
        if self.done or self.ending or self.paused:
            return
        now = self.ctx.clock.now_ns()
        if now >= self._end_at:
            self._finish(
                ParentStatus.DONE,
                cancel_working=self.params.end_policy == "cancel",
                why=self.window_ended(),
            )
            return
        if any(lo <= now < hi for lo, hi in self._windows):
            if self._active and self.reprices < self.params.max_reprices:
                # a working child (remaining is 0 while it works): replace it one step further
                self.reprices += 1
                self.work(self.parent.quantity, self.params.price_policy, 0, f"reprice{self.reprices}")
            elif not self._active and self.remaining > 0:
                self.work(self.parent.quantity, self.params.price_policy, 0, "post")
        if not (self.done or self.ending):
            self.set_timer(min(self._end_at, now + self.params.reprice_s * NS_PER_SECOND), self._tick)

    def _on_start(self) -> None:
        windows = parent_windows(self.ctx.calendar, self.parent)
        self._windows = clip_windows(windows, self.parent.start_ns, self.parent.end_ns)
        if not self._windows:
            self._unfilled = Unfilled(UnfilledCode.NO_TRADING_TIME)
        self._end_at = end_instant(self.ctx.calendar, self._windows, self.parent.start_ns)
        first = self._windows[0][0] if self._windows else self._end_at
        self.set_timer(max(first, self.ctx.clock.now_ns()), self._tick)

    def _on_resume(self) -> None:
        self._tick()

    # ------------------------------------------------------------------------------------ state
    def _state_extra(self) -> dict[str, object]:
        return {"anchor": self.anchor, "reprices": self.reprices, "end_at": self._end_at}

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        anchor = state.get("anchor")
        self.anchor = int(str(anchor)) if anchor is not None else None
        self.reprices = state_int(state, "reprices")
        self._end_at = state_int(state, "end_at")
        windows = parent_windows(self.ctx.calendar, self.parent)
        self._windows = clip_windows(windows, self.parent.start_ns, self.parent.end_ns)
