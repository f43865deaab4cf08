"""Every order the risk gate denies reaches the operator as it happens, digested when many (issue 13, 9).

The first denial of a quiet spell is told at once; the ones after it are gathered for ``digest_ns`` and
told as one digest (counts by reason and symbol, the first ``listed`` named), and so on while they keep
coming; when a period passes with none, the next one is told at once again. A storm of denials (an
algorithm sized against a limit, 10 per second all day) is one message a minute, never thousands, and
never pushes a halt out of the notification queue. Denials caused by a halt (``halted: ...``) are not
repeated: the halt's own message says every new order is denied. At shutdown ``flush`` tells what the
open period gathered.

The digest rule is ``engine.alert_digest``'s; this module says what a denial is and how it reads.
"""

from __future__ import annotations

from collections.abc import Callable

from zhixing.engine.alert_digest import AlertDigest, Gathered, Item
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock
from zhixing.engine.events import OrderDenied
from zhixing.engine.notify import Message, denial_digest, risk_denial
from zhixing.engine.reasons import DenialCode
from zhixing.engine.units import NS_PER_MINUTE

Post = Callable[[Message], None]


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
        self.bus = bus
        self.account = account
        self._attached = False

        def alone(item: Item) -> Message:
            return risk_denial(item.client_order_id, item.symbol, item.reason, account=account)

        def digest(period: Gathered, minutes: float) -> Message:
            return denial_digest(
                period.count, period.by_kind, period.by_symbol, period.first, minutes=minutes, account=account
            )

        self.digest = AlertDigest(
            clock, post, alone=alone, digest=digest, period_ns=digest_ns, listed=listed, name="alerts:denials"
        )

    @property
    def told(self) -> int:
        """Denials named in a message, alone or in a digest."""
        return self.digest.told

    @property
    def messages(self) -> int:
        return self.digest.messages

    def attach(self) -> DenialAlerts:
        if not self._attached:
            self._attached = True
            self.bus.subscribe(OrderDenied, self.on_denied)
        return self

    def on_denied(self, event: OrderDenied) -> None:
        if event.code is DenialCode.HALTED:
            return  # the halt message says every new order is denied
        self.digest.add(Item(event.client_order_id, event.symbol, event.code.value, event.reason))

    def flush(self) -> None:
        """At shutdown: tell what the open digest period gathered, now."""
        self.digest.flush()
