"""The shape of the config file as one validating model (pydantic v2, strict, unknown keys refused).

``engine.config.load_config`` validates the parsed TOML with ``ConfigFile`` and turns the result into the
engine's ``Config``; ``config_error`` turns pydantic's ``ValidationError`` into a ``ConfigError`` naming the
file and the dotted key (``jobs[1].cron``). The route, feed and notification tables the engine itself
knows (``[route.sim]``, ``[notify.*]``) are modelled here; a broker adapter's own table
(``[route.fileorder]``, ``[route.qmt]``, ...) is kept as a table and checked by the adapter's settings
check, which the composition root hands to the same ``load_config``.

Rules that need two tables at once (a job's command, duplicate job names, the feed a route can use) are
checked by ``load_config`` after this model, in the same call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from croniter import CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from zhixing.engine import names
from zhixing.engine.errors import ConfigError
from zhixing.engine.risk_controls import HFT_PER_DAY, HFT_PER_SECOND, SECOND_NS, RiskLimits
from zhixing.engine.units import MAX_COUNT, MAX_MINUTES, MAX_SECONDS, MAX_SHARES, MAX_YUAN, duration_ns, money

SECRET_NAME = re.compile(r"(pass|secret|token|key$|webhook|url$)", re.IGNORECASE)
"""A key whose value is a secret: written only as a reference, never echoed in an error."""
SECRET_SPEC = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|keyring:[^/\s]+/[^/\s]+)$")
"""The only forms a secret key may hold (``engine.secrets`` resolves them)."""
SECRET_RULE = "a secret must not be written in the file; use env:VARIABLE or keyring:SERVICE/USER"


RouteKind = Literal["sim", "fileorder", "qmt", "gm"]
FeedKind = Literal["sim", "qmt", "gm", "none"]  # none: no live quotes (engine.config ROUTE_FEEDS)
JobKind = Literal["signal", "execute", "summary", "backup"]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a non-empty string")
    return value


Text = Annotated[str, AfterValidator(_non_blank)]
"""A string with something in it (not empty, not only spaces)."""


def _secret_spec(value: str) -> str:
    if not SECRET_SPEC.match(value):  # an empty string too: it is no reference
        raise ValueError(SECRET_RULE)
    return value


SecretRef = Annotated[str, AfterValidator(_secret_spec)]
"""A secret key's value: ``env:NAME`` or ``keyring:SERVICE/USER``, never the secret itself."""

# Every number a file may hold is bounded by its kind (engine.units), so what it converts to (milli-yuan,
# ns, shares) fits the journal's 64-bit integers: a huge value is a key's error here, never a crash later.
Money = Annotated[float, Field(ge=0, le=MAX_YUAN)]
"""Yuan."""
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
Shares = Annotated[int, Field(ge=0, le=MAX_SHARES)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class Strict(BaseModel):
    """Every table: unknown keys are errors, no coercion ("20" is not 20, 1 is not true), no NaN."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class AccountModel(Strict):
    id: Text
    cash_yuan: Money = 0.0  # the simulated broker's starting cash
    positions: dict[str, Shares] = {}

    @field_validator("id")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        problem = names.name_problem(value)  # it may name folders and files (backups, the file route)
        if problem is not None:
            raise ValueError(f"{value!r} {problem}")
        return value


class StoreModel(Strict):
    path: Text
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


class SimRouteModel(Strict):
    """``[route.sim]``: the recorded day the simulated exchange plays."""

    data: Text
    latency_ms: int = Field(20, ge=0, le=MAX_SECONDS * 1000)


class SimFeedModel(Strict):
    """``[feed.sim]``: the sim route's recorded quotes; nothing to set."""


class NoFeedModel(Strict):
    """``[feed.none]``: no live feed; nothing to set (what cannot run without quotes: ``engine.config``)."""


AdapterTable = dict[str, Any]
"""A broker adapter's own table, checked by the settings check the composition root gives ``load_config``."""


class RouteModel(Strict):
    kind: RouteKind | None = None  # None: only with --adapter
    connect_timeout_s: Seconds = 600.0  # at start: how long to wait for route and feed
    sim: SimRouteModel | None = None
    fileorder: AdapterTable | None = None
    qmt: AdapterTable | None = None
    gm: AdapterTable | None = None


class FeedModel(Strict):
    kind: FeedKind
    stale_after_s: Annotated[Seconds, Field(ge=0.001)] = 30.0
    resubscribe_after_s: Annotated[Seconds, Field(ge=1.0)] = 30.0  # a symbol stale this long is re-subscribed
    sim: SimFeedModel | None = None
    qmt: AdapterTable | None = None
    gm: AdapterTable | None = None
    none: NoFeedModel | None = None


_LIMITS = RiskLimits()  # the defaults: one place (engine.risk_controls)


class RiskModel(Strict):
    """``[risk]``: ``RiskLimits`` with money in yuan and windows in seconds; the same defaults and checks.

    ``allow_hft_rates`` comes first: the caps' checks read it (fields are validated in this order)."""

    allow_hft_rates: bool = _LIMITS.allow_hft_rates
    max_messages_per_second: Annotated[Count, Field(ge=1)] = _LIMITS.max_messages_per_second
    max_messages_per_day: Annotated[Count, Field(ge=1)] = _LIMITS.max_messages_per_day
    cancel_reserve_pct: int = Field(_LIMITS.cancel_reserve_pct, ge=0, lt=100)
    warn_at_pct: int = Field(_LIMITS.warn_at_pct, ge=1, le=100)
    max_order_value_yuan: Money = _LIMITS.max_order_value / 1000
    max_order_quantity: Annotated[Shares, Field(ge=1)] = _LIMITS.max_order_quantity
    price_collar_bp: int = Field(_LIMITS.price_collar_bp, ge=0, le=10_000)  # 100%
    duplicate_window_s: Seconds = _LIMITS.duplicate_window_ns / SECOND_NS  # 0 disables
    duplicate_max: Annotated[Count, Field(ge=1)] = _LIMITS.duplicate_max
    max_active_orders: Count = _LIMITS.max_active_orders
    max_cancels_per_symbol_per_second: Count = _LIMITS.max_cancels_per_symbol_per_second
    max_consecutive_rejects: Count = _LIMITS.max_consecutive_rejects
    max_rejects_per_symbol: Count = _LIMITS.max_rejects_per_symbol
    deny_self_cross: bool = _LIMITS.deny_self_cross
    rate_queue_timeout_s: Annotated[Seconds, Field(gt=0)] = (
        _LIMITS.rate_queue_timeout_ns / SECOND_NS
    )  # queued longer
    # for the per-second cap: denied rate_queue_timeout

    @field_validator("max_messages_per_second")
    @classmethod
    def _below_the_second_line(cls, value: int, info: ValidationInfo) -> int:
        if value >= HFT_PER_SECOND and not info.data.get("allow_hft_rates", False):
            raise ValueError(
                f"must be below {HFT_PER_SECOND} (the regulator's high-frequency line), got {value}; "
                "set allow_hft_rates if that is declared"
            )
        return value

    @field_validator("max_messages_per_day")
    @classmethod
    def _below_the_day_line(cls, value: int, info: ValidationInfo) -> int:
        if value >= HFT_PER_DAY and not info.data.get("allow_hft_rates", False):
            raise ValueError(
                f"must be below {HFT_PER_DAY:,} (the regulator's high-frequency line), got {value}; "
                "set allow_hft_rates if that is declared"
            )
        return value

    @field_validator("cancel_reserve_pct")
    @classmethod
    def _room_for_orders(cls, value: int, info: ValidationInfo) -> int:
        for label in ("second", "day"):
            cap = info.data.get(f"max_messages_per_{label}")
            if cap is not None and cap - -(-cap * value // 100) < 1:
                raise ValueError(f"{value} leaves no room for orders in the per-{label} cap")
        return value

    def limits(self) -> RiskLimits:
        values = self.model_dump(
            exclude={"max_order_value_yuan", "duplicate_window_s", "rate_queue_timeout_s"}
        )
        return RiskLimits(
            **values,
            max_order_value=money(self.max_order_value_yuan),
            duplicate_window_ns=duration_ns(self.duplicate_window_s),
            rate_queue_timeout_ns=max(1, duration_ns(self.rate_queue_timeout_s)),
        )


_Positive = Annotated[float, Field(gt=0, le=MAX_SECONDS)]  # a timeout


class EmailModel(Strict):
    host: Text
    port: Annotated[int, Field(gt=0, lt=65536)] | None = None  # default: by security
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str | None = None
    password: SecretRef | None = None  # required with a username
    sender: Text | None = None  # default: the username
    recipients: Annotated[list[Text], Field(min_length=1)]
    timeout_s: _Positive = 30.0


class WeComModel(Strict):
    webhook_url: SecretRef
    timeout_s: _Positive = 10.0


class SignedWebhookModel(Strict):
    """DingTalk (加签) and Feishu (签名校验): a webhook and an optional signing secret."""

    webhook_url: SecretRef
    secret: SecretRef | None = None
    timeout_s: _Positive = 10.0


class NotifyModel(Strict):
    email: EmailModel | None = None
    wecom: WeComModel | None = None
    dingtalk: SignedWebhookModel | None = None
    feishu: SignedWebhookModel | None = None


# any fixed day: whether an expression ever fires does not depend on it
_CRON_BASE = datetime(2000, 1, 1, tzinfo=UTC)


def _cron(value: str) -> str:
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day month weekday)")
    try:
        croniter(value, _CRON_BASE).get_next(datetime)  # what the scheduler asks, at load
    except CroniterBadDateError:
        raise ValueError(f"{value!r} never fires (no such date)") from None
    return value


class JobModel(Strict):
    name: Text
    cron: Annotated[str, AfterValidator(_cron)]
    kind: JobKind
    command: Annotated[list[str], Field(min_length=1)] | None = None  # the program and its arguments
    timeout_s: Annotated[Seconds, Field(ge=0.001)] = 300.0
    kill_grace_s: Seconds = 5.0  # a signal script's tree: SIGTERM, this long, then SIGKILL
    targets: Text | None = None
    algo: Text = "twap"
    window_minutes: int = Field(30, ge=1, le=MAX_MINUTES)
    params: dict[str, Any] = {}


def _hh_mm(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"expected HH:MM (Shanghai time), got {value!r}")
    return value


class BackupModel(Strict):
    dir: Text
    keep_days: Annotated[Count, Field(ge=1)] = 10
    at: Annotated[str, AfterValidator(_hh_mm)] = "15:10"  # Shanghai time, after the close


class ClockModel(Strict):
    check_interval_s: float = Field(1.0, ge=0.05, le=60)  # a step must be seen soon
    step_alert_s: Annotated[Seconds, Field(ge=0.1)] = 2.0


class CalendarModel(Strict):
    holidays: Text | None = None
    beyond_known: Literal["refuse", "weekdays"] = "refuse"


class MarketModel(Strict):
    # CSV symbol,status,from,to[,listing_date]: ST/*ST/delisting periods and listing dates, relative to the
    # config file (engine/market/security_status.py); without it every name is normal
    status_file: Text | None = None


class ConfigFile(Strict):
    """The whole file."""

    account: AccountModel
    store: StoreModel
    route: RouteModel
    feed: FeedModel | None = None  # None: the route's own feed
    risk: RiskModel = RiskModel()
    notify: NotifyModel = NotifyModel()
    jobs: list[JobModel] = []
    backup: BackupModel | None = None
    shutdown: Literal["cancel", "leave"] = "cancel"
    clock: ClockModel = ClockModel()
    calendar: CalendarModel = CalendarModel()
    market: MarketModel = MarketModel()


# ------------------------------------------------------------------------------------------ errors
def dotted(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("jobs", 1, "cron")`` -> ``jobs[1].cron``; a dict key's own error (``[key]``) names the key."""
    out = prefix
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _known(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys the table at ``loc`` may hold (for an unknown key's message), when it is a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _model_of(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


def _model_of(annotation: Any) -> Any:
    """The model class inside ``X | None`` or ``list[X]``, else the annotation."""
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _message(error: Any, key: str, known: list[str] | None) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key (a typo?)" + (f"; known: {', '.join(known)}" if known else "")
    text = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return text
    ctx = error.get("ctx") or {}
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        bound = next(iter(ctx.values()), "")
        if isinstance(bound, float) and bound.is_integer() and abs(bound) >= 1000:
            bound = f"{int(bound):,}"  # 1,000,000,000,000 rather than 1000000000000.0
        text = f"must be {bounds[kind]} {bound}"
    elif kind == "literal_error":
        text = "must be one of " + str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
    text = text[:1].lower() + text[1:]
    value = error.get("input")
    if SECRET_NAME.search(key.rpartition(".")[2]) or isinstance(value, dict | list):
        return text  # a secret's value is never echoed; a table is not repeated
    return f"{text}, got {value!r}"


def config_error(
    exc: ValidationError, source: object, *, model: type[BaseModel], prefix: str = ""
) -> ConfigError:
    """The first problem of ``exc`` as ``ConfigError("<source>: key '<dotted key>': <message>")``; how many
    more there are is said after it."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    key = dotted(loc, prefix)
    parent = loc[:-1] if first["type"] == "extra_forbidden" else loc
    message = _message(first, key, _known(model, parent) if first["type"] == "extra_forbidden" else None)
    more = len(errors) - 1
    tail = f" ({more} more: {', '.join(dotted(tuple(e['loc']), prefix) for e in errors[1:4])}" if more else ""
    if more:
        tail += ", ...)" if more > 3 else ")"
    return ConfigError(f"{source}: key '{key}': {message}{tail}")


def risk_limits(table: Mapping[str, object], source: object) -> RiskLimits:
    """A ``[risk]``-shaped mapping validated by the same model as a config file's ``[risk]`` (``zhixing replay
    --risk KEY=VALUE``): a ``ConfigError`` names ``source`` and the key."""
    try:
        return RiskModel.model_validate(dict(table)).limits()
    except ValidationError as exc:
        raise config_error(exc, source, model=RiskModel, prefix="risk") from None
