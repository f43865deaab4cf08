"""The algorithms by name, and what their parameters are (for the CLI's help)."""

from __future__ import annotations

from dataclasses import MISSING, fields

from zhixing.algos.base import AlgoContext, ExecAlgo
from zhixing.algos.chase import ChaseAlgo
from zhixing.algos.iceberg import IcebergAlgo
from zhixing.algos.params import ClosingAuctionParams, parameter_error
from zhixing.algos.pov import PovAlgo
from zhixing.algos.twap import TwapAlgo
from zhixing.algos.vwap import VwapAlgo
from zhixing.engine.parents import ParentOrder

ALGOS: dict[str, type[ExecAlgo]] = {
    TwapAlgo.name: TwapAlgo,
    ChaseAlgo.name: ChaseAlgo,
    VwapAlgo.name: VwapAlgo,
    PovAlgo.name: PovAlgo,
    IcebergAlgo.name: IcebergAlgo,
}


def create_algo(parent: ParentOrder, ctx: AlgoContext) -> ExecAlgo:
    """The algorithm ``parent.algo`` for ``parent``, its parameters parsed from ``parent.params``."""
    cls = ALGOS.get(parent.algo)
    if cls is None:
        raise parameter_error(
            f"parent {parent.parent_id}: unknown algo {parent.algo!r}; known: {', '.join(sorted(ALGOS))}",
            name="algo",
            value=parent.algo,
        )
    return cls(parent, ctx)


def describe_algos() -> list[tuple[str, str, str, str]]:
    """``(algo, parameter, default, help)`` for every parameter of every algorithm: its own first, then
    the shared closing-auction ones (``closing_auction``, ``auction_offset_ticks``) where it has them."""
    shared = [f.name for f in fields(ClosingAuctionParams)]
    rows: list[tuple[str, str, str, str]] = []
    for name, cls in sorted(ALGOS.items()):
        ordered = sorted(fields(cls.params_type), key=lambda f: f.name in shared)  # stable: own order kept
        for f in ordered:
            default = "" if f.default is MISSING else str(f.default)
            rows.append((name, f.name, default, str(f.metadata.get("help", ""))))
    return rows
