"""Typed reasons, each an enum plus a detail: why an order was denied, why a parent is not filled.

Two kinds: ``Denial`` (``DenialCode`` + detail), why an order was refused before any broker saw it; and
``Unfilled`` (``UnfilledCode`` + detail), why an algorithm's parent is not filled.

Every pre-trade check (``engine.oms``, ``engine.risk``, ``engine.risk_controls``, ``engine.account``, the
link and trading-day gates, ``engine.market``'s order rules) answers ``Denial | None``; ``OrderDenied``
carries the ``code`` and the text (``reason``, ``"code: detail"``) for logs, the journal and people. Who
reacts to a denial (algorithms, the halt and link listeners, the alert digest, the risk counters) reads
the ``code``; nothing parses the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from zhixing.engine.errors import ParameterError


class DenialCode(StrEnum):
    # the OrderManager's own
    HALTED = "halted"  # trading halted (kill switch, auto halt, lost order)
    SYMBOL_HALTED = "symbol_halted"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    PRICE_NOT_POSITIVE = "price_not_positive"
    # the link and the trading day
    BROKER_DISCONNECTED = "broker_disconnected"
    DAY_NOT_STARTED = "day_not_started"
    # market rules (engine.risk, engine.market.instruments)
    MARKET_NOT_CONTINUOUS = "market_not_continuous"
    MARKET_CLOSED = "market_closed"
    NO_REFERENCE_QUOTE = "no_reference_quote"
    NO_PRICE_LIMITS = "no_price_limits"
    QUANTITY_ABOVE_POSITION = "quantity_above_position"
    QUANTITY_ABOVE_MAX = "quantity_above_max"
    ODD_LOT_MUST_SELL_ALL = "odd_lot_must_sell_all"
    QUANTITY_BELOW_MINIMUM = "quantity_below_minimum"
    QUANTITY_NOT_LOT_MULTIPLE = "quantity_not_lot_multiple"
    PRICE_OFF_TICK = "price_off_tick"
    PRICE_ABOVE_LIMIT_UP = "price_above_limit_up"
    PRICE_BELOW_LIMIT_DOWN = "price_below_limit_down"
    ORDER_TYPE_NOT_ACCEPTED = "order_type_not_accepted"  # a market kind the symbol's exchange does not take
    PROTECTION_PRICE_REQUIRED = "protection_price_required"  # a STAR/ChiNext market order without one
    MARKET_ORDER_WITHOUT_LIMITS = "market_order_without_limits"  # market orders need daily price limits
    # the account (engine.account)
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_SELLABLE = "insufficient_sellable"
    # the risk gate (engine.risk_controls)
    SYMBOL_REJECTS = "symbol_rejects"
    MAX_ORDER_QUANTITY = "max_order_quantity"
    MAX_ORDER_VALUE = "max_order_value"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_COLLAR = "price_collar"
    DUPLICATE_ORDER = "duplicate_order"
    SELF_CROSS = "self_cross"
    MAX_ACTIVE_ORDERS = "max_active_orders"
    RATE_PER_SECOND = "rate_per_second"  # no longer given by the gate (the per-second cap queues since
    # issue 20); kept: earlier journals and reports carry it
    RATE_PER_DAY = "rate_per_day"
    RATE_QUEUE_TIMEOUT = "rate_queue_timeout"  # queued for the per-second cap longer than the bound


PERMANENT: frozenset[DenialCode] = frozenset(
    {DenialCode.MAX_ORDER_VALUE, DenialCode.MAX_ORDER_QUANTITY, DenialCode.SYMBOL_REJECTS}
)
"""Codes the same order would meet again (too large for the risk limits; its symbol blocked for the day by
the per-symbol reject breaker): an algorithm stops at once instead of retrying at every step."""


@dataclass(frozen=True, slots=True)
class Denial:
    """Why one order was refused: ``code`` for programs, ``detail`` for people."""

    code: DenialCode
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}" if self.detail else self.code.value


class UnfilledCode(StrEnum):
    """Why an algorithm's parent is not (yet) filled: what its latest due work met. Values are the
    journal's and the reports' text; they never change."""

    NO_TRADING_TIME = "no_trading_time"  # the parent's window holds no continuous trading
    NO_QUOTE = "no_quote"  # no usable quote to price a child from
    LIMIT_UP = "limit_up"  # a buy into a sealed limit-up: no one sells
    LIMIT_DOWN = "limit_down"  # a sell into a sealed limit-down: no one buys
    LIMIT_PRICE = "limit_price"  # the child went out held back by the parent's limit price
    LIMIT_PRICE_OUTSIDE_BAND = "limit_price_outside_band"  # the parent's limit lies outside today's band
    CLOSING_AUCTION_MISSED = "closing_auction_missed"  # the closing-call order's moment had passed
    ODD_LOT_REMAINDER = "odd_lot_remainder"  # a buy's rest is below the smallest buy size
    DENIED = "denied"  # a child was refused before reaching the broker (detail: the denial's text)
    REJECTED = "rejected"  # the broker rejected a child (detail: the broker's reason)
    CASH = "cash"  # a rebalance's buy sized down (or out) to the cash its sells confirmed
    # how the parent ended, when nothing above stood in its way (``ExecAlgo`` records it as it ends)
    WINDOW_ENDED = "window_ended"  # its window ended first (detail: what was still working then)
    STOPPED = "stopped"  # stopped by the operator or the engine (detail: by whom, when known)
    CANCELED = "canceled"  # cancelled by the operator (detail: by what, when known)
    HALTED = "halted"  # trading is halted: paused, or ended, while halted (detail: the halt's reason)
    PAUSED = "paused"  # paused (the operator, a lost broker link) and not resumed (detail: by what)
    ENDED = "ended"  # ended short with its cause not recorded (a journal written before every ending had one)


DETAILED: frozenset[UnfilledCode] = frozenset(
    {
        UnfilledCode.DENIED,
        UnfilledCode.REJECTED,
        UnfilledCode.WINDOW_ENDED,
        UnfilledCode.STOPPED,
        UnfilledCode.CANCELED,
        UnfilledCode.HALTED,
        UnfilledCode.PAUSED,
    }
)
"""Codes whose text carries a detail: ``"<code>:<detail>"`` (the detail may be empty for the codes of
how a parent ended); the others are the bare code."""

ENDINGS: frozenset[UnfilledCode] = frozenset(
    {
        UnfilledCode.WINDOW_ENDED,
        UnfilledCode.STOPPED,
        UnfilledCode.CANCELED,
        UnfilledCode.HALTED,
        UnfilledCode.PAUSED,
        UnfilledCode.ENDED,
    }
)
"""Codes that say how the parent ended (or stands still), not what its last work met."""


@dataclass(frozen=True, slots=True)
class Unfilled:
    """Why a parent is not filled: ``code`` for programs, ``detail`` for people (the denial's or the
    broker's text), and for a denial its ``DenialCode``. ``str()`` is the text the journal, the reports
    and the e-mails show (``"limit_up"``, ``"denied:halted: test"``, ``"rejected:<broker text>"``);
    ``from_journal`` reads that text back."""

    code: UnfilledCode
    detail: str = ""
    denial: DenialCode | None = None

    def __post_init__(self) -> None:
        if self.code not in DETAILED and self.detail:
            raise ParameterError(
                f"unfilled code {self.code.value!r} takes no detail", name="detail", value=self.detail
            )
        if self.denial is not None and self.code is not UnfilledCode.DENIED:
            raise ParameterError(
                f"only a denial has a denial code, not {self.code.value!r}", name="denial", value=self.denial
            )

    @classmethod
    def denied(cls, code: DenialCode | None, text: str) -> Unfilled:
        """A child was denied: its ``OrderDenied.code`` and the denial's text."""
        return cls(UnfilledCode.DENIED, text, denial=code)

    def __str__(self) -> str:
        return f"{self.code.value}:{self.detail}" if self.code in DETAILED else self.code.value

    @classmethod
    def from_journal(cls, text: str) -> Unfilled | None:
        """The reason ``str()`` wrote into the journal, read back ("" : none). A denial's code is read
        from the head of its text (``Denial.__str__``: ``"code: detail"``)."""
        if not text:
            return None
        head, colon, detail = text.partition(":")
        code = _UNFILLED_BY_TEXT.get(head)
        if colon and code in DETAILED:
            if code is not UnfilledCode.DENIED:
                return cls(code, detail)
            denial = detail.partition(":")[0].strip()
            return cls.denied(_DENIAL_BY_TEXT.get(denial), detail)
        code = _UNFILLED_BY_TEXT.get(text)
        if code is None or code in DETAILED:
            raise ParameterError("unknown unfilled reason in the journal", name="reason", value=text)
        return cls(code)


_UNFILLED_BY_TEXT: dict[str, UnfilledCode] = {code.value: code for code in UnfilledCode}
_DENIAL_BY_TEXT: dict[str, DenialCode] = {code.value: code for code in DenialCode}
