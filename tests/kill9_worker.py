"""A replay worker that ``tests/replay/test_kill9.py`` kills with SIGKILL and starts again.

``python tests/kill9_worker.py DIR [--kill-after engine:N | broker:N] [--downtime-ms MS]``

DIR holds the engine's journal (``engine.db``) and the durable simulated broker's own journal
(``broker.db``, ``replay.recovery.DurableSimBroker``). A first start runs a small TWAP basket on real
snapshots from 09:30; a start that finds parents in the journal restarts: the broker is rebuilt from its
journal and run on alone to ``max(last journaled instant) + downtime``, then the engine reconciles
(``engine.reconcile.recover``) and resumes the basket from the journaled algorithm states.

``--kill-after engine:N``: after the N-th journal commit of this process is durable (for a commit of new
intents: before they are sent), print ``KILLPOINT`` and block until killed. ``broker:N``: the same after
the N-th request the broker journaled (sent, nothing answered yet). At the end of the day the worker prints
``DONE`` and a JSON summary of both sides' books on one line. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from the test
    sys.path.insert(0, str(ROOT))

from zhixing.algos.basket import Basket  # noqa: E402
from zhixing.engine.enums import Side  # noqa: E402
from zhixing.engine.logs import configure_logging  # noqa: E402
from zhixing.engine.market import shanghai_ns  # noqa: E402
from zhixing.engine.parents import ParentOrder  # noqa: E402
from zhixing.engine.store import StateStore  # noqa: E402
from zhixing.replay.data import MarketData, load_snapshots  # noqa: E402
from zhixing.replay.harness import ReplayConfig  # noqa: E402
from zhixing.replay.recovery import (  # noqa: E402
    SIM_NOW_KEY,
    DurableSimBroker,
    build_session,
    resume,
    run_exchange_alone,
)

DATA = ROOT / "replay" / "sample_data" / "snapshots_20211201"
SYMBOLS = ["600258.SH", "600446.SH", "600566.SH"]
KILLPOINT = "KILLPOINT"
DONE = "DONE"


def parents_for(market: MarketData) -> tuple[list[ParentOrder], dict[str, int]]:
    """Two buys and a sell over 09:30-09:36, 30 s slices."""
    day = market.trade_date
    start, end = shanghai_ns(day, "09:30"), shanghai_ns(day, "09:36")
    plan = [("600258.SH", Side.BUY, 6_000), ("600446.SH", Side.SELL, 3_000), ("600566.SH", Side.BUY, 3_000)]
    parents = [
        ParentOrder(
            parent_id=f"K{i}",
            symbol=symbol,
            side=side,
            quantity=quantity,
            start_ns=start,
            end_ns=end,
            algo="twap",
            params={"interval_s": "30", "min_child_value": "0"},  # many small children: many kill points
        )
        for i, (symbol, side, quantity) in enumerate(plan)
    ]
    return parents, {"600446.SH": 10_000}


class KillableStore(StateStore):
    """The engine journal, pausing for the kill after its ``pause_after``-th commit."""

    pause_after = 0
    commits = 0

    async def commit(self) -> None:
        had = self.has_staged
        await super().commit()
        if had:
            KillableStore.commits += 1
            if KillableStore.commits == KillableStore.pause_after:
                wait_for_kill()


def wait_for_kill() -> None:
    print(KILLPOINT, flush=True)
    sys.stdin.readline()  # blocks until SIGKILL (the test never writes)
    raise SystemExit("not killed")


async def main(directory: Path, kill_after: str | None, downtime_ns: int) -> dict[str, Any]:
    market = load_snapshots(DATA, symbols=SYMBOLS)
    parents, positions = parents_for(market)
    day_open = shanghai_ns(market.trade_date, "09:15")
    end = parents[0].end_ns + 60 * 1_000_000_000
    config = ReplayConfig(
        cash=10**11, positions=positions, db_path=directory / "engine.db", synchronous="NORMAL"
    )
    kind, _, count = (kill_after or ":").partition(":")
    store = await KillableStore.open(directory / "engine.db", synchronous="NORMAL")
    broker = await DurableSimBroker.open(
        directory / "broker.db", market, config, start_ns=parents[0].start_ns
    )
    if kind == "engine":
        KillableStore.pause_after = int(count)
    elif kind == "broker":
        limit = broker.stats.requests + int(count)
        broker.after_request = lambda seq: wait_for_kill() if seq == limit else None
    try:
        fresh = not await store.load_parents()
        if not fresh:
            last = max(int(await store.get_meta(SIM_NOW_KEY) or 0), broker.last_request_ns())
            run_exchange_alone(broker.clock, max(last, broker.clock.now_ns()) + downtime_ns)
        session = await build_session(
            market, config, clock=broker.clock, exchange=broker.exchange, adapter=broker, store=store
        )
        if fresh:
            basket = Basket(session.ctx)
            session.engine.add_basket(basket)
            for parent in parents:
                parent.created_ns = session.clock.now_ns()
                store.stage_parent(parent.to_row())
                basket.add(parent)
            basket.start()
            await store.commit()
        else:
            resumed = await resume(session, trading_day_start_ns=day_open)
            if not resumed.report.ok:
                raise SystemExit(f"reconciliation failed: {resumed.report.mismatches}")
            basket = resumed.basket
        await session.run(end, lambda: basket.done, expire=False)
        if session.clock.now_ns() < end:
            run_exchange_alone(session.clock, end)
        broker.expire_all()  # end of day at the exchange
        await session.run(end + 10 * 1_000_000_000, lambda: True, expire=False)
        return await summary(session.oms.orders, basket, broker, store)
    finally:
        await store.close()
        await broker.close()


async def summary(
    orders: dict[str, Any], basket: Basket, broker: DurableSimBroker, store: StateStore
) -> dict[str, Any]:
    return {
        "parents": {pid: algo.filled_quantity for pid, algo in basket.algos.items()},
        "parent_quantity": {pid: algo.parent.quantity for pid, algo in basket.algos.items()},
        "children": {
            pid: sum(o.filled_quantity for o in orders.values() if o.parent_id == pid) for pid in basket.algos
        },
        "engine_orders": {
            cid: [o.status.value, o.filled_quantity, o.quantity, o.parent_id] for cid, o in orders.items()
        },
        "engine_positions": {s: q for s, (q, _, _) in (await store.load_positions()).items() if q},
        "broker_orders": {
            r.client_order_id: [r.status.value, r.filled_quantity] for r in await broker.query_orders()
        },
        "broker_positions": {p.symbol: p.quantity for p in await broker.query_positions() if p.quantity},
        "broker_submits": broker.stats.submits,
        "trades": sorted(
            (t.client_order_id, t.trade_id, t.price, t.quantity) for t in await broker.query_trades()
        ),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--kill-after")
    parser.add_argument("--downtime-ms", type=int, default=2_000)
    args = parser.parse_args()
    configure_logging("error")
    result = asyncio.run(main(args.dir, args.kill_after, args.downtime_ms * 1_000_000))
    print(DONE, json.dumps(result, sort_keys=True), flush=True)
