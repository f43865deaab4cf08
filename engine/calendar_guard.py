"""The trading calendar never runs out silently: warn before its known range ends, refuse past it.

The rule, for every command that schedules jobs or trades from a config (``zhixing run``, the
``--config`` portfolio commands, ``zhixing schedule``):

- within ``WARN_DAYS`` (30) days of the calendar's ``known_until``, the operator is told once a day,
  through the configured notifications (at start, and by a daily check in a long-running process), until
  when it is known and what to update;
- past it, with ``[calendar] beyond_known = "refuse"`` (the default) the command refuses to start, and
  says so through the notifications and on the console; a process that was already running when the
  range ended schedules no job on such a day, sends nothing (the calendar answers CLOSED) and says so
  each day;
- past it with ``beyond_known = "weekdays"`` (the user's explicit choice) it runs every weekday that no
  source closes, with a warning each day.

"Today" is the Shanghai date of the injected clock, never the host's local date.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final, TextIO

import structlog

from zhixing.engine.clock import Clock, TimerHandle
from zhixing.engine.config import Config
from zhixing.engine.errors import CalendarError
from zhixing.engine.logs import mask_account
from zhixing.engine.market.calendar import HOW_TO_UPDATE, TradingCalendar, shanghai_ns, trading_date_of
from zhixing.engine.market.calendar_sources import CalendarSource, Disagreement
from zhixing.engine.notify import Message, MessageKind, Severity
from zhixing.engine.units import NS_PER_SECOND

log = structlog.get_logger("zhixing.calendar")

WARN_DAYS: Final = 30
RECHECK_NS: Final = 3600 * NS_PER_SECOND  # the daily check also looks every hour (a stepped or slept clock)

Notify = Callable[[Message], None]


def calendar_for(config: Config, *, sources: list[CalendarSource] | None = None) -> TradingCalendar:
    """The trading calendar a config describes: the installed sources (or ``sources``), its holidays file,
    its ``beyond_known``."""
    return TradingCalendar(
        sources=sources, holidays=config.calendar.holidays, beyond_known=config.calendar.beyond_known
    )


class CalendarState(StrEnum):
    KNOWN = "known"
    ENDING = "ending"  # within WARN_DAYS of known_until
    BEYOND = "beyond"


@dataclass(frozen=True, slots=True)
class CalendarStatus:
    today: date
    known_until: date
    beyond_known: str

    @property
    def days_left(self) -> int:
        """Days from today to the last known day (0 on that day, negative past it)."""
        return (self.known_until - self.today).days

    @property
    def state(self) -> CalendarState:
        if self.days_left < 0:
            return CalendarState.BEYOND
        return CalendarState.ENDING if self.days_left <= WARN_DAYS else CalendarState.KNOWN

    @property
    def refused(self) -> bool:
        return self.state is CalendarState.BEYOND and self.beyond_known == "refuse"


def status_of(calendar: TradingCalendar, today: date) -> CalendarStatus:
    return CalendarStatus(today, calendar.known_until, calendar.beyond_known)


def _prefix(account: str | None) -> str:
    return f"[zhixing] [{mask_account(account)}]" if account else "[zhixing]"


def status_message(
    calendar: TradingCalendar, status: CalendarStatus, *, account: str | None = None
) -> Message | None:
    """What the operator is told today, or None while the calendar is known for more than WARN_DAYS."""
    until = status.known_until.isoformat()
    sources = ", ".join(c.name for c in calendar.known.coverage if c.used)
    prefix = _prefix(account)
    if status.state is CalendarState.KNOWN:
        return None
    if status.state is CalendarState.ENDING:
        when = "today" if status.days_left == 0 else f"in {status.days_left} day(s)"
        after = (
            "zhixing run will refuse to start"
            if status.beyond_known == "refuse"
            else 'zhixing trades every weekday no source closes (beyond_known = "weekdays")'
        )
        return Message(
            kind=MessageKind.ERROR,
            subject=f"{prefix} trading calendar ends {when} ({until})",
            body=(
                f"The trading calendar is known until {until} (sources: {sources}). From "
                f"{(status.known_until + timedelta(days=1)).isoformat()} {after}.\n\n{HOW_TO_UPDATE}"
            ),
            severity=Severity.WARNING,
        )
    if status.refused:
        return Message(
            kind=MessageKind.ERROR,
            subject=f"{prefix} trading calendar ran out on {until}: nothing is scheduled or traded",
            body=(
                f"{calendar.beyond_known_message(status.today)}\n\nzhixing run refuses to start; an engine "
                "that was already running schedules no job and sends no order on such a day."
            ),
            severity=Severity.CRITICAL,
        )
    trading = calendar.is_trading_day(status.today)
    return Message(
        kind=MessageKind.ERROR,
        subject=f"{prefix} weekdays-only calendar since {until}: {status.today.isoformat()} is "
        f"{'a trading day' if trading else 'not a trading day'}",
        body=(
            f"{status.today.isoformat()} is past the known trading calendar ({until}; sources: {sources}). "
            'With [calendar] beyond_known = "weekdays" every weekday that no source closes is taken for a '
            "trading day: an exchange holiday listed nowhere would be traded as a normal day.\n\n"
            f"{HOW_TO_UPDATE}"
        ),
        severity=Severity.WARNING,
    )


def upcoming_disagreements(calendar: TradingCalendar, today: date) -> list[Disagreement]:
    return [d for d in calendar.known.disagreements if d.day >= today]


def disagreement_message(
    calendar: TradingCalendar, today: date, *, account: str | None = None
) -> Message | None:
    """The days of the next WARN_DAYS that one source closes and another keeps open (treated as closed;
    ``zhixing calendar`` lists every one ahead)."""
    horizon = today + timedelta(days=WARN_DAYS)
    ahead = [d for d in upcoming_disagreements(calendar, today) if d.day <= horizon]
    if not ahead:
        return None
    lines = [
        f"{d.day.isoformat()}: closed by {', '.join(d.closed_by)}; open by {', '.join(d.open_by)}"
        for d in ahead
    ]
    return Message(
        kind=MessageKind.ERROR,
        subject=f"{_prefix(account)} calendar sources disagree on {len(ahead)} coming day(s)",
        body="These days are treated as closed (a closure from any source wins):\n" + "\n".join(lines),
        severity=Severity.WARNING,
    )


def check_calendar(
    calendar: TradingCalendar, today: date, notify: Notify, *, account: str | None = None
) -> CalendarStatus:
    """Tell the operator what ``today`` means for the calendar; raise ``CalendarError`` when refused."""
    status = status_of(calendar, today)
    message = status_message(calendar, status, account=account)
    if message is not None:
        log.warning(
            "calendar_" + status.state.value,
            today=today.isoformat(),
            known_until=status.known_until.isoformat(),
            beyond_known=status.beyond_known,
        )
        notify(message)
    if status.refused:
        raise CalendarError(calendar.beyond_known_message(today))
    return status


class CalendarWatch:
    """At start and then every Shanghai day: ``check_calendar``, each day's notice posted once.

    It looks at the next Shanghai midnight and every hour in between, so a clock that was stepped or a
    machine that slept still gets the day's notice; the notice goes out once per date."""

    def __init__(
        self, clock: Clock, calendar: TradingCalendar, notify: Notify, *, account: str | None = None
    ):
        self._clock = clock
        self._calendar = calendar
        self._notify = notify
        self._account = account
        self._checked: date | None = None
        self._timer: TimerHandle | None = None
        self.statuses: list[CalendarStatus] = []  # one per day checked

    def start(self) -> CalendarStatus:
        """The start check: posts today's notice (and disagreements ahead); raises ``CalendarError`` when
        the calendar refuses today, before anything else is opened. Then arms the daily check."""
        today = trading_date_of(self._clock.now_ns())
        self._checked = today
        status = check_calendar(self._calendar, today, self._notify, account=self._account)
        self.statuses.append(status)
        disagreements = disagreement_message(self._calendar, today, account=self._account)
        if disagreements is not None:
            self._notify(disagreements)
        self._arm()
        return status

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        now = self._clock.now_ns()
        midnight = shanghai_ns(trading_date_of(now) + timedelta(days=1), "00:00")
        self._timer = self._clock.call_at(min(midnight, now + RECHECK_NS), self._tick, "calendar_watch")

    def _tick(self) -> None:
        today = trading_date_of(self._clock.now_ns())
        if self._checked is None or today > self._checked:  # each new date once; a step back tells nothing
            self._checked = today
            try:
                self.statuses.append(
                    check_calendar(self._calendar, today, self._notify, account=self._account)
                )
            except CalendarError:  # already running: nothing is scheduled that day; told, not crashed
                self.statuses.append(status_of(self._calendar, today))
            except Exception:  # the check must never take the engine down
                log.exception("calendar_check_failed")
        self._arm()


def check_one_shot(config: Config, clock: Clock, *, out: TextIO | None = None) -> TradingCalendar:
    """For a one-shot ``--config`` command that schedules or checks sessions: the config's calendar,
    after printing today's warning to ``out`` (stderr); raises ``CalendarError`` when refused."""
    calendar = calendar_for(config)
    today = trading_date_of(clock.now_ns())
    status = status_of(calendar, today)
    if status.refused:
        raise CalendarError(calendar.beyond_known_message(today))
    message = status_message(calendar, status)
    if message is not None:
        print(f"zhixing: warning: {message.subject.removeprefix('[zhixing] ')}", file=out or sys.stderr)
    return calendar
