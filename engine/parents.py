"""Parent orders: what a strategy or planner asks for, before an algorithm slices it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from zhixing.engine.enums import Side


class ParentStatus(StrEnum):
    PENDING = "PENDING"  # created, algo not started
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DONE = "DONE"  # finished its window (filled or not)
    CANCELED = "CANCELED"


@dataclass(slots=True, kw_only=True)
class ParentOrder:
    parent_id: str
    symbol: str
    side: Side
    quantity: int
    start_ns: int
    end_ns: int
    algo: str = "twap"
    limit_price: int = 0  # milli-yuan; 0 = no limit beyond the daily price band
    params: dict[str, str] = field(default_factory=dict)
    status: ParentStatus = ParentStatus.PENDING
    created_ns: int = 0

    def to_row(self) -> dict[str, object]:
        return {
            "parent_id": self.parent_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "algo": self.algo,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "limit_price": self.limit_price,
            "params": dict(self.params),
            "status": self.status.value,
            "created_ns": self.created_ns,
        }

    @classmethod
    def from_row(cls, row: dict[str, object]) -> ParentOrder:
        params = row.get("params") or {}
        assert isinstance(params, dict)
        return cls(
            parent_id=str(row["parent_id"]),
            symbol=str(row["symbol"]),
            side=Side(str(row["side"])),
            quantity=int(str(row["quantity"])),
            start_ns=int(str(row["start_ns"])),
            end_ns=int(str(row["end_ns"])),
            algo=str(row["algo"]),
            limit_price=int(str(row.get("limit_price") or 0)),
            params={str(k): str(v) for k, v in params.items()},
            status=ParentStatus(str(row.get("status") or "PENDING")),
            created_ns=int(str(row.get("created_ns") or 0)),
        )
