"""The durable link between zhixing's client order id and gm's ``cl_ord_id``.

gm 3.0.192 has no field that carries a caller's id to the counter and back: ``order_volume`` takes no
remark, ``cl_ord_id`` is assigned by gm and returned synchronously. So the link is kept here, write-ahead:

1. ``begin(cid, ...)`` commits a ``sending`` row (symbol, side, price, volume, time) **before** the call;
   a cid already in the ledger is refused (a second ``order_volume`` for one intent is never made);
2. ``link(cid, cl_ord_id)`` commits the gm id as soon as ``order_volume`` returns.

A row left ``sending`` (a crash between 1 and 2, or ``order_volume`` raising: both unknown outcomes) is
resolved by ``claim_unlinked`` from the broker's orders: exactly one unclaimed order with the same symbol,
side, price and volume placed at or after the row's time (less a clock-skew allowance, 60 s by default).
Several candidates are never guessed between: the row stays unlinked and the engine sees the order as
unknown (and the gm orders as external) - a reconciliation mismatch for an operator, never a duplicate. No
candidate at all leaves the engine's in-flight checks to resolve it as never sent.

Two engines on two accounts may share a state directory, so one ledger: each reads only the rows of
its own account's ids (``owns``, ``engine.order_ids``), and the ids themselves never collide.

SQLite, ``synchronous=FULL``, one connection used from one thread at a time (a lock).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhixing.engine.errors import BrokerError
from zhixing.engine.store import shared_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gm_links (
    client_order_id TEXT PRIMARY KEY,
    cl_ord_id TEXT NOT NULL DEFAULT '',
    symbol TEXT NOT NULL,
    side INTEGER NOT NULL,
    price INTEGER NOT NULL,
    volume INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
) STRICT
"""

SENDING = "sending"
LINKED = "linked"


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    client_order_id: str
    cl_ord_id: str
    symbol: str  # gm spelling, SHSE.600000
    side: int  # gm OrderSide_*
    price: int  # milli-yuan
    volume: int
    ts_ns: int
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A broker order as the ledger needs it to resolve an unlinked row."""

    cl_ord_id: str
    symbol: str
    side: int
    price: int
    volume: int
    ts_ns: int


class LinkLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._db = shared_sqlite.open_shared(path, _SCHEMA)
        except shared_sqlite.LockedError as exc:
            raise BrokerError(f"gm: link ledger {path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def begin(self, cid: str, *, symbol: str, side: int, price: int, volume: int, ts_ns: int) -> None:
        """Record the intent to place ``cid`` (committed). Raises ``BrokerError`` if ``cid`` was seen."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO gm_links (client_order_id, symbol, side, price, volume, ts_ns, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (cid, symbol, side, price, volume, ts_ns, SENDING),
                )
            except sqlite3.IntegrityError:
                raise BrokerError(
                    f"gm: client order id {cid} was already sent once; not placing it again"
                ) from None

    def link(self, cid: str, cl_ord_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE gm_links SET cl_ord_id = ?, state = ? WHERE client_order_id = ?",
                (cl_ord_id, LINKED, cid),
            )

    def links(self, owns: Callable[[str], bool] | None = None) -> list[Link]:
        """Every row, or those whose client order id ``owns`` accepts (one account's)."""
        return [link for link in self._all_links() if owns is None or owns(link.client_order_id)]

    def _all_links(self) -> list[Link]:
        with self._lock:
            rows = self._db.execute(
                "SELECT client_order_id, cl_ord_id, symbol, side, price, volume, ts_ns, state, reason"
                " FROM gm_links ORDER BY ts_ns, client_order_id"
            ).fetchall()
        return [
            Link(
                client_order_id=r[0],
                cl_ord_id=r[1],
                symbol=r[2],
                side=r[3],
                price=r[4],
                volume=r[5],
                ts_ns=r[6],
                state=r[7],
                reason=r[8],
            )
            for r in rows
        ]

    def claim_unlinked(
        self,
        candidates: list[Candidate],
        *,
        skew_ns: int = 60 * 10**9,
        owns: Callable[[str], bool] | None = None,
    ) -> dict[str, str]:
        """Resolve ``sending`` rows (of the ids ``owns`` accepts) from the broker's orders (see module
        doc); returns cid -> cl_ord_id for the rows it linked. ``skew_ns`` allows gm's ``created_at`` to
        run behind our clock."""
        links = self._all_links()
        claimed = {link.cl_ord_id for link in links if link.cl_ord_id}
        resolved: dict[str, str] = {}
        for link in links:
            if link.state != SENDING or (owns is not None and not owns(link.client_order_id)):
                continue
            matches = [
                c
                for c in candidates
                if c.cl_ord_id not in claimed
                and (c.symbol, c.side, c.price, c.volume) == (link.symbol, link.side, link.price, link.volume)
                and (c.ts_ns == 0 or c.ts_ns >= link.ts_ns - skew_ns)
            ]
            if len(matches) == 1:
                cl_ord_id = matches[0].cl_ord_id
                self.link(link.client_order_id, cl_ord_id)
                claimed.add(cl_ord_id)
                resolved[link.client_order_id] = cl_ord_id
        return resolved
