"""Rebalance planning: targets + holdings + prices -> a list of orders, sells first. Pure, no I/O.

Units: prices and money int milli-yuan, quantities int shares (``engine.units``).

Rules (MARKET_RULES.md):

* equity = cash + Σ holding × price (a holding without a price counts 0 and gets reason ``no_price``);
* a ``WEIGHT`` target is worth ``weight × equity``, a ``VALUE`` target its value, both turned into
  shares by flooring ``value // price``; a ``VOLUME`` target is a share count;
* with ``liquidate_unlisted`` every holding that no target names goes to 0;
* buys round the difference DOWN to the lot grid (``round_buy_quantity``: main board 100s, STAR 200 then 1);
* sells: going to 0 sells the whole position, odd tail included; a partial sell is rounded down to the lot
  grid, and if that would leave less than one lot (an odd tail that could then only be sold whole) it
  sells everything instead (``odd_lot_tail_sold_whole``); every sell is clipped to the T+1 sellable
  quantity (``clipped_to_sellable``; selling exactly the sellable quantity is always a valid order);
* suspended names are skipped; buys at limit-up and sells at limit-down are skipped; a trade whose
  ``|difference × price|`` is below ``min_trade_value`` is skipped;
* the buy leg is paid from cash + estimated sell proceeds net of fees; each buy also reserves
  ``fee_buffer_bp`` of its value; when the money is short every buy is scaled by one common factor
  (the largest that fits, found by bisection) and rounded down to the lot (``insufficient_cash``).

``fee_warnings`` names the rows whose commission, sliced by an algorithm into children of at least the
minimum child value (``FeeSchedule.min_child_value``), would exceed ``COMMISSION_BUDGET_BPS`` of their value.

``size_buys`` re-sizes the buy leg from the cash actually confirmed after the sells filled; the
phase machine calls it between the two legs.

Rows that do nothing keep their intended side with ``quantity == 0`` and a reason; ``side`` is ``None``
only when the holding is already on target. ``Plan.sells()`` and ``Plan.buys()`` return rows to submit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import TypeVar

from zhixing.engine.enums import Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.market import (
    COMMISSION_BUDGET_BPS,
    FeeSchedule,
    Instrument,
    fees_bps,
    instrument_for,
    price_limits,
    round_buy_quantity,
)
from zhixing.engine.portfolio.targets import Target, TargetKind
from zhixing.engine.units import yuan_str

BP_SCALE = 10_000
FACTOR_SCALE = 1_000_000  # resolution of the pro-rata buy factor (parts per million)
_DEFAULT_FEES = FeeSchedule()

# Reasons (stable ASCII strings).
SUSPENDED = "suspended"
LIMIT_UP = "limit_up"
LIMIT_DOWN = "limit_down"
BELOW_MIN_TRADE_VALUE = "below_min_trade_value"
CLIPPED_TO_SELLABLE = "clipped_to_sellable"
ODD_LOT_TAIL_SOLD_WHOLE = "odd_lot_tail_sold_whole"
ROUNDED_TO_LOT = "rounded_to_lot"
INSUFFICIENT_CASH = "insufficient_cash"
NO_PRICE = "no_price"

# Buy rows with these reasons are never sized (size_buys leaves them out).
_BUY_SKIPS = frozenset({SUSPENDED, LIMIT_UP, LIMIT_DOWN, BELOW_MIN_TRADE_VALUE, NO_PRICE})

InstrumentFn = Callable[[str], Instrument]


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    symbol: str
    quantity: int  # shares held
    sellable: int  # T+1 sellable now (broker can_use_volume)

    def __post_init__(self) -> None:
        if self.quantity < 0 or not 0 <= self.sellable <= self.quantity:
            raise ParameterError(
                f"holding {self.symbol}: need 0 <= sellable <= quantity, "
                f"got {self.sellable} / {self.quantity}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketRef:
    symbol: str
    price: int  # reference price (last or a quote), milli-yuan; <= 0 means no price
    prev_close: int = 0
    high_limit: int = 0  # 0: unknown (computed from prev_close when that is given)
    low_limit: int = 0
    suspended: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRow:
    symbol: str
    current: int  # shares held
    target: int  # target shares before lot rounding
    difference: int  # target - current
    side: Side | None  # None: already on target
    quantity: int  # shares to trade (0: skipped, see reason)
    price: int  # reference price used for the estimates
    est_value: int  # quantity × price
    est_fees: int  # commission + stamp duty + transfer fee
    reason: str  # "" or why skipped, clipped or resized


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    rows: list[PlanRow]  # sells first, then buys, then rows with nothing to do
    equity: int
    cash: int
    sell_proceeds: int  # Σ sell value - sell fees (estimate)
    buy_cost: int  # Σ buy value + buy fees (estimate, without the buffer)

    def sells(self) -> list[PlanRow]:
        return [r for r in self.rows if r.side is Side.SELL and r.quantity > 0]

    def buys(self) -> list[PlanRow]:
        return [r for r in self.rows if r.side is Side.BUY and r.quantity > 0]

    def table(self) -> str:
        """A plain-text table: one line per row, then the totals."""
        header = ("symbol", "current", "target", "difference", "order", "est value", "reason")
        lines = [header]
        for r in self.rows:
            order = f"{r.side.value} {r.quantity} @ {yuan_str(r.price)}" if r.side and r.quantity else "-"
            lines.append(
                (
                    r.symbol,
                    str(r.current),
                    str(r.target),
                    f"{r.difference:+d}",
                    order,
                    yuan_str(r.est_value),
                    r.reason,
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = []
        for n, line in enumerate(lines):
            cells = [
                c.ljust(w) if i in (0, 4, 6) else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            out.append("  ".join(cells).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        out.append(
            f"equity {yuan_str(self.equity)}  cash {yuan_str(self.cash)}  "
            f"sell proceeds {yuan_str(self.sell_proceeds)}  buy cost {yuan_str(self.buy_cost)}"
        )
        return "\n".join(out)


# ------------------------------------------------------------------------------------------ helpers
def _fee_total(fees: FeeSchedule, inst: Instrument, side: Side, price: int, quantity: int) -> int:
    return sum(fees.fees(inst, side, price, quantity)) if quantity > 0 and price > 0 else 0


def _buffer(value: int, fee_buffer_bp: int) -> int:
    return -(-value * fee_buffer_bp // BP_SCALE)  # ceiling


def _on_grid(inst: Instrument, quantity: int) -> bool:
    return quantity >= inst.buy_min and (quantity - inst.buy_min) % inst.buy_step == 0


def order_quantity(inst: Instrument, side: Side, volume: int, held: int, sellable: int) -> int:
    """A single order's size for ``volume`` shares, as 掘金 sizes it: a buy rounded down to the board's lot
    grid; a sell as ``sell_quantity`` sells from ``held`` down by ``volume`` (an odd tail sold whole),
    clipped to the T+1 ``sellable``. 0: nothing to send."""
    if side is Side.BUY:
        return round_buy_quantity(inst, volume)
    quantity, _ = sell_quantity(inst, held, held - min(volume, held))
    return min(quantity, sellable)


def sell_quantity(inst: Instrument, current: int, target: int) -> tuple[int, str]:
    """Shares to sell to go from ``current`` towards ``target`` (< current), before the T+1 clip.

    To 0: everything. Partial: the difference rounded down to the lot grid; if that leaves less than one
    lot, everything (``odd_lot_tail_sold_whole``). Returns (quantity, reason).
    """
    if target <= 0:
        return current, (ODD_LOT_TAIL_SOLD_WHOLE if not _on_grid(inst, current) and current > 0 else "")
    quantity = round_buy_quantity(inst, current - target)
    if quantity == 0:
        return 0, ROUNDED_TO_LOT
    if 0 < current - quantity < inst.buy_min:
        return current, ODD_LOT_TAIL_SOLD_WHOLE
    return quantity, ""


def _limits(inst: Instrument, ref: MarketRef) -> tuple[int, int]:
    low, high = ref.low_limit, ref.high_limit
    if (low <= 0 or high <= 0) and ref.prev_close > 0:
        computed_low, computed_high = price_limits(inst, ref.prev_close)
        low = low if low > 0 else computed_low
        high = high if high > 0 else computed_high
    return low, high


def _buy_cost(
    rows: list[PlanRow], quantities: list[int], fees: FeeSchedule, bp: int, inst: InstrumentFn
) -> int:
    total = 0
    for row, q in zip(rows, quantities, strict=True):
        if q > 0:
            value = q * row.price
            total += value + _fee_total(fees, inst(row.symbol), Side.BUY, row.price, q) + _buffer(value, bp)
    return total


def _scaled(rows: list[PlanRow], wanted: list[int], factor_ppm: int, inst: InstrumentFn) -> list[int]:
    return [
        round_buy_quantity(inst(r.symbol), w * factor_ppm // FACTOR_SCALE)
        for r, w in zip(rows, wanted, strict=True)
    ]


def _size(
    rows: list[PlanRow], wanted: list[int], budget: int, fees: FeeSchedule, bp: int, inst: InstrumentFn
) -> list[PlanRow]:
    """``rows`` with quantities ``wanted`` scaled by the largest common factor whose cost fits ``budget``."""
    quantities = wanted
    if _buy_cost(rows, wanted, fees, bp, inst) > budget:
        # Cost is non-decreasing in the factor: bisect for the largest factor that fits.
        lo, hi = 0, FACTOR_SCALE - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _buy_cost(rows, _scaled(rows, wanted, mid, inst), fees, bp, inst) <= budget:
                lo = mid
            else:
                hi = mid - 1
        quantities = _scaled(rows, wanted, lo, inst)
    sized = []
    for row, w, q in zip(rows, wanted, quantities, strict=True):
        reason = INSUFFICIENT_CASH if q < w else ("" if w > 0 else ROUNDED_TO_LOT)
        sized.append(
            replace(
                row,
                quantity=q,
                est_value=q * row.price,
                est_fees=_fee_total(fees, inst(row.symbol), Side.BUY, row.price, q),
                reason=reason,
            )
        )
    return sized


# ------------------------------------------------------------------------------------------ planner
def _target_shares(target: Target, equity: int, price: int) -> int:
    if target.kind is TargetKind.VOLUME:
        return int(target.volume)
    if price <= 0:
        return 0
    if target.kind is TargetKind.VALUE:
        return max(0, int(target.value)) // price
    value = int((Decimal(target.weight) * equity).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, value) // price


_Keyed = TypeVar("_Keyed", Holding, Target)


def _by_symbol(items: list[_Keyed], canon: Callable[[str], str], what: str) -> dict[str, _Keyed]:
    """``items`` by canonical symbol; a symbol listed twice is a ``ValueError`` naming ``what``."""
    by_symbol: dict[str, _Keyed] = {}
    for item in items:
        key = canon(item.symbol)
        if key in by_symbol:
            raise ParameterError(f"{what} {key} listed twice", name="symbol", value=key)
        by_symbol[key] = item
    return by_symbol


def _skip_reason(
    inst: Instrument, ref: MarketRef | None, side: Side, price: int, difference: int, min_trade_value: int
) -> str:
    """Why a trade of ``difference`` shares cannot go now ("" when it can): no price, suspended, buying
    at limit-up, selling at limit-down, or below ``min_trade_value``; checked in that order."""
    if ref is None or price <= 0:
        return NO_PRICE
    if ref.suspended:
        return SUSPENDED
    low, high = _limits(inst, ref)
    if side is Side.BUY and 0 < high <= price:
        return LIMIT_UP
    if side is Side.SELL and low > 0 and price <= low:
        return LIMIT_DOWN
    if abs(difference) * price < min_trade_value:
        return BELOW_MIN_TRADE_VALUE
    return ""


def _sell_row(base: PlanRow, inst: Instrument, sellable: int, fees: FeeSchedule) -> PlanRow:
    """``base`` (current -> target) as a sell: lot rules, then the T+1 clip to ``sellable``."""
    current, target, price = base.current, base.target, base.price
    quantity, reason = sell_quantity(inst, current, target)
    if quantity > sellable:
        lot = round_buy_quantity(inst, current - target) if target > 0 else 0
        if reason == ODD_LOT_TAIL_SOLD_WHOLE and 0 < lot <= sellable:
            quantity, reason = lot, ""  # the tail cannot go whole today (T+1): keep it
        else:
            quantity, reason = sellable, CLIPPED_TO_SELLABLE
    return replace(
        base,
        side=Side.SELL,
        quantity=quantity,
        est_value=quantity * price,
        est_fees=_fee_total(fees, inst, Side.SELL, price, quantity),
        reason=reason,
    )


def plan_rebalance(
    *,
    targets: list[Target],
    holdings: list[Holding],
    cash: int,
    market: dict[str, MarketRef],
    fees: FeeSchedule = _DEFAULT_FEES,
    min_trade_value: int = 0,
    fee_buffer_bp: int = 10,
    liquidate_unlisted: bool = True,
    instrument: InstrumentFn = instrument_for,
) -> Plan:
    """The orders that bring ``holdings`` to ``targets`` (see the module docstring for the rules)."""
    if cash < 0 or min_trade_value < 0 or fee_buffer_bp < 0:
        raise ParameterError(
            "cash, min_trade_value and fee_buffer_bp must be >= 0",
            value=(cash, min_trade_value, fee_buffer_bp),
        )

    def canon(symbol: str) -> str:
        return instrument(symbol).symbol

    held = _by_symbol(holdings, canon, "holding")
    wanted = _by_symbol(targets, canon, "target")
    refs = {canon(s): ref for s, ref in market.items()}

    def price_of(symbol: str) -> int:
        ref = refs.get(symbol)
        return ref.price if ref is not None and ref.price > 0 else 0

    equity = cash + sum(h.quantity * price_of(s) for s, h in held.items())

    symbols = list(wanted) + [s for s in held if s not in wanted]
    sells: list[PlanRow] = []
    buys: list[PlanRow] = []
    idle: list[PlanRow] = []
    for symbol in symbols:
        inst = instrument(symbol)
        holding = held.get(symbol)
        current = holding.quantity if holding else 0
        sellable = holding.sellable if holding else 0
        ref = refs.get(symbol)
        price = price_of(symbol)
        target_obj = wanted.get(symbol)
        if target_obj is None:
            if not liquidate_unlisted:
                continue
            target = 0
        else:
            target = _target_shares(target_obj, equity, price)
        if target < 0:
            raise ParameterError(f"target for {symbol} is negative: {target}", name="target", value=target)
        difference = target - current
        base = PlanRow(
            symbol=symbol,
            current=current,
            target=target,
            difference=difference,
            side=None,
            quantity=0,
            price=price,
            est_value=0,
            est_fees=0,
            reason="",
        )
        if difference == 0:
            idle.append(base)
            continue
        side = Side.BUY if difference > 0 else Side.SELL
        skip = _skip_reason(inst, ref, side, price, difference, min_trade_value)
        if skip:
            (sells if side is Side.SELL else buys).append(replace(base, side=side, reason=skip))
            continue
        if side is Side.BUY:
            buys.append(replace(base, side=side))  # sized below, all buys together
            continue
        sells.append(_sell_row(base, inst, sellable, fees))

    sell_proceeds = sum(r.est_value - r.est_fees for r in sells)
    budget = cash + sell_proceeds
    buys = _size_rows(buys, budget, fees, fee_buffer_bp, instrument)
    buy_cost = sum(r.est_value + r.est_fees for r in buys)
    return Plan(
        rows=sells + buys + idle, equity=equity, cash=cash, sell_proceeds=sell_proceeds, buy_cost=buy_cost
    )


def _size_rows(
    rows: Iterable[PlanRow], budget: int, fees: FeeSchedule, bp: int, instrument: InstrumentFn
) -> list[PlanRow]:
    """Skipped buy rows pass through; the others are sized from their difference within ``budget``."""
    rows = list(rows)
    live = [r for r in rows if r.reason not in _BUY_SKIPS]
    wanted = [round_buy_quantity(instrument(r.symbol), r.difference) for r in live]
    sized = iter(_size(live, wanted, max(0, budget), fees, bp, instrument))
    return [next(sized) if r.reason not in _BUY_SKIPS else r for r in rows]


def size_buys(
    plan: Plan,
    confirmed_cash: int,
    *,
    fees: FeeSchedule = _DEFAULT_FEES,
    fee_buffer_bp: int = 10,
    instrument: InstrumentFn = instrument_for,
) -> list[PlanRow]:
    """The buy leg re-sized to ``confirmed_cash`` (cash actually available after the sells filled).

    Each buy starts again from its full lot-rounded difference and is scaled down pro rata if needed, so
    Σ(value + estimated fees + buffer) <= ``confirmed_cash``. Returns the rows to submit (quantity > 0).
    """
    if fee_buffer_bp < 0:
        raise ParameterError(f"must be >= 0, got {fee_buffer_bp}", name="fee_buffer_bp", value=fee_buffer_bp)
    candidates = [r for r in plan.rows if r.side is Side.BUY and r.reason not in _BUY_SKIPS]
    sized = _size_rows(candidates, confirmed_cash, fees, fee_buffer_bp, instrument)
    return [r for r in sized if r.quantity > 0]


# ------------------------------------------------------------------------------------------ operations
def sliced_commission(
    fees: FeeSchedule, inst: Instrument, price: int, quantity: int, min_child_value: int
) -> int:
    """The commission of ``quantity`` at ``price`` sliced as the algorithms slice it with ``min_child_value``
    (milli-yuan): children of the fewest lots worth at least that, the remainder as one last child (the
    most children, the most minimum commissions, it can come to). ``min_child_value`` 0: one child."""
    if quantity <= 0 or price <= 0:
        return 0
    step = (
        round_buy_quantity(inst, -(-min_child_value // price) + inst.buy_step - 1)
        if min_child_value > 0
        else 0
    )
    if step <= 0 or step >= quantity:
        return fees.fees(inst, Side.BUY, price, quantity)[0]
    full, rest = divmod(quantity, step)
    commission = full * fees.fees(inst, Side.BUY, price, step)[0]
    return commission + (fees.fees(inst, Side.BUY, price, rest)[0] if rest else 0)


def fee_warnings(
    plan: Plan,
    fees: FeeSchedule,
    *,
    min_child_value: Callable[[Instrument], int] | None = None,
    instrument: InstrumentFn = instrument_for,
) -> list[str]:
    """A warning per row to trade whose commission, sliced with ``min_child_value(instrument)`` (default:
    the schedule's own, ``FeeSchedule.min_child_value``), exceeds ``COMMISSION_BUDGET_BPS`` of its value."""
    minimum = min_child_value or fees.min_child_value
    out: list[str] = []
    for row in plan.rows:
        if row.side is None or row.quantity <= 0 or row.price <= 0:
            continue
        inst = instrument(row.symbol)
        commission = sliced_commission(fees, inst, row.price, row.quantity, minimum(inst))
        bps = fees_bps(commission, row.est_value)
        if bps > COMMISSION_BUDGET_BPS:
            out.append(
                f"{row.symbol} {row.side.value} {row.quantity}: commission ~{yuan_str(commission)} CNY = "
                f"{bps} bps of {yuan_str(row.est_value)} CNY exceeds the {COMMISSION_BUDGET_BPS} bps budget "
                f"(minimum commission {yuan_str(fees.min_commission)} CNY per child)"
            )
    return out


def targets_liquidate_all(holdings: Iterable[Holding]) -> list[Target]:
    """VOLUME 0 for every holding."""
    return [Target(symbol=h.symbol, kind=TargetKind.VOLUME, volume=0) for h in holdings]


def targets_sell_fraction(
    holdings: Iterable[Holding], fraction: Decimal, *, instrument: InstrumentFn = instrument_for
) -> list[Target]:
    """Sell ``fraction`` (0..1) of every holding: sell floor-to-lot(quantity × fraction), keep the rest.

    A fraction of 1 sells everything; a sell that would leave less than one lot sells the odd tail too.
    The T+1 clip happens in the planner.
    """
    fraction = Decimal(fraction)
    if not Decimal(0) <= fraction <= Decimal(1):
        raise ParameterError(f"must be in [0, 1], got {fraction}", name="fraction", value=fraction)
    out = []
    for h in holdings:
        if fraction == 1:
            keep = 0
        else:
            inst = instrument(h.symbol)
            exact = int((h.quantity * fraction).to_integral_value(rounding=ROUND_FLOOR))
            sell = round_buy_quantity(inst, exact)
            keep = h.quantity - sell
            if sell > 0 and keep < inst.buy_min:
                keep = 0
        out.append(Target(symbol=h.symbol, kind=TargetKind.VOLUME, volume=keep))
    return out


def targets_to_percent(symbols: list[str], percent: Decimal) -> list[Target]:
    """Bring ``symbols`` to ``percent`` (0..100) of equity in total, equal weights.

    Use with ``liquidate_unlisted=False`` to leave the other holdings alone.
    """
    percent = Decimal(percent)
    if not Decimal(0) <= percent <= Decimal(100):
        raise ParameterError(f"must be in [0, 100], got {percent}", name="percent", value=percent)
    if len(set(symbols)) != len(symbols):
        raise ParameterError("listed twice", name="symbols", value=symbols)
    if not symbols:
        return []
    weight = percent / 100 / len(symbols)
    return [Target(symbol=s, kind=TargetKind.WEIGHT, weight=weight) for s in symbols]


def targets_sell_where(holdings: Iterable[Holding], predicate: Callable[[str], bool]) -> list[Target]:
    """VOLUME 0 for every holding whose symbol matches ``predicate``.

    Use with ``liquidate_unlisted=False`` to leave the other holdings alone.
    """
    return [
        Target(symbol=h.symbol, kind=TargetKind.VOLUME, volume=0) for h in holdings if predicate(h.symbol)
    ]
