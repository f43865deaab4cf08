"""The ``[route.gm]`` and ``[feed.gm]`` settings, validated with errors that name the key.

```toml
[route]
kind = "gm"
[route.gm]
account_id = "a1b2c3d4-..."          # the 掘金 account id (终端 → 账户 → 账户ID)
strategy_id = "e5f6..."              # the strategy created in the terminal for zhixing
token = "env:GM_TOKEN"               # secret: env:NAME or keyring:SERVICE/USER, never literal
serv_addr = ""                       # optional: the terminal's address when not local (host:port)
state_dir = "state"                  # where the cl_ord_id link ledger lives

[feed]
kind = "gm"
[feed.gm]
frequency = "tick"
```

A route other than gm (fileorder) fed by gm runs a feed-only gm session: ``[feed.gm]`` then names the
session's ``strategy_id`` and ``token`` (what ``[route.gm]`` gives a gm route), required by the composition
root's loader (``engine/cli/routes.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhixing.engine.errors import ConfigError

_ROUTE_KEYS = frozenset({"account_id", "strategy_id", "token", "serv_addr", "state_dir"})
_FEED_KEYS = frozenset({"frequency", "strategy_id", "token", "serv_addr"})


@dataclass(frozen=True, slots=True, kw_only=True)
class GmRouteConfig:
    account_id: str
    strategy_id: str
    state_dir: Path
    token: str = ""  # a secret *reference* (env:/keyring:), resolved only at connect
    serv_addr: str = ""

    def __post_init__(self) -> None:
        if not self.account_id.strip():
            raise ConfigError("route.gm.account_id: must be the 掘金 account id, got an empty string")
        if not self.strategy_id.strip():
            raise ConfigError("route.gm.strategy_id: must be the 掘金 strategy id, got an empty string")

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "gm_links.sqlite"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, base: Path, where: str = "") -> GmRouteConfig:
        """From the ``[route.gm]`` table; relative paths are relative to ``base`` (the config's folder).
        ``where`` (the config file) prefixes every error."""
        key = f"{where}: route.gm" if where else "route.gm"
        _unknown(key, settings, _ROUTE_KEYS)
        state_dir = Path(_text(key, settings, "state_dir", "state")).expanduser()
        try:
            return cls(
                account_id=_text(key, settings, "account_id"),
                strategy_id=_text(key, settings, "strategy_id"),
                state_dir=state_dir if state_dir.is_absolute() else base / state_dir,
                token=_text(key, settings, "token", ""),
                serv_addr=_text(key, settings, "serv_addr", ""),
            )
        except ConfigError as exc:
            raise ConfigError(
                f"{where}: {exc}" if where and not str(exc).startswith(where) else str(exc)
            ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class GmFeedConfig:
    frequency: str = "tick"
    strategy_id: str = ""  # a feed-only session's strategy (no [route.gm] to take it from)
    token: str = ""
    serv_addr: str = ""

    def __post_init__(self) -> None:
        if self.frequency != "tick":
            raise ConfigError(f"feed.gm.frequency: only 'tick' is supported, got {self.frequency!r}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, where: str = "") -> GmFeedConfig:
        key = f"{where}: feed.gm" if where else "feed.gm"
        _unknown(key, settings, _FEED_KEYS)
        try:
            return cls(
                frequency=_text(key, settings, "frequency", "tick"),
                strategy_id=_text(key, settings, "strategy_id", ""),
                token=_text(key, settings, "token", ""),
                serv_addr=_text(key, settings, "serv_addr", ""),
            )
        except ConfigError as exc:
            raise ConfigError(
                f"{where}: {exc}" if where and not str(exc).startswith(where) else str(exc)
            ) from None


def _unknown(prefix: str, settings: Mapping[str, Any], known: frozenset[str]) -> None:
    for key in sorted(settings):
        if key not in known:
            raise ConfigError(f"{prefix}.{key}: unknown key (a typo?); known: {', '.join(sorted(known))}")


def _text(prefix: str, settings: Mapping[str, Any], key: str, default: str | None = None) -> str:
    if key not in settings:
        if default is None:
            raise ConfigError(f"{prefix}.{key}: is required")
        return default
    value = settings[key]
    if not isinstance(value, str):
        raise ConfigError(f"{prefix}.{key}: expected a string, got {type(value).__name__}")
    return value
