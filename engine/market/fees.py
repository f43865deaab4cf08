"""Trading fees: broker commission, stamp duty, transfer fee. Integer milli-yuan, half up to the fen.

Status of each default (MARKET_RULES.md: V confirmed, U unverified and configurable):

=================================  =========  ==================================================
field                              default    status
=================================  =========  ==================================================
``commission_ppm``                 250        U: negotiated with the broker (typically 100-300)
``min_commission``                 5000       V: 5 CNY per trade; brokers may waive it (U)
``stamp_duty_ppm``                 500        V: 0.05% on sells only, since 2023-08-28 (was 1000)
``transfer_fee_ppm``               10         V: 0.001% both sides, SH and SZ, since 2022-04-29
``min_commission_applies_to_funds`` True      U: many brokers waive the minimum for ETFs
``transfer_fee_applies_to_funds``  True       U: exchanges often waive it for ETFs; charging
                                              it overstates costs, the conservative side
=================================  =========  ==================================================

Stamp duty is never charged on funds (V). The schedule carries no dates: the defaults above are
today's rates. A replay or session takes its day's stamp duty and transfer fee from the dated table
(``engine/market/dated_rules.py``: ``MarketRules.on(day).fees(account_schedule)``), keeping only the
account's commission, minimum and fund waivers from the schedule it was given.

Commission budget (``COMMISSION_BUDGET_BPS``): the algorithms slice so that no child (but a parent's last
remainder) is worth less than ``min_child_value`` = minimum commission / budget, so the minimum never
makes a child's commission exceed the budget (5 CNY / 3 bps = 16,666.67 CNY); ``zhixing plan`` and the
replay report warn about a parent whose commission exceeds the budget in bps of its notional.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from zhixing.engine.enums import Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.market.instruments import Instrument
from zhixing.engine.market.symbols import Board

PPM: Final = 1_000_000
FEN: Final = 10  # milli-yuan per fen (0.01 CNY): fees are charged in whole fen
BPS: Final = 10_000

COMMISSION_BUDGET_BPS: Final = 3
"""The commission budget of a child, in bps of its value: the default minimum child value is the minimum
commission divided by it (5 CNY / 0.0003 = 16,666.67 CNY). Above 2.5 bps (a 250 ppm rate) so a child at
the minimum value pays the minimum commission, not more than ~0.5 bps above the proportional rate."""


def fees_bps(fees: int, notional: int) -> float:
    """``fees`` as bps of ``notional`` (both milli-yuan; 0.0 for no notional), rounded to 0.01 bps."""
    return round(fees * BPS / notional, 2) if notional > 0 else 0.0


def _fee(value: int, ppm: int) -> int:
    """``value * ppm / 1e6`` milli-yuan, rounded half up to a whole fen (value >= 0)."""
    denominator = PPM * FEN
    return (2 * value * ppm + denominator) // (2 * denominator) * FEN


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeSchedule:
    commission_ppm: int = 250
    min_commission: int = 5000
    stamp_duty_ppm: int = 500
    transfer_fee_ppm: int = 10
    min_commission_applies_to_funds: bool = True
    transfer_fee_applies_to_funds: bool = True

    def __post_init__(self) -> None:
        for name in ("commission_ppm", "min_commission", "stamp_duty_ppm", "transfer_fee_ppm"):
            if getattr(self, name) < 0:
                raise ParameterError(
                    f"must be >= 0, got {getattr(self, name)}",
                    name=f"FeeSchedule.{name}",
                    value=getattr(self, name),
                )

    def fees(self, instrument: Instrument, side: Side, price: int, quantity: int) -> tuple[int, int, int]:
        """(commission, stamp_duty, transfer_fee) in milli-yuan for one trade of ``quantity`` at ``price``.

        The minimum commission applies per call: call it once per order with the order's total filled
        value (or charge the difference as fills arrive), not once per partial fill, unless the broker
        really charges per fill.
        """
        if price <= 0 or quantity <= 0:
            raise ParameterError(
                f"fees need a positive price and quantity, got {price} x {quantity}", value=(price, quantity)
            )
        value = price * quantity
        is_fund = instrument.board is Board.FUND
        commission = _fee(value, self.commission_ppm)
        if self.min_commission_applies_to_funds or not is_fund:
            commission = max(self.min_commission, commission)
        stamp_duty = _fee(value, self.stamp_duty_ppm) if side is Side.SELL and not is_fund else 0
        charge_transfer = self.transfer_fee_applies_to_funds or not is_fund
        transfer_fee = _fee(value, self.transfer_fee_ppm) if charge_transfer else 0
        return commission, stamp_duty, transfer_fee

    def min_child_value(self, instrument: Instrument, budget_bps: int = COMMISSION_BUDGET_BPS) -> int:
        """The default minimum child value (milli-yuan) for ``instrument``: the minimum commission over
        ``budget_bps`` (rounded up), so the minimum commission is at most the budget of every child at
        least that big. 0 when no minimum applies (none set, a waived fund, a budget of 0)."""
        waived = instrument.board is Board.FUND and not self.min_commission_applies_to_funds
        if waived or self.min_commission <= 0 or budget_bps <= 0:
            return 0
        return -(-self.min_commission * BPS // budget_bps)

    def total(self, instrument: Instrument, side: Side, price: int, quantity: int) -> int:
        """The sum of ``fees``."""
        return sum(self.fees(instrument, side, price, quantity))
