"""Typed unfilled reasons (``engine.reasons.Unfilled``): an enum plus a detail, the text unchanged.

What must hold: ``str()`` gives exactly the text the journal, the reports and the e-mails have always
shown; ``from_journal`` reads every such text back to an equal value (a denial's code included); text
that is no reason is refused naming it; a code that takes no detail refuses one.
"""

from __future__ import annotations

import pytest

from zhixing.engine.errors import ParameterError
from zhixing.engine.reasons import DETAILED, Denial, DenialCode, Unfilled, UnfilledCode

TEXTS: list[tuple[Unfilled, str]] = [
    (Unfilled(UnfilledCode.NO_TRADING_TIME), "no_trading_time"),
    (Unfilled(UnfilledCode.NO_QUOTE), "no_quote"),
    (Unfilled(UnfilledCode.LIMIT_UP), "limit_up"),
    (Unfilled(UnfilledCode.LIMIT_DOWN), "limit_down"),
    (Unfilled(UnfilledCode.LIMIT_PRICE), "limit_price"),
    (Unfilled(UnfilledCode.LIMIT_PRICE_OUTSIDE_BAND), "limit_price_outside_band"),
    (Unfilled(UnfilledCode.CLOSING_AUCTION_MISSED), "closing_auction_missed"),
    (Unfilled(UnfilledCode.ODD_LOT_REMAINDER), "odd_lot_remainder"),
    (Unfilled.denied(DenialCode.HALTED, "halted: test"), "denied:halted: test"),
    (Unfilled.denied(DenialCode.MAX_ORDER_VALUE, "max_order_value"), "denied:max_order_value"),
    (Unfilled(UnfilledCode.REJECTED, "证券停牌"), "rejected:证券停牌"),
    (Unfilled(UnfilledCode.REJECTED, "price_above_limit_up"), "rejected:price_above_limit_up"),
    (Unfilled(UnfilledCode.REJECTED, "a: b: c"), "rejected:a: b: c"),
    (Unfilled(UnfilledCode.REJECTED, ""), "rejected:"),
    # how a parent ended (new codes, new text: no journal of old holds them)
    (
        Unfilled(UnfilledCode.WINDOW_ENDED, "39268 of 400000 working, 360732 filled at the end"),
        "window_ended:39268 of 400000 working, 360732 filled at the end",
    ),
    (Unfilled(UnfilledCode.STOPPED, "engine shut down"), "stopped:engine shut down"),
    (Unfilled(UnfilledCode.STOPPED), "stopped:"),
    (Unfilled(UnfilledCode.CANCELED), "canceled:"),
    (Unfilled(UnfilledCode.HALTED, "operator: lunch"), "halted:operator: lunch"),
    (Unfilled(UnfilledCode.PAUSED, "broker link down"), "paused:broker link down"),
    (Unfilled(UnfilledCode.ENDED), "ended"),
    (Unfilled(UnfilledCode.CASH), "cash"),
]


@pytest.mark.parametrize(("unfilled", "text"), TEXTS)
def test_the_text_is_todays_and_reads_back_equal(unfilled: Unfilled, text: str) -> None:
    assert str(unfilled) == text
    assert Unfilled.from_journal(text) == unfilled


def test_every_code_has_a_case() -> None:
    assert {u.code for u, _ in TEXTS} == set(UnfilledCode)


def test_a_denial_becomes_an_unfilled_reason_with_its_code() -> None:
    denial = Denial(DenialCode.RATE_PER_SECOND, "10 messages in the last second")
    unfilled = Unfilled.denied(denial.code, str(denial))
    assert unfilled.code is UnfilledCode.DENIED
    assert unfilled.denial is DenialCode.RATE_PER_SECOND
    assert str(unfilled) == "denied:rate_per_second: 10 messages in the last second"
    assert Unfilled.from_journal(str(unfilled)) == unfilled


def test_a_denial_of_a_code_no_longer_known_reads_back_without_its_code() -> None:
    restored = Unfilled.from_journal("denied:some_old_check: x")
    assert restored == Unfilled(UnfilledCode.DENIED, "some_old_check: x")
    assert restored is not None
    assert restored.denial is None


def test_no_reason_reads_back_as_none() -> None:
    assert Unfilled.from_journal("") is None


@pytest.mark.parametrize("text", ["limit_sideways", "denied", "rejected", "no_quote:extra", "LIMIT_UP"])
def test_text_that_is_no_reason_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ParameterError) as raised:
        Unfilled.from_journal(text)
    assert raised.value.value == text
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("code", sorted(set(UnfilledCode) - DETAILED))
def test_a_code_without_detail_refuses_one(code: UnfilledCode) -> None:
    with pytest.raises(ParameterError):
        Unfilled(code, "something")


def test_only_a_denial_carries_a_denial_code() -> None:
    with pytest.raises(ParameterError):
        Unfilled(UnfilledCode.REJECTED, "x", denial=DenialCode.HALTED)
