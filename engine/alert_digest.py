"""``AlertDigest``: the first of a quiet spell told at once, the rest one digest per period.

The operator must hear of every denial and every reject that will repeat, but a storm of them (an
algorithm sized against a limit, a suspended name) must be a handful of messages, never thousands, and
must never push a halt out of the notification queue. One rule, shared by ``engine.denial_alerts`` and
``engine.reject_alerts``: the first item of a quiet spell is told on its own; the items after it are
gathered for ``period_ns`` (counts by kind and symbol, the first ``listed`` named) and told as one
digest, and so on while they keep coming; a period that gathers none ends the spell, and the next item
is told on its own again. ``flush`` (shutdown, a new trading day) tells what the open period gathered.

Runs on the engine's clock and posts through a never-blocking ``post`` (the dispatcher's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.errors import ParameterError
from zhixing.engine.notify import Message


@dataclass(slots=True)
class Gathered:
    """The items of one period: how many, by kind and by symbol, and the first ones named."""

    count: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_symbol: Counter[str] = field(default_factory=Counter)
    first: list[tuple[str, str, str]] = field(default_factory=list)  # (client order id, symbol, reason)


@dataclass(frozen=True, slots=True)
class Item:
    client_order_id: str
    symbol: str
    kind: str  # what the digest counts it under (a denial's rule, a reject's category)
    reason: str  # the full text
    detail: str = ""  # what follows from it, for the message that tells it alone


class AlertDigest:
    """See the module docstring. ``alone`` makes the message of an item told on its own, ``digest`` the
    message of a period's ``Gathered`` (given the period in minutes)."""

    def __init__(
        self,
        clock: Clock,
        post: Callable[[Message], None],
        *,
        alone: Callable[[Item], Message],
        digest: Callable[[Gathered, float], Message],
        period_ns: int,
        listed: int = 20,
        name: str = "alerts",
    ) -> None:
        if period_ns <= 0:
            raise ParameterError(f"must be > 0, got {period_ns}", name="period_ns", value=period_ns)
        self.clock = clock
        self.post = post
        self.alone = alone
        self.digest = digest
        self.period_ns = period_ns
        self.listed = listed
        self.name = name
        self.told = 0  # items named in a message, alone or in a digest
        self.messages = 0
        self._period: Gathered | None = None  # open while a period runs
        self._timer: TimerHandle | None = None

    def add(self, item: Item) -> None:
        period = self._period
        if period is None:  # a quiet spell ends: this one now, the next ones gathered
            self.told += 1
            self.messages += 1
            self.post(self.alone(item))
            self._open()
            return
        period.count += 1
        period.by_kind[item.kind] += 1
        period.by_symbol[item.symbol] += 1
        if len(period.first) < self.listed:
            period.first.append((item.client_order_id, item.symbol, item.reason))

    def _open(self) -> None:
        self._period = Gathered()
        self._timer = self.clock.call_at(self.clock.now_ns() + self.period_ns, self._over, self.name)

    def _over(self) -> None:
        period, self._period, self._timer = self._period, None, None
        if period is None or not period.count:
            return  # none came: the next item is told on its own again
        self._tell(period)
        self._open()  # they keep coming: the next digest after another period

    def _tell(self, period: Gathered) -> None:
        self.told += period.count
        self.messages += 1
        self.post(self.digest(period, self.period_ns / 60_000_000_000))

    def flush(self) -> None:
        """Tell what the open period gathered, now (shutdown, a new trading day)."""
        if self._timer is not None:
            self._timer.cancel()
        period, self._period, self._timer = self._period, None, None
        if period is not None and period.count:
            self._tell(period)
