"""Market orders at the simulated exchange, every kind against hand-computed fills on real snapshots.

The books (shipped in ``replay/sample_data``), as the order arriving at 10:00:00.020 sees them:

- 000400.SZ 2022-06-01, snapshot 10:00:00 (prev close 19.38, limits 17.44 / 21.32):
  bids 19.38x5400 19.36x21500 19.35x34000 ...; asks 19.40x100 19.41x1300 19.42x2800 19.43x5400
  19.44x2200 19.45x2600 19.46x300 19.47x1200 19.48x2300 19.49x800 (ten levels: 19,000 shares).
- 603258.SH 2021-12-01, snapshot 09:59:59 (prev close 27.67, limit-up 30.44): bids 27.80x300 ...;
  asks 27.88x200 27.89x200 27.91x5100 27.92x2295 27.93x4700 (five levels: 12,495) 27.94x500 ...;
  next snapshot 10:00:02: asks 27.88x1200 27.89x600 27.91x2100 27.92x2295 27.93x4700, nothing traded.
- 688233.SH (STAR) 2021-12-01, snapshot 09:59:58: asks 101.49x297 101.51x1157 101.53x2878 101.59x46 ...
- 300122.SZ (ChiNext) 2022-06-01, snapshot 10:00:00: asks 87.58x300 87.59x1300 87.60x3000 ...
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pytest

from zhixing import replay
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.events import OrderAccepted, OrderCanceled, OrderEvent, OrderFilled, OrderRejected
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.replay.data import MarketData, SymbolDay, load_snapshot_file
from zhixing.replay.exchange import SimExchange

LATENCY = 20_000_000
SAMPLE = Path(replay.__file__).parent / "sample_data"
SZ_DAY = dt.date(2022, 6, 1)
SH_DAY = dt.date(2021, 12, 1)
T = OrderType


@functools.cache
def day_of(symbol: str) -> SymbolDay:
    if symbol.endswith(".SZ"):
        return load_snapshot_file(SAMPLE / "snapshots_20220601" / f"{symbol}_20220601.csv.gz")
    return load_snapshot_file(SAMPLE / "snapshots_20211201" / f"{symbol}_20211201_0915-1030.csv.gz")


class Venue:
    def __init__(self, symbol: str, positions: int = 0, day: SymbolDay | None = None) -> None:
        day = day if day is not None else day_of(symbol)
        self.date = day.trade_date
        self.symbol = symbol
        self.clock = SimClock(shanghai_ns(self.date, "09:00:00"))
        self.exchange = SimExchange(
            MarketData(days={symbol: day}, trade_date=self.date),
            self.clock,
            calendar=TradingCalendar(),
            latency_ns=LATENCY,
            cash=10**11,
            positions={symbol: positions} if positions else None,
        )
        self.events: list[OrderEvent] = []
        self.exchange.bind(self.events.append)
        self.n = 0

    def at(self, hhmmss: str) -> int:
        return shanghai_ns(self.date, hhmmss)

    async def send(
        self, order_type: OrderType, side: Side, quantity: int, price: int = 0, when: str = "10:00:00"
    ) -> str:
        while self.clock.step(until_ns=self.at(when)):
            pass
        self.clock.advance_to(self.at(when))
        self.n += 1
        cid = f"M{self.n}"
        order = Order(
            client_order_id=cid,
            symbol=self.symbol,
            side=side,
            price=price,
            quantity=quantity,
            order_type=order_type,
        )
        await self.exchange.submit(order)
        return cid

    def run_until(self, hhmmss: str) -> None:
        while self.clock.step(until_ns=self.at(hhmmss)):
            pass

    def fills(self, cid: str) -> list[tuple[int, int]]:
        return [
            (e.price, e.quantity)
            for e in self.events
            if isinstance(e, OrderFilled) and e.client_order_id == cid
        ]

    def kinds(self, cid: str) -> list[str]:
        return [type(e).__name__ for e in self.events if e.client_order_id == cid]

    def rejected(self, cid: str) -> str:
        (event,) = [e for e in self.events if isinstance(e, OrderRejected) and e.client_order_id == cid]
        return event.reason

    async def report(self, cid: str) -> tuple[OrderStatus, int, int]:
        (r,) = [r for r in await self.exchange.query_orders() if r.client_order_id == cid]
        return r.status, r.filled_quantity, r.price


ASKS_000400 = [(19400, 100), (19410, 1300), (19420, 2800), (19430, 5400), (19440, 2200)]
MORE_ASKS_000400 = [(19450, 2600), (19460, 300), (19470, 1200), (19480, 2300), (19490, 800)]
ASKS_603258 = [(27880, 200), (27890, 200), (27910, 5100), (27920, 2295), (27930, 4700)]


async def test_b5tc_takes_five_levels_and_cancels_the_rest_szse() -> None:
    venue = Venue("000400.SZ")
    cid = await venue.send(T.B5TC, Side.BUY, 15_000)
    venue.run_until("10:00:01")
    assert venue.fills(cid) == ASKS_000400  # 11,800 shares
    assert venue.kinds(cid) == ["OrderAccepted", *["OrderFilled"] * 5, "OrderCanceled"]
    (cancel,) = [e for e in venue.events if isinstance(e, OrderCanceled)]
    assert cancel.filled_qty == 11_800
    assert cancel.ts_event == venue.at("10:00:00") + LATENCY


async def test_b5tc_sell_takes_the_bids_sse() -> None:
    venue = Venue("603258.SH", positions=1_000)
    cid = await venue.send(T.B5TC, Side.SELL, 1_000)
    venue.run_until("10:00:01")
    # bids 27.80x300 27.76x600 27.74x2700: 300 + 600 + 100
    assert venue.fills(cid) == [(27800, 300), (27760, 600), (27740, 100)]
    assert await venue.report(cid) == (OrderStatus.FILLED, 1_000, 24900)  # its bound: limit-down


async def test_b5tl_takes_five_levels_then_rests_at_its_last_fill_price() -> None:
    venue = Venue("603258.SH")
    cid = await venue.send(T.B5TL, Side.BUY, 15_000)
    venue.run_until("10:00:01")
    assert venue.fills(cid) == ASKS_603258  # 12,495 shares; 2,505 left
    assert await venue.report(cid) == (OrderStatus.PARTIALLY_FILLED, 12_495, 27930)
    venue.run_until("10:00:04")
    # at 10:00:02 the asks at or under 27.93 show fresh 1000 (27.88) + 400 (27.89): a limit at 27.93
    assert venue.fills(cid)[5:] == [(27930, 1_400)]


async def test_b5tl_within_five_levels_fills_in_full() -> None:
    venue = Venue("603258.SH")
    cid = await venue.send(T.B5TL, Side.BUY, 500)
    venue.run_until("10:00:01")
    assert venue.fills(cid) == [(27880, 200), (27890, 200), (27910, 100)]
    assert (await venue.report(cid))[:2] == (OrderStatus.FILLED, 500)


async def test_boc_takes_the_best_opposite_level_and_rests_there() -> None:
    venue = Venue("000400.SZ")
    cid = await venue.send(T.BOC, Side.BUY, 1_000)
    venue.run_until("10:00:01")
    assert venue.fills(cid) == [(19400, 100)]
    assert await venue.report(cid) == (OrderStatus.PARTIALLY_FILLED, 100, 19400)


async def test_bop_rests_at_the_best_own_side_price() -> None:
    venue = Venue("000400.SZ", positions=1_000)
    buy = await venue.send(T.BOP, Side.BUY, 1_000)
    sell = await venue.send(T.BOP, Side.SELL, 1_000)
    venue.run_until("10:00:01")
    assert venue.fills(buy) == []
    assert venue.fills(sell) == []
    assert await venue.report(buy) == (OrderStatus.ACCEPTED, 0, 19380)  # best bid
    assert await venue.report(sell) == (OrderStatus.ACCEPTED, 0, 19400)  # best ask


async def test_fak_takes_every_level_that_crosses_then_cancels() -> None:
    venue = Venue("000400.SZ")
    full = await venue.send(T.FAK, Side.BUY, 15_000)
    venue.run_until("10:00:01")
    # 11,800 in five levels, then 2,600 + 300 + 300 of 19.47's 1,200
    assert venue.fills(full) == [*ASKS_000400, (19450, 2600), (19460, 300), (19470, 300)]
    assert venue.kinds(full)[-1] == "OrderFilled"
    venue = Venue("000400.SZ")
    part = await venue.send(T.FAK, Side.BUY, 30_000)
    venue.run_until("10:00:01")
    assert venue.fills(part) == [*ASKS_000400, *MORE_ASKS_000400]  # the ten levels: 19,000
    assert venue.kinds(part)[-1] == "OrderCanceled"
    assert (await venue.report(part))[:2] == (OrderStatus.CANCELED, 19_000)


async def test_fak_sell_takes_the_bids() -> None:
    venue = Venue("000400.SZ", positions=30_000)
    cid = await venue.send(T.FAK, Side.SELL, 30_000)
    venue.run_until("10:00:01")
    assert venue.fills(cid) == [(19380, 5400), (19360, 21500), (19350, 3100)]


async def test_fok_fills_in_full_or_not_at_all() -> None:
    venue = Venue("000400.SZ")
    killed = await venue.send(T.FOK, Side.BUY, 19_100)
    venue.run_until("10:00:01")
    assert venue.fills(killed) == []
    assert venue.kinds(killed) == ["OrderAccepted", "OrderCanceled"]
    venue = Venue("000400.SZ")
    filled = await venue.send(T.FOK, Side.BUY, 19_000)
    venue.run_until("10:00:01")
    assert venue.fills(filled) == [*ASKS_000400, *MORE_ASKS_000400]
    assert (await venue.report(filled))[:2] == (OrderStatus.FILLED, 19_000)


async def test_star_market_order_stops_at_its_protection_price() -> None:
    venue = Venue("688233.SH")
    cut = await venue.send(T.B5TC, Side.BUY, 3_000, price=101_510)
    rest = await venue.send(T.B5TL, Side.BUY, 3_000, price=101_530)  # the same arrival, after the first
    venue.run_until("10:00:02")
    assert venue.fills(cut) == [(101_490, 297), (101_510, 1_157)]  # 101.53 is beyond the protection
    assert venue.kinds(cut)[-1] == "OrderCanceled"
    # the same snapshot, its first two levels taken by the first order: 101.53 x 2878 is left
    # then a limit at 101.53 for 122: at 10:00:01, 1,100 shares traded at 101.46, at or under it
    assert venue.fills(rest) == [(101_530, 2_878), (101_530, 122)]
    assert await venue.report(rest) == (OrderStatus.FILLED, 3_000, 101_530)


async def test_chinext_fak_with_protection() -> None:
    venue = Venue("300122.SZ")
    cid = await venue.send(T.FAK, Side.BUY, 2_000, price=87_590)
    venue.run_until("10:00:01")
    assert venue.fills(cid) == [(87_580, 300), (87_590, 1_300)]
    assert (await venue.report(cid))[:2] == (OrderStatus.CANCELED, 1_600)


@pytest.mark.parametrize(
    ("symbol", "order_type", "price", "when", "reason"),
    [
        ("688233.SH", T.B5TC, 0, "10:00:00", "protection_price_required"),
        ("300122.SZ", T.BOC, 0, "10:00:00", "protection_price_required"),
        ("603258.SH", T.FAK, 0, "10:00:00", "order_type_not_accepted"),  # SZSE only
        ("603258.SH", T.FOK, 0, "10:00:00", "order_type_not_accepted"),
        ("000400.SZ", T.B5TL, 0, "10:00:00", "order_type_not_accepted"),  # SSE only
        ("000400.SZ", T.B5TC, 0, "09:20:00", "market_order_outside_continuous"),
        ("000400.SZ", T.FAK, 0, "11:45:00", "market_order_outside_continuous"),
    ],
)
async def test_the_exchange_rejects_what_it_does_not_take(
    symbol: str, order_type: OrderType, price: int, when: str, reason: str
) -> None:
    venue = Venue(symbol)
    cid = await venue.send(order_type, Side.BUY, 200, price=price, when=when)
    venue.run_until("12:00:00")
    assert venue.rejected(cid) == reason


async def test_a_market_buy_freezes_cash_at_limit_up_and_releases_it() -> None:
    venue = Venue("000400.SZ")
    before = (await venue.exchange.query_account()).cash
    cid = await venue.send(T.BOP, Side.BUY, 1_000)
    venue.run_until("10:00:01")
    assert isinstance(venue.events[0], OrderAccepted)
    frozen = (await venue.exchange.query_account()).frozen
    assert frozen >= 21_320 * 1_000  # limit-up x quantity (+ fees)
    assert frozen < 21_320 * 1_000 + 100_000
    assert (await venue.exchange.query_account()).cash == before
    assert cid == "M1"


# ------------------------------------------------------------------ an empty side (not in the sample days)
def one_sided_venue(empty: str) -> Venue:
    """600000.SH on the tiny hand-built day of test_replay_exchange, its 09:30:00 snapshot (bids 9.99x500
    9.98x800, asks 10.01x300 10.02x400) with one side emptied: ``empty`` is "ask" or "bid"."""
    from tests.replay.test_replay_exchange import SYM, tiny_day

    day = tiny_day()
    px, qty = (day.ask_px, day.ask_qty) if empty == "ask" else (day.bid_px, day.bid_qty)
    px[1, :] = 0
    qty[1, :] = 0
    return Venue(SYM, positions=10_000, day=day)


async def test_b5tl_with_nothing_to_take_rests_at_the_best_own_side_price() -> None:
    venue = one_sided_venue("ask")
    cid = await venue.send(T.B5TL, Side.BUY, 1_000, when="09:30:01")
    venue.run_until("09:30:02")
    assert venue.fills(cid) == []
    assert await venue.report(cid) == (OrderStatus.ACCEPTED, 0, 9_990)  # the best bid


@pytest.mark.parametrize(("empty", "kind"), [("ask", T.BOC), ("ask", T.B5TC), ("ask", T.BOP), ("bid", T.BOP)])
async def test_nothing_to_take_or_join_cancels_at_once(empty: str, kind: OrderType) -> None:
    venue = one_sided_venue(empty)
    # buys: BOC and B5TC find no ask to take, BOP no bid to join; a BOP sell finds no ask to join
    side = Side.SELL if (empty, kind) == ("ask", T.BOP) else Side.BUY
    cid = await venue.send(kind, side, 1_000, when="09:30:01")
    venue.run_until("09:30:02")
    assert venue.fills(cid) == []
    assert venue.kinds(cid) == ["OrderAccepted", "OrderCanceled"]


async def test_before_the_windows_first_snapshot_there_is_no_book_to_price_on() -> None:
    venue = Venue("600133.SH")  # 2021-12-01: snapshots at 09:25:58, then 09:30:01
    cid = await venue.send(T.B5TC, Side.BUY, 200, when="09:30:00")
    venue.run_until("09:30:01")
    assert venue.rejected(cid) == "no_book_for_market_order"
