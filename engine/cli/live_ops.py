"""Portfolio operations through a configured route: ``zhixing rebalance TARGETS --config FILE`` and the
others. The account is the route's (reconciled first); the plan is priced from the feed; the window runs
from now to ``--end`` today. With a sim route the recorded day stands in for today, from ``--start``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from zhixing.engine.cli.replay_cmd import _params
from zhixing.engine.cli.routes import load_checked, run_route
from zhixing.engine.config import Config
from zhixing.engine.errors import ConfigError, InputError
from zhixing.engine.inputs import parse_cash
from zhixing.engine.instance_lock import InstanceLock
from zhixing.engine.market import shanghai_ns, trading_date_of
from zhixing.engine.no_feed import NO_QUOTES
from zhixing.engine.notify import execution_report


def run_live(args: argparse.Namespace, *, execute: bool) -> int:
    if getattr(args, "db", None) is not None:
        raise InputError(
            "--db is for --replay-data runs; a --config run journals to its [store] path", field="db"
        )
    config = load_checked(args.config, adapter=args.adapter)
    if config.feed.kind == "none":  # before anything connects: the plan prices every name from the feed
        raise ConfigError(
            f"{config.path}: key 'feed.kind': zhixing {args.command} plans at live prices: {NO_QUOTES}"
        )
    config.store.path.parent.mkdir(parents=True, exist_ok=True)
    with InstanceLock.for_store(config.store.path):
        return run_route(config, lambda bridge: _run(args, config, execute=execute, gm_bridge=bridge))


async def _run(args: argparse.Namespace, config: Config, *, execute: bool, gm_bridge: Any = None) -> int:
    from zhixing.algos.registry import ALGOS
    from zhixing.engine.cli.portfolio_cmd import Today
    from zhixing.engine.cli.run_cmd import open_configured, print_shutdown

    algo = getattr(args, "algo", "twap")
    params = _params(getattr(args, "param", []))
    if algo not in ALGOS:
        raise InputError(f"unknown algo {algo!r}; known: {', '.join(sorted(ALGOS))}", field="algo")
    try:
        ALGOS[algo].params_type.parse(params, algo=algo)
    except ValueError as exc:
        raise InputError(str(exc), field="param") from None
    run = await open_configured(config, start=args.start, until=args.end, gm_bridge=gm_bridge)
    try:
        runner = run.runner
        if run.session.oms.halted_reason is not None:
            print(f"zhixing: halted ({run.session.oms.halted_reason}); nothing is traded")
            return 1
        # a targets file must be today's, by the engine clock (engine.target_snapshots)
        today = Today(trading_date_of(run.clock.now_ns()), run.session.calendar)
        targets = args.build(args, runner.holdings(), today)
        plan = await runner.plan_targets(
            targets,
            min_trade_value=parse_cash(args.min_trade_value, flag="--min-trade-value"),
            liquidate_unlisted=getattr(args, "liquidate_unlisted", True),
        )
        if not execute:
            print(plan.table())
            return 0
        sell_end = shanghai_ns(today.day, args.sell_end) if getattr(args, "sell_end", None) else None
        rebalance = await runner.execute_plan(
            plan, name=args.command, end_ns=run.end_ns, algo=algo, params=params, sell_end_ns=sell_end
        )
        await run.drive(asyncio.Event(), done=lambda: rebalance.done)
    finally:
        shutdown = await run.close()
        print_shutdown(shutdown)
    report = execution_report(runner.results(), account=config.account.id)
    if getattr(args, "json", False):
        print(json.dumps({"plan": plan.table(), "report": report.body}, ensure_ascii=False, indent=2))
    else:
        print(plan.table())
        print()
        print(report.body)
    return 0 if shutdown is None or shutdown.ok else 1
