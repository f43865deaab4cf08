"""The one TOML config file of a live (or paper) run, loaded and validated.

Every error is a ``ConfigError`` naming the file and the dotted key (``route.qmt.session_id``) and says
what was expected; nothing is half-loaded. Unknown keys are errors too (a typo must not silently fall
back to a default). Secrets are never literal values: a secret key holds ``env:NAME`` or
``keyring:SERVICE/USER`` and is resolved only by ``engine.secrets`` when a component connects.

The file's shape is one validating model (``engine.config_model``); the rules that join two tables are
checked here, in the same ``load_config``. A broker adapter's table (``[route.qmt]``, ...) is checked by
the adapter's ``SettingsCheck`` that the composition root (``engine/cli``) hands to ``load_config``, so
``engine`` imports no adapter and every command that reads a config (``config check``, ``run``, the
``--config`` one-shots) accepts and refuses the same files. A UTF-8 BOM at the start is accepted.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from zhixing.engine.config_model import (
    SECRET_NAME,
    SECRET_RULE,
    SECRET_SPEC,
    ConfigFile,
    FeedKind,
    JobKind,
    RouteKind,
    config_error,
)
from zhixing.engine.errors import ConfigError, InputError, ParameterError
from zhixing.engine.input_limits import CONFIG as CONFIG_LIMITS
from zhixing.engine.input_limits import decode_text, read_bounded
from zhixing.engine.market.calendar import BeyondKnown, TradingCalendar
from zhixing.engine.market.calendar_sources import library_sources, merge
from zhixing.engine.market.dated_rules import MarketRules
from zhixing.engine.market.holidays import HolidayList, read_holidays
from zhixing.engine.market.security_status import StatusBook, load_status_file
from zhixing.engine.risk_controls import RiskLimits
from zhixing.engine.units import money

ROUTES: tuple[str, ...] = get_args(RouteKind)
FEEDS: tuple[str, ...] = get_args(FeedKind)  # paper runs: ``zhixing paper``
JOB_KINDS: tuple[str, ...] = get_args(JobKind)
BACKUP_JOB = "journal-backup"  # the job ``[backup]`` adds when no [[jobs]] entry has kind "backup"

SettingsCheck = Callable[[Mapping[str, Any], Path], object]
"""An adapter's check of its own table (``route.fileorder``, ``feed.qmt``, ...): the table and the config
file; raises ``ConfigError`` naming the file and the key. The composition root passes them to
``load_config`` (``engine`` imports no adapter)."""

AlgoCheck = Callable[[str, Mapping[str, str]], object]
"""The algorithms' check of an execute job's ``algo`` and ``params`` (as the job will pass them): raises
``ParameterError`` whose ``name`` is ``algo`` or the parameter. The composition root passes it to
``load_config`` (``engine`` imports no algorithm), so a typo there is refused by ``config check``, not at
the job's time."""


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
class MarketConfig:
    """``[market]``: the securities' statuses of the user's status file (read and checked at load; None:
    every name normal). ``rules()`` is the dated market rules a run, its simulated exchange and its
    planner ask (``engine/market/dated_rules.py``)."""

    statuses: StatusBook | None = None

    def rules(self, calendar: TradingCalendar | None = None) -> MarketRules:
        """The dated rules with these statuses; ``calendar`` counts a new listing's trading days."""
        return MarketRules(statuses=self.statuses, calendar=calendar)


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
    risk: RiskLimits
    notify: tuple[TableConfig, ...]
    jobs: tuple[JobConfig, ...]
    shutdown: str = "cancel"
    stale_after_s: float = 30.0
    resubscribe_after_s: float = 30.0  # a symbol stale this long is re-subscribed (engine/feed_keeper.py)
    connect_timeout_s: float = 600.0  # at start: how long to wait for the route and feed to answer
    clock: ClockConfig = field(default_factory=ClockConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
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
                if isinstance(value, str) and SECRET_SPEC.match(value) and SECRET_NAME.search(key):
                    found.append((f"{prefix}.{key}", value))
        return found


def load_config(
    path: Path | str,
    *,
    adapter: str | None = None,
    checks: Mapping[str, SettingsCheck] | None = None,
    algo_check: AlgoCheck | None = None,
) -> Config:
    """Read and validate ``path``; raise ``ConfigError`` naming the file and the key on the first problem.

    ``adapter`` (the CLI's ``--adapter``) picks the route instead of ``[route] kind``; its table must be in
    the file. Without a ``[feed]`` table the feed is the route's own (``qmt``, ``gm``). ``checks``: the
    adapters' checks of their own tables by dotted name (``route.qmt``), run on the chosen route and feed.
    ``algo_check``: the algorithms' check of each execute job's ``algo`` and ``params``."""
    path = Path(path)
    raw = _read(path)
    try:
        model = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, path, model=ConfigFile) from None
    route = _route(path, raw, model, adapter)
    feed = _feed(path, raw, model, route.kind)
    for prefix, table in _adapter_tables(raw):
        _check_secrets(path, prefix, table)
    for chosen in (route, feed):
        check = (checks or {}).get(f"{chosen.name}.{chosen.kind}")
        if check is not None:
            check(chosen.settings, path)
    jobs = _jobs(path, model, algo_check)
    _no_feed_jobs(path, feed.kind, jobs)
    return Config(
        path=path,
        account=AccountConfig(
            id=model.account.id,
            cash=money(model.account.cash_yuan),  # bounded by the model
            positions=dict(model.account.positions),
        ),
        store=StoreConfig(path=_store_path(path, model.store.path), synchronous=model.store.synchronous),
        route=TableConfig(kind=route.kind, settings=route.settings),
        feed=TableConfig(kind=feed.kind, settings=feed.settings),
        risk=model.risk.limits(),
        notify=tuple(TableConfig(kind=kind, settings=raw["notify"][kind]) for kind in raw.get("notify", {})),
        jobs=jobs,
        shutdown=model.shutdown,
        stale_after_s=model.feed.stale_after_s if model.feed else 30.0,
        resubscribe_after_s=model.feed.resubscribe_after_s if model.feed else 30.0,
        connect_timeout_s=model.route.connect_timeout_s,
        clock=ClockConfig(
            check_interval_s=model.clock.check_interval_s, step_alert_s=model.clock.step_alert_s
        ),
        calendar=_calendar(path, model),
        market=_market(path, model),
        backup=(
            BackupConfig(
                dir=_relative(path, model.backup.dir), keep_days=model.backup.keep_days, at=model.backup.at
            )
            if model.backup
            else None
        ),
    )


def _read(path: Path) -> dict[str, Any]:
    """The file's TOML, bounded before it is read (``engine.input_limits``); a UTF-8 BOM is dropped."""
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = decode_text(path, read_bounded(path, CONFIG_LIMITS), hint="save the config as UTF-8")
        return tomllib.loads(text.removeprefix("\ufeff"))
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML here: nested too deeply") from None


def _error(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {message}")


def _relative(path: Path, value: str) -> Path:
    """A path from the file: ``~`` expanded, relative to the config file's folder."""
    found = Path(value).expanduser()
    return found if found.is_absolute() else path.parent / found


def _store_path(path: Path, value: str) -> Path:
    """``[store] path``: the journal file, which may not exist yet, but is no folder."""
    found = _relative(path, value)
    if found.is_dir():
        raise _error(path, "store.path", f"{value!r} is a folder; name the journal file in it (zhixing.db)")
    return found


@dataclass(frozen=True, slots=True)
class _Chosen:
    name: str  # "route" or "feed"
    kind: str
    settings: Mapping[str, Any]


def _route(path: Path, raw: Mapping[str, Any], model: ConfigFile, adapter: str | None) -> _Chosen:
    if adapter is not None:
        if adapter not in ROUTES:
            raise ConfigError(f"{path}: --adapter {adapter!r}: must be one of {', '.join(ROUTES)}")
        if adapter != "sim" and adapter not in raw["route"]:
            raise ConfigError(f"{path}: --adapter {adapter}: the config has no [route.{adapter}] table")
        kind = adapter
    elif model.route.kind is None:
        raise _error(path, "route.kind", "is required")
    else:
        kind = model.route.kind
    if kind == "sim" and model.route.sim is None:
        raise _error(path, "route.sim.data", "is required (the recorded day the simulated exchange plays)")
    return _Chosen("route", kind, raw["route"].get(kind, {}))


ROUTE_FEEDS: Mapping[str, tuple[str, ...]] = {
    "sim": ("sim",),  # the recorded day's own quotes
    "fileorder": ("qmt", "gm", "none"),  # the terminal writes no quotes: QMT's or 掘金's data API, or none
    "qmt": ("qmt",),
    "gm": ("gm", "qmt"),
}
"""The feeds each route can be run with; the first is the route's own (fileorder has none: it must be set)."""

NO_FEED_REFUSED_JOBS = frozenset({"execute"})
"""Job kinds that cannot run with ``[feed] kind = "none"``: an execute job plans at the feed's prices and its
algorithm prices every child from the live book, and the pre-trade check needs prev close for the limits."""


def _feed(path: Path, raw: Mapping[str, Any], model: ConfigFile, route: str) -> _Chosen:
    """``[feed]``, or the route's own feed; a route takes only the feeds of ``ROUTE_FEEDS``."""
    allowed = ROUTE_FEEDS[route]
    listed = " or ".join(f"{kind!r}" for kind in allowed)
    if model.feed is None:
        if route == "fileorder":
            raise _error(
                path, "feed.kind", f"a fileorder route has no feed of its own: set [feed] kind = {listed}"
            )
        kind = allowed[0]
    else:
        kind = model.feed.kind
    if kind not in allowed:
        raise _error(
            path, "feed.kind", f"{kind!r} cannot feed a {route} route; a {route} route takes {listed}"
        )
    return _Chosen("feed", kind, raw.get("feed", {}).get(kind, {}))


def _no_feed_jobs(path: Path, feed: str, jobs: tuple[JobConfig, ...]) -> None:
    """With no live feed, a job that needs quotes is refused at load, naming it."""
    if feed != "none":
        return
    for i, job in enumerate(jobs):
        if job.kind in NO_FEED_REFUSED_JOBS:
            raise _error(
                path,
                f"jobs[{i}].kind",
                f"job {job.name!r} is an {job.kind} job: its plan and its {job.algo} algorithm price "
                "from live quotes, and [feed] kind = 'none' has none; set [feed] kind = 'qmt' or 'gm'",
            )


def _adapter_tables(raw: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every route, feed and notification table (the model has checked that each is a table)."""
    tables = [
        (f"{name}.{kind}", table) for name in ("route", "feed") for kind, table in raw.get(name, {}).items()
    ]
    tables += [(f"notify.{kind}", table) for kind, table in raw.get("notify", {}).items()]
    return [(prefix, table) for prefix, table in tables if isinstance(table, dict)]


def _check_secrets(path: Path, prefix: str, settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        # an empty string is no reference either: refused here, not when the run connects
        if SECRET_NAME.search(key) and isinstance(value, str) and not SECRET_SPEC.match(value):
            raise _error(path, f"{prefix}.{key}", SECRET_RULE)
    if prefix == "notify.email":
        if settings.get("username") is not None and settings.get("password") is None:
            raise _error(path, "notify.email.password", "is required with a username")
        if settings.get("username") is None and settings.get("sender") is None:
            raise _error(path, "notify.email.sender", "is required without a username")


def _jobs(path: Path, model: ConfigFile, algo_check: AlgoCheck | None) -> tuple[JobConfig, ...]:
    """The ``[[jobs]]``, and the backup job ``[backup]`` adds; the rules that join jobs and tables."""
    jobs: list[JobConfig] = []
    seen: set[str] = set()
    for i, job in enumerate(model.jobs):
        if job.name in seen:
            raise _error(path, f"jobs[{i}].name", f"duplicate job name {job.name!r}")
        seen.add(job.name)
        if job.kind == "signal" and job.command is None:
            raise _error(
                path, f"jobs[{i}].command", "is required for a signal job (the program and its arguments)"
            )
        if job.kind == "execute" and job.targets is None:
            raise _error(path, f"jobs[{i}].targets", "is required for an execute job (the targets file)")
        if job.kind == "backup" and model.backup is None:
            raise _error(path, f"jobs[{i}].kind", "a backup job needs a [backup] table with dir")
        params = {str(k): str(v) for k, v in job.params.items()}
        if job.kind == "execute" and algo_check is not None:
            try:
                algo_check(job.algo, params)
            except ParameterError as exc:
                key = "params" if exc.name is None else "algo" if exc.name == "algo" else f"params.{exc.name}"
                message = str(exc).removeprefix(f"{exc.name}: ")
                raise _error(path, f"jobs[{i}].{key}", message) from None
        jobs.append(
            JobConfig(
                name=job.name,
                cron=job.cron,
                kind=job.kind,
                command=tuple(job.command or ()),
                timeout_s=job.timeout_s,
                kill_grace_s=job.kill_grace_s,
                targets=_relative(path, job.targets) if job.targets is not None else None,
                algo=job.algo,
                window_minutes=job.window_minutes,
                params=params,
            )
        )
    if model.backup is not None and not any(j.kind == "backup" for j in jobs):
        if BACKUP_JOB in seen:
            raise _error(path, "backup", f"a job is already named {BACKUP_JOB!r}")
        hour, minute = model.backup.at.split(":")
        jobs.append(JobConfig(name=BACKUP_JOB, cron=f"{int(minute)} {int(hour)} * * *", kind="backup"))
    return tuple(jobs)


def _calendar(path: Path, model: ConfigFile) -> CalendarConfig:
    """``[calendar]``: the holidays file is read and checked here, at load."""
    holidays = None
    if model.calendar.holidays is not None:
        try:
            holidays = read_holidays(_relative(path, model.calendar.holidays))
            # a known_until past the installed libraries must list that year's holidays: checked here
            merge(library_sources(), holidays)
        except InputError as exc:
            raise _error(path, "calendar.holidays", str(exc)) from None
    return CalendarConfig(holidays=holidays, beyond_known=model.calendar.beyond_known)


def _market(path: Path, model: ConfigFile) -> MarketConfig:
    """``[market]``: the status file is read and checked here, at load."""
    if model.market.status_file is None:
        return MarketConfig()
    try:
        return MarketConfig(statuses=load_status_file(_relative(path, model.market.status_file)))
    except InputError as exc:
        raise _error(path, "market.status_file", str(exc)) from None


def raw_table(path: Path | str, name: str) -> dict[str, Any]:
    """One table of a config file as written (``{}`` when absent), read as ``load_config`` reads it."""
    table = _read(Path(path)).get(name, {})
    return dict(table) if isinstance(table, dict) else {}


def toml_value(text: str) -> object:
    """A command-line ``KEY=VALUE``'s value as TOML reads it (``10``, ``0.5``, ``true``, ``"x"``); anything
    TOML cannot read is the text itself, for the model to accept or refuse by the key's type."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
