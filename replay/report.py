"""The execution cost report (TCA) of a replay: one row per parent order, plus totals.

Slippage is in basis points and signed so that positive is a cost: a buy that paid more than the
benchmark, or a sell that received less. Benchmarks: the arrival price (mid at the parent's start, last
if the book was one-sided) and the market's interval VWAP over the parent's window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.market import COMMISSION_BUDGET_BPS, fees_bps, iso8601
from zhixing.engine.parents import ParentOrder
from zhixing.engine.units import yuan

if TYPE_CHECKING:
    from zhixing.algos.basket import Basket
    from zhixing.engine.oms import OrderManager
    from zhixing.engine.risk_controls import RiskControls
    from zhixing.replay.data import MarketData


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentReport:
    parent_id: str
    symbol: str
    side: str
    algo: str
    start: str
    end: str
    quantity: int
    filled_quantity: int
    fill_ratio: float
    avg_price: float | None  # yuan
    arrival_price: float | None
    interval_vwap: float | None
    slippage_arrival_bps: float | None
    slippage_vwap_bps: float | None
    market_volume: int
    participation: float | None
    child_orders: int
    cancels: int
    fees: float  # yuan
    unfilled_reason: str
    queued: int = 0  # shares of children still waiting for the rate window when the report was built
    # fees and commission in bps of the filled notional (None: nothing filled); a commission above
    # ``COMMISSION_BUDGET_BPS`` is warned about (``over_fee_budget``)
    fees_bps: float | None = None
    commission_bps: float | None = None

    def over_fee_budget(self) -> bool:
        """The parent's commission exceeds the commission budget (bps of its filled notional)."""
        return self.commission_bps is not None and self.commission_bps > COMMISSION_BUDGET_BPS

    def fee_warning(self) -> str:
        """The warning for a parent over the budget ("" : none)."""
        if not self.over_fee_budget():
            return ""
        return (
            f"{self.parent_id} {self.symbol}: commission {self.commission_bps} bps of its notional exceeds "
            f"the {COMMISSION_BUDGET_BPS} bps budget ({self.child_orders} children, fees {self.fees:,.2f} "
            f"CNY = {self.fees_bps} bps); raise min_child_value or slice less often"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeniedOrder:
    """An order the pre-trade checks refused (the risk gate's or the market rules'), and why."""

    client_order_id: str
    parent_id: str
    symbol: str
    side: str
    quantity: int
    price: float  # yuan
    at: str
    code: str  # ``engine.reasons.DenialCode``
    detail: str


@dataclass(frozen=True, slots=True)
class HeldCancelRow:
    """A cancel the message-rate caps held until the window allowed it (never dropped)."""

    client_order_id: str
    symbol: str
    at: str
    held_ms: float  # the first wait the gate answered
    cap: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RateQueueFigures:
    """The fair queue of orders over the per-second cap (``engine.rate_queue``): how many waited, how
    long, and how many waited past the bound (denied ``rate_queue_timeout``)."""

    orders_queued: int  # orders that met a full window and waited
    queued_sent: int  # of those, sent when the window had room
    queued_cancelled: int  # cancelled while queued (never sent, no message counted)
    queue_timeouts: int
    max_wait_ms: float  # the longest wait (of an order sent, or of one still queued)
    peak_depth: int  # the most orders waiting at once
    timeout_s: float  # the bound (``[risk] rate_queue_timeout_s``)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateReport:
    """The risk gate over the replayed day, as a live run's gate would have seen it: the messages
    against the caps, the orders it denied and the cancels it held."""

    max_messages_per_second: int
    max_messages_per_day: int
    peak_per_second: int
    messages_today: int  # orders + cancels sent (and counted) on the day
    orders_sent: int
    cancels_sent: int
    denials: dict[str, int]  # per code, every check's
    denied: list[DeniedOrder]
    cancel_holds: int
    held: list[HeldCancelRow]  # the first ``HELD_LOG_MAX`` of ``cancel_holds``
    queue: RateQueueFigures | None = None  # the per-second cap's queue (issue 20)


def gate_report(risk: RiskControls, oms: OrderManager) -> GateReport:
    """What ``risk`` (the engine's risk gate) counted, and the denied orders of ``oms`` with their codes."""
    figures = risk.report()
    queue = risk.queue_report()
    denied = [
        DeniedOrder(
            client_order_id=o.client_order_id,
            parent_id=o.parent_id or "",
            symbol=o.symbol,
            side=o.side.value,
            quantity=o.quantity,
            price=round(yuan(o.price), 3),
            at=iso8601(o.ts_created),
            code=o.denial.value if o.denial is not None else "",
            detail=o.reason,
        )
        for o in oms.orders.values()
        if o.status is OrderStatus.DENIED
    ]
    return GateReport(
        max_messages_per_second=risk.limits.max_messages_per_second,
        max_messages_per_day=risk.limits.max_messages_per_day,
        peak_per_second=risk.peak_per_second,
        messages_today=int(str(figures["messages_today"])),
        orders_sent=risk.orders_sent,
        cancels_sent=risk.cancels_sent,
        denials=dict(sorted(risk.denials.items())),
        denied=denied,
        cancel_holds=risk.cancel_holds,
        held=[
            HeldCancelRow(h.client_order_id, h.symbol, iso8601(h.held_ns), round(h.wait_ns / 1e6, 3), h.cap)
            for h in risk.held_log
        ],
        queue=RateQueueFigures(
            orders_queued=queue["orders_queued"],
            queued_sent=queue["queued_sent"],
            queued_cancelled=queue["queued_cancelled"],
            queue_timeouts=queue["queue_timeouts"],
            max_wait_ms=round(queue["max_queue_wait_ns"] / 1e6, 3),
            peak_depth=queue["peak_queue_depth"],
            timeout_s=risk.limits.rate_queue_timeout_ns / 1e9,
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayReport:
    trade_date: str
    parents: list[ParentReport]
    total_quantity: int
    total_filled_quantity: int
    total_notional: float  # yuan
    total_fees: float
    total_child_orders: int
    total_cancels: int
    slippage_arrival_bps: float | None  # notional-weighted
    slippage_vwap_bps: float | None
    gate: GateReport | None = None  # the risk gate's figures (None: built without the engine's gate)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slippage_bps(side: Side, avg: float, benchmark: float | None) -> float | None:
    if benchmark is None or benchmark <= 0 or avg <= 0:
        return None
    sign = 1.0 if side is Side.BUY else -1.0
    return round(sign * (avg - benchmark) / benchmark * 10_000, 2)


def _round_price(value: float | None) -> float | None:
    return None if value is None else round(value / 1000, 4)


def build_report(
    parents: list[ParentOrder],
    basket: Basket,
    oms: OrderManager,
    market: MarketData,
    arrival: dict[str, int | None],
    risk: RiskControls | None = None,
) -> ReplayReport:
    rows: list[ParentReport] = []
    weighted_arrival = weighted_vwap = weight_arrival = weight_vwap = 0.0
    for parent in parents:
        children = oms.children_of(parent.parent_id)
        filled = sum(c.filled_quantity for c in children)
        value = sum(c.filled_value for c in children)
        fees = sum(c.fees for c in children)
        commission = sum(c.commission for c in children)
        avg = value / filled if filled else 0.0
        day = market.days.get(parent.symbol)
        vwap = day.vwap_between(parent.start_ns, parent.end_ns) if day is not None else None
        market_volume = 0
        if day is not None:
            i0, i1 = day.index_at(parent.start_ns), day.index_at(parent.end_ns)
            if i1 >= 0:
                market_volume = int(day.cum_volume[i1] - (day.cum_volume[i0] if i0 >= 0 else 0))
        arr = arrival.get(parent.parent_id)
        slip_arr = slippage_bps(parent.side, avg, float(arr) if arr else None)
        slip_vwap = slippage_bps(parent.side, avg, vwap)
        if slip_arr is not None:
            weighted_arrival += slip_arr * value
            weight_arrival += value
        if slip_vwap is not None:
            weighted_vwap += slip_vwap * value
            weight_vwap += value
        algo = basket.algos.get(parent.parent_id)
        stats = algo.stats() if algo is not None else {}
        cancels = (
            sum(1 for c in children if c.status_before_cancel is not None)
            if not stats
            else int(str(stats.get("cancels_sent", 0)))
        )
        rows.append(
            ParentReport(
                parent_id=parent.parent_id,
                symbol=parent.symbol,
                side=parent.side.value,
                algo=parent.algo,
                start=iso8601(parent.start_ns),
                end=iso8601(parent.end_ns),
                quantity=parent.quantity,
                filled_quantity=filled,
                fill_ratio=round(filled / parent.quantity, 4) if parent.quantity else 0.0,
                avg_price=_round_price(avg) if filled else None,
                arrival_price=_round_price(float(arr)) if arr else None,
                interval_vwap=_round_price(vwap),
                slippage_arrival_bps=slip_arr,
                slippage_vwap_bps=slip_vwap,
                market_volume=market_volume,
                participation=round(filled / market_volume, 4) if market_volume else None,
                child_orders=len(children),
                cancels=cancels,
                fees=round(yuan(fees), 2),
                unfilled_reason=str(stats.get("unfilled_reason", "")) if filled < parent.quantity else "",
                queued=int(str(stats.get("queued", 0))),
                fees_bps=fees_bps(fees, value) if value else None,
                commission_bps=fees_bps(commission, value) if value else None,
            )
        )
    return ReplayReport(
        trade_date=str(market.trade_date),
        parents=rows,
        total_quantity=sum(r.quantity for r in rows),
        total_filled_quantity=sum(r.filled_quantity for r in rows),
        total_notional=round(
            sum(yuan(c.filled_value) for p in parents for c in oms.children_of(p.parent_id)), 2
        ),
        total_fees=round(sum(r.fees for r in rows), 2),
        total_child_orders=sum(r.child_orders for r in rows),
        total_cancels=sum(r.cancels for r in rows),
        slippage_arrival_bps=round(weighted_arrival / weight_arrival, 2) if weight_arrival else None,
        slippage_vwap_bps=round(weighted_vwap / weight_vwap, 2) if weight_vwap else None,
        gate=gate_report(risk, oms) if risk is not None else None,
    )
