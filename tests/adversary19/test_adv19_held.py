"""Adversary, issue 19: cases tried that held."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.fakes import FakeBroker
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import InputError, StoreError
from zhixing.engine.events import SubmitOrder
from zhixing.engine.input_limits import HOLIDAYS, read_bounded
from zhixing.engine.market import shanghai_ns
from zhixing.engine.oms import OrderManager
from zhixing.engine.store import StateStore
from zhixing.engine.store.file_set import write_file_set


async def test_held_a_cancel_saying_more_filled_than_the_order_never_releases_nor_overfills(
    tmp_path: Path,
) -> None:
    clock = SimClock(shanghai_ns(date(2021, 12, 1), "10:00"))
    broker, account = FakeBroker(clock), Account(100_000_000)
    store = await StateStore.open(tmp_path / "j.db")
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=broker, store=store, account=account)
    await oms.open()
    order = oms.submit(SubmitOrder(symbol="600000.SH", side=Side.BUY, quantity=1000, price=10_000))
    await oms.flush()
    broker.fill(order.client_order_id, 300)
    oms.cancel(order.client_order_id)
    await oms.flush()
    broker.confirm_cancel(order.client_order_id, filled=1500)  # more than the order itself
    await oms.flush()
    assert order.status is OrderStatus.PENDING_CANCEL
    assert account.frozen == 7_000_000
    broker.fill(order.client_order_id, 700)
    broker.fill(order.client_order_id, 500)  # a row beyond the order
    await oms.flush()
    assert order.status is OrderStatus.FILLED
    assert account.positions["600000.SH"].quantity == 1000
    await store.close()


def test_held_a_holidays_file_on_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "holidays.csv"
    import os

    os.mkfifo(fifo)  # opening it for reading would block for ever
    with pytest.raises(InputError, match="not a file"):
        read_bounded(fifo, HOLIDAYS)


def test_held_an_export_into_a_symlinked_folder_is_refused_and_the_link_untouched(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "orders.csv").write_text("old\n")
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)

    def fill(folder: Path) -> None:
        (folder / "orders.csv").write_text("new\n")

    with pytest.raises(StoreError):
        write_file_set(link, fill, ours=lambda n: n == "orders.csv", what="trade log")
    assert link.is_symlink()
    assert (real / "orders.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "real"]
