"""Symbol spellings: one canonical form in, vendor forms only at the edge, no guessing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.engine.market import Board, Exchange, board_of, exchange_of, from_gm, normalize_symbol, to_gm
from zhixing.engine.market.symbols import CANONICAL_PATTERN

codes = st.from_regex(r"[0-9]{6}", fullmatch=True)
exchanges = st.sampled_from(["SH", "SZ", "BJ"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("600000.SH", "600000.SH"),
        ("600000.sh", "600000.SH"),
        ("000001.Sz", "000001.SZ"),
        ("SHSE.600000", "600000.SH"),
        ("SZSE.000001", "000001.SZ"),
        ("BJSE.830799", "830799.BJ"),
        ("shse.600000", "600000.SH"),
        ("sh600000", "600000.SH"),
        ("SZ000001", "000001.SZ"),
        ("bj830799", "830799.BJ"),
    ],
)
def test_normalize_symbol_accepts_the_known_spellings(text: str, expected: str) -> None:
    assert normalize_symbol(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1.SZ",  # an int-looking code that lost its leading zeros is not padded
        "60000.SH",  # five digits
        "6000000.SH",  # seven digits
        "600000.SS",  # Yahoo suffix
        "600000.XSHG",  # jqdata suffix
        "600000",  # no exchange
        "600000.",
        ".SH",
        "SHSE600000",
        "SHSE.60000",
        "SSE.600000",
        "sh 600000",
        " 600000.SH",  # no trimming
        "600000.SH\n",
        "６０００００.SH",  # full-width digits are not ASCII digits
        "600000.SH.SZ",
        "",
    ],
)
def test_normalize_symbol_rejects_everything_else_quoting_the_input(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        normalize_symbol(text)


@given(codes, exchanges)
@pytest.mark.slow
def test_every_accepted_spelling_normalizes_to_the_canonical_pattern(code: str, exchange: str) -> None:
    canonical = f"{code}.{exchange}"
    spellings = [canonical, canonical.lower(), f"{exchange}SE.{code}", f"{exchange.lower()}{code}"]
    for spelling in spellings:
        assert normalize_symbol(spelling) == canonical
    assert re.fullmatch(CANONICAL_PATTERN, canonical)
    assert from_gm(to_gm(canonical)) == canonical


def test_gm_conversion_both_ways() -> None:
    assert to_gm("600000.SH") == "SHSE.600000"
    assert to_gm("000001.SZ") == "SZSE.000001"
    assert to_gm("830799.BJ") == "BJSE.830799"
    assert to_gm("sh600000") == "SHSE.600000"
    assert from_gm("SZSE.000001") == "000001.SZ"
    assert from_gm("BJSE.830799") == "830799.BJ"


@pytest.mark.parametrize("text", ["600000.SH", "sh600000", "SHSE.6000", "XSHG.600000"])
def test_from_gm_accepts_only_the_gm_spelling(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        from_gm(text)


def test_exchange_of() -> None:
    assert exchange_of("600000.SH") is Exchange.SH
    assert exchange_of("SZSE.000001") is Exchange.SZ
    assert exchange_of("bj830799") is Exchange.BJ
    with pytest.raises(ValueError, match=re.escape("'1.SZ'")):
        exchange_of("1.SZ")


@pytest.mark.parametrize(
    ("symbol", "board"),
    [
        ("600000.SH", Board.MAIN),
        ("601318.SH", Board.MAIN),
        ("603258.SH", Board.MAIN),
        ("605128.SH", Board.MAIN),
        ("000001.SZ", Board.MAIN),  # 000001 on SZSE is Ping An Bank ...
        ("000001.SH", Board.INDEX),  # ... on SSE it is the composite index
        ("001979.SZ", Board.MAIN),
        ("002415.SZ", Board.MAIN),
        ("003816.SZ", Board.MAIN),
        ("300122.SZ", Board.CHINEXT),
        ("301236.SZ", Board.CHINEXT),
        ("688218.SH", Board.STAR),
        ("689009.SH", Board.STAR),
        ("830799.BJ", Board.BSE),
        ("430047.BJ", Board.BSE),
        ("920002.BJ", Board.BSE),
        ("510300.SH", Board.FUND),
        ("588000.SH", Board.FUND),
        ("159915.SZ", Board.FUND),
        ("161725.SZ", Board.FUND),
        ("399001.SZ", Board.INDEX),
        ("900901.SH", Board.OTHER),  # B share
        ("113050.SH", Board.OTHER),  # convertible bond
        ("123456.SZ", Board.OTHER),
        ("600000.SZ", Board.OTHER),  # an SSE code with an SZSE suffix is nothing we know
        ("300122.SH", Board.OTHER),
        ("600000.BJ", Board.OTHER),
    ],
)
def test_board_of(symbol: str, board: Board) -> None:
    assert board_of(symbol) is board


def test_enum_values_are_stable_ascii() -> None:
    assert [e.value for e in Exchange] == ["SH", "SZ", "BJ"]
    assert [b.value for b in Board] == ["MAIN", "CHINEXT", "STAR", "BSE", "FUND", "INDEX", "OTHER"]
