"""ADVERSARY: calendar / holidays file. Tests marked FINDING fail on the current code; HELD pass."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.calendar_fixtures import HOLIDAYS_2027, unupdated_exchange_calendar
from zhixing.engine.errors import InputError
from zhixing.engine.market.calendar_sources import merge
from zhixing.engine.market.holidays import read_holidays


def _write(tmp_path: Path, text: str, name: str = "holidays.txt", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# FINDING: a known_until one day short of Dec 31 is not a "whole year", so ONE listed date vouches for
# all of 2027 (Spring Festival, May Day, National Day missing) - the calendar then trades on them.
def test_was_finding_known_until_dec_30_with_one_date_vouches_for_a_whole_year(tmp_path: Path) -> None:
    path = _write(tmp_path, "known_until = 2027-12-30\n2027-01-01\n")
    with pytest.raises(InputError):
        merge([unupdated_exchange_calendar()], read_holidays(path))


# FINDING: a partial-year extension listing only a WEEKEND date (which changes nothing) is accepted as
# "listing" that part of the year: half of 2027 known with zero weekday closures (Spring Festival traded).
def test_was_finding_a_half_year_extension_vouched_by_one_weekend_date(tmp_path: Path) -> None:
    path = _write(tmp_path, "known_until = 2027-06-30\n2027-01-02\n")  # a Saturday
    with pytest.raises(InputError):
        merge([unupdated_exchange_calendar()], read_holidays(path))


# HELD: BOM + CRLF + out of order + duplicate in two spellings
def test_held_bom_crlf_out_of_order_file_reads(tmp_path: Path) -> None:
    text = (
        "\ufeffknown_until = 2027-12-31\r\n"
        + "\r\n".join(d.isoformat() for d in reversed(HOLIDAYS_2027))
        + "\r\n"
    )
    holidays = read_holidays(_write(tmp_path, text))
    assert list(holidays.dates) == sorted(HOLIDAYS_2027)
    known = merge([unupdated_exchange_calendar()], holidays)
    assert known.known_until == date(2027, 12, 31)
    assert date(2027, 2, 8) not in known.sessions


def test_held_duplicate_in_two_spellings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="twice"):
        read_holidays(_write(tmp_path, "2027-02-08\n2027/2/8\n"))


# FINDING?: a UTF-16 file (Notepad "Unicode") - refused? It contains NUL bytes -> refused naming line. HELD.
def test_held_utf16_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read_holidays(_write(tmp_path, "2027-02-08\n", encoding="utf-16"))


# FINDING: full-width digits / Chinese date 2027年2月8日 - refused? (regex [0-9]) HELD
def test_held_chinese_date_spelling_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read_holidays(_write(tmp_path, "2027年2月8日\n"))


# A CSV from a spreadsheet: date column, then a row whose date cell is written 2027/02/08 with a name
# containing a '#' - the name must not be cut into the date.
def test_held_csv_with_hash_in_name(tmp_path: Path) -> None:
    holidays = read_holidays(_write(tmp_path, 'date,name\n2027-02-08,春节 #1\n2027-02-09,"a, b"\n'))
    assert holidays.dates == (date(2027, 2, 8), date(2027, 2, 9))


# A known_until in a CSV's date column (a spreadsheet row "known_until" as a name)...
# A CSV where the header itself is "Date" with trailing spaces and a BOM: held by strip/lower.
def test_held_csv_header_with_bom_and_case(tmp_path: Path) -> None:
    holidays = read_holidays(_write(tmp_path, "\ufeff Date ,Name\n2027-02-08,x\n"))
    assert holidays.dates == (date(2027, 2, 8),)


# FINDING candidate: a line separator the spreadsheet never writes but str.splitlines honours (U+2028,
# \x0c form feed, \x1c): a name after '#' containing U+2028 splits into a second "line" that is parsed
# as a date row.
def test_was_candidate_unicode_line_separator_in_comment(tmp_path: Path) -> None:
    # "2027-02-08  # 春节\u20282027-02-09" : the text after # is a comment; a reader that honours only
    # \n/\r would close nothing on 02-09. Line numbers reported must match what an editor shows.
    holidays = read_holidays(_write(tmp_path, "2027-02-08  # 春节\u2028 2027-02-09\n2027-02-10\n"))
    assert holidays.dates == (date(2027, 2, 8), date(2027, 2, 10))
    assert holidays.lines == (1, 2)
