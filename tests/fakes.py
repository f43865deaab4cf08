"""Hand-written fakes for algorithm tests: a scriptable broker, an in-memory journal, scripted quotes.

``FakeBroker`` records every submit and cancel and sends nothing back on its own unless told to
(``auto_ack``, ``auto_cancel``, ``fill_on_submit``); tests script acks, fills and cancel confirmations
explicitly, so races (a fill between the cancel request and its confirmation) are written out step by step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from zhixing.engine.broker import BrokerAdapter, EventSink
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock, SimClock
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderStatusReport,
    PositionReport,
    Quote,
)
from zhixing.engine.market import TradingCalendar, price_limits
from zhixing.engine.market import instrument_for as _instrument_for
from zhixing.engine.marketdata import QuoteSource
from zhixing.engine.oms import OrderManager, PreTradeCheck
from zhixing.engine.orders import Order
from zhixing.engine.risk_controls import RiskControls, RiskLimits
from zhixing.engine.store import StateStore


class FakeBroker:
    """A ``BrokerAdapter`` that records requests and lets the test play the exchange."""

    name = "fake"

    def __init__(
        self,
        clock: SimClock,
        *,
        auto_ack: bool = True,
        auto_cancel: bool = False,
        fill_on_submit: Callable[[Order], int] | None = None,
    ) -> None:
        self.clock = clock
        self.auto_ack = auto_ack
        self.auto_cancel = auto_cancel
        self.fill_on_submit = fill_on_submit  # shares to fill at once (at the order price)
        self.submitted: list[Order] = []
        self.submit_times: list[int] = []
        self.cancel_requests: list[str] = []
        self.cancel_times: list[int] = []
        self.orders: dict[str, Order] = {}
        self.filled: dict[str, int] = {}  # shares this fake filled per client order id (its own count)
        self._sink: EventSink | None = None
        self._trade_seq = 0

    # -------------------------------------------------------------------------------- protocol
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, order: Order) -> None:
        self.submitted.append(order)
        self.submit_times.append(self.clock.now_ns())
        self.orders[order.client_order_id] = order
        if self.auto_ack:
            self.ack(order.client_order_id)
        if self.fill_on_submit is not None:
            quantity = self.fill_on_submit(order)
            if quantity > 0:
                self.fill(order.client_order_id, quantity)

    async def cancel(self, order: Order) -> None:
        self.cancel_requests.append(order.client_order_id)
        self.cancel_times.append(self.clock.now_ns())
        if self.auto_cancel:
            self.confirm_cancel(order.client_order_id)

    async def query_account(self) -> AccountReport:
        return AccountReport(cash=0, frozen=0, total_asset=0, market_value=0)

    async def query_positions(self) -> list[PositionReport]:
        return []

    async def query_orders(self) -> list[OrderStatusReport]:
        return []

    async def query_trades(self) -> list[FillReport]:
        return []

    # -------------------------------------------------------------------------------- scripting
    def _emit(self, event: OrderEvent) -> None:
        assert self._sink is not None, "FakeBroker used before bind()"
        self._sink(event)

    def ack(self, cid: str) -> None:
        now, symbol = self.clock.now_ns(), self.orders[cid].symbol
        self._emit(
            OrderAccepted(
                ts_event=now, ts_init=now, client_order_id=cid, symbol=symbol, broker_order_id=f"B{cid}"
            )
        )

    def fill(self, cid: str, quantity: int, price: int | None = None) -> None:
        order = self.orders[cid]
        now = self.clock.now_ns()
        self._trade_seq += 1
        self.filled[cid] = self.filled.get(cid, 0) + quantity
        self._emit(
            OrderFilled(
                ts_event=now,
                ts_init=now,
                client_order_id=cid,
                symbol=order.symbol,
                trade_id=f"T{self._trade_seq}",
                side=order.side,
                price=order.price if price is None else price,
                quantity=quantity,
            )
        )

    def fill_all(self, cid: str) -> None:
        order = self.orders[cid]
        left = order.quantity - order.filled_quantity
        if left > 0 and not order.is_terminal:
            self.fill(cid, left)

    def confirm_cancel(self, cid: str, filled: int | None = -1) -> None:
        """Push the cancel confirmation, with the broker's filled quantity: by default what this fake
        has filled of the order; ``filled=None``: a broker that does not say."""
        now, symbol = self.clock.now_ns(), self.orders[cid].symbol
        figure = self.filled.get(cid, 0) if filled == -1 else filled
        self._emit(
            OrderCanceled(ts_event=now, ts_init=now, client_order_id=cid, symbol=symbol, filled_qty=figure)
        )

    def reject_cancel(self, cid: str, reason: str = "too_late") -> None:
        now, symbol = self.clock.now_ns(), self.orders[cid].symbol
        self._emit(
            OrderCancelRejected(ts_event=now, ts_init=now, client_order_id=cid, symbol=symbol, reason=reason)
        )

    def working(self) -> list[Order]:
        return [o for o in self.submitted if o.is_working]


class FakeStore:
    """The slice of ``StateStore`` the OrderManager calls, in memory."""

    def __init__(self, first_id: int = 1) -> None:
        self.orders: dict[str, Order] = {}
        self.fills: list[tuple[OrderFilled, str]] = []
        self.commits = 0
        self._staged = 0
        self._next_id = first_id

    def stage_order(self, order: Order) -> None:
        self.orders[order.client_order_id] = order
        self._staged += 1

    def stage_fill(self, fill: OrderFilled, parent_id: str) -> None:
        self.fills.append((fill, parent_id))
        self._staged += 1

    @property
    def has_staged(self) -> bool:
        return self._staged > 0

    async def commit(self) -> None:
        self.commits += 1
        self._staged = 0

    async def reserve_order_ids(self, count: int) -> int:
        first = self._next_id
        self._next_id += count
        return first


@dataclass
class FakeQuotes:
    """A ``QuoteSource`` whose quotes the test sets."""

    clock: SimClock
    quotes: dict[str, Quote] = field(default_factory=dict)

    def latest(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)

    def set(
        self,
        symbol: str,
        *,
        bid: int,
        ask: int,
        last: int | None = None,
        prev_close: int = 10_000,
        limits: bool = True,
    ) -> Quote:
        """A quote with the given best bid/ask (0 = empty side); limits from ``prev_close`` if asked."""
        low, high = price_limits(_instrument_for(symbol), prev_close) if limits else (0, 0)
        now = self.clock.now_ns()
        quote = Quote(
            ts_event=now,
            ts_init=now,
            symbol=symbol,
            last=last if last is not None else (bid or ask),
            bid_price=bid,
            bid_quantity=1_000 if bid else 0,
            ask_price=ask,
            ask_quantity=1_000 if ask else 0,
            cum_volume=0,
            cum_amount=0,
            prev_close=prev_close,
            high_limit=high,
            low_limit=low,
        )
        self.quotes[symbol] = quote
        return quote


def passing_time(clock: SimClock) -> Callable[[int], Awaitable[None]]:
    """A ``wait(until_ns)`` for code that waits on its own (``recover``'s re-queries): the virtual clock
    fires every timer due by then and stands at it, as if the time had passed."""

    async def wait(until_ns: int) -> None:
        while clock.step(until_ns=until_ns):
            pass
        clock.advance_to(max(until_ns, clock.now_ns()))

    return wait


_CALENDAR: TradingCalendar | None = None


def calendar() -> TradingCalendar:
    """One calendar per test process (loading exchange_calendars takes a moment)."""
    global _CALENDAR
    if _CALENDAR is None:
        _CALENDAR = TradingCalendar()
    return _CALENDAR


@dataclass
class World:
    """Clock, bus, fake broker, OMS and quotes wired together, as the replay harness wires the real ones."""

    clock: SimClock
    bus: EventBus
    broker: FakeBroker
    store: FakeStore
    oms: OrderManager
    quotes: FakeQuotes
    risk: RiskControls | None = None  # the risk gate the OMS was built with, if asked for

    async def run_until(self, until_ns: int) -> None:
        """Fire every timer due by ``until_ns`` (flushing the OMS after each step), then stand at it."""
        while self.clock.step(until_ns):
            await self.oms.flush()
        if self.clock.now_ns() < until_ns:
            self.clock.advance_to(until_ns)
        await self.oms.flush()


async def make_world(
    start_ns: int,
    *,
    first_id: int = 1,
    auto_ack: bool = True,
    auto_cancel: bool = False,
    fill_on_submit: Callable[[Order], int] | None = None,
    risk: RiskLimits | None = None,
    checks: Sequence[PreTradeCheck] = (),
) -> World:
    """The fakes wired to a real OrderManager (a unit of the OMS: the production engine is built by
    ``zhixing.assembly``). ``risk``: a risk gate with these limits, its check after ``checks``."""
    clock = SimClock(start_ns)
    bus = EventBus()
    broker = FakeBroker(clock, auto_ack=auto_ack, auto_cancel=auto_cancel, fill_on_submit=fill_on_submit)
    store = FakeStore(first_id)
    quotes = FakeQuotes(clock)
    oms, gate = oms_with(clock, bus, broker, cast(StateStore, store), quotes, risk=risk, checks=checks)
    await oms.open()
    return World(clock, bus, broker, store, oms, quotes, gate)


def oms_with(
    clock: Clock,
    bus: EventBus,
    broker: BrokerAdapter,
    store: StateStore,
    quotes: QuoteSource,
    *,
    risk: RiskLimits | None = None,
    checks: Sequence[PreTradeCheck] = (),
) -> tuple[OrderManager, RiskControls | None]:
    """An OrderManager over the fakes, with ``checks`` and (``risk`` given) a risk gate as its last
    check and its flow gate."""
    gate = RiskControls(risk, clock, quotes, bus=bus) if risk is not None else None
    all_checks = [*checks, gate.check] if gate is not None else list(checks)
    oms = OrderManager(clock=clock, bus=bus, adapter=broker, store=store, checks=all_checks, gate=gate)
    return oms, gate
