"""Window arithmetic every algorithm shares: a parent's continuous windows, its end instant, the closing
call's instants, and which slice of a schedule is due.

Pure functions of the calendar, the parent and instants (int ns); the slicing maths proper (trading time,
slice grids, quantities) is ``algos.schedule``.
"""

from __future__ import annotations

import bisect
from datetime import timedelta

from zhixing.algos.params import parameter_error
from zhixing.algos.schedule import Window
from zhixing.engine.market import TradingCalendar, shanghai_ns, trading_date_of
from zhixing.engine.parents import ParentOrder
from zhixing.engine.units import NS_PER_SECOND

MAX_SPAN_DAYS = 31
"""The longest a parent's window may span, in calendar days."""

CANCEL_LEAD_NS = 3 * NS_PER_SECOND
"""How long before the close of a continuous window the end-of-parent cancels go out: the exchange takes
no cancels at lunch or in the closing call auction, so a cancel sent at 11:30:00 or 14:57:00 sharp would
arrive too late and leave the child resting into the next session."""

CLOSING_CALL_OPEN = "14:57"
CLOSE_MATCH = "15:00"
AUCTION_LAST_SEND = "14:59:50"
"""The latest instant the closing-auction order is sent: it must reach the exchange before the 15:00
match, whatever the latency to the broker."""


def parent_windows(calendar: TradingCalendar, parent: ParentOrder) -> list[Window]:
    """The continuous windows of every day the parent's ``[start, end)`` touches."""
    first = trading_date_of(parent.start_ns)
    last = trading_date_of(max(parent.start_ns, parent.end_ns - 1))
    if (last - first).days > MAX_SPAN_DAYS:
        raise parameter_error(
            f"parent {parent.parent_id}: window spans more than {MAX_SPAN_DAYS} days",
            name="end_ns",
            value=parent.end_ns,
        )
    windows: list[Window] = []
    day = first
    while day <= last:
        windows.extend(calendar.continuous_windows(day))
        day += timedelta(days=1)
    return windows


def end_instant(calendar: TradingCalendar, clipped: list[Window], start_ns: int) -> int:
    """When the end-of-parent cancels go out: the last window's end, or ``CANCEL_LEAD_NS`` before it
    when the exchange takes no cancels then (11:30, 14:57)."""
    if not clipped:
        return start_ns
    last_start, last_end = clipped[-1]
    if calendar.accepts_cancel(last_end):
        return last_end
    return max(last_start, last_end - CANCEL_LEAD_NS)


def auction_send_at(calendar: TradingCalendar, parent: ParentOrder) -> int | None:
    """When the parent's closing-auction order would go out: 14:57:00 of its last day, or its start if
    later. None when its window does not reach that day's 15:00 match, the day is no trading day, or the
    start is past ``AUCTION_LAST_SEND``."""
    day = trading_date_of(max(parent.start_ns, parent.end_ns - 1))
    if not calendar.is_trading_day(day):
        return None
    match = shanghai_ns(day, CLOSE_MATCH)
    send_at = max(shanghai_ns(day, CLOSING_CALL_OPEN), parent.start_ns)
    if parent.end_ns < match or send_at > shanghai_ns(day, AUCTION_LAST_SEND):
        return None
    return send_at


def past_auction_last_send(now_ns: int) -> bool:
    """``now_ns`` is after ``AUCTION_LAST_SEND`` of its trading day: too late for the closing call."""
    return now_ns > shanghai_ns(trading_date_of(now_ns), AUCTION_LAST_SEND)


def latest_due(times: tuple[int, ...], now_ns: int) -> int:
    """The index of the latest of ``times`` (sorted) at or before ``now_ns`` (-1: none yet)."""
    return bisect.bisect_right(times, now_ns) - 1
