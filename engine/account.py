"""The account as the engine sees it: cash, frozen cash, positions with T+1 sellable quantity.

Cash from today's sells is usable today; shares bought today are not sellable until the next trading
day (T+1). Working buys freeze their estimated cost (price x quantity + fees); working sells freeze
their shares. Fills move frozen into spent, and a terminal order releases what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from zhixing.engine.enums import Side
from zhixing.engine.events import OrderFilled
from zhixing.engine.market import trading_date_of
from zhixing.engine.orders import Order
from zhixing.engine.reasons import DenialCode

FeeEstimator = Callable[[str, Side, int, int], int]  # (symbol, side, price, quantity) -> total fees


def no_fees(symbol: str, side: Side, price: int, quantity: int) -> int:
    return 0


@dataclass(slots=True)
class Position:
    symbol: str
    quantity: int = 0  # shares held now
    sellable: int = 0  # T+1: held since before today, minus sold or frozen for sells today
    avg_cost: int = 0  # milli-yuan per share (fees excluded)
    bought_today: int = 0
    sold_today: int = 0


class Account:
    def __init__(self, cash: int, fee_estimator: FeeEstimator = no_fees) -> None:
        self.cash = cash  # available + frozen, milli-yuan
        self.frozen = 0
        self.positions: dict[str, Position] = {}
        self._fee_estimator = fee_estimator
        self._frozen_by_order: dict[str, int] = {}  # buy: frozen cash; sell: frozen shares
        self._sell_symbol: dict[str, str] = {}  # working sells holding shares: client id -> symbol
        self.day: date | None = None  # the trading day ``bought_today`` and ``sold_today`` count

    # ------------------------------------------------------------------------------- views
    @property
    def available_cash(self) -> int:
        return self.cash - self.frozen

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def market_value(self, prices: dict[str, int]) -> int:
        return sum(p.quantity * prices.get(s, p.avg_cost) for s, p in self.positions.items())

    def total_asset(self, prices: dict[str, int]) -> int:
        return self.cash + self.market_value(prices)

    # ------------------------------------------------------------------------------- start of day
    def load_position(
        self, symbol: str, quantity: int, avg_cost: int = 0, sellable: int | None = None
    ) -> None:
        """A holding from before today: all of it sellable unless told otherwise (then the rest counts
        as bought today, so ``start_day`` on the same day keeps it unsellable)."""
        pos = self.position(symbol)
        pos.quantity = quantity
        pos.sellable = quantity if sellable is None else sellable
        pos.bought_today = max(0, quantity - pos.sellable)
        pos.avg_cost = avg_cost

    def start_day(self, day: date) -> None:
        """The start of trading day ``day`` (T+1): on a new day today's counts start from zero, so what
        was bought before today is sellable now; on the same day (a restart) they are kept. Either way
        sellable is recomputed: quantity, minus today's buys, minus what working sells hold frozen."""
        if day != self.day:
            self.day = day
            for pos in self.positions.values():
                pos.bought_today = pos.sold_today = 0
        frozen: dict[str, int] = {}
        for cid, symbol in self._sell_symbol.items():
            frozen[symbol] = frozen.get(symbol, 0) + self._frozen_by_order.get(cid, 0)
        for symbol, pos in self.positions.items():
            pos.sellable = max(0, pos.quantity - pos.bought_today - frozen.get(symbol, 0))

    # ------------------------------------------------------------------------------- checks
    def check(self, order: Order) -> DenialCode | None:
        """Why the account cannot carry this order, or None."""
        if order.side is Side.BUY:
            need = order.price * order.quantity + self._fee_estimator(
                order.symbol, order.side, order.price, order.quantity
            )
            if need > self.available_cash:
                return DenialCode.INSUFFICIENT_CASH
        else:
            pos = self.positions.get(order.symbol)
            if pos is None or order.quantity > pos.sellable:
                return DenialCode.INSUFFICIENT_SELLABLE
        return None

    # ------------------------------------------------------------------------------- order life
    def reserve(self, order: Order, quantity: int | None = None) -> None:
        """Freeze what ``order`` may still spend or sell: all of it by default, or ``quantity`` (its
        leaves, for an order adopted after a restart)."""
        qty = order.quantity if quantity is None else quantity
        if order.side is Side.BUY:
            amount = order.price * qty + self._fee_estimator(order.symbol, order.side, order.price, qty)
            self.frozen += amount
        else:
            amount = qty
            self.position(order.symbol).sellable -= amount
            self._sell_symbol[order.client_order_id] = order.symbol
        self._frozen_by_order[order.client_order_id] = amount

    def is_reserved(self, client_order_id: str) -> bool:
        return client_order_id in self._frozen_by_order

    def on_fill(self, order: Order, fill: OrderFilled) -> None:
        value = fill.price * fill.quantity
        pos = self.position(fill.symbol)
        frozen = self._frozen_by_order.get(order.client_order_id)
        if fill.side is Side.BUY:
            if frozen is not None:
                # release the estimate for this part, at the order's price, capped at what is left
                part = order.price * fill.quantity + self._fee_estimator(
                    order.symbol, order.side, order.price, fill.quantity
                )
                part = min(part, frozen)
                self._frozen_by_order[order.client_order_id] = frozen - part
                self.frozen -= part
            self.cash -= value + fill.fees
            total_cost = pos.avg_cost * pos.quantity + value
            pos.quantity += fill.quantity
            if self._of_today(fill):  # a late row of an earlier day's buy is sellable now (T+1)
                pos.bought_today += fill.quantity
            else:
                pos.sellable += fill.quantity
            pos.avg_cost = total_cost // pos.quantity if pos.quantity else 0
        else:
            if frozen is not None:
                part = min(fill.quantity, frozen)
                self._frozen_by_order[order.client_order_id] = frozen - part
            else:
                pos.sellable -= fill.quantity  # an order we did not reserve for (external)
            self.cash += value - fill.fees
            pos.quantity -= fill.quantity
            pos.sold_today += fill.quantity
            if pos.quantity == 0:
                pos.avg_cost = 0

    def _of_today(self, fill: OrderFilled) -> bool:
        """Did ``fill`` trade on the day the account counts (``day``; unknown: yes, the safe side)?"""
        if self.day is None or fill.ts_event <= 0:  # no day counted, or no trade time said
            return True
        return trading_date_of(fill.ts_event) >= self.day

    def release(self, order: Order) -> None:
        """The order is terminal: give back what it still holds frozen."""
        left = self._frozen_by_order.pop(order.client_order_id, None)
        self._sell_symbol.pop(order.client_order_id, None)
        if not left:
            return
        if order.side is Side.BUY:
            self.frozen -= left
        else:
            self.position(order.symbol).sellable += left
