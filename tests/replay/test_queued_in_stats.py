"""The algorithm sees a child waiting for the rate window as queued, not denied (issue 20): ``stats()``
has ``queued`` (the shares of its INITIALIZED children the gate holds back), counted in its working
quantity, and the replay report's parent rows carry it."""

from __future__ import annotations

from pathlib import Path

from tests.replay.test_recovery import DATA
from zhixing.algos.basket import Basket
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.engine.risk_controls import SECOND_NS, RiskLimits
from zhixing.replay.data import load_snapshots
from zhixing.replay.harness import ReplayConfig, open_session
from zhixing.replay.report import build_report

SYMBOLS = ["600258.SH", "600446.SH"]


async def test_children_over_the_cap_are_queued_in_the_algorithms_stats_and_the_report(
    tmp_path: Path,
) -> None:
    market = load_snapshots(DATA, symbols=SYMBOLS)
    day = market.trade_date
    start = shanghai_ns(day, "09:30")
    config = ReplayConfig(
        cash=10**11,
        db_path=tmp_path / "j.db",
        # 5 a second, 20% kept for cancels: 4 orders go in the first window, the other 4 wait
        risk=RiskLimits(max_messages_per_second=5, cancel_reserve_pct=20, duplicate_window_ns=0),
    )
    session = await open_session(market, config, start)
    try:
        basket = Basket(session.ctx)
        session.engine.add_basket(basket)
        parents = [
            ParentOrder(
                parent_id=f"Q{i}",
                symbol=SYMBOLS[i % 2],
                side=Side.BUY,
                quantity=200,  # one child of 200 each, at the start
                start_ns=start,
                end_ns=shanghai_ns(day, "09:40"),
                algo="twap",
                params={"interval_s": "600", "price_policy": "passive"},
            )
            for i in range(8)
        ]
        for parent in parents:
            session.store.stage_parent(parent.to_row())
            basket.add(parent)
        basket.start()
        await session.store.commit()
        await session.run(start + SECOND_NS // 2, lambda: basket.done, expire=False)

        waiting = {o.parent_id for o in session.oms.orders.values() if o.status is OrderStatus.INITIALIZED}
        assert len(waiting) == 4
        for parent in parents:
            stats = basket.algos[parent.parent_id].stats()
            if parent.parent_id in waiting:
                assert stats["queued"] == 200  # queued, not denied: still working for the algorithm
                assert stats["working_quantity"] == 200
                assert stats["children_denied"] == 0
            else:
                assert stats["queued"] == 0
        report = build_report(parents, basket, session.oms, market, session.arrival, session.engine.risk)
        assert {r.parent_id: r.queued for r in report.parents} == {
            p.parent_id: 200 if p.parent_id in waiting else 0 for p in parents
        }

        # the window rolls: the queued children are sent, nothing is queued any more
        await session.run(start + 3 * SECOND_NS, lambda: False, expire=False)
        assert all(basket.algos[p.parent_id].stats()["queued"] == 0 for p in parents)
        assert all(o.status is not OrderStatus.INITIALIZED for o in session.oms.orders.values())
    finally:
        await session.store.close()
