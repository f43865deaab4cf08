"""An algorithm's lifecycle as a table: every phase change goes through ``ExecAlgo._enter``.

What must hold: the table has a row for every phase; each legal edge is taken by the command that
names it (start, pause, resume, stop, cancel, the last child ending); an illegal edge raises
``IllegalPhaseTransition`` naming both phases and changes nothing; pause, resume, stop, cancel and finish
from each phase do what the table says; a journaled algorithm comes back in the phase it was saved in,
from the journal's old keys (``paused`` / ``finishing`` / ``finished``).
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.fakes import World, calendar, make_world
from zhixing.algos.base import AlgoContext
from zhixing.algos.lifecycle import ENDING, TRANSITIONS, AlgoPhase, check_transition
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.enums import Side
from zhixing.engine.errors import IllegalPhaseTransition, ZhixingError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder, ParentStatus

DAY = date(2021, 12, 1)
SYMBOL = "600000.SH"
P = AlgoPhase


def at(hhmm: str) -> int:
    return shanghai_ns(DAY, hhmm)


def parent() -> ParentOrder:
    return ParentOrder(
        parent_id="P1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=1_000,
        start_ns=at("10:00"),
        end_ns=at("10:05"),
        params={"final_sweep_s": "0"},
    )


async def world() -> World:
    w = await make_world(at("09:59:59"))
    w.quotes.set(SYMBOL, bid=9_990, ask=10_000)
    return w


def algo_in(w: World) -> TwapAlgo:
    return TwapAlgo(
        parent(), AlgoContext(clock=w.clock, oms=w.oms, bus=w.bus, quotes=w.quotes, calendar=calendar())
    )


async def algo_at(phase: AlgoPhase) -> tuple[World, TwapAlgo]:
    """A TWAP brought to ``phase`` by its public commands (FINISHING: a child still working)."""
    w = await world()
    algo = algo_in(w)
    if phase is P.CREATED:
        return w, algo
    algo.start()
    if phase is P.PAUSED:
        algo.pause()
    elif phase is P.FINISHING:
        await w.run_until(at("10:00"))  # the first slice's child works (the fake broker never fills)
        algo.stop()
        await w.oms.flush()  # the child's cancel goes out
    elif phase is P.FINISHED:
        algo.stop()  # nothing working yet: finished at once
    assert algo.phase is phase
    return w, algo


# ------------------------------------------------------------------------------------------ the table
def test_the_table_has_a_row_for_every_phase_and_only_phases() -> None:
    assert set(TRANSITIONS) == set(AlgoPhase)
    assert all(targets <= set(AlgoPhase) for targets in TRANSITIONS.values())


def test_finished_is_final_and_every_other_phase_can_reach_it() -> None:
    assert TRANSITIONS[P.FINISHED] == frozenset()
    reachable = {P.CREATED}
    frontier = [P.CREATED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(AlgoPhase)
    assert {P.FINISHING, P.FINISHED} == ENDING


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in AlgoPhase for t in AlgoPhase if t not in TRANSITIONS[c]],
)
async def test_an_illegal_edge_raises_naming_both_phases_and_changes_nothing(
    current: AlgoPhase, target: AlgoPhase
) -> None:
    _, algo = await algo_at(current)
    state, status = algo.state(), algo.parent.status
    with pytest.raises(IllegalPhaseTransition) as raised:
        algo._enter(target)
    assert isinstance(raised.value, ZhixingError)
    assert (raised.value.current, raised.value.target) == (current, target)
    assert str(current) in str(raised.value)
    assert str(target) in str(raised.value)
    assert algo.phase is current
    assert algo.state() == state
    assert algo.parent.status is status


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in AlgoPhase for t in TRANSITIONS[c]])
def test_every_edge_in_the_table_is_accepted(current: AlgoPhase, target: AlgoPhase) -> None:
    check_transition(current, target)  # does not raise


# ------------------------------------------------------------------------------------------ the commands
async def test_start_runs_a_created_algo_and_is_idempotent() -> None:
    w, algo = await algo_at(P.CREATED)
    algo.start()
    assert algo.phase is P.RUNNING
    assert algo.parent.status is ParentStatus.RUNNING
    algo.start()
    assert algo.phase is P.RUNNING
    await w.run_until(at("10:00"))
    assert len(w.broker.submitted) == 1


async def test_pause_and_resume_from_running() -> None:
    w, algo = await algo_at(P.RUNNING)
    algo.pause()
    assert algo.paused
    assert algo.phase is P.PAUSED
    assert algo.parent.status is ParentStatus.PAUSED
    algo.pause()  # a second pause: nothing changes
    assert algo.phase is P.PAUSED
    await w.run_until(at("10:01:30"))
    assert w.broker.submitted == []
    algo.resume()
    assert algo.phase is P.RUNNING
    assert algo.parent.status is ParentStatus.RUNNING
    await w.run_until(at("10:02"))
    assert len(w.broker.submitted) == 1


async def test_pause_before_start_then_resume_waits_for_start() -> None:
    w, algo = await algo_at(P.CREATED)
    algo.pause()
    assert algo.phase is P.PAUSED
    assert algo.parent.status is ParentStatus.PAUSED
    algo.resume()
    assert algo.phase is P.CREATED  # never started: ``start`` runs it
    await w.run_until(at("10:00"))
    assert w.broker.submitted == []
    algo.start()
    assert algo.phase is P.RUNNING


async def test_start_of_an_algo_paused_before_start_stays_paused() -> None:
    _, algo = await algo_at(P.CREATED)
    algo.pause()
    algo.start()
    assert algo.phase is P.PAUSED
    assert algo.parent.status is ParentStatus.PAUSED
    algo.resume()
    assert algo.phase is P.RUNNING
    assert algo.parent.status is ParentStatus.RUNNING


@pytest.mark.parametrize("phase", [P.CREATED, P.RUNNING, P.PAUSED])
async def test_stop_from_a_live_phase_with_nothing_working_finishes_done(phase: AlgoPhase) -> None:
    _, algo = await algo_at(phase)
    finished: list[bool] = []
    algo.on_finished.append(lambda: finished.append(True))
    algo.stop()
    assert algo.done
    assert algo.phase is P.FINISHED
    assert algo.parent.status is ParentStatus.DONE
    assert finished == [True]


@pytest.mark.parametrize("phase", [P.CREATED, P.RUNNING, P.PAUSED])
async def test_cancel_from_a_live_phase_finishes_canceled(phase: AlgoPhase) -> None:
    _, algo = await algo_at(phase)
    algo.cancel()
    assert algo.phase is P.FINISHED
    assert algo.parent.status is ParentStatus.CANCELED


async def test_finishing_waits_for_the_working_child_then_finishes() -> None:
    w, algo = await algo_at(P.FINISHING)
    assert algo.ending
    assert not algo.done
    assert w.broker.cancel_requests  # the working child's cancel went out
    algo.pause()
    algo.resume()
    assert algo.phase is P.FINISHING  # pause and resume do nothing while finishing
    w.broker.confirm_cancel(w.broker.cancel_requests[0])
    await w.oms.flush()
    assert algo.phase is P.FINISHED
    assert algo.parent.status is ParentStatus.DONE


async def test_cancel_while_finishing_overrides_the_stop() -> None:
    w, algo = await algo_at(P.FINISHING)
    algo.cancel()
    assert algo.phase is P.FINISHING
    assert algo.parent.status is ParentStatus.CANCELED
    w.broker.confirm_cancel(w.broker.cancel_requests[0])
    await w.oms.flush()
    assert algo.phase is P.FINISHED
    assert algo.parent.status is ParentStatus.CANCELED


async def test_a_finished_algo_ignores_every_command() -> None:
    _, algo = await algo_at(P.FINISHED)
    state = algo.state()
    for command in (algo.start, algo.pause, algo.resume, algo.stop, algo.cancel):
        command()
        assert algo.phase is P.FINISHED
    assert algo.parent.status is ParentStatus.DONE
    assert algo.state() == state


# ------------------------------------------------------------------------------------------ restore
@pytest.mark.parametrize("phase", list(AlgoPhase))
async def test_a_restored_algo_comes_back_in_the_phase_it_was_saved_in(phase: AlgoPhase) -> None:
    _, saved = await algo_at(phase)
    state = json.loads(json.dumps(saved.state()))
    w = await world()
    restored = algo_in(w)
    restored.restore(state)
    expected = P.CREATED if phase is P.RUNNING else phase  # running again comes with ``start``
    assert restored.phase is expected
    restored.start()
    after_start = {P.CREATED: P.RUNNING, P.RUNNING: P.RUNNING}.get(phase, phase)
    if phase is P.FINISHING:
        after_start = P.FINISHED  # its child is not in this world: nothing works, so it finishes
    assert restored.phase is after_start


async def test_an_old_journal_with_only_the_flags_restores_each_phase() -> None:
    _, algo = await algo_at(P.CREATED)
    base = {k: v for k, v in algo.state().items() if k not in {"paused", "finishing", "finished"}}
    cases = {
        P.CREATED: {},
        P.PAUSED: {"paused": True},
        P.FINISHING: {"finishing": True},
        P.FINISHED: {"finishing": True, "finished": True},
    }
    for phase, flags in cases.items():
        w = await world()
        restored = algo_in(w)
        restored.restore({**base, **flags})
        assert restored.phase is phase
        state = restored.state()
        assert (state["paused"], state["finishing"], state["finished"]) == (
            flags.get("paused", False),
            flags.get("finishing", False),
            flags.get("finished", False),
        )
