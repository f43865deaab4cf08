"""Per-instrument trading rules: tick, lot, order-size cap, daily price limits.

Sources and status (V confirmed, D seen in the data, U unverified and configurable) are in
``MARKET_RULES.md``. Prices are int milli-yuan, quantities int shares; no floats anywhere here.

Checks return a short reason string, or ``None`` when the order is fine (STYLE.md point 10): the risk
layer chains them and turns a reason into an ``OrderDenied`` event.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from zhixing.engine.enums import Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.market.symbols import Board, Exchange, board_of, normalize_symbol
from zhixing.engine.reasons import DenialCode

STOCK_TICK: Final = 10  # 0.01 CNY (V, D)
FUND_TICK: Final = 1  # 0.001 CNY for funds and ETFs (V)
BP_SCALE: Final = 10_000  # basis points per 1.0

MAIN_ST_LIMIT_PCT_BP: Final = 500
"""ST / *ST on the main board: ±5% (V). A 2025-06-27 proposal makes it ±10%; adoption U, so it is the
``st_limit_pct_bp`` argument of ``instrument_for``."""

PROTECTED_BOARDS: Final = frozenset({Board.STAR, Board.CHINEXT})
"""Boards whose market orders must carry a protection price (a buy trades at most at it, a sell at least):
SSE STAR trading special provisions 2019, SZSE ChiNext trading special provisions 2020 (V, secondary)."""

PRICE_CEILING: Final = 10**12
"""The "high" of ``price_limits`` when an instrument has no daily limit (1e9 CNY: above any real price)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    symbol: str  # canonical, e.g. "600000.SH"
    exchange: Exchange
    board: Board
    tick: int  # milli-yuan
    buy_min: int  # shares: the smallest buy order
    buy_step: int  # shares: buy sizes are buy_min + k * buy_step
    max_limit_order_qty: int  # shares per limit order
    max_market_order_qty: int = 0  # shares per market order (0: the limit-order cap)
    limit_pct_bp: int  # daily price limit, basis points of prev close (the upper one when they differ)
    limit_down_pct_bp: int | None = None  # the lower limit when it differs (an old IPO's first day: 36%)
    is_st: bool = False
    no_price_limit: bool = False  # e.g. the first trading days after an IPO
    t_plus: int = 1  # shares bought on day T can be sold from day T + t_plus


@dataclass(frozen=True, slots=True)
class _BoardRules:
    tick: int
    buy_min: int
    buy_step: int
    max_limit_order_qty: int
    limit_pct_bp: int
    max_market_order_qty: int


# Status per MARKET_RULES.md. BSE lot and order cap: U. FUND order cap: U (engine default, conservative).
# FUND t_plus defaults to 1 (equity ETFs); bond, gold, cross-border and money ETFs are T+0 (V, secondary):
# build those with ``dataclasses.replace(instrument, t_plus=0)``.
_RULES: Final[dict[Board, _BoardRules]] = {
    # the last number: the market-order cap (main board U: 500,000 as often quoted; BSE and FUND U)
    Board.MAIN: _BoardRules(STOCK_TICK, 100, 100, 1_000_000, 1000, 500_000),  # V, D
    Board.CHINEXT: _BoardRules(STOCK_TICK, 100, 100, 300_000, 2000, 150_000),  # V, D
    Board.STAR: _BoardRules(STOCK_TICK, 200, 1, 100_000, 2000, 50_000),  # V
    Board.BSE: _BoardRules(STOCK_TICK, 100, 1, 1_000_000, 3000, 1_000_000),  # lot U, cap U, limit V
    Board.FUND: _BoardRules(FUND_TICK, 100, 100, 1_000_000, 1000, 500_000),  # tick V, cap U
}


@functools.lru_cache(maxsize=65_536)  # pure and hot (every order, fill and quote): cache by arguments
def instrument_for(
    symbol: str,
    *,
    is_st: bool = False,
    no_price_limit: bool = False,
    st_limit_pct_bp: int = MAIN_ST_LIMIT_PCT_BP,
) -> Instrument:
    """Today's rules for ``symbol`` (any accepted spelling; stored canonical), whatever the day: the
    dated rules (``MarketRules.instrument(symbol, day)`` in ``dated_rules.py``) start from it and set the
    day's lot, order cap and band for the security's status.

    ``is_st`` narrows the main-board limit to ``st_limit_pct_bp``; ST on ChiNext and STAR keeps ±20%.
    Raises ``ValueError`` for indexes and for codes of ``Board.OTHER``: the engine does not trade
    what it has no rules for.
    """
    canonical = normalize_symbol(symbol)
    board = board_of(canonical)
    rules = _RULES.get(board)
    if rules is None:
        raise ParameterError(
            f"no trading rules for {canonical!r} (board {board.value}): not tradable here", value=symbol
        )
    limit = st_limit_pct_bp if is_st and board is Board.MAIN else rules.limit_pct_bp
    return Instrument(
        symbol=canonical,
        exchange=Exchange(canonical[7:]),
        board=board,
        tick=rules.tick,
        buy_min=rules.buy_min,
        buy_step=rules.buy_step,
        max_limit_order_qty=rules.max_limit_order_qty,
        max_market_order_qty=rules.max_market_order_qty,
        limit_pct_bp=limit,
        is_st=is_st,
        no_price_limit=no_price_limit,
    )


def _div_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for numerator >= 0 and denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def price_limits(instrument: Instrument, prev_close: int) -> tuple[int, int]:
    """The (limit-down, limit-up) prices for a day whose previous close is ``prev_close``.

    ``round(prev_close * (1 ± pct), 2)`` half up to 0.01 CNY for stocks (0.001 for funds): the exchange
    formula (V, D: 19.38 on the main board -> 17.44 / 21.32). Limit-down is never below one tick.
    With ``no_price_limit`` the range is ``(tick, PRICE_CEILING)``. ``limit_down_pct_bp`` (when set) is the
    lower band (a pre-reform IPO's first day: +44% / -36% of the IPO price, the data's ``prev_close``).
    """
    if prev_close <= 0:
        raise ParameterError(
            f"must be positive, got {prev_close} for {instrument.symbol}", name="prev_close", value=prev_close
        )
    tick = instrument.tick
    if instrument.no_price_limit:
        return tick, PRICE_CEILING
    unit = BP_SCALE * tick  # rounds the result onto the tick grid
    down = instrument.limit_pct_bp if instrument.limit_down_pct_bp is None else instrument.limit_down_pct_bp
    low = _div_half_up(prev_close * (BP_SCALE - down), unit) * tick
    high = _div_half_up(prev_close * (BP_SCALE + instrument.limit_pct_bp), unit) * tick
    return max(low, tick), high


def round_price(instrument: Instrument, price: int, side: Side) -> int:
    """``price`` moved onto the tick grid on the passive side: a BUY rounds down, a SELL rounds up.

    A BUY below one tick rounds to 0, which ``check_price`` then reports; nothing is raised here.
    """
    tick = instrument.tick
    if side is Side.BUY:
        return (price // tick) * tick
    return -((-price) // tick) * tick


def is_on_tick(instrument: Instrument, price: int) -> bool:
    return price % instrument.tick == 0


def round_buy_quantity(instrument: Instrument, quantity: int) -> int:
    """The largest buy size <= ``quantity`` on the lot grid (``buy_min + k * buy_step``); 0 below the minimum.

    It does not cap at ``max_limit_order_qty``: it rounds parents and slices alike; splitting an oversized
    order is the caller's job and ``check_order_quantity`` reports ``quantity_above_max``.
    """
    if quantity < instrument.buy_min:
        return 0
    steps = (quantity - instrument.buy_min) // instrument.buy_step
    return instrument.buy_min + steps * instrument.buy_step


def _on_lot_grid(instrument: Instrument, quantity: int) -> bool:
    return quantity >= instrument.buy_min and (quantity - instrument.buy_min) % instrument.buy_step == 0


def check_order_quantity(
    instrument: Instrument, side: Side, quantity: int, position: int, *, market: bool = False
) -> DenialCode | None:
    """Why an order of ``quantity`` shares is invalid, or ``None``.

    ``position`` is the sellable position (after T+1); it is only read for sells. Buys must be on the lot
    grid. Sells must be on the same grid unless they sell the whole position: odd lots (main board and
    ChiNext < 100 shares, a STAR remainder < 200) can only be sold all in one order (V).
    Reasons: ``quantity_not_positive``, ``quantity_above_position``, ``quantity_above_max``,
    ``quantity_below_minimum``, ``quantity_not_lot_multiple``, ``odd_lot_must_sell_all``.
    ``market``: the order is a market order, capped at ``max_market_order_qty`` (when set).
    """
    if quantity <= 0:
        return DenialCode.QUANTITY_NOT_POSITIVE
    if side is Side.SELL and quantity > position:
        return DenialCode.QUANTITY_ABOVE_POSITION
    cap = instrument.max_limit_order_qty
    if market and instrument.max_market_order_qty > 0:
        cap = min(cap, instrument.max_market_order_qty)
    if quantity > cap:
        return DenialCode.QUANTITY_ABOVE_MAX
    if _on_lot_grid(instrument, quantity) or (side is Side.SELL and quantity == position):
        return None
    if side is Side.SELL and not _on_lot_grid(instrument, position):
        # The position holds an odd lot; only a sell of everything can take a size off the grid.
        return DenialCode.ODD_LOT_MUST_SELL_ALL
    if quantity < instrument.buy_min:
        return DenialCode.QUANTITY_BELOW_MINIMUM
    return DenialCode.QUANTITY_NOT_LOT_MULTIPLE


def check_price(instrument: Instrument, price: int, low_limit: int, high_limit: int) -> DenialCode | None:
    """Why a limit price is invalid for today, or ``None``.

    Reasons: ``price_not_positive``, ``price_off_tick``, ``price_above_limit_up``, ``price_below_limit_down``.
    """
    if price <= 0:
        return DenialCode.PRICE_NOT_POSITIVE
    if not is_on_tick(instrument, price):
        return DenialCode.PRICE_OFF_TICK
    if price > high_limit:
        return DenialCode.PRICE_ABOVE_LIMIT_UP
    if price < low_limit:
        return DenialCode.PRICE_BELOW_LIMIT_DOWN
    return None
