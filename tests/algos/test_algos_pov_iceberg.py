"""POV and iceberg against a scripted broker and a scripted market volume."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable

import pytest

from tests.algos.test_algos_twap import ASK, BID, SYMBOL, at, fill_all
from tests.fakes import World, calendar, make_world
from zhixing.algos.base import AlgoContext
from zhixing.algos.iceberg import IcebergAlgo
from zhixing.algos.pov import PovAlgo
from zhixing.algos.registry import ALGOS, describe_algos
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus

LOT = 100


def make_parent(
    quantity: int = 1_000,
    *,
    side: Side = Side.BUY,
    start: str = "10:00",
    end: str = "10:10",
    parent_id: str = "P1",
    **params: str,
) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol=SYMBOL,
        side=side,
        quantity=quantity,
        start_ns=at(start),
        end_ns=at(end),
        params=dict(params),
    )


def context(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


async def new_world(
    start: str = "10:00",
    *,
    first_id: int = 1,
    auto_cancel: bool = False,
    fill_on_submit: Callable[[Order], int] | None = None,
) -> World:
    world = await make_world(
        at(start), first_id=first_id, auto_cancel=auto_cancel, fill_on_submit=fill_on_submit
    )
    world.quotes.set(SYMBOL, bid=BID, ask=ASK)
    return world


def set_volume(world: World, cum_volume: int) -> None:
    quote = world.quotes.quotes[SYMBOL]
    world.quotes.quotes[SYMBOL] = dataclasses.replace(quote, cum_volume=cum_volume)


def script_market(world: World, start: str, end: str, volumes: list[int], step_s: int = 10) -> None:
    """Add ``volumes[k]`` to the cumulative volume at ``start + 5 s + k x step_s`` (off the slice grid)."""
    t0, t_end = at(start) + 5 * 10**9, at(end)
    for k, volume in enumerate(volumes):
        when = t0 + k * step_s * 10**9
        if when >= t_end:
            break

        def bump(volume: int = volume) -> None:
            set_volume(world, world.quotes.quotes[SYMBOL].cum_volume + volume)

        world.clock.call_at(when, bump, "market")


def working(world: World) -> list[Order]:
    return [o for o in world.broker.submitted if not o.is_terminal]


# ------------------------------------------------------------------------------------------ POV
async def test_pov_participation_stays_within_min_and_max_of_the_market_volume() -> None:
    world = await new_world(fill_on_submit=fill_all)
    set_volume(world, 50_000)  # traded before the start: never counts
    rng = random.Random(3)
    volumes = [rng.randrange(0, 8_000) for _ in range(120)]
    script_market(world, "10:00", "10:20", volumes)
    parent = make_parent(
        1_000_000, end="10:20", target_rate="0.1", min_rate="0.05", max_rate="0.15", catch_up_lots="2"
    )
    algo = PovAlgo(parent, context(world))
    algo.start()
    assert algo.slice_times[:2] == [at("10:00"), at("10:00:30")]
    for t in algo.slice_times[1:]:
        await world.run_until(t + 10**9)
        scripted = world.quotes.quotes[SYMBOL].cum_volume - 50_000
        assert algo.market_volume == scripted
        assert 0.05 * scripted - LOT <= algo.filled_quantity <= 0.15 * scripted + LOT
        assert algo.filled_quantity <= 0.1 * scripted
    assert algo.filled_quantity > 0
    assert all(o.quantity % LOT == 0 for o in world.broker.submitted)
    assert all(o.tag.startswith("pov:i") for o in world.broker.submitted)


async def test_pov_never_exceeds_the_parent_and_trades_only_in_continuous_sessions() -> None:
    for side, quantity in ((Side.BUY, 1_000), (Side.SELL, 1_050)):
        world = await new_world("11:24", fill_on_submit=fill_all)
        script_market(world, "11:25", "13:10", [20_000] * 700)
        parent = make_parent(quantity, side=side, start="11:25", end="13:05", target_rate="0.25")
        algo = PovAlgo(parent, context(world))
        algo.start()
        await world.run_until(at("13:10"))
        assert sum(o.quantity for o in world.broker.submitted) == quantity
        assert algo.filled_quantity == quantity
        assert algo.done
        assert algo.parent.status is ParentStatus.DONE
        assert all(calendar().is_continuous(t) for t in world.broker.submit_times)


async def test_pov_catch_up_is_limited_to_one_interval_share_plus_catch_up_lots() -> None:
    world = await new_world(auto_cancel=True)  # nothing fills: each interval cancel-replaces
    script_market(world, "10:00", "10:10", [1_000] * 60)  # 3_000 per 30 s interval
    algo = PovAlgo(make_parent(10_000, catch_up_lots="2"), context(world))
    algo.start()
    await world.run_until(at("10:02:01"))
    # targets 300, 600, 900, 1200 but one interval's share (300) + 2 lots caps each child at 500
    assert [o.quantity for o in world.broker.submitted] == [300, 500, 500, 500]
    assert len(working(world)) == 1
    world.broker.fill_all(world.broker.submitted[-1].client_order_id)
    await world.run_until(at("10:02:31"))
    assert world.broker.submitted[-1].quantity == 500  # filled 500, target 1500: 300 + 2 lots again
    await world.run_until(at("10:11"))
    assert algo.done
    assert algo.filled_quantity == 500
    assert algo.stats()["market_volume"] == 57_000  # sampled at the last interval, 10:09:30


async def test_pov_pause_cancels_and_resume_sends_no_burst() -> None:
    world = await new_world(auto_cancel=True, fill_on_submit=fill_all)
    script_market(world, "10:00", "10:10", [1_000] * 60)
    algo = PovAlgo(make_parent(100_000, catch_up_lots="0"), context(world))
    algo.start()
    await world.run_until(at("10:01:01"))
    assert algo.filled_quantity == 600
    algo.pause()
    await world.run_until(at("10:05:01"))
    assert len(world.broker.submitted) == 2
    algo.resume()
    await world.run_until(at("10:05:31"))
    assert world.broker.submitted[-1].quantity == 300  # one interval's share, no catch-up lots
    state = json.loads(json.dumps(algo.state()))
    assert state["market_volume"] == algo.market_volume


async def test_pov_bad_params_refuse_to_start_naming_the_param() -> None:
    world = await new_world()
    bad = [
        ({"target_rate": "0"}, "target_rate"),
        ({"target_rate": "1.5"}, "target_rate"),
        ({"target_rate": "0.3"}, "max_rate"),
        ({"min_rate": "0.2"}, "min_rate"),
        ({"interval_s": "0"}, "interval_s"),
        ({"interval_s": "soon"}, "interval_s"),
        ({"catch_up_lots": "-1"}, "catch_up_lots"),
        ({"price_policy": "greedy"}, "price_policy"),
        ({"end_policy": "keep"}, "end_policy"),
        ({"rate": "0.1"}, "rate"),
    ]
    for params, name in bad:
        with pytest.raises(ValueError, match=f"pov parameter '{name}'"):
            PovAlgo(dataclasses.replace(make_parent(), params=params), context(world))


# ------------------------------------------------------------------------------------------ iceberg
async def test_iceberg_shows_one_child_at_a_time_and_the_next_only_after_the_fill() -> None:
    world = await new_world()
    algo = IcebergAlgo(make_parent(1_000, display_qty="300"), context(world))
    algo.start()
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [300]
    assert world.broker.submitted[0].price == BID  # passive buy
    await world.run_until(at("10:03"))
    assert len(world.broker.submitted) == 1  # nothing new while the show rests
    first = world.broker.submitted[0].client_order_id
    world.broker.fill(first, 200)
    await world.oms.flush()
    assert len(world.broker.submitted) == 1  # partially filled: still the same show
    world.broker.fill(first, 100)
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [300, 300]
    for _ in range(5):
        assert len(working(world)) <= 1
        if working(world):
            world.broker.fill_all(working(world)[0].client_order_id)
        await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [300, 300, 300, 100]
    assert algo.filled_quantity == 1_000
    assert algo.done
    assert algo.parent.status is ParentStatus.DONE


async def test_iceberg_next_show_waits_for_the_cancel_confirmation() -> None:
    world = await new_world()
    algo = IcebergAlgo(make_parent(1_000, display_qty="400"), context(world))
    algo.start()
    await world.oms.flush()
    algo.pause()
    await world.oms.flush()
    first = world.broker.submitted[0]
    assert first.status is OrderStatus.PENDING_CANCEL
    algo.resume()
    await world.run_until(at("10:01"))
    assert len(world.broker.submitted) == 1  # the cancel is not confirmed yet
    world.broker.fill(first.client_order_id, 100)  # a fill racing the cancel
    world.broker.confirm_cancel(first.client_order_id)
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [400, 400]
    assert len(working(world)) == 1
    assert algo.filled_quantity + algo.working_quantity <= 1_000


async def test_iceberg_waits_for_the_afternoon_and_cancels_at_the_end() -> None:
    world = await new_world("11:29:59", auto_cancel=True)
    algo = IcebergAlgo(make_parent(1_000, start="11:35", end="13:05", display_qty="200"), context(world))
    algo.start()
    await world.run_until(at("12:59"))
    assert world.broker.submitted == []
    await world.run_until(at("13:00:01"))
    assert world.broker.submit_times == [at("13:00")]
    await world.run_until(at("13:06"))
    assert world.broker.cancel_times == [at("13:05")]
    assert algo.done


async def test_iceberg_seeded_jitter_is_deterministic_and_bounded() -> None:
    async def sizes(seed: str) -> list[int]:
        world = await new_world(fill_on_submit=fill_all)
        parent = make_parent(30_000, display_qty="1000", jitter_pct="0.5", seed=seed)
        algo = IcebergAlgo(parent, context(world))
        algo.start()
        await world.oms.flush()
        assert algo.filled_quantity == 30_000
        return [o.quantity for o in world.broker.submitted]

    first, again, other = await sizes("7"), await sizes("7"), await sizes("8")
    assert first == again
    assert first != other
    assert len(set(first)) > 3
    assert all(LOT <= q <= 1_500 and q % LOT == 0 for q in first)
    assert sum(first) == 30_000


async def test_iceberg_restore_continues_the_same_jitter_sequence() -> None:
    parent = make_parent(20_000, display_qty="1000", jitter_pct="0.4", seed="11")
    world = await new_world(auto_cancel=True)
    algo = IcebergAlgo(parent, context(world))
    algo.start()
    await world.oms.flush()
    for _ in range(3):
        world.broker.fill_all(working(world)[0].client_order_id)
        await world.oms.flush()
    algo.pause()
    await world.oms.flush()
    assert working(world) == []
    state = json.loads(json.dumps(algo.state()))
    assert state == algo.state()

    fresh = await new_world(first_id=10_000, fill_on_submit=fill_all)
    for order in world.oms.children_of(parent.parent_id):
        fresh.oms.adopt(dataclasses.replace(order, trade_ids=set(order.trade_ids)))
    restored = IcebergAlgo(ParentOrder.from_row(parent.to_row()), context(fresh))
    restored.restore(state)
    restored.start()
    restored.resume()
    await fresh.oms.flush()

    world.broker.fill_on_submit = fill_all
    algo.resume()
    await world.oms.flush()
    original_rest = [o.quantity for o in world.broker.submitted[4:]]
    assert [o.quantity for o in fresh.broker.submitted] == original_rest
    assert restored.filled_quantity == algo.filled_quantity == 20_000


async def test_iceberg_bad_params_refuse_to_start_naming_the_param() -> None:
    world = await new_world()
    bad = [
        ({}, "display_qty"),
        ({"display_qty": "50"}, "display_qty"),
        ({"display_qty": "lots"}, "display_qty"),
        ({"display_qty": "300", "jitter_pct": "1.5"}, "jitter_pct"),
        ({"display_qty": "300", "price_policy": "greedy"}, "price_policy"),
        ({"display_qty": "300", "end_policy": "keep"}, "end_policy"),
        ({"display_qty": "300", "size": "1"}, "size"),
    ]
    for params, name in bad:
        with pytest.raises(ValueError, match=f"iceberg parameter '{name}'"):
            IcebergAlgo(dataclasses.replace(make_parent(), params=params), context(world))


def test_registry_lists_pov_and_iceberg_with_help() -> None:
    assert ALGOS["pov"] is PovAlgo
    assert ALGOS["iceberg"] is IcebergAlgo
    rows = [r for r in describe_algos() if r[0] in ("pov", "iceberg")]
    assert ("iceberg", "display_qty") in {r[:2] for r in rows}
    assert all(r[3] for r in rows)
