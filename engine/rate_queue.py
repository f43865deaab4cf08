"""The fair queue of orders waiting for room under the message-rate cap (issue 20).

An order over the per-second cap is not denied: it waits here and is sent when the rolling one-second
window has room (``engine.risk_controls.RiskControls`` decides when, the ``OrderManager`` sends).

- **Round-robin across parents, first-in-first-out within one.** Each lane is one parent's orders
  (``parent_id``; an order without a parent is its own lane). ``pop`` takes the head of the lane whose
  turn it is, then that lane goes to the back of the turn order; a new lane joins at the back. So a parent
  with a hundred queued orders delays another parent's single order by at most one order.
- **Bounded.** ``expired(now, bound)`` removes every order queued longer than ``bound`` ns (the OMS
  denies them, ``DenialCode.RATE_QUEUE_TIMEOUT``).
- ``remove`` takes an order out (its cancel: nothing is sent, no message counted).

Pure bookkeeping on the times it is given (the injected clock's); nothing here reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from zhixing.engine.orders import Order


@dataclass(slots=True)
class QueueCounters:
    """What the queue did today (``RiskControls.start_day`` resets them)."""

    queued: int = 0  # orders that had to wait: queued when the window was found full
    sent: int = 0  # of those, sent once the window had room
    removed: int = 0  # cancelled while queued: never sent
    timed_out: int = 0  # denied after waiting longer than the bound
    max_wait_ns: int = 0  # the longest wait of an order that was sent
    peak_depth: int = 0  # the most orders waiting at once for a full window


class FairQueue:
    """Orders waiting for the rate window; see the module docstring."""

    def __init__(self) -> None:
        self._lanes: OrderedDict[str, deque[Order]] = OrderedDict()  # turn order: first is next
        self._since: dict[str, int] = {}  # client order id -> when queued (insertion order = oldest first)
        self._waiting: set[str] = set()  # queued orders that met a full window (counted in ``queued``)
        self.counters = QueueCounters()

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, order: Order) -> bool:
        return order.client_order_id in self._since

    @staticmethod
    def lane_of(order: Order) -> str:
        return f"parent:{order.parent_id}" if order.parent_id else f"order:{order.client_order_id}"

    def push(self, order: Order, now_ns: int) -> None:
        """Queue ``order`` at the back of its parent's lane (a new lane waits its turn at the back)."""
        cid = order.client_order_id
        if cid in self._since:
            return
        self._since[cid] = now_ns
        lane = self._lanes.get(self.lane_of(order))
        if lane is None:
            lane = self._lanes[self.lane_of(order)] = deque()
        lane.append(order)

    def blocked(self) -> None:
        """The window is full: every order still queued has to wait (counted once each)."""
        fresh = [cid for cid in self._since if cid not in self._waiting]
        self._waiting.update(fresh)
        self.counters.queued += len(fresh)
        self.counters.peak_depth = max(self.counters.peak_depth, len(self._since))

    def peek(self) -> Order | None:
        """The order whose turn it is, or None when empty."""
        for lane in self._lanes.values():
            return lane[0]
        return None

    def pop(self, now_ns: int) -> Order:
        """Take the order whose turn it is; its lane goes to the back of the turn order."""
        key, lane = next(iter(self._lanes.items()))
        order = lane.popleft()
        if lane:
            self._lanes.move_to_end(key)
        else:
            del self._lanes[key]
        waited = now_ns - self._since.pop(order.client_order_id)
        if order.client_order_id in self._waiting:
            self._waiting.discard(order.client_order_id)
            self.counters.sent += 1
        self.counters.max_wait_ns = max(self.counters.max_wait_ns, waited)
        return order

    def remove(self, order: Order) -> bool:
        """Take ``order`` out without sending it (its cancel); False when it was not queued."""
        if not self._discard(order):
            return False
        self.counters.removed += 1
        return True

    def expired(self, now_ns: int, bound_ns: int) -> list[Order]:
        """Remove and return every order queued at or before ``now_ns - bound_ns``, oldest first."""
        horizon = now_ns - bound_ns
        stale: set[str] = set()
        for cid, since in self._since.items():  # queued in time order: the clock never goes back
            if since > horizon:
                break
            stale.add(cid)
        if not stale:
            return []
        out = [o for lane in self._lanes.values() for o in lane if o.client_order_id in stale]
        out.sort(key=lambda o: self._since[o.client_order_id])
        for order in out:
            self._discard(order)
        self.counters.timed_out += len(out)
        return out

    def oldest_since_ns(self) -> int | None:
        """When the longest-waiting order was queued (None: empty)."""
        for since in self._since.values():
            return since
        return None

    def wait_of_oldest_ns(self, now_ns: int) -> int:
        oldest = self.oldest_since_ns()
        return 0 if oldest is None else now_ns - oldest

    def _discard(self, order: Order) -> bool:
        cid = order.client_order_id
        if self._since.pop(cid, None) is None:
            return False
        self._waiting.discard(cid)
        key = self.lane_of(order)
        lane = self._lanes[key]
        for i, queued in enumerate(lane):
            if queued is order:
                del lane[i]
                break
        if not lane:
            del self._lanes[key]
        return True
