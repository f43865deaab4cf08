"""The seeded chaos suite: a multi-symbol TWAP basket on real data through a fault-injecting wire.

For each seed, one ``FaultPlan`` (drop acks, duplicate fills, delay and reorder events, drop reject
callbacks) sits between the engine and the simulated exchange. After the day, the books are checked
against the exchange's (RELIABILITY invariants):

- **I1** each client order id maps to at most one exchange order, and every exchange order is ours;
- **I2** for every order, the engine's filled quantity equals the exchange's and never exceeds the order;
  every parent's children together never exceed the parent;
- **I3** the engine's positions equal the exchange's;
- **I4** every order the engine journaled ended resolved (terminal), none lost.

A failing seed is printed with its figures and replays exactly from the seed.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.enums import Side
from engine.events import OrderStatusReport, PositionReport
from engine.market import shanghai_ns
from engine.parents import ParentOrder
from replay.data import MarketData
from replay.faults import FAULTS, FaultPlan, FaultyAdapter
from replay.harness import ReplayConfig, ReplaySession, open_session


@dataclass(slots=True)
class SeedOutcome:
    seed: int
    injected: dict[str, int]
    orders: int
    fills: int
    lost_orders: int
    duplicate_orders: int
    order_overfills: int
    parent_overfills: int
    fill_mismatches: int
    position_mismatches: int
    unresolved: int
    duplicate_fills_ignored: int
    unacked_resolved_by_fills: int
    inflight_resolved_by_query: int = 0
    inflight_resolved_by_policy: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return not self.problems


def fault_plan(seed: int) -> FaultPlan:
    """The fault mix of one seed: the seed also picks how hostile the wire is."""
    rng = random.Random(seed * 7919 + 1)
    return FaultPlan(
        seed=seed,
        drop_ack=rng.choice((0.0, 0.05, 0.2)),
        duplicate_fill=rng.choice((0.0, 0.1, 0.3)),
        delay_ns_max=rng.choice((0, 50_000_000, 400_000_000)),
        reorder=rng.choice((0.0, 0.05, 0.2)),
        drop_reject_callback=0.0,
    )


def basket_for(market: MarketData, symbols: int, seed: int) -> tuple[list[ParentOrder], dict[str, int]]:
    """Half buys, half sells (from positions held before the day), seeded sizes, 09:30-10:15."""
    rng = random.Random(seed)
    start = shanghai_ns(market.trade_date, "09:30")
    end = shanghai_ns(market.trade_date, "10:15")
    parents: list[ParentOrder] = []
    positions: dict[str, int] = {}
    for i, symbol in enumerate(market.symbols[:symbols]):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        lot = 200 if symbol.startswith("688") else 100
        quantity = rng.randrange(20, 200) * lot
        if side is Side.SELL:
            positions[symbol] = quantity + rng.choice((0, 37, 100))
        parents.append(
            ParentOrder(
                parent_id=f"C{i:04d}",
                symbol=symbol,
                side=side,
                quantity=quantity,
                start_ns=start,
                end_ns=end,
                algo="twap",
                params={"interval_s": "30"},
            )
        )
    return parents, positions


async def run_seed(market: MarketData, seed: int, symbols: int) -> SeedOutcome:
    from algos.basket import Basket  # the composition lives here, not in the engine

    parents, positions = basket_for(market, symbols, seed)
    plan = fault_plan(seed)
    holder: list[FaultyAdapter] = []

    def wrap(exchange: object, clock: object) -> FaultyAdapter:
        adapter = FaultyAdapter(exchange, plan, clock)  # type: ignore[arg-type]
        holder.append(adapter)
        return adapter

    with tempfile.TemporaryDirectory(prefix="zhixing-chaos-") as tmp:
        config = ReplayConfig(
            cash=10**13, positions=positions, db_path=Path(tmp) / "chaos.db", synchronous="OFF"
        )
        session = await open_session(market, config, parents[0].start_ns, wrap=wrap)
        try:
            basket = Basket(session.ctx)
            for parent in parents:
                basket.add(parent)
            basket.start()
            await session.run(parents[0].end_ns + 60 * 1_000_000_000, lambda: basket.done)
            journaled = [o.client_order_id for o in await session.store.load_orders()]
            venue_reports = await session.exchange.query_orders()
            venue_positions = await session.exchange.query_positions()
        finally:
            await session.store.close()
    return check(session, parents, holder[0], journaled, venue_reports, venue_positions, seed)


def check(
    session: ReplaySession,
    parents: list[ParentOrder],
    adapter: FaultyAdapter,
    journaled: list[str],
    venue_reports: list[OrderStatusReport],
    venue_positions: list[PositionReport],
    seed: int,
) -> SeedOutcome:
    """The oracle: the exchange's own reports against the engine's books."""
    oms = session.oms
    venue_orders = {r.client_order_id: r for r in venue_reports}
    counts = Counter(r.client_order_id for r in venue_reports)
    problems: list[str] = []
    duplicate_orders = sum(n - 1 for n in counts.values() if n > 1)
    foreign = [cid for cid in venue_orders if cid not in oms.orders]
    lost = [cid for cid in journaled if cid not in oms.orders]
    order_overfills = sum(1 for o in oms.orders.values() if o.filled_quantity > o.quantity)
    fill_mismatch = [
        cid
        for cid, report in venue_orders.items()
        if cid in oms.orders and oms.orders[cid].filled_quantity != report.filled_quantity
    ]
    parent_overfills = [
        p.parent_id
        for p in parents
        if sum(c.filled_quantity for c in oms.children_of(p.parent_id)) > p.quantity
    ]
    engine_pos = {s: p.quantity for s, p in session.account.positions.items() if p.quantity}
    venue_pos = {p.symbol: p.quantity for p in venue_positions if p.quantity}
    position_mismatch = sorted(set(engine_pos.items()) ^ set(venue_pos.items()))
    unresolved = [o.client_order_id for o in oms.orders.values() if not o.is_terminal]
    unacked = sum(1 for o in oms.orders.values() if o.filled_quantity and not o.broker_order_id)
    checks: list[tuple[str, int | list[object]]] = [
        ("duplicate exchange orders", duplicate_orders),
        ("foreign exchange orders", list(foreign)),
        ("lost orders", list(lost)),
        ("order overfills", order_overfills),
        ("fill mismatches", list(fill_mismatch)),
        ("parent overfills", list(parent_overfills)),
        ("position mismatches", list(position_mismatch)),
        ("unresolved orders", list(unresolved)),
    ]
    for label, bad in checks:
        if bad:
            problems.append(f"{label}: {bad if isinstance(bad, int) else bad[:5]}")
    return SeedOutcome(
        seed=seed,
        injected={k: adapter.injected.get(k, 0) for k in FAULTS},
        orders=len(oms.orders),
        fills=len(session.fills),
        lost_orders=len(lost),
        duplicate_orders=duplicate_orders,
        order_overfills=order_overfills,
        parent_overfills=len(parent_overfills),
        fill_mismatches=len(fill_mismatch),
        position_mismatches=len(position_mismatch),
        unresolved=len(unresolved),
        duplicate_fills_ignored=oms.counters.duplicate_fills,
        unacked_resolved_by_fills=unacked,
        inflight_resolved_by_query=session.inflight.stats.resolved_by_query,
        inflight_resolved_by_policy=len(session.inflight.stats.resolved_by_policy),
        problems=problems,
    )
