"""gm payloads (the dicts ``gm.api`` builds from ``Order``, ``ExecRpt``, ``Cash``, ``Position``) read into
typed rows and the engine's reports. Pure functions: no I/O, no state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zhixing.adapters.gm.codes import (
    ENGINE_STATUS_OF_GM,
    EXEC_TRADE,
    FINAL_STATUSES,
    SIDE_OF_GM,
    STATUS_REJECTED,
    code,
    money,
    reject_reason,
    text,
    timestamp_ns,
    whole,
)
from zhixing.adapters.gm.ledger import Candidate
from zhixing.engine.enums import Side
from zhixing.engine.events import AccountReport, FillReport, OrderStatusReport, PositionReport
from zhixing.engine.market.symbols import from_gm

Payload = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GmOrderRow:
    """What one gm order report says (prices int milli-yuan, timestamps int ns)."""

    cl_ord_id: str
    symbol: str  # gm spelling
    side: int
    price: int
    volume: int
    filled: int
    status: int
    reason: str
    ts_event: int


@dataclass(frozen=True, slots=True)
class GmTrade:
    """A usable ``ExecType_Trade`` report."""

    exec_id: str
    cl_ord_id: str
    symbol: str  # gm spelling
    side: Side
    price: int
    volume: int
    commission: int
    ts_event: int


def order_row(payload: Payload) -> GmOrderRow:
    return GmOrderRow(
        cl_ord_id=text(payload.get("cl_ord_id")),
        symbol=text(payload.get("symbol")),
        side=code(payload.get("side")),
        price=money(payload.get("price")),
        volume=whole(payload.get("volume")),
        filled=whole(payload.get("filled_volume")),
        status=code(payload.get("status")),
        reason=reject_reason(code(payload.get("ord_rej_reason")), text(payload.get("ord_rej_reason_detail"))),
        ts_event=timestamp_ns(payload.get("updated_at")) or timestamp_ns(payload.get("created_at")),
    )


def says_more(new: GmOrderRow, old: GmOrderRow | None) -> bool:
    """Does ``new`` say more than ``old``? A final status is never replaced; fills only grow."""
    if old is None:
        return True
    if old.status in FINAL_STATUSES:
        return False
    if new.status in FINAL_STATUSES:
        return True
    return (new.filled, new.ts_event) >= (old.filled, old.ts_event)


def candidate(payload: Payload) -> Candidate:
    row = order_row(payload)
    return Candidate(
        cl_ord_id=row.cl_ord_id,
        symbol=row.symbol,
        side=row.side,
        price=row.price,
        volume=row.volume,
        ts_ns=timestamp_ns(payload.get("created_at")),
    )


def trade(payload: Payload) -> GmTrade | None:
    """The trade in an execution report, or None if it is not a trade or cannot be one (no exec id, no
    side, no positive price or volume)."""
    if code(payload.get("exec_type")) != EXEC_TRADE:
        return None
    side = SIDE_OF_GM.get(code(payload.get("side")))
    exec_id, cl_ord_id = text(payload.get("exec_id")), text(payload.get("cl_ord_id"))
    price, volume = money(payload.get("price")), whole(payload.get("volume"))
    if side is None or not exec_id or not cl_ord_id or price <= 0 or volume <= 0:
        return None
    return GmTrade(
        exec_id=exec_id,
        cl_ord_id=cl_ord_id,
        symbol=text(payload.get("symbol")),
        side=side,
        price=price,
        volume=volume,
        commission=money(payload.get("commission")),
        ts_event=timestamp_ns(payload.get("created_at")),
    )


def canonical(gm_symbol: str) -> str:
    """``SHSE.600000`` -> ``600000.SH``; a spelling gm should never send is passed through unchanged."""
    try:
        return from_gm(gm_symbol)
    except ValueError:
        return gm_symbol


def status_report(row: GmOrderRow, client_order_id: str) -> OrderStatusReport | None:
    status = ENGINE_STATUS_OF_GM.get(row.status)
    side = SIDE_OF_GM.get(row.side)
    if status is None or side is None or not row.cl_ord_id:
        return None
    return OrderStatusReport(
        client_order_id=client_order_id,
        broker_order_id=row.cl_ord_id,
        symbol=canonical(row.symbol),
        side=side,
        price=row.price,
        quantity=row.volume,
        filled_quantity=row.filled,
        status=status,
        reason=row.reason if row.status == STATUS_REJECTED else "",
        ts_event=row.ts_event,
    )


def fill_report(fill: GmTrade, client_order_id: str) -> FillReport:
    """gm reports one fee per trade (``commission``); stamp duty and transfer fee are inside it."""
    return FillReport(
        trade_id=fill.exec_id,
        client_order_id=client_order_id,
        broker_order_id=fill.cl_ord_id,
        symbol=canonical(fill.symbol),
        side=fill.side,
        price=fill.price,
        quantity=fill.volume,
        commission=fill.commission,
        stamp_duty=0,
        transfer_fee=0,
        ts_event=fill.ts_event,
    )


def account_report(cash: Payload) -> AccountReport:
    """``get_cash``: cash is ``balance`` (available + frozen for orders), as ``AccountReport`` means it."""
    balance, available = money(cash.get("balance")), money(cash.get("available"))
    market_value = money(cash.get("market_value"))
    return AccountReport(
        cash=balance,
        frozen=max(0, balance - available),
        total_asset=money(cash.get("nav")) or balance + market_value,
        market_value=market_value,
    )


def position_reports(rows: Iterable[object]) -> tuple[list[PositionReport], int]:
    """``get_position`` rows with shares, by symbol; and how many rows were unreadable."""
    positions: dict[str, PositionReport] = {}
    bad = 0
    for row in rows:
        if not isinstance(row, Mapping):
            bad += 1
            continue
        try:
            symbol = from_gm(text(row.get("symbol")))
        except ValueError:
            bad += 1
            continue
        quantity = whole(row.get("volume"))
        if quantity <= 0:
            continue
        positions[symbol] = PositionReport(
            symbol=symbol,
            quantity=quantity,
            sellable=whole(row.get("available_now")),  # what may be sold now (T+1 applied by gm)
            avg_cost=money(row.get("vwap")),
        )
    return [positions[s] for s in sorted(positions)], bad
