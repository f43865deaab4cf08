"""An order's end never releases quantity the broker may still have filled.

A broker pushes an order's end (``OrderCanceled``, ``OrderExpired``) and its trades on separate paths, and
the end can overtake the trade row of a fill that happened just before it (QMT's ``on_stock_order`` with
部撤 ahead of ``on_stock_trade``; gm's order status ahead of its execution report). Finishing the order
then would release its leaves: the algorithm sizes a replacement from them, and the late row fills the
parent beyond its quantity.

So every end carries the broker's cumulative filled quantity at the end (``filled_qty``; None when the
broker did not say), and the OrderManager applies one rule, the same as ``engine.freshness.holds_terminal``
on the query path:

- an end whose figure is at or below the fills we hold finishes the order at once;
- an end whose figure is above them is **held**: the order stays (or becomes) PENDING_CANCEL, its leaves
  stay reserved, nothing is published for it, so an algorithm sees no end and sizes nothing from it.
  Each trade row that comes in is applied as usual; the one that brings the fills to the figure
  finishes the order (once, with the end as reported);
- an end that does not say (``filled_qty`` None) is held the same way until the broker's answer to a
  query confirms the figure (the in-flight checks ask, ``engine.inflight``): an end we cannot check is
  not trusted with the leaves. All the routes we ship report the figure on their status path, so this
  costs a wait only on a path that does not (an execution-report cancel, an unknown adapter);
- a held end is asked about by the in-flight checks after their usual timeout if its rows do not come
  (``OrderManager.in_flight``); what still differs then is watched by the freshness rule and halts
  trading only if it persists (``engine.freshness``);
- the figures of several pushes of one end only grow (a number beats None), so a stale repeat cannot
  release what a newer one held.

``HeldEnds`` only keeps the held ends and answers what to do; the OrderManager applies its answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from zhixing.engine.events import OrderCanceled, OrderExpired
from zhixing.engine.orders import Order

End = OrderCanceled | OrderExpired
ENDS = (OrderCanceled, OrderExpired)  # a tuple for ``isinstance``: ``A | B`` would build a union per call


def larger_figure(a: int | None, b: int | None) -> int | None:
    """The figure that says more: the larger number, a number over None."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def end_waits(order: Order, reported_filled: int | None) -> bool:
    """True when an end reporting ``reported_filled`` must not finish ``order`` yet: the broker did not
    say how much filled, or says more than the fills we hold (their trade rows are late)."""
    return reported_filled is None or reported_filled > order.filled_quantity


@dataclass(slots=True, frozen=True)
class HeldEnd:
    """An end the OrderManager received and could not apply yet."""

    event: End  # as reported, with the largest figure any push of it said
    since_ns: int  # when it was first held

    @property
    def filled(self) -> int | None:
        return self.event.filled_qty


@dataclass(slots=True)
class HeldEndCounters:
    held: int = 0  # ends held (each order counted once per hold)
    finished_by_rows: int = 0  # ... finished when the trade rows brought the fills to the figure
    finished_by_answer: int = 0  # ... finished by the broker's answer to a query (or a later push)
    dropped: int = 0  # ... dropped because the order ended otherwise (filled, rejected)
    cancel_rejects_ignored: int = 0  # cancel rejects for an order whose end is held
    late_figures: int = 0  # ends for an order already finished that say more filled than we hold


class HeldEnds:
    """The ends held, by client order id (see the module docstring)."""

    def __init__(self) -> None:
        self._held: dict[str, HeldEnd] = {}
        self.counters = HeldEndCounters()

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._held

    def __len__(self) -> int:
        return len(self._held)

    def get(self, client_order_id: str) -> HeldEnd | None:
        return self._held.get(client_order_id)

    def ids(self) -> list[str]:
        return sorted(self._held)

    def figure(self, event: End) -> int | None:
        """The figure ``event`` stands for: its own, or a larger one an earlier push of the end said."""
        held = self._held.get(event.client_order_id)
        return larger_figure(event.filled_qty, held.filled if held is not None else None)

    def hold(self, event: End, now_ns: int) -> bool:
        """Hold ``event`` (merged with an end already held: the larger figure). True when it is new."""
        cid = event.client_order_id
        held = self._held.get(cid)
        if held is None:
            self._held[cid] = HeldEnd(event=event, since_ns=now_ns)
            self.counters.held += 1
            return True
        figure = larger_figure(event.filled_qty, held.filled)
        if figure != held.filled:
            self._held[cid] = HeldEnd(
                event=dataclasses.replace(event, filled_qty=figure), since_ns=held.since_ns
            )
        return False

    def due(self, order: Order) -> End | None:
        """The held end of ``order`` if its fills have reached the figure (removed: apply it now)."""
        held = self._held.get(order.client_order_id)
        if held is None or end_waits(order, held.filled):
            return None
        del self._held[order.client_order_id]
        self.counters.finished_by_rows += 1
        return held.event

    def release(self, client_order_id: str, *, answered: bool) -> HeldEnd | None:
        """Forget the held end: an answer (or a later push) finished the order, or it ended otherwise."""
        held = self._held.pop(client_order_id, None)
        if held is not None:
            if answered:
                self.counters.finished_by_answer += 1
            else:
                self.counters.dropped += 1
        return held
