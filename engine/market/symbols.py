"""Symbols: one canonical spelling (``600000.SH``), its exchange and its board.

Every symbol inside the engine is canonical: six ASCII digits, a dot, ``SH``, ``SZ`` or ``BJ``.
``normalize_symbol`` is the only way in; vendor spellings (gm/掘金 ``SHSE.600000``, ``sh600000``) are
converted at the edge and a code that lost its leading zeros (``1.SZ``) is an error, never guessed at.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from zhixing.engine.errors import ParameterError


class Exchange(StrEnum):
    SH = "SH"  # Shanghai Stock Exchange (SSE, XSHG)
    SZ = "SZ"  # Shenzhen Stock Exchange (SZSE, XSHE)
    BJ = "BJ"  # Beijing Stock Exchange (BSE)


class Board(StrEnum):
    MAIN = "MAIN"  # SSE 60xxxx; SZSE 000/001/002/003 (002 was the SME board, merged 2021)
    CHINEXT = "CHINEXT"  # SZSE 300/301 (创业板)
    STAR = "STAR"  # SSE 688/689 (科创板)
    BSE = "BSE"  # BJ 8xxxxx, 4xxxxx, 920xxx (北交所)
    FUND = "FUND"  # ETFs and listed funds: SH 5xxxxx, SZ 15xxxx/16xxxx
    INDEX = "INDEX"  # SH 000xxx, SZ 399xxx; not tradable
    OTHER = "OTHER"  # bonds, repos, B shares, ...: no trading rules known to the engine


CANONICAL_PATTERN: Final = r"^[0-9]{6}\.(SH|SZ|BJ)$"
"""What ``normalize_symbol`` returns (ASCII digits only: ``[0-9]``, not ``\\d``, which matches ``６``)."""

_CANONICAL = re.compile(r"([0-9]{6})\.(SH|SZ|BJ)")
_SUFFIXED = re.compile(r"([0-9]{6})\.(SH|SZ|BJ)", re.IGNORECASE)  # 600000.SH, 600000.sh
_GM = re.compile(r"(SH|SZ|BJ)SE\.([0-9]{6})", re.IGNORECASE)  # SHSE.600000 (gm/掘金)
_PREFIXED = re.compile(r"(SH|SZ|BJ)([0-9]{6})", re.IGNORECASE)  # sh600000 (tushare/TDX style)


def normalize_symbol(text: str) -> str:
    """Return the canonical ``dddddd.EX`` spelling of ``text``.

    Accepts ``600000.SH``, ``600000.sh``, ``SHSE.600000``, ``sh600000`` (any letter case) and the same
    for SZ and BJ. Anything else raises ``ValueError`` quoting the input: no whitespace trimming, no
    zero-padding of short codes, no guessing the exchange from the code.
    """
    if _CANONICAL.fullmatch(text):  # hot path: already canonical
        return text
    if m := _SUFFIXED.fullmatch(text):
        return f"{m.group(1)}.{m.group(2).upper()}"
    if m := _GM.fullmatch(text):
        return f"{m.group(2)}.{m.group(1).upper()}"
    if m := _PREFIXED.fullmatch(text):
        return f"{m.group(2)}.{m.group(1).upper()}"
    raise ParameterError(
        f"bad symbol {text!r}: expected six digits and an exchange, "
        "e.g. '600000.SH', 'SHSE.600000' or 'sh600000'",
        value=text,
    )


def to_gm(symbol: str) -> str:
    """Canonical (or any accepted spelling) to the gm/掘金 spelling: ``600000.SH`` -> ``SHSE.600000``."""
    canonical = normalize_symbol(symbol)
    return f"{canonical[7:]}SE.{canonical[:6]}"


def from_gm(text: str) -> str:
    """gm/掘金 spelling to canonical: ``SZSE.000001`` -> ``000001.SZ``. Only the gm form is accepted."""
    m = _GM.fullmatch(text)
    if m is None:
        raise ParameterError(
            f"bad gm symbol {text!r}: expected 'SHSE.dddddd', 'SZSE.dddddd' or 'BJSE.dddddd'", value=text
        )
    return f"{m.group(2)}.{m.group(1).upper()}"


def exchange_of(symbol: str) -> Exchange:
    """The listing exchange of ``symbol`` (any accepted spelling)."""
    return Exchange(normalize_symbol(symbol)[7:])


def board_of(symbol: str) -> Board:
    """The board of ``symbol`` from its code prefix; ``Board.OTHER`` for codes the engine has no rules for."""
    canonical = normalize_symbol(symbol)
    code, exchange = canonical[:6], canonical[7:]
    if exchange == Exchange.SH:
        if code.startswith(("688", "689")):
            return Board.STAR
        if code.startswith("60"):
            return Board.MAIN
        if code.startswith("5"):
            return Board.FUND
        if code.startswith("000"):
            return Board.INDEX
    elif exchange == Exchange.SZ:
        if code.startswith(("000", "001", "002", "003")):
            return Board.MAIN
        if code.startswith(("300", "301")):
            return Board.CHINEXT
        if code.startswith(("15", "16")):
            return Board.FUND
        if code.startswith("399"):
            return Board.INDEX
    elif code.startswith(("8", "4", "920")):
        return Board.BSE
    return Board.OTHER
