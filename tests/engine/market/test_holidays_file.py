"""The user's holidays file: one date per line or a CSV with a date column, an optional known_until line;
every bad file is refused whole, naming the file, the line and the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.errors import InputError
from zhixing.engine.market.holidays import read_holidays


def write(folder: Path, text: str | bytes, name: str = "holidays.txt") -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_one_date_per_line_with_comments_and_known_until(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# 2027 exchange holidays, from the SSE notice\n"
        "known_until = 2027-12-31   # every closure up to here is listed\n"
        "\n"
        "2027-02-08  # 春节\n"
        "2027/2/9\n"
        "  2027-01-01\n",
    )
    holidays = read_holidays(path)
    assert holidays.dates == (date(2027, 1, 1), date(2027, 2, 8), date(2027, 2, 9))
    assert holidays.lines == (6, 4, 5)
    assert holidays.known_until == date(2027, 12, 31)
    assert holidays.known_until_line == 2
    assert holidays.line_of(date(2027, 2, 9)) == 5


def test_a_csv_with_a_date_column_a_bom_and_names(tmp_path: Path) -> None:
    text = "name,Date,note\n元旦,2027-01-01,\n春节,2027-02-08,closed\n,,\nknown_until,2027-12-31\n"
    path = write(tmp_path, "\ufeff" + text, "holidays.csv")
    holidays = read_holidays(path)
    assert holidays.dates == (date(2027, 1, 1), date(2027, 2, 8))
    assert holidays.known_until == date(2027, 12, 31)


def test_weekend_dates_are_accepted_and_known_until_is_optional(tmp_path: Path) -> None:
    holidays = read_holidays(write(tmp_path, "2027-02-06\n2027-02-07\n"))  # a Saturday and a Sunday
    assert holidays.dates == (date(2027, 2, 6), date(2027, 2, 7))
    assert holidays.known_until is None


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("2027-01-01\ngarbage\n", 2, "date", "not a date: 'garbage'"),
        ("2027-01-01\n2027-13-01\n", 2, "date", "no such day"),
        ("2027-02-30\n", 1, "date", "no such day"),
        ("2027-01-01\n1999-10-01\n", 2, "date", "outside 2000-2099"),
        ("2027-01-01\n2207-01-01\n", 2, "date", "outside 2000-2099"),
        ("2027-01-01\n2027-02-08\n2027/1/1\n", 3, "date", "listed twice (first on line 1)"),
        ("2027-01-01 元旦\n", 1, "date", "a name goes after '#'"),
        ("2027-01-01, 2027-01-02\n", 1, "date", "expected one date per line"),
        ("01/02/2027\n", 1, "date", "a CSV header with a 'date' column"),
        ("day,name\n2027-01-01,元旦\n", 1, "date", "a CSV header with a 'date' column"),
        ("name,date\n元旦,\n", 2, "date", "the date is missing"),
        ("name,date\n元旦\n", 2, "date", "the date is missing"),
        ("date\n2027-1-1\n", 2, "date", "not a date"),
        ("known_until = 2027-12-31\n2027-01-01\nknown_until = 2028-12-31\n", 3, "known_until", "twice"),
        ("known_until = next year\n2027-01-01\n", 1, "known_until", "not a date"),
    ],
)
def test_a_bad_row_names_the_file_the_line_and_the_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_holidays(path)
    assert caught.value.path == str(path)
    assert caught.value.row == line
    assert caught.value.field == field
    assert words in str(caught.value)


def test_missing_unreadable_empty_binary_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such holidays file"):
        read_holidays(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="is a folder"):
        read_holidays(tmp_path)
    with pytest.raises(InputError, match="lists no date"):
        read_holidays(write(tmp_path, "# nothing yet\n\n"))
    with pytest.raises(InputError, match="NUL byte") as nul:
        read_holidays(write(tmp_path, b"2027-01-01\n\x00\x00garbage"))
    assert nul.value.row == 2
    gbk = "name,date\n元旦,2027-01-01\n".encode("gbk")  # what a spreadsheet saves on a Chinese Windows
    with pytest.raises(InputError, match=r"not UTF-8 text .*save the file as UTF-8") as enc:
        read_holidays(write(tmp_path, gbk, "gbk.csv"))
    assert enc.value.row == 2
    with pytest.raises(InputError, match="too large"):
        read_holidays(write(tmp_path, "2027-01-01\n" * 200_000))


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    # a path through a file (the folder part is a file): the OS refuses to read it, even for root
    path = write(tmp_path, "2027-01-01\n") / "holidays.txt"
    with pytest.raises(InputError, match="cannot be read") as caught:
        read_holidays(path)
    assert caught.value.path == str(path)
