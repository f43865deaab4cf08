"""The seeded chaos suite in CI: fixed seeds, every invariant holds, and a seed replays exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine.cli import main
from replay.chaos import run_seed
from replay.data import MarketData, load_snapshots

DATA = Path(__file__).resolve().parents[1] / "replay" / "sample_data" / "snapshots_20211201"
CI_SEEDS = range(8)


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(DATA)


@pytest.mark.parametrize("seed", CI_SEEDS)
async def test_books_agree_with_the_exchange_under_seeded_faults(market: MarketData, seed: int) -> None:
    outcome = await run_seed(market, seed, 6)
    assert outcome.problems == []
    assert outcome.lost_orders == outcome.duplicate_orders == outcome.order_overfills == 0
    assert outcome.parent_overfills == outcome.position_mismatches == outcome.unresolved == 0
    assert outcome.orders > 100


async def test_every_fault_category_is_exercised_by_the_ci_seeds(market: MarketData) -> None:
    injected: dict[str, int] = {}
    for seed in CI_SEEDS:
        for fault, n in (await run_seed(market, seed, 6)).injected.items():
            injected[fault] = injected.get(fault, 0) + n
    for fault in ("drop_ack", "duplicate_fill", "delay", "reorder"):
        assert injected[fault] > 0, fault


async def test_the_same_seed_replays_exactly(market: MarketData) -> None:
    a = await run_seed(market, 5, 6)
    b = await run_seed(market, 5, 6)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    c = await run_seed(market, 6, 6)
    assert dataclasses.asdict(a) != dataclasses.asdict(c)


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
    }
