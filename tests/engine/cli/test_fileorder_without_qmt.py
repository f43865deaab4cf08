"""The file route without QMT: fed by 掘金 (a feed-only gm session under gm's ``run()``) or by no feed at
all. What each route may be fed by is one table (``engine.config.ROUTE_FEEDS``); every refusal lists it,
and ``config check`` and ``run`` share the loader, so what one accepts the other accepts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.gm_fake import FakeGmApi, instrument, tick
from zhixing.adapters.fileorder import FileOrderAdapter
from zhixing.adapters.gm import GmQuoteFeed
from zhixing.engine.cli import main, routes
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import ConfigError, FeedError
from zhixing.engine.events import OrderFilled, Quote
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.no_feed import NoFeed
from zhixing.engine.orders import Order
from zhixing.replay.data import load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.terminal import TerminalEmulator, TerminalFaults

SNAPSHOTS = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600103.SH"  # 2.78 / 2.79 around 09:31
ACCOUNT = "acct-1"

BASE = f"""
[account]
id = "{ACCOUNT}"
[store]
path = "z.db"
[route]
kind = "fileorder"
[route.fileorder]
input_dir = "scan"
output_dir = "push"
account_id = "{ACCOUNT}"
state_dir = "state"
poll_interval_ns = 250000000
"""
GM_FEED = '[feed]\nkind = "gm"\n[feed.gm]\nstrategy_id = "feed-1"\ntoken = "env:GM_TOKEN"\n'
EXECUTE_JOB = '[[jobs]]\nname = "rebalance"\ncron = "35 9 * * 1-5"\nkind = "execute"\ntargets = "t.csv"\n'
SIGNAL_JOB = (
    '[[jobs]]\nname = "signal"\ncron = "0 9 * * 1-5"\nkind = "signal"\ncommand = ["python", "s.py"]\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zhixing.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("feed", "says"),
    [
        ("", "a fileorder route has no feed of its own: set [feed] kind = 'qmt' or 'gm' or 'none'"),
        (
            '[feed]\nkind = "sim"\n',
            "'sim' cannot feed a fileorder route; a fileorder route takes 'qmt' or 'gm'",
        ),
    ],
)
def test_a_file_route_without_a_usable_feed_is_told_every_feed_it_takes(
    tmp_path: Path, feed: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=r"key 'feed\.kind'") as caught:
        routes.load_checked(write(tmp_path, feed))
    assert says in str(caught.value)


def test_every_route_is_told_the_feeds_it_takes(tmp_path: Path) -> None:
    path = tmp_path / "q.toml"
    path.write_text(
        '[account]\nid = "1"\n[store]\npath = "z.db"\n[route]\nkind = "qmt"\n[route.qmt]\npath = "x"\n'
        'account_id = "1"\n[feed]\nkind = "gm"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"'gm' cannot feed a qmt route; a qmt route takes 'qmt'$"):
        routes.load_checked(path)


def test_a_gm_feed_of_the_file_route_needs_its_own_strategy_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[feed]\nkind = "gm"\n')
    assert main(["config", "check", str(path)]) == 2  # config check refuses it as run would
    assert "feed.gm.strategy_id': is required when 掘金 feeds a fileorder route" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"feed\.gm\.strategy_id"):
        routes.load_checked(path)


def test_the_file_route_with_a_gm_feed_passes_config_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GM_TOKEN", "token-feed-1")
    path = write(tmp_path, GM_FEED)
    assert main(["config", "check", str(path)]) == 0
    config = routes.load_checked(path)
    assert (config.route.kind, config.feed.kind) == ("fileorder", "gm")


def test_no_feed_refuses_an_execute_job_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[feed]\nkind = "none"\n' + SIGNAL_JOB + EXECUTE_JOB)
    (tmp_path / "t.csv").write_text("symbol,weight\n600103.SH,0.1\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "key 'jobs[1].kind'" in err
    assert "job 'rebalance' is an execute job" in err
    assert "set [feed] kind = 'qmt' or 'gm'" in err


async def test_no_feed_runs_the_file_route_and_refuses_prices_it_does_not_have(tmp_path: Path) -> None:
    path = write(tmp_path, '[feed]\nkind = "none"\n[feed.none]\n' + SIGNAL_JOB)
    assert main(["config", "check", str(path)]) == 0
    config = routes.load_checked(path)
    route = routes.build_route(config, SimClock(0), TradingCalendar())
    assert isinstance(route.adapter, FileOrderAdapter)
    assert isinstance(route.feed, NoFeed)
    await route.feed.subscribe([SYMBOL])  # accepted: nothing will come
    with pytest.raises(FeedError, match=r"600103\.SH: \[feed\] kind = 'none' gives no prev close"):
        await route.feed.reference(SYMBOL)


def test_a_file_route_fed_by_gm_trades_through_the_terminal_under_gms_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gm's ``run()`` (the fake's) owns the main thread for a feed-only session; on the engine's worker
    thread the 掘金 feed delivers a tick, an order priced at its ask is written as a file, the emulated
    terminal scanning the folder fills it on the recorded day, and the file route reads the fill back."""
    monkeypatch.setenv("GM_TOKEN", "token-feed-1")
    api = FakeGmApi(ACCOUNT)
    api.instruments["SHSE.600103"] = instrument("SHSE.600103", 2.72, upper=2.99, lower=2.45)
    monkeypatch.setattr(routes, "_gm_api", lambda config: api)
    (tmp_path / "scan").mkdir()
    config = routes.load_checked(write(tmp_path, GM_FEED))
    market = load_snapshots(SNAPSHOTS, symbols=[SYMBOL])

    async def engine(bridge: Any) -> tuple[int, int, list[int]]:
        clock = SimClock(shanghai_ns(market.trade_date, "09:31"))
        route = routes.build_route(config, clock, TradingCalendar(), gm_bridge=bridge)
        assert isinstance(route.adapter, FileOrderAdapter)
        assert isinstance(route.feed, GmQuoteFeed)
        venue = SimExchange(market, clock, calendar=TradingCalendar(), latency_ns=20_000_000, cash=10**10)
        terminal = TerminalEmulator(
            tmp_path / "scan",
            tmp_path / "push",
            ACCOUNT,
            venue,
            clock,
            faults=TerminalFaults(scan_interval_ns=500_000_000),
        )
        terminal.start()
        quotes: list[Quote] = []
        arrived = asyncio.Event()
        route.feed.bind(lambda quote: (quotes.append(quote), arrived.set()))
        await route.feed.connect()
        await route.feed.subscribe([SYMBOL])
        reference = await route.feed.reference(SYMBOL)
        api.push_tick(tick("SHSE.600103", 2.78, 2.78, 2.79))
        await asyncio.wait_for(arrived.wait(), timeout=10)  # a safety bound, not a timing assumption
        fills: list[int] = []
        route.adapter.bind(
            lambda event: fills.append(event.quantity) if isinstance(event, OrderFilled) else None
        )
        await route.adapter.connect()
        order = Order(
            client_order_id="Z1", symbol=SYMBOL, side=Side.BUY, price=quotes[0].ask_price, quantity=1_000
        )
        order.status = OrderStatus.SUBMITTED
        await route.adapter.submit(order)
        end = shanghai_ns(market.trade_date, "09:32")
        while clock.step(until_ns=end):
            pass
        terminal.stop()
        await route.adapter.close()
        await route.feed.close()
        return reference.prev_close, quotes[0].ask_price, fills

    prev_close, ask, fills = routes.run_route(config, engine)
    assert (prev_close, ask) == (2720, 2790)
    assert sum(fills) == 1_000
    assert api.run_args["strategy_id"] == "feed-1"  # the feed's own session drove gm's run()
    assert api.run_args["token_set"] is True
    (written,) = (tmp_path / "scan").glob("*.order.csv")
    assert "SHSE.600103" in written.read_text(encoding="utf-8-sig")


@pytest.mark.slow
def test_zhixing_account_values_the_file_route_without_any_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cash, market value and total asset are the terminal's own ``cash.csv`` figures (its ``market_value``
    and ``nav``), positions its ``position.csv``: the account view needs no quotes."""
    from tests.adapters.fileorder.test_fileorder_route import ACCOUNT as TERMINAL_ACCOUNT
    from tests.engine.cli.test_account_cmd import CONFIG, a_day_of_file_orders

    asyncio.run(a_day_of_file_orders(tmp_path, load_snapshots(SNAPSHOTS, symbols=[SYMBOL])))
    config = tmp_path / "zhixing.toml"
    config.write_text(
        CONFIG.format(account=TERMINAL_ACCOUNT).replace('kind = "qmt"', 'kind = "none"'), encoding="utf-8"
    )
    capsys.readouterr()
    assert main(["account", str(config), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert float(view["market_value"]) > 0  # 20,000 shares valued by the terminal, not by a feed
    assert float(view["total_asset"]) == pytest.approx(float(view["cash"]) + float(view["market_value"]))
    (position,) = view["positions"]
    assert (position["symbol"], position["quantity"]) == (SYMBOL, 20_000)


@pytest.mark.parametrize("command", ["plan", "rebalance"])
def test_no_feed_refuses_a_plan_or_rebalance_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = write(tmp_path, '[feed]\nkind = "none"\n')
    targets = tmp_path / "t.csv"
    targets.write_text("symbol,weight\n600103.SH,0.1\n", encoding="utf-8")
    assert main([command, str(targets), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"zhixing {command} plans at live prices: [feed] kind = 'none' gives no prev close" in err
    assert not (tmp_path / "state").exists()  # nothing was opened


async def test_the_api_refuses_a_file_route_fed_by_gm_naming_the_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zhixing

    monkeypatch.setenv("GM_TOKEN", "token-feed-1")
    with pytest.raises(ConfigError, match=r"key 'feed\.kind': 'gm' runs under gm's run\(\); use zhixing run"):
        await zhixing.connect(write(tmp_path, GM_FEED))
