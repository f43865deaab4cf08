"""The error tree. Adapters map their SDK's exceptions onto these at the boundary.

ZhixingError
├── InputError            bad user input (file, row, field named); nothing was changed
├── ConfigError           bad configuration (key named)
├── ParameterError        a value handed to the API out of range (also a ValueError): parameter named
├── CalendarError         a day past the trading calendar's known range (also a ValueError): update it
├── OrderStateError
│   ├── IllegalTransition  an event that the order's state table does not allow
│   └── OverfillError      a fill that would take filled beyond quantity (integrity alarm)
├── IllegalPhaseTransition  an algorithm phase change its lifecycle table does not allow (a bug)
├── StoreError            the journal could not be written; nothing may be sent
├── BrokerError           the broker route failed
│   └── BrokerDisconnected
└── FeedError             the market-data feed cannot answer (not connected, unknown symbol, vendor error)
"""

from __future__ import annotations


class ZhixingError(Exception):
    """Root of every error zhixing raises on purpose."""


class InputError(ZhixingError):
    """Bad input. The message names the file, row and field; nothing was changed."""

    def __init__(
        self, message: str, *, path: str | None = None, row: int | None = None, field: str | None = None
    ) -> None:
        parts = [
            p
            for p in (path, f"row {row}" if row is not None else None, f"field {field!r}" if field else None)
            if p
        ]
        super().__init__(f"{': '.join([', '.join(parts), message]) if parts else message}")
        self.path = path
        self.row = row
        self.field = field


class ConfigError(ZhixingError):
    """Bad configuration; the message names the key."""


class ParameterError(ZhixingError, ValueError):
    """A value handed to zhixing's API is out of range: an algorithm's parameter, an order's quantity or
    price, a window. The message names the parameter and the value. Also a ``ValueError`` (Python's own
    contract for a bad argument), so callers that catch that keep working."""

    def __init__(self, message: str, *, name: str | None = None, value: object = None) -> None:
        super().__init__(f"{name}: {message}" if name else message)
        self.name = name
        self.value = value


class CalendarError(ZhixingError, ValueError):
    """A day beyond the trading calendar's known range, or a refusal to run there; says what to update.

    Also a ``ValueError``: code that asks the calendar about a day it does not know already treats that as
    "no trading day known here"."""


class OrderStateError(ZhixingError):
    """An order event that cannot be applied."""


class IllegalTransition(OrderStateError):
    """The transition table has no entry for (status, event)."""


class OverfillError(OrderStateError):
    """A fill would make filled quantity exceed the order quantity."""


class IllegalPhaseTransition(ZhixingError):
    """An algorithm's phase change that its transition table (``algos.lifecycle.TRANSITIONS``) lacks.
    Names both phases; the algorithm's phase is unchanged."""

    def __init__(self, current: object, target: object) -> None:
        super().__init__(f"illegal algorithm phase transition {current} -> {target}")
        self.current = current
        self.target = target


class StoreError(ZhixingError):
    """The state store failed; write-ahead means nothing may be sent."""


class BrokerError(ZhixingError):
    """A broker route failed."""


class BrokerDisconnected(BrokerError):
    """The broker route is not connected."""


class FeedError(ZhixingError):
    """The market-data feed cannot answer (not connected, unknown symbol, vendor error)."""
