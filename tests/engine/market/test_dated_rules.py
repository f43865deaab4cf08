"""The dated market rules table (issue 20): fees, bands, lots and new listings as of the day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.clock import SimClock
from zhixing.engine.errors import InputError
from zhixing.engine.market import (
    COVERAGE_FROM,
    FeeSchedule,
    MarketRules,
    RulesCoverageError,
    RulesNow,
    SecurityStatus,
    StatusBook,
    load_status_file,
    price_limits,
    shanghai_ns,
)
from zhixing.engine.market.security_status import StatusSpan


def test_stamp_duty_and_transfer_fee_follow_their_announcements() -> None:
    rules = MarketRules()
    assert (rules.on(date(2021, 12, 1)).stamp_duty_ppm, rules.on(date(2021, 12, 1)).transfer_fee_ppm) == (
        1000,
        20,
    )
    assert rules.on(date(2022, 4, 28)).transfer_fee_ppm == 20
    assert rules.on(date(2022, 4, 29)).transfer_fee_ppm == 10
    assert rules.on(date(2023, 8, 25)).stamp_duty_ppm == 1000
    assert rules.on(date(2023, 8, 28)).stamp_duty_ppm == 500


def test_the_day_fees_keep_the_account_commission() -> None:
    account = FeeSchedule(commission_ppm=120, min_commission=0, stamp_duty_ppm=0)
    fees = MarketRules().on(date(2021, 12, 1)).fees(account)
    assert (fees.commission_ppm, fees.min_commission, fees.stamp_duty_ppm, fees.transfer_fee_ppm) == (
        120,
        0,
        1000,
        20,
    )


def test_chinext_band_and_order_cap_change_on_2020_08_24() -> None:
    rules = MarketRules()
    before, after = (
        rules.instrument("300750.SZ", date(2020, 8, 21)),
        rules.instrument("300750.SZ", date(2020, 8, 24)),
    )
    assert price_limits(before, 10_000) == (9_000, 11_000)
    assert before.max_limit_order_qty == 1_000_000
    assert price_limits(after, 10_000) == (8_000, 12_000)
    assert after.max_limit_order_qty == 300_000


def test_st_main_board_name_has_five_percent_and_st_chinext_twenty_after_the_reform() -> None:
    book = StatusBook(
        spans={
            "600001.SH": [StatusSpan(SecurityStatus.ST, date(2021, 1, 4), date(2021, 12, 31))],
            "300001.SZ": [StatusSpan(SecurityStatus.STAR_ST, None, None)],
        }
    )
    rules = MarketRules(statuses=book)
    st = rules.instrument("600001.SH", date(2021, 12, 1))
    assert st.is_st
    assert price_limits(st, 10_000) == (9_500, 10_500)
    assert price_limits(rules.instrument("600001.SH", date(2022, 1, 4)), 10_000) == (9_000, 11_000)
    assert price_limits(rules.instrument("300001.SZ", date(2021, 12, 1)), 10_000) == (8_000, 12_000)


def test_star_lots_from_its_opening_and_nothing_before() -> None:
    rules = MarketRules()
    star = rules.instrument("688001.SH", date(2019, 7, 22))
    assert (star.buy_min, star.buy_step, star.max_limit_order_qty, star.limit_pct_bp) == (
        200,
        1,
        100_000,
        2000,
    )
    with pytest.raises(RulesCoverageError, match="STAR"):
        rules.instrument("688001.SH", date(2019, 7, 19))


def test_a_registration_ipo_has_no_limit_in_its_first_five_trading_days() -> None:
    book = StatusBook(listings={"603000.SH": date(2024, 1, 2), "300999.SZ": date(2024, 1, 2)})
    rules = MarketRules(statuses=book)
    # 2024-01-02 .. 01-05 and 01-08 are the first five trading days (the weekend between does not count)
    for day in (date(2024, 1, 2), date(2024, 1, 5), date(2024, 1, 8)):
        assert rules.instrument("603000.SH", day).no_price_limit
        assert rules.instrument("300999.SZ", day).no_price_limit
    sixth = rules.instrument("603000.SH", date(2024, 1, 9))
    assert not sixth.no_price_limit
    assert price_limits(sixth, 10_000) == (9_000, 11_000)


def test_an_earlier_main_board_ipo_has_the_44_36_first_day_band_then_the_normal_one() -> None:
    rules = MarketRules(statuses=StatusBook(listings={"603001.SH": date(2020, 1, 2)}))
    first = rules.instrument("603001.SH", date(2020, 1, 2))
    assert not first.no_price_limit
    assert price_limits(first, 10_000) == (6_400, 14_400)  # -36% / +44% of the IPO price
    assert price_limits(rules.instrument("603001.SH", date(2020, 1, 3)), 10_000) == (9_000, 11_000)


def test_a_day_outside_the_coverage_raises() -> None:
    rules = MarketRules()
    before = date(2015, 7, 31)
    assert before < COVERAGE_FROM
    with pytest.raises(RulesCoverageError, match="2015-07-31 is outside"):
        rules.on(before)
    with pytest.raises(RulesCoverageError, match="2015-07-31 is outside"):
        rules.instrument("600000.SH", before)
    assert not isinstance(RulesCoverageError("x"), ValueError)  # never taken for a bad symbol


def test_rules_now_answers_for_the_clock_day() -> None:
    clock = SimClock(shanghai_ns(date(2021, 12, 1), "09:30"))
    now = RulesNow(MarketRules(), clock)
    assert now.today().stamp_duty_ppm == 1000
    assert now.instrument("300750.SZ").limit_pct_bp == 2000
    clock.advance_to(shanghai_ns(date(2024, 3, 1), "09:30"))
    assert now.today().stamp_duty_ppm == 500


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "status.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_status_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "symbol,status,from,to,listing_date\n600001.SH,st,2021-01-04,2021-12-31,\nsz300999,normal,,,2024-01-02\n",
    )
    book = load_status_file(path)
    assert book.status("600001.SH", date(2021, 6, 1)) is SecurityStatus.ST
    assert book.status("600001.SH", date(2022, 6, 1)) is SecurityStatus.NORMAL
    assert book.listing_date("300999.SZ") == date(2024, 1, 2)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("600001.SH,risky,,,", "status"),
        ("60001.SH,st,,,", "symbol"),
        ("600001.SH,st,2021-13-01,,", "from"),
        ("600001.SH,st,2021-02-01,2021-01-01,", "to"),
        ("600001.SH,st,,,01/02/2024", "listing_date"),
    ],
)
def test_a_bad_status_row_names_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, f"symbol,status,from,to,listing_date\n600000.SH,normal,,,\n{row}\n")
    with pytest.raises(InputError, match=f"row 3, field '{field}'") as caught:
        load_status_file(path)
    assert str(path) in str(caught.value)
