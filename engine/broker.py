"""The broker protocol the OrderManager talks to.

Implemented by ``adapters`` (real brokers) and by ``replay`` (the simulated exchange). An adapter
pushes what happens to an order (``OrderAccepted``, ``OrderFilled``, ``OrderCanceled`` ...) into the
sink it was bound to; thread-based SDKs hop onto the loop with ``loop.call_soon_threadsafe`` first.
``submit`` and ``cancel`` return once the request has been handed over; they raise ``BrokerError``
only for a definitive local failure (nothing reached the broker). Any other outcome is reported later
through the sink or found by the queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderEvent,
    OrderStatusReport,
    PositionReport,
)
from zhixing.engine.orders import Order

EventSink = Callable[[OrderEvent], None]


class BrokerAdapter(Protocol):
    name: str

    def bind(self, sink: EventSink) -> None:
        """Where the adapter delivers order events (called once, before connect)."""
        ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: Order) -> None:
        """Send a new limit order; ``order.client_order_id`` travels to the broker as its key."""
        ...

    async def cancel(self, order: Order) -> None: ...

    async def query_account(self) -> AccountReport: ...

    async def query_positions(self) -> list[PositionReport]: ...

    async def query_orders(self) -> list[OrderStatusReport]: ...

    async def query_trades(self) -> list[FillReport]: ...
