"""Turn a config's route and feed tables into the adapters that implement them (composition root).

``sim`` routes orders to the simulated exchange over one recorded day (``[route.sim] data``) and, with
``feed.kind = "sim"``, feeds quotes recorded for that day. The live routes (``fileorder``, ``qmt``,
``gm``) are imported only when asked for, so a machine without a vendor package can still run the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from zhixing.engine.broker import BrokerAdapter
from zhixing.engine.clock import Clock, LiveClock, SimClock
from zhixing.engine.config import ROUTE_FEEDS, Config, SettingsCheck, load_config
from zhixing.engine.errors import BrokerError, ConfigError, ParameterError
from zhixing.engine.feed import QuoteFeed
from zhixing.engine.market import MarketRules, TradingCalendar

if TYPE_CHECKING:
    from zhixing.replay.data import MarketData

T = TypeVar("T")


@dataclass(slots=True)
class Route:
    adapter: BrokerAdapter
    feed: QuoteFeed
    closers: tuple[Any, ...] = ()  # extra things to close (e.g. a terminal emulator)


def load_checked(path: Path | str, *, adapter: str | None = None) -> Config:
    """The config loader of every command (``config check``, ``run``, the ``--config`` one-shots):
    ``engine.config.load_config`` with the adapters' checks of their own tables, so whatever ``config
    check`` accepts the others accept, and the other way round."""
    config = load_config(path, adapter=adapter, checks=SETTINGS_CHECKS, algo_check=_algo_check)
    if config.feed.kind == "gm" and config.route.kind != "gm":
        _feed_only_gm_session(config)
    return config


def _feed_only_gm_session(config: Config) -> None:
    """A gm feed of another route starts gm's ``run()`` itself: ``[feed.gm]`` names its strategy."""
    feed = _gm_feed_config(config.feed.settings, config.path)
    if not feed.strategy_id.strip():
        raise ConfigError(
            f"{config.path}: key 'feed.gm.strategy_id': is required when 掘金 feeds a {config.route.kind} "
            "route (a feed-only gm session: the 掘金 strategy id, with feed.gm.token = 'env:NAME')"
        )


def _algo_check(algo: str, params: Mapping[str, str]) -> None:
    """An execute job's algorithm and its parameters, parsed as the job will parse them at its time."""
    from zhixing.algos.registry import ALGOS

    if algo not in ALGOS:
        raise ParameterError(
            f"unknown algo {algo!r}; known: {', '.join(sorted(ALGOS))}", name="algo", value=algo
        )
    try:
        ALGOS[algo].params_type.parse(dict(params), algo=algo)
    except ParameterError:
        raise
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def _fileorder_config(settings: Any, path: Path) -> Any:
    from zhixing.adapters.fileorder import FileOrderConfig

    resolved = dict(settings)
    for key in ("input_dir", "output_dir", "state_dir"):  # relative to the config file, like every path
        if isinstance(resolved.get(key), str):
            resolved[key] = str(_relative(path, resolved[key]))
    return FileOrderConfig.from_settings(resolved, str(path))


def _qmt_route_config(settings: Any, path: Path) -> Any:
    from zhixing.adapters.qmt import QmtRouteConfig

    return QmtRouteConfig.from_settings(settings, where=str(path))


def _qmt_feed_config(settings: Any, path: Path) -> Any:
    from zhixing.adapters.qmt import QmtFeedConfig

    return QmtFeedConfig.from_settings(settings, where=str(path))


def _gm_route_config(settings: Any, path: Path) -> Any:
    from zhixing.adapters.gm import GmRouteConfig

    return GmRouteConfig.from_settings(settings, base=path.parent, where=str(path))


def _gm_feed_config(settings: Any, path: Path) -> Any:
    from zhixing.adapters.gm import GmFeedConfig

    return GmFeedConfig.from_settings(settings, where=str(path))


SETTINGS_CHECKS: dict[str, SettingsCheck] = {
    "route.fileorder": _fileorder_config,
    "route.qmt": _qmt_route_config,
    "route.gm": _gm_route_config,
    "feed.qmt": _qmt_feed_config,
    "feed.gm": _gm_feed_config,
}
"""Each adapter's settings from its table: the check ``load_checked`` runs, and what ``build_route`` builds
with (one conversion, so a table the check accepts is the one the route is built from)."""


def _relative(path: Path, value: str) -> Path:
    found = Path(value).expanduser()
    return found if found.is_absolute() else path.parent / found


def load_sim_market(config: Config) -> MarketData:
    """The recorded day a sim route plays (``[route.sim] data``)."""
    from zhixing.replay.data import load_snapshots

    return load_snapshots(_relative(config.path, config.route.settings["data"]))  # checked at load


def build_route(
    config: Config,
    clock: Clock,
    calendar: TradingCalendar,
    *,
    market: MarketData | None = None,
    gm_bridge: Any = None,
    rules: MarketRules | None = None,
) -> Route:
    """The adapter and feed ``config`` names. The gm route needs the bridge ``run_route`` provides.
    ``rules``: the dated market rules a sim route's exchange charges and bands by (the run's; default
    the config's ``[market]``)."""
    kind = config.route.kind
    if kind == "sim":
        rules = rules if rules is not None else config.market.rules(calendar)
        return _sim_route(config, clock, calendar, market or load_sim_market(config), rules)
    if kind == "gm":
        return _gm_route(config, clock, gm_bridge)
    feed = build_feed(config, clock, gm_bridge)
    if kind == "fileorder":
        from zhixing.adapters.fileorder import FileOrderAdapter

        return Route(FileOrderAdapter(_fileorder_config(config.route.settings, config.path), clock), feed)
    if kind == "qmt":
        from zhixing.adapters.qmt import QmtBrokerAdapter

        return Route(
            QmtBrokerAdapter(_qmt_route_config(config.route.settings, config.path), clock=clock), feed
        )
    raise ConfigError(f"{config.path}: key 'route.kind': route {kind!r} is not available in this build")


def check_route(config: Config) -> None:
    """Validate the route's and feed's own settings without connecting anything."""
    if "gm" in (config.route.kind, config.feed.kind):  # checked at load; building needs gm's run()
        return
    build_route(config, LiveClock(), TradingCalendar())


def run_route(config: Config, main: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(gm_bridge)`` to completion. Most routes: ``asyncio.run``. The 掘金 route or feed: gm's
    ``run()`` must own the main thread, so the engine's loop runs on a worker thread beside it; a gm feed of
    another route runs a feed-only session under ``[feed.gm]``'s strategy and token."""
    if "gm" not in (config.route.kind, config.feed.kind):
        return asyncio.run(main(None))
    from zhixing.adapters.gm import GmBridge, run_live

    api = _gm_api(config)
    session = (
        _gm_route_config(config.route.settings, config.path)
        if config.route.kind == "gm"
        else _gm_feed_config(config.feed.settings, config.path)
    )
    results: list[T] = []

    async def engine(bridge: GmBridge) -> None:
        results.append(await main(bridge))

    run_live(api, session, engine, bridge=GmBridge())
    if not results:
        raise BrokerError("gm: the terminal's run() ended before the engine finished")
    return results[0]


def _gm_api(config: Config) -> Any:
    try:
        import gm.api  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        key = "route.kind" if config.route.kind == "gm" else "feed.kind"
        raise ConfigError(
            f"{config.path}: key '{key}': 掘金 (gm) needs its Python SDK: pip install --no-deps gm"
        ) from None
    return gm.api


def _gm_route(config: Config, clock: Clock, bridge: Any) -> Route:
    from zhixing.adapters.gm import GmBrokerAdapter

    if bridge is None:
        raise ConfigError(f"{config.path}: the gm route runs under 掘金's run(); start it through run_route")
    route_config = _gm_route_config(config.route.settings, config.path)
    adapter = GmBrokerAdapter(route_config, clock, api=_gm_api(config), bridge=bridge)
    return Route(adapter, build_feed(config, clock, bridge))


def build_feed(config: Config, clock: Clock, gm_bridge: Any = None) -> QuoteFeed:
    """The live feed of a broker route (``engine.config.ROUTE_FEEDS`` says which the route may take):
    QMT's or 掘金's data API (the latter over the bridge ``run_route`` provides), or none."""
    kind = config.feed.kind
    if kind == "qmt":
        from zhixing.adapters.qmt import QmtQuoteFeed

        return QmtQuoteFeed(_qmt_feed_config(config.feed.settings, config.path), clock=clock)
    if kind == "gm":
        from zhixing.adapters.gm import GmQuoteFeed

        if gm_bridge is None:
            raise ConfigError(
                f"{config.path}: the gm feed runs under 掘金's run(); start it through run_route"
            )
        feed_config = _gm_feed_config(config.feed.settings, config.path)
        return GmQuoteFeed(feed_config, clock, api=_gm_api(config), bridge=gm_bridge)
    if kind == "none":
        from zhixing.engine.no_feed import NoFeed

        return NoFeed()
    allowed = " or ".join(f"{k!r}" for k in ROUTE_FEEDS[config.route.kind])
    raise ConfigError(
        f"{config.path}: key 'feed.kind': {kind!r} cannot feed a {config.route.kind} route; "
        f"a {config.route.kind} route takes {allowed}"
    )


def _sim_route(
    config: Config, clock: Clock, calendar: TradingCalendar, market: MarketData, rules: MarketRules
) -> Route:
    from zhixing.replay.exchange import SimExchange
    from zhixing.replay.paper import RecordedFeed

    latency_ms: int = config.route.settings.get("latency_ms", 20)  # an int >= 0, checked at load
    exchange = SimExchange(
        market,
        cast(SimClock, clock),  # the exchange only schedules timers and reads the time
        calendar=calendar,
        rules=rules,  # the recorded day's fees and bands, for the statuses of ``[market] status_file``
        latency_ns=latency_ms * 1_000_000,
        cash=config.account.cash,
        positions=dict(config.account.positions),
    )
    feed = RecordedFeed(market, exchange, clock)
    return Route(adapter=exchange, feed=feed)
