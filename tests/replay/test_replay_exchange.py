"""The simulated exchange: latency, validation, matching against snapshots, fees, cancels, queries.

Most cases run on a tiny hand-built ``SymbolDay`` (600000.SH, prev close 10.00, limits computed as
9.00 / 11.00) whose snapshots are listed in ``TINY``; the rest on the real full day of 000400.SZ.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhixing import replay
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerError
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from zhixing.engine.market import FeeSchedule, TradingCalendar, instrument_for, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.replay.data import MarketData, SymbolDay, load_snapshot_file
from zhixing.replay.exchange import SimExchange
from zhixing.replay.matching import ContinuousWindows, SymbolBook

DAY = dt.date(2022, 6, 1)
SYM = "600000.SH"
LATENCY = 20_000_000
MS = 1_000_000
CALENDAR = TradingCalendar()
FEES = FeeSchedule()

# time, last, cum_volume, (bid px, qty) x2, (ask px, qty) x2      -- prices in milli-yuan
TINY: list[tuple[str, int, int, tuple[int, int, int, int], tuple[int, int, int, int]]] = [
    ("09:29:57", 10000, 50_000, (9990, 1000, 0, 0), (10010, 1000, 0, 0)),  # 0 pre-continuous
    ("09:30:00", 10000, 51_000, (9990, 500, 9980, 800), (10010, 300, 10020, 400)),  # 1
    ("09:30:03", 10010, 52_000, (10000, 500, 9990, 500), (10030, 400, 10040, 500)),  # 2
    ("09:30:06", 9990, 52_600, (9980, 300, 9970, 500), (10000, 200, 10010, 500)),  # 3: 600 traded
    ("09:30:09", 9970, 53_000, (9960, 300, 9950, 500), (9980, 200, 9990, 500)),  # 4: 400 traded
    ("11:29:57", 10000, 60_000, (9990, 500, 9980, 500), (10010, 500, 10020, 500)),  # 5
    ("11:30:00", 9950, 61_000, (9940, 500, 9930, 500), (9950, 500, 9960, 500)),  # 6 lunch: no match
    ("13:00:03", 9950, 62_000, (9940, 500, 9930, 500), (9960, 500, 9970, 500)),  # 7: 1000 traded
]


def at(hhmmss: str) -> int:
    return shanghai_ns(DAY, hhmmss)


def tiny_day(symbol: str = SYM) -> SymbolDay:
    n = len(TINY)
    books = np.array([[*bid, *ask] for _, _, _, bid, ask in TINY], dtype=np.int64)
    last = np.array([row[1] for row in TINY], dtype=np.int64)
    cum_volume = np.array([row[2] for row in TINY], dtype=np.int64)
    return SymbolDay(
        symbol=symbol,
        trade_date=DAY,
        ts=np.array([at(row[0]) for row in TINY], dtype=np.int64),
        last=last,
        bid_px=books[:, [0, 2]].copy(),
        bid_qty=books[:, [1, 3]].copy(),
        ask_px=books[:, [4, 6]].copy(),
        ask_qty=books[:, [5, 7]].copy(),
        cum_volume=cum_volume,
        cum_amount=cum_volume * last,
        prev_close=10000,
        high_limit=0,
        low_limit=0,
        phase=np.zeros(n, dtype=np.int8),
        phase_codes=("T",),
    )


@functools.cache
def real_day() -> SymbolDay:
    # shipped with the package: the test never depends on files outside the repository
    return load_snapshot_file(
        Path(replay.__file__).parent / "sample_data" / "snapshots_20220601" / "000400.SZ_20220601.csv.gz"
    )


class Venue:
    """A SimExchange on a SimClock with a sink that records events and checks their delivery time."""

    def __init__(self, market: MarketData, start: str = "09:00:00", **kwargs: object) -> None:
        self.clock = SimClock(at(start))
        options: dict[str, object] = {"calendar": CALENDAR, "latency_ns": LATENCY, "cash": 10**10}
        options.update(kwargs)
        self.exchange = SimExchange(market, self.clock, **options)  # type: ignore[arg-type]
        self.events: list[OrderEvent] = []
        self.exchange.bind(self._sink)
        self._ids = 0

    def _sink(self, event: OrderEvent) -> None:
        assert event.ts_init == self.clock.now_ns() == event.ts_event + LATENCY
        self.events.append(event)

    def run_until(self, when: int) -> None:
        while self.clock.step(until_ns=when):
            pass
        self.clock.advance_to(max(when, self.clock.now_ns()))

    def run(self) -> None:
        while self.clock.step():
            pass

    async def submit(
        self, side: Side, price: int, quantity: int, *, when: str | int, symbol: str = SYM
    ) -> str:
        self.run_until(at(when) if isinstance(when, str) else when)
        self._ids += 1
        cid = f"C{self._ids:04d}"
        order = Order(client_order_id=cid, symbol=symbol, side=side, price=price, quantity=quantity)
        await self.exchange.submit(order)
        return cid

    async def cancel(self, cid: str, *, when: str | int, symbol: str = SYM) -> None:
        self.run_until(at(when) if isinstance(when, str) else when)
        order = Order(client_order_id=cid, symbol=symbol, side=Side.BUY, price=1, quantity=1)
        await self.exchange.cancel(order)

    def of(self, cid: str, kind: type[OrderEvent] = OrderEvent) -> list[OrderEvent]:
        return [e for e in self.events if e.client_order_id == cid and isinstance(e, kind)]

    def fills(self, cid: str | None = None) -> list[OrderFilled]:
        return [
            e for e in self.events if isinstance(e, OrderFilled) and (cid is None or e.client_order_id == cid)
        ]


def tiny_venue(**kwargs: object) -> Venue:
    return Venue(MarketData(days={SYM: tiny_day()}, trade_date=DAY), **kwargs)


def reject_reason(venue: Venue, cid: str) -> str:
    (event,) = venue.of(cid, OrderRejected)
    assert isinstance(event, OrderRejected)
    return event.reason


# ----------------------------------------------------------------------------------------- latency
async def test_submit_returns_at_once_and_events_arrive_one_latency_each_way() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 9900, 100, when="09:30:01")
    assert venue.events == []  # nothing happens until the clock moves
    venue.run()
    (accepted,) = venue.of(cid, OrderAccepted)
    assert isinstance(accepted, OrderAccepted)
    assert accepted.ts_event == at("09:30:01") + LATENCY  # arrival at the exchange
    assert accepted.ts_init == at("09:30:01") + 2 * LATENCY  # delivery back to us
    assert accepted.broker_order_id == "S00000001"


# ----------------------------------------------------------------------------------------- matching
async def test_aggressive_buy_takes_two_ask_levels_at_level_prices_and_rests_the_rest() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 10020, 1000, when="09:30:01")
    venue.run_until(at("09:30:02"))
    arrival = at("09:30:01") + LATENCY
    assert [(f.price, f.quantity, f.ts_event) for f in venue.fills(cid)] == [
        (10010, 300, arrival),
        (10020, 400, arrival),
    ]
    assert [f.trade_id for f in venue.fills(cid)] == ["T000000001", "T000000002"]
    (report,) = await venue.exchange.query_orders()
    assert (report.status, report.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 700)
    venue.run()
    # the remaining 300 rests at 10.02 and fills at its own price when the market trades through it
    assert [(f.price, f.quantity, f.ts_event) for f in venue.fills(cid)][2:] == [(10020, 300, at("09:30:03"))]


async def test_resting_buy_fills_on_trade_through_bounded_by_traded_volume() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 9990, 1000, when="09:30:01")
    venue.run()
    # 09:30:06 traded 600 shares with last 9.99; 09:30:09 traded 400 with last 9.97 (and asks <= 9.99)
    assert [(f.price, f.quantity, f.ts_event) for f in venue.fills(cid)] == [
        (9990, 600, at("09:30:06")),
        (9990, 400, at("09:30:09")),
    ]
    assert venue.exchange.stats.filled_volume == 1000


async def test_resting_sell_fills_when_the_bid_rises_to_its_price() -> None:
    venue = tiny_venue(positions={SYM: 1000})
    cid = await venue.submit(Side.SELL, 10000, 700, when="09:30:01")
    venue.run()
    # 09:30:03: bid 10.00 x 500 (depth at or better), last 10.01 >= 10.00 with 1000 traded
    assert [(f.price, f.quantity, f.ts_event) for f in venue.fills(cid)] == [(10000, 700, at("09:30:03"))]


async def test_resting_order_does_not_take_the_same_displayed_ask_twice() -> None:
    day = tiny_day()
    ask_px, ask_qty = day.ask_px.copy(), day.ask_qty.copy()
    ask_px[5], ask_qty[5] = ask_px[4], ask_qty[4]  # 11:29:57 still shows 9.98 x 200, 9.99 x 500
    stale = dataclasses.replace(day, ask_px=ask_px, ask_qty=ask_qty)
    venue = Venue(MarketData(days={SYM: stale}, trade_date=DAY))
    cid = await venue.submit(Side.BUY, 9990, 5000, when="09:30:01")
    venue.run()
    assert [(f.quantity, f.ts_event) for f in venue.fills(cid)] == [
        (600, at("09:30:06")),  # traded volume at 9.99
        (1100, at("09:30:09")),  # asks 9.98 x 200 + 9.99 x 500 appear, and 400 traded at 9.97
        (2000, at("13:00:03")),  # nothing new at 11:29:57; after lunch all shown is new, plus 1000 traded
    ]


async def test_no_fill_at_lunch_resting_order_waits_for_the_afternoon() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 9950, 500, when="11:29:59")
    venue.run()
    # 11:30:00 shows last 9.95 and asks at 9.95 but is lunch; 13:00:03 trades 1000 at 9.95
    assert [(f.price, f.quantity, f.ts_event) for f in venue.fills(cid)] == [(9950, 500, at("13:00:03"))]
    assert all(f.ts_event >= at("13:00:00") for f in venue.fills())


async def test_order_in_the_opening_call_rests_and_fills_only_in_continuous_trading() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 10010, 200, when="09:29:58")  # latest snapshot is pre-continuous
    venue.run()
    assert [(f.price, f.quantity, f.ts_event) for f in venue.fills(cid)] == [(10010, 200, at("09:30:00"))]


async def test_two_resting_orders_never_share_traded_volume_and_better_price_goes_first() -> None:
    venue = tiny_venue()
    worse = await venue.submit(Side.BUY, 9980, 1000, when="09:30:01")
    better = await venue.submit(Side.BUY, 9990, 1000, when="09:30:01")
    venue.run_until(at("09:30:10"))
    by_order = {cid: [(f.quantity, f.ts_event) for f in venue.fills(cid)] for cid in (worse, better)}
    # 09:30:06: 600 traded at 9.99 and only the 9.99 order qualifies. 09:30:09: 400 traded at 9.97 and
    # asks 9.98 x 200, 9.99 x 500 are displayed: the better order goes first and takes the 400 it still
    # needs from the asks; the worse one finds 9.98 x 200 used up and gets the 400 traded shares.
    assert by_order[better] == [(600, at("09:30:06")), (400, at("09:30:09"))]
    assert by_order[worse] == [(400, at("09:30:09"))]


async def test_two_passive_orders_split_one_traded_volume() -> None:
    venue = tiny_venue(positions={SYM: 5000})
    first = await venue.submit(Side.SELL, 10010, 800, when="09:30:01")
    second = await venue.submit(Side.SELL, 10010, 800, when="09:30:01")
    venue.run_until(at("09:30:04"))
    # 09:30:03 traded 1000 with last 10.01, and no bid reaches 10.01: 1000 shares to share, not 2000
    assert [f.quantity for f in venue.fills(first)] == [800]
    assert [f.quantity for f in venue.fills(second)] == [200]


# ----------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("side", "price", "quantity", "reason"),
    [
        (Side.BUY, 10000, 150, "quantity_not_lot_multiple"),
        (Side.BUY, 10000, 50, "quantity_below_minimum"),
        (Side.BUY, 10005, 100, "price_off_tick"),
        (Side.BUY, 11010, 100, "price_above_limit_up"),
        (Side.SELL, 8990, 100, "price_below_limit_down"),
        (Side.BUY, 10000, 2_000_000, "quantity_above_max"),
    ],
)
async def test_invalid_orders_are_rejected_with_a_reason(
    side: Side, price: int, quantity: int, reason: str
) -> None:
    venue = tiny_venue(positions={SYM: 1000})
    cid = await venue.submit(side, price, quantity, when="09:30:01")
    venue.run()
    assert reject_reason(venue, cid) == reason
    assert venue.exchange.stats.rejected == {reason: 1}


@pytest.mark.parametrize(
    ("when", "price", "quantity", "cash", "reason"),
    [
        ("08:00:00", 10005, 150, 0, "market_closed"),  # session before quantity
        ("09:30:01", 10005, 150, 0, "quantity_not_lot_multiple"),  # quantity before price
        ("09:30:01", 10005, 100, 0, "price_off_tick"),  # price before cash
        ("09:30:01", 10000, 100, 0, "insufficient_cash"),
    ],
)
async def test_checks_run_in_the_exchange_order(
    when: str, price: int, quantity: int, cash: int, reason: str
) -> None:
    venue = tiny_venue(start="07:00:00", cash=cash)
    cid = await venue.submit(Side.BUY, price, quantity, when=when)
    venue.run()
    assert reject_reason(venue, cid) == reason
    (report,) = await venue.exchange.query_orders()
    assert (report.status, report.reason, report.broker_order_id) == (OrderStatus.REJECTED, reason, "")


async def test_limit_up_price_itself_is_accepted() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 11000, 100, when="09:30:01")  # round(10.00 x 1.1, 2)
    venue.run()
    assert venue.of(cid, OrderAccepted)


async def test_unknown_symbol_is_rejected_before_anything_else() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 10005, 1, when="08:00:00", symbol="600001.SH")
    venue.run()
    assert reject_reason(venue, cid) == "unknown_symbol"


@pytest.mark.parametrize("when", ["08:00:00", "15:30:00"])
async def test_market_closed_before_the_open_and_after_the_close(when: str) -> None:
    venue = tiny_venue(start="07:00:00")
    cid = await venue.submit(Side.BUY, 10000, 100, when=when)
    venue.run()
    assert reject_reason(venue, cid) == "market_closed"


async def test_insufficient_cash_is_rejected_and_nothing_is_frozen() -> None:
    venue = tiny_venue(cash=1_000_000)  # 1,000 CNY; 100 x 10.00 + 5 CNY minimum commission > 1,000
    cid = await venue.submit(Side.BUY, 10000, 100, when="09:30:01")
    venue.run()
    assert reject_reason(venue, cid) == "insufficient_cash"
    account = await venue.exchange.query_account()
    assert (account.cash, account.frozen) == (1_000_000, 0)


async def test_t_plus_one_shares_bought_today_cannot_be_sold_today() -> None:
    venue = tiny_venue(positions={SYM: 100})
    buy = await venue.submit(Side.BUY, 10020, 300, when="09:30:01")
    venue.run_until(at("09:30:02"))
    assert sum(f.quantity for f in venue.fills(buy)) == 300
    too_many = await venue.submit(Side.SELL, 9900, 200, when="09:30:02")
    ok = await venue.submit(Side.SELL, 9900, 100, when="09:30:02")
    then = await venue.submit(Side.SELL, 9900, 100, when="09:30:02")  # the 100 is frozen by `ok`
    venue.run()
    assert reject_reason(venue, too_many) == "insufficient_sellable"
    assert venue.of(ok, OrderAccepted)
    assert reject_reason(venue, then) == "insufficient_sellable"
    (position,) = await venue.exchange.query_positions()
    assert (position.quantity, position.sellable) == (300, 0)


async def test_selling_an_odd_lot_must_sell_all_of_it() -> None:
    venue = tiny_venue(positions={SYM: 150})
    part = await venue.submit(Side.SELL, 9900, 50, when="09:30:01")
    whole = await venue.submit(Side.SELL, 9900, 150, when="09:30:01")
    venue.run()
    assert reject_reason(venue, part) == "odd_lot_must_sell_all"
    assert venue.of(whole, OrderAccepted)


async def test_duplicate_client_order_id_fails_at_once() -> None:
    venue = tiny_venue()
    order = Order(client_order_id="X", symbol=SYM, side=Side.BUY, price=10000, quantity=100)
    await venue.exchange.submit(order)
    with pytest.raises(BrokerError, match="already submitted"):
        await venue.exchange.submit(order)


# ----------------------------------------------------------------------------------------- fees, cash
async def test_fees_minimum_commission_once_per_order_and_stamp_duty_on_sells_only() -> None:
    venue = tiny_venue(cash=10_000_000, positions={SYM: 1000})
    buy = await venue.submit(Side.BUY, 10020, 700, when="09:30:01")  # fills 300 @10.01 + 400 @10.02
    sell = await venue.submit(Side.SELL, 10000, 500, when="09:30:01")
    venue.run()
    buy_fills = venue.fills(buy)
    assert [f.commission for f in buy_fills] == [5000, 0]  # 5 CNY minimum, charged once per order
    assert all(f.stamp_duty == 0 for f in buy_fills)
    value = 300 * 10010 + 400 * 10020
    instrument = instrument_for(SYM)
    expected_transfer = FEES.fees(instrument, Side.BUY, value, 1)[2]
    assert sum(f.transfer_fee for f in buy_fills) == expected_transfer == 70  # 0.001% of 7,011 CNY
    (sell_fill,) = venue.fills(sell)
    assert (sell_fill.price, sell_fill.quantity) == (10000, 500)
    assert sell_fill.commission == 5000
    assert sell_fill.stamp_duty == 5000  # 0.1% of 5,000 CNY: the rate of the replayed 2022-06-01
    assert sell_fill.transfer_fee == 50
    account = await venue.exchange.query_account()
    buy_cost = value + sum(f.fees for f in buy_fills)
    assert account.cash == 10_000_000 - buy_cost + 500 * 10000 - sell_fill.fees
    assert account.frozen == 0
    trades = await venue.exchange.query_trades()
    assert [t.trade_id for t in trades] == [f.trade_id for f in venue.fills()]
    assert sum(t.commission + t.stamp_duty + t.transfer_fee for t in trades) == venue.exchange.stats.fees


async def test_working_buy_freezes_cash_and_reports_mark_to_market() -> None:
    venue = tiny_venue(cash=5_000_000, positions={SYM: 200})
    await venue.submit(Side.BUY, 9000, 100, when="09:30:01")
    venue.run_until(at("09:30:04"))
    account = await venue.exchange.query_account()
    frozen = 100 * 9000 + FEES.total(instrument_for(SYM), Side.BUY, 9000, 100)
    assert account.frozen == frozen
    assert account.market_value == 200 * 10010  # last price at 09:30:03
    assert account.total_asset == 5_000_000 + 200 * 10010


# ----------------------------------------------------------------------------------------- cancels
async def test_cancel_working_order_releases_frozen_cash() -> None:
    venue = tiny_venue(cash=5_000_000)
    cid = await venue.submit(Side.BUY, 9000, 100, when="09:30:01")
    await venue.cancel(cid, when="09:30:02")
    venue.run()
    (canceled,) = venue.of(cid, OrderCanceled)
    assert canceled.ts_event == at("09:30:02") + LATENCY
    account = await venue.exchange.query_account()
    assert (account.cash, account.frozen) == (5_000_000, 0)
    (report,) = await venue.exchange.query_orders()
    assert report.status is OrderStatus.CANCELED
    assert venue.exchange.stats.canceled == 1


async def test_cancel_partially_filled_sell_returns_the_unfilled_shares() -> None:
    venue = tiny_venue(positions={SYM: 1000})
    cid = await venue.submit(Side.SELL, 9990, 800, when="09:30:01")  # takes bid 9.99 x 500
    await venue.cancel(cid, when="09:30:02")
    venue.run()
    assert [f.quantity for f in venue.fills(cid)] == [500]
    assert venue.of(cid, OrderCanceled)
    (position,) = await venue.exchange.query_positions()
    assert (position.quantity, position.sellable) == (500, 500)


async def test_cancel_after_fill_and_of_unknown_order_are_rejected() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 10010, 300, when="09:30:01")
    await venue.cancel(cid, when="09:30:02")
    await venue.cancel("nope", when="09:30:02")
    venue.run()
    assert venue.of(cid, OrderFilled)
    (rejected,) = venue.of(cid, OrderCancelRejected)
    assert isinstance(rejected, OrderCancelRejected)
    assert rejected.reason == "order_already_final"
    (unknown,) = venue.of("nope", OrderCancelRejected)
    assert isinstance(unknown, OrderCancelRejected)
    assert unknown.reason == "unknown_order"
    assert venue.exchange.stats.cancel_rejected == {"order_already_final": 1, "unknown_order": 1}


async def test_cancel_in_the_no_cancel_part_of_the_opening_call_is_rejected() -> None:
    venue = tiny_venue()
    cid = await venue.submit(Side.BUY, 9000, 100, when="09:21:00")  # accepted, rests
    await venue.cancel(cid, when="09:22:00")
    venue.run()
    assert venue.of(cid, OrderAccepted)
    (rejected,) = venue.of(cid, OrderCancelRejected)
    assert isinstance(rejected, OrderCancelRejected)
    assert rejected.reason == "cancel_not_accepted_now"


async def test_expire_all_ends_every_working_order_and_releases_it() -> None:
    venue = tiny_venue(cash=5_000_000)
    cid = await venue.submit(Side.BUY, 9000, 100, when="09:30:01")
    venue.run()
    assert venue.exchange.expire_all() == 1
    venue.run()
    assert venue.of(cid, OrderExpired)
    assert (await venue.exchange.query_account()).frozen == 0
    assert venue.exchange.expire_all() == 0


# ----------------------------------------------------------------------------------------- quotes
async def test_latest_quote_is_the_snapshot_in_force_with_day_limits() -> None:
    venue = tiny_venue(start="09:00:00")
    assert venue.exchange.latest(SYM) is None  # before the first snapshot
    assert venue.exchange.latest("600001.SH") is None
    venue.run_until(at("09:30:04"))
    quote = venue.exchange.latest(SYM)
    assert quote is not None
    assert (quote.ts_event, quote.ts_init) == (at("09:30:03"), at("09:30:04"))
    assert (quote.last, quote.bid_price, quote.bid_quantity, quote.ask_price, quote.ask_quantity) == (
        10010,
        10000,
        500,
        10030,
        400,
    )
    assert (quote.cum_volume, quote.prev_close, quote.low_limit, quote.high_limit) == (
        52_000,
        10000,
        9000,
        11000,
    )


async def test_latest_quote_of_a_real_file_uses_its_published_limits() -> None:
    day = real_day()
    venue = Venue(MarketData(days={day.symbol: day}, trade_date=DAY))
    venue.run_until(at("10:00:00"))
    quote = venue.exchange.latest(day.symbol)
    assert quote is not None
    assert (quote.low_limit, quote.high_limit) == (17440, 21320)
    assert quote.ts_event == int(day.ts[day.index_at(at("10:00:00"))])


# ----------------------------------------------------------------------------------------- sessions
def test_continuous_windows_agree_with_the_calendar_on_every_real_snapshot() -> None:
    day = real_day()
    windows = ContinuousWindows(CALENDAR.continuous_windows(DAY))
    ids = windows.window_ids(day.ts)
    expected = [CALENDAR.is_continuous(int(t)) for t in day.ts]
    assert (ids >= 0).tolist() == expected
    for t in (at("09:30:00"), at("11:30:00") - 1, at("11:30:00"), at("13:00:00"), at("14:57:00")):
        assert (windows.window_of(t) >= 0) == CALENDAR.is_continuous(t)


def test_next_fill_index_matches_a_plain_scan() -> None:
    day = real_day()
    book = SymbolBook(day, ContinuousWindows(CALENDAR.continuous_windows(DAY)))
    for is_buy, price in ((True, 19200), (True, 19500), (False, 20600), (False, 30000)):
        for start in (0, 70, 500, 4000):
            key = book.buy_key if is_buy else book.sell_key
            plain = next(
                (k for k in range(start, len(day)) if (key[k] <= price if is_buy else key[k] >= price)), -1
            )
            assert book.next_fill_index(is_buy, price, start) == plain


# ----------------------------------------------------------------------------------------- real day
async def run_real_stream(orders: list[tuple[int, bool, int, int, int | None]]) -> Venue:
    """(submit offset s from 09:30, is_buy, price ticks from prev close, lots, cancel after s or None)."""
    day = real_day()
    venue = Venue(
        MarketData(days={day.symbol: day}, trade_date=DAY),
        cash=10**11,
        positions={day.symbol: 10**6},
    )
    start = at("09:25:00")
    actions: list[tuple[int, int, Callable[[], object]]] = []
    for i, (offset, is_buy, ticks, lots, cancel_after) in enumerate(orders):
        when = start + offset * 1_000_000_000
        order = Order(
            client_order_id=f"R{i:05d}",
            symbol=day.symbol,
            side=Side.BUY if is_buy else Side.SELL,
            price=day.prev_close + ticks * 10,
            quantity=lots * 100,
        )
        actions.append((when, 2 * i, functools.partial(venue.exchange.submit, order)))
        if cancel_after is not None:
            actions.append(
                (when + cancel_after * MS, 2 * i + 1, functools.partial(venue.exchange.cancel, order))
            )
    for when, _, action in sorted(actions, key=lambda a: (a[0], a[1])):
        venue.run_until(when)
        result = action()
        assert asyncio.iscoroutine(result)
        await result
    venue.run_until(at("15:00:00"))
    venue.exchange.expire_all()
    venue.run()
    return venue


async def check_invariants(venue: Venue) -> None:
    exchange = venue.exchange
    reports = await exchange.query_orders()
    filled: dict[str, int] = {}
    for fill in venue.fills():
        filled[fill.client_order_id] = filled.get(fill.client_order_id, 0) + fill.quantity
    for report in reports:
        assert 0 <= report.filled_quantity <= report.quantity
        assert filled.get(report.client_order_id, 0) == report.filled_quantity
        assert report.status in {
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        }
    account = await exchange.query_account()
    assert account.frozen == 0
    assert all(f.ts_event >= at("09:30:00") and CALENDAR.is_continuous(f.ts_event) for f in venue.fills())
    trades = await exchange.query_trades()
    assert len(trades) == len(venue.fills()) == exchange.stats.fills


async def test_full_real_day_is_deterministic_byte_for_byte() -> None:
    stream = [(60 * i, i % 2 == 0, (i % 7) - 3, 1 + i % 5, None if i % 3 else 90_000) for i in range(120)]
    first = await run_real_stream(stream)
    second = await run_real_stream(stream)
    assert first.exchange.stats.fills > 0
    assert first.exchange.stats.orders_received == 120
    assert repr(first.events) == repr(second.events)
    assert first.exchange.stats == second.exchange.stats
    await check_invariants(first)


async def test_an_order_that_never_fills_costs_no_wakeup_all_day() -> None:
    day = real_day()
    venue = Venue(MarketData(days={day.symbol: day}, trade_date=DAY), cash=10**11)
    cid = await venue.submit(Side.BUY, 17440, 100, when="09:30:01", symbol=day.symbol)  # at limit-down
    venue.run_until(at("15:00:00"))
    assert venue.of(cid, OrderAccepted)
    assert not venue.fills()
    assert venue.exchange.stats.wakeups == 0  # no snapshot of the day was visited in Python
    assert venue.exchange.expire_all() == 1


async def test_aggressive_buy_on_the_real_file_sweeps_levels_at_their_prices() -> None:
    day = real_day()
    venue = Venue(MarketData(days={day.symbol: day}, trade_date=DAY), cash=10**11)
    when = at("10:00:00")
    k = day.index_at(when + LATENCY)
    limit = int(day.ask_px[k, 2])
    want = int(day.ask_qty[k, :3].sum())
    cid = await venue.submit(Side.BUY, limit, want, when=when, symbol=day.symbol)
    venue.run_until(when + 2 * LATENCY)
    assert [(f.price, f.quantity) for f in venue.fills(cid)] == [
        (int(day.ask_px[k, j]), int(day.ask_qty[k, j])) for j in range(3)
    ]


order_streams = st.lists(
    st.tuples(
        st.integers(0, 6 * 3600),  # seconds from 09:25
        st.booleans(),
        st.integers(-15, 15),  # ticks from prev close
        st.integers(1, 300),  # lots
        st.one_of(st.none(), st.integers(1, 600_000)),  # cancel after ms
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_streams)
def test_random_order_streams_never_overfill_and_always_settle(
    orders: list[tuple[int, bool, int, int, int | None]],
) -> None:
    async def scenario() -> None:
        venue = await run_real_stream(orders)
        await check_invariants(venue)

    asyncio.run(scenario())
