"""The job runner's reasons for a shortfall (issue 20): a parent's is its algorithm's typed reason (the
text replay and paper report), else its children's; a planned trade's is its parents' reasons, or
``cash`` when the buy leg was sized down to the cash the sells confirmed and its parent filled all it
was given. Hand-written fakes of the session: only what the runner reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from zhixing.engine.cli.runner import DayRunner, JobOutcome
from zhixing.engine.enums import Side
from zhixing.engine.notify import Message, ParentResult
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import Plan, PlanRow

WINDOW = "window_ended:300 of 1000 working, 700 filled at the end"


def child(reason: str = "", filled: int = 0, price: int = 10_000) -> SimpleNamespace:
    return SimpleNamespace(reason=reason, filled_quantity=filled, filled_value=filled * price)


def runner(
    *,
    children: dict[str, list[SimpleNamespace]] | None = None,
    session_algos: dict[str, Any] | None = None,
    rebalances: list[Any] | None = None,
    told: list[Message] | None = None,
) -> DayRunner:
    kids = children or {}
    session = SimpleNamespace(
        oms=SimpleNamespace(children_of=lambda pid: kids.get(pid, []), halted_reason=None),
        basket=SimpleNamespace(algos=session_algos or {}),
        day=None,
    )
    config = SimpleNamespace(account=SimpleNamespace(id="8800123456"))
    out = DayRunner(
        config=cast(Any, config),
        session=cast(Any, session),
        notify=(told.append if told is not None else lambda m: None),
    )
    out.rebalances.extend(rebalances or [])
    return out


def parent(parent_id: str, quantity: int, side: Side = Side.BUY, symbol: str = "600000.SH") -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id, symbol=symbol, side=side, quantity=quantity, start_ns=0, end_ns=1, algo="twap"
    )


def test_a_parent_short_states_its_algorithms_typed_reason() -> None:
    algo = SimpleNamespace(unfilled_reason=WINDOW)
    rebalance = SimpleNamespace(basket=SimpleNamespace(algos={"R1": algo}))
    resumed = SimpleNamespace(unfilled_reason="limit_up")
    r = runner(rebalances=[rebalance], session_algos={"S1": resumed})
    assert r.unfilled_reason("R1") == WINDOW  # this run's rebalance
    assert r.unfilled_reason("S1") == "limit_up"  # a resumed parent of today, in the session's basket


def test_a_parent_no_algorithm_holds_states_its_childrens_reasons() -> None:
    kids = {
        "X1": [
            child("denied:halted: desk"),
            child(""),
            child("rejected:no money"),
            child("denied:halted: desk"),
        ]
    }
    assert runner(children=kids).unfilled_reason("X1") == "denied:halted: desk; rejected:no money"


def test_a_planned_trade_short_states_its_parents_reasons_and_cash_when_they_have_none() -> None:
    results = [
        ParentResult(
            parent_id="P1",
            symbol="600000.SH",
            side=Side.BUY,
            quantity=500,
            filled=300,
            unfilled_reason="limit_up",
        ),
        ParentResult(
            parent_id="P2", symbol="600000.SH", side=Side.BUY, quantity=500, filled=0, unfilled_reason=WINDOW
        ),
        ParentResult(
            parent_id="P3",
            symbol="600000.SH",
            side=Side.SELL,
            quantity=500,
            filled=0,
            unfilled_reason="limit_down",
        ),  # the other side: not this trade's
        ParentResult(parent_id="P4", symbol="600001.SH", side=Side.BUY, quantity=500, filled=500),
    ]
    assert DayRunner._row_reason(results, "600000.SH", Side.BUY) == f"limit_up; {WINDOW}"
    assert DayRunner._row_reason(results, "600001.SH", Side.BUY) == "cash"  # filled all it was given
    assert DayRunner._row_reason(results, "600002.SH", Side.BUY) == "cash"  # sized out: no parent at all


def test_a_buy_sized_down_to_the_confirmed_cash_ends_partial_with_reason_cash() -> None:
    """Planned 1,000 shares; the sells brought less, the buy leg's parent got 600 and filled them all."""
    row = PlanRow(
        symbol="600000.SH",
        current=0,
        target=1_000,
        difference=1_000,
        side=Side.BUY,
        quantity=1_000,
        price=10_000,
        est_value=10_000_000,
        est_fees=5_000,
        reason="",
    )
    plan = Plan(rows=[row], equity=10_000_000, cash=10_000_000, sell_proceeds=0, buy_cost=10_005_000)
    bought = parent("B1", 600)
    rebalance = SimpleNamespace(plan=plan, parents=[bought], basket=SimpleNamespace(algos={}))
    told: list[Message] = []
    r = runner(children={"B1": [child(filled=600)]}, rebalances=[rebalance], told=told)
    outcome = JobOutcome("rebalance", "execute", 0, "running", "")
    r._rebalance_over(outcome, "0 sells, 1 buys", cast(Any, rebalance))
    assert outcome.status == "partial"
    assert "600000.SH BUY 600/1000 (cash)" in outcome.detail
    assert len(told) == 1
    assert "ended partial" in told[0].subject
    assert "(cash)" in told[0].body
