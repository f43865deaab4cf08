"""掘金 (gm) codes and value conversions, in one place.

Every number is a constant of ``gm/enum.py`` in the real ``gm==3.0.192`` wheel;
``tests/adapters/gm/test_gm_api_surface.py`` parses that file and fails if any value here differs.
They are copied rather than imported because the wheel cannot be a dependency: on Python 3.11 it
pins ``pandas<2``, ``numpy<2`` and ``tzdata<=2023.3``.

Vendor values cross this boundary once: float yuan become int milli-yuan (``engine.units.price_from_yuan``,
``NaN``/``inf``/missing become 0 = "unknown"), gm timestamps (``datetime``, aware or Beijing-naive, or epoch
seconds) become int ns since the epoch, ``SHSE.600000`` becomes ``600000.SH``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.units import price_from_yuan

# ---------------------------------------------------------------------------------- OrderSide_*
ORDER_SIDE_BUY: Final = 1  # OrderSide_Buy 买入
ORDER_SIDE_SELL: Final = 2  # OrderSide_Sell 卖出
GM_SIDE: Final[Mapping[Side, int]] = {Side.BUY: ORDER_SIDE_BUY, Side.SELL: ORDER_SIDE_SELL}
SIDE_OF_GM: Final[Mapping[int, Side]] = {ORDER_SIDE_BUY: Side.BUY, ORDER_SIDE_SELL: Side.SELL}

# ---------------------------------------------------------------------------------- order fields
ORDER_TYPE_LIMIT: Final = 1  # OrderType_Limit 限价委托
ORDER_TYPE_MARKET_BOC: Final = 20  # OrderType_Market_BOC 对方最优价格
ORDER_TYPE_MARKET_BOP: Final = 21  # OrderType_Market_BOP 己方最优价格
ORDER_TYPE_MARKET_FAK: Final = 22  # OrderType_Market_FAK 即时成交剩余撤销
ORDER_TYPE_MARKET_FOK: Final = 23  # OrderType_Market_FOK 即时全额成交或撤销
ORDER_TYPE_MARKET_B5TC: Final = 24  # OrderType_Market_B5TC 最优五档剩余撤销
ORDER_TYPE_MARKET_B5TL: Final = 25  # OrderType_Market_B5TL 最优五档剩余转限价
_GM_SZ_MARKET: Final = {
    OrderType.BOC: ORDER_TYPE_MARKET_BOC,
    OrderType.BOP: ORDER_TYPE_MARKET_BOP,
    OrderType.FAK: ORDER_TYPE_MARKET_FAK,
    OrderType.FOK: ORDER_TYPE_MARKET_FOK,
    OrderType.B5TC: ORDER_TYPE_MARKET_B5TC,
}
_GM_SH_MARKET: Final = {OrderType.B5TC: ORDER_TYPE_MARKET_B5TC, OrderType.B5TL: ORDER_TYPE_MARKET_B5TL}
GM_ORDER_TYPE: Final[Mapping[tuple[str, OrderType], int]] = {
    **{(exchange, OrderType.LIMIT): ORDER_TYPE_LIMIT for exchange in ("SH", "SZ", "BJ")},
    **{("SZ", kind): code for kind, code in _GM_SZ_MARKET.items()},
    **{("SH", kind): code for kind, code in _GM_SH_MARKET.items()},
}
"""``order_type`` per (exchange suffix, kind) for ``order_volume``: the market types as the 掘金 docs list
them per exchange (SZSE 20-24, SSE 24-25, the file-order data dictionary's table too). A pair not here
(SSE own-side or counterparty best, BSE market orders) is refused before anything is sent."""
POSITION_EFFECT_OPEN: Final = 1  # PositionEffect_Open (a stock buy)
POSITION_EFFECT_CLOSE: Final = 2  # PositionEffect_Close (a stock sell)
GM_POSITION_EFFECT: Final[Mapping[Side, int]] = {
    Side.BUY: POSITION_EFFECT_OPEN,
    Side.SELL: POSITION_EFFECT_CLOSE,
}
ORDER_DURATION_UNKNOWN: Final = 0  # OrderDuration_Unknown: the counter's default (a day order)
ORDER_QUALIFIER_UNKNOWN: Final = 0  # OrderQualifier_Unknown
MODE_LIVE: Final = 1  # MODE_LIVE (gm.api.run)

# ---------------------------------------------------------------------------------- OrderStatus_*
STATUS_UNKNOWN: Final = 0
STATUS_NEW: Final = 1  # 已报
STATUS_PARTIALLY_FILLED: Final = 2  # 部成
STATUS_FILLED: Final = 3  # 已成
STATUS_DONE_FOR_DAY: Final = 4
STATUS_CANCELED: Final = 5  # 已撤
STATUS_PENDING_CANCEL: Final = 6  # 待撤
STATUS_STOPPED: Final = 7
STATUS_REJECTED: Final = 8  # 已拒绝
STATUS_SUSPENDED: Final = 9  # 挂起
STATUS_PENDING_NEW: Final = 10  # 待报
STATUS_CALCULATED: Final = 11
STATUS_EXPIRED: Final = 12  # 已过期
STATUS_ACCEPTED_FOR_BIDDING: Final = 13
STATUS_PENDING_REPLACE: Final = 14

# What a gm status means for zhixing. Codes absent here (Unknown, DoneForDay, Stopped, Calculated,
# AcceptedForBidding, PendingReplace) are not produced for A-share limit orders; a report carrying one is
# counted and ignored, never guessed at.
ENGINE_STATUS_OF_GM: Final[Mapping[int, OrderStatus]] = {
    STATUS_PENDING_NEW: OrderStatus.SUBMITTED,
    STATUS_NEW: OrderStatus.ACCEPTED,
    STATUS_SUSPENDED: OrderStatus.ACCEPTED,  # held by the counter, still a live order
    STATUS_PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    STATUS_PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
    STATUS_FILLED: OrderStatus.FILLED,
    STATUS_CANCELED: OrderStatus.CANCELED,
    STATUS_REJECTED: OrderStatus.REJECTED,
    STATUS_EXPIRED: OrderStatus.EXPIRED,
}
# statuses only an order the counter took can have: they imply an ack
ACKED_STATUSES: Final = frozenset(
    {
        STATUS_NEW,
        STATUS_PARTIALLY_FILLED,
        STATUS_FILLED,
        STATUS_CANCELED,
        STATUS_PENDING_CANCEL,
        STATUS_SUSPENDED,
        STATUS_EXPIRED,
    }
)
FINAL_STATUSES: Final = frozenset({STATUS_FILLED, STATUS_CANCELED, STATUS_REJECTED, STATUS_EXPIRED})

# ---------------------------------------------------------------------------------- ExecType_*
EXEC_NEW: Final = 1  # 已报
EXEC_CANCELED: Final = 5  # 已撤销
EXEC_PENDING_CANCEL: Final = 6  # 待撤销
EXEC_REJECTED: Final = 8  # 已拒绝
EXEC_PENDING_NEW: Final = 10  # 待报
EXEC_EXPIRED: Final = 12  # 过期
EXEC_TRADE: Final = 15  # 成交
EXEC_ORDER_STATUS: Final = 18  # 委托状态
EXEC_CANCEL_REJECTED: Final = 19  # 撤单被拒绝

# ---------------------------------------------------------------------------------- reject reasons
REJECT_REASON_NAMES: Final[Mapping[int, str]] = {
    0: "unknown",  # OrderRejectReason_Unknown 未知原因
    1: "risk_rule_check_failed",  # OrderRejectReason_RiskRuleCheckFailed 不符合风控规则
    2: "no_enough_cash",  # OrderRejectReason_NoEnoughCash 资金不足
    3: "no_enough_position",  # OrderRejectReason_NoEnoughPosition 仓位不足
    4: "illegal_account_id",  # OrderRejectReason_IllegalAccountId 非法账户ID
    5: "illegal_strategy_id",  # OrderRejectReason_IllegalStrategyId 非法策略ID
    6: "illegal_symbol",  # OrderRejectReason_IllegalSymbol 非法交易标的
    7: "illegal_volume",  # OrderRejectReason_IllegalVolume 非法委托量
    8: "illegal_price",  # OrderRejectReason_IllegalPrice 非法委托价
    10: "account_disabled",  # OrderRejectReason_AccountDisabled 交易账号被禁止交易
    11: "account_disconnected",  # OrderRejectReason_AccountDisconnected 交易账号未连接
    12: "account_logged_out",  # OrderRejectReason_AccountLoggedout 交易账号未登录
    13: "not_in_trading_session",  # OrderRejectReason_NotInTradingSession 非交易时段
    14: "order_type_not_supported",  # OrderRejectReason_OrderTypeNotSupported 委托类型不支持
    15: "throttle",  # OrderRejectReason_Throttle 流控限制
    16: "symbol_suspended",  # OrderRejectReason_SymbolSusppended (sic) 交易代码停牌
    999: "internal",  # OrderRejectReason_Internal 内部错误
}
CANCEL_REJECT_REASON_NAMES: Final[Mapping[int, str]] = {
    101: "order_finalized",  # CancelOrderRejectReason_OrderFinalized 委托已完成
    102: "unknown_order",  # CancelOrderRejectReason_UnknownOrder 未知委托
    103: "broker_option",  # CancelOrderRejectReason_BrokerOption 柜台设置
    104: "already_in_pending_cancel",  # CancelOrderRejectReason_AlreadyInPendingCancel 委托撤销中
}

# The gm.enum names each value above was copied from (checked against the real file by a test).
GM_ENUM_NAMES: Final[Mapping[str, int]] = {
    "OrderSide_Buy": ORDER_SIDE_BUY,
    "OrderSide_Sell": ORDER_SIDE_SELL,
    "OrderType_Limit": ORDER_TYPE_LIMIT,
    "OrderType_Market_BOC": ORDER_TYPE_MARKET_BOC,
    "OrderType_Market_BOP": ORDER_TYPE_MARKET_BOP,
    "OrderType_Market_FAK": ORDER_TYPE_MARKET_FAK,
    "OrderType_Market_FOK": ORDER_TYPE_MARKET_FOK,
    "OrderType_Market_B5TC": ORDER_TYPE_MARKET_B5TC,
    "OrderType_Market_B5TL": ORDER_TYPE_MARKET_B5TL,
    "PositionEffect_Open": POSITION_EFFECT_OPEN,
    "PositionEffect_Close": POSITION_EFFECT_CLOSE,
    "OrderDuration_Unknown": ORDER_DURATION_UNKNOWN,
    "OrderQualifier_Unknown": ORDER_QUALIFIER_UNKNOWN,
    "MODE_LIVE": MODE_LIVE,
    "OrderStatus_Unknown": STATUS_UNKNOWN,
    "OrderStatus_New": STATUS_NEW,
    "OrderStatus_PartiallyFilled": STATUS_PARTIALLY_FILLED,
    "OrderStatus_Filled": STATUS_FILLED,
    "OrderStatus_DoneForDay": STATUS_DONE_FOR_DAY,
    "OrderStatus_Canceled": STATUS_CANCELED,
    "OrderStatus_PendingCancel": STATUS_PENDING_CANCEL,
    "OrderStatus_Stopped": STATUS_STOPPED,
    "OrderStatus_Rejected": STATUS_REJECTED,
    "OrderStatus_Suspended": STATUS_SUSPENDED,
    "OrderStatus_PendingNew": STATUS_PENDING_NEW,
    "OrderStatus_Calculated": STATUS_CALCULATED,
    "OrderStatus_Expired": STATUS_EXPIRED,
    "OrderStatus_AcceptedForBidding": STATUS_ACCEPTED_FOR_BIDDING,
    "OrderStatus_PendingReplace": STATUS_PENDING_REPLACE,
    "ExecType_New": EXEC_NEW,
    "ExecType_Canceled": EXEC_CANCELED,
    "ExecType_PendingCancel": EXEC_PENDING_CANCEL,
    "ExecType_Rejected": EXEC_REJECTED,
    "ExecType_PendingNew": EXEC_PENDING_NEW,
    "ExecType_Expired": EXEC_EXPIRED,
    "ExecType_Trade": EXEC_TRADE,
    "ExecType_OrderStatus": EXEC_ORDER_STATUS,
    "ExecType_CancelRejected": EXEC_CANCEL_REJECTED,
    "OrderRejectReason_Unknown": 0,
    "OrderRejectReason_RiskRuleCheckFailed": 1,
    "OrderRejectReason_NoEnoughCash": 2,
    "OrderRejectReason_NoEnoughPosition": 3,
    "OrderRejectReason_IllegalAccountId": 4,
    "OrderRejectReason_IllegalStrategyId": 5,
    "OrderRejectReason_IllegalSymbol": 6,
    "OrderRejectReason_IllegalVolume": 7,
    "OrderRejectReason_IllegalPrice": 8,
    "OrderRejectReason_AccountDisabled": 10,
    "OrderRejectReason_AccountDisconnected": 11,
    "OrderRejectReason_AccountLoggedout": 12,
    "OrderRejectReason_NotInTradingSession": 13,
    "OrderRejectReason_OrderTypeNotSupported": 14,
    "OrderRejectReason_Throttle": 15,
    "OrderRejectReason_SymbolSusppended": 16,
    "OrderRejectReason_Internal": 999,
    "CancelOrderRejectReason_OrderFinalized": 101,
    "CancelOrderRejectReason_UnknownOrder": 102,
    "CancelOrderRejectReason_BrokerOption": 103,
    "CancelOrderRejectReason_AlreadyInPendingCancel": 104,
}


def installed_enum_mismatches() -> list[str]:
    """Compare ``GM_ENUM_NAMES`` with the installed ``gm.enum`` (a module of plain constants that imports
    without gm's native SDK). Returns one line per difference; empty when they agree or gm is absent."""
    try:
        module = importlib.import_module("gm.enum")
    except ImportError:
        return []
    problems = []
    for name, value in GM_ENUM_NAMES.items():
        real = getattr(module, name, None)
        if real != value:
            problems.append(f"gm.enum.{name} is {real!r}, zhixing expects {value}")
    return problems


def reject_reason(code: int, detail: str) -> str:
    """``ord_rej_reason`` + ``ord_rej_reason_detail`` as one stable text (``no_enough_cash: 资金不足``)."""
    name = REJECT_REASON_NAMES.get(code) or CANCEL_REJECT_REASON_NAMES.get(code) or f"reject_code_{code}"
    detail = detail.strip()
    return f"{name}: {detail}" if detail else name


# ---------------------------------------------------------------------------------- values
CHINA_TZ: Final = timezone(timedelta(hours=8))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)


def money(value: object) -> int:
    """A gm float in yuan to int milli-yuan; missing, NaN, inf or negative -> 0 ("unknown / empty")."""
    if value is None or isinstance(value, bool):
        return 0
    if not isinstance(value, int | float | str):
        return 0
    try:
        number = float(value)
    except ValueError:
        return 0
    if not math.isfinite(number) or number <= 0:
        return 0
    return price_from_yuan(number)


def whole(value: object) -> int:
    """A gm volume to int shares; missing, NaN, fractional or negative -> 0."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return max(int(value), 0)
    return 0


def code(value: object) -> int:
    """An enum field (int in gm's dicts); anything else -> -1 (never a valid code)."""
    if isinstance(value, bool):
        return -1
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return -1


def timestamp_ns(value: object) -> int:
    """A gm timestamp to int ns since the epoch; a naive ``datetime`` is Beijing time; unknown -> 0."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TZ)
        return ((moment - _EPOCH) // _MICRO) * 1000
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return int(value * 1_000_000_000)
    return 0


def text(value: object) -> str:
    return value if isinstance(value, str) else ""
