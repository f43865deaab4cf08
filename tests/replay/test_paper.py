"""Paper trading: recorded data on a live clock at 60x through the real engine and the simulated exchange.

These runs use real timers (a ``ScaledClock``), so they take a few wall seconds; the assertions are about
what happened (every child valid, the trade log equal to the journal, pauses on a stalled feed), never
about how long it took.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.tradelog_checks import assert_children_valid, assert_export_matches_journal
from zhixing.engine.cli.paper_cmd import run_paper
from zhixing.engine.enums import Side
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.replay.data import load_snapshots
from zhixing.replay.harness import ReplayConfig

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
POSITIONS = {"600566.SH": 40_000}


def basket(day: date, start: str = "10:00", end: str = "10:04") -> list[ParentOrder]:
    t0, t1 = shanghai_ns(day, start), shanghai_ns(day, end)
    return [
        ParentOrder(
            parent_id="P1", symbol="600258.SH", side=Side.BUY, quantity=20_000, start_ns=t0, end_ns=t1
        ),
        ParentOrder(
            parent_id="P2", symbol="600566.SH", side=Side.SELL, quantity=10_000, start_ns=t0, end_ns=t1
        ),
    ]


@pytest.mark.slow
async def test_paper_run_at_60x_passes_the_replay_trade_log_checks(tmp_path: Path) -> None:
    market = load_snapshots(SAMPLE, symbols=["600258.SH", "600566.SH"])
    db = tmp_path / "paper.db"
    config = ReplayConfig(cash=10**10, positions=POSITIONS, db_path=db)
    outcome = await run_paper(market, basket(market.trade_date), config, speed=60)
    assert outcome.session.reconcile.ok
    assert outcome.feed.pushed > 50  # quotes came from the feed, not from the exchange directly
    report = outcome.report
    assert [p.filled_quantity for p in report.parents] == [20_000, 10_000]
    await assert_children_valid(db, SAMPLE, POSITIONS, min_orders=4)
    await assert_export_matches_journal(db, tmp_path / "log")


@pytest.mark.slow
async def test_a_stalled_feed_pauses_the_symbol_and_quotes_resume_it(tmp_path: Path) -> None:
    market = load_snapshots(SAMPLE, symbols=["600258.SH", "600566.SH"])
    day = market.trade_date
    stall = (shanghai_ns(day, "10:01"), shanghai_ns(day, "10:02"))
    config = ReplayConfig(cash=10**10, positions=POSITIONS, db_path=tmp_path / "paper.db")
    outcome = await run_paper(
        market, basket(day), config, speed=60, stalls={"600258.SH": stall}, stale_after_s=15
    )
    assert outcome.feed.suppressed > 0
    assert outcome.session.book.counters.stale_events == 1
    assert (outcome.session.guard.pauses, outcome.session.guard.resumes) == (1, 1)
    # no child of the stalled symbol was sent while it was stale (stall start + 15 s until quotes return)
    children = outcome.session.oms.children_of("P1")
    assert children
    quiet = [c for c in children if stall[0] + 15 * 10**9 <= c.ts_created < stall[1]]
    assert quiet == []
    assert [p.filled_quantity for p in outcome.report.parents] == [20_000, 10_000]


@pytest.mark.slow
async def test_paper_run_at_60x_through_file_orders_and_the_terminal_emulator(tmp_path: Path) -> None:
    """The live path end to end: order files dropped into a folder, the emulated terminal scanning it and
    writing its output files, the route tailing them; the trade log passes the replay's checks."""
    market = load_snapshots(SAMPLE, symbols=["600258.SH", "600566.SH"])
    db = tmp_path / "paper.db"
    config = ReplayConfig(cash=10**10, positions=POSITIONS, db_path=db)
    folder = tmp_path / "gm"
    outcome = await run_paper(
        market, basket(market.trade_date), config, speed=60, route="fileorder", folder=folder
    )
    assert outcome.session.reconcile.ok
    assert [p.filled_quantity for p in outcome.report.parents] == [20_000, 10_000]
    dropped = sorted(p.name for p in (folder / "input").glob("*.order.csv"))
    orders = outcome.session.oms.orders
    assert len(dropped) == len(orders) >= 4  # one file per child order, none twice
    assert outcome.terminal is not None
    assert sorted(outcome.terminal.stats.sids) == sorted(orders)  # every order reached the exchange once
    await assert_children_valid(db, SAMPLE, POSITIONS, min_orders=4)
    await assert_export_matches_journal(db, tmp_path / "log")
