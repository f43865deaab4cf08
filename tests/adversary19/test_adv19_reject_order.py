"""Adversary, issue 19 item 4 (rejects that will repeat): a text naming a stop reason and a transient one.

Rule (docs/RELIABILITY.md, Rejects, and engine/reject_reasons.py): "the first category that matches
decides, the ones that will repeat first"; hostile case 20: "a text naming two things ... the safe
reading (stop) wins". Counters commonly append boilerplate such as 请稍后重试 ("try again later") to
every error. The rule table lists account_restricted, not_permitted and invalid_order (all STOP) *after*
the RETRY categories (busy, timeout, rate_limit), so such a text is retried — and RETRY rejects do not
count toward the per-symbol breaker.
"""

from __future__ import annotations

import pytest

from zhixing.engine.reject_reasons import RejectAction, classify_reject

WILL_REPEAT = [
    ("账户已冻结，请稍后重试", "account_restricted"),
    ("该账户限制买入 (系统繁忙)", "account_restricted"),
    ("无创业板交易权限，请稍后重试", "not_permitted"),
    ("科创板权限未开通, 连接断开", "not_permitted"),
    ("委托数量不合法，请稍后重试", "invalid_order"),
    ("股东账户异常: 处理超时", "account_restricted"),
]


@pytest.mark.parametrize(("text", "category"), WILL_REPEAT)
def test_was_finding_a_stop_reason_with_retry_boilerplate_is_retried(text: str, category: str) -> None:
    verdict = classify_reject(text)
    assert verdict.action is RejectAction.STOP, f"{text!r} read as {verdict} (should stop: {category})"


def test_held_suspended_and_cash_outrank_the_boilerplate() -> None:
    for text in ("该证券停牌，请稍后重试", "资金不足，请稍后重试", "可用股份不足, 系统繁忙"):
        assert classify_reject(text).action is RejectAction.STOP, text


def test_held_gbk_mojibake_backs_off_rather_than_retrying() -> None:
    mojibake = "资金不足".encode("gbk").decode("latin-1")
    replaced = "资金不足".encode("gbk").decode("utf-8", errors="replace")
    assert classify_reject(mojibake).action is RejectAction.BACK_OFF
    assert classify_reject(replaced).action is RejectAction.BACK_OFF
