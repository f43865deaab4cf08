"""Rebalance in a cash account: sell leg first, then a buy leg sized from the cash the sells released.

A phase machine over one ``Basket``:

    PENDING ─start()─► SELLING ─(every sell parent done, nothing working)─► BUYING ─(all done)─► DONE

- The sell leg runs the plan's sells over ``[start, sell_end)`` with the chosen algorithm.
- Only when every sell parent is done and no sell child is working is cash "confirmed": the buy leg is
  then re-sized from the account's available cash at that moment (``size_buys``: lots, fees and a fee
  buffer included) and runs over ``[now, end)``. No buy order exists before that instant, so no buy can
  be sent before the cash for it is confirmed.
- A plan with no sells goes straight to the buy leg, sized from the cash on hand.
- The next leg is decided whenever a parent of the current one finishes, however it finished (an order
  event, its window's end timer, or a ``resume`` after a halt whose window ended meanwhile: that one
  finishes with no order event at all), not only on order events. A leg whose algorithms are paused
  (halt, broker link down) simply waits: after the resume every pending leg continues.
- ``on_done`` is told once, when the last leg is over.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from zhixing.algos.base import AlgoContext
from zhixing.algos.basket import Basket
from zhixing.algos.params import parameter_error
from zhixing.engine.account import Account
from zhixing.engine.events import OrderEvent
from zhixing.engine.market import FeeSchedule, Instrument
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import Plan, PlanRow, size_buys


class RebalancePhase(StrEnum):
    PENDING = "PENDING"
    SELLING = "SELLING"
    BUYING = "BUYING"
    DONE = "DONE"


class Rebalance:
    def __init__(
        self,
        ctx: AlgoContext,
        plan: Plan,
        *,
        account: Account,
        start_ns: int,
        end_ns: int,
        sell_end_ns: int | None = None,
        algo: str = "twap",
        params: dict[str, str] | None = None,
        fees: FeeSchedule | None = None,
        fee_buffer_bp: int = 10,
        id_prefix: str = "R",
        instrument: Callable[[str], Instrument] | None = None,
        on_parent: Callable[[ParentOrder], None] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        if end_ns <= start_ns:
            raise parameter_error("rebalance window: end must be after start", name="end_ns", value=end_ns)
        self.ctx = ctx
        self.plan = plan
        self.account = account
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.sell_end_ns = sell_end_ns if sell_end_ns is not None else start_ns + (end_ns - start_ns) // 2
        self.algo = algo
        self.params = dict(params or {})
        # the buy leg is sized with the day's rules: callers pass the day's fees (``Engine.fees_today``);
        # the instruments default to the context's, the dated rules of the engine's day
        self.fees = fees or FeeSchedule()
        self.fee_buffer_bp = fee_buffer_bp
        self.id_prefix = id_prefix
        self.instrument = instrument or ctx.instrument
        self.on_parent = on_parent  # told of every parent as it is created (journal, arrival price)
        self.on_done = on_done  # told once when the rebalance is DONE
        self._told_done = False
        self._sizing = False  # adding the buy leg's parents: not over before the last is added
        self.basket = Basket(ctx)
        self._phase = RebalancePhase.PENDING
        self.parents: list[ParentOrder] = []
        self.sell_parents: list[ParentOrder] = []
        self.buy_parents: list[ParentOrder] = []
        self.buy_rows: list[PlanRow] = []
        self.confirmed_cash: int | None = None  # the cash the buy leg was sized from
        self.buys_sized_at: int | None = None  # ns

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._phase is not RebalancePhase.PENDING:
            return
        self.ctx.bus.subscribe(OrderEvent, self._on_order_event)
        for row in self.plan.sells():
            if row.quantity > 0:
                self.sell_parents.append(self._parent(row, self.start_ns, self.sell_end_ns))
        self._phase = RebalancePhase.SELLING
        for parent in self.sell_parents:
            self.basket.add(parent).on_finished.append(self._leg_progressed)
        self.basket.start()
        if not self.sell_parents:
            self.ctx.clock.call_at(self.start_ns, self._check, "rebalance:buy_leg")
        # sells end at sell_end even when no event arrives after their last cancel confirmation
        self.ctx.clock.call_at(self.sell_end_ns, self._check, "rebalance:sell_end")

    @property
    def phase(self) -> RebalancePhase:
        """DONE is derived: the buy leg is over once its basket is done (no event needs to say so)."""
        if self._phase is RebalancePhase.BUYING and self.basket.done:
            return RebalancePhase.DONE
        return self._phase

    @property
    def done(self) -> bool:
        return self.phase is RebalancePhase.DONE

    def _on_order_event(self, event: OrderEvent) -> None:
        self._check()

    def _leg_progressed(self) -> None:
        """A parent of ours finished: the sell leg may be settled, or the rebalance over."""
        self._check()
        self._tell_done()

    def _tell_done(self) -> None:
        if self.done and not self._told_done and not self._sizing:
            self._told_done = True
            if self.on_done is not None:
                self.on_done()

    def _sells_settled(self) -> bool:
        for parent in self.sell_parents:
            algo = self.basket.algos[parent.parent_id]
            if not algo.done or algo.working_quantity:
                return False
        return True

    def _check(self) -> None:
        if self._phase is RebalancePhase.SELLING and self._sells_settled():
            self._start_buy_leg()

    def _start_buy_leg(self) -> None:
        now = self.ctx.clock.now_ns()
        self.confirmed_cash = self.account.available_cash
        self.buys_sized_at = now
        self.buy_rows = size_buys(
            self.plan,
            self.confirmed_cash,
            fees=self.fees,
            fee_buffer_bp=self.fee_buffer_bp,
            instrument=self.instrument,
        )
        self._phase = RebalancePhase.BUYING
        start = max(now, self.start_ns)
        self._sizing = True
        try:
            for row in self.buy_rows:
                if row.quantity > 0 and start < self.end_ns:
                    parent = self._parent(row, start, self.end_ns)
                    self.buy_parents.append(parent)
                    algo = self.basket.add(parent)  # a parent added after start() starts at once
                    algo.on_finished.append(self._leg_progressed)
        finally:
            self._sizing = False
        if not self.buy_parents:
            self._phase = RebalancePhase.DONE
        self._tell_done()

    def _parent(self, row: PlanRow, start_ns: int, end_ns: int) -> ParentOrder:
        assert row.side is not None
        parent = ParentOrder(
            parent_id=f"{self.id_prefix}{len(self.parents) + 1:04d}",
            symbol=row.symbol,
            side=row.side,
            quantity=row.quantity,
            start_ns=start_ns,
            end_ns=end_ns,
            algo=self.algo,
            params=dict(self.params),
            created_ns=self.ctx.clock.now_ns(),
        )
        self.parents.append(parent)
        if self.on_parent is not None:
            self.on_parent(parent)
        return parent
