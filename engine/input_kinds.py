"""What kind of input file a header says a file is, and the one refusal of a file of another kind.

zhixing reads several CSV kinds that share column names: a targets file (``symbol,volume``), a 掘金
(GM) 文件单 order file (``sid,account_id,symbol,volume,order_type,order_business,price,comment``), an
orders file of parent orders (``symbol,side,quantity``), a positions file (``symbol,quantity``), a status
file (``symbol,status,from,to``) and a 掘金 cancel file (``sid,comment``). Read by the wrong loader, one
kind can pass for another: a 掘金 order file read as targets is a volume target per row (a sell of 5,000
became a SELL of 35,000). So every loader asks ``refuse_other_kind`` first, and it refuses a file whose
header is another kind's, naming what the file looks like and which command takes it.

Classification is by the header only (column names, case and blanks ignored, ``name(alias)`` under
both spellings as the terminal documents them), with the terminal's file-name suffixes
(``*.order.csv``, ``*.cancel_order.csv``) as a second witness. Nothing is guessed: a header that fits
two kinds equally (neither's columns contain the other's) is ``AMBIGUOUS``, and a file named like a 掘金
file whose header says otherwise is too; both are refused by every loader. A header that fits no kind is
``UNKNOWN`` and left to the loader, whose own missing-column message is the more precise.

The 掘金 column names are the terminal's (``adapters/fileorder/format.py`` holds the same, which
``tests/engine/test_input_kinds.py`` checks); ``engine`` does not import the adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from zhixing.engine.errors import InputError


class FileKind(StrEnum):
    GM_ORDER = "gm_order"
    GM_CANCEL = "gm_cancel"
    TARGETS = "targets"
    ORDERS = "orders"
    POSITIONS = "positions"
    STATUS = "status"
    AMBIGUOUS = "ambiguous"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class _Kind:
    label: str  # what the file is, for a message
    command: str  # which command takes it
    signatures: tuple[frozenset[str], ...]  # any one of these column sets, all present, marks the kind
    only: frozenset[str] | None = None  # when set: no column outside it may be present
    call: str = ""  # which ``zhixing.api`` call takes it (none: the file is a command's only)


def _sigs(*alternatives: Iterable[str]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(a) for a in alternatives)


# The 掘金 文件单 input columns (format.ORDER_HEADER / CANCEL_HEADER without the aliases' spelling)
GM_ORDER_COLUMNS: Final = ("sid", "account_id", "symbol", "volume", "order_type", "order_business", "price")
GM_CANCEL_COLUMNS: Final = ("sid", "comment")
GM_ORDER_SUFFIX: Final = ".order.csv"
GM_CANCEL_SUFFIX: Final = ".cancel_order.csv"

_TARGET_SYMBOLS = ("symbol", "code")
_TARGET_VALUES = ("weight", "target_weight", "value", "target_value", "volume", "target_volume")

KINDS: Final[Mapping[FileKind, _Kind]] = {
    FileKind.GM_ORDER: _Kind(
        "a 掘金 order file (" + ",".join((*GM_ORDER_COLUMNS, "comment")) + ")",
        "zhixing submit FILE --config CFG",
        _sigs(GM_ORDER_COLUMNS),
        call="client.submit_file(FILE)",
    ),
    FileKind.GM_CANCEL: _Kind(
        "a 掘金 cancel file (sid,comment)",
        "zhixing submit FILE --config CFG",
        _sigs(("sid",)),
        only=frozenset(GM_CANCEL_COLUMNS),
        call="client.submit_file(FILE)",
    ),
    FileKind.TARGETS: _Kind(
        "a targets file (symbol and one of weight, value, volume)",
        "zhixing plan / rebalance TARGETS",
        tuple(frozenset((s, v)) for s in _TARGET_SYMBOLS for v in _TARGET_VALUES),
        call="client.rebalance(targets)",
    ),
    FileKind.ORDERS: _Kind(
        "an orders file of parent orders (symbol,side,quantity)",
        "zhixing replay ORDERS",
        _sigs(("symbol", "side", "quantity")),
        call="client.algo(algo, orders)",
    ),
    FileKind.POSITIONS: _Kind(
        "a positions file (symbol,quantity)",
        "zhixing replay --positions FILE",
        _sigs(("symbol", "quantity")),
        call="connect_replay(positions=...)",
    ),
    FileKind.STATUS: _Kind(
        "a status file (symbol,status,from,to)",
        "zhixing replay --status FILE, or [market] status_file",
        _sigs(("symbol", "status", "from", "to")),
    ),
}


def column_names(header: Sequence[str]) -> frozenset[str]:
    """Header cells as names: lower case, blanks and a BOM stripped, and ``name(alias)`` under
    ``name(alias)``, ``name`` and ``alias`` (the terminal documents both spellings)."""
    names: set[str] = set()
    for raw in header:
        name = raw.strip().lstrip("\ufeff").strip().lower()
        if not name:
            continue
        names.add(name)
        if name.endswith(")") and "(" in name:
            outer, inner = name[:-1].split("(", 1)
            names.update({outer.strip(), inner.strip()})
    if "order_biz" in names:
        names.add("order_business")
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: FileKind
    matches: tuple[FileKind, ...]  # the kinds the header fits (two or more: AMBIGUOUS)
    reason: str = ""  # why AMBIGUOUS, for the message


def sniff(header: Sequence[str], name: str = "") -> Sniffed:
    """Classify a file by its header cells (and its file name): see the module docstring."""
    columns = column_names(header)
    fits: dict[FileKind, frozenset[str]] = {}
    for kind, spec in KINDS.items():
        if spec.only is not None and not columns <= spec.only:
            continue
        hits = [sig for sig in spec.signatures if sig <= columns]
        if hits:
            fits[kind] = max(hits, key=len)
    # a kind whose marking columns are all inside another's is that other kind (GM order > targets)
    kept = [k for k, sig in fits.items() if not any(sig < other for other in fits.values())]
    lower = name.lower()
    named = (
        FileKind.GM_CANCEL
        if lower.endswith(GM_CANCEL_SUFFIX)
        else FileKind.GM_ORDER
        if lower.endswith(GM_ORDER_SUFFIX)
        else None
    )
    if len(kept) > 1:
        labels = " and ".join(KINDS[k].label for k in kept)
        return Sniffed(FileKind.AMBIGUOUS, tuple(kept), f"its header fits {labels}")
    if named is not None and kept != [named]:
        what = KINDS[kept[0]].label if kept else "no known kind"
        return Sniffed(
            FileKind.AMBIGUOUS,
            (named, *kept),
            f"it is named like {KINDS[named].label} but its header is {what}",
        )
    if not kept:
        return Sniffed(FileKind.UNKNOWN, ())
    return Sniffed(kept[0], tuple(kept))


def describe(kind: FileKind) -> str:
    return KINDS[kind].label if kind in KINDS else kind.value


def taken_by(kind: FileKind) -> str:
    """Which command, and which ``zhixing.api`` call, takes a file of ``kind`` ("" for none known)."""
    spec = KINDS.get(kind)
    if spec is None:
        return ""
    return f"use `{spec.command}`" + (f" (API: `{spec.call}`)" if spec.call else "")


def refuse_other_kind(path: str | Path, header: Sequence[str], expected: FileKind) -> None:
    """``InputError`` naming ``path`` when its header says it is not an ``expected`` file: what it looks
    like and which command takes it; an ambiguous header too. An unknown header passes (the loader's
    own column check speaks)."""
    found = sniff(header, Path(path).name)
    if found.kind is expected or found.kind is FileKind.UNKNOWN:
        return
    wanted = KINDS[expected].label
    if found.kind is FileKind.AMBIGUOUS:
        raise InputError(
            f"cannot tell what kind of file this is: {found.reason}; nothing is guessed — expected "
            f"{wanted}; rename or drop the columns that do not belong",
            path=str(path),
        )
    spec = KINDS[found.kind]
    raise InputError(
        f"this is {spec.label}, not {wanted}; {taken_by(found.kind)}",
        path=str(path),
    )
