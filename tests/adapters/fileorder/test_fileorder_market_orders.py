"""Market orders through the file route: the adapter writes the 文件单 ``order_type`` code of the kind
for the symbol's exchange (SSE 24/25, SZSE 20-24), the terminal emulator hands the kind to the simulated
exchange, and a kind the file route has no code for is refused before any file is written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.adapters.fileorder.test_fileorder_route import SYMBOL, _route, market, status
from zhixing.adapters.fileorder.format import FILE_ORDER_TYPE
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.events import SubmitOrder
from zhixing.replay.data import MarketData
from zhixing.replay.terminal import TerminalFaults

__all__ = ["market"]  # the module-scoped fixture, shared


def test_the_codes_per_exchange() -> None:
    sh = {k: c for (e, k), c in FILE_ORDER_TYPE.items() if e == "SH"}
    sz = {k: c for (e, k), c in FILE_ORDER_TYPE.items() if e == "SZ"}
    assert sh == {OrderType.LIMIT: 1, OrderType.B5TC: 24, OrderType.B5TL: 25}
    assert sz == {
        OrderType.LIMIT: 1,
        OrderType.BOC: 20,
        OrderType.BOP: 21,
        OrderType.FAK: 22,
        OrderType.FOK: 23,
        OrderType.B5TC: 24,
    }


@pytest.mark.slow
async def test_a_b5tc_order_is_written_with_code_24_and_fills(tmp_path: Path, market: MarketData) -> None:
    async for route in _route(tmp_path, market, TerminalFaults(scan_interval_ns=500_000_000)):
        oms = route.session.oms
        order = oms.submit(
            SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=1_000, price=0, order_type=OrderType.B5TC)
        )
        refused = oms.submit(
            SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=2_000, price=0, order_type=OrderType.BOC)
        )
        await route.run_until("09:31:10")
        assert status(refused) is OrderStatus.REJECTED
        assert "the file route has no order_type for BOC on 600103.SH" in refused.reason
        (written,) = route.input_dir.glob("*.order.csv")  # only the B5TC order reached a file
        (row,) = list(csv.DictReader(written.read_text(encoding="utf-8-sig").splitlines()))
        assert row["order_type"] == "24"
        assert row["price"] == "2.99"  # its bound: the limit-up of a 2.72 close, what cash is frozen at
        assert status(order) is OrderStatus.FILLED
        assert order.filled_quantity == 1_000
