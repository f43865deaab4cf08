"""The closing call auction: the simulated exchange's 15:00 uncross, and the algorithms' participation.

Exchange cases run on a small hand-built day (600000.SH, prev close 10.00) whose close snapshot says the
uncross printed 10.05 with 10,000 shares, and on the real full day of 000400.SZ (2022-06-01: close 20.63,
613,759 shares in the uncross).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fakes import World, calendar, make_world
from zhixing import replay
from zhixing.algos.base import AlgoContext
from zhixing.algos.pov import PovAlgo
from zhixing.algos.registry import create_algo, describe_algos
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import (
    OrderAccepted,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
)
from zhixing.engine.market import (
    Phase,
    TradingCalendar,
    check_order_quantity,
    check_price,
    instrument_for,
    price_limits,
    shanghai_ns,
)
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.replay.data import MarketData, SymbolDay, load_snapshot_file
from zhixing.replay.exchange import SimExchange
from zhixing.replay.harness import ReplayConfig, open_session
from zhixing.replay.matching import allocate_uncross, close_print

DAY = dt.date(2022, 6, 1)
SYM = "600000.SH"
LATENCY = 20_000_000
CALENDAR = TradingCalendar()
CLOSE = 10_050  # the uncross price of the hand-built day
AUCTION_VOLUME = 10_000

# time, last, cum_volume, (bid px, qty), (ask px, qty)      -- prices in milli-yuan
CLOSE_DAY: list[tuple[str, int, int, tuple[int, int], tuple[int, int]]] = [
    ("14:55:00", 10_100, 100_000, (10_090, 1_000), (10_110, 1_000)),
    ("14:56:57", 10_100, 101_000, (10_090, 1_000), (10_110, 1_000)),  # continuous: 1,000 traded
    ("14:57:00", 10_100, 101_500, (10_090, 1_000), (10_110, 1_000)),  # late report of continuous trades
    ("14:58:00", 10_100, 101_500, (10_060, 3_000), (10_040, 2_000)),  # the call: nothing trades
    ("15:00:00", CLOSE, 101_500 + AUCTION_VOLUME, (10_040, 500), (10_060, 800)),  # the uncross
    ("15:01:00", CLOSE, 101_500 + AUCTION_VOLUME, (10_040, 500), (10_060, 800)),
]


def at(hhmmss: str) -> int:
    return shanghai_ns(DAY, hhmmss)


def close_day(rows: list[tuple[str, int, int, tuple[int, int], tuple[int, int]]] = CLOSE_DAY) -> SymbolDay:
    n = len(rows)
    last = np.array([row[1] for row in rows], dtype=np.int64)
    cum_volume = np.array([row[2] for row in rows], dtype=np.int64)
    return SymbolDay(
        symbol=SYM,
        trade_date=DAY,
        ts=np.array([at(row[0]) for row in rows], dtype=np.int64),
        last=last,
        bid_px=np.array([[row[3][0]] for row in rows], dtype=np.int64),
        bid_qty=np.array([[row[3][1]] for row in rows], dtype=np.int64),
        ask_px=np.array([[row[4][0]] for row in rows], dtype=np.int64),
        ask_qty=np.array([[row[4][1]] for row in rows], dtype=np.int64),
        cum_volume=cum_volume,
        cum_amount=cum_volume * last,
        prev_close=10_000,
        high_limit=0,
        low_limit=0,
        phase=np.zeros(n, dtype=np.int8),
        phase_codes=("T",),
    )


@functools.cache
def real_day() -> SymbolDay:
    return load_snapshot_file(
        Path(replay.__file__).parent / "sample_data" / "snapshots_20220601" / "000400.SZ_20220601.csv.gz"
    )


class Venue:
    """A SimExchange (closing auction on unless told) on a SimClock, recording what it delivers."""

    def __init__(self, day: SymbolDay, *, start: str = "14:40:00", **kwargs: object) -> None:
        self.clock = SimClock(at(start))
        options: dict[str, object] = {
            "calendar": CALENDAR,
            "latency_ns": LATENCY,
            "cash": 10**11,
            "positions": {day.symbol: 1_000_000},
            "closing_auction": True,
        }
        options.update(kwargs)
        market = MarketData(days={day.symbol: day}, trade_date=DAY)
        self.exchange = SimExchange(market, self.clock, **options)  # type: ignore[arg-type]
        self.symbol = day.symbol
        self.events: list[OrderEvent] = []
        self.exchange.bind(self.events.append)
        self._ids = 0

    def run_until(self, when: int) -> None:
        while self.clock.step(until_ns=when):
            pass
        self.clock.advance_to(max(when, self.clock.now_ns()))

    def end_of_day(self) -> None:
        """What the replay harness does: run to 15:00, expire the rest, deliver everything."""
        self.run_until(at("15:00:00"))
        self.exchange.expire_all()
        while self.clock.step():
            pass

    async def submit(self, side: Side, price: int, quantity: int, *, when: str) -> str:
        self.run_until(at(when))
        self._ids += 1
        cid = f"C{self._ids:04d}"
        order = Order(client_order_id=cid, symbol=self.symbol, side=side, price=price, quantity=quantity)
        await self.exchange.submit(order)
        return cid

    async def cancel(self, cid: str, *, when: str) -> None:
        self.run_until(at(when))
        await self.exchange.cancel(
            Order(client_order_id=cid, symbol=self.symbol, side=Side.BUY, price=1, quantity=1)
        )

    def of(self, cid: str, kind: type[OrderEvent] = OrderEvent) -> list[OrderEvent]:
        return [e for e in self.events if e.client_order_id == cid and isinstance(e, kind)]

    def fills(self, cid: str) -> list[tuple[int, int, int]]:
        """(price, quantity, ts_event) of each fill of ``cid``."""
        return [
            (e.price, e.quantity, e.ts_event)
            for e in self.events
            if isinstance(e, OrderFilled) and e.client_order_id == cid
        ]


# ----------------------------------------------------------------------------------------- the data
def test_close_print_reads_the_close_snapshot_price_and_volume_jump() -> None:
    uncross = close_print(close_day(), at("15:00:00"))
    assert uncross is not None
    assert (uncross.price, uncross.volume) == (CLOSE, AUCTION_VOLUME)
    real = close_print(real_day(), at("15:00:00"))
    assert real is not None
    assert (real.price, real.volume) == (20_630, 64_458_834 - 63_845_075)


def test_close_print_needs_a_close_snapshot_near_15_00() -> None:
    assert close_print(close_day(CLOSE_DAY[:4]), at("15:00:00")) is None  # the file ends in the call
    late = [*CLOSE_DAY[:4], ("15:02:00", CLOSE, 111_500, (10_040, 500), (10_060, 800))]
    assert close_print(close_day(late), at("15:00:00")) is None


def test_allocate_uncross_is_first_come_first_served_up_to_the_budget() -> None:
    assert allocate_uncross([300, 500, 400], 700) == [300, 400, 0]
    assert allocate_uncross([300, 500], 10_000) == [300, 500]
    assert allocate_uncross([300], 0) == [0]


# ----------------------------------------------------------------------------------------- the uncross
async def test_one_uncross_at_the_close_price_for_eligible_orders_only() -> None:
    venue = Venue(close_day())
    buy_through = await venue.submit(Side.BUY, 10_100, 1_000, when="14:58:00")
    buy_at = await venue.submit(Side.BUY, CLOSE, 500, when="14:58:01")
    buy_below = await venue.submit(Side.BUY, CLOSE - 10, 700, when="14:58:02")
    sell_through = await venue.submit(Side.SELL, 10_000, 600, when="14:58:03")
    sell_above = await venue.submit(Side.SELL, CLOSE + 10, 800, when="14:58:04")
    venue.end_of_day()
    close_ns = at("15:00:00")
    assert venue.fills(buy_through) == [(CLOSE, 1_000, close_ns)]  # pays the close, not its limit
    assert venue.fills(buy_at) == [(CLOSE, 500, close_ns)]
    assert venue.fills(sell_through) == [(CLOSE, 600, close_ns)]
    for cid in (buy_below, sell_above):  # priced outside the close: no fill, expire at the end
        assert venue.fills(cid) == []
        assert len(venue.of(cid, OrderExpired)) == 1
    assert venue.exchange.stats.auction_fills == 3
    assert venue.exchange.stats.auction_volume == 2_100
    assert (await venue.exchange.query_account()).frozen == 0


async def test_orders_resting_into_the_call_take_part_in_the_uncross() -> None:
    venue = Venue(close_day())
    resting = await venue.submit(Side.BUY, 10_060, 1_000, when="14:50:00")  # below the continuous market
    venue.run_until(at("14:59:59"))
    assert venue.fills(resting) == []  # nothing in continuous trading, nothing during the call
    venue.end_of_day()
    assert venue.fills(resting) == [(CLOSE, 1_000, at("15:00:00"))]


async def test_fills_are_bounded_by_the_share_of_the_auction_volume_in_price_time_priority() -> None:
    venue = Venue(close_day())  # default share 0.5 of 10,000 shares
    first = await venue.submit(Side.BUY, CLOSE, 3_000, when="14:57:10")
    better = await venue.submit(Side.BUY, 10_100, 4_000, when="14:58:00")  # later but better priced
    last = await venue.submit(Side.BUY, CLOSE, 3_000, when="14:58:30")
    venue.end_of_day()
    assert venue.fills(better) == [(CLOSE, 4_000, at("15:00:00"))]
    assert venue.fills(first) == [(CLOSE, 1_000, at("15:00:00"))]  # the rest of the 5,000 budget
    assert venue.fills(last) == []
    assert len(venue.of(first, OrderExpired)) == 1  # its unfilled rest expires at the end of day
    assert len(venue.of(last, OrderExpired)) == 1


@pytest.mark.parametrize(("share", "filled"), [(1.0, AUCTION_VOLUME), (0.1, 1_000)])
async def test_auction_share_is_configurable(share: float, filled: int) -> None:
    venue = Venue(close_day(), auction_share=share)
    cid = await venue.submit(Side.BUY, 10_100, 20_000, when="14:58:00")
    venue.end_of_day()
    assert sum(q for _, q, _ in venue.fills(cid)) == filled


def test_auction_share_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="auction_share"):
        Venue(close_day(), auction_share=0.0)
    with pytest.raises(ValueError, match="auction_share"):
        Venue(close_day(), auction_share=1.5)


async def test_no_cancel_in_the_closing_call_and_the_order_still_uncrosses() -> None:
    venue = Venue(close_day())
    cid = await venue.submit(Side.BUY, 10_100, 1_000, when="14:57:30")
    await venue.cancel(cid, when="14:59:00")
    venue.end_of_day()
    assert venue.of(cid, OrderAccepted)
    (rejected,) = venue.of(cid, OrderCancelRejected)
    assert isinstance(rejected, OrderCancelRejected)
    assert rejected.reason == "cancel_not_accepted_now"
    assert venue.fills(cid) == [(CLOSE, 1_000, at("15:00:00"))]
    assert venue.exchange.stats.cancel_rejected == {"cancel_not_accepted_now": 1}


async def test_without_the_closing_auction_orders_in_the_call_only_expire() -> None:
    venue = Venue(close_day(), closing_auction=False)
    cid = await venue.submit(Side.BUY, 10_100, 1_000, when="14:58:00")
    venue.end_of_day()
    assert venue.fills(cid) == []
    assert len(venue.of(cid, OrderExpired)) == 1
    assert venue.exchange.stats.auction_fills == 0


async def test_no_close_snapshot_means_no_uncross() -> None:
    venue = Venue(close_day(CLOSE_DAY[:4]))
    cid = await venue.submit(Side.BUY, 10_100, 1_000, when="14:58:00")
    venue.end_of_day()
    assert venue.fills(cid) == []
    assert len(venue.of(cid, OrderExpired)) == 1


async def test_real_day_uncross_at_the_published_close_bounded_by_its_volume() -> None:
    day = real_day()
    venue = Venue(day)
    volume = 64_458_834 - 63_845_075
    buy = await venue.submit(Side.BUY, 20_700, 400_000, when="14:57:30")
    sell = await venue.submit(Side.SELL, 20_640, 10_000, when="14:57:31")  # above the close: no fill
    venue.end_of_day()
    assert venue.fills(buy) == [(20_630, volume // 2, at("15:00:00"))]
    assert venue.fills(sell) == []
    orders = {r.client_order_id: r for r in await venue.exchange.query_orders()}
    assert orders[buy].status is OrderStatus.EXPIRED
    assert orders[buy].filled_quantity == volume // 2
    trades = await venue.exchange.query_trades()
    assert [(t.price, t.quantity) for t in trades] == [(20_630, volume // 2)]


# ----------------------------------------------------------------------------------------- the algorithms
ALGO_DAY = dt.date(2021, 12, 1)
ALGO_SYM = "600000.SH"  # main board: lot 100, tick 0.01, prev close 10.00 -> limits 9.00 / 11.00
BID, ASK = 9_990, 10_000


def t(hhmmss: str) -> int:
    return shanghai_ns(ALGO_DAY, hhmmss)


def algo_parent(
    quantity: int = 1_000,
    *,
    side: Side = Side.BUY,
    start: str = "14:50",
    end: str = "15:00",
    algo: str = "twap",
    extra: dict[str, str] | None = None,
    **params: str,
) -> ParentOrder:
    return ParentOrder(
        parent_id="P1",
        symbol=ALGO_SYM,
        side=side,
        quantity=quantity,
        start_ns=t(start),
        end_ns=t(end),
        algo=algo,
        params={**params, **(extra or {})},
    )


def algo_context(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


def continuous_only(order: Order) -> int:
    """The fake broker fills every continuous child at once and leaves the auction order working."""
    return 0 if order.tag.endswith(":auction") else order.quantity


async def fake_world(**kwargs: Any) -> World:
    world = await make_world(t("14:49:59"), **kwargs)
    world.quotes.set(ALGO_SYM, bid=BID, ask=ASK)
    return world


async def test_twap_keeps_the_auction_part_out_of_the_slices_and_sends_one_order_at_14_57() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    algo = TwapAlgo(algo_parent(closing_auction="0.2"), algo_context(world))
    algo.start()
    assert algo.auction_quantity == 200
    assert algo.auction_at == t("14:57:00")
    assert algo.targets[-1] == 800  # the continuous schedule aims at the rest
    await world.run_until(t("14:56:59"))
    assert algo.filled_quantity == 800
    assert all(o.tag != "twap:auction" for o in world.broker.submitted)
    await world.run_until(t("14:59:59"))
    (auction,) = [o for o in world.broker.submitted if o.tag == "twap:auction"]
    assert world.broker.submit_times[world.broker.submitted.index(auction)] == t("14:57:00")
    assert auction.quantity == 200
    assert auction.price == BID + 10 * 10  # last (= bid here) + 10 ticks
    assert not algo.done  # waits for the uncross
    algo.cancel()  # the operator cancels in the call: nothing is sent to the exchange for it
    assert auction.client_order_id not in world.broker.cancel_requests
    world.broker.fill_all(auction.client_order_id)
    await world.oms.flush()
    assert algo.done
    assert algo.filled_quantity == 1_000


async def test_final_sweep_does_not_double_up_with_the_auction_order() -> None:
    world = await fake_world(auto_cancel=True)  # nothing fills in continuous trading
    algo = TwapAlgo(algo_parent(closing_auction="0.2", final_sweep_s="30"), algo_context(world))
    algo.start()
    await world.run_until(t("14:59:59"))
    sweep = [o for o in world.broker.submitted if o.tag == "twap:sweep"]
    auction = [o for o in world.broker.submitted if o.tag == "twap:auction"]
    assert [o.quantity for o in sweep] == [800]
    assert [o.quantity for o in auction] == [200]  # the continuous shortfall is not rolled in
    assert world.broker.cancel_times[-1] == t("14:56:57")  # end-of-window cancels before the call
    assert all(o.tag == "twap:auction" or o.is_terminal for o in world.broker.submitted)
    assert algo.working_quantity == 200


async def test_sell_odd_tail_rides_whole_on_the_auction_order() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    parent = algo_parent(1_050, side=Side.SELL, closing_auction="0.3")
    algo = TwapAlgo(parent, algo_context(world))
    algo.start()
    assert algo.auction_quantity == 350  # floor(0.3 x 1,050) = 315 -> 300 in whole lots, + the 50 tail
    assert algo.targets[-1] == 700  # the continuous children stay on the lot grid
    await world.run_until(t("14:59:59"))
    (auction,) = [o for o in world.broker.submitted if o.tag == "twap:auction"]
    assert (auction.quantity, auction.price) == (350, BID - 10 * 10)  # sent whole, odd tail included
    assert algo.filled_quantity == 700


async def test_auction_price_is_clamped_to_the_daily_limit() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    world.quotes.set(ALGO_SYM, bid=10_990, ask=11_000, last=10_990)  # one tick under the high limit
    algo = TwapAlgo(algo_parent(closing_auction="0.5", auction_offset_ticks="5"), algo_context(world))
    algo.start()
    await world.run_until(t("14:59:59"))
    (auction,) = [o for o in world.broker.submitted if o.tag == "twap:auction"]
    assert auction.price == 11_000


@pytest.mark.parametrize("end", ["14:30", "14:58"])
async def test_no_auction_part_when_the_window_does_not_reach_the_close(end: str) -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    algo = TwapAlgo(algo_parent(start="14:00", end=end, closing_auction="0.2"), algo_context(world))
    algo.start()
    assert algo.auction_quantity == 0
    assert algo.targets[-1] == 1_000


async def test_closing_auction_zero_sends_exactly_what_it_sent_before() -> None:
    runs = []
    for params in ({}, {"closing_auction": "0"}):
        world = await fake_world(auto_cancel=True)
        algo = TwapAlgo(algo_parent(extra=params), algo_context(world))
        algo.start()
        await world.run_until(t("15:00:00"))
        runs.append(
            [
                (o.tag, o.quantity, o.price, when)
                for o, when in zip(world.broker.submitted, world.broker.submit_times, strict=True)
            ]
        )
        assert algo.done
    assert runs[0] == runs[1]
    assert all(when < t("14:56:57") for *_, when in runs[0])


async def test_state_keeps_the_auction_plan_and_old_states_restore_without_one() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    algo = TwapAlgo(algo_parent(closing_auction="0.2"), algo_context(world))
    algo.start()
    state = algo.state()
    assert (state["auction_qty"], state["auction_at"], state["auction_sent"]) == (200, t("14:57:00"), False)
    old = {
        k: v
        for k, v in state.items()
        if k not in ("auction_qty", "auction_at", "auction_sent", "continuous_over")
    }
    restored = TwapAlgo(algo_parent(), algo_context(await fake_world()))
    restored.restore(old)
    assert restored.auction_quantity == 0


async def test_restart_after_the_auction_order_went_out_never_cancels_it() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    algo = TwapAlgo(algo_parent(closing_auction="0.2"), algo_context(world))
    algo.start()
    await world.run_until(t("14:58:00"))
    state = algo.state()
    assert state["auction_sent"] is True
    again = TwapAlgo(algo_parent(closing_auction="0.2"), algo_context(world))
    again.restore(state)
    again.start()  # rebuilt children: the auction order is working
    await world.run_until(t("14:59:00"))
    assert world.broker.cancel_requests == []
    assert again.working_quantity == 200
    assert not again.done


@pytest.mark.parametrize(
    ("algo", "params", "message"),
    [
        ("twap", {"closing_auction": "1.5"}, "twap parameter 'closing_auction' must be in"),
        ("vwap", {"closing_auction": "-0.1", "profile": "u_shape"}, "vwap parameter 'closing_auction'"),
        ("pov", {"closing_auction": "nan"}, "pov parameter 'closing_auction'"),
        ("twap", {"auction_offset_ticks": "-1"}, "'auction_offset_ticks' must be >= 0"),
    ],
)
async def test_bad_closing_auction_parameters_are_refused(
    algo: str, params: dict[str, str], message: str
) -> None:
    world = await fake_world()
    with pytest.raises(ValueError, match=message):
        create_algo(algo_parent(algo=algo, extra=params), algo_context(world))


def test_zhixing_algos_documents_the_closing_auction_parameters() -> None:
    rows = {(algo, name): (default, text) for algo, name, default, text in describe_algos()}
    for algo in ("twap", "vwap", "pov"):
        assert rows[(algo, "closing_auction")][0] == "0.0"
        assert "closing" in rows[(algo, "closing_auction")][1]
        assert rows[(algo, "auction_offset_ticks")][0] == "10"
    assert ("iceberg", "closing_auction") not in rows


async def test_pov_caps_its_continuous_target_below_the_auction_part() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    algo = create_algo(
        algo_parent(algo="pov", closing_auction="0.5", target_rate="1", max_rate="1"), algo_context(world)
    )
    assert isinstance(algo, PovAlgo)
    algo.start()
    assert algo.auction_quantity == 500
    for minute in range(1, 7):  # the market trades 100,000 shares a minute
        await world.run_until(t(f"14:5{minute - 1}:30"))
        world.quotes.quotes[ALGO_SYM] = dataclasses.replace(
            world.quotes.quotes[ALGO_SYM], cum_volume=minute * 100_000
        )
        await world.run_until(t(f"14:5{minute}:00"))
    assert algo.filled_quantity == 500  # never more than the continuous part
    await world.run_until(t("14:59:59"))
    (auction,) = [o for o in world.broker.submitted if o.tag == "pov:auction"]
    assert auction.quantity == 500


# ------------------------------------------------------------------------------ real data, end to end
REAL_SYM = "000400.SZ"
REAL_CLOSE = 20_630
REAL_AUCTION_VOLUME = 64_458_834 - 63_845_075


def enable_auction(exchange: SimExchange, clock: SimClock) -> SimExchange:
    """``open_session``'s adapter hook, used here to switch the exchange's closing auction on."""
    exchange.set_closing_auction(True)
    return exchange


async def run_real_twap(
    tmp_path: Path, params: dict[str, str], *, auction: bool
) -> tuple[list[Order], list[OrderFilled]]:
    """A 50,000-share TWAP buy of 000400.SZ over 2022-06-01 13:00-15:00 through the real engine."""
    market = MarketData(days={REAL_SYM: real_day()}, trade_date=DAY)
    start, end = at("13:00:00"), at("15:00:00")
    config = ReplayConfig(cash=10**11, db_path=tmp_path / f"journal_{auction}_{len(params)}.db")
    session = await open_session(market, config, start, wrap=enable_auction if auction else None)
    try:
        parent = ParentOrder(
            parent_id="P1",
            symbol=REAL_SYM,
            side=Side.BUY,
            quantity=50_000,
            start_ns=start,
            end_ns=end,
            params=params,
        )
        session.store.stage_parent(parent.to_row())
        algo = TwapAlgo(parent, session.ctx)
        algo.start()
        await session.store.commit()
        await session.run(end, lambda: algo.done)
        assert algo.done
        return session.oms.children_of("P1"), list(session.fills)
    finally:
        await session.store.close()


def assert_valid_child(order: Order, *, in_call: bool) -> None:
    inst = instrument_for(order.symbol)
    low, high = price_limits(inst, real_day().prev_close)
    assert (real_day().low_limit, real_day().high_limit) == (low, high)
    assert check_order_quantity(inst, order.side, order.quantity, 0) is None
    assert check_price(inst, order.price, low, high) is None
    phase = CALENDAR.phase_at(order.ts_created)
    assert phase is (Phase.CLOSING_CALL if in_call else Phase.CONTINUOUS), (order, phase)


async def test_twap_with_a_fifth_in_the_close_on_real_data(tmp_path: Path) -> None:
    children, fills = await run_real_twap(tmp_path, {"closing_auction": "0.2"}, auction=True)
    auction = [o for o in children if o.tag == "twap:auction"]
    assert len(auction) == 1
    for order in children:
        assert_valid_child(order, in_call=order in auction)
    close_fills = [f for f in fills if f.ts_event == at("15:00:00")]
    continuous_fills = [f for f in fills if f.ts_event != at("15:00:00")]
    assert {f.client_order_id for f in close_fills} == {auction[0].client_order_id}
    assert {f.price for f in close_fills} == {REAL_CLOSE}
    assert sum(f.quantity for f in close_fills) == 10_000  # 20% of the parent, well inside the close volume
    assert REAL_AUCTION_VOLUME // 2 >= 10_000
    assert all(CALENDAR.is_continuous(f.ts_event) for f in continuous_fills)
    assert sum(f.quantity for f in continuous_fills) == 40_000
    assert auction[0].price == 20_620 + 10 * 10  # 14:57 last + 10 ticks


async def test_closing_auction_zero_on_real_data_trades_exactly_as_before(tmp_path: Path) -> None:
    before, before_fills = await run_real_twap(tmp_path, {}, auction=False)
    after, after_fills = await run_real_twap(tmp_path, {"closing_auction": "0"}, auction=True)
    assert [(o.tag, o.quantity, o.price, o.ts_created, o.status) for o in before] == [
        (o.tag, o.quantity, o.price, o.ts_created, o.status) for o in after
    ]
    assert [(f.price, f.quantity, f.ts_event) for f in before_fills] == [
        (f.price, f.quantity, f.ts_event) for f in after_fills
    ]
    assert all(CALENDAR.is_continuous(f.ts_event) for f in after_fills)
    for order in after:
        assert_valid_child(order, in_call=False)


async def test_pause_in_the_call_leaves_the_auction_order_and_a_late_resume_misses_it() -> None:
    world = await fake_world(fill_on_submit=continuous_only)
    algo = TwapAlgo(algo_parent(closing_auction="0.2"), algo_context(world))
    algo.start()
    await world.run_until(t("14:58:00"))
    algo.pause()  # finishing already (the auction order is out): nothing to cancel, nothing sent
    assert world.broker.cancel_requests == []
    assert algo.working_quantity == 200

    late = await fake_world(fill_on_submit=continuous_only)
    other = TwapAlgo(algo_parent(closing_auction="0.2"), algo_context(late))
    other.start()
    await late.run_until(t("14:56:59"))
    other.pause()  # before 14:57: the auction order is not sent while paused
    await late.run_until(t("15:00:01"))
    other.resume()
    await late.run_until(t("15:00:02"))
    assert all(o.tag != "twap:auction" for o in late.broker.submitted)
    assert other.done
    assert other.unfilled_reason == "closing_auction_missed"
    assert other.filled_quantity == 800
