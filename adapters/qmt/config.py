"""Settings of the QMT route (``[route.qmt]``) and the QMT feed (``[feed.qmt]``), validated.

``engine.config`` keeps a route's table as raw TOML values; the composition root turns it into these
with ``from_settings``, which raises ``ConfigError`` naming the file and the dotted key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from zhixing.engine.errors import ConfigError

ACCOUNT_TYPES = ("STOCK", "CREDIT")
FEED_MODES = ("whole", "tick")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class QmtRouteConfig:
    """How to reach miniQMT's trading side through ``xtquant.xttrader.XtQuantTrader``."""

    path: str  # the terminal's userdata_mini folder, e.g. D:\国金QMT交易端\userdata_mini
    account_id: str  # the fund account (资金账号)
    account_type: str = "STOCK"  # xtquant's StockAccount type name
    session_id: int = 1  # xtquant session; each new trader object after a disconnect uses the next one
    strategy_name: str = "zhixing"  # shown in the terminal; the client order id travels in order_remark
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    reconnect_max_attempts: int = 20
    reconnect_jitter: float = 0.1  # +-10 % around each delay, from a generator seeded by session_id

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("route.qmt.path: required (the userdata_mini folder)")
        if not self.account_id:
            raise ConfigError("route.qmt.account_id: required")
        if self.account_type not in ACCOUNT_TYPES:
            raise ConfigError(f"route.qmt.account_type: one of {', '.join(ACCOUNT_TYPES)}")
        if self.reconnect_initial_s <= 0 or self.reconnect_max_s < self.reconnect_initial_s:
            raise ConfigError("route.qmt.reconnect_initial_s: must be > 0 and <= reconnect_max_s")
        if self.reconnect_max_attempts < 1:
            raise ConfigError("route.qmt.reconnect_max_attempts: must be >= 1")
        if not 0 <= self.reconnect_jitter < 1:
            raise ConfigError("route.qmt.reconnect_jitter: must be in [0, 1)")

    @property
    def masked_account(self) -> str:
        """The account id as logs show it: first two and last two characters (RELIABILITY L2)."""
        return mask(self.account_id)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, where: str = "") -> QmtRouteConfig:
        r = _Settings(settings, "route.qmt", where)
        config = r.build(
            cls,
            path=r.text("path"),
            account_id=r.text("account_id"),
            account_type=r.text("account_type", "STOCK").upper(),
            session_id=r.integer("session_id", 1, minimum=1),
            strategy_name=r.text("strategy_name", "zhixing"),
            reconnect_initial_s=r.number("reconnect_initial_s", 1.0),
            reconnect_max_s=r.number("reconnect_max_s", 60.0),
            reconnect_max_attempts=r.integer("reconnect_max_attempts", 20, minimum=1),
            reconnect_jitter=r.number("reconnect_jitter", 0.1),
        )
        r.finish()
        return config


@dataclass(frozen=True, slots=True, kw_only=True)
class QmtFeedConfig:
    """How to reach miniQMT's market data through ``xtquant.xtdata``."""

    mode: str = (
        "whole"  # "whole": subscribe_whole_quote (one subscription); "tick": subscribe_quote per symbol
    )
    ip: str = ""  # xtdata.connect: empty means the local terminal
    port: int = 0  # 0: xtdata's default port discovery
    lot_size: int = 100  # xtdata's volume and bidVol/askVol are in 手 for stocks: shares per 手

    def __post_init__(self) -> None:
        if self.mode not in FEED_MODES:
            raise ConfigError(f"feed.qmt.mode: one of {', '.join(FEED_MODES)}")
        if self.lot_size < 1:
            raise ConfigError("feed.qmt.lot_size: must be >= 1")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, where: str = "") -> QmtFeedConfig:
        r = _Settings(settings, "feed.qmt", where)
        config = r.build(
            cls,
            mode=r.text("mode", "whole"),
            ip=r.text("ip", "", allow_empty=True),
            port=r.integer("port", 0),
            lot_size=r.integer("lot_size", 100, minimum=1),
        )
        r.finish()
        return config


def mask(account_id: str) -> str:
    if len(account_id) <= 4:
        return "*" * len(account_id)
    return f"{account_id[:2]}{'*' * (len(account_id) - 4)}{account_id[-2:]}"


class _Settings:
    def __init__(self, table: Mapping[str, Any], prefix: str, where: str) -> None:
        self.table = table
        self.prefix = prefix
        self.where = f"{where}: " if where else ""
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where}key '{self.prefix}.{key}': {message}")

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.table.get(key)

    def text(self, key: str, default: str | None = None, *, allow_empty: bool = False) -> str:
        value = self._get(key)
        if value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        if not isinstance(value, str) or (not value.strip() and not allow_empty):
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise self.error(key, f"expected a number, got {value!r}")
        return float(value)

    def build(self, cls: Callable[..., _T], **values: Any) -> _T:
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{self.where}{exc}") from None

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key (a typo?)")
