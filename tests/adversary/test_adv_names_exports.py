"""ADVERSARY: identifiers in paths and CSV exports. FINDING tests fail on the current code."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest

from zhixing.engine.csv_safe import FORMULA_CHARS, cell
from zhixing.engine.names import name_problem


# FINDING (names): Windows reserves COM0 and LPT0 too (and the superscript forms, refused as non-ASCII).
@pytest.mark.parametrize("name", ["COM0", "lpt0.csv"])
def test_was_finding_windows_device_names_com0_lpt0(name: str) -> None:
    assert name_problem(name) is not None


# HELD: lookalikes, trailing dot/space, ADS colon, CONIN$, hidden, option-like
@pytest.mark.parametrize(
    "name",
    [
        "аcct",
        "acct\u200b",
        "acct ",
        "acct.",
        "acct:stream",
        "CONIN$",
        "con.txt.bak",
        " acct",
        "acct\u00a0",
        "ａcct",
        "acct/",
        "a\\b",
        "..",
        "a..b",
        "-x",
        ".x",
        "x\ud800",
    ],
)
def test_held_names_refused(name: str) -> None:
    assert name_problem(name) is not None


# FINDING (exports): a Decimal that is not finite is written as-is ("-Infinity"): a cell starting with
# '-' that is not a number; the catalog says -inf is text and escaped (only floats are handled).
@pytest.mark.parametrize("value", [Decimal("-Infinity"), Decimal("-NaN")])
def test_was_finding_non_finite_decimal_is_written_bare(value: Decimal) -> None:
    written = cell(value)
    assert not str(written).startswith("-"), written


# FINDING (exports): Python's \d is Unicode: "-١" (Arabic-Indic one) or "-٣+١" count as "a number" and are
# written bare, though no spreadsheet reads them as one.
def test_was_finding_unicode_digits_are_not_numbers() -> None:
    assert str(cell("-١")).startswith("'")


# FINDING candidate (exports): the small-form variants NFKC-normalise to '=', '+', '-' like the full-width
# forms the rule already escapes (WPS/Excel CJK normalise input): '﹦' U+FE66, '﹢' U+FE62, '﹣' U+FE63,
# '﹫' U+FE6B, and the minus sign U+2212.
@pytest.mark.parametrize("lead", ["\ufe66", "\ufe62", "\ufe63", "\ufe6b", "\u2212"])
def test_was_candidate_small_form_formula_chars(lead: str) -> None:
    assert unicodedata.normalize("NFKC", lead) in FORMULA_CHARS or lead == "\u2212"
    assert str(cell(lead + "cmd|' /C calc'!A0")).startswith("'")


# HELD: leading spaces, ideographic space, apostrophe, tab after space, full-width ＝
@pytest.mark.parametrize("text", ["  =1+1", "\u3000=1", "'=1", " \t=1", "＝1+1", "\u00a0@SUM(A1)"])
def test_held_hidden_formulas_are_escaped(text: str) -> None:
    assert str(cell(text)).startswith("'")
