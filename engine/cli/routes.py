"""Turn a config's route and feed tables into the adapters that implement them (composition root).

``sim`` routes orders to the simulated exchange over one recorded day (``[route.sim] data``) and, with
``feed.kind = "sim"``, feeds quotes recorded for that day. The live routes (``fileorder``, ``qmt``,
``gm``) are imported only when asked for, so a machine without a vendor package can still run the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from engine.broker import BrokerAdapter
from engine.clock import Clock, SimClock
from engine.config import Config
from engine.errors import ConfigError
from engine.feed import QuoteFeed
from engine.market import TradingCalendar

if TYPE_CHECKING:
    from replay.data import MarketData


@dataclass(slots=True)
class Route:
    adapter: BrokerAdapter
    feed: QuoteFeed
    closers: tuple[Any, ...] = ()  # extra things to close (e.g. a terminal emulator)


def _setting(config: Config, table: str, settings: Any, key: str, default: Any = None) -> Any:
    if key not in settings:
        if default is None:
            raise ConfigError(f"{config.path}: key '{table}.{key}': is required")
        return default
    return settings[key]


def _path(config: Config, table: str, settings: Any, key: str) -> Path:
    value = _setting(config, table, settings, key)
    if not isinstance(value, str):
        raise ConfigError(f"{config.path}: key '{table}.{key}': expected a path string, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else config.path.parent / path


def load_sim_market(config: Config) -> MarketData:
    """The recorded day a sim route plays (``[route.sim] data``)."""
    from replay.data import load_snapshots

    return load_snapshots(_path(config, "route.sim", config.route.settings, "data"))


def build_route(
    config: Config, clock: Clock, calendar: TradingCalendar, *, market: MarketData | None = None
) -> Route:
    kind = config.route.kind
    if kind == "sim":
        return _sim_route(config, clock, calendar, market or load_sim_market(config))
    feed = build_feed(config, clock)
    if kind == "fileorder":
        from adapters.fileorder import FileOrderAdapter, FileOrderConfig

        settings = dict(config.route.settings)
        for key in ("input_dir", "output_dir", "state_dir"):  # relative to the config file, like every path
            if isinstance(settings.get(key), str):
                settings[key] = str(_path(config, "route.fileorder", settings, key))
        return Route(FileOrderAdapter(FileOrderConfig.from_settings(settings, str(config.path)), clock), feed)
    if kind == "qmt":
        from adapters.qmt import QmtBrokerAdapter, QmtRouteConfig

        route_config = QmtRouteConfig.from_settings(config.route.settings, where=str(config.path))
        return Route(QmtBrokerAdapter(route_config, clock=clock), feed)
    raise ConfigError(f"{config.path}: key 'route.kind': route {kind!r} is not available in this build")


def build_feed(config: Config, clock: Clock) -> QuoteFeed:
    """The live feed of a broker route: the terminal's own data API (``qmt`` or ``gm``)."""
    kind = config.feed.kind
    if kind == "qmt":
        from adapters.qmt import QmtFeedConfig, QmtQuoteFeed

        return QmtQuoteFeed(
            QmtFeedConfig.from_settings(config.feed.settings, where=str(config.path)), clock=clock
        )
    raise ConfigError(
        f"{config.path}: key 'feed.kind': {kind!r} cannot feed a {config.route.kind} route; use qmt or gm"
    )


def _sim_route(config: Config, clock: Clock, calendar: TradingCalendar, market: MarketData) -> Route:
    from replay.exchange import SimExchange
    from replay.paper import RecordedFeed

    table = "route.sim"
    settings = config.route.settings
    latency_ms = _setting(config, table, settings, "latency_ms", 20)
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or latency_ms < 0:
        raise ConfigError(
            f"{config.path}: key '{table}.latency_ms': expected an integer >= 0, got {latency_ms!r}"
        )
    exchange = SimExchange(
        market,
        cast(SimClock, clock),  # the exchange only schedules timers and reads the time
        calendar=calendar,
        latency_ns=latency_ms * 1_000_000,
        cash=config.account.cash,
        positions=dict(config.account.positions),
    )
    if config.feed.kind != "sim":
        raise ConfigError(
            f"{config.path}: key 'feed.kind': the sim route plays its own recorded day; use 'sim'"
        )
    feed = RecordedFeed(market, exchange, clock)
    return Route(adapter=exchange, feed=feed)
