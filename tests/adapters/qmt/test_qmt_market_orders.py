"""The QMT route sends each market kind with its xtconstant price type (read from the installed wheel),
and refuses a kind it has no price type for before anything reaches the terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.adapters.qmt.test_qmt_trader import START, Rig, send, start_rig, status
from tests.qmt_fake import XC, FakeQmtTerminal
from zhixing.adapters.qmt.codes import MARKET_PRICE_TYPE_NAMES, XtCodes, load_codes
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.events import SubmitOrder

T = OrderType


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await start_rig(tmp_path / "journal.db", FakeQmtTerminal(), SimClock(START))
    yield r
    await r.adapter.close()
    await r.store.close()


def test_the_wheel_has_a_price_type_for_every_kind_the_exchanges_take() -> None:
    codes = load_codes(XC)
    assert codes.price_type_of(T.LIMIT, "600000.SH") == XC.FIX_PRICE
    assert codes.price_type_of(T.B5TC, "600000.SH") == XC.MARKET_SH_CONVERT_5_CANCEL
    assert codes.price_type_of(T.B5TL, "688001.SH") == XC.MARKET_SH_CONVERT_5_LIMIT
    assert codes.price_type_of(T.BOC, "000001.SZ") == XC.MARKET_PEER_PRICE_FIRST
    assert codes.price_type_of(T.BOP, "600000.SH") == XC.MARKET_MINE_PRICE_FIRST
    assert codes.price_type_of(T.FAK, "300001.SZ") == XC.MARKET_SZ_INSTBUSI_RESTCANCEL
    assert codes.price_type_of(T.B5TC, "000001.SZ") == XC.MARKET_SZ_CONVERT_5_CANCEL
    assert codes.price_type_of(T.FOK, "000001.SZ") == XC.MARKET_SZ_FULL_OR_CANCEL
    assert codes.price_type_of(T.FAK, "600000.SH") is None  # SZSE only
    assert codes.price_type_of(T.B5TC, "830001.BJ") is None


def test_a_module_without_the_market_names_sends_limits_only() -> None:
    names = {n for n in dir(XC) if not n.startswith("_")} - set(MARKET_PRICE_TYPE_NAMES.values())
    bare = SimpleNamespace(**{n: getattr(XC, n) for n in names})
    codes = XtCodes.from_module(bare)
    assert codes.market_price_types == {}
    assert codes.price_type_of(T.B5TC, "600000.SH") is None
    assert codes.price_type_of(T.LIMIT, "600000.SH") == XC.FIX_PRICE


async def test_a_market_order_goes_out_with_its_price_type_and_bound(rig: Rig) -> None:
    command = SubmitOrder(symbol="000001.SZ", side=Side.BUY, quantity=500, price=11_000, order_type=T.FAK)
    order = await send(rig, command)
    xo = rig.terminal.order_by_remark(order.client_order_id)
    assert xo.price_type == XC.MARKET_SZ_INSTBUSI_RESTCANCEL
    assert xo.price == 11.0
    assert xo.order_volume == 500


async def test_a_kind_without_a_price_type_is_refused_before_sending(rig: Rig) -> None:
    command = SubmitOrder(symbol="600000.SH", side=Side.BUY, quantity=500, price=11_000, order_type=T.FOK)
    order = await send(rig, command)
    assert status(order) is OrderStatus.REJECTED
    assert "no price type for FOK on 600000.SH" in order.reason
    assert rig.terminal.orders_received == 0
