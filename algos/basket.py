"""A basket: many parents, across symbols, each run by its own independent algorithm."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from zhixing.algos.base import AlgoContext, ExecAlgo
from zhixing.algos.params import parameter_error
from zhixing.algos.registry import create_algo
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import Unfilled, UnfilledCode


class AlgoJournal(Protocol):
    """What ``Basket.journal`` needs of a store (``engine.store.StateStore`` provides it)."""

    def stage_algo_plan(
        self, parent_id: str, algo: str, plan_version: int, plan: dict[str, object]
    ) -> None: ...

    def stage_algo_progress(
        self, parent_id: str, algo: str, plan_version: int, progress: dict[str, object]
    ) -> None: ...

    def stage_parent(self, parent: dict[str, object]) -> None: ...


class AlgoStateSource(Protocol):
    """What ``Basket.resume_from`` reads (``engine.store.StateStore`` provides it)."""

    async def load_parents(self) -> list[dict[str, object]]: ...

    async def load_algo_states(self) -> dict[str, tuple[str, dict[str, object]]]: ...


class Basket:
    def __init__(self, ctx: AlgoContext) -> None:
        self.ctx = ctx
        self.algos: dict[str, ExecAlgo] = {}
        self._started = False

    def add(self, parent: ParentOrder) -> ExecAlgo:
        """Create the parent's algorithm; it starts at once if the basket is already running.

        A new parent's id must be new: an id that already has orders (an earlier day's parent, a parent
        resumed after a restart) is refused, since its algorithm would take those orders for its own
        fills (``Basket.restore`` is the way to resume a journaled parent)."""
        if parent.parent_id in self.algos:
            raise parameter_error(
                f"parent {parent.parent_id} is already in the basket",
                name="parent_id",
                value=parent.parent_id,
            )
        if self.ctx.oms.children_of(parent.parent_id):
            raise parameter_error(
                f"parent id {parent.parent_id} already has orders of an earlier parent; "
                "a new parent needs a new id (ids carry the trading day)",
                name="parent_id",
                value=parent.parent_id,
            )
        algo = create_algo(parent, self.ctx)
        self.algos[parent.parent_id] = algo
        if self._started:
            algo.start()
        return algo

    @classmethod
    def restore(
        cls,
        ctx: AlgoContext,
        parents: Iterable[Mapping[str, object]],
        states: Mapping[str, tuple[str, Mapping[str, object]]],
    ) -> Basket:
        """A basket rebuilt after a restart, not yet started: one algorithm per journaled parent,
        restored from its journaled state.

        Call it after ``engine.reconcile.recover`` has rebuilt and reconciled the orders: ``start()`` then
        re-attaches each parent's children (``ctx.oms.children_of``) and sizes what is left from their
        confirmed fills, so nothing is sent twice, lost or overfilled. A parent journaled DONE or
        CANCELED stays finished (its state says so; without a state it is finished here, nothing sent).
        A parent without a state (crash before its first journal) starts from its row, like a new one.
        """
        basket = cls(ctx)
        for row in parents:
            parent = ParentOrder.from_row(dict(row))
            final = parent.status
            algo = create_algo(parent, ctx)
            basket.algos[parent.parent_id] = algo
            saved = states.get(parent.parent_id)
            if saved is not None:
                algo_name, state = saved
                if algo_name != parent.algo:
                    raise parameter_error(
                        f"parent {parent.parent_id}: journaled state is for algo {algo_name!r}, "
                        f"the parent runs {parent.algo!r}",
                        name="algo",
                        value=algo_name,
                    )
                algo.restore(state)
            elif final is ParentStatus.CANCELED:
                algo.cancel()  # nothing tracked yet: finishes at once, sends nothing
            elif final is ParentStatus.DONE:
                algo.stop(Unfilled(UnfilledCode.ENDED))
        return basket

    @classmethod
    async def resume_from(cls, ctx: AlgoContext, store: AlgoStateSource) -> Basket:
        """``restore`` with the parents and algorithm states read from ``store``."""
        return cls.restore(ctx, await store.load_parents(), await store.load_algo_states())

    def start(self) -> None:
        self._started = True
        for algo in self.algos.values():
            algo.start()

    def cancel(self) -> None:
        for algo in self.algos.values():
            algo.cancel()

    def pause(self) -> None:
        for algo in self.algos.values():
            algo.pause()

    def resume(self) -> None:
        for algo in self.algos.values():
            algo.resume()

    def journal(self, store: AlgoJournal) -> int:
        """Stage the state of every algorithm that changed since the last call (and its parent's row),
        so a restart resumes each one where it was. Returns how many were staged.

        The state goes in two parts: the plan (``plan_state()``, a schedule of kilobytes) only when it
        changed since it was last staged (``plan_dirty``), the progress (``progress_state()``, naming its
        ``plan_version``) at every change; the store joins them back on loading."""
        staged = 0
        for parent_id, algo in self.algos.items():
            if algo.dirty or algo.plan_dirty:
                algo.dirty = False
                name = algo.parent.algo
                if algo.plan_dirty:
                    store.stage_algo_plan(parent_id, name, algo.plan_version, algo.plan_state())
                    algo.plan_dirty = False
                store.stage_algo_progress(parent_id, name, algo.plan_version, algo.progress_state())
                store.stage_parent(algo.parent.to_row())
                staged += 1
        return staged

    @property
    def done(self) -> bool:
        return all(algo.done for algo in self.algos.values())

    def short_without_reason(self) -> list[str]:
        """Parents that ended (or stand paused) short of their quantity with no recorded reason (none, or
        only ``ended``, the word for a journal of old that recorded none): must be none (issue 20: every
        shortfall has a reason). The replay chaos invariants and the tests check it."""
        return [
            f"{parent_id}: {algo.filled_quantity}/{algo.parent.quantity} {algo.phase.value}"
            for parent_id, algo in self.algos.items()
            if (algo.ending or algo.paused)
            and algo.filled_quantity < algo.parent.quantity
            and (algo.unfilled is None or algo.unfilled.code is UnfilledCode.ENDED)
        ]

    def stats(self) -> dict[str, object]:
        """Totals over the basket and each parent's ``stats()`` under ``parents``."""
        per = {parent_id: algo.stats() for parent_id, algo in self.algos.items()}
        return {
            "parents": len(self.algos),
            "done": sum(1 for algo in self.algos.values() if algo.done),
            "quantity": sum(algo.parent.quantity for algo in self.algos.values()),
            "filled_quantity": sum(algo.filled_quantity for algo in self.algos.values()),
            "children_sent": sum(algo.children_sent for algo in self.algos.values()),
            "cancels_sent": sum(algo.cancels_sent for algo in self.algos.values()),
            "by_parent": per,
        }
