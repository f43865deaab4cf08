"""Typed algorithm parameters: parsing the strings of ``ParentOrder.params``, and the shared field sets.

``AlgoParams`` is the base of every algorithm's parameters; ``ClosingAuctionParams`` adds the
closing-auction participation that TWAP, VWAP and POV share (``algos.base`` describes it);
``check_choice`` and ``END_POLICIES`` are the checks those algorithms' ``__post_init__`` share.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

from zhixing.engine.errors import ParameterError


def parameter_error(message: str, *, name: str | None, value: object) -> ParameterError:
    """A ``ParameterError`` for ``name`` = ``value`` whose ``message`` already names both (the text
    people and tests have always seen is kept; ``name`` and ``value`` are there for programs)."""
    error = ParameterError(message, value=value)
    error.name = name
    return error


END_POLICIES = ("cancel", "leave")
"""What an algorithm does with its working children at the end: cancel them, or leave them to the market."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoParams:
    """Base of each algorithm's typed parameters. Fields carry ``metadata={"help": ...}``.

    ``ParentOrder.params`` holds strings (from CSV files and the CLI); ``parse`` converts them by the
    field's type and rejects unknown names, naming the parameter and the known ones.

    ``min_child_value`` (every algorithm): no child worth less than this many CNY goes out, except the
    parent's last remainder; a slice below it sends nothing and its quantity rides on the next one
    (``algos.base``). Negative (the default): derived from the account's fees, the minimum commission
    over ``COMMISSION_BUDGET_BPS`` (``engine.market.fees``); 0: off, today's slicing.
    """

    min_child_value: float = field(
        default=-1.0,
        metadata={
            "help": "CNY: no child below this value but the last remainder; -1: minimum commission / "
            "3 bps (16,667 CNY at 5 CNY); 0: off"
        },
    )

    @classmethod
    def parse(cls, raw: Mapping[str, object], *, algo: str = "") -> Self:
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        label = f"{algo} parameter" if algo else "parameter"
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                raise parameter_error(
                    f"unknown {label} {name!r}; known: {', '.join(sorted(known)) or 'none'}",
                    name=name,
                    value=value,
                )
            values[name] = _convert(label, name, hints[name], value)
        return cls(**values)


MAX_MAGNITUDE = 10**9
"""Every numeric parameter is finite and at most this in magnitude: seconds of it still fit int64 as
nanoseconds, shares and ticks of it int64 as milli-yuan; no algorithm has a use for more."""


def _convert(label: str, name: str, kind: object, value: object) -> object:
    converted = _convert_type(label, name, kind, value)
    numeric = isinstance(converted, int | float) and not isinstance(converted, bool)
    if numeric and (not math.isfinite(converted) or abs(converted) > MAX_MAGNITUDE):  # type: ignore[arg-type]
        raise parameter_error(
            f"{label} {name!r}: must be a finite number of magnitude at most {MAX_MAGNITUDE:,}, "
            f"got {value!r}",
            name=name,
            value=value,
        )
    return converted


def _convert_type(label: str, name: str, kind: object, value: object) -> object:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value.strip()
    else:
        raise TypeError(f"{label} {name!r}: unsupported type {kind!r}")
    type_name = getattr(kind, "__name__", str(kind))
    raise parameter_error(f"{label} {name!r}: expected {type_name}, got {value!r}", name=name, value=value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosingAuctionParams(AlgoParams):
    """Closing-auction participation, shared by the algorithms that support it (see the module doc)."""

    closing_auction: float = field(
        default=0.0,
        metadata={
            "help": "fraction 0..1 of the parent for ONE closing-call order (14:57, never cancelled) "
            "if the window reaches 15:00; 0: off"
        },
    )
    auction_offset_ticks: int = field(
        default=10,
        metadata={"help": "closing-auction price: last +/- this many ticks, clamped to the limits"},
    )

    def check_closing_auction(self, algo: str) -> None:
        """Validate the closing-auction fields (called from the subclass's ``__post_init__``)."""
        if math.isnan(self.closing_auction) or not 0 <= self.closing_auction <= 1:
            raise parameter_error(
                f"{algo} parameter 'closing_auction' must be in [0, 1], got {self.closing_auction}",
                name="closing_auction",
                value=self.closing_auction,
            )
        if self.auction_offset_ticks < 0:
            raise parameter_error(
                f"{algo} parameter 'auction_offset_ticks' must be >= 0, got {self.auction_offset_ticks}",
                name="auction_offset_ticks",
                value=self.auction_offset_ticks,
            )


def check_choice(algo: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise parameter_error(
            f"{algo} parameter {name!r} must be one of {', '.join(choices)}, got {value!r}",
            name=name,
            value=value,
        )
