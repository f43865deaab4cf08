"""CSV files for people: a cell that a spreadsheet would run as a formula is made inert.

Excel, WPS and LibreOffice evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and act on a
leading tab or carriage return), so a broker id, a comment, a name or a symbol that came from outside
could run ``=HYPERLINK(...)`` or a DDE command when the user opens the trade log. The rule, for every
CSV meant for a human or a spreadsheet (the trade log ``orders.csv`` / ``fills.csv``, the daily backup
copy of it, any report):

- a number stays a number: ``int``, ``Decimal`` and finite ``float`` values, and text that is exactly a
  decimal number (``-5``, ``-12.340``, ``+3``), are written unchanged;
- any other text whose first character is a formula character (``= + - @``, their full-width forms
  ``＝ ＋ － ＠``, tab, CR, LF), also after leading spaces or apostrophes, gets a leading apostrophe
  (``'``): spreadsheets show the rest as text and hide the apostrophe (OWASP's advice);
- ``unescape`` gives the original text back, so a program that reads the file loses nothing.

The rule is by content, not by source: text zhixing makes itself (statuses, sides, ISO times) never
starts with a formula character, so only outside text is ever changed.

Not escaped: files another program reads in its own format, namely the 文件单 order and cancel files
(``adapters/fileorder``: the terminal reads the sid as written, so each field is checked where it is
made instead) and the terminal emulator's output files.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

FORMULA_CHARS = frozenset("=+-@\t\r\n＝＋－＠")
# and every character that Unicode compatibility folds (NFKC) into one of ``=+-@``: the small forms
# ﹦﹢﹣﹫, the minus sign U+2212 and others a spreadsheet or a text pipeline may normalise
_FOLDS_TO_FORMULA = "=+-@"
_LEADING = " \u00a0\u3000'"  # spaces (ASCII, no-break, ideographic) and apostrophes a formula may hide behind
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")  # ASCII digits only: "-١" is text, not a number


def _formula(text: str) -> bool:
    if text[:1] in ("\t", "\r", "\n"):
        return True
    rest = text.lstrip(_LEADING)
    if not rest or _NUMBER.fullmatch(rest):
        return False
    first = rest[0]
    return (
        first in FORMULA_CHARS
        or first == "\u2212"
        or unicodedata.normalize("NFKC", first)[:1] in _FOLDS_TO_FORMULA
    )


def is_number(value: object) -> bool:
    """Is ``value`` a number (a numeric type, or text that is exactly a decimal number)?"""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, Decimal):
        return value.is_finite()  # Decimal("-Infinity") / NaN are text a spreadsheet would not read
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and bool(_NUMBER.fullmatch(value))


def cell(value: object) -> object:
    """``value`` as it may be written: numbers and ``None`` as they are, text with a leading
    apostrophe when a spreadsheet would take it for a formula."""
    if value is None or is_number(value):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if _formula(text) else text


def unescape(text: str) -> str:
    """The text ``cell`` was given, from what it wrote."""
    return text[1:] if text.startswith("'") and _formula(text[1:]) else text


def row(values: Iterable[object]) -> list[object]:
    return [cell(v) for v in values]


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


class SafeWriter:
    """``csv.writer`` whose every cell goes through ``cell``."""

    def __init__(self, handle: _Writable, **kwargs: Any) -> None:
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, values: Iterable[object]) -> None:
        self._writer.writerow(row(values))

    def writerows(self, rows: Iterable[Sequence[object]]) -> None:
        for values in rows:
            self.writerow(values)


def writer(handle: _Writable, **kwargs: Any) -> SafeWriter:
    """The one way the project writes a CSV for people (``csv.writer`` arguments pass through)."""
    return SafeWriter(handle, **kwargs)
