"""Iceberg: show the parent one small child at a time.

Exactly one child is visible at a time, of at most ``display_qty`` shares on the lot grid; with
``jitter_pct`` (a fraction, 0 <= j < 1) each show is ``display_qty x (1 + u)``, ``u`` drawn uniformly in
``[-j, j]`` from ``random.Random(seed)``, rounded down onto the lot grid and never below one lot, so
never above ``display_qty x (1 + j)``. The next show is sent only once the previous child is terminal as
confirmed by the OrderManager (filled, or its cancel confirmed); after a reject, a denial or outside the
continuous windows it is retried by timer. The total never exceeds the parent (``child_quantity``).

``state()`` carries the generator's state, so a restored iceberg continues the same size sequence.
At the end working children are cancelled (``end_policy="cancel"``) or left (``"leave"``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from zhixing.algos.base import AlgoContext, ExecAlgo
from zhixing.algos.params import END_POLICIES, AlgoParams, check_choice, parameter_error
from zhixing.algos.pricing import PricePolicy
from zhixing.algos.saved_state import state_flag, state_int
from zhixing.algos.schedule import Window, clip_windows
from zhixing.algos.windows import end_instant, parent_windows
from zhixing.engine.events import OrderEvent, OrderRejected
from zhixing.engine.market import round_buy_quantity
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import Unfilled, UnfilledCode
from zhixing.engine.units import NS_PER_SECOND

RETRY_NS = 5 * NS_PER_SECOND
"""How soon a show that could not go out (no quote, sealed limit, denied, rejected) is tried again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IcebergParams(AlgoParams):
    display_qty: int = field(default=0, metadata={"help": "REQUIRED: shares shown per child (>= one lot)"})
    jitter_pct: float = field(
        default=0.0, metadata={"help": "show size jitter as a fraction in [0, 1): display x (1 +- j)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the size jitter"})
    price_policy: str = field(default="passive", metadata={"help": "child price: passive | mid | aggressive"})
    offset_ticks: int = field(
        default=0, metadata={"help": "aggressive only: ticks through the opposite best"}
    )
    end_policy: str = field(
        default="cancel", metadata={"help": "at the end: cancel | leave working children"}
    )

    def __post_init__(self) -> None:
        if self.display_qty <= 0:
            raise parameter_error(
                f"iceberg parameter 'display_qty' is required and must be positive, got {self.display_qty}",
                name="display_qty",
                value=self.display_qty,
            )
        if math.isnan(self.jitter_pct) or not 0 <= self.jitter_pct < 1:
            raise parameter_error(
                f"iceberg parameter 'jitter_pct' must be in [0, 1), got {self.jitter_pct}",
                name="jitter_pct",
                value=self.jitter_pct,
            )
        if self.offset_ticks < 0:
            raise parameter_error(
                f"iceberg parameter 'offset_ticks' must be >= 0, got {self.offset_ticks}",
                name="offset_ticks",
                value=self.offset_ticks,
            )
        check_choice("iceberg", "price_policy", self.price_policy, tuple(PricePolicy))
        check_choice("iceberg", "end_policy", self.end_policy, END_POLICIES)


class IcebergAlgo(ExecAlgo):
    name = "iceberg"
    params_type = IcebergParams
    params: IcebergParams

    def __init__(self, parent: ParentOrder, ctx: AlgoContext, **overrides: object) -> None:
        super().__init__(parent, ctx, **overrides)
        if self.params.display_qty < self.instrument.buy_min:
            raise parameter_error(
                f"iceberg parameter 'display_qty' must be at least one lot "
                f"({self.instrument.buy_min}), got {self.params.display_qty}",
                name="display_qty",
                value=self.params.display_qty,
            )
        self._rng = random.Random(self.params.seed)
        self._built = False
        self._windows: list[Window] = []
        self._end_at = 0
        self.shows = 0

    # ------------------------------------------------------------------------------------ views
    @property
    def end_at(self) -> int:
        return self._end_at

    def next_size(self) -> int:
        """The next show's size (draws from the generator when jittering)."""
        display, jitter, inst = self.params.display_qty, self.params.jitter_pct, self.instrument
        if jitter <= 0:
            return max(inst.buy_min, round_buy_quantity(inst, display))
        size = math.floor(display * (1 + self._rng.uniform(-jitter, jitter)))
        return max(inst.buy_min, round_buy_quantity(inst, size))

    # ------------------------------------------------------------------------------------ showing
    def _build(self) -> None:
        self._built = True
        windows = parent_windows(self.ctx.calendar, self.parent)
        self._windows = clip_windows(windows, self.parent.start_ns, self.parent.end_ns)
        if not self._windows:
            self._unfilled = Unfilled(UnfilledCode.NO_TRADING_TIME)
        self._end_at = end_instant(self.ctx.calendar, self._windows, self.parent.start_ns)

    def _show(self) -> None:
        """Send the next show if nothing is working, else wait for its confirmation; arm the next timer."""
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
        # only with nothing working, inside the parent's own window (continuous trading only)
        if not self._active and self.remaining > 0 and self._inside(now):
            # a show is worth at least ``min_child_value`` (``algos.base``)
            size = max(self.next_size(), self.min_child_quantity(self.reference_price()))
            self.work(self._filled + size, self.params.price_policy, self.params.offset_ticks, "show")
            if self._active:
                self.shows += 1
        if self.ending or self.done:
            return
        self._arm(now)

    def _arm(self, now: int) -> None:
        """The end timer while a child works; else a retry soon, or at the next window's open."""
        when = self._end_at
        if not self._active:
            if self._inside(now):
                when = min(when, now + RETRY_NS)
            else:
                when = min([when, *(lo for lo, _ in self._windows if lo > now)])
        self.set_timer(max(when, now), self._show)

    def _inside(self, now: int) -> bool:
        return any(lo <= now < hi for lo, hi in self._windows)

    def _on_order_event(self, event: OrderEvent) -> None:
        was_active = event.client_order_id in self._active
        super()._on_order_event(event)
        if not was_active or event.client_order_id in self._active:
            return
        # our child just became terminal: the next show goes out now (a reject waits for the retry timer)
        if not isinstance(event, OrderRejected):
            self._show()
        elif not self.ending and not self.done:
            self._arm(self.ctx.clock.now_ns())

    # ------------------------------------------------------------------------------------ hooks
    def _on_start(self) -> None:
        if not self._built:
            self._build()
        self._show()

    def _on_resume(self) -> None:
        if not self._built:
            self._build()
        self._show()

    # ------------------------------------------------------------------------------------ state
    def _state_extra(self) -> dict[str, object]:
        version, internal, gauss = self._rng.getstate()
        return {
            "built": self._built,
            "end_at": self._end_at,
            "shows": self.shows,
            "rng_state": [version, list(internal), gauss],
        }

    def _restore_extra(self, state: Mapping[str, object]) -> None:
        self._built = state_flag(state, "built")
        self.shows = state_int(state, "shows")
        raw = state.get("rng_state")
        if raw is not None:
            if not (isinstance(raw, list) and len(raw) == 3 and isinstance(raw[1], list)):
                raise parameter_error(
                    f"algo state 'rng_state': malformed {raw!r}", name="rng_state", value=raw
                )
            self._rng.setstate((raw[0], tuple(raw[1]), raw[2]))
        if self._built:
            self._end_at = state_int(state, "end_at")
            windows = parent_windows(self.ctx.calendar, self.parent)
            self._windows = clip_windows(windows, self.parent.start_ns, self.parent.end_ns)
