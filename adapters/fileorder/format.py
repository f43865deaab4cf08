"""The 掘金 (GM) 文件单 formats: file names, columns, codes and value encodings.

Every number here is a vendor fact with its source (see ``docs/routes/fileorder.md`` for the list of
what was confirmed where and what is assumed):

- codes (``OrderStatus_*``, ``ExecType_*``, ``OrderType_*``, ``OrderBusiness_*``, ``OrderRejectReason_*``)
  are copied from ``gm/enum.py`` of the real ``gm==3.0.192`` wheel;
- input columns, file suffixes and the ``sid`` contract from the 掘金 文件单 documentation as quoted
  by public adapters; output columns as observed by a public adapter (gmadaptor) against a terminal.

Money crosses this boundary as yuan text and becomes int milli-yuan at once; timestamps are ISO 8601
with the ``+08:00`` offset and become int ns since the epoch (UTC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Final

from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import InputError
from zhixing.engine.input_limits import TERMINAL_OUTPUT
from zhixing.engine.units import price_from_yuan, yuan_str

# ------------------------------------------------------------------------------------------ files
ORDER_SUFFIX: Final = ".order.csv"
CANCEL_SUFFIX: Final = ".cancel_order.csv"
MARKER_SUFFIX: Final = ".fin"  # completion marker next to a dropped file (optional)
ORDER_STATUS_FILE: Final = "order_status.csv"
ORDER_STATUS_CHANGE_FILE: Final = "order_status_change.csv"
EXECUTION_REPORT_FILE: Final = "execution_report.csv"
CASH_FILE: Final = "cash.csv"
POSITION_FILE: Final = "position.csv"

# ------------------------------------------------------------------------------------------ input columns
ORDER_HEADER: Final = (
    "sid",
    "account_id",
    "symbol",
    "volume",
    "order_type",
    "order_business(order_biz)",  # the documented name includes the parenthesised alias
    "price",
    "comment",
)
CANCEL_HEADER: Final = ("sid", "comment")

# ------------------------------------------------------------------------------------------ output columns
ORDER_STATUS_HEADER: Final = (
    "account_id",
    "sid",
    "scan_name",
    "cl_ord_id",
    "order_id",
    "symbol",
    "order_type",
    "order_business(order_biz)",
    "status",
    "ord_rej_reason(rej_reason)",
    "ord_rej_reason_detail(rej_detail)",
    "price",
    "volume",
    "filled_volume(filled_vol)",
    "created_at",
    "updated_at",
    "sent_at",
    "recv_at",
)
EXECUTION_REPORT_HEADER: Final = (
    "account_id",
    "sid",
    "scan_name",
    "cl_ord_id",
    "order_id",
    "exec_id",
    "symbol",
    "order_type",
    "order_business(order_biz)",
    "ord_rej_reason(rej_reason)",
    "ord_rej_reason_detail(rej_detail)",
    "exec_type",
    "price",
    "volume",
    "created_at",
    "recv_at",
)
CASH_HEADER: Final = (
    "account_id",
    "nav",
    "pnl",
    "fpnl",
    "frozen",
    "ord_frozen",
    "available",
    "balance",
    "market_value(market_val)",
    "created_at",
    "updated_at",
    "recv_at",
)
POSITION_HEADER: Final = (
    "account_id",
    "symbol",
    "side",
    "volume",
    "volume_today(vol_today)",
    "vwap",
    "market_value(market_val)",
    "price",
    "fpnl",
    "cost",
    "available_now(avl_now)",
    "created_at",
    "updated_at",
    "recv_at",
)

# ---------------------------------------------------------------------------------- codes (gm/enum.py)
# order_type. SZSE accepts 20-24, SSE 24 and 25 (文件单 data dictionary): ``FILE_ORDER_TYPE``.
ORDER_TYPE_LIMIT: Final = 1  # OrderType_Limit 限价委托
ORDER_TYPE_MARKET_BOC: Final = 20  # OrderType_Market_BOC 对方最优价格 (SZSE)
ORDER_TYPE_MARKET_BOP: Final = 21  # OrderType_Market_BOP 己方最优价格 (SZSE)
ORDER_TYPE_MARKET_FAK: Final = 22  # OrderType_Market_FAK 即时成交剩余撤销 (SZSE)
ORDER_TYPE_MARKET_FOK: Final = 23  # OrderType_Market_FOK 即时全额成交或撤销 (SZSE)
ORDER_TYPE_MARKET_B5TC: Final = 24  # OrderType_Market_B5TC 最优五档剩余撤销 (SZSE, SSE)
ORDER_TYPE_MARKET_B5TL: Final = 25  # OrderType_Market_B5TL 最优五档剩余转限价 (SSE)
_SZ_MARKET: Final = {
    OrderType.BOC: ORDER_TYPE_MARKET_BOC,
    OrderType.BOP: ORDER_TYPE_MARKET_BOP,
    OrderType.FAK: ORDER_TYPE_MARKET_FAK,
    OrderType.FOK: ORDER_TYPE_MARKET_FOK,
    OrderType.B5TC: ORDER_TYPE_MARKET_B5TC,
}
_SH_MARKET: Final = {OrderType.B5TC: ORDER_TYPE_MARKET_B5TC, OrderType.B5TL: ORDER_TYPE_MARKET_B5TL}
FILE_ORDER_TYPE: Final[Mapping[tuple[str, OrderType], int]] = {
    **{(exchange, OrderType.LIMIT): ORDER_TYPE_LIMIT for exchange in ("SH", "SZ", "BJ")},
    **{("SZ", kind): code for kind, code in _SZ_MARKET.items()},
    **{("SH", kind): code for kind, code in _SH_MARKET.items()},
}
"""The ``order_type`` code of each (exchange suffix, kind) the file route writes; a pair not here (SSE
own-side or counterparty best, any BSE market order) is refused before anything is written."""

# order_business(order_biz)
ORDER_BIZ_BUY: Final = 1  # OrderBusiness_STOCK_BUY 股票买入
ORDER_BIZ_SELL: Final = 2  # OrderBusiness_STOCK_SELL 股票卖出
BIZ_OF_SIDE: Final[Mapping[Side, int]] = {Side.BUY: ORDER_BIZ_BUY, Side.SELL: ORDER_BIZ_SELL}
SIDE_OF_BIZ: Final[Mapping[int, Side]] = {ORDER_BIZ_BUY: Side.BUY, ORDER_BIZ_SELL: Side.SELL}

# status (OrderStatus_*)
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

# exec_type (ExecType_*)
EXEC_NEW: Final = 1  # 已报
EXEC_CANCELED: Final = 5  # 已撤销
EXEC_PENDING_CANCEL: Final = 6  # 待撤销
EXEC_REJECTED: Final = 8  # 已拒绝
EXEC_PENDING_NEW: Final = 10  # 待报
EXEC_EXPIRED: Final = 12  # 过期
EXEC_TRADE: Final = 15  # 成交
EXEC_CANCEL_REJECTED: Final = 19  # 撤单被拒绝

# ord_rej_reason (OrderRejectReason_*)
REJECT_UNKNOWN: Final = 0  # 未知原因
REJECT_RISK_RULE: Final = 1  # 不符合风控规则
REJECT_NO_ENOUGH_CASH: Final = 2  # 资金不足
REJECT_NO_ENOUGH_POSITION: Final = 3  # 仓位不足
REJECT_ILLEGAL_ACCOUNT_ID: Final = 4  # 非法账户ID
REJECT_ILLEGAL_SYMBOL: Final = 6  # 非法交易标的
REJECT_ILLEGAL_VOLUME: Final = 7  # 非法委托量
REJECT_ILLEGAL_PRICE: Final = 8  # 非法委托价
REJECT_NOT_IN_TRADING_SESSION: Final = 13  # 非交易时段
REJECT_ORDER_TYPE_NOT_SUPPORTED: Final = 14  # 委托类型不支持
REJECT_THROTTLE: Final = 15  # 流控限制
REJECT_SYMBOL_SUSPENDED: Final = 16  # 交易代码停牌
REJECT_INTERNAL: Final = 999  # 内部错误

REJECT_REASON_NAMES: Final[Mapping[int, str]] = {
    REJECT_UNKNOWN: "unknown",
    REJECT_RISK_RULE: "risk_rule_check_failed",
    REJECT_NO_ENOUGH_CASH: "no_enough_cash",
    REJECT_NO_ENOUGH_POSITION: "no_enough_position",
    REJECT_ILLEGAL_ACCOUNT_ID: "illegal_account_id",
    5: "illegal_strategy_id",
    REJECT_ILLEGAL_SYMBOL: "illegal_symbol",
    REJECT_ILLEGAL_VOLUME: "illegal_volume",
    REJECT_ILLEGAL_PRICE: "illegal_price",
    10: "account_disabled",
    11: "account_disconnected",
    12: "account_logged_out",
    REJECT_NOT_IN_TRADING_SESSION: "not_in_trading_session",
    REJECT_ORDER_TYPE_NOT_SUPPORTED: "order_type_not_supported",
    REJECT_THROTTLE: "throttle",
    REJECT_SYMBOL_SUSPENDED: "symbol_suspended",
    REJECT_INTERNAL: "internal",
}

# What a GM status means for zhixing's reports. Absent codes (Unknown, DoneForDay, Stopped, Calculated,
# AcceptedForBidding, PendingReplace) are not produced for A-share limit orders; a row with one is
# logged and ignored rather than guessed at.
ENGINE_STATUS_OF_GM: Final[Mapping[int, OrderStatus]] = {
    STATUS_PENDING_NEW: OrderStatus.SUBMITTED,
    STATUS_NEW: OrderStatus.ACCEPTED,
    STATUS_SUSPENDED: OrderStatus.ACCEPTED,  # held by the terminal, still a live order
    STATUS_PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    STATUS_PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
    STATUS_FILLED: OrderStatus.FILLED,
    STATUS_CANCELED: OrderStatus.CANCELED,
    STATUS_REJECTED: OrderStatus.REJECTED,
    STATUS_EXPIRED: OrderStatus.EXPIRED,
}
FINAL_GM_STATUSES: Final = frozenset({STATUS_FILLED, STATUS_CANCELED, STATUS_REJECTED, STATUS_EXPIRED})

# ------------------------------------------------------------------------------------------ values
CHINA_TZ: Final = timezone(timedelta(hours=8))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)


def price_text(price: int) -> str:
    """Milli-yuan to the yuan text written in a file: 2 decimals on a stock tick (``10010`` ->
    ``"10.01"``), 3 on a fund tick (``1234`` -> ``"1.234"``); exact either way."""
    return yuan_str(price, 2 if price % 10 == 0 else 3)


def ts_text(ts_ns: int) -> str:
    """Int ns since the epoch to the terminal's ISO form, ``2021-12-01T09:30:03.000000+08:00``."""
    moment = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    return moment.astimezone(CHINA_TZ).isoformat(timespec="microseconds")


def parse_ts(text: str) -> int:
    """The terminal's ISO timestamp to int ns since the epoch; a naive one is taken as Beijing time.
    Empty text gives 0 (unknown); text that is no timestamp raises ``InputError`` quoting it."""
    text = text.strip()
    if not text:
        return 0
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        raise InputError(f"not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    return ((moment - _EPOCH) // _MICRO) * 1000


def parse_int(text: str) -> int:
    """A whole number as the terminal writes it (``"100"``, ``"100.0"``); empty is 0. ``InputError``
    quoting the text otherwise (the caller adds the file and line)."""
    text = text.strip()
    if not text:
        return 0
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InputError(f"not a number: {text!r}") from exc
    if value != value.to_integral_value():
        raise InputError(f"not a whole number: {text!r}")
    return int(value)


def parse_money(text: str) -> int:
    """Yuan text to int milli-yuan; empty is 0; ``InputError`` quoting text that is no number."""
    text = text.strip()
    if not text:
        return 0
    try:
        return price_from_yuan(Decimal(text))
    except InvalidOperation as exc:
        raise InputError(f"not a number: {text!r}") from exc


# ------------------------------------------------------------------------------------------ rows
def column_aliases(header: Sequence[str]) -> dict[str, int]:
    """Column name -> index, registering ``name(alias)`` under ``name(alias)``, ``name`` and ``alias``
    (the terminal documents both spellings) and ignoring a BOM and blanks around names."""
    index: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = raw.strip().lstrip("\ufeff").strip()
        index.setdefault(name, i)
        if name.endswith(")") and "(" in name:
            outer, inner = name[:-1].split("(", 1)
            index.setdefault(outer.strip(), i)
            index.setdefault(inner.strip(), i)
    return index


class Row:
    """One parsed output row: values by column name (either spelling), missing columns read as ''."""

    __slots__ = ("_columns", "_values")

    def __init__(self, columns: Mapping[str, int], values: Sequence[str]) -> None:
        self._columns = columns
        self._values = values

    def get(self, name: str) -> str:
        i = self._columns.get(name)
        if i is None or i >= len(self._values):
            return ""
        return self._values[i].strip()

    def has(self, name: str) -> bool:
        return name in self._columns


MAX_LINE = 64 * 1024
"""Characters of one line of the terminal's files: a row is a few hundred; ``csv``'s own field limit
(128 KiB) is never reached below this, so a hostile line is refused here, never a ``csv.Error``."""


def split_line(line: str) -> list[str]:
    """One CSV record (no line break inside: the terminal's fields have none). ``InputError`` for a
    line over ``MAX_LINE``, a cell over ``TERMINAL_OUTPUT.max_cell`` or malformed CSV (the caller adds the
    file and line)."""
    if len(line) > MAX_LINE:
        raise InputError(f"a line of {len(line):,} characters, more than {MAX_LINE:,}")
    try:
        cells = next(csv.reader([line]), [])
    except csv.Error as exc:
        raise InputError(f"not readable as CSV: {exc}") from None
    for index, cell in enumerate(cells):
        if len(cell) > TERMINAL_OUTPUT.max_cell:
            raise InputError(
                f"cell {index + 1} has {len(cell):,} characters, more than {TERMINAL_OUTPUT.max_cell:,}"
            )
    return cells


def render_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Header and rows as CSV text with CRLF line ends (what Windows tools write)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def render_rows(rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
