"""Pre-trade risk controls: one test per control (deny with the named reason, allow just under), rate caps
with the cancel reserve and held cancels, auto-halt after consecutive rejects, and the I5 property:
no 1-second window and no day ever carries more messages to the broker than the caps."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import World, make_world
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import ConfigError
from zhixing.engine.events import OrderDenied, OrderRejected, SubmitOrder
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.risk_controls import SECOND_NS, RiskControls, RiskLimits, shanghai_day

SYMBOL = "600000.SH"
T0 = shanghai_ns(date(2024, 3, 4), "10:00")
MS = 1_000_000

LOOSE = RiskLimits(duplicate_window_ns=0)  # most tests look at one control at a time


async def world_with(
    limits: RiskLimits, *, auto_cancel: bool = True, quote: bool = True
) -> tuple[World, RiskControls]:
    world = await make_world(T0, auto_cancel=auto_cancel, risk=limits)
    if quote:
        world.quotes.set(SYMBOL, bid=10_000, ask=10_010, last=10_000)
    assert world.risk is not None
    return world, world.risk


def buy(world: World, quantity: int = 100, price: int = 10_000, symbol: str = SYMBOL) -> Order:
    return world.oms.submit(SubmitOrder(symbol=symbol, side=Side.BUY, quantity=quantity, price=price))


def denied_code(order: Order) -> str | None:
    return (order.denial.value if order.denial else None) if order.status is OrderStatus.DENIED else None


# ---------------------------------------------------------------------------------------- limits
def test_defaults_sit_far_below_the_hft_lines() -> None:
    limits = RiskLimits()
    assert limits.max_messages_per_second < 300
    assert limits.max_messages_per_day < 20_000
    assert limits.order_cap_per_second == 45
    assert limits.order_cap_per_day == 9_000


def test_caps_at_the_hft_line_are_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"risk.max_messages_per_second"):
        RiskLimits(max_messages_per_second=300)
    with pytest.raises(ConfigError, match=r"risk.max_messages_per_day"):
        RiskLimits(max_messages_per_day=20_000)
    assert RiskLimits(max_messages_per_second=300, allow_hft_rates=True).max_messages_per_second == 300


def test_limits_from_config_table_convert_yuan_and_seconds_and_name_bad_keys(tmp_path: Path) -> None:
    base = '[account]\nid = "a"\n[store]\npath = "z.db"\n[route]\nkind = "sim"\n[route.sim]\ndata = "d"\n'
    config = tmp_path / "live.toml"

    def limits(risk: str) -> RiskLimits:
        config.write_text(f"{base}[risk]\n{risk}\n", encoding="utf-8")
        return load_config(config).risk

    loaded = limits("max_order_value_yuan = 50_000\nduplicate_window_s = 2.5\nduplicate_max = 2")
    assert loaded.max_order_value == 50_000_000
    assert loaded.duplicate_window_ns == 2_500 * MS
    assert loaded.duplicate_max == 2
    with pytest.raises(ConfigError, match=r"key 'risk.max_order_valu'"):
        limits("max_order_valu = 1")
    with pytest.raises(ConfigError, match=r"live.toml: key 'risk.max_active_orders'"):
        limits("max_active_orders = -1")
    with pytest.raises(ConfigError, match=r"risk.max_order_quantity"):
        limits("max_order_quantity = 1.5")


# ---------------------------------------------------------------------------------------- one per control
async def test_max_order_quantity_denies_above_and_allows_at_the_limit() -> None:
    world, risk = await world_with(replace(LOOSE, max_order_quantity=1_000))
    assert denied_code(buy(world, 1_100)) == "max_order_quantity"
    assert denied_code(buy(world, 1_000)) is None
    await world.oms.flush()
    assert [o.quantity for o in world.broker.submitted] == [1_000]
    assert risk.report()["denials"] == {"max_order_quantity": 1}


async def test_max_order_value_denies_above_and_allows_at_the_limit() -> None:
    world, _ = await world_with(replace(LOOSE, max_order_value=5_000_000))  # 5,000 yuan
    assert denied_code(buy(world, 600)) == "max_order_value"  # 6,000 yuan
    assert denied_code(buy(world, 500)) is None  # exactly 5,000 yuan


async def test_price_collar_denies_beyond_and_allows_at_the_band() -> None:
    world, _ = await world_with(replace(LOOSE, price_collar_bp=1_000))  # reference = last 10.000
    assert denied_code(buy(world, price=11_010)) == "price_collar"
    assert denied_code(buy(world, price=8_990)) == "price_collar"
    assert denied_code(buy(world, price=11_000)) is None  # exactly 10%
    assert denied_code(buy(world, price=9_000)) is None


async def test_missing_reference_price_denies() -> None:
    world, risk = await world_with(LOOSE, quote=False)
    assert denied_code(buy(world)) == "no_reference_price"
    world.quotes.set(SYMBOL, bid=0, ask=0, last=0, prev_close=0, limits=False)  # a quote with no price
    assert denied_code(buy(world)) == "no_reference_price"
    world.quotes.set(SYMBOL, bid=0, ask=0, last=0, prev_close=10_000)  # pre-open: prev close serves
    assert denied_code(buy(world)) is None
    assert risk.denials == {"no_reference_price": 2}


async def test_duplicate_order_inside_the_window_is_denied_and_allowed_after() -> None:
    world, _ = await world_with(replace(LOOSE, duplicate_window_ns=SECOND_NS, duplicate_max=1))
    assert denied_code(buy(world)) is None
    assert denied_code(buy(world)) == "duplicate_order"
    assert denied_code(buy(world, quantity=200)) is None  # differs: not a duplicate
    assert denied_code(buy(world, price=10_010)) is None
    await world.run_until(T0 + SECOND_NS - 1)
    assert denied_code(buy(world)) == "duplicate_order"  # still inside the window
    await world.run_until(T0 + SECOND_NS)
    assert denied_code(buy(world)) is None


async def test_active_order_cap_denies_at_the_cap_and_frees_a_slot_on_fill() -> None:
    world, _ = await world_with(replace(LOOSE, max_active_orders=3))
    orders = [buy(world, price=10_000 + i * 10) for i in range(3)]
    assert all(denied_code(o) is None for o in orders)
    await world.oms.flush()
    assert denied_code(buy(world, price=10_100)) == "max_active_orders"
    world.broker.fill_all(orders[0].client_order_id)
    assert denied_code(buy(world, price=10_100)) is None


async def test_order_rate_per_second_queues_the_order_over_the_cap_and_keeps_the_cancel_reserve() -> None:
    limits = replace(LOOSE, max_messages_per_second=10, cancel_reserve_pct=10)  # orders: 9
    world, risk = await world_with(limits, auto_cancel=False)
    orders = [buy(world, price=10_000 + i * 10) for i in range(10)]
    assert [denied_code(o) for o in orders] == [None] * 10  # over the cap: queued, not denied
    await world.oms.flush()
    assert len(world.broker.submitted) == 9
    assert orders[9].status is OrderStatus.INITIALIZED  # queued: working for its algorithm
    assert risk.report()["queued_now"] == 1
    # the reserve: one cancel still goes now, before the queued order; the next is held, not dropped
    assert world.oms.cancel(orders[0].client_order_id)
    assert world.oms.cancel(orders[1].client_order_id)
    await world.oms.flush()
    assert world.broker.cancel_requests == [orders[0].client_order_id]
    assert [o.client_order_id for o in world.oms.held_cancels] == [orders[1].client_order_id]
    await world.run_until(T0 + SECOND_NS)  # the first message leaves the window: the retry timer fires
    assert world.broker.cancel_requests == [orders[0].client_order_id, orders[1].client_order_id]
    assert world.broker.cancel_times[1] == T0 + SECOND_NS
    assert world.oms.held_cancels == []
    # the held cancel went first; the queued order takes the room left once the window moves on
    assert world.broker.submitted[-1] is orders[9]
    assert world.broker.submit_times[-1] == T0 + SECOND_NS
    report = risk.report()
    assert report["cancel_holds"] == 1
    assert report["warnings"] == 1  # 8 of 10 in that second: warned once for the window
    assert report["peak_per_second"] == 10
    assert report["denials"] == {}
    assert report["orders_queued"] == 1
    assert report["queued_sent"] == 1
    assert report["queued_now"] == 0
    assert report["max_queue_wait_ns"] == SECOND_NS


async def test_order_rate_per_day_denies_at_the_order_cap_and_warns_once_at_80_percent() -> None:
    limits = replace(LOOSE, max_messages_per_second=50, max_messages_per_day=20, cancel_reserve_pct=10)
    world, risk = await world_with(limits, auto_cancel=True)
    sent = []
    for i in range(19):
        await world.run_until(T0 + i * SECOND_NS)
        sent.append(buy(world, price=10_000 + i * 10))
        await world.oms.flush()
    assert [denied_code(o) for o in sent] == [None] * 18 + ["rate_per_day"]
    assert risk.warnings == 1  # 16 of 20 reached once; not again for the day
    assert world.oms.cancel(sent[0].client_order_id)  # the reserve: cancels still go
    await world.oms.flush()
    assert world.broker.cancel_requests == [sent[0].client_order_id]
    # next Shanghai day: the day count starts afresh
    next_day = shanghai_ns(date(2024, 3, 5), "09:31")
    await world.run_until(next_day)
    assert denied_code(buy(world, price=10_500)) is None
    assert risk.report()["messages_today"] == 0


async def test_held_cancel_over_the_day_cap_waits_for_the_next_day_never_over_the_cap() -> None:
    limits = replace(LOOSE, max_messages_per_second=50, max_messages_per_day=10, cancel_reserve_pct=20)
    world, _ = await world_with(limits, auto_cancel=True)
    orders = [buy(world, price=10_000 + i * 10) for i in range(8)]
    await world.oms.flush()
    for order in orders[:3]:
        world.oms.cancel(order.client_order_id)
    await world.oms.flush()
    assert len(world.broker.cancel_requests) == 2  # 8 + 2 = 10 messages: the day cap
    held = world.oms.held_cancels
    assert [o.client_order_id for o in held] == [orders[2].client_order_id]
    next_day = shanghai_ns(date(2024, 3, 5), "00:00")
    await world.run_until(next_day - 1)
    assert len(world.broker.cancel_requests) == 2
    await world.run_until(next_day)
    assert world.broker.cancel_requests[-1] == orders[2].client_order_id
    assert shanghai_day(world.broker.cancel_times[-1]) == shanghai_day(next_day)


async def test_auto_halt_after_n_consecutive_broker_rejects_and_an_ack_resets_the_count() -> None:
    world, risk = await world_with(replace(LOOSE, max_consecutive_rejects=3), auto_cancel=False)
    world.broker.auto_ack = False

    def reject(order: Order) -> None:
        now = world.clock.now_ns()
        world.oms.on_event(
            OrderRejected(
                ts_event=now, ts_init=now, client_order_id=order.client_order_id, symbol=SYMBOL, reason="x"
            )
        )

    orders = [buy(world, price=10_000 + i * 10) for i in range(6)]
    await world.oms.flush()
    reject(orders[0])
    reject(orders[1])
    world.broker.ack(orders[2].client_order_id)  # an ack: the broker is taking orders again
    reject(orders[3])
    reject(orders[4])
    assert world.oms.halted_reason is None
    assert risk.consecutive_rejects == 2
    reject(orders[5])
    assert world.oms.halted_reason is not None
    assert world.oms.halted_reason.startswith("auto_halt")
    assert denied_code(buy(world, price=10_500)) == "halted"
    assert world.oms.cancel(orders[2].client_order_id)  # halted still allows cancels
    await world.oms.flush()
    assert world.broker.cancel_requests == [orders[2].client_order_id]
    assert risk.report()["auto_halts"] == 1


async def test_local_journal_failure_rejects_do_not_count_toward_auto_halt() -> None:
    world, risk = await world_with(replace(LOOSE, max_consecutive_rejects=1))
    order = buy(world)
    now = world.clock.now_ns()
    world.oms.on_event(
        OrderRejected(
            ts_event=now,
            ts_init=now,
            client_order_id=order.client_order_id,
            symbol=SYMBOL,
            reason="journal_write_failed",
            venue_confirmed=False,
        )
    )
    assert risk.auto_halts == 0


async def test_every_denial_is_an_event_counted_by_reason_code() -> None:
    world, risk = await world_with(replace(LOOSE, max_order_quantity=1_000))
    events: list[OrderDenied] = []
    world.bus.subscribe(OrderDenied, events.append)
    buy(world, 2_000)
    buy(world, price=20_000)
    world.oms.halt("operator")
    buy(world)
    assert [e.code for e in events] == ["max_order_quantity", "price_collar", "halted"]
    assert risk.report()["denials"] == {"halted": 1, "max_order_quantity": 1, "price_collar": 1}


# ---------------------------------------------------------------------------------------- I5 property
CAP_S, CAP_D = 8, 60

burst = st.tuples(
    st.integers(min_value=0, max_value=1_500),  # ms to wait first
    st.sampled_from(["submit", "cancel", "cancel_all"]),
    st.integers(min_value=1, max_value=25),  # how many
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bursts=st.lists(burst, min_size=1, max_size=25), reserve=st.sampled_from([0, 10, 25]))
@pytest.mark.slow
def test_rate_caps_are_never_exceeded_and_no_cancel_is_dropped(
    bursts: list[tuple[int, str, int]], reserve: int
) -> None:
    asyncio.run(_drive(bursts, reserve))


async def _drive(bursts: list[tuple[int, str, int]], reserve: int) -> None:
    limits = RiskLimits(
        max_messages_per_second=CAP_S,
        max_messages_per_day=CAP_D,
        cancel_reserve_pct=reserve,
        duplicate_window_ns=0,
        max_active_orders=1_000,
    )
    # start close to midnight so some runs cross the Shanghai day boundary
    start = shanghai_ns(date(2024, 3, 4), "23:59:50")
    world = await make_world(start, auto_cancel=True, risk=limits)
    world.quotes.set(SYMBOL, bid=10_000, ask=10_010, last=10_000)
    risk = world.risk
    assert risk is not None
    asked: set[str] = set()
    price = 10_000
    for wait_ms, kind, count in bursts:
        await world.run_until(world.clock.now_ns() + wait_ms * MS)
        if kind == "submit":
            for _ in range(count):
                price = 10_000 + (price - 9_999) % 500
                buy(world, price=price)
        else:
            working = [o for o in world.oms.orders.values() if o.is_working]
            for order in working if kind == "cancel_all" else working[:count]:
                if world.oms.cancel(order.client_order_id):
                    asked.add(order.client_order_id)
        await world.oms.flush()
    await world.run_until(world.clock.now_ns() + 2 * 86_400 * SECOND_NS)  # let held cancels out
    times = sorted(world.broker.submit_times + world.broker.cancel_times)
    for i, t in enumerate(times):  # every 1-s window starting at a message
        j = i
        while j < len(times) and times[j] < t + SECOND_NS:
            j += 1
        assert j - i <= CAP_S, f"{j - i} messages in the second from {t}"
    per_day: dict[int, int] = {}
    for t in times:
        per_day[shanghai_day(t)] = per_day.get(shanghai_day(t), 0) + 1
    assert max(per_day.values(), default=0) <= CAP_D
    # no cancel dropped: every cancel asked for went to the broker, or its order ended by itself
    sent = set(world.broker.cancel_requests)
    for cid in asked:
        assert cid in sent or world.oms.orders[cid].status is not OrderStatus.PENDING_CANCEL
    assert world.oms.held_cancels == []
    assert risk.cancel_holds <= len(asked)  # each held cancel counted once, however often retried
    assert all(not o.is_working or o.client_order_id not in asked for o in world.oms.orders.values())


async def test_working_orders_adopted_after_a_restart_count_toward_the_active_cap() -> None:
    world, _ = await world_with(replace(LOOSE, max_active_orders=2))
    for i in range(2):  # rebuilt from the journal after attach, as recovery does
        order = Order(
            client_order_id=f"OLD{i}",
            symbol=SYMBOL,
            side=Side.BUY,
            price=10_000,
            quantity=100,
            status=OrderStatus.ACCEPTED,
            ts_created=T0,
            ts_updated=T0,
        )
        world.oms.adopt(order)
    assert denied_code(buy(world)) == "max_active_orders"


async def test_the_day_count_survives_a_restart_from_the_journaled_report_or_the_orders() -> None:
    limits = replace(LOOSE, max_messages_per_second=50, max_messages_per_day=20, cancel_reserve_pct=10)
    world, risk = await world_with(limits, auto_cancel=True)
    orders = [buy(world, price=10_000 + i * 10) for i in range(10)]
    await world.oms.flush()
    world.oms.cancel(orders[0].client_order_id)
    await world.oms.flush()
    saved = json.dumps(risk.report())
    # a new process the same day: from the report, or (report lost) from the journaled orders
    again = RiskControls(limits, world.clock, world.quotes, bus=EventBus())
    assert again.restore(saved) == 11
    again = RiskControls(limits, world.clock, world.quotes, bus=EventBus())
    assert again.restore(None, world.oms.orders.values()) == 11
    assert again.check(orders[0]) is None
    world2 = await make_world(world.clock.now_ns(), first_id=100, risk=limits)
    world2.quotes.set(SYMBOL, bid=10_000, ask=10_010, last=10_000)
    assert world2.risk is not None
    world2.risk.restore(saved)
    codes = [denied_code(buy(world2, price=11_000 - i * 10)) for i in range(8)]
    assert codes == [None] * 7 + ["rate_per_day"]  # 11 + 7 = 18, the order cap
    # a report from another day is ignored
    next_day = RiskControls(
        limits, SimClock(shanghai_ns(date(2024, 3, 5), "09:30")), world.quotes, bus=EventBus()
    )
    assert next_day.restore(saved) == 0


async def test_an_identical_order_after_the_previous_one_filled_is_not_a_duplicate() -> None:
    world, _ = await world_with(replace(LOOSE, duplicate_window_ns=SECOND_NS, duplicate_max=1))
    first = buy(world)
    await world.oms.flush()
    world.broker.fill_all(first.client_order_id)  # an iceberg show filled: the next show may follow
    second = buy(world)
    assert denied_code(second) is None
    await world.oms.flush()
    world.broker.fill(second.client_order_id, 50)  # partly filled, still working: duplicated
    assert denied_code(buy(world)) == "duplicate_order"


async def test_self_cross_against_our_own_working_order_is_denied_and_a_non_crossing_one_allowed() -> None:
    world, _ = await world_with(LOOSE)
    resting_sell = world.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.SELL, quantity=100, price=10_050))
    assert denied_code(resting_sell) is None
    await world.oms.flush()
    assert denied_code(buy(world, price=10_050)) == "self_cross"
    assert denied_code(buy(world, price=10_060)) == "self_cross"
    assert denied_code(buy(world, price=10_040)) is None  # below our offer: no cross
    assert denied_code(buy(world, price=10_050, symbol="600036.SH")) != "self_cross"
    world.broker.fill_all(resting_sell.client_order_id)
    assert denied_code(buy(world, price=10_050)) is None
    # a sell at 10.000 would cross our resting buy at 10.040; with the rule off it passes
    sell = SubmitOrder(symbol=SYMBOL, side=Side.SELL, quantity=100, price=10_000)
    assert denied_code(world.oms.submit(sell)) == "self_cross"
    off, _ = await world_with(replace(LOOSE, deny_self_cross=False))
    assert denied_code(buy(off, price=10_040)) is None  # the same resting buy, the rule off
    await off.oms.flush()
    assert denied_code(off.oms.submit(sell)) is None


async def test_cancels_per_symbol_per_second_over_the_cap_are_held_while_other_symbols_go() -> None:
    other = "600036.SH"
    world, risk = await world_with(replace(LOOSE, max_cancels_per_symbol_per_second=2))
    world.quotes.set(other, bid=10_000, ask=10_010, last=10_000)
    mine = [buy(world, price=10_000 + i * 10) for i in range(3)]
    theirs = buy(world, symbol=other)
    await world.oms.flush()
    for order in [*mine, theirs]:
        world.oms.cancel(order.client_order_id)
    await world.oms.flush()
    assert world.broker.cancel_requests == [
        mine[0].client_order_id,
        mine[1].client_order_id,
        theirs.client_order_id,
    ]
    assert [o.client_order_id for o in world.oms.held_cancels] == [mine[2].client_order_id]
    await world.run_until(T0 + SECOND_NS)
    assert world.broker.cancel_requests[-1] == mine[2].client_order_id
    assert world.broker.cancel_times[-1] == T0 + SECOND_NS
    assert risk.report()["cancel_holds"] == 1


async def test_a_market_order_is_not_collared_at_its_bound() -> None:
    world, _ = await world_with(replace(LOOSE, price_collar_bp=500))  # reference = last 10.000
    command = SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=11_000, order_type=OrderType.FAK)
    assert denied_code(world.oms.submit(command)) is None  # 10% off, but its price is only a bound
    assert denied_code(buy(world, price=11_000)) == "price_collar"  # the same price as a limit order
