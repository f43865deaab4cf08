"""TWAP against a scripted broker: slicing, cancel-replace races, limits, sweep, pause, restore, basket."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from datetime import date

import pytest

from tests.fakes import World, calendar, make_world
from zhixing.algos.base import MAX_REPEATED_DENIALS, AlgoContext
from zhixing.algos.basket import Basket
from zhixing.algos.pricing import PricePolicy, compute_price
from zhixing.algos.registry import ALGOS, create_algo, describe_algos
from zhixing.algos.twap import TwapAlgo, TwapParams
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import Quote
from zhixing.engine.market import instrument_for, shanghai_ns
from zhixing.engine.oms import PreTradeCheck
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import Denial, DenialCode, Unfilled, UnfilledCode

DAY = date(2021, 12, 1)
SYMBOL = "600000.SH"  # main board: lot 100, tick 0.01, ±10%
STAR = "688001.SH"  # STAR: >= 200 shares, steps of 1, ±20%
BID, ASK = 9_990, 10_000  # milli-yuan; prev close 10.00 -> limits 9.00 / 11.00


def at(hhmm: str) -> int:
    return shanghai_ns(DAY, hhmm)


def make_parent(
    quantity: int = 1_000,
    *,
    side: Side = Side.BUY,
    symbol: str = SYMBOL,
    start: str = "10:00",
    end: str = "10:05",
    limit_price: int = 0,
    parent_id: str = "P1",
    **params: str,
) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol=symbol,
        side=side,
        quantity=quantity,
        start_ns=at(start),
        end_ns=at(end),
        limit_price=limit_price,
        params={"final_sweep_s": "0", **params},
    )


def context(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


async def started(world: World, parent: ParentOrder) -> TwapAlgo:
    algo = TwapAlgo(parent, context(world))
    algo.start()
    return algo


async def world_with_quote(
    start: str = "09:59:59",
    symbol: str = SYMBOL,
    *,
    auto_cancel: bool = False,
    fill_on_submit: Callable[[Order], int] | None = None,
    checks: Sequence[PreTradeCheck] = (),
) -> World:
    world = await make_world(at(start), auto_cancel=auto_cancel, fill_on_submit=fill_on_submit, checks=checks)
    world.quotes.set(symbol, bid=BID, ask=ASK)
    return world


def status_of(algo: TwapAlgo) -> ParentStatus:
    return algo.parent.status


def fill_all(order: Order) -> int:
    return order.quantity


def assert_never_overfilled(algo: TwapAlgo, world: World) -> None:
    children = world.oms.children_of(algo.parent.parent_id)
    filled = sum(c.filled_quantity for c in children)
    working = sum(c.leaves_quantity for c in children)
    assert filled == algo.filled_quantity
    assert working == algo.working_quantity
    assert filled + working <= algo.parent.quantity


# ------------------------------------------------------------------------------------------ slicing
async def test_one_child_per_slice_inside_the_windows_and_none_at_lunch() -> None:
    world = await world_with_quote("11:24", fill_on_submit=fill_all)
    algo = await started(world, make_parent(1_000, start="11:25", end="13:05"))
    await world.run_until(at("13:10"))
    expected = [at(f"11:2{m}") for m in range(5, 10)] + [at(f"13:0{m}") for m in range(5)]
    assert world.broker.submit_times == expected
    assert [o.quantity for o in world.broker.submitted] == [100] * 10
    assert all(calendar().is_continuous(t) for t in world.broker.submit_times)
    assert algo.done
    assert algo.parent.status is ParentStatus.DONE
    assert algo.filled_quantity == 1_000
    assert algo.stats()["unfilled_reason"] == ""
    assert algo.stats()["avg_fill_price"] == float(ASK)


async def test_sell_odd_tail_rides_whole_on_the_last_child() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    algo = await started(world, make_parent(1_050, side=Side.SELL))
    await world.run_until(at("10:06"))
    assert [o.quantity for o in world.broker.submitted] == [200, 200, 200, 200, 250]
    assert [o.price for o in world.broker.submitted] == [BID] * 5  # aggressive sell: at the bid
    assert algo.filled_quantity == 1_050
    assert algo.done


async def test_star_buy_slices_are_at_least_200_shares_and_spread_out() -> None:
    world = await world_with_quote(symbol=STAR, fill_on_submit=fill_all)
    algo = await started(world, make_parent(1_000, symbol=STAR, end="10:10"))
    await world.run_until(at("10:11"))
    assert [o.quantity for o in world.broker.submitted] == [200] * 5
    assert world.broker.submit_times == [at(f"10:0{m}") for m in (0, 2, 4, 6, 8)]
    assert algo.filled_quantity == 1_000


async def test_child_quantity_respects_remaining_lot_and_order_cap() -> None:
    world = await world_with_quote()
    algo = await started(world, make_parent(2_500_050, side=Side.SELL))
    assert algo.child_quantity(2_500_050) == 1_000_000  # the main-board cap per limit order
    assert algo.child_quantity(999) == 900
    assert algo.child_quantity(50) == 0
    buy = TwapAlgo(make_parent(1_050, parent_id="P2"), context(world))
    assert buy.child_quantity(5_000) == 1_000  # never above remaining, on the lot grid
    assert buy.child_quantity(150) == 100


# ------------------------------------------------------------------------------------------ cancel-replace
async def test_cancel_replace_waits_for_the_cancel_confirmation_and_counts_the_racing_fill() -> None:
    world = await world_with_quote()
    algo = await started(world, make_parent(1_000))  # 5 slices of 200
    await world.run_until(at("10:00:30"))
    [first] = world.broker.submitted
    assert first.quantity == 200
    await world.run_until(at("10:01:00"))  # slice 1 is due while the first child still works
    assert world.broker.cancel_requests == [first.client_order_id]
    assert len(world.broker.submitted) == 1
    await world.run_until(at("10:01:05"))
    world.broker.fill(first.client_order_id, 100)  # a fill races the cancel
    await world.oms.flush()
    assert len(world.broker.submitted) == 1  # still waiting for the confirmation
    assert_never_overfilled(algo, world)
    world.broker.confirm_cancel(first.client_order_id)
    await world.oms.flush()
    assert len(world.broker.submitted) == 2
    replacement = world.broker.submitted[1]
    assert replacement.quantity == 400 - 100  # cumulative target minus the confirmed fill
    assert world.broker.submit_times[1] == at("10:01:05")
    assert algo.cancels_sent == 1
    assert_never_overfilled(algo, world)


async def test_no_new_child_while_the_cancel_is_pending_even_across_slices() -> None:
    world = await world_with_quote()
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:02:30"))  # slices 1 and 2 came while the cancel was unconfirmed
    assert len(world.broker.submitted) == 1
    assert len(world.broker.cancel_requests) == 1
    assert algo.cancels_sent == 1
    world.broker.confirm_cancel(world.broker.submitted[0].client_order_id)
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [200, 600]  # target of slice 2


async def test_final_fill_instead_of_cancel_sends_the_replacement_once() -> None:
    world = await world_with_quote()
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:01"))
    first = world.broker.submitted[0]
    world.broker.fill_all(first.client_order_id)  # the cancel lost the race
    await world.oms.flush()
    world.broker.reject_cancel(first.client_order_id)  # "already filled"
    world.broker.confirm_cancel(first.client_order_id)  # and a stale confirmation for good measure
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [200, 200]
    assert first.status is OrderStatus.FILLED
    assert_never_overfilled(algo, world)


async def test_cancel_rejected_keeps_waiting_while_the_oms_sends_the_cancel_again() -> None:
    world = await world_with_quote()
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:01"))
    first = world.broker.submitted[0]
    world.broker.reject_cancel(first.client_order_id, "busy")
    await world.oms.flush()
    assert first.status is OrderStatus.ACCEPTED
    assert len(world.broker.submitted) == 1
    # the OrderManager sends the refused cancel again after its first backoff (engine.cancels)
    await world.run_until(at("10:01") + world.oms.cancel_retry.first_backoff_ns)
    assert world.broker.cancel_requests == [first.client_order_id] * 2
    assert len(world.broker.submitted) == 1  # the replacement still waits for the confirmation
    world.broker.confirm_cancel(first.client_order_id)
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [200, 400]
    assert algo.cancels_sent == 1


@pytest.mark.parametrize("seed", range(25))
async def test_fills_racing_cancels_never_overfill_the_parent(seed: int) -> None:
    rng = random.Random(seed)
    world = await world_with_quote()
    side = rng.choice([Side.BUY, Side.SELL])
    quantity = rng.choice([1_000, 2_300, 5_050 if side is Side.SELL else 5_000])
    parent = make_parent(quantity, side=side, end="10:10")
    parent.params.update(interval_s=str(rng.choice([10, 30, 60])), final_sweep_s=str(rng.choice([0, 30])))
    algo = TwapAlgo(parent, context(world))
    algo.start()
    broker = world.broker
    t = at("10:00")
    while t <= at("10:11"):
        await world.run_until(t)
        for order in list(broker.working()):
            leaves = order.quantity - order.filled_quantity
            roll = rng.random()
            if roll < 0.3 and leaves > 0:
                broker.fill(order.client_order_id, rng.randint(1, leaves))  # odd partial fills too
            if order.status is OrderStatus.PENDING_CANCEL:
                roll = rng.random()
                if roll < 0.15:
                    broker.fill_all(order.client_order_id)
                elif roll < 0.3:
                    broker.reject_cancel(order.client_order_id)
                elif roll < 0.8:
                    broker.confirm_cancel(order.client_order_id)
            await world.oms.flush()
            assert_never_overfilled(algo, world)
        t += rng.choice([1, 3, 7]) * 1_000_000_000
    for order in list(broker.working()):
        broker.confirm_cancel(order.client_order_id)
    await world.oms.flush()
    assert_never_overfilled(algo, world)
    assert algo.done
    assert algo.filled_quantity <= quantity
    assert world.oms.counters.overfill_alarms == 0


# ------------------------------------------------------------------------------------------ prices
async def test_limit_up_buy_sends_nothing_and_reports_limit_up() -> None:
    world = await world_with_quote()
    world.quotes.set(SYMBOL, bid=11_000, ask=0)  # sealed at the 11.00 limit-up
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:06"))
    assert world.broker.submitted == []
    assert algo.done
    assert algo.stats()["unfilled_reason"] == "limit_up"
    assert algo.parent.status is ParentStatus.DONE


async def test_limit_down_sell_sends_nothing_and_reports_limit_down() -> None:
    world = await world_with_quote()
    world.quotes.set(SYMBOL, bid=0, ask=9_000)
    algo = await started(world, make_parent(1_000, side=Side.SELL))
    await world.run_until(at("10:06"))
    assert world.broker.submitted == []
    assert algo.stats()["unfilled_reason"] == "limit_down"


async def test_unusable_quote_skips_the_slice_and_rolls_it_to_the_next() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:00:30"))
    world.quotes.set(SYMBOL, bid=10_010, ask=10_000)  # crossed: never price from it
    await world.run_until(at("10:01:30"))
    assert algo.stats()["unfilled_reason"] == "no_quote"
    world.quotes.set(SYMBOL, bid=BID, ask=ASK)
    await world.run_until(at("10:06"))
    assert [o.quantity for o in world.broker.submitted] == [200, 400, 200, 200]
    assert algo.filled_quantity == 1_000
    assert algo.stats()["unfilled_reason"] == ""


async def test_prices_stay_inside_the_daily_band_and_the_parent_limit() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    world.quotes.set(SYMBOL, bid=10_940, ask=10_950)
    algo = await started(world, make_parent(400, end="10:02", offset_ticks="20"))
    await world.run_until(at("10:00:30"))
    assert world.broker.submitted[-1].price == 11_000  # 10.95 + 20 ticks clamped to the limit-up
    sell = TwapAlgo(
        make_parent(400, side=Side.SELL, end="10:02", limit_price=10_955, parent_id="P2"), context(world)
    )
    sell.start()  # late: the 10:00 slice has passed, so all 400 go in the one slice left
    await world.run_until(at("10:01:30"))
    sells = [o for o in world.broker.submitted if o.side is Side.SELL]
    assert [(o.quantity, o.price) for o in sells] == [(400, 10_960)]  # the limit, rounded up onto the tick
    assert algo.filled_quantity == 400


async def test_parent_limit_below_the_market_rests_and_reports_limit_price() -> None:
    world = await world_with_quote(auto_cancel=True)
    algo = await started(world, make_parent(1_000, limit_price=9_805))
    await world.run_until(at("10:06"))
    assert {o.price for o in world.broker.submitted} == {9_800}  # rounded down onto the tick
    assert algo.done
    assert algo.stats()["unfilled_reason"] == "limit_price"


def test_compute_price_policies_and_guards() -> None:
    inst = instrument_for(SYMBOL)

    def quote(bid: int, ask: int, last: int = 0, limits: tuple[int, int] = (9_000, 11_000)) -> Quote:
        return Quote(
            ts_event=0,
            ts_init=0,
            symbol=SYMBOL,
            last=last,
            bid_price=bid,
            bid_quantity=100,
            ask_price=ask,
            ask_quantity=100,
            cum_volume=0,
            cum_amount=0,
            prev_close=10_000,
            high_limit=limits[1],
            low_limit=limits[0],
        )

    q = quote(9_990, 10_020)
    assert compute_price("passive", q, Side.BUY, 0, instrument=inst) == 9_990
    assert compute_price("passive", q, Side.SELL, 0, instrument=inst) == 10_020
    assert compute_price("mid", q, Side.BUY, 0, instrument=inst) == 10_000
    assert compute_price("mid", quote(9_990, 10_000), Side.BUY, 0, instrument=inst) == 9_990
    assert compute_price("mid", quote(9_990, 10_000), Side.SELL, 0, instrument=inst) == 10_000
    assert compute_price(PricePolicy.AGGRESSIVE, q, Side.BUY, 2, instrument=inst) == 10_040
    assert compute_price(PricePolicy.AGGRESSIVE, q, Side.SELL, 2, instrument=inst) == 9_970
    assert compute_price("aggressive", quote(9_000, 9_010), Side.SELL, 5, instrument=inst) == 9_000
    # limits missing from the quote: derived from the previous close
    assert compute_price(
        "aggressive", quote(10_990, 11_000, limits=(0, 0)), Side.BUY, 9, instrument=inst
    ) == (11_000)
    # never from an unusable quote
    assert compute_price("aggressive", quote(10_030, 10_020), Side.BUY, 0, instrument=inst) is None
    assert compute_price("aggressive", quote(0, 0), Side.BUY, 0, instrument=inst) is None
    assert compute_price("aggressive", None, Side.BUY, 0, instrument=inst) is None
    # the parent's limit; outside today's band nothing is valid
    assert compute_price("aggressive", q, Side.BUY, 0, instrument=inst, limit_price=10_000) == 10_000
    assert compute_price("aggressive", q, Side.BUY, 0, instrument=inst, limit_price=8_000) is None
    assert compute_price("aggressive", q, Side.SELL, 0, instrument=inst, limit_price=12_000) is None


# ------------------------------------------------------------------------------------------ sweep and end
async def test_final_sweep_cancels_and_sends_the_remainder_aggressively() -> None:
    world = await world_with_quote(auto_cancel=True)
    parent = make_parent(1_000, final_sweep_s="30", sweep_offset_ticks="2")
    algo = await started(world, parent)
    assert algo.sweep_at == at("10:04:30")
    await world.run_until(at("10:04:29"))
    assert len(world.broker.submitted) == 5  # nothing fills: each slice replaces the last
    world.broker.fill(world.broker.submitted[-1].client_order_id, 300)
    await world.run_until(at("10:04:30"))
    sweep = world.broker.submitted[-1]
    assert sweep.tag == "twap:sweep"
    assert sweep.quantity == 700
    assert sweep.price == ASK + 2 * 10
    world.broker.fill_all(sweep.client_order_id)
    await world.oms.flush()
    assert algo.done
    assert algo.filled_quantity == 1_000


async def test_end_cancels_what_is_working_and_finishes_done() -> None:
    world = await world_with_quote()
    algo = await started(world, make_parent(1_000, price_policy="passive"))
    await world.run_until(at("10:05"))
    last = world.broker.submitted[-1]
    assert last.status is OrderStatus.PENDING_CANCEL
    assert not algo.done
    world.broker.confirm_cancel(last.client_order_id)
    await world.oms.flush()
    assert algo.done
    assert algo.parent.status is ParentStatus.DONE
    assert {o.price for o in world.broker.submitted} == {BID}  # passive buy: at the bid


async def test_parent_ending_at_the_close_cancels_before_the_closing_call() -> None:
    world = await world_with_quote("14:50", auto_cancel=True)
    algo = await started(world, make_parent(1_000, start="14:50", end="15:00"))
    assert algo.end_at == at("14:56:57")
    await world.run_until(at("15:00"))
    assert world.broker.cancel_times[-1] == at("14:56:57")
    assert all(t < at("14:56:57") for t in world.broker.submit_times)
    assert algo.done


# ------------------------------------------------------------------------------------------ pause and restore
async def test_pause_then_resume_sends_no_burst() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    algo = await started(world, make_parent(1_000, end="10:10"))  # 10 slices of 100
    await world.run_until(at("10:02:30"))
    assert algo.filled_quantity == 300
    algo.pause()
    assert status_of(algo) is ParentStatus.PAUSED
    await world.run_until(at("10:06:30"))
    assert len(world.broker.submitted) == 3
    algo.resume()
    assert status_of(algo) is ParentStatus.RUNNING
    await world.oms.flush()
    assert len(world.broker.submitted) == 3  # nothing at the moment of resume
    await world.run_until(at("10:11"))
    # 700 left over the 3 slices still ahead (10:07, 10:08, 10:09): no catch-up of 400 at 10:07
    assert [o.quantity for o in world.broker.submitted[3:]] == [300, 200, 200]
    assert world.broker.submit_times[3:] == [at("10:07"), at("10:08"), at("10:09")]
    assert algo.done


async def test_pause_cancels_the_working_child() -> None:
    world = await world_with_quote(auto_cancel=True)
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:00:10"))
    algo.pause()
    await world.oms.flush()
    assert world.broker.submitted[0].status is OrderStatus.CANCELED
    await world.run_until(at("10:03"))
    assert len(world.broker.submitted) == 1
    assert algo.working_quantity == 0


async def test_pause_before_start_then_resume_runs_the_rest_of_the_schedule() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    algo = TwapAlgo(make_parent(1_000), context(world))
    algo.pause()
    algo.start()
    await world.run_until(at("10:02:30"))
    assert world.broker.submitted == []
    assert status_of(algo) is ParentStatus.PAUSED
    algo.resume()
    await world.run_until(at("10:06"))
    assert [o.quantity for o in world.broker.submitted] == [500, 500]  # 10:03 and 10:04
    assert algo.done


async def _restart(world: World, parent: ParentOrder, state: dict[str, object]) -> tuple[World, TwapAlgo]:
    """A fresh process at the same instant: orders rebuilt from the journal, the algo from its state."""
    fresh = await make_world(world.clock.now_ns(), first_id=10_000, fill_on_submit=fill_all)
    fresh.quotes.set(SYMBOL, bid=BID, ask=ASK)
    for order in world.oms.children_of(parent.parent_id):
        fresh.oms.adopt(dataclasses.replace(order, trade_ids=set(order.trade_ids)))
    algo = TwapAlgo(ParentOrder.from_row(parent.to_row()), context(fresh))
    algo.restore(state)
    algo.start()
    return fresh, algo


async def test_state_round_trips_through_json_and_restore_resumes_at_the_next_slice() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    parent = make_parent(1_000, end="10:10")
    algo = await started(world, parent)
    await world.run_until(at("10:03:30"))
    state = json.loads(json.dumps(algo.state()))
    assert state["next_slice"] == 4
    assert state == algo.state()
    fresh, restored = await _restart(world, parent, state)
    assert restored.filled_quantity == 400
    assert restored.slice_times == algo.slice_times
    assert restored.targets == algo.targets
    await fresh.run_until(at("10:11"))
    assert fresh.broker.submit_times == [at(f"10:0{m}") for m in range(4, 10)]
    assert [o.quantity for o in fresh.broker.submitted] == [100] * 6
    assert fresh.broker.submitted[0].tag == "twap:s4"
    assert restored.filled_quantity == 1_000
    assert restored.children_sent == 10
    assert restored.done


async def test_restore_after_downtime_spreads_the_rest_without_a_burst() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    parent = make_parent(1_000, end="10:10")
    algo = await started(world, parent)
    await world.run_until(at("10:03:30"))
    state = json.loads(json.dumps(algo.state()))
    world.clock.advance_to(at("10:06:30"))  # the process was down for three minutes
    fresh, restored = await _restart(world, parent, state)
    assert restored.next_slice == 7
    await fresh.run_until(at("10:11"))
    assert [o.quantity for o in fresh.broker.submitted] == [200, 200, 200]
    assert restored.filled_quantity == 1_000


async def test_restore_rejects_state_of_another_algo_or_version() -> None:
    world = await world_with_quote()
    algo = TwapAlgo(make_parent(), context(world))
    with pytest.raises(ValueError, match="version"):
        algo.restore({"version": 99, "algo": "twap"})
    with pytest.raises(ValueError, match="vwap"):
        algo.restore({"version": 1, "algo": "vwap"})


# ------------------------------------------------------------------------------------------ registry, basket
async def test_registry_names_unknown_algos_and_bad_params() -> None:
    world = await world_with_quote()
    parent = make_parent()
    parent.algo = "sniper"
    with pytest.raises(ValueError, match=r"unknown algo 'sniper'; known: chase, iceberg, pov, twap, vwap"):
        create_algo(parent, context(world))
    with pytest.raises(ValueError, match=r"'interval'.*known: .*interval_s"):
        TwapAlgo(make_parent(interval="60"), context(world))
    with pytest.raises(ValueError, match=r"'interval_s': expected int, got 'soon'"):
        TwapAlgo(make_parent(interval_s="soon"), context(world))
    with pytest.raises(ValueError, match="price_policy"):
        TwapAlgo(make_parent(price_policy="greedy"), context(world))
    assert isinstance(create_algo(make_parent(), context(world)), TwapAlgo)
    assert ALGOS["twap"] is TwapAlgo
    rows = [r for r in describe_algos() if r[0] == "twap"]
    assert rows[0][:3] == ("twap", "interval_s", "60")
    assert {r[1] for r in rows} == {f.name for f in dataclasses.fields(TwapParams)}
    assert all(r[3] for r in rows)


async def test_denied_child_is_counted_and_reported() -> None:
    world = await world_with_quote()
    world.oms.halt("test")
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:00:30"))
    assert algo.children_denied == 1
    assert algo.children_sent == 0
    assert algo.stats()["unfilled_reason"] == "denied:halted: test"
    assert algo.unfilled == Unfilled(UnfilledCode.DENIED, "halted: test", denial=DenialCode.HALTED)


async def test_basket_runs_parents_across_symbols_independently() -> None:
    world = await world_with_quote(fill_on_submit=fill_all)
    world.quotes.set(STAR, bid=BID, ask=ASK)
    basket = Basket(context(world))
    basket.add(make_parent(1_000, parent_id="A"))
    basket.add(make_parent(600, symbol=STAR, side=Side.BUY, parent_id="B", end="10:03"))
    with pytest.raises(ValueError, match="already"):
        basket.add(make_parent(parent_id="A"))
    basket.start()
    late = basket.add(make_parent(500, side=Side.SELL, parent_id="C"))  # starts at once
    assert late.parent.status is ParentStatus.RUNNING
    assert not basket.done
    await world.run_until(at("10:06"))
    assert basket.done
    stats = basket.stats()
    assert stats["filled_quantity"] == 2_100
    assert stats["done"] == 3
    by_parent = stats["by_parent"]
    assert isinstance(by_parent, dict)
    assert by_parent["B"]["children_sent"] == 3
    assert {o.symbol for o in world.broker.submitted} == {SYMBOL, STAR}


async def test_cancel_finishes_canceled_and_stops_slicing() -> None:
    world = await world_with_quote(auto_cancel=True)
    algo = await started(world, make_parent(1_000))
    await world.run_until(at("10:01:30"))
    algo.cancel()
    assert algo.parent.status is ParentStatus.CANCELED
    await world.oms.flush()
    assert algo.done
    await world.run_until(at("10:06"))
    assert len(world.broker.submitted) == 2


async def test_a_child_too_large_for_the_risk_limits_stops_the_algo_instead_of_a_retry_storm() -> None:
    world = await world_with_quote(
        checks=[
            lambda order: Denial(DenialCode.MAX_ORDER_VALUE, "too large") if order.quantity > 100 else None
        ]
    )
    algo = await started(world, make_parent(10_000, start="10:00", end="10:05", interval_s="10"))
    while world.clock.step(until_ns=at("10:05")):
        await world.oms.flush()
    assert algo.children_denied == 1  # one refusal, then it stopped: no retry at every slice
    assert algo.done
    assert world.broker.submitted == []
    assert algo.unfilled_reason == "denied:max_order_value: too large"


async def test_repeated_transient_denials_stop_the_algo_after_a_bound() -> None:
    world = await world_with_quote(checks=[lambda order: Denial(DenialCode.RATE_PER_SECOND, "busy")])
    algo = await started(world, make_parent(100_000, start="10:00", end="11:00", interval_s="5"))
    while world.clock.step(until_ns=at("11:00")):
        await world.oms.flush()
    assert algo.children_denied == MAX_REPEATED_DENIALS
    assert algo.done
    assert algo.unfilled_reason.startswith("denied:rate_per_second")
    assert algo.unfilled is not None
    assert algo.unfilled.code is UnfilledCode.DENIED
    assert algo.unfilled.denial is DenialCode.RATE_PER_SECOND
