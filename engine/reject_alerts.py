"""Broker rejects that will repeat reach the operator as they happen, digested when many (issue 19, 4).

A reject whose reason will not go away by itself (``engine.reject_reasons``: suspended, unknown symbol,
insufficient cash or position, not permitted, account restricted) or may only clear later (price limits,
session, broker risk rule, an unknown text) needs someone: the algorithms stop or back off that parent,
and only the operator can fund the account, fix the positions or drop the name. The first such reject of a
quiet spell is told at once; the ones after it are gathered for ``digest_ns`` and told as one digest
(counts by category and symbol, the first ``listed`` named), and so on while they keep coming. Transient
rejects (rate limit, timeout, busy) and our own refusals (not sent, never answered) are not told here:
they are retried, and the account-wide reject breaker halts (and tells) if they never stop.

A symbol blocked by the risk gate's per-symbol reject breaker (``RiskControls.on_symbol_blocked``) is told
at once, alone, every time. At shutdown ``flush`` tells what the open period gathered.

Runs on the engine's clock and posts through a never-blocking ``post`` (the dispatcher's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from zhixing.engine.alert_digest import AlertDigest, Gathered, Item
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import Clock
from zhixing.engine.events import OrderRejected
from zhixing.engine.logs import mask_account
from zhixing.engine.notify import Message, MessageKind, Severity
from zhixing.engine.reject_reasons import RejectAction, classify_reject
from zhixing.engine.units import NS_PER_MINUTE

Post = Callable[[Message], None]

_WHAT_FOLLOWS = {
    RejectAction.STOP: "will not go away by itself: the algorithm stops that parent",
    RejectAction.BACK_OFF: "may clear later or is not known: the algorithm backs off that parent (bounded)",
}


class SymbolBreaker(Protocol):
    """What ``attach`` wires: the risk gate's per-symbol reject breaker (``RiskControls``)."""

    on_symbol_blocked: Callable[[str, str], object] | None


def _account(account: str | None) -> str:
    return f" [{mask_account(account)}]" if account else ""


def reject_notice(item: Item, *, account: str | None = None) -> Message:
    return Message(
        kind=MessageKind.RISK,
        subject=f"[zhixing]{_account(account)} order rejected: {item.symbol} {item.kind}",
        body=(
            f"order {item.client_order_id} on {item.symbol} was rejected by the broker: {item.reason}\n"
            f"{item.kind}: {item.detail}"
        ),
        severity=Severity.WARNING,
    )


def reject_digest(
    count: int,
    by_category: Counter[str],
    by_symbol: Counter[str],
    first: list[tuple[str, str, str]],
    *,
    minutes: float,
    account: str | None = None,
) -> Message:
    categories = ", ".join(f"{n} {category}" for category, n in by_category.most_common())
    symbols = ", ".join(f"{symbol} {n}" for symbol, n in by_symbol.most_common(10))
    more = len(by_symbol) - 10
    lines = [
        f"{count} more orders rejected by the broker for reasons that repeat, in the last {minutes:g} min",
        f"by category: {categories}",
        f"by symbol: {symbols}" + (f" and {more} more" if more > 0 else ""),
        "",
        *(f"{cid} {symbol}: {reason}" for cid, symbol, reason in first),
    ]
    if count > len(first):
        lines.append(f"... and {count - len(first)} more")
    return Message(
        kind=MessageKind.RISK,
        subject=f"[zhixing]{_account(account)} {count} more orders rejected: {categories}",
        body="\n".join(lines),
        severity=Severity.WARNING,
    )


def symbol_blocked_notice(symbol: str, why: str, *, account: str | None = None) -> Message:
    return Message(
        kind=MessageKind.RISK,
        subject=f"[zhixing]{_account(account)} {symbol} blocked for today: repeated broker rejects",
        body=(
            f"new orders on {symbol} are denied for the rest of the day: {why}\n"
            "other symbols trade on; `zhixing resume` after a halt, or the next day, clears the block"
        ),
        severity=Severity.CRITICAL,
    )


class RejectAlerts:
    """Tells ``post`` of the will-repeat rejects on ``bus`` and of blocked symbols (module docstring)."""

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
        self.post = post
        self.account = account
        self.blocks_told = 0
        self._attached = False

        def alone(item: Item) -> Message:
            return reject_notice(item, account=account)

        def digest(period: Gathered, minutes: float) -> Message:
            return reject_digest(
                period.count, period.by_kind, period.by_symbol, period.first, minutes=minutes, account=account
            )

        self.digest = AlertDigest(
            clock, post, alone=alone, digest=digest, period_ns=digest_ns, listed=listed, name="alerts:rejects"
        )

    @property
    def told(self) -> int:
        """Rejects named in a message, alone or in a digest."""
        return self.digest.told

    @property
    def messages(self) -> int:
        return self.digest.messages + self.blocks_told

    def attach(self, breaker: SymbolBreaker | None = None) -> RejectAlerts:
        """Listen to the bus; with ``breaker``, be told of the symbols it blocks (keeping its listener)."""
        if not self._attached:
            self._attached = True
            self.bus.subscribe(OrderRejected, self.on_rejected)
        if breaker is not None:
            previous = breaker.on_symbol_blocked

            def blocked(symbol: str, why: str) -> None:
                if previous is not None:
                    previous(symbol, why)
                self.symbol_blocked(symbol, why)

            breaker.on_symbol_blocked = blocked
        return self

    def symbol_blocked(self, symbol: str, why: str) -> None:
        self.blocks_told += 1
        self.post(symbol_blocked_notice(symbol, why, account=self.account))

    def on_rejected(self, event: OrderRejected) -> None:
        verdict = classify_reject(event.reason, venue_confirmed=event.venue_confirmed)
        if not verdict.will_repeat:
            return
        detail = _WHAT_FOLLOWS[verdict.action]
        self.digest.add(Item(event.client_order_id, event.symbol, verdict.category, event.reason, detail))

    def flush(self) -> None:
        """At shutdown: tell what the open period gathered, now."""
        self.digest.flush()
