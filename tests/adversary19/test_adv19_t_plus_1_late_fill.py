"""Adversary, issue 19 item 1 (days): T+1 for yesterday's buy whose fill the engine learns today.

Rule (docs/RELIABILITY.md, Days): the start of day rolls T+1 — "sellable = quantity − bought today − what
working sells hold. At a restart 'bought today' comes from the journal's fills of today". A buy that
filled yesterday at 14:59 while the engine was down (or whose row was late) is a fill of *yesterday*.

Hostile case: day 1, a buy of 1,000 is sent and acknowledged, then the engine dies before the fill row.
The order fills at 14:59 on day 1. Day 2 09:00: restart; reconciliation adopts the broker's FILLED and
its trade (ts_event day 1 14:59). The broker has rolled: 1,000 held, 1,000 sellable.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.fakes import FakeBroker
from zhixing.assembly import EngineSettings
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.cli.session import open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import FillReport, OrderStatusReport, PositionReport, SubmitOrder
from zhixing.engine.feed import Reference
from zhixing.engine.market import shanghai_ns
from zhixing.engine.oms import OrderManager
from zhixing.engine.order_ids import OrderIds
from zhixing.engine.store import StateStore

SYM = "600000.SH"
DAY1, DAY2 = date(2021, 12, 1), date(2021, 12, 2)
ACCOUNT = "acct-19"


class QuietFeed:
    name = "quiet"

    def bind(self, sink: object) -> None:
        pass

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def subscribe(self, symbols: object) -> None:
        pass

    async def unsubscribe(self, symbols: object) -> None:
        pass

    async def reference(self, symbol: str) -> Reference:
        return Reference(symbol=symbol, prev_close=10_000, high_limit=11_000, low_limit=9_000)


class RolledBroker(FakeBroker):
    """The broker the morning after: the order FILLED at 14:59 yesterday, 1,000 held and sellable."""

    def __init__(self, clock: SimClock, cid: str, filled_ns: int) -> None:
        super().__init__(clock)
        self.cid, self.filled_ns = cid, filled_ns

    async def query_positions(self) -> list[PositionReport]:
        return [PositionReport(symbol=SYM, quantity=1000, sellable=1000, avg_cost=10_000)]

    async def query_orders(self) -> list[OrderStatusReport]:
        return [
            OrderStatusReport(
                client_order_id=self.cid,
                broker_order_id=f"B{self.cid}",
                symbol=SYM,
                side=Side.BUY,
                price=10_000,
                quantity=1000,
                filled_quantity=1000,
                status=OrderStatus.FILLED,
                ts_event=self.filled_ns,
            )
        ]

    async def query_trades(self) -> list[FillReport]:
        return [
            FillReport(
                trade_id="T1",
                client_order_id=self.cid,
                broker_order_id=f"B{self.cid}",
                symbol=SYM,
                side=Side.BUY,
                price=10_000,
                quantity=1000,
                commission=0,
                stamp_duty=0,
                transfer_fee=0,
                ts_event=self.filled_ns,
            )
        ]


async def day_one(db: Path) -> str:
    clock = SimClock(shanghai_ns(DAY1, "14:50"))
    store = await StateStore.open(db)
    broker = FakeBroker(clock)
    oms = OrderManager(
        clock=clock,
        bus=EventBus(),
        adapter=broker,
        store=store,
        account=Account(100_000_000),
        ids=OrderIds.for_account(ACCOUNT),
    )
    await oms.open()
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=1000, price=10_000))
    await oms.flush()
    assert order.status is OrderStatus.ACCEPTED
    await store.close()  # the engine dies here; the fill comes at 14:59 with nobody listening
    return order.client_order_id


async def test_was_finding_yesterdays_buy_learnt_at_the_restart_is_not_sellable_today(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    cid = await day_one(db)
    clock = SimClock(shanghai_ns(DAY2, "09:00"))
    broker = RolledBroker(clock, cid, shanghai_ns(DAY1, "14:59"))
    session = await open_live_session(
        clock=clock,
        adapter=broker,
        feed=QuietFeed(),
        store_path=db,
        account=Account(100_000_000),
        trading_day_start_ns=shanghai_ns(DAY2, "00:00"),
        settings=EngineSettings(account_id=ACCOUNT),
    )
    try:
        assert session.oms.orders[cid].status is OrderStatus.FILLED
        pos = session.account.positions[SYM]
        assert pos.quantity == 1000
        assert pos.sellable == 1000, (
            f"yesterday's 14:59 buy counted as bought today: sellable {pos.sellable} of 1000 "
            f"(bought_today {pos.bought_today})"
        )
    finally:
        await session.store.close()
