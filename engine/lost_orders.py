"""Orders the broker lists under this engine's client order ids that the journal has no record of.

Every id this engine issues is its prefix and a sequence number reserved in the journal before use, so
such an order can only mean that the journal is behind the broker: it was restored from a backup taken
before those orders were sent, or lost its last transactions. Reconciliation leaves them external (never
adopted, their fills not applied), and the journal's id counter is behind them, so the next orders would
reuse ids the broker has already seen, and their fills would be credited to the wrong order.

``guard_lost_orders`` runs after startup reconciliation: it moves the id counter past the highest such
id and halts with a mismatch that lists them. The operator checks them at the broker (cancel any still
working there, confirm the positions) before ``zhixing resume``.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from zhixing.engine.oms import OrderManager
from zhixing.engine.order_ids import OrderIds
from zhixing.engine.reconcile import HALT_REASON, ReconcileReport

log = structlog.get_logger("zhixing.reconcile")

MAX_LISTED = 10


def lost_sequences(ids: OrderIds, external: Iterable[str]) -> list[tuple[int, str]]:
    """``(sequence, client order id)`` of the external ids that are this account's (its keyed form or
    the legacy form, ``engine.order_ids``), ascending. Another account's ids are never among them."""
    found = [(seq, cid) for cid in external if (seq := ids.sequence(cid)) is not None]
    return sorted(found)


async def guard_lost_orders(oms: OrderManager, report: ReconcileReport) -> list[str]:
    """After ``recover``: skip the ids of orders the journal lost and halt on them. Returns their ids."""
    lost = lost_sequences(oms.ids, report.external)
    if not lost:
        return []
    await oms.skip_ids_through(lost[-1][0])
    ids = [cid for _, cid in lost]
    shown = ", ".join(ids[:MAX_LISTED]) + (
        f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
    )
    report.mismatches.append(
        f"the broker lists {len(ids)} orders with this engine's ids that the journal does not have "
        f"({shown}): the journal is behind the broker (restored from an older backup?); their fills are "
        "not in it. Cancel any still working at the broker, check positions, then `zhixing resume`"
    )
    oms.halt(HALT_REASON)
    log.error("orders_lost_by_journal", count=len(ids), client_order_ids=ids[:MAX_LISTED])
    return ids
