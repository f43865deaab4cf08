"""Every order the risk gate denies reaches the operator as it happens, digested when many (issue 13, 9).

The first denial of a quiet spell is told at once; the ones after it are gathered for ``digest_ns`` and
told as one digest (counts by reason and symbol, the first ``listed`` named), and so on while they keep
coming; when a period passes with none, the next one is told at once again. A storm of denials (an
algorithm sized against a limit, 10 per second all day) is one message a minute, never thousands, and
never pushes a halt out of the notification queue. Denials caused by a halt (``halted: ...``) are not
repeated: the halt's own message says every new order is denied. At shutdown ``flush`` tells what the
open period gathered.

Runs on the engine's clock and posts through a never-blocking ``post`` (the dispatcher's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.bus import EventBus
from engine.clock import Clock, TimerHandle
from engine.events import OrderDenied
from engine.notify import Message, denial_digest, risk_denial
from engine.units import NS_PER_MINUTE

Post = Callable[[Message], None]


@dataclass(slots=True)
class _Period:
    """Denials gathered since the last message."""

    count: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_symbol: Counter[str] = field(default_factory=Counter)
    first: list[tuple[str, str, str]] = field(default_factory=list)  # (client id, symbol, reason)


class DenialAlerts:
    """Tells ``post`` of the denials published on ``bus`` (the OMS's; see the module docstring)."""

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        post: Post,
        *,
        account: str | None = None,
        digest_ns: int = NS_PER_MINUTE,
        listed: int = 20,
    ) -> None:
        if digest_ns <= 0:
            raise ValueError(f"digest_ns must be > 0, got {digest_ns}")
        self.bus = bus
        self.clock = clock
        self.post = post
        self.account = account
        self.digest_ns = digest_ns
        self.listed = listed
        self.told = 0  # denials named in a message, alone or in a digest
        self.messages = 0
        self._period: _Period | None = None  # open while a digest period runs
        self._timer: TimerHandle | None = None
        self._attached = False

    def attach(self) -> DenialAlerts:
        if not self._attached:
            self._attached = True
            self.bus.subscribe(OrderDenied, self.on_denied)
        return self

    def on_denied(self, event: OrderDenied) -> None:
        if event.reason.startswith("halted"):
            return  # the halt message says every new order is denied
        period = self._period
        if period is None:  # a quiet spell ends: this one now, the next ones gathered
            self.told += 1
            self.messages += 1
            self.post(risk_denial(event.client_order_id, event.symbol, event.reason, account=self.account))
            self._open()
            return
        period.count += 1
        period.by_reason[event.reason.split(":", 1)[0]] += 1
        period.by_symbol[event.symbol] += 1
        if len(period.first) < self.listed:
            period.first.append((event.client_order_id, event.symbol, event.reason))

    def _open(self) -> None:
        self._period = _Period()
        self._timer = self.clock.call_at(self.clock.now_ns() + self.digest_ns, self._over, "alerts:denials")

    def _over(self) -> None:
        period, self._period, self._timer = self._period, None, None
        if period is None or not period.count:
            return  # none came: the next denial is told at once again
        self._tell(period)
        self._open()  # they keep coming: the next digest after another period

    def _tell(self, period: _Period) -> None:
        self.told += period.count
        self.messages += 1
        self.post(
            denial_digest(
                period.count,
                period.by_reason,
                period.by_symbol,
                period.first,
                minutes=self.digest_ns / NS_PER_MINUTE,
                account=self.account,
            )
        )

    def flush(self) -> None:
        """At shutdown: tell what the open period gathered, now."""
        if self._timer is not None:
            self._timer.cancel()
        period, self._period, self._timer = self._period, None, None
        if period is not None and period.count:
            self._tell(period)
