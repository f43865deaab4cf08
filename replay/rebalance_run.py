"""Run a rebalance (or liquidation, or any targets) on the simulated exchange over a historical day.

The plan is made from the account and the market as of the window's start, then executed by
``algos.rebalance.Rebalance``: the sell leg first, then the buy leg sized from the confirmed cash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zhixing.algos.rebalance import Rebalance
from zhixing.engine.market import DayRules, price_limits
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import Holding, MarketRef, Plan, plan_rebalance
from zhixing.engine.portfolio.targets import Target
from zhixing.replay.data import MarketData
from zhixing.replay.harness import Progress, ReplayConfig, ReplayResult, open_session
from zhixing.replay.report import build_report


@dataclass(slots=True, kw_only=True)
class RebalanceOptions:
    start_ns: int
    end_ns: int
    sell_end_ns: int | None = None
    algo: str = "twap"
    params: dict[str, str] = field(default_factory=dict)
    min_trade_value: int = 0  # milli-yuan
    fee_buffer_bp: int = 10
    liquidate_unlisted: bool = True


@dataclass(slots=True)
class RebalanceResult:
    plan: Plan
    rebalance: Rebalance
    replay: ReplayResult
    min_cash_seen: int  # the lowest account cash after any fill (never negative)


def market_refs(market: MarketData, at_ns: int, rules: DayRules) -> dict[str, MarketRef]:
    """Reference prices at ``at_ns``: last (or mid), prev close and the day's limits, per symbol (data
    without limits: the band of ``rules``, the replayed day's for the symbol's status).

    A symbol with no snapshot by then, or none that traded, counts as suspended for the plan.
    """
    refs: dict[str, MarketRef] = {}
    for symbol, day in market.days.items():
        i = day.index_at(at_ns)
        inst = rules.instrument(symbol)
        low, high = day.low_limit, day.high_limit
        if (low <= 0 or high <= 0) and day.prev_close > 0:
            low, high = price_limits(inst, day.prev_close)
        if i < 0:
            refs[symbol] = MarketRef(
                symbol=symbol,
                price=day.prev_close,
                prev_close=day.prev_close,
                high_limit=high,
                low_limit=low,
                suspended=False,
            )
            continue
        bid, ask = int(day.bid_px[i, 0]), int(day.ask_px[i, 0])
        price = int(day.last[i]) or ((bid + ask) // 2 if bid > 0 and ask > 0 else day.prev_close)
        refs[symbol] = MarketRef(
            symbol=symbol,
            price=price,
            prev_close=day.prev_close,
            high_limit=high,
            low_limit=low,
            suspended=int(day.cum_volume[-1]) == 0,
        )
    return refs


def plan_for(
    market: MarketData, targets: list[Target], config: ReplayConfig, options: RebalanceOptions
) -> Plan:
    """The plan of the replayed day: its stamp duty and transfer fee on the account's commission, and its
    lots and bands (``config.market_rules``; a day outside the table is ``RulesCoverageError``)."""
    rules = config.market_rules.on(market.trade_date)
    holdings = [Holding(symbol=s, quantity=q, sellable=q) for s, q in sorted(config.positions.items())]
    return plan_rebalance(
        targets=targets,
        holdings=holdings,
        cash=config.cash,
        market=market_refs(market, options.start_ns, rules),
        fees=rules.fees(config.fees),
        min_trade_value=options.min_trade_value,
        fee_buffer_bp=options.fee_buffer_bp,
        liquidate_unlisted=options.liquidate_unlisted,
        instrument=rules.instrument,
    )


async def run_rebalance(
    market: MarketData,
    targets: list[Target],
    config: ReplayConfig,
    options: RebalanceOptions,
    *,
    progress: Progress | None = None,
) -> RebalanceResult:
    plan = plan_for(market, targets, config, options)
    session = await open_session(market, config, options.start_ns)
    lowest = [session.account.cash]
    try:

        def watch_cash(_: object) -> None:
            lowest[0] = min(lowest[0], session.account.cash)

        from zhixing.engine.events import OrderFilled  # local: only this driver watches cash per fill

        session.bus.subscribe(OrderFilled, watch_cash)

        def on_parent(parent: ParentOrder) -> None:
            session.store.stage_parent(parent.to_row())
            session.record_arrival(parent)

        rebalance = Rebalance(
            session.ctx,
            plan,
            account=session.account,
            start_ns=options.start_ns,
            end_ns=options.end_ns,
            sell_end_ns=options.sell_end_ns,
            algo=options.algo,
            params=options.params,
            fees=session.engine.fees_today(),  # the buy leg is sized at the replayed day's rates
            fee_buffer_bp=options.fee_buffer_bp,
            on_parent=on_parent,
        )
        session.engine.add_basket(rebalance.basket)
        rebalance.start()
        await session.store.commit()
        await session.run(options.end_ns, lambda: rebalance.done, progress)
        for parent in rebalance.parents:
            session.store.stage_parent(parent.to_row())
        await session.save_algos(rebalance.basket)
        report = build_report(
            rebalance.parents, rebalance.basket, session.oms, market, session.arrival, session.engine.risk
        )
        replay = ReplayResult(
            report=report,
            oms=session.oms,
            exchange=session.exchange,
            basket=rebalance.basket,
            db_path=session.db_path,
            fills=session.fills,
            market=market,
        )
        return RebalanceResult(plan=plan, rebalance=rebalance, replay=replay, min_cash_seen=lowest[0])
    finally:
        await session.store.close()
