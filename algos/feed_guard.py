"""Pause a symbol's algorithms while its feed is stale, resume them when quotes return.

Wire ``StaleGuard.on_stale`` / ``on_fresh`` into ``engine.feed.QuoteBook``. Pausing cancels the working
children (their prices were set from a market we can no longer see) and stops slicing; resuming
re-plans from confirmed fills without a catch-up burst (``ExecAlgo.resume``). Algorithms the operator
paused stay paused: the guard resumes only what it paused itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from zhixing.algos.base import ExecAlgo
from zhixing.engine.reasons import Unfilled, UnfilledCode

log = structlog.get_logger("zhixing.algos")


class StaleGuard:
    def __init__(self, algos: Mapping[str, ExecAlgo]) -> None:
        self.algos = algos  # parent id -> algorithm, read live (e.g. an ``AlgoDirectory``)
        self.paused_by_guard: set[str] = set()
        self.pauses = 0
        self.resumes = 0

    def on_stale(self, symbol: str) -> None:
        for parent_id, algo in self.algos.items():
            if algo.parent.symbol != symbol or algo.done or algo.paused:
                continue
            algo.pause(Unfilled(UnfilledCode.PAUSED, "stale quotes"))
            self.paused_by_guard.add(parent_id)
            self.pauses += 1
            log.warning("algo_paused_stale_feed", parent_id=parent_id, symbol=symbol)

    def on_fresh(self, symbol: str) -> None:
        for parent_id in sorted(self.paused_by_guard):
            algo = self.algos[parent_id]
            if algo.parent.symbol != symbol:
                continue
            self.paused_by_guard.discard(parent_id)
            if not algo.done:
                algo.resume()
                self.resumes += 1
                log.info("algo_resumed_fresh_feed", parent_id=parent_id, symbol=symbol)
