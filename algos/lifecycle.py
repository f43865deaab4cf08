"""An algorithm's lifecycle: its phases and the transition table between them, as data.

Like the order's ``engine.orders.TRANSITIONS``, every phase change of an ``ExecAlgo`` goes through one
method (``ExecAlgo._enter``), which looks the edge up here and raises ``IllegalPhaseTransition`` (naming
both phases) for any edge the table lacks, changing nothing.

Whether the algorithm has been started (its children adopted, their events subscribed) is not a phase:
an algorithm can be paused, finishing or finished before ``start`` (paused or stopped early, or restored
so from the journal), and ``start`` then attaches it in that phase.
"""

from __future__ import annotations

from enum import StrEnum

from zhixing.engine.errors import IllegalPhaseTransition


class AlgoPhase(StrEnum):
    CREATED = "CREATED"  # constructed (and maybe restored), not started, not paused
    RUNNING = "RUNNING"  # started: the schedule's timers are armed, children go out when due
    PAUSED = "PAUSED"  # nothing is sent until ``resume``; working children were cancelled
    FINISHING = "FINISHING"  # stopped, cancelled or at its end: waiting for the working children to end
    FINISHED = "FINISHED"  # nothing of ours works any more; the parent has its final status


P = AlgoPhase

TRANSITIONS: dict[AlgoPhase, frozenset[AlgoPhase]] = {
    P.CREATED: frozenset(
        {
            P.RUNNING,  # start
            P.PAUSED,  # paused before it started; or restored paused
            P.FINISHING,  # stopped or cancelled before it started; or restored mid-finish
            P.FINISHED,  # restored from a journal that holds it finished
        }
    ),
    P.RUNNING: frozenset(
        {
            P.PAUSED,  # pause
            P.FINISHING,  # stop, cancel, its window's end, everything filled, a final reject
        }
    ),
    P.PAUSED: frozenset(
        {
            P.RUNNING,  # resume
            P.CREATED,  # resumed before it was ever started: back to waiting for ``start``
            P.FINISHING,  # stopped or cancelled while paused; complete at a restart
        }
    ),
    P.FINISHING: frozenset(
        {
            # a cancel overriding a stop's DONE; a restart sending the cancels again
            P.FINISHING,
            P.FINISHED,  # the last working child ended (or nothing was working)
        }
    ),
    P.FINISHED: frozenset(),  # final: nothing leaves it
}

ENDING: frozenset[AlgoPhase] = frozenset({P.FINISHING, P.FINISHED})
"""Phases in which nothing new is sent and no pause or resume applies."""


def check_transition(current: AlgoPhase, target: AlgoPhase) -> None:
    """Raise ``IllegalPhaseTransition`` unless ``current -> target`` is in ``TRANSITIONS``."""
    if target not in TRANSITIONS[current]:
        raise IllegalPhaseTransition(current, target)
