"""OrderManager: write-ahead journaling, denials as events, idempotent fills, cancels, halts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerDisconnected, StoreError
from zhixing.engine.events import (
    AccountReport,
    FillReport,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderStatusReport,
    PositionReport,
    SubmitOrder,
)
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reasons import Denial, DenialCode
from zhixing.engine.store import StateStore

SYMBOL = "600000.SH"


class RecordingBroker:
    """A hand-written broker: records what it is asked, and what the journal held at that moment."""

    name = "recording"

    def __init__(self, db_path: Path | None = None, fail_with: Exception | None = None) -> None:
        self.db_path = db_path
        self.fail_with = fail_with
        self.submitted: list[str] = []
        self.cancelled: list[str] = []
        self.journaled_at_send: list[bool] = []
        self.sink: object = None

    def bind(self, sink: object) -> None:
        self.sink = sink

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: Order) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if self.db_path is not None:
            with sqlite3.connect(self.db_path) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM orders WHERE client_order_id = ?", (order.client_order_id,)
                ).fetchone()
            conn.close()
            self.journaled_at_send.append(row[0] == 1)
        self.submitted.append(order.client_order_id)

    async def cancel(self, order: Order) -> None:
        self.cancelled.append(order.client_order_id)

    async def query_account(self) -> AccountReport:
        return AccountReport(cash=0, frozen=0, total_asset=0, market_value=0)

    async def query_positions(self) -> list[PositionReport]:
        return []

    async def query_orders(self) -> list[OrderStatusReport]:
        return []

    async def query_trades(self) -> list[FillReport]:
        return []


async def make_oms(
    tmp_path: Path, broker: RecordingBroker, *, account: Account | None = None, checks: list | None = None
) -> tuple[OrderManager, StateStore, list[OrderEvent]]:
    store = await StateStore.open(tmp_path / "journal.db")
    bus = EventBus()
    seen: list[OrderEvent] = []
    bus.subscribe(OrderEvent, seen.append)
    oms = OrderManager(
        clock=SimClock(1_000), bus=bus, adapter=broker, store=store, account=account, checks=checks or ()
    )
    await oms.open()
    return oms, store, seen


def buy(quantity: int = 1000, price: int = 10_000) -> SubmitOrder:
    return SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=quantity, price=price, parent_id="P1")


def fill(order: Order, trade_id: str, quantity: int) -> OrderFilled:
    return OrderFilled(
        ts_event=5,
        ts_init=6,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        trade_id=trade_id,
        side=order.side,
        price=order.price,
        quantity=quantity,
    )


async def test_intent_is_committed_to_sqlite_before_the_adapter_sees_it(tmp_path: Path) -> None:
    broker = RecordingBroker(tmp_path / "journal.db")
    oms, store, _ = await make_oms(tmp_path, broker)
    orders = [oms.submit(buy()) for _ in range(3)]
    assert broker.submitted == []  # nothing is sent by submit itself
    await oms.flush()
    assert broker.submitted == [o.client_order_id for o in orders]
    assert broker.journaled_at_send == [True, True, True]
    assert all(o.status is OrderStatus.SUBMITTED for o in orders)
    await store.close()


async def test_denied_order_is_an_event_with_a_reason_and_never_reaches_the_broker(tmp_path: Path) -> None:
    broker = RecordingBroker()
    oms, store, seen = await make_oms(
        tmp_path,
        broker,
        checks=[lambda o: Denial(DenialCode.MAX_ORDER_QUANTITY, "too big") if o.quantity > 500 else None],
    )
    order = oms.submit(buy(1000))
    await oms.flush()
    assert order.status is OrderStatus.DENIED
    assert [type(e) for e in seen] == [OrderDenied]
    assert isinstance(seen[0], OrderDenied)
    assert seen[0].reason == "max_order_quantity: too big"
    assert seen[0].code is DenialCode.MAX_ORDER_QUANTITY
    assert order.denial is DenialCode.MAX_ORDER_QUANTITY
    assert broker.submitted == []
    assert oms.counters.denied == 1
    await store.close()


async def test_account_check_denies_a_buy_beyond_cash_and_a_sell_beyond_sellable(tmp_path: Path) -> None:
    account = Account(cash=5_000_000)  # 5,000 yuan
    account.load_position(SYMBOL, 300)
    oms, store, _ = await make_oms(tmp_path, RecordingBroker(), account=account)
    assert oms.submit(buy(1000, 10_000)).reason == "insufficient_cash"
    sell = oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.SELL, quantity=400, price=10_000))
    assert sell.reason == "insufficient_sellable"
    ok = oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.SELL, quantity=300, price=10_000))
    assert ok.status is OrderStatus.INITIALIZED
    assert account.positions[SYMBOL].sellable == 0  # frozen for the working sell
    await store.close()


async def test_fills_are_applied_once_by_trade_id_and_update_account_and_journal(tmp_path: Path) -> None:
    account = Account(cash=100_000_000)
    broker = RecordingBroker()
    oms, store, _ = await make_oms(tmp_path, broker, account=account)
    order = oms.submit(buy(1000, 10_000))
    await oms.flush()
    oms.on_event(
        OrderAccepted(
            ts_event=2, ts_init=3, client_order_id=order.client_order_id, symbol=SYMBOL, broker_order_id="B1"
        )
    )
    oms.on_event(fill(order, "T1", 400))
    oms.on_event(fill(order, "T1", 400))  # re-pushed after a reconnect
    oms.on_event(fill(order, "T2", 600))
    await oms.flush()
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 1000
    assert oms.counters.duplicate_fills == 1
    assert account.positions[SYMBOL].quantity == 1000
    assert account.positions[SYMBOL].sellable == 0  # T+1
    assert account.cash == 100_000_000 - 10_000 * 1000
    assert account.frozen == 0
    fills = await store.load_fills()
    assert sorted(f.trade_id for f, _ in fills) == ["T1", "T2"]
    assert (await store.load_positions())[SYMBOL] == (1000, 0, 10_000)  # journaled with the fills
    await store.close()


async def test_overfill_report_raises_an_alarm_and_halts_the_symbol(tmp_path: Path) -> None:
    oms, store, _ = await make_oms(tmp_path, RecordingBroker())
    order = oms.submit(buy(1000))
    await oms.flush()
    oms.on_event(fill(order, "T1", 900))
    oms.on_event(fill(order, "T2", 900))
    assert order.filled_quantity == 900
    assert oms.counters.overfill_alarms == 1
    assert oms.submit(buy(100)).status is OrderStatus.DENIED
    await store.close()


async def test_journal_failure_sends_nothing_and_halts(tmp_path: Path) -> None:
    broker = RecordingBroker()
    oms, store, _ = await make_oms(tmp_path, broker)

    async def disk_full() -> None:
        raise StoreError("database or disk is full")

    store.commit = disk_full  # type: ignore[method-assign]
    order = oms.submit(buy())
    await oms.flush()
    assert broker.submitted == []
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "journal_write_failed"
    assert not order.venue_confirmed
    assert oms.halted_reason == "journal_write_failed"
    assert oms.submit(buy()).status is OrderStatus.DENIED
    store.commit = StateStore.commit.__get__(store)  # type: ignore[method-assign]
    await store.close()


async def test_adapter_refusal_is_a_local_rejection_not_a_resend(tmp_path: Path) -> None:
    broker = RecordingBroker(fail_with=BrokerDisconnected("not connected"))
    oms, store, _ = await make_oms(tmp_path, broker)
    order = oms.submit(buy())
    await oms.flush()
    await oms.flush()
    assert order.status is OrderStatus.REJECTED
    assert "not connected" in order.reason
    assert oms.counters.submitted == 1
    await store.close()


async def test_cancel_before_send_cancels_locally_and_nothing_is_sent(tmp_path: Path) -> None:
    broker = RecordingBroker()
    oms, store, seen = await make_oms(tmp_path, broker)
    order = oms.submit(buy())
    assert oms.cancel(order.client_order_id) is True
    await oms.flush()
    assert broker.submitted == []
    assert broker.cancelled == []
    assert order.status is OrderStatus.CANCELED
    assert isinstance(seen[-1], OrderCanceled)
    await store.close()


async def test_duplicate_cancel_sends_one_request(tmp_path: Path) -> None:
    broker = RecordingBroker()
    oms, store, _ = await make_oms(tmp_path, broker)
    order = oms.submit(buy())
    await oms.flush()
    assert oms.cancel(order.client_order_id) is True
    assert oms.cancel(order.client_order_id) is False
    await oms.flush()
    assert oms.cancel(order.client_order_id) is False  # already pending
    await oms.flush()
    assert broker.cancelled == [order.client_order_id]
    assert order.status is OrderStatus.PENDING_CANCEL
    await store.close()


async def test_client_order_ids_are_unique_across_many_submits_and_a_restart(tmp_path: Path) -> None:
    broker = RecordingBroker()
    oms, store, _ = await make_oms(tmp_path, broker)
    first = [oms.submit(buy(100)).client_order_id for _ in range(3000)]
    await oms.flush()
    await store.close()
    oms2, store2, _ = await make_oms(tmp_path, RecordingBroker())
    second = [oms2.submit(buy(100)).client_order_id for _ in range(3000)]
    assert len(set(first) | set(second)) == 6000
    await store2.close()


async def test_unknown_order_event_is_counted_not_crashing(tmp_path: Path) -> None:
    oms, store, _ = await make_oms(tmp_path, RecordingBroker())
    oms.on_event(OrderCanceled(ts_event=1, ts_init=1, client_order_id="EXTERNAL1", symbol=SYMBOL))
    assert oms.counters.unknown_order_events == 1
    await store.close()


async def test_cancel_all_cancels_every_working_order_once(tmp_path: Path) -> None:
    broker = RecordingBroker()
    oms, store, _ = await make_oms(tmp_path, broker)
    sent = [oms.submit(buy()) for _ in range(3)]
    other = oms.submit(SubmitOrder(symbol="000001.SZ", side=Side.BUY, quantity=100, price=10_000))
    await oms.flush()
    unsent = oms.submit(buy())
    oms.on_event(fill(sent[0], "T1", 1000))  # filled: nothing to cancel
    assert oms.cancel_all(symbol=SYMBOL) == [
        sent[1].client_order_id,
        sent[2].client_order_id,
        unsent.client_order_id,
    ]
    assert oms.cancel_all(symbol=SYMBOL) == []  # idempotent
    await oms.flush()
    assert broker.cancelled == [sent[1].client_order_id, sent[2].client_order_id]
    assert unsent.status is OrderStatus.CANCELED  # never sent
    assert other.status is OrderStatus.SUBMITTED  # another symbol is untouched
    assert oms.cancel_all() == [other.client_order_id]
    await store.close()
