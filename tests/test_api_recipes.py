"""The recipes of docs/API.md, each run against ``connect_replay`` on the sample day (2021-12-01), and one
pointed at a file-route config (掘金 order files written into the terminal's folder)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import zhixing
from zhixing.api import AsyncClient, OrderDenied, connect, connect_replay
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.reasons import DenialCode
from zhixing.replay.data import MarketData, load_snapshots

DAY = Path(__file__).resolve().parents[1] / "replay" / "sample_data" / "snapshots_20211201"
HOLDINGS = {"600103.SH": 100_000, "600566.SH": 40_000, "603602.SH": 30_050, "688218.SH": 6_150}
CASH = 1_000_000  # yuan


@pytest.fixture(scope="module")
def day() -> MarketData:
    return load_snapshots(DAY)


@pytest.fixture
async def client(tmp_path: Path, day: MarketData) -> AsyncIterator[AsyncClient]:
    opened = await connect_replay(
        day, cash=CASH, positions=HOLDINGS, start="09:31", end="10:15", db=tmp_path / "journal.db"
    )
    try:
        yield opened
    finally:
        await opened.close()


def held(client: AsyncClient) -> dict[str, int]:
    return {p.symbol: p.quantity for p in client.positions()}


@pytest.mark.slow
async def test_buy_to_80_percent_of_equity(tmp_path: Path, day: MarketData) -> None:
    """Recipe 1: two names to 80% of total asset together (equal weights), the rest left alone."""
    client = await connect_replay(
        day, cash=CASH, positions={"600103.SH": 20_000}, start="09:31", end="10:15", db=tmp_path / "j.db"
    )
    try:
        equity = client.cash().total_asset
        handle = await client.rebalance(
            {"600107.SH": 0.4, "600133.SH": 0.4}, liquidate_unlisted=False, end="10:10"
        )
        progress = await handle.wait()
        assert progress.done
        assert progress.filled == progress.quantity
        positions = {p.symbol: p for p in client.positions()}
        for symbol in ("600107.SH", "600133.SH"):
            assert positions[symbol].quantity % 100 == 0
            # 40% of the equity at the start, less the fee buffer and a lot, valued at the price now
            share = positions[symbol].quantity * positions[symbol].price / equity
            assert 0.38 < share <= 0.41, (symbol, share)
        assert positions["600103.SH"].quantity == 20_000  # untouched
        assert all(o.side is Side.BUY for o in client.orders())
    finally:
        await client.close()


@pytest.mark.slow
async def test_sell_30_percent(client: AsyncClient) -> None:
    """Recipe 2: sell 30% of every holding, floored to the lot grid (STAR: 200 then steps of 1)."""
    progress = await (await client.sell_fraction(0.3, end="10:00")).wait()
    assert progress.done
    assert progress.filled == progress.quantity
    assert held(client) == {
        "600103.SH": 100_000 - 30_000,
        "600566.SH": 40_000 - 12_000,
        "603602.SH": 30_050 - 9_000,  # 9,015 floored to 9,000
        "688218.SH": 6_150 - 1_845,  # STAR: 1,845 is on the grid
    }


@pytest.mark.slow
async def test_sell_small_caps(client: AsyncClient) -> None:
    """Recipe 3: sell every holding whose market cap (the script's own input) is under 5 bn yuan."""
    market_cap = {"600103.SH": 3.2e9, "600566.SH": 1.5e10, "603602.SH": 4.1e9, "688218.SH": 2.4e10}
    handle = await client.sell_where(lambda symbol: market_cap[symbol] < 5e9, end="10:00")
    await handle.wait()
    assert held(client) == {"600566.SH": 40_000, "688218.SH": 6_150}


@pytest.mark.slow
async def test_rebalance_from_the_last_signal_to_this_one(client: AsyncClient) -> None:
    """Recipe 4: the holdings are the last signal's; this signal drops two names, keeps one, adds one."""
    this_signal = {"600566.SH": 0.2, "600107.SH": 0.2}
    handle = await client.rebalance(this_signal, end="10:10")
    progress = await handle.wait()
    assert progress.done
    now = held(client)
    assert "600103.SH" not in now
    assert "603602.SH" not in now
    assert "688218.SH" not in now
    assert now["600107.SH"] > 0
    sells = [o for o in client.orders() if o.side is Side.SELL]
    buys = [o for o in client.orders() if o.side is Side.BUY]
    assert sells
    assert buys
    assert max(o.ts_created for o in sells if o.filled_quantity) <= min(o.ts_created for o in buys)


@pytest.mark.slow
async def test_liquidate(client: AsyncClient) -> None:
    """Recipe 5: sell everything."""
    await (await client.liquidate(end="10:10")).wait()
    assert held(client) == {}
    assert client.cash().total > CASH * 1000


@pytest.mark.slow
async def test_a_twap_basket_and_its_handle(client: AsyncClient) -> None:
    """Recipe 6: a TWAP basket; paused, resumed, then waited for."""
    basket = {"600107.SH": 20_000, "600133.SH": 10_000}
    handle = await client.twap(basket, Side.BUY, end="09:50")
    await client.run_until("09:35")
    handle.pause()
    paused_at = handle.progress()
    assert paused_at.paused
    assert 0 < paused_at.filled < 30_000
    await client.run_until("09:38")
    assert handle.progress().filled == paused_at.filled + paused_at.working  # nothing new sent
    handle.resume()
    progress = await handle.wait()
    assert progress.done
    assert progress.filled == 30_000
    assert {s: held(client)[s] for s in basket} == basket
    assert all(o.parent_id for o in client.orders())
    positions = {p.symbol: p for p in client.positions()}
    assert positions["600107.SH"].sellable == 0  # T+1: bought today


async def test_orders_by_volume_value_percent_and_targets(client: AsyncClient) -> None:
    buy = await client.order_volume("600103.SH", 1_050, Side.BUY)  # floored to 1,000
    assert buy.quantity == 1_000
    assert buy.side is Side.BUY
    star = await client.order_value("688218.SH", 5_000, Side.BUY, price=15.30)  # 326.79 -> 326 (200+1)
    assert (star.quantity, star.price) == (326, 15_300)
    sell = await client.order_target_volume("600566.SH", 35_000)  # sell 5,000 at the bid
    assert (sell.side, sell.quantity) == (Side.SELL, 5_000)
    tail = await client.order_target_volume("603602.SH", 0)  # the odd tail goes too
    assert (tail.side, tail.quantity) == (Side.SELL, 30_050)
    with pytest.raises(ParameterError):
        await client.order_value("600103.SH", 100, Side.BUY)  # less than a lot
    await client.run_until("09:32")
    assert buy.status is OrderStatus.FILLED
    assert {t.client_order_id for t in client.trades()} >= {buy.client_order_id}
    assert client.position("600103.SH") is not None
    assert client.cash().frozen >= 0


async def test_order_percent_and_target_percent(client: AsyncClient) -> None:
    equity = client.cash().total_asset
    order = await client.order_percent("600107.SH", 0.05, Side.BUY, price=6.40)
    assert order.quantity == (equity * 5 // 100 // 6_400) // 100 * 100
    target = await client.order_target_percent("600103.SH", 0.0)
    assert (target.side, target.quantity) == (Side.SELL, 100_000)
    with pytest.raises(ParameterError):
        await client.order_percent("600107.SH", 5, Side.BUY)  # a fraction, not a percent


async def test_a_denial_raises_with_its_code(client: AsyncClient) -> None:
    with pytest.raises(OrderDenied) as denied:
        await client.order_volume("600103.SH", 1_000, Side.BUY, price=9.99)  # far above the band
    assert denied.value.code is DenialCode.PRICE_ABOVE_LIMIT_UP
    assert denied.value.order.status is OrderStatus.DENIED


async def test_cancel_cancel_all_and_close_all(client: AsyncClient) -> None:
    resting = await client.order_volume("600103.SH", 1_000, Side.BUY, price=2.60)
    other = await client.order_volume("600107.SH", 1_000, Side.BUY, price=6.00)
    await client.run_until("09:31:05")
    assert client.cancel(resting)
    assert client.cancel_all() == [other.client_order_id]
    closing = await client.close_all()
    assert {o.symbol for o in closing} == set(HOLDINGS)
    await client.run_until("09:40")
    assert resting.status is OrderStatus.CANCELED
    assert other.status is OrderStatus.CANCELED
    assert sum(p.quantity for p in client.positions()) < sum(HOLDINGS.values())


@pytest.mark.slow
def test_the_sync_client_from_a_plain_script(tmp_path: Path) -> None:
    with zhixing.Client.replay(DAY, cash=CASH, positions=HOLDINGS, start="09:31", db=tmp_path / "j.db") as c:
        assert c.cash().total == CASH * 1000
        c.order_volume("600103.SH", 1_000, Side.BUY)
        handle = c.sell_fraction(0.3, end="10:00")
        assert handle.wait().done
        assert c.position("600566.SH") is not None
        assert [p.quantity for p in c.positions() if p.symbol == "600566.SH"] == [28_000]
        assert any(t.symbol == "600103.SH" and t.side is Side.BUY for t in c.trades())


FILE_ROUTE = """
[account]
id = "8800123456"

[store]
path = "state/zhixing.db"

[route]
kind = "fileorder"
[route.fileorder]
input_dir = "scan"
output_dir = "push"
account_id = "acct-1"
state_dir = "query_state"

[feed]
kind = "qmt"
"""


@pytest.mark.slow
async def test_the_sell_30_percent_recipe_through_a_file_route_config(tmp_path: Path) -> None:
    """The same recipe, pointed at a file-route config: 掘金 order files land in the terminal's folder
    (a terminal emulator on the sample day stands behind it; quotes are the recorded day's)."""
    from zhixing.adapters.fileorder import FileOrderAdapter
    from zhixing.adapters.fileorder.format import ORDER_HEADER, ORDER_SUFFIX
    from zhixing.engine.cli.routes import Route, _fileorder_config
    from zhixing.engine.clock import SimClock
    from zhixing.engine.config import load_config
    from zhixing.engine.market import TradingCalendar, shanghai_ns
    from zhixing.replay.data import load_snapshots
    from zhixing.replay.exchange import SimExchange
    from zhixing.replay.paper import RecordedFeed
    from zhixing.replay.terminal import TerminalEmulator

    path = tmp_path / "zhixing.toml"
    path.write_text(FILE_ROUTE, encoding="utf-8")
    (tmp_path / "scan").mkdir()
    market = load_snapshots(DAY, symbols=["600103.SH", "600566.SH"])
    clock = SimClock(shanghai_ns(market.trade_date, "09:31"))
    calendar = TradingCalendar()
    venue = SimExchange(
        market, clock, calendar=calendar, cash=10**9, positions={"600103.SH": 100_000, "600566.SH": 40_000}
    )
    terminal = TerminalEmulator(tmp_path / "scan", tmp_path / "push", "acct-1", venue, clock)
    terminal.start()
    settings = _fileorder_config(load_config(path).route.settings, path)  # the config's own section
    route = Route(adapter=FileOrderAdapter(settings, clock), feed=RecordedFeed(market, venue, clock))
    client = await connect(path, clock=clock, calendar=calendar, route=route, until="10:00")
    try:
        assert held(client) == {"600103.SH": 100_000, "600566.SH": 40_000}  # the terminal's positions
        progress = await (await client.sell_fraction(0.3, end="09:50")).wait()
        assert progress.done
        assert progress.filled == 30_000 + 12_000
        assert held(client) == {"600103.SH": 70_000, "600566.SH": 28_000}
    finally:
        await client.close()
        terminal.stop()
    files = sorted((tmp_path / "scan").rglob(f"*{ORDER_SUFFIX}"))
    assert files
    rows = []
    for file in files:
        reader = csv.DictReader(io.StringIO(file.read_text(encoding="utf-8-sig")))
        assert tuple(reader.fieldnames or ()) == ORDER_HEADER
        rows += list(reader)
    assert {r["symbol"] for r in rows} == {"SHSE.600103", "SHSE.600566"}
    assert {r["account_id"] for r in rows} == {"acct-1"}
    assert sum(int(r["volume"]) for r in rows) >= 42_000
    assert sorted(terminal.stats.sids) == sorted(r["sid"] for r in rows)


def doc_recipes() -> list[tuple[str, str]]:
    """The scripts of docs/API.md's recipes: (heading, code)."""
    text = (DAY.parents[2] / "docs" / "API.md").read_text(encoding="utf-8")
    recipes = text.split("## Recipes", 1)[1]
    out = []
    for section in recipes.split("\n### ")[1:]:
        heading, _, body = section.partition("\n")
        code = body.split("```python\n", 1)[1].split("```", 1)[0]
        out.append((heading.strip(), code))
    return out


def test_the_docs_have_the_six_recipes_and_one_more() -> None:
    assert [h for h, _ in doc_recipes()] == [
        "Buy to 80% of equity",
        "Sell 30%",
        "Sell small caps",
        "Rebalance from the last signal to this one",
        "Liquidate",
        "A TWAP basket",
        "One order at a time, asyncio",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("heading", "code"), doc_recipes(), ids=[h for h, _ in doc_recipes()])
def test_each_script_of_the_docs_runs_as_written(
    heading: str, code: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DAY.parents[2])  # the scripts name the sample day relative to the repository
    exec(compile(code, f"docs/API.md: {heading}", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert printed.strip()
    if heading == "Sell 30%":
        assert "'600103.SH': 70000, '600566.SH': 28000, '603602.SH': 21050, '688218.SH': 4305" in printed
    if heading == "Sell small caps":
        assert "{'600566.SH': 40000, '688218.SH': 6150}" in printed
    if heading == "Liquidate":
        assert printed.splitlines()[-1].startswith("[] Cash(")  # nothing held at the end
    if heading == "One order at a time, asyncio":
        assert "denied: price_above_limit_up" in printed


@pytest.mark.slow
async def test_connect_refuses_a_journal_that_an_engine_holds(tmp_path: Path) -> None:
    from zhixing.engine.instance_lock import AlreadyRunning, InstanceLock

    path = tmp_path / "zhixing.toml"
    path.write_text(FILE_ROUTE, encoding="utf-8")
    (tmp_path / "state").mkdir()
    with InstanceLock.for_store(tmp_path / "state" / "zhixing.db"), pytest.raises(AlreadyRunning):
        await connect(path)


SIM_ROUTE = """
[account]
id = "8800123456"
cash_yuan = 1000000
positions = {{ "600103.SH" = 100000, "688218.SH" = 6150 }}

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"
"""


@pytest.mark.slow
def test_a_script_connects_to_a_sim_route_config_and_runs_a_recipe(tmp_path: Path) -> None:
    """``Client.connect(config)`` with nothing but the config: a sim route's recorded day, reconciled,
    journaled in the config's store, and the lock released at close."""
    from zhixing.engine.instance_lock import InstanceLock

    path = tmp_path / "zhixing.toml"
    path.write_text(SIM_ROUTE.format(data=DAY.as_posix()), encoding="utf-8")
    with zhixing.Client.connect(path, start="09:31", until="10:00") as zx:
        assert {p.symbol: p.sellable for p in zx.positions()} == {"600103.SH": 100_000, "688218.SH": 6_150}
        progress = zx.sell_fraction(0.3, end="09:50").wait()
        assert progress.done
        assert {p.symbol: p.quantity for p in zx.positions()} == {"600103.SH": 70_000, "688218.SH": 4_305}
        with pytest.raises(OrderDenied) as denied:
            zx.order_volume("600103.SH", 1_000, Side.BUY, price=9.99)
        assert denied.value.code is DenialCode.PRICE_ABOVE_LIMIT_UP
    assert (tmp_path / "state" / "zhixing.db").exists()
    with InstanceLock.for_store(tmp_path / "state" / "zhixing.db"):
        pass  # released
