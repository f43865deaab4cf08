"""Exports for people: no cell a spreadsheet would run as a formula, numbers stay numbers, nothing lost."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine.store.test_store import T0, make_fill, make_order
from zhixing.engine import csv_safe
from zhixing.engine.csv_safe import FORMULA_CHARS, cell, is_number, unescape
from zhixing.engine.store import StateStore
from zhixing.engine.store.trade_log import write_trade_log

ROOT = Path(__file__).resolve().parents[2]
_HIDING = " \u00a0\u3000'"

# text built from the characters that matter, so hypothesis hits the edges often
_text = st.text(alphabet=st.sampled_from([*FORMULA_CHARS, *_HIDING, "0", "5", ".", "a", "|", "!", "汉"]))


def _dangerous(text: str) -> bool:
    """Would a spreadsheet act on this cell? (It shows a leading apostrophe's text as text.)"""
    if text.startswith("'"):
        return False
    if text[:1] in ("\t", "\r", "\n"):
        return True
    rest = text.lstrip(_HIDING)
    return bool(rest) and rest[0] in FORMULA_CHARS and not is_number(rest)


@settings(deadline=None, max_examples=500)
@given(st.one_of(_text, st.text()))
@pytest.mark.slow
def test_a_cell_never_starts_with_a_formula_character_unless_it_is_a_number(text: str) -> None:
    out = cell(text)
    assert isinstance(out, str)
    assert not _dangerous(out)
    if out[:1] in FORMULA_CHARS:
        assert is_number(out)
    assert unescape(out) == text  # a program reading the file gets the original back


@settings(deadline=None, max_examples=200)
@given(
    st.one_of(
        st.integers(),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_numbers_stay_numbers(value: object) -> None:
    assert cell(value) is value
    text = f"{value}"
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        assert cell(text) == text  # "-5", "-12.340": not "'-5"


def test_known_payloads_are_made_inert() -> None:
    payloads = {
        '=HYPERLINK("http://x","click")': '\'=HYPERLINK("http://x","click")',
        "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
        "@SUM(1+1)": "'@SUM(1+1)",
        "+1+cmd|'/c calc'!A0": "'+1+cmd|'/c calc'!A0",
        "-2+3": "'-2+3",
        "\t=1+1": "'\t=1+1",
        "\r=1+1": "'\r=1+1",
        " =1+1": "' =1+1",  # a leading space does not hide it
        "\u3000=1+1": "'\u3000=1+1",  # nor an ideographic space
        "＝1+1": "'＝1+1",  # the full-width form an IME types
        "'=1+1": "''=1+1",  # an apostrophe the user typed stays theirs
    }
    for payload, written in payloads.items():
        assert cell(payload) == written
        assert unescape(written) == payload
    for plain in ("T8", "600000.SH", "BUY", "2024-03-01T09:30:00.123+08:00", "资金不足", "", "-5", "-0.005"):
        assert cell(plain) == plain
    assert cell(None) is None
    assert cell(float("-inf")) == "'-inf"  # not a finite number: text, and escaped
    assert cell(Decimal("-1.50")) == Decimal("-1.50")


def test_the_writer_escapes_every_row() -> None:
    buffer = io.StringIO()
    writer = csv_safe.writer(buffer, lineterminator="\n")
    writer.writerow(["=1", -5, "-5", "ok"])
    writer.writerows([["@x", 3]])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["'=1", "-5", "-5", "ok"], ["'@x", "3"]]


async def test_the_trade_log_escapes_broker_and_parent_ids_and_keeps_numbers(tmp_path: Path) -> None:
    """A hostile broker trade id and parent id reach the journal; the exported 流水 is inert."""
    store = await StateStore.open(tmp_path / "journal.db")
    try:
        order = make_order("C1", parent_id='=HYPERLINK("http://x")')
        store.stage_order(order)
        store.stage_fill(make_fill("C1", "@SUM(A1:A9)", 100), order.parent_id)
        store.stage_fill(make_fill("C1", "-1+cmd|'/c calc'!A0", 100, ts_event=T0 + 5), order.parent_id)
        await store.commit()
        orders_path, fills_path = await store.export_trade_log(tmp_path / "log")
    finally:
        await store.close()
    with orders_path.open(encoding="utf-8", newline="") as handle:
        orders = list(csv.reader(handle))
    with fills_path.open(encoding="utf-8", newline="") as handle:
        fills = list(csv.reader(handle))
    assert orders[1][1] == '\'=HYPERLINK("http://x")'
    assert sorted(row[0] for row in fills[1:]) == ["'-1+cmd|'/c calc'!A0", "'@SUM(A1:A9)"]
    assert all(row[2] == '\'=HYPERLINK("http://x")' for row in fills[1:])
    assert [row[5:8] for row in fills[1:]] == [["10.010", "100", "5.00"]] * 2  # numbers untouched
    for line in orders[1:] + fills[1:]:
        assert not any(_dangerous(value) for value in line)


def test_a_negative_amount_in_the_trade_log_stays_a_number(tmp_path: Path) -> None:
    fill = ("T1", "C1", "P1", "600000.SH", "BUY", -5, 100, -5000, 0, 0, T0)
    _, fills_path = write_trade_log(tmp_path, [], [fill])
    with fills_path.open(encoding="utf-8", newline="") as handle:
        line = list(csv.reader(handle))[1]
    assert (line[5], line[7]) == ("-0.005", "-5.00")


def test_every_csv_writer_of_the_project_goes_through_csv_safe() -> None:
    """A new ``csv.writer``/``DictWriter``/``to_csv`` outside the allow-list fails here: route it through
    ``engine.csv_safe``, or add it below with the reason it is not for people."""
    allowed = {
        "engine/csv_safe.py": "the safe writer itself",
        "adapters/fileorder/format.py": "the terminal's own format (order files, the emulator's output)",
    }
    pattern = re.compile(r"csv\.writer\(|DictWriter\(|\.to_csv\(|\.to_excel\(")
    offenders = []
    for folder in ("engine", "adapters", "algos", "replay", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in allowed and pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(relative)
    assert offenders == []
