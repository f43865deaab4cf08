"""The one TOML config file of a live (or paper) run, loaded and validated.

Every error is a ``ConfigError`` naming the file and the dotted key (``route.qmt.session_id``) and says
what was expected; nothing is half-loaded. Unknown keys are errors too (a typo must not silently fall
back to a default). Secrets are never literal values: a secret key holds ``env:NAME`` or
``keyring:SERVICE/USER`` and is resolved only by ``engine.secrets`` when a component connects.

Route, feed and notification settings are kept as validated tables here and turned into each
adapter's own settings by the composition root (``engine/cli``), so ``engine`` imports no adapter.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from croniter import croniter

from engine import names
from engine.errors import ConfigError, InputError
from engine.input_limits import CONFIG as CONFIG_LIMITS
from engine.input_limits import decode_text, read_bounded
from engine.market.calendar import BEYOND_KNOWN, BeyondKnown
from engine.market.calendar_sources import library_sources, merge
from engine.market.holidays import HolidayList, read_holidays
from engine.units import price_from_yuan

ROUTES = ("sim", "fileorder", "qmt", "gm")
FEEDS = ("sim", "qmt", "gm")  # paper runs: ``zhixing paper``
JOB_KINDS = ("signal", "execute", "summary", "backup")
BACKUP_JOB = "journal-backup"  # the job ``[backup]`` adds when no [[jobs]] entry has kind "backup"
SHUTDOWN_POLICIES = ("cancel", "leave")
_SECRET_NAME = re.compile(r"(pass|secret|token|key$|webhook|url$)", re.IGNORECASE)
_SECRET_SPEC = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|keyring:[^/\s]+/[^/\s]+)$")


@dataclass(frozen=True, slots=True)
class AccountConfig:
    id: str
    cash: int = 0  # milli-yuan; the simulated broker's starting cash
    positions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path
    synchronous: str = "FULL"


@dataclass(frozen=True, slots=True)
class BackupConfig:
    """``[backup]``: the daily journal backup with the day's trade log (``engine.store.backup``)."""

    dir: Path
    keep_days: int = 10
    at: str = "15:10"  # Shanghai time, after the close


@dataclass(frozen=True, slots=True)
class TableConfig:
    """A route, feed or notifier: its kind and its own validated-later settings table."""

    kind: str
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    """``[calendar]``: the user's holidays file (read and checked at load) and what a day past the known
    range is (``engine.market.calendar``; ``engine.calendar_guard`` builds the calendar from this)."""

    holidays: HolidayList | None = None
    beyond_known: BeyondKnown = "refuse"


@dataclass(frozen=True, slots=True)
class JobConfig:
    name: str
    cron: str
    kind: str
    command: tuple[str, ...] = ()
    timeout_s: float = 300.0
    kill_grace_s: float = 5.0  # a signal script's tree: SIGTERM, this long, then SIGKILL (child_processes)
    targets: Path | None = None
    algo: str = "twap"
    window_minutes: int = 30
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """``[clock]``: how often the host's wall clock is compared with the engine's, and from what size a
    difference that appeared is a step told to the operator (``engine/clock_watch.py``)."""

    check_interval_s: float = 1.0
    step_alert_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    account: AccountConfig
    store: StoreConfig
    route: TableConfig
    feed: TableConfig
    risk: Mapping[str, Any]
    notify: tuple[TableConfig, ...]
    jobs: tuple[JobConfig, ...]
    shutdown: str = "cancel"
    stale_after_s: float = 30.0
    resubscribe_after_s: float = 30.0  # a symbol stale this long is re-subscribed (engine/feed_keeper.py)
    connect_timeout_s: float = 600.0  # at start: how long to wait for the route and feed to answer
    clock: ClockConfig = field(default_factory=ClockConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    backup: BackupConfig | None = None

    def secret_keys(self) -> list[tuple[str, str]]:
        """Every (dotted key, spec) that holds a secret reference."""
        found: list[tuple[str, str]] = []
        tables: list[tuple[str, Mapping[str, Any]]] = [
            (f"route.{self.route.kind}", self.route.settings),
            (f"feed.{self.feed.kind}", self.feed.settings),
        ]
        tables += [(f"notify.{n.kind}", n.settings) for n in self.notify]
        for prefix, table in tables:
            for key, value in table.items():
                if isinstance(value, str) and _SECRET_SPEC.match(value) and _SECRET_NAME.search(key):
                    found.append((f"{prefix}.{key}", value))
        return found


class _Reader:
    """Typed access to one TOML table that names the dotted key and the file in every error."""

    def __init__(self, path: Path, prefix: str, table: Mapping[str, Any]) -> None:
        self.path = path
        self.prefix = prefix
        self.table = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: key {self.key(name)!r}: {message}")

    def _get(self, name: str, required: bool) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                raise self.error(name, "is required")
            return None
        return self.table[name]

    def text(self, name: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self._get(name, default is None)
        if value is None:
            assert default is not None
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise self.error(name, f"expected a number, got {value!r}")
        if value < minimum:
            raise self.error(name, f"must be >= {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {value!r}")
        if value < minimum:
            raise self.error(name, f"must be >= {minimum}, got {value}")
        return value

    def table_of(self, name: str, *, required: bool = False) -> Mapping[str, Any]:
        value = self._get(name, required)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {type(value).__name__}")
        return value

    def path_value(self, name: str, *, required: bool = True) -> Path | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.error(name, f"expected a path string, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.path.parent / path)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key (a typo?)")


def load_config(path: Path | str, *, adapter: str | None = None) -> Config:
    """Read and validate ``path``; raise ``ConfigError`` naming the key on the first problem.

    ``adapter`` (the CLI's ``--adapter``) picks the route instead of ``[route] kind``; its table must be in
    the file. Without a ``[feed]`` table the feed is the route's own (``qmt``, ``gm``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:  # bounded before it is read (engine.input_limits)
        text = decode_text(path, read_bounded(path, CONFIG_LIMITS), hint="save the config as UTF-8")
        raw = tomllib.loads(text)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML here: nested too deeply") from None
    top = _Reader(path, "", raw)

    acct = _Reader(path, "account", top.table_of("account", required=True))
    account_id = acct.text("id")
    problem = names.name_problem(account_id)  # it may name folders and files (backups, the file route)
    if problem is not None:
        raise acct.error("id", f"{account_id!r} {problem}")
    account = AccountConfig(
        id=account_id,
        cash=price_from_yuan(acct.number("cash_yuan", 0.0)),
        positions=_positions(acct),
    )
    acct.finish()

    st = _Reader(path, "store", top.table_of("store", required=True))
    store_path = st.path_value("path")
    assert store_path is not None
    store = StoreConfig(
        path=store_path, synchronous=st.text("synchronous", "FULL", choices=("FULL", "NORMAL"))
    )
    st.finish()

    route_table = top.table_of("route", required=True)
    route = _kind_table(path, "route", route_table, ROUTES, extra=("connect_timeout_s",), override=adapter)
    connect_timeout_s = _Reader(path, "route", route_table).number("connect_timeout_s", 600.0)
    feed_table = top.table_of("feed")
    feed = _kind_table(
        path,
        "feed",
        feed_table or {"kind": route.kind},
        FEEDS,
        extra=("stale_after_s", "resubscribe_after_s"),
    )
    fr = _Reader(path, "feed", feed_table)
    stale_after_s = fr.number("stale_after_s", 30.0, minimum=0.001)
    resubscribe_after_s = fr.number("resubscribe_after_s", 30.0, minimum=1.0)

    risk = dict(top.table_of("risk"))
    for key, value in risk.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: key 'risk.{key}': expected a number, got {value!r}")

    notify = _notify(path, top.table_of("notify"))
    jobs = _jobs(path, top._get("jobs", False))
    backup = _backup(path, top.table_of("backup") if "backup" in raw else None, jobs)
    if backup is not None and not any(j.kind == "backup" for j in jobs):
        if any(j.name == BACKUP_JOB for j in jobs):
            raise ConfigError(f"{path}: key 'backup': a job is already named {BACKUP_JOB!r}")
        hour, minute = backup.at.split(":")
        jobs += (JobConfig(name=BACKUP_JOB, cron=f"{int(minute)} {int(hour)} * * *", kind="backup"),)
    shutdown = top.text("shutdown", "cancel", choices=SHUTDOWN_POLICIES)
    clock = _clock(_Reader(path, "clock", top.table_of("clock")))
    calendar = _calendar(_Reader(path, "calendar", top.table_of("calendar")))
    top.finish()
    return Config(
        path=path,
        account=account,
        store=store,
        route=route,
        feed=feed,
        risk=risk,
        notify=notify,
        jobs=jobs,
        shutdown=shutdown,
        stale_after_s=stale_after_s,
        resubscribe_after_s=resubscribe_after_s,
        connect_timeout_s=connect_timeout_s,
        clock=clock,
        calendar=calendar,
        backup=backup,
    )


def _clock(reader: _Reader) -> ClockConfig:
    interval = reader.number("check_interval_s", 1.0, minimum=0.05)
    if interval > 60:
        raise reader.error("check_interval_s", f"must be <= 60 (a step must be seen soon), got {interval:g}")
    alert = reader.number("step_alert_s", 2.0, minimum=0.1)
    reader.finish()
    return ClockConfig(check_interval_s=interval, step_alert_s=alert)


def _calendar(reader: _Reader) -> CalendarConfig:
    beyond = reader.text("beyond_known", "refuse", choices=BEYOND_KNOWN)
    file = reader.path_value("holidays", required=False)
    reader.finish()
    holidays = None
    if file is not None:
        try:
            holidays = read_holidays(file)
            # a known_until past the installed libraries must list that year's holidays: checked here
            merge(library_sources(), holidays)
        except InputError as exc:
            raise reader.error("holidays", str(exc)) from None
    return CalendarConfig(holidays=holidays, beyond_known="weekdays" if beyond == "weekdays" else "refuse")


def _backup(path: Path, table: Mapping[str, Any] | None, jobs: tuple[JobConfig, ...]) -> BackupConfig | None:
    """``[backup]`` (None without the table); a ``backup`` job needs it."""
    if table is None:
        for i, job in enumerate(jobs):
            if job.kind == "backup":
                raise ConfigError(
                    f"{path}: key 'jobs[{i}].kind': a backup job needs a [backup] table with dir"
                )
        return None
    r = _Reader(path, "backup", table)
    folder = r.path_value("dir")
    assert folder is not None
    at = r.text("at", "15:10")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", at):
        raise r.error("at", f"expected HH:MM (Shanghai time), got {at!r}")
    backup = BackupConfig(dir=folder, keep_days=r.integer("keep_days", 10, minimum=1), at=at)
    r.finish()
    return backup


def _positions(acct: _Reader) -> dict[str, int]:
    table = acct.table_of("positions")
    positions: dict[str, int] = {}
    for symbol, quantity in table.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ConfigError(
                f"{acct.path}: key 'account.positions.{symbol}': expected shares >= 0, got {quantity!r}"
            )
        positions[symbol] = quantity
    return positions


def _kind_table(
    path: Path,
    name: str,
    table: Mapping[str, Any],
    kinds: tuple[str, ...],
    extra: tuple[str, ...] = (),
    override: str | None = None,
) -> TableConfig:
    """``[name] kind = ...`` and the chosen kind's ``[name.<kind>]`` table. Tables of the other kinds may
    sit beside it (checked the same way), so ``override`` (``--adapter``) can switch between them."""
    reader = _Reader(path, name, table)
    kind = reader.text("kind", choices=kinds) if override is None else override
    if kind not in kinds:
        raise ConfigError(f"{path}: --adapter {kind!r}: must be one of {', '.join(kinds)}")
    for other in kinds:
        settings = reader.table_of(other)
        _check_secrets(path, f"{name}.{other}", settings)
    if override is not None:
        reader.used.add("kind")
    reader.used.update(extra)
    reader.finish()
    if override is not None and kind != "sim" and kind not in table:
        raise ConfigError(f"{path}: --adapter {kind}: the config has no [{name}.{kind}] table")
    return TableConfig(kind=kind, settings=reader.table_of(kind))


def _check_secrets(path: Path, prefix: str, settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        if _SECRET_NAME.search(key) and isinstance(value, str) and value and not _SECRET_SPEC.match(value):
            raise ConfigError(
                f"{path}: key '{prefix}.{key}': a secret must not be written in the file; "
                "use env:VARIABLE or keyring:SERVICE/USER"
            )


def _notify(path: Path, table: Mapping[str, Any]) -> tuple[TableConfig, ...]:
    channels: list[TableConfig] = []
    for kind, settings in table.items():
        if kind not in ("email", "wecom", "dingtalk", "feishu"):
            raise ConfigError(
                f"{path}: key 'notify.{kind}': unknown channel (email, wecom, dingtalk, feishu)"
            )
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: key 'notify.{kind}': expected a table")
        _check_secrets(path, f"notify.{kind}", settings)
        channels.append(TableConfig(kind=kind, settings=settings))
    return tuple(channels)


def _jobs(path: Path, raw: object) -> tuple[JobConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: key 'jobs': expected an array of tables ([[jobs]])")
    jobs: list[JobConfig] = []
    names: set[str] = set()
    for i, table in enumerate(raw):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: key 'jobs[{i}]': expected a table")
        r = _Reader(path, f"jobs[{i}]", table)
        name = r.text("name")
        if name in names:
            raise r.error("name", f"duplicate job name {name!r}")
        names.add(name)
        kind = r.text("kind", choices=JOB_KINDS)
        command = r._get("command", kind == "signal")
        if command is not None and (
            not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command)
        ):
            raise r.error("command", "expected a non-empty array of strings (the program and its arguments)")
        params = r.table_of("params")
        cron = r.text("cron")
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise r.error(
                "cron", f"{cron!r} is not a 5-field cron expression (minute hour day month weekday)"
            )
        job = JobConfig(
            name=name,
            cron=cron,
            kind=kind,
            command=tuple(command or ()),
            timeout_s=r.number("timeout_s", 300.0, minimum=0.001),
            kill_grace_s=r.number("kill_grace_s", 5.0),
            targets=r.path_value("targets", required=kind == "execute"),
            algo=r.text("algo", "twap"),
            window_minutes=r.integer("window_minutes", 30, minimum=1),
            params={str(k): str(v) for k, v in params.items()},
        )
        r.finish()
        jobs.append(job)
    return tuple(jobs)
