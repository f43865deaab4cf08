"""Limit chase on real data: never past its offset from the first post, never past the price limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.replay.test_replay_e2e import demo_args
from zhixing.engine.cli import main
from zhixing.engine.enums import Side
from zhixing.engine.market import instrument_for
from zhixing.engine.orders import Order
from zhixing.engine.store import StateStore


def test_chase_steps_toward_the_opposite_side_within_its_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "chase.db"
    params = ["--param", "reprice_s=20", "--param", "max_offset_ticks=3", "--param", "max_reprices=4"]
    assert main([*demo_args(db), "--algo", "chase", *params]) == 0
    capsys.readouterr()
    orders = asyncio.run(_load_orders(db))
    by_parent: dict[str, list[Order]] = {}
    for order in sorted(orders, key=lambda o: (o.ts_created, o.client_order_id)):
        by_parent.setdefault(order.parent_id, []).append(order)
    stepped = 0
    for children in by_parent.values():
        tick = instrument_for(children[0].symbol).tick
        anchor = children[0].price
        for child in children:
            distance = (child.price - anchor) if child.side is Side.BUY else (anchor - child.price)
            assert 0 <= distance <= 3 * tick, (child, anchor)  # only toward the opposite side, bounded
        stepped += sum(1 for c in children if c.price != anchor)
        # one post plus at most max_reprices re-prices, plus re-posts after a child fully filled
        assert all(c.filled_quantity <= c.quantity for c in children)
        assert sum(c.filled_quantity for c in children) <= sum(1 for _ in children) * children[0].quantity
    assert stepped > 0  # the chase did move on real data


async def _load_orders(db: Path) -> list[Order]:
    store = await StateStore.open(db)
    try:
        return await store.load_orders()
    finally:
        await store.close()


def test_chase_refuses_bad_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*demo_args(tmp_path / "x.db"), "--algo", "chase", "--param", "reprice_s=0"])
    assert code == 2
    assert "reprice_s" in capsys.readouterr().err
