"""Turn a config's route and feed tables into the adapters that implement them (composition root).

``sim`` routes orders to the simulated exchange over one recorded day (``[route.sim] data``) and, with
``feed.kind = "sim"``, feeds quotes recorded for that day. The live routes (``fileorder``, ``qmt``,
``gm``) are imported only when asked for, so a machine without a vendor package can still run the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from engine.broker import BrokerAdapter
from engine.clock import Clock, LiveClock, SimClock
from engine.config import Config
from engine.errors import BrokerError, ConfigError
from engine.feed import QuoteFeed
from engine.market import TradingCalendar

if TYPE_CHECKING:
    from replay.data import MarketData

T = TypeVar("T")


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
    config: Config,
    clock: Clock,
    calendar: TradingCalendar,
    *,
    market: MarketData | None = None,
    gm_bridge: Any = None,
) -> Route:
    """The adapter and feed ``config`` names. The gm route needs the bridge ``run_route`` provides."""
    kind = config.route.kind
    if kind == "sim":
        return _sim_route(config, clock, calendar, market or load_sim_market(config))
    if kind == "gm":
        return _gm_route(config, clock, gm_bridge)
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


def check_route(config: Config) -> None:
    """Validate the route's and feed's own settings without connecting anything."""
    if config.route.kind == "gm":
        from adapters.gm import GmFeedConfig, GmRouteConfig

        GmRouteConfig.from_settings(config.route.settings, base=config.path.parent, where=str(config.path))
        if config.feed.kind == "gm":
            GmFeedConfig.from_settings(config.feed.settings, where=str(config.path))
        return
    build_route(config, LiveClock(), TradingCalendar())


def run_route(config: Config, main: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(gm_bridge)`` to completion. Most routes: ``asyncio.run``. The 掘金 route: gm's ``run()``
    must own the main thread, so the engine's loop runs on a worker thread beside it."""
    if config.route.kind != "gm":
        return asyncio.run(main(None))
    from adapters.gm import GmBridge, GmRouteConfig, run_live

    api = _gm_api(config)
    route_config = GmRouteConfig.from_settings(
        config.route.settings, base=config.path.parent, where=str(config.path)
    )
    results: list[T] = []

    async def engine(bridge: GmBridge) -> None:
        results.append(await main(bridge))

    run_live(api, route_config, engine, bridge=GmBridge())
    if not results:
        raise BrokerError("gm: the terminal's run() ended before the engine finished")
    return results[0]


def _gm_api(config: Config) -> Any:
    try:
        import gm.api  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(
            f"{config.path}: key 'route.kind': the gm route needs 掘金's Python SDK: pip install --no-deps gm"
        ) from None
    return gm.api


def _gm_route(config: Config, clock: Clock, bridge: Any) -> Route:
    from adapters.gm import GmBrokerAdapter, GmFeedConfig, GmQuoteFeed, GmRouteConfig

    if bridge is None:
        raise ConfigError(f"{config.path}: the gm route runs under 掘金's run(); start it through run_route")
    api = _gm_api(config)
    route_config = GmRouteConfig.from_settings(
        config.route.settings, base=config.path.parent, where=str(config.path)
    )
    adapter = GmBrokerAdapter(route_config, clock, api=api, bridge=bridge)
    if config.feed.kind == "gm":
        feed_config = GmFeedConfig.from_settings(config.feed.settings, where=str(config.path))
        return Route(adapter, GmQuoteFeed(feed_config, clock, api=api, bridge=bridge))
    return Route(adapter, build_feed(config, clock))


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
