"""Adversary (issue 20): the security status file accepts rows that contradict or truncate each other.

docs/MARKET_RULES_BY_DATE.md: "A bad row is an InputError naming the file, the row and the field". A
status file where one symbol's periods overlap with different statuses has no single status for the
overlapping days; the loader keeps the first row and silently drops the ST period of the second, so the
replay applies the normal 10% band to an ST name on those days. A row cut short (the ``to`` cell missing)
becomes an open-ended ST status for ever instead of being refused.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.errors import InputError
from zhixing.engine.market.dated_rules import MarketRules
from zhixing.engine.market.security_status import load_status_file


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "status.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_overlapping_periods_with_different_statuses_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "symbol,status,from,to\n600000.SH,normal,2021-01-01,2021-12-31\n600000.SH,st,2021-06-01,2021-06-30\n",
    )
    # today it loads, and 2021-06-15 is 'normal' (the ST row silently ignored): a 10% band on an ST day
    with pytest.raises(InputError, match="row 3"):
        load_status_file(path)


def test_was_the_overlap_gave_the_st_day_the_normal_band(tmp_path: Path) -> None:
    """The loader used to let the first row win (2021-06-15 at 10% though row 3 says ST). Fixed by refusing
    the file: which status holds on shared days is not the engine's to guess. A file of the same periods
    without the overlap gives the ST days 5% and the rest 10%."""
    overlapping = _write(
        tmp_path,
        "symbol,status,from,to\n600000.SH,normal,2021-01-01,2021-12-31\n600000.SH,st,2021-06-01,2021-06-30\n",
    )
    with pytest.raises(InputError, match=r"row 3.*overlaps"):
        load_status_file(overlapping)
    split = tmp_path / "split.csv"
    split.write_text(
        "symbol,status,from,to\n600000.SH,normal,2021-01-01,2021-05-31\n600000.SH,st,2021-06-01,2021-06-30\n"
        "600000.SH,normal,2021-07-01,2021-12-31\n",
        encoding="utf-8",
    )
    rules = MarketRules(statuses=load_status_file(split))
    assert rules.instrument("600000.SH", date(2021, 6, 15)).limit_pct_bp == 500
    assert rules.instrument("600000.SH", date(2021, 7, 1)).limit_pct_bp == 1000


def test_a_row_missing_its_to_cell_is_refused_not_read_as_open_ended(tmp_path: Path) -> None:
    path = _write(tmp_path, "symbol,status,from,to\n600000.SH,st,2021-06-01\n")
    # today: the short row is an ST status from 2021-06-01 for ever (the 5% band on every later day)
    with pytest.raises(InputError, match="row 2"):
        load_status_file(path)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("600000.SH,st,20210601,2021-06-30\n", "field 'from': not a date written YYYY-MM-DD"),
        ("600000.SH,st,2021-W22-1,2021-06-30\n", "field 'from': not a date written YYYY-MM-DD"),
        ("600000.SH,st,2021-06-01,2021-06-30,extra\n", "row 2: 5 cells, the header has 4"),
        ("600000.SH,st,2021-06-01,2021-06-30\n600000.SH,delisting,,\n", "row 3.* overlaps"),
    ],
)
def test_loose_dates_extra_cells_and_open_ended_overlaps_are_refused(
    tmp_path: Path, body: str, says: str
) -> None:
    path = _write(tmp_path, "symbol,status,from,to\n" + body)
    with pytest.raises(InputError, match=says):
        load_status_file(path)
