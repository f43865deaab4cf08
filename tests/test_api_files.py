"""The seed's own order files and the day's trades through the library (issue 15): ``submit_file`` takes a
掘金 order or cancel file by ``zhixing submit``'s rules, checked whole before anything is sent; ``trades()``
after a reconnect to the same journal lists the day's earlier fills; ``order_*(..., tag=)`` keeps a user's
own id on the order, ``orders(tag=)`` filters by it and ``zhixing status`` shows it.

On the sample day (2021-12-01) 600258.SH trades 23.03..23.39 from 09:30 (prev close 23.20), 600103.SH a
few yuan with a full book, 600566.SH 18.00..18.28 (prev close 18.09, limit down 16.28).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.test_api_recipes import CASH, DAY, HOLDINGS, SIM_ROUTE
from zhixing.api import AsyncClient, connect_replay
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.status import collect_status
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.sync import Client

ACCOUNT = "8800123456"
HEADER = "sid,account_id,symbol,volume,order_type,order_business(order_biz),price,comment\n"


@pytest.fixture(scope="module")
def day() -> MarketData:
    return load_snapshots(DAY)


@pytest.fixture
async def client(tmp_path: Path, day: MarketData) -> AsyncIterator[AsyncClient]:
    opened = await _open(day, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def _open(day: MarketData, tmp_path: Path, start: str = "09:31") -> AsyncClient:
    return await connect_replay(
        day,
        cash=CASH,
        positions=HOLDINGS,
        start=start,
        end="10:15",
        db=tmp_path / "journal.db",
        account_id=ACCOUNT,
    )


def _file(tmp_path: Path, name: str, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + "".join(f"{r}\r\n" for r in rows), encoding="utf-8")
    return path


async def test_an_order_file_with_a_limit_and_an_sse_market_row_fills(
    client: AsyncClient, tmp_path: Path
) -> None:
    path = _file(
        tmp_path,
        "signal.order.csv",
        f"s1,{ACCOUNT},SHSE.600258,1000,1,1,23.50,limit buy",
        f"s2,{ACCOUNT},SHSE.600103,1000,24,1,0,best five then cancel",
    )
    sent = await client.submit_file(path)
    assert [(s.row, s.sid, s.action) for s in sent] == [(2, "s1", "order"), (3, "s2", "order")]
    limit, market = (s.order for s in sent)
    assert (limit.symbol, limit.side, limit.price, limit.order_type) == (
        "600258.SH",
        Side.BUY,
        23_500,
        OrderType.LIMIT,
    )
    assert (market.symbol, market.order_type, market.tag) == ("600103.SH", OrderType.B5TC, "gm:s2")
    await client.run_until("09:35")
    assert [o.status for o in (limit, market)] == [OrderStatus.FILLED, OrderStatus.FILLED]
    bought = {t.symbol: 0 for t in client.trades()}
    for t in client.trades():
        bought[t.symbol] += t.quantity
    assert bought == {"600258.SH": 1000, "600103.SH": 1000}
    assert client.orders(tag="gm:s1") == [limit]


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (f"s2,{ACCOUNT},SHSE.600103,1000,22,1,0,", "order_type", "not an order kind SH takes"),
        ("s2,8800999999,SHSE.600103,1000,1,1,5.00,", "account_id", "not this session's account"),
        (f"s2,{ACCOUNT},SHSE.600103,150,1,1,5.00,", "volume", "not a buy size"),
        (f"s2,{ACCOUNT},SHSE.600566,50000,1,2,18.00,", "volume", "sellable"),  # holds 40,000
        (f"s2,{ACCOUNT},SHSE.600566,1000,1,2,15.00,", "price", "outside today's limits"),
    ],
)
async def test_a_bad_row_sends_nothing_and_names_row_and_field(
    client: AsyncClient, tmp_path: Path, bad: str, field: str, message: str
) -> None:
    path = _file(tmp_path, "signal.order.csv", f"s1,{ACCOUNT},SHSE.600258,1000,1,1,23.50,", bad)
    with pytest.raises(InputError, match=message) as caught:
        await client.submit_file(path)
    assert (caught.value.row, caught.value.field) == (3, field)
    assert client.orders() == []


async def test_a_cancel_file_cancels_by_sid(client: AsyncClient, tmp_path: Path) -> None:
    orders = _file(tmp_path, "buy.order.csv", f"s1,{ACCOUNT},SHSE.600566,1000,1,1,16.50,below the market")
    (working,) = await client.submit_file(orders)
    await client.run_until("09:32")
    assert working.order.status is OrderStatus.ACCEPTED
    cancel = _file(tmp_path, "buy.cancel_order.csv", "s1,changed my mind", header="sid,comment\n")
    (cancelled,) = await client.submit_file(cancel)
    assert (cancelled.action, cancelled.order) == ("cancel", working.order)
    await client.run_until("09:33")
    assert working.order.status is OrderStatus.CANCELED
    unknown = _file(tmp_path, "other.cancel_order.csv", "nope,", header="sid,comment\n")
    with pytest.raises(InputError, match="no order of this account has sid") as caught:
        await client.submit_file(unknown)
    assert (caught.value.row, caught.value.field) == (2, "sid")


@pytest.mark.parametrize(
    ("header", "row", "kind", "call"),
    [
        ("symbol,weight\n", "600103.SH,0.1", "a targets file", "client.rebalance(targets)"),
        ("symbol,side,quantity\n", "600103.SH,buy,100", "an orders file", "client.algo(algo, orders)"),
        ("symbol,quantity\n", "600103.SH,100", "a positions file", "connect_replay(positions=...)"),
    ],
)
async def test_another_kind_of_file_is_refused_naming_it_and_its_call(
    client: AsyncClient, tmp_path: Path, header: str, row: str, kind: str, call: str
) -> None:
    path = _file(tmp_path, "mine.csv", row, header=header)
    with pytest.raises(InputError) as caught:
        await client.submit_file(path)
    assert f"this is {kind}" in str(caught.value)
    assert call in str(caught.value)
    assert client.orders() == []


async def test_trades_after_a_reconnect_to_the_same_journal_show_the_earlier_fills(
    day: MarketData, tmp_path: Path
) -> None:
    first = await _open(day, tmp_path)
    try:
        order = await first.order_volume("600258.SH", 1000, Side.BUY, price=23.50)
        await first.run_until("09:35")
        earlier = first.trades()
    finally:
        await first.close()
    assert order.status is OrderStatus.FILLED
    assert sum(t.quantity for t in earlier) == 1000
    again = await _open(day, tmp_path, start="09:40")
    try:
        assert again.trades() == earlier
        more = await again.order_volume("600103.SH", 1000, Side.BUY)
        await again.run_until("09:45")
        later = [t for t in again.trades() if t.client_order_id == more.client_order_id]
        assert sum(t.quantity for t in later) == 1000
        assert again.trades() == [*earlier, *later]
    finally:
        await again.close()


async def test_a_tag_is_kept_on_the_order_filtered_by_and_shown_in_status(
    client: AsyncClient, tmp_path: Path
) -> None:
    mine = await client.order_volume("600566.SH", 1000, Side.BUY, price=16.50, tag="signal-7")
    other = await client.order_target_volume("600103.SH", 101_000, tag="signal-8")
    await client.order_volume("600566.SH", 500, Side.SELL, price=18.50)
    assert (mine.tag, other.tag) == ("signal-7", "signal-8")
    assert client.orders(tag="signal-7") == [mine]
    assert len(client.orders()) == 3
    with pytest.raises(ParameterError, match="a 掘金 file's sids"):
        await client.order_volume("600566.SH", 100, Side.BUY, price=16.50, tag="gm:s1")
    await client.run_until("09:32")
    working = {
        o["client_order_id"]: o["tag"] for o in collect_status(tmp_path / "journal.db")["working_orders"]
    }
    assert working[mine.client_order_id] == "signal-7"


def test_a_plain_script_submits_a_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "signal.order.csv", f"s1,{ACCOUNT},SHSE.600258,1000,1,1,23.50,")
    with Client.replay(DAY, cash=CASH, start="09:31", account_id=ACCOUNT, symbols=["600258.SH"]) as client:
        (sent,) = client.submit_file(path)
        client.run_until("09:35")
        assert client.orders(tag="gm:s1")[0].status is OrderStatus.FILLED
        assert sent.sid == "s1"


@pytest.mark.slow
def test_a_sim_route_config_submits_a_file_and_a_reconnect_lists_its_trades(tmp_path: Path) -> None:
    """Through ``Client.connect(config)`` (the config's ``[account] id`` checks the file), then the same
    config again: the second session's ``trades()`` are the first's fills, read from the journal."""
    path = tmp_path / "zhixing.toml"
    path.write_text(SIM_ROUTE.format(data=DAY.as_posix()), encoding="utf-8")
    signal = _file(tmp_path, "signal.order.csv", f"s1,{ACCOUNT},SHSE.600103,1000,1,2,2.70,sell")
    with Client.connect(path, start="09:31", until="10:00") as zx:
        (sent,) = zx.submit_file(signal)
        zx.run_until("09:40")
        assert sent.order.status is OrderStatus.FILLED
        earlier = zx.trades()
    assert sum(t.quantity for t in earlier) == 1000
    with Client.connect(path, start="09:45", until="10:00") as again:
        assert again.trades() == earlier
        assert again.orders(tag="gm:s1")[0].filled_quantity == 1000
