"""xtquant codes and their meaning for the engine: order statuses 48-57, return codes, sides.

The numbers come from ``xtquant.xtconstant`` at runtime (``load_xtconstant``): the real module is plain
Python (no ``.pyd``), so it imports on Linux too. ``constants_from_source`` parses the same file with
``ast`` when the package cannot be imported, so a machine without xtquant still runs the route's tests.

Order status (``XtOrder.order_status``), as named in xtconstant.py:

===== ======================= ====== =====================================================================
code  name                    中文    engine
===== ======================= ====== =====================================================================
48    ORDER_UNREPORTED        未报    SUBMITTED (still at the client; nothing to emit)
49    ORDER_WAIT_REPORTING    待报    SUBMITTED
50    ORDER_REPORTED          已报    OrderAccepted (working)
51    ORDER_REPORTED_CANCEL   已报待撤 OrderAccepted; PENDING_CANCEL in reports
52    ORDER_PARTSUCC_CANCEL   部成待撤 OrderAccepted; PENDING_CANCEL in reports (fills come from trades)
53    ORDER_PART_CANCEL       部撤    OrderCanceled (filled > 0; fills come from trades)
54    ORDER_CANCELED          已撤    OrderCanceled
55    ORDER_PART_SUCC         部成    OrderAccepted; fills come from trades (``on_stock_trade``)
56    ORDER_SUCCEEDED         已成    OrderAccepted; FILLED is reached by the trades, never by the status
57    ORDER_JUNK              废单    OrderRejected(status_msg)
255   ORDER_UNKNOWN           未知    nothing (logged); the in-flight checker queries
===== ======================= ====== =====================================================================
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from zhixing.engine.enums import OrderStatus, OrderType, Side

_NEEDED = (
    "SECURITY_ACCOUNT",
    "STOCK_BUY",
    "STOCK_SELL",
    "FIX_PRICE",
    "ORDER_UNREPORTED",
    "ORDER_WAIT_REPORTING",
    "ORDER_REPORTED",
    "ORDER_REPORTED_CANCEL",
    "ORDER_PARTSUCC_CANCEL",
    "ORDER_PART_CANCEL",
    "ORDER_CANCELED",
    "ORDER_PART_SUCC",
    "ORDER_SUCCEEDED",
    "ORDER_JUNK",
    "ORDER_UNKNOWN",
    "ACCOUNT_STATUS_OK",
)


MARKET_PRICE_TYPE_NAMES: dict[tuple[str, OrderType], str] = {
    # xtconstant 报价类型 for stocks (xtquant docs, 委托类型 / 报价类型), per exchange suffix
    ("SH", OrderType.B5TC): "MARKET_SH_CONVERT_5_CANCEL",  # 最优五档即时成交剩余撤销 (上交所)
    ("SH", OrderType.B5TL): "MARKET_SH_CONVERT_5_LIMIT",  # 最优五档即时成交剩余转限价 (上交所)
    ("SH", OrderType.BOC): "MARKET_PEER_PRICE_FIRST",  # 对手方最优价格委托 (上交所, 深交所)
    ("SZ", OrderType.BOC): "MARKET_PEER_PRICE_FIRST",
    ("SH", OrderType.BOP): "MARKET_MINE_PRICE_FIRST",  # 本方最优价格委托 (上交所, 深交所)
    ("SZ", OrderType.BOP): "MARKET_MINE_PRICE_FIRST",
    ("SZ", OrderType.FAK): "MARKET_SZ_INSTBUSI_RESTCANCEL",  # 即时成交剩余撤销 (深交所)
    ("SZ", OrderType.B5TC): "MARKET_SZ_CONVERT_5_CANCEL",  # 最优五档即时成交剩余撤销 (深交所)
    ("SZ", OrderType.FOK): "MARKET_SZ_FULL_OR_CANCEL",  # 全额成交或撤销 (深交所)
}
"""The xtconstant name of each market kind per exchange; one the installed module lacks is not sendable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class XtCodes:
    """The xtconstant numbers the route uses (loaded from the real module, never typed in by hand)."""

    SECURITY_ACCOUNT: int
    STOCK_BUY: int
    STOCK_SELL: int
    FIX_PRICE: int
    ORDER_UNREPORTED: int
    ORDER_WAIT_REPORTING: int
    ORDER_REPORTED: int
    ORDER_REPORTED_CANCEL: int
    ORDER_PARTSUCC_CANCEL: int
    ORDER_PART_CANCEL: int
    ORDER_CANCELED: int
    ORDER_PART_SUCC: int
    ORDER_SUCCEEDED: int
    ORDER_JUNK: int
    ORDER_UNKNOWN: int
    ACCOUNT_STATUS_OK: int
    # (exchange suffix, market kind) -> price type, for the names the module has (empty: limits only)
    market_price_types: Mapping[tuple[str, OrderType], int] = field(default_factory=dict)

    @classmethod
    def from_module(cls, module: Any) -> XtCodes:
        missing = [name for name in _NEEDED if not isinstance(getattr(module, name, None), int)]
        if missing:
            raise ImportError(f"xtconstant lacks {', '.join(missing)}")
        market = {
            key: int(getattr(module, name))
            for key, name in MARKET_PRICE_TYPE_NAMES.items()
            if isinstance(getattr(module, name, None), int)
        }
        return cls(**{name: int(getattr(module, name)) for name in _NEEDED}, market_price_types=market)

    def price_type_of(self, order_type: OrderType, symbol: str) -> int | None:
        """The ``order_stock`` price type for ``order_type`` on ``symbol``, or None: not sendable."""
        if order_type is OrderType.LIMIT:
            return self.FIX_PRICE
        return self.market_price_types.get((symbol[-2:], order_type))

    # ---------------------------------------------------------------------------------- meaning
    def side_of(self, order_type: int) -> Side | None:
        if order_type == self.STOCK_BUY:
            return Side.BUY
        if order_type == self.STOCK_SELL:
            return Side.SELL
        return None

    def order_type_of(self, side: Side) -> int:
        return self.STOCK_BUY if side is Side.BUY else self.STOCK_SELL

    def action_of(self, status: int) -> StatusAction:
        """What an ``on_stock_order`` push with this status means for the engine."""
        if status in (self.ORDER_UNREPORTED, self.ORDER_WAIT_REPORTING):
            return StatusAction.NONE
        if status in (
            self.ORDER_REPORTED,
            self.ORDER_REPORTED_CANCEL,
            self.ORDER_PARTSUCC_CANCEL,
            self.ORDER_PART_SUCC,
            self.ORDER_SUCCEEDED,
        ):
            return StatusAction.ACCEPT
        if status in (self.ORDER_CANCELED, self.ORDER_PART_CANCEL):
            return StatusAction.CANCEL
        if status == self.ORDER_JUNK:
            return StatusAction.REJECT
        return StatusAction.UNKNOWN

    def engine_status(self, status: int, traded_volume: int) -> OrderStatus:
        """The engine status of an ``XtOrder`` in a query answer (reconciliation, in-flight checks)."""
        table: Mapping[int, OrderStatus] = {
            self.ORDER_UNREPORTED: OrderStatus.SUBMITTED,
            self.ORDER_WAIT_REPORTING: OrderStatus.SUBMITTED,
            self.ORDER_REPORTED: OrderStatus.ACCEPTED,
            self.ORDER_REPORTED_CANCEL: OrderStatus.PENDING_CANCEL,
            self.ORDER_PARTSUCC_CANCEL: OrderStatus.PENDING_CANCEL,
            self.ORDER_PART_CANCEL: OrderStatus.CANCELED,
            self.ORDER_CANCELED: OrderStatus.CANCELED,
            self.ORDER_PART_SUCC: OrderStatus.PARTIALLY_FILLED,
            self.ORDER_SUCCEEDED: OrderStatus.FILLED,
            self.ORDER_JUNK: OrderStatus.REJECTED,
        }
        found = table.get(status, OrderStatus.SUBMITTED)  # 255 unknown: still in flight
        if found is OrderStatus.ACCEPTED and traded_volume > 0:
            return OrderStatus.PARTIALLY_FILLED
        return found


class StatusAction(StrEnum):
    NONE = "NONE"
    ACCEPT = "ACCEPT"
    CANCEL = "CANCEL"
    REJECT = "REJECT"
    UNKNOWN = "UNKNOWN"


class SendOutcome(StrEnum):
    """What the return value of ``order_stock_async`` / ``cancel_order_stock_async`` tells us."""

    SENT = "SENT"  # a positive request sequence number: correlate the async response by it
    FAILED = "FAILED"  # -1: the request was refused locally, nothing reached the broker
    UNKNOWN = "UNKNOWN"  # -2 (timeout) or anything else: it may have reached the broker


def send_outcome(code: object) -> SendOutcome:
    if isinstance(code, bool) or not isinstance(code, int):
        return SendOutcome.UNKNOWN
    if code > 0:
        return SendOutcome.SENT
    if code == -1:
        return SendOutcome.FAILED
    return SendOutcome.UNKNOWN


# ------------------------------------------------------------------------------------------ loading
def xtquant_dir() -> Path | None:
    """The installed xtquant package folder, or None when it is not installed."""
    spec = importlib.util.find_spec("xtquant")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def constants_from_source(path: Path) -> SimpleNamespace:
    """Every ``NAME = <int literal>`` assignment at the top level of ``xtconstant.py`` (no import)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    values: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                values[node.targets[0].id] = value
    return SimpleNamespace(**values)


def load_xtconstant() -> Any:
    """The real ``xtquant.xtconstant`` module; parsed from its source if importing it fails."""
    try:
        return importlib.import_module("xtquant.xtconstant")
    except ImportError:
        folder = xtquant_dir()
        if folder is None or not (folder / "xtconstant.py").exists():
            raise
        return constants_from_source(folder / "xtconstant.py")


def load_codes(module: Any | None = None) -> XtCodes:
    return XtCodes.from_module(module if module is not None else load_xtconstant())
