"""What a broker's reject says about the next order like it: the one classification every route shares.

A reject that will come back for every child (the name is suspended, the cash or the sellable shares are
not there) must not be answered with a new child every slice; a transient one (a rate limit, a timeout,
a busy counter) is answered by trying again. ``classify_reject`` decides, from the reject's reason text.

The reason is text because each route builds it from its vendor's fields, and ``engine`` imports no
adapter:

- 掘金 (gm) and the file-order route: ``<name>: <detail>``, the name from gm's ``OrderRejectReason``
  (``ord_rej_reason``: ``no_enough_cash``, ``no_enough_position``, ``symbol_suspended``, ``throttle``, ...;
  ``adapters.gm.codes.REJECT_REASON_NAMES``), the detail the counter's own text (``资金不足``);
- QMT: ``xtquant error <error_id>: <error_msg>`` (``on_order_error``) or the 废单 order's ``status_msg``,
  the counter's text (``[COUNTER] [251005][证券可用数量不足]``). The error ids are the counter's and differ
  between brokers, so the text decides;
- the simulated exchange: its rule names (``insufficient_cash``, ``price_above_limit_up``, ...).

The text is matched after NFKC normalisation, case folding and dropping everything but letters and
digits (CJK included), so ``no_enough_cash``, ``NoEnoughCash`` and ``No enough cash`` read the same, and
full-width text reads as half-width. The categories are tried in the order of ``_RULES``, the first
that matches decides: the ones that will repeat first (when a text names two things, the safe reading
wins), except that a trading-session text (``当前时间不允许委托``) is a session matter and a rate limit
(``流控限制``) is transient before the broad "not permitted" words are tried.

Actions:

- ``STOP``: it will repeat and will not go away by itself (suspended, unknown symbol, insufficient cash
  or position, not permitted, account restricted, an order the broker calls invalid): stop the parent;
- ``BACK_OFF``: it will repeat for now and may clear (outside the price limits, outside a trading
  session, a broker risk rule) or nobody knows (an unknown text): wait on a bounded schedule;
- ``RETRY``: transient (rate limit, timeout, busy or disconnected counter) or ours, not the venue's (a
  reject with ``venue_confirmed=False``: not sent, no answer): try again at the next step.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class RejectAction(StrEnum):
    STOP = "stop"
    BACK_OFF = "back_off"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class RejectVerdict:
    """A reject's category (``suspended``, ``insufficient_cash``, ..., ``unknown``) and what it calls for."""

    category: str
    action: RejectAction

    @property
    def will_repeat(self) -> bool:
        """Will the next order like it be rejected again (STOP or BACK_OFF)?"""
        return self.action is not RejectAction.RETRY


UNKNOWN = RejectVerdict("unknown", RejectAction.BACK_OFF)
LOCAL = RejectVerdict("local", RejectAction.RETRY)

_STOP, _BACK_OFF, _RETRY = RejectAction.STOP, RejectAction.BACK_OFF, RejectAction.RETRY

# (category, action, words): the first category one of whose words is in the normalised text decides
_RULES: tuple[tuple[str, RejectAction, tuple[str, ...]], ...] = (
    (
        "suspended",
        _STOP,
        ("suspend", "susppend", "tradinghalt", "停牌", "暂停交易", "停止交易", "暂停上市"),
    ),
    (
        "unknown_symbol",
        _STOP,
        (
            "unknownsymbol",
            "illegalsymbol",
            "invalidsymbol",
            "notradingrules",
            "代码不存在",
            "证券不存在",
            "标的不存在",
            "合约不存在",
            "无此证券",
            "无此股票",
            "代码错误",
            "代码有误",
            "非法交易标的",
            "delisted",
            "退市",
            "摘牌",
        ),
    ),
    (
        "insufficient_cash",
        _STOP,
        (
            "insufficientcash",
            "noenoughcash",
            "notenoughcash",
            "insufficientfund",
            "insufficientbuyingpower",
            "资金不足",
            "余额不足",
            "资金可用数不足",
            "可用金额不足",
            "保证金不足",
        ),
    ),
    (
        "insufficient_position",
        _STOP,
        (
            "insufficientsellable",
            "insufficientposition",
            "noenoughposition",
            "notenoughposition",
            "quantityaboveposition",
            "股份不足",
            "持仓不足",
            "仓位不足",
            "可卖数量不足",
            "可用数量不足",
            "证券数量不足",
            "可用股份",
            "股份可用数不足",
            "可用持仓不足",
        ),
    ),
    (
        "price_limit",
        _BACK_OFF,
        (
            "limitup",
            "limitdown",
            "pricelimit",
            "priceband",
            "priceoutofrange",
            "priceabove",
            "pricebelow",
            "illegalprice",
            "涨跌停",
            "涨停",
            "跌停",
            "价格超出",
            "超出价格",
            "价格超过",
            "价格笼子",
            "申报价格范围",
            "价格范围",
            "价格不在",
        ),
    ),
    (
        "not_in_session",
        _BACK_OFF,
        (
            "notintradingsession",
            "marketclosed",
            "exchangeclosed",
            "outsidetradinghours",
            "非交易时",
            "不在交易时",
            "当前时间",
            "交易时间",
            "非交易日",
            "休市",
            "闭市",
            "收市",
        ),
    ),
    (
        "account_restricted",
        _STOP,
        (
            "accountdisabled",
            "accountrestricted",
            "accountfrozen",
            "accountlocked",
            "illegalaccount",
            "illegalstrategy",
            "账户冻结",
            "账号冻结",
            "账户被冻结",
            "账号被冻结",
            "账户已冻结",
            "限制交易",
            "禁止交易",
            "限制买入",
            "限制卖出",
            "账户状态",
            "账户异常",
            "账户受限",
            "账户无效",
            "账号无效",
        ),
    ),
    (
        "not_permitted",
        _STOP,
        (
            "notpermitted",
            "notallowed",
            "nopermission",
            "permissiondenied",
            "forbidden",
            "notsupported",
            "权限",
            "不允许",
            "不支持",
            "禁止",
            "未开通",
            "无权",
            "不可交易",
            "不能交易",
        ),
    ),
    (
        "invalid_order",
        _STOP,
        (
            "illegalvolume",
            "quantitynot",
            "quantitybelow",
            "quantityabove",
            "oddlot",
            "priceofftick",
            "pricenotpositive",
            "非法委托",
            "委托数量",
            "数量不合法",
            "数量错误",
            "最小变动",
            "价位",
        ),
    ),
    ("broker_risk", _BACK_OFF, ("riskrule", "风控", "风险")),
    # the transient ones last: counters append "try again later" / "busy" to errors that will repeat
    (
        "rate_limit",
        _RETRY,
        ("throttle", "ratelimit", "toomany", "toofrequent", "流控", "限流", "频繁", "超过限速", "每秒"),
    ),
    ("timeout", _RETRY, ("timeout", "timedout", "超时")),
    (
        "busy",
        _RETRY,
        (
            "busy",
            "tryagain",
            "temporarily",
            "disconnected",
            "notconnected",
            "loggedout",
            "linkdown",
            "繁忙",
            "系统忙",
            "稍后",
            "重试",
            "未连接",
            "连接断开",
            "断开",
            "未登录",
        ),
    ),
)


def _normalise(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


_NORMALISED_RULES = tuple(
    (RejectVerdict(category, action), tuple(_normalise(word) for word in words))
    for category, action, words in _RULES
)

CATEGORIES: tuple[str, ...] = (*(category for category, _, _ in _RULES), UNKNOWN.category)
"""Every category ``classify_reject`` can answer, ``local`` aside."""


@lru_cache(maxsize=1024)
def _classify_text(reason: str) -> RejectVerdict:
    text = _normalise(reason)
    if not text:
        return UNKNOWN
    for verdict, words in _NORMALISED_RULES:
        if any(word in text for word in words):
            return verdict
    return UNKNOWN


def classify_reject(reason: str, *, venue_confirmed: bool = True) -> RejectVerdict:
    """What a reject with ``reason`` calls for (see the module docstring). A reject the venue did not
    confirm (``venue_confirmed=False``: refused before sending, never answered) is ``LOCAL``: retried."""
    if not venue_confirmed:
        return LOCAL
    return _classify_text(reason[:2_000])
