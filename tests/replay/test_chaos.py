"""The seeded chaos suite in CI: fixed seeds (each with a crash and restart of the engine), every
invariant holds, and a seed replays exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.replay.chaos import SeedOutcome, run_seed
from zhixing.replay.data import MarketData, load_snapshots

DATA = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
CI_SEEDS = range(8)
_OUTCOMES: dict[int, SeedOutcome] = {}  # each CI seed runs once per session (a seed replays exactly)


async def ci_outcome(market: MarketData, seed: int) -> SeedOutcome:
    if seed not in _OUTCOMES:
        _OUTCOMES[seed] = await run_seed(market, seed, 6)
    return _OUTCOMES[seed]


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(DATA)


@pytest.mark.parametrize("seed", CI_SEEDS)
@pytest.mark.slow
async def test_books_agree_with_the_exchange_under_seeded_faults(market: MarketData, seed: int) -> None:
    outcome = await ci_outcome(market, seed)
    assert outcome.problems == []
    assert outcome.lost_orders == outcome.duplicate_orders == outcome.order_overfills == 0
    assert outcome.parent_overfills == outcome.position_mismatches == outcome.unresolved == 0
    assert outcome.orders > 100
    assert outcome.algo_mismatches == outcome.resends_refused == 0
    assert outcome.fills_after_end == 0  # no end came ahead of its fill rows unheld
    assert 1 <= len(outcome.recoveries) == outcome.injected["crash_restart"] <= 2
    for recovery in outcome.recoveries:
        assert recovery.mismatches == 0
        assert recovery.rebuilt > 0  # the new engine started from the journal, not from nothing
        assert recovery.engine_timers_killed <= 6 + 1  # one armed timer per algorithm, the clock watch's
        assert recovery.settle_ns >= 0  # whatever was in flight at the restart got resolved


@pytest.mark.slow
async def test_every_fault_category_is_exercised_by_the_ci_seeds(market: MarketData) -> None:
    injected: dict[str, int] = {}
    for seed in CI_SEEDS:
        for fault, n in (await ci_outcome(market, seed)).injected.items():
            injected[fault] = injected.get(fault, 0) + n
    for fault in (
        "drop_ack",
        "duplicate_fill",
        "delay",
        "reorder",
        "drop_reject_callback",
        "broker_reject",
        "disconnect",
        "cancel_reject",
        "cancel_not_found",
        "stale_snapshot",
        "cancel_ahead_of_fill",
        "repeated_rejects",
        "crash_restart",
        "restart_in_outage",
        "clock_step",
    ):
        assert injected[fault] > 0, fault


async def test_a_kill_between_the_intent_commit_and_the_send_is_resolved_without_a_resend(
    market: MarketData,
) -> None:
    """Seed 4 crashes twice inside a slice's flush (intents journaled, nothing sent) and restarts 1 ms
    later: the intents may have left, so they stay in flight, are asked about, and end REJECTED by policy
    (never sent twice, nothing lost)."""
    outcome = await ci_outcome(market, 4)
    assert outcome.problems == []
    assert [r.in_flush for r in outcome.recoveries] == [True, True]
    assert all(r.pending > 0 for r in outcome.recoveries)
    assert outcome.inflight_resolved_by_policy == sum(r.pending for r in outcome.recoveries)
    # resolved after the bounded queries: 3 queries, one in-flight timeout (5 s) apart
    assert all(r.settle_ns == 15_000_000_000 for r in outcome.recoveries)


async def test_a_restart_right_after_a_send_leaves_the_orders_in_flight_and_resolves_them(
    market: MarketData,
) -> None:
    """Seed 5 crashes within 100 ms of a slice and restarts 1 ms later: the exchange has not received
    the children yet, so reconciliation must not call them never sent (they arrive and fill)."""
    outcome = await ci_outcome(market, 5)
    assert outcome.problems == []
    (recovery,) = outcome.recoveries
    assert recovery.downtime_ns == 1_000_000
    assert recovery.pending > 0
    assert recovery.never_sent == 0
    assert 0 < recovery.settle_ns < 1_000_000_000


async def test_link_outages_pause_resync_and_resume_without_sending_while_down(market: MarketData) -> None:
    """Every CI seed's outages (0-3 of 1-60 s): each one incident, each resumed; nothing sent while down;
    the pauses' cancels refused by the dead link and sent again for what still worked; events the broker
    pushed meanwhile were lost and the day's trades re-pushed (all deduplicated)."""
    links = [(await ci_outcome(market, seed)).link for seed in CI_SEEDS]
    assert sum(link.incidents for link in links) >= 8
    for link in links:
        assert link.incidents == link.resumed == len(link.outage_ns)
        assert link.sent_while_down == 0
        assert link.cancels_resent <= link.cancels_refused
        assert all(1_000_000_000 <= n < 60_000_000_000 for n in link.outage_ns)
    assert sum(link.algos_paused for link in links) > 0
    assert sum(link.cancels_resent for link in links) > 0
    assert sum(link.events_lost for link in links) > 0
    assert sum(link.fills_repushed for link in links) > 0


@pytest.mark.slow
async def test_a_restart_while_the_link_is_down_waits_for_the_broker_before_reconciling(
    market: MarketData,
) -> None:
    """An outage that began while the engine was dead and outlasts its restart: the new engine queries,
    backs off on the virtual clock while the exchange runs on, and reconciles only once the broker answers;
    the books still agree (checked per seed above). A restart with the link up answers at once."""
    outcomes = [await ci_outcome(market, seed) for seed in CI_SEEDS]
    recoveries = [r for o in outcomes for r in o.recoveries]
    waited = [r for r in recoveries if r.link_wait_ns > 0]
    assert len(waited) == sum(o.injected["restart_in_outage"] for o in outcomes) >= 2
    for recovery in waited:
        assert recovery.link_attempts > 1
        assert 1_000_000_000 <= recovery.link_wait_ns <= 91_000_000_000  # 1-60 s past the restart, + backoff
        assert recovery.mismatches == 0
        assert recovery.settle_ns >= 0
    assert all(r.link_attempts == 1 for r in recoveries if r.link_wait_ns == 0)
    seed = next(o.seed for o in outcomes if o.injected["restart_in_outage"])
    again = await run_seed(market, seed, 6)
    assert dataclasses.asdict(again) == dataclasses.asdict(await ci_outcome(market, seed))


@pytest.mark.slow
async def test_without_crashes_the_wire_faults_alone_still_agree(market: MarketData) -> None:
    outcome = await run_seed(market, 3, 6, crashes=False)
    assert outcome.problems == []
    assert outcome.recoveries == []
    assert outcome.injected["crash_restart"] == 0


@pytest.mark.slow
async def test_the_same_seed_replays_exactly(market: MarketData) -> None:
    a = await run_seed(market, 5, 6)
    b = await run_seed(market, 5, 6)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    c = await run_seed(market, 6, 6)
    assert dataclasses.asdict(a) != dataclasses.asdict(c)


@pytest.mark.slow
def test_chaos_cli_prints_a_summary_with_zero_losses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--seeds", "3", "--symbols", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seeds"] == summary["seeds_survived"] == 3
    for key in ("orders_lost", "duplicate_orders", "overfills", "position_mismatches", "fill_mismatches"):
        assert summary[key] == 0
    assert set(summary["faults"]) == {
        "drop_ack",
        "duplicate_fill",
        "delay",
        "reorder",
        "drop_reject_callback",
        "broker_reject",
        "disconnect",
        "cancel_reject",
        "cancel_not_found",
        "stale_snapshot",
        "cancel_ahead_of_fill",
        "repeated_rejects",
        "crash_restart",
        "restart_in_outage",
        "clock_step",
    }
    assert summary["clock_steps_injected"] == summary["faults"]["clock_step"]["injected"]
    assert summary["clock_steps_injected"] == summary["clock_steps_reported"] > 0
    assert summary["faults"]["crash_restart"]["injected"] >= 3
    recovery = summary["recovery"]
    assert recovery["restarts"] == summary["faults"]["crash_restart"]["injected"]
    assert recovery["reconcile_mismatches"] == recovery["never_settled"] == 0
    assert set(recovery["recover_and_resume_wall_ms"]) == {"p50", "p95", "max"}
    assert summary["algo_progress_mismatches"] == 0
    link = summary["link"]
    across_restarts = summary["faults"]["restart_in_outage"]["injected"]
    assert recovery["restarts_that_waited_for_the_link"] == across_restarts
    assert link["incidents"] + across_restarts == summary["faults"]["disconnect"]["injected"]
    assert link["incidents"] == link["resumed"]
    assert link["sent_while_down"] == 0
    assert set(link["reconnect_to_resumed_virtual_ms"]) == {"p50", "p95", "max"}


@pytest.mark.slow
async def test_an_outage_wholly_while_no_engine_ran_is_waited_out_not_unseen(market: MarketData) -> None:
    # seed 78: a planned outage begins and ends between a crash and the restart's first answer from the
    # broker; no running engine could see it (its restart waited it out), so it is not a missing incident
    outcome = await run_seed(market, 78, 10)
    assert outcome.injected["disconnect"] == 1
    assert outcome.link.inside_restart_wait == 1
    assert outcome.link.incidents == 0
    assert outcome.problems == []
