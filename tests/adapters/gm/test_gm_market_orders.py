"""The 掘金 gm route sends each market kind with its ``OrderType_Market_*`` value per exchange, and refuses
a kind gm does not list for the symbol's exchange before calling ``order_volume``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapters.gm.test_gm_trader import ACCOUNT, Route, close_route, open_route
from tests.gm_fake import FakeGmApi
from zhixing.adapters.gm.codes import GM_ORDER_TYPE
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.events import SubmitOrder

T = OrderType


@pytest.fixture
async def route(tmp_path: Path) -> AsyncIterator[Route]:
    r = await open_route(tmp_path, FakeGmApi(ACCOUNT))
    yield r
    await close_route(r)


@pytest.mark.parametrize(
    ("symbol", "kind", "code"),
    [
        ("000001.SZ", T.BOC, 20),
        ("000001.SZ", T.BOP, 21),
        ("300001.SZ", T.FAK, 22),
        ("000001.SZ", T.FOK, 23),
        ("000001.SZ", T.B5TC, 24),
        ("600000.SH", T.B5TC, 24),
        ("688001.SH", T.B5TL, 25),
        ("600000.SH", T.LIMIT, 1),
    ],
)
async def test_each_kind_is_sent_with_its_gm_order_type(
    route: Route, symbol: str, kind: OrderType, code: int
) -> None:
    command = SubmitOrder(symbol=symbol, side=Side.BUY, quantity=200, price=11_000, order_type=kind)
    route.oms.submit(command)
    await route.oms.flush()
    (placed,) = route.api.orders.values()
    assert placed["order_type"] == code
    assert GM_ORDER_TYPE[(symbol[-2:], kind)] == code


@pytest.mark.parametrize(
    ("symbol", "kind"), [("600000.SH", T.BOC), ("600000.SH", T.FAK), ("000001.SZ", T.B5TL)]
)
async def test_a_kind_gm_does_not_list_is_refused_before_sending(
    route: Route, symbol: str, kind: OrderType
) -> None:
    command = SubmitOrder(symbol=symbol, side=Side.BUY, quantity=200, price=11_000, order_type=kind)
    order = route.oms.submit(command)
    await route.oms.flush()
    assert order.status is OrderStatus.REJECTED
    assert f"no order_type for {kind.value} on {symbol}" in order.reason
    assert [n for n, _ in route.api.calls].count("order_volume") == 0
