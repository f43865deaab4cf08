"""Market orders through the library (issue 15): ``order_*(..., order_type=...)`` on the sample day.

A market order's ``price`` is its protection bound: given, it is sent as is; omitted, the market rules bound
it at the day's limit-up (a buy, what its cash is reserved at) or limit-down. The exchange prices it from
the book by its kind; a kind the symbol's exchange does not take, or a STAR market order without a
protection price, is denied with its code before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_api_recipes import CASH, DAY, HOLDINGS
from zhixing.api import AsyncClient, OrderDenied, connect_replay
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.reasons import DenialCode
from zhixing.replay.data import MarketData, load_snapshots


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


async def test_a_best_five_market_buy_fills_from_the_book_bounded_at_limit_up(client: AsyncClient) -> None:
    order = await client.order_volume("600103.SH", 1_000, Side.BUY, order_type="b5tc")
    assert order.order_type is OrderType.B5TC
    await client.run_until("09:32")
    assert order.status is OrderStatus.FILLED
    fills = [t for t in client.trades() if t.client_order_id == order.client_order_id]
    assert sum(t.quantity for t in fills) == 1_000
    assert all(0 < t.price <= order.price for t in fills)  # never beyond the bound it was sent with


async def test_a_market_sell_by_target_and_the_kind_as_an_enum(client: AsyncClient) -> None:
    order = await client.order_target_volume("600566.SH", 35_000, order_type=OrderType.B5TL)
    assert (order.side, order.quantity, order.order_type) == (Side.SELL, 5_000, OrderType.B5TL)
    await client.run_until("09:33")
    assert order.filled_quantity > 0


async def test_a_kind_the_exchange_does_not_take_is_denied_with_its_code(client: AsyncClient) -> None:
    with pytest.raises(OrderDenied) as denied:
        await client.order_volume("600103.SH", 1_000, Side.BUY, order_type="fak")  # SZSE only
    assert denied.value.code is DenialCode.ORDER_TYPE_NOT_ACCEPTED


async def test_a_star_market_order_needs_its_protection_price(client: AsyncClient) -> None:
    with pytest.raises(OrderDenied) as denied:
        await client.order_volume("688218.SH", 200, Side.BUY, order_type="b5tc")
    assert denied.value.code is DenialCode.PROTECTION_PRICE_REQUIRED
    protected = await client.order_volume("688218.SH", 200, Side.BUY, price=15.50, order_type="b5tc")
    assert (protected.order_type, protected.price) == (OrderType.B5TC, 15_500)


async def test_an_unknown_kind_is_a_parameter_error(client: AsyncClient) -> None:
    with pytest.raises(ParameterError, match="unknown order_type 'market'"):
        await client.order_volume("600103.SH", 1_000, Side.BUY, order_type="market")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.order_volume("600103.SH", 150.7, Side.BUY), "volume"),
        (lambda c: c.order_volume("600103.SH", float("nan"), Side.BUY), "volume"),
        (lambda c: c.order_target_volume("600566.SH", -100), "volume"),
        (lambda c: c.order_value("600103.SH", float("nan"), Side.BUY), "value"),
        (lambda c: c.order_value("600103.SH", float("inf"), Side.BUY, price=2.6), "value"),
        (lambda c: c.order_volume("600103.SH", 1_000, Side.BUY, price=float("nan")), "price"),
        (lambda c: c.order_percent("600103.SH", float("nan"), Side.BUY), "percent"),
    ],
)
async def test_a_size_or_price_no_order_can_have_is_refused_before_anything_is_journaled(
    client: AsyncClient, call: Any, name: str
) -> None:
    """The issue-15 adversary: 150.7 shares used to be sent as 100.0 and crash the engine at the fill;
    NaN and infinity reached the journal or raised untyped errors."""
    with pytest.raises(ParameterError, match=f"{name} must be") as caught:
        await call(client)
    assert caught.value.name == name
    assert client.orders() == []
