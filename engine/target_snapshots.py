"""The targets an execute job trades: exactly what the signal run planned, and only if it is today's.

A targets file is written by one process (the signal) and traded by another job half an hour later; in
between it can be rewritten, half-written, replaced by yesterday's copy, or never written at all. The rule:

- The signal job *snapshots* the file it planned: its bytes, their SHA-256 and its mtime go into the
  journal (``input_snapshots``), per trading day and execute job, together with the reason the file was
  refused, if it was.
- The execute job trades that snapshot, parsed from the journaled bytes (never the file read again), and
  refuses, naming the file, when there is no snapshot of today (the signal did not run or did not finish),
  when the signal run refused the file, or when the file no longer hashes the same (changed, truncated or
  removed since). A file replaced by identical bytes is the same input and is traded.
- Today's, always: a date column (``date``, ``as_of``, ``trade_date``) must name today's trading day in
  every row (``engine.portfolio.targets``); an undated file last written before the previous trading day's
  close is a file left over from an earlier day and is refused (a one-shot command may pass
  ``--allow-stale``), and so is an undated file the signal job finds written before its run started (the
  script exited 0 without writing it: not what it decided). "Today" is the engine clock's trading day,
  never the wall clock's.

A config without any signal job has nobody to snapshot: its execute jobs read the file when they run,
under the same "today's" rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from zhixing.engine.clock import Clock
from zhixing.engine.errors import InputError
from zhixing.engine.input_limits import TARGETS, read_bounded
from zhixing.engine.market import TradingCalendar, iso8601, shanghai_ns, trading_date_of
from zhixing.engine.portfolio.targets import Target, load_targets
from zhixing.engine.store import StateStore

CLOSE = "15:00"
"""The previous trading day's close: an undated file written before it is not today's."""


@dataclass(frozen=True, slots=True)
class FileCopy:
    """A file's bytes as read once, their SHA-256 and the mtime seen right after reading them."""

    path: Path
    content: bytes
    sha256: str
    mtime_ns: int


def copy_file(path: Path) -> FileCopy:
    """Read ``path`` once. A file rewritten meanwhile shows a newer mtime, never newer bytes."""
    content = read_bounded(path, TARGETS)  # its size checked before it is read (a journaled copy too)
    try:
        mtime_ns = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    return FileCopy(path, content, hashlib.sha256(content).hexdigest(), mtime_ns)


def stale_problem(mtime_ns: int, today: date, calendar: TradingCalendar) -> str | None:
    """Why a file last written at ``mtime_ns`` is not for ``today`` (None when it may be)."""
    close_ns = shanghai_ns(calendar.previous_trading_day(today), CLOSE)
    if mtime_ns >= close_ns:
        return None
    return (
        f"last written {iso8601(mtime_ns)}, before the previous trading day's close ({iso8601(close_ns)}): "
        f"a file left over from an earlier day, not targets for {today.isoformat()}; write today's targets "
        "(or add a date column naming today)"
    )


MTIME_SLACK_NS = 2_000_000_000
"""A file system's timestamp granularity (FAT and SMB shares: 2 s): a file written just as the signal
started is not older than it."""


def written_before_problem(mtime_ns: int, started_ns: int) -> str | None:
    """Why an undated file last written at ``mtime_ns`` is not the output of a signal run that started at
    ``started_ns`` (None when it may be)."""
    if mtime_ns >= started_ns - MTIME_SLACK_NS:
        return None
    return (
        f"last written {iso8601(mtime_ns)}, before today's signal run started ({iso8601(started_ns)}): the "
        "signal did not write these targets, so they are not what it decided; have the signal script "
        "write the file (or add a date column naming today)"
    )


def todays_targets(
    copy: FileCopy,
    today: date,
    calendar: TradingCalendar,
    *,
    allow_stale: bool = False,
    signal_started_ns: int | None = None,
    normalize: bool = False,
    aggregate: bool = False,
    encoding: str | None = None,
) -> list[Target]:
    """Parse ``copy`` as targets for ``today``: a date column must name today; an undated file must have
    been written after the previous trading day's close (unless ``allow_stale``) and, when planned by a
    signal run that started at ``signal_started_ns``, by that run (not before it)."""
    parsed = load_targets(
        copy.path,
        data=copy.content,
        trade_date=today,
        normalize=normalize,
        aggregate=aggregate,
        encoding=encoding,
    )
    if parsed.date_column is None and not allow_stale:
        problem = stale_problem(copy.mtime_ns, today, calendar)
        if problem is None and signal_started_ns is not None:
            problem = written_before_problem(copy.mtime_ns, signal_started_ns)
        if problem is not None:
            raise InputError(problem, path=str(copy.path))
    return parsed.targets


async def take_snapshot(
    store: StateStore,
    clock: Clock,
    calendar: TradingCalendar,
    *,
    signal_job: str,
    job: str,
    path: Path,
    signal_started_ns: int | None = None,
) -> list[Target]:
    """The signal job's side: journal the file ``job`` will trade, then return its targets (or raise why
    they are refused; the refusal is journaled too, for the execute job to repeat). ``signal_started_ns``:
    when the signal run started (an undated file written before it is not the run's output)."""
    now = clock.now_ns()
    today = trading_date_of(now)
    problem: InputError | None = None
    targets: list[Target] = []
    try:
        copy = copy_file(path)
    except InputError as exc:
        copy, problem = FileCopy(path, b"", "", 0), exc
    else:
        try:
            targets = todays_targets(copy, today, calendar, signal_started_ns=signal_started_ns)
        except InputError as exc:
            problem = exc
    await store.save_input_snapshot(
        {
            "trade_date": today.isoformat(),
            "job": job,
            "signal_job": signal_job,
            "path": str(path),
            "sha256": copy.sha256,
            "mtime_ns": copy.mtime_ns,
            "taken_ns": now,
            "content": copy.content,
            "problem": "" if problem is None else str(problem),
        }
    )
    if problem is not None:
        raise problem
    return targets


async def snapshot_to_trade(
    store: StateStore, clock: Clock, calendar: TradingCalendar, *, job: str, path: Path
) -> list[Target]:
    """The execute job's side: today's snapshot for ``job``, parsed from the journal, if the file at
    ``path`` still holds exactly those bytes; otherwise ``InputError`` saying what happened."""
    today = trading_date_of(clock.now_ns())
    where = str(path)
    row = await store.latest_input_snapshot(today.isoformat(), job)
    if row is None:
        raise InputError(
            f"no snapshot of these targets from a signal run today ({today.isoformat()}): the signal job "
            "did not run or did not finish, so nothing it planned can be traded; run the signal again, or "
            "trade by hand (zhixing rebalance FILE --config CONFIG)",
            path=where,
        )
    taken = iso8601(int(str(row["taken_ns"])))
    if row["problem"]:
        raise InputError(f"the signal run at {taken} refused this file: {row['problem']}", path=where)
    if row["path"] != where:
        raise InputError(
            f"the signal run at {taken} planned {row['path']}, not this file (the config changed since)",
            path=where,
        )
    try:
        now_copy = copy_file(path)
    except InputError as exc:
        raise InputError(f"gone since the signal run at {taken} ({exc})", path=where) from None
    if now_copy.sha256 != row["sha256"]:
        raise InputError(
            f"changed since the signal run at {taken} planned it (sha256 {str(row['sha256'])[:12]}... then, "
            f"{now_copy.sha256[:12]}... now): what would trade is not what was planned and reported; "
            "run the signal job again to plan the file as it is now",
            path=where,
        )
    content = row["content"]
    assert isinstance(content, bytes)
    return todays_targets(
        FileCopy(path, content, now_copy.sha256, int(str(row["mtime_ns"]))), today, calendar
    )


def read_todays_file(clock: Clock, calendar: TradingCalendar, path: Path) -> list[Target]:
    """An execute job of a config without a signal job: the file as it is now, if it is today's."""
    return todays_targets(copy_file(path), trading_date_of(clock.now_ns()), calendar)
