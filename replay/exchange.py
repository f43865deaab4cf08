"""The simulated exchange: a ``BrokerAdapter`` and ``QuoteSource`` over historical L2 snapshots.

What it models, and what it does not:

- **Latency.** ``submit`` and ``cancel`` return at once; the request reaches the exchange ``latency_ns``
  later (a ``SimClock`` timer), and every event the exchange emits reaches the bound sink ``latency_ns``
  after it happened: ``ts_event`` is exchange time, ``ts_init`` delivery time. Ties keep scheduling order.
- **Validation on arrival** (``replay.exchange_rules``), in this order: known symbol, session (closed
  before 09:15 and from 15:00: ``market_closed``), lot and odd-lot rules, tick and the day's price
  limits, cash for buys (price x quantity + estimated fees, then frozen), T+1 sellable shares for sells
  (then frozen). A rejection is an ``OrderRejected`` with the reason; a client order id submitted twice
  raises ``BrokerError`` at once (nothing reaches the exchange).
- **Continuous matching, and optionally the closing call.** Orders arriving in the opening call,
  09:25-09:30, lunch or the closing call are accepted and rest; the opening call is not matched (those
  orders fill only from 09:30). With ``closing_auction=True`` every order still working at 15:00:00
  (arrived in the closing call 14:57-15:00, or resting into it) takes part in ONE uncross at the close
  price read from the data (``replay.matching.close_print``: the 15:00:0x snapshot's last price; the
  volume matched is its cumulative-volume jump). Buys priced at or above the close and sells at or
  below it are eligible, in price-time priority among our orders (best price, then arrival), and all
  of them together get at most ``auction_share`` of the matched volume (default 0.5: our orders are
  added on top of a book that uncrossed without them, so they would have displaced real orders, and
  earlier orders at the close price keep time priority; half is a deliberately conservative guess,
  U in MARKET_RULES terms). Every fill is at the close price, stamped 15:00:00. What is left rests
  and expires at the end of the day. Without a close snapshot the symbol has no uncross. Off by
  default (fills then happen only in continuous trading, as before).
- **No cancels in the closing call** (nor 09:20-09:25, at lunch, or outside 09:15-15:00): the cancel is
  rejected with ``cancel_not_accepted_now`` and the order keeps working.
- **Aggressive fills** on arrival take the displayed opposite depth of the latest snapshot (if it is in
  the same continuous window as the arrival) at each level's price. **Resting fills** at a later
  snapshot take, at the order's price, the *fresh* quantity of the opposite levels at or better than it
  (what a price shows beyond what it showed one snapshot earlier: the same displayed order is not
  eaten at every snapshot; see ``replay.matching``) and the volume traded since the previous snapshot
  when the last price is at or through it. Queue position is not modelled (an order at the last price
  is treated as first in its queue); each displayed quantity and each traded volume is handed out once
  among our orders; our own buys and sells never cross each other. There is no market impact: an
  order priced through the market keeps taking whatever new depth and volume shows up at or better
  than its price, so a child order large against the displayed depth fills faster than it would for
  real. Fills may be odd amounts and never exceed the leaves.
- **Speed.** Nothing runs per snapshot. A resting order sleeps on one clock timer set at the next
  snapshot where it could fill (``SymbolBook.next_fill_index``: a numpy search over growing windows
  to the end of the day, so no periodic re-check timer is needed); symbols without orders are never
  looked at. Orders of one symbol due at the same snapshot are served together, best price first.
- **Fees.** Each fill is charged the order's cumulative fees (``FeeSchedule`` on the order's total filled
  value) minus what its earlier fills were charged, so the minimum commission applies once per order,
  as ``FeeSchedule.fees`` prescribes, while every fill still reports its share.

Deterministic: no randomness, no wall clock; the same inputs give the same events in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Final

from zhixing.engine.account import Account
from zhixing.engine.broker import EventSink
from zhixing.engine.clock import SimClock, TimerHandle
from zhixing.engine.enums import ACCEPTED_ORDER_TYPES, OrderStatus, Side
from zhixing.engine.errors import BrokerError, ParameterError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    PositionReport,
    Quote,
)
from zhixing.engine.market import (
    PROTECTED_BOARDS,
    FeeSchedule,
    Instrument,
    MarketRules,
    TradingCalendar,
    shanghai_ns,
)
from zhixing.engine.orders import Order
from zhixing.replay.data import MarketData
from zhixing.replay.exchange_rules import VenueRules
from zhixing.replay.market_orders import market_arrival
from zhixing.replay.matching import (
    ContinuousWindows,
    SymbolBook,
    allocate_uncross,
    auction_eligible,
    close_print,
)

DEFAULT_AUCTION_SHARE: Final = 0.5
"""Share of the closing call's matched volume our orders may get together (see the module docstring)."""


@dataclass(slots=True)
class ExchangeStats:
    """Counters for reports. ``rejected`` and ``cancel_rejected`` count by reason."""

    orders_received: int = 0
    orders_accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    fills: int = 0
    filled_volume: int = 0
    filled_value: int = 0  # milli-yuan
    fees: int = 0  # milli-yuan
    cancels_received: int = 0
    canceled: int = 0
    cancel_rejected: dict[str, int] = field(default_factory=dict)
    expired: int = 0
    auction_fills: int = 0  # fills in the closing call's uncross (also counted in ``fills``)
    auction_volume: int = 0  # shares filled in the uncross
    wakeups: int = 0  # resting orders looked at by a snapshot wake-up (the matching work actually done)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class _Working:
    """An accepted order still working at the exchange, with its matching state."""

    __slots__ = ("book", "is_buy", "next_k", "order", "seq", "timer")

    def __init__(self, order: Order, book: SymbolBook, seq: int) -> None:
        self.order = order
        self.book = book
        self.is_buy = order.side is Side.BUY
        self.seq = seq
        self.next_k = -1  # snapshot index of the pending wake-up, -1 for none
        self.timer: TimerHandle | None = None


def _priority(working: _Working) -> tuple[int, int]:
    """Price-time priority among our orders due at the same snapshot: best price first, then arrival."""
    price = working.order.price
    return (-price if working.is_buy else price, working.seq)


class SimExchange:
    """Simulated A-share exchange on a ``SimClock`` (see the module docstring for the model)."""

    name = "sim"

    def __init__(
        self,
        market: MarketData,
        clock: SimClock,
        *,
        calendar: TradingCalendar,
        fees: FeeSchedule | None = None,
        latency_ns: int = 20_000_000,
        cash: int = 0,
        positions: dict[str, int] | None = None,
        instrument: Callable[[str], Instrument] | None = None,
        rules: MarketRules | None = None,
        closing_auction: bool = False,
        auction_share: float = DEFAULT_AUCTION_SHARE,
    ) -> None:
        if latency_ns < 0:
            raise ParameterError(f"must be >= 0, got {latency_ns}", name="latency_ns", value=latency_ns)
        self.closing_auction = False
        self.auction_share = DEFAULT_AUCTION_SHARE
        self.set_closing_auction(closing_auction, auction_share)
        self._close_ns = shanghai_ns(market.trade_date, "15:00")
        self._uncross_timer: TimerHandle | None = None
        self._market = market
        self._clock = clock
        self._calendar = calendar
        self._latency = latency_ns
        self._rules = VenueRules(
            market,
            calendar,
            fees if fees is not None else FeeSchedule(),
            rules if rules is not None else MarketRules(),
            instrument,
        )
        self._windows = ContinuousWindows(calendar.continuous_windows(market.trade_date))
        self._books: dict[str, SymbolBook] = {}
        self._quotes: dict[str, Quote] = {}  # the latest Quote built per symbol (see ``latest``)
        self._resting: dict[str, list[_Working]] = {}
        self._account = Account(cash, self._rules.estimate_fees)
        for symbol, quantity in sorted((positions or {}).items()):
            day = market.days.get(symbol)
            self._account.load_position(symbol, quantity, avg_cost=day.prev_close if day else 0)
        self._sink: EventSink | None = None
        self._submitted: set[str] = set()
        self._orders: dict[str, Order] = {}  # every order that arrived today, in arrival order
        self._order_ts: dict[str, int] = {}  # exchange time of each order's last change
        self._working: dict[str, _Working] = {}
        self._trades: list[FillReport] = []
        self._accept_seq = 0
        self._trade_seq = 0
        self._arrival_seq = 0
        self.stats = ExchangeStats()

    @property
    def calendar(self) -> TradingCalendar:
        """The trading calendar the exchange runs its sessions on."""
        return self._calendar

    def set_closing_auction(self, enabled: bool, share: float = DEFAULT_AUCTION_SHARE) -> None:
        """Turn the closing call's uncross on or off (before the orders it should see arrive), with the
        share of the matched volume our orders may get (0 < share <= 1)."""
        if not 0 < share <= 1:
            raise ParameterError(f"must be in (0, 1], got {share}", name="auction_share", value=share)
        self.closing_auction = enabled
        self.auction_share = share

    # ------------------------------------------------------------------------------------- adapter
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to close."""

    async def submit(self, order: Order) -> None:
        """Hand the order over; it reaches the exchange ``latency_ns`` from now."""
        if self._sink is None:
            raise BrokerError("SimExchange: bind() a sink before submitting")
        cid = order.client_order_id
        if cid in self._submitted:
            raise BrokerError(f"SimExchange: client order id {cid!r} already submitted")
        self._submitted.add(cid)
        now = self._clock.now_ns()
        copy = Order(
            client_order_id=cid,
            symbol=order.symbol,
            side=order.side,
            price=order.price,
            quantity=order.quantity,
            parent_id=order.parent_id,
            tag=order.tag,
            status=OrderStatus.SUBMITTED,
            ts_created=now,
            order_type=order.order_type,
        )
        self._clock.call_at(now + self._latency, partial(self._on_order_arrival, copy), "sim_order")

    async def cancel(self, order: Order) -> None:
        """Hand the cancel request over; it reaches the exchange ``latency_ns`` from now."""
        now = self._clock.now_ns()
        request = partial(self._on_cancel_arrival, order.client_order_id, order.symbol)
        self._clock.call_at(now + self._latency, request, "sim_cancel")

    # ------------------------------------------------------------------------------------- queries
    async def query_account(self) -> AccountReport:
        account = self._account
        value = sum(
            pos.quantity * self._mark(symbol, pos.avg_cost) for symbol, pos in account.positions.items()
        )
        return AccountReport(
            cash=account.cash, frozen=account.frozen, total_asset=account.cash + value, market_value=value
        )

    async def query_positions(self) -> list[PositionReport]:
        return [
            PositionReport(symbol=symbol, quantity=pos.quantity, sellable=pos.sellable, avg_cost=pos.avg_cost)
            for symbol, pos in sorted(self._account.positions.items())
        ]

    async def query_orders(self) -> list[OrderStatusReport]:
        return [
            OrderStatusReport(
                client_order_id=cid,
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                side=order.side,
                price=order.price,
                quantity=order.quantity,
                filled_quantity=order.filled_quantity,
                status=order.status,
                reason=order.reason,
                ts_event=self._order_ts[cid],
            )
            for cid, order in self._orders.items()
        ]

    async def query_trades(self) -> list[FillReport]:
        return list(self._trades)

    # ------------------------------------------------------------------------------------- quotes
    def latest(self, symbol: str) -> Quote | None:
        """The snapshot in force now as a level-1 ``Quote``; None before the first one or if unknown.

        Asked again at the same instant (the risk check, then the algorithm pricing the same child), the
        same immutable ``Quote`` is returned: the data cannot have changed in between."""
        now = self._clock.now_ns()
        cached = self._quotes.get(symbol)
        if cached is not None and cached.ts_init == now:
            return cached
        day = self._market.days.get(symbol)
        if day is None:
            return None
        i = day.index_at(now)
        if i < 0:
            return None
        low, high = self._rules.limits(day)
        quote = self._quotes[symbol] = Quote(
            ts_event=int(day.ts[i]),
            ts_init=now,
            symbol=symbol,
            last=int(day.last[i]),
            bid_price=int(day.bid_px[i, 0]),
            bid_quantity=int(day.bid_qty[i, 0]),
            ask_price=int(day.ask_px[i, 0]),
            ask_quantity=int(day.ask_qty[i, 0]),
            cum_volume=int(day.cum_volume[i]),
            cum_amount=int(day.cum_amount[i]),
            prev_close=day.prev_close,
            high_limit=high,
            low_limit=low,
        )
        return quote

    # ------------------------------------------------------------------------------------- end of day
    def expire_all(self) -> int:
        """Expire every working order now (``OrderExpired``, delivered after the latency like any event:
        step the clock to deliver). Returns how many expired."""
        now = self._clock.now_ns()
        expiring = list(self._working.values())
        for working in expiring:
            order = working.order
            self._finish(
                working,
                OrderExpired(
                    ts_event=now,
                    ts_init=now + self._latency,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    filled_qty=order.filled_quantity,
                ),
            )
        self.stats.expired += len(expiring)
        return len(expiring)

    # ------------------------------------------------------------------------------------- next day
    def open_day(self, market: MarketData) -> None:
        """The next trading day, on ``market`` (its recorded data): what still works expires first (a day
        order ends with its day; the events are delivered after the latency), then the broker lists only
        the new day's orders and trades, and the account rolls (T+1: everything held is sellable). Client
        order ids stay refused for good once used (``submit``)."""
        if self._working:
            self.expire_all()
        if self._uncross_timer is not None:
            self._uncross_timer.cancel()
            self._uncross_timer = None
        self._market = market
        self._close_ns = shanghai_ns(market.trade_date, "15:00")
        self._rules.play(market)
        self._windows = ContinuousWindows(self._calendar.continuous_windows(market.trade_date))
        self._books.clear()
        self._quotes.clear()
        self._resting.clear()
        self._orders.clear()
        self._order_ts.clear()
        self._trades.clear()
        self._account.start_day(market.trade_date)

    def use_clock(self, clock: SimClock) -> None:
        """Run on another clock from now on (a new engine process on a broker that kept running): the
        orders still resting are woken on it."""
        self._clock = clock
        self._quotes.clear()
        for working in self._working.values():
            if working.timer is not None:
                working.timer.cancel()
            now_index = working.book.day.index_at(clock.now_ns())
            self._schedule(working, now_index + 1)

    @property
    def market(self) -> MarketData:
        return self._market

    def instrument(self, symbol: str) -> Instrument:
        """``symbol`` as the exchange trades it on its day: lot, order cap, band for its status."""
        return self._rules.instrument(symbol)

    # ------------------------------------------------------------------------------------- arrival
    def _on_order_arrival(self, order: Order) -> None:
        now = self._clock.now_ns()
        cid = order.client_order_id
        self.stats.orders_received += 1
        self._orders[cid] = order
        self._order_ts[cid] = now
        reason = self._market_order_reason(order, now) if order.order_type.is_market else None
        if reason is None:
            reason = self._rules.check(order, now, self._account)
        if reason is not None:
            self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
            self._emit(
                order,
                OrderRejected(
                    ts_event=now,
                    ts_init=now + self._latency,
                    client_order_id=cid,
                    symbol=order.symbol,
                    reason=reason,
                ),
            )
            return
        self._account.reserve(order)
        self._accept_seq += 1
        self.stats.orders_accepted += 1
        self._emit(
            order,
            OrderAccepted(
                ts_event=now,
                ts_init=now + self._latency,
                client_order_id=cid,
                symbol=order.symbol,
                broker_order_id=f"S{self._accept_seq:08d}",
            ),
        )
        book = self._book(order.symbol)
        self._arrival_seq += 1
        working = _Working(order, book, self._arrival_seq)
        self._working[cid] = working
        self._resting.setdefault(order.symbol, []).append(working)
        i = book.day.index_at(now)
        if order.order_type.is_market:  # checked: ``i`` is in the arrival's continuous window
            arrival = market_arrival(book, i, working.is_buy, order.order_type, order.price, order.quantity)
            for price, quantity in arrival.fills:
                self._fill(working, price, quantity, now)
            if order.status is OrderStatus.FILLED:
                return
            if arrival.rest_price <= 0:
                cancel = OrderCanceled(
                    ts_event=now,
                    ts_init=now + self._latency,
                    client_order_id=cid,
                    symbol=order.symbol,
                    filled_qty=order.filled_quantity,
                )
                self._finish(working, cancel)
                return
            order.price = arrival.rest_price  # the rest is a limit order there from now on
        elif i >= 0 and book.window[i] >= 0 and book.window[i] == self._windows.window_of(now):
            want = order.quantity - order.filled_quantity
            for price, quantity in book.take_depth(i, working.is_buy, order.price, want, fresh_only=False):
                self._fill(working, price, quantity, now)
        if order.status is not OrderStatus.FILLED:
            self._schedule(working, i + 1)
            if self.closing_auction and self._uncross_timer is None and now < self._close_ns:
                self._uncross_timer = self._clock.call_at(self._close_ns, self._uncross, "sim_uncross")

    def _market_order_reason(self, order: Order, now: int) -> str | None:
        """Why the exchange rejects the market order ``order`` arriving at ``now``, or None; then its
        ``price`` becomes its bound: the protection price (clipped to the day's limits), else limit-up for
        a buy and limit-down for a sell, which is also what a buy freezes cash at."""
        day = self._market.days.get(order.symbol)
        if day is None:
            return "unknown_symbol"
        if order.order_type not in ACCEPTED_ORDER_TYPES.get(order.symbol[-2:], frozenset()):
            return "order_type_not_accepted"
        try:
            instrument = self.instrument(order.symbol)
        except ValueError:
            return "no_trading_rules"
        if instrument.no_price_limit:
            return "market_order_without_price_limits"  # market orders only where prices are limited
        window = self._windows.window_of(now)
        if window < 0:
            return "market_order_outside_continuous"
        i = day.index_at(now)
        if i < 0 or self._book(order.symbol).window[i] != window:
            return "no_book_for_market_order"  # no snapshot yet in this window: nothing to price it on
        if order.price <= 0 and instrument.board in PROTECTED_BOARDS:
            return "protection_price_required"
        low, high = self._rules.limits(day)
        if order.side is Side.BUY:
            order.price = min(order.price, high) if order.price > 0 else high
        else:
            order.price = max(order.price, low) if order.price > 0 else low
        return None

    def _on_cancel_arrival(self, cid: str, symbol: str) -> None:
        now = self._clock.now_ns()
        self.stats.cancels_received += 1
        order = self._orders.get(cid)
        reason = None
        if order is None:
            reason = "unknown_order"
        elif cid not in self._working:
            reason = "order_already_final"
        elif not self._calendar.accepts_cancel(now):
            reason = "cancel_not_accepted_now"
        if reason is not None:
            self.stats.cancel_rejected[reason] = self.stats.cancel_rejected.get(reason, 0) + 1
            event = OrderCancelRejected(
                ts_event=now, ts_init=now + self._latency, client_order_id=cid, symbol=symbol, reason=reason
            )
            self._clock.call_at(event.ts_init, partial(self._deliver, event), "sim_event")
            return
        self.stats.canceled += 1
        working = self._working[cid]
        self._finish(
            working,
            OrderCanceled(
                ts_event=now,
                ts_init=now + self._latency,
                client_order_id=cid,
                symbol=symbol,
                filled_qty=working.order.filled_quantity,  # the exchange's count: exact
            ),
        )

    # ------------------------------------------------------------------------------------- matching
    def _schedule(self, working: _Working, start: int) -> None:
        """Sleep until the next snapshot at or after ``start`` where the order could fill (if any)."""
        book = working.book
        k = book.next_fill_index(working.is_buy, working.order.price, start)
        working.next_k = k
        if k < 0:
            working.timer = None
            return
        wake = partial(self._wake, working.order.symbol, k)
        working.timer = self._clock.call_at(int(book.ts[k]), wake, "sim_match")

    def _wake(self, symbol: str, k: int) -> None:
        """Snapshot ``k`` of ``symbol`` is now: fill every resting order due at it, by priority."""
        due = [w for w in self._resting[symbol] if w.next_k == k]
        if len(due) > 1:
            due.sort(key=_priority)
        now = self._clock.now_ns()
        for working in due:
            self.stats.wakeups += 1
            if working.timer is not None:
                working.timer.cancel()  # the others due now: this call serves them all
                working.timer = None
            order, book = working.order, working.book
            want = order.quantity - order.filled_quantity
            taken = book.take_depth(k, working.is_buy, order.price, want, fresh_only=True)
            quantity = sum(q for _, q in taken)
            quantity += book.take_volume(k, working.is_buy, order.price, want - quantity)
            if quantity:
                self._fill(working, order.price, quantity, now)
            if order.status is not OrderStatus.FILLED:
                self._schedule(working, k + 1)

    def _uncross(self) -> None:
        """15:00:00: the closing call's single match, symbol by symbol (see the module docstring)."""
        now = self._clock.now_ns()
        for symbol in sorted(self._resting):
            resting = self._resting[symbol]
            if not resting:
                continue
            uncross = close_print(self._market.days[symbol], self._close_ns)
            if uncross is None:
                continue
            eligible = sorted(
                (w for w in resting if auction_eligible(w.is_buy, w.order.price, uncross.price)),
                key=_priority,
            )
            budget = int(self.auction_share * uncross.volume)
            wants = [w.order.quantity - w.order.filled_quantity for w in eligible]
            for working, quantity in zip(eligible, allocate_uncross(wants, budget), strict=True):
                if quantity > 0:
                    self.stats.auction_fills += 1
                    self.stats.auction_volume += quantity
                    self._fill(working, uncross.price, quantity, now)

    def _fill(self, working: _Working, price: int, quantity: int, now: int) -> None:
        order = working.order
        value = order.filled_value + price * quantity
        commission, stamp_duty, transfer_fee = self._rules.fees_on_value(order.symbol, order.side, value)
        self._trade_seq += 1
        fill = OrderFilled(
            ts_event=now,
            ts_init=now + self._latency,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            trade_id=f"T{self._trade_seq:09d}",
            side=order.side,
            price=price,
            quantity=quantity,
            commission=commission - order.commission,
            stamp_duty=stamp_duty - order.stamp_duty,
            transfer_fee=transfer_fee - order.transfer_fee,
        )
        self._emit(order, fill)  # raises OverfillError (integrity alarm) before anything moves
        self._account.on_fill(order, fill)
        self._trades.append(
            FillReport(
                trade_id=fill.trade_id,
                client_order_id=order.client_order_id,
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                side=order.side,
                price=price,
                quantity=quantity,
                commission=fill.commission,
                stamp_duty=fill.stamp_duty,
                transfer_fee=fill.transfer_fee,
                ts_event=now,
            )
        )
        stats = self.stats
        stats.fills += 1
        stats.filled_volume += quantity
        stats.filled_value += price * quantity
        stats.fees += fill.fees
        if order.status is OrderStatus.FILLED:
            self._drop(working)

    # ------------------------------------------------------------------------------------- plumbing
    def _finish(self, working: _Working, event: OrderCanceled | OrderExpired) -> None:
        self._emit(working.order, event)
        self._drop(working)

    def _drop(self, working: _Working) -> None:
        """The order is final: stop its timer, forget it as working, release what it still holds."""
        if working.timer is not None:
            working.timer.cancel()
            working.timer = None
        working.next_k = -1
        order = working.order
        del self._working[order.client_order_id]
        self._resting[order.symbol].remove(working)
        self._account.release(order)

    def _emit(self, order: Order, event: OrderEvent) -> None:
        """Apply the event to our copy of the order, then deliver it after the latency."""
        order.apply(event)
        self._order_ts[order.client_order_id] = event.ts_event
        self._clock.call_at(event.ts_init, partial(self._deliver, event), "sim_event")

    def _deliver(self, event: OrderEvent) -> None:
        if self._sink is not None:
            self._sink(event)

    def _book(self, symbol: str) -> SymbolBook:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = SymbolBook(self._market.days[symbol], self._windows)
        return book

    def _mark(self, symbol: str, fallback: int) -> int:
        """Price to value a position at now: the last trade, else the previous close, else ``fallback``."""
        day = self._market.days.get(symbol)
        if day is None:
            return fallback
        i = day.index_at(self._clock.now_ns())
        last = int(day.last[i]) if i >= 0 else 0
        return last if last > 0 else day.prev_close
