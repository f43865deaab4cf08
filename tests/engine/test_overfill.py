"""An order's end never releases quantity the broker may still have filled (``engine.held_ends``).

A cancel or expiry whose filled figure is above the fills we hold (its trade rows are late) is held: the
order stays PENDING_CANCEL with its leaves reserved and no end is published, until the rows bring the
fills to the figure; then it finishes once. Through the OrderManager, the in-flight checks, every route's
translation (QMT, gm, the file route, the simulated exchange), the algorithms' child sizing, and a TWAP
end to end on the simulated exchange with the chaos suite's fault."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.algos.test_algos_twap import at as twap_at
from tests.algos.test_algos_twap import context, make_parent, world_with_quote
from tests.engine.test_freshness import SYM, T0, ViewBroker, engine, later, report, trade, working_buy
from tests.qmt_fake import XC, XtOrder, XtTrade
from tests.replay.test_replay_exchange import DAY, at, tiny_day, tiny_venue
from tests.replay.test_replay_faults import make_venue, run_until
from zhixing.adapters.fileorder.format import EXEC_CANCELED as FILE_EXEC_CANCELED
from zhixing.adapters.fileorder.format import EXEC_TRADE as FILE_EXEC_TRADE
from zhixing.adapters.fileorder.format import STATUS_CANCELED as FILE_CANCELED
from zhixing.adapters.fileorder.format import STATUS_NEW as FILE_NEW
from zhixing.adapters.fileorder.reader import ExecRow, StatusRow
from zhixing.adapters.fileorder.tracker import ReportTracker
from zhixing.adapters.gm.codes import EXEC_CANCELED, EXEC_TRADE, ORDER_SIDE_BUY, STATUS_CANCELED
from zhixing.adapters.gm.mapper import ReportMapper
from zhixing.adapters.gm.stats import GmStats
from zhixing.adapters.qmt.codes import XtCodes
from zhixing.adapters.qmt.translate import PushTranslator, QmtCounters
from zhixing.algos.basket import Basket
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import (
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    SubmitOrder,
)
from zhixing.engine.inflight import NO_RESPONSE, InflightChecker
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.reconcile import HALT_REASON, recover, resync
from zhixing.replay.data import MarketData
from zhixing.replay.faults import FaultPlan, FaultyAdapter
from zhixing.replay.harness import ReplayConfig, open_session

S = OrderStatus
PRICE = 10_000  # the price ``working_buy`` sends at


def ended(oms: OrderManager) -> list[OrderEvent]:
    """Every end the OrderManager publishes (what an algorithm would see)."""
    seen: list[OrderEvent] = []
    oms.bus.subscribe(OrderCanceled, seen.append)
    oms.bus.subscribe(OrderExpired, seen.append)
    return seen


def cancel_push(order: Order, filled: int | None) -> OrderCanceled:
    now = T0
    return OrderCanceled(
        ts_event=now,
        ts_init=now,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        filled_qty=filled,
    )


def frozen_for(oms: OrderManager, order: Order) -> int:
    assert oms.account is not None
    return oms.account.frozen if oms.account.is_reserved(order.client_order_id) else 0


async def cancelled_after(oms: OrderManager, broker: ViewBroker, filled: int) -> Order:
    """A 1000-share buy, ``filled`` of it pushed (T1), and our cancel on its way."""
    order = await working_buy(oms, broker)
    if filled:
        broker.fill(order.client_order_id, filled)
    assert oms.cancel(order.client_order_id)
    await oms.flush()
    assert order.status is S.PENDING_CANCEL
    return order


# ------------------------------------------------------------------------------------------ the OMS
async def test_a_pushed_cancel_ahead_of_its_fill_row_holds_the_order_and_finishes_it_once(
    tmp_path: Path,
) -> None:
    _, broker, oms, store = await engine(tmp_path)
    seen = ended(oms)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, 500))  # 300 more filled at the broker: their row is late
    assert order.status is S.PENDING_CANCEL
    assert order.leaves_quantity == 800
    assert frozen_for(oms, order) == 800 * PRICE  # the leaves stay reserved
    assert seen == []  # no end published: an algorithm sizes nothing from it
    assert order.client_order_id in oms.held_ends
    assert not oms.cancel(order.client_order_id)  # nobody cancels it again meanwhile
    broker.fill(order.client_order_id, 300)  # the late row (T2)
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    assert [type(e) for e in seen] == [OrderCanceled]  # once, after the fill
    assert frozen_for(oms, order) == 0
    assert order.client_order_id not in oms.held_ends
    # duplicate and late pushes after the finish change nothing
    oms.on_event(cancel_push(order, 500))
    oms.on_event(OrderFilled(**_fill_fields(order, "T2", 300)))
    assert order.filled_quantity == 500
    assert oms.counters.duplicate_fills == 1
    assert oms.counters.fills_after_end == 0
    assert oms.held_ends.counters.held == 1
    assert oms.held_ends.counters.finished_by_rows == 1
    await store.close()


def _fill_fields(order: Order, trade_id: str, quantity: int) -> dict[str, Any]:
    return {
        "ts_event": T0,
        "ts_init": T0,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "trade_id": trade_id,
        "side": order.side,
        "price": order.price,
        "quantity": quantity,
    }


async def test_an_end_that_says_no_more_than_we_hold_finishes_at_once(tmp_path: Path) -> None:
    _, broker, oms, store = await engine(tmp_path)
    seen = ended(oms)
    exact = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(exact, 200))
    assert exact.status is S.CANCELED
    behind = await cancelled_after(oms, broker, 300)
    oms.on_event(cancel_push(behind, 100))  # a figure below our fills: the fills are facts, it ends
    assert behind.status is S.CANCELED
    assert behind.filled_quantity == 300
    assert len(seen) == 2
    assert oms.held_ends.counters.held == 0
    await store.close()


async def test_a_stale_repeat_of_the_end_with_a_smaller_figure_cannot_release_it(tmp_path: Path) -> None:
    _, broker, oms, store = await engine(tmp_path)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, 500))
    oms.on_event(cancel_push(order, 200))  # an older copy of the end: the larger figure stands
    oms.on_event(cancel_push(order, None))
    assert order.status is S.PENDING_CANCEL
    held = oms.held_ends.get(order.client_order_id)
    assert held is not None
    assert held.filled == 500
    broker.fill(order.client_order_id, 200)  # 400: still short of 500
    assert order.status is S.PENDING_CANCEL
    broker.fill(order.client_order_id, 100)
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    await store.close()


async def test_a_cancel_reject_while_the_end_is_held_does_not_reopen_the_order(tmp_path: Path) -> None:
    _, broker, oms, store = await engine(tmp_path)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, 500))
    broker.reject_cancel(order.client_order_id, "order_already_final")
    assert order.status is S.PENDING_CANCEL  # not back to working: the broker said it ended
    assert oms.held_ends.counters.cancel_rejects_ignored == 1
    assert oms.cancel_retry.failures == {}  # no cancel sent again
    broker.fill(order.client_order_id, 300)
    assert order.status is S.CANCELED
    await store.close()


async def test_an_end_the_broker_decided_itself_holds_a_working_order_as_pending_cancel(
    tmp_path: Path,
) -> None:
    """Cancelled at the terminal, or expired at the day's end, ahead of the rows: never sent by us."""
    _, broker, oms, store = await engine(tmp_path)
    order = await working_buy(oms, broker)
    broker.fill(order.client_order_id, 100)
    oms.on_event(
        OrderExpired(
            ts_event=T0, ts_init=T0, client_order_id=order.client_order_id, symbol=SYM, filled_qty=700
        )
    )
    assert order.status is S.PENDING_CANCEL
    assert order.client_order_id in oms.in_flight  # asked about after the in-flight timeout
    assert not oms.cancel(order.client_order_id)
    broker.fill(order.client_order_id, 600)
    assert order.status is S.EXPIRED
    assert order.filled_quantity == 700
    await store.close()


async def test_the_rows_never_come_asked_after_the_timeout_halted_only_if_it_persists(tmp_path: Path) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    alerts: list[tuple[str, str]] = []
    checker = InflightChecker(oms, broker, on_alert=lambda t, b: alerts.append((t, b)))
    order = await cancelled_after(oms, broker, 200)
    held_at = clock.now_ns()
    oms.on_event(cancel_push(order, 500))
    broker.order_view = [report(order, S.CANCELED, 500)]
    broker.trade_view = [trade(order, "T1", 200)]  # the broker lost the second row
    later(clock, checker.timeout_ns - 1)
    await checker.check()
    assert broker.queries == 0  # not before the usual grace
    later(clock, 1)
    await checker.check()
    assert broker.queries == 1
    assert order.status is S.PENDING_CANCEL
    assert oms.halted_reason is None  # one answer is not persistence
    first_ns = clock.now_ns()
    while oms.halted_reason is None and clock.now_ns() - first_ns < 60 * 10**9:
        later(clock, 10**9)
        await checker.check()
    assert oms.halted_reason == HALT_REASON
    assert clock.now_ns() - first_ns >= (oms.freshness.answers - 1) * oms.freshness.grace_ns
    assert checker.stats.persistent == [f"order {order.client_order_id} filled: local=200 broker=500"]
    assert len(alerts) == 1
    # never resolved by policy: it stays held, its leaves reserved, until the broker's rows say otherwise
    assert order.status is S.PENDING_CANCEL
    assert checker.stats.resolved_by_policy == []
    assert checker.stats.cancels_unconfirmed == []
    assert order.reason != NO_RESPONSE
    assert frozen_for(oms, order) == 800 * PRICE
    broker.trade_view.append(trade(order, "T2", 300))  # the broker finds the row
    later(clock, checker.timeout_ns)
    await checker.check()
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    assert clock.now_ns() > held_at
    await store.close()


async def test_rows_found_by_the_in_flight_query_finish_the_held_end(tmp_path: Path) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    checker = InflightChecker(oms, broker)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, 500))
    broker.order_view = [report(order, S.CANCELED, 500)]
    broker.trade_view = [trade(order, "T1", 200), trade(order, "T2", 300)]
    later(clock, checker.timeout_ns)
    assert await checker.check() == 1
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    assert checker.stats.resolved_by_query == 1
    assert not oms.freshness
    await store.close()


async def test_an_end_without_a_figure_is_held_until_one_answer_confirms_it(tmp_path: Path) -> None:
    """The chosen behaviour for a broker that does not say (``filled_qty`` None): hold, ask once."""
    clock, broker, oms, store = await engine(tmp_path)
    seen = ended(oms)
    checker = InflightChecker(oms, broker)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, None))
    assert order.status is S.PENDING_CANCEL
    assert seen == []
    broker.fill(order.client_order_id, 100)  # a row alone cannot say it was the last
    assert order.status is S.PENDING_CANCEL
    broker.order_view = [report(order, S.CANCELED, 300)]
    broker.trade_view = [trade(order, "T1", 200), trade(order, "T2", 100)]
    later(clock, checker.timeout_ns)
    await checker.check()
    assert order.status is S.CANCELED
    assert order.filled_quantity == 300
    assert len(seen) == 1
    assert oms.held_ends.counters.finished_by_answer == 1
    # the answer may say more than the rows we had: its trades are applied, then the end
    other = await cancelled_after(oms, broker, 0)
    oms.on_event(cancel_push(other, None))
    broker.order_view = [report(other, S.CANCELED, 400)]
    broker.trade_view = [trade(other, "T9", 400)]
    later(clock, checker.timeout_ns)
    await checker.check()
    assert other.status is S.CANCELED
    assert other.filled_quantity == 400
    await store.close()


async def test_a_stale_answer_still_showing_the_held_order_working_does_not_resolve_it(
    tmp_path: Path,
) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    checker = InflightChecker(oms, broker)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, None))
    broker.order_view = [report(order, S.PENDING_CANCEL, 200)]  # a view from before the cancel
    for _ in range(checker.max_queries + 1):
        later(clock, checker.timeout_ns)
        await checker.check()
    assert order.status is S.PENDING_CANCEL  # no "cancel unconfirmed", no policy end
    assert checker.stats.cancels_unconfirmed == []
    assert oms.halted_reason == HALT_REASON  # the broker keeps contradicting its own push: told
    broker.order_view = [report(order, S.CANCELED, 200)]
    later(clock, checker.timeout_ns)
    await checker.check()
    assert order.status is S.CANCELED
    await store.close()


async def test_an_end_for_a_finished_order_that_says_more_filled_asks_for_the_late_rows(
    tmp_path: Path,
) -> None:
    clock, broker, oms, store = await engine(tmp_path)
    order = await cancelled_after(oms, broker, 200)
    oms.on_event(cancel_push(order, 200))
    assert order.status is S.CANCELED
    oms.on_event(cancel_push(order, 500))  # the broker now counts more: fills we never heard of
    assert order.status is S.CANCELED
    assert oms.held_ends.counters.late_figures == 1
    assert f"order {order.client_order_id}" in oms.freshness.watched_keys()
    broker.order_view = [report(order, S.CANCELED, 500)]
    broker.trade_view = [trade(order, "T1", 200), trade(order, "T2", 300)]
    later(clock, oms.freshness.grace_ns)
    await InflightChecker(oms, broker).check()
    assert order.filled_quantity == 500  # applied as late fills, once
    assert oms.counters.fills_after_end == 1  # counted: the first end came too early
    await store.close()


async def test_a_snapshot_end_ahead_of_its_trades_holds_an_order_we_never_cancelled(tmp_path: Path) -> None:
    """The query path takes the same rule through the OrderManager: resync and a restart."""
    _, broker, oms, store = await engine(tmp_path)
    order = await working_buy(oms, broker)
    broker.order_view = [report(order, S.CANCELED, 400)]
    broker.trade_view = [trade(order, "T1", 300)]
    await resync(oms, broker)
    assert order.status is S.PENDING_CANCEL
    assert order.filled_quantity == 300
    assert order.leaves_quantity == 700
    assert frozen_for(oms, order) == 700 * PRICE
    await store.close()
    # a restart on the same journal: reconciliation holds it again, leaves reserved from the journal
    clock, broker2, oms2, store2 = await engine(tmp_path)
    broker2.order_view = [report(order, S.CANCELED, 400)]
    broker2.trade_view = [trade(order, "T1", 300)]
    result = await recover(oms2, store2, broker2, trading_day_start_ns=T0 - 1, wait=_no_wait(clock))
    rebuilt = oms2.orders[order.client_order_id]
    assert rebuilt.status is S.PENDING_CANCEL
    assert rebuilt.client_order_id in oms2.held_ends
    assert oms2.account is not None
    assert oms2.account.is_reserved(rebuilt.client_order_id)
    assert result.mismatches  # the rows never came in the re-queries: the restart halts, told
    await store2.close()


def _no_wait(clock: Any) -> Any:
    async def wait(until_ns: int) -> None:
        clock.advance_to(max(until_ns, clock.now_ns()))

    return wait


# ------------------------------------------------------------------------------------------ the routes
def _xt_order(cid: str, oid: int, status: int, traded: Any) -> XtOrder:
    xo = XtOrder(
        *("A1", SYM, oid, f"S{oid}", 0, XC.STOCK_BUY, 1000, XC.FIX_PRICE, 10.0, 0, 10.0, status, ""),
        *("", cid, 0, 0, "", ""),
    )
    xo.traded_volume = traded  # as xtquant reports it (a missing one: None)
    return xo


def _xt_trade(cid: str, oid: int, traded_id: str, volume: int) -> XtTrade:
    return XtTrade(
        *("A1", SYM, XC.STOCK_BUY, traded_id, 0, 10.0, volume, 10.0 * volume, oid, f"S{oid}", "", cid),
        *(0, 0, 0.0, "", ""),
    )


async def test_qmt_part_cancel_with_traded_volume_ahead_of_its_trade_push(tmp_path: Path) -> None:
    _, broker, oms, store = await engine(tmp_path)
    translator = PushTranslator(
        XtCodes.from_module(XC),
        oms.clock,
        QmtCounters(),
        emit=oms.on_event,
        send_cancel=lambda tracked: True,
        can_send=lambda: True,
    )
    order = await cancelled_after(oms, broker, 0)
    cid = order.client_order_id
    translator.on_stock_trade(_xt_trade(cid, 7, "T1", 200))
    emitted: list[OrderEvent] = []
    oms.bus.subscribe(OrderCanceled, emitted.append)
    translator.on_stock_order(_xt_order(cid, 7, XC.ORDER_PART_CANCEL, 500))  # 部撤, traded 500: a row late
    assert order.status is S.PENDING_CANCEL
    assert emitted == []
    translator.on_stock_order(_xt_order(cid, 7, XC.ORDER_PART_CANCEL, 500))  # re-pushed: nothing new
    translator.on_stock_trade(_xt_trade(cid, 7, "T2", 300))
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    (end,) = emitted
    assert isinstance(end, OrderCanceled)
    assert end.filled_qty == 500
    translator.on_stock_trade(_xt_trade(cid, 7, "T2", 300))  # a re-login re-push: the translator drops it
    assert order.filled_quantity == 500
    # a 已撤 push without a usable traded volume says nothing: held until an answer
    other = await cancelled_after(oms, broker, 0)
    translator.on_stock_order(_xt_order(other.client_order_id, 8, XC.ORDER_CANCELED, None))
    assert other.status is S.PENDING_CANCEL
    held = oms.held_ends.get(other.client_order_id)
    assert held is not None
    assert held.filled is None
    translator.on_stock_order(_xt_order(other.client_order_id, 8, XC.ORDER_CANCELED, 0))  # it says now
    assert other.status is S.CANCELED
    # 部撤 pushed again with more traded (a later status of the same end): the larger figure is heard
    third = await cancelled_after(oms, broker, 0)
    translator.on_stock_order(_xt_order(third.client_order_id, 9, XC.ORDER_PART_CANCEL, 100))
    translator.on_stock_order(_xt_order(third.client_order_id, 9, XC.ORDER_PART_CANCEL, 300))
    held = oms.held_ends.get(third.client_order_id)
    assert held is not None
    assert held.filled == 300
    await store.close()


def _gm_order(cl_ord_id: str, status: int, filled: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "account_id": "ACC",
        "cl_ord_id": cl_ord_id,
        "symbol": "SHSE.600000",
        "side": ORDER_SIDE_BUY,
        "price": 10.0,
        "volume": 1000,
        "status": status,
    }
    if filled is not None:
        payload["filled_volume"] = filled
    return payload


def _gm_exec(cl_ord_id: str, exec_type: int, exec_id: str, volume: int = 0) -> dict[str, Any]:
    return {
        "account_id": "ACC",
        "cl_ord_id": cl_ord_id,
        "exec_id": exec_id,
        "exec_type": exec_type,
        "symbol": "SHSE.600000",
        "side": ORDER_SIDE_BUY,
        "price": 10.0,
        "volume": volume,
    }


async def test_gm_status_with_filled_volume_ahead_of_its_execution_report(tmp_path: Path) -> None:
    _, broker, oms, store = await engine(tmp_path)
    mapper = ReportMapper(oms.clock, "ACC", GmStats(), oms.on_event, lambda: None)
    order = await cancelled_after(oms, broker, 0)
    mapper.link(order.client_order_id, "CL1")
    mapper.on_exec(_gm_exec("CL1", EXEC_TRADE, "E1", 200))
    mapper.on_order(_gm_order("CL1", STATUS_CANCELED, 500))  # filled_volume 500: a report is late
    assert order.status is S.PENDING_CANCEL
    mapper.on_exec(_gm_exec("CL1", EXEC_TRADE, "E2", 300))
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    # an execution-report cancel (no figure) first, the order status with filled_volume after it
    other = await cancelled_after(oms, broker, 0)
    mapper.link(other.client_order_id, "CL2")
    mapper.on_exec(_gm_exec("CL2", EXEC_TRADE, "E3", 100))
    mapper.on_exec(_gm_exec("CL2", EXEC_CANCELED, "E4"))
    assert other.status is S.PENDING_CANCEL  # held: it did not say
    mapper.on_order(_gm_order("CL2", STATUS_CANCELED, 100))  # the figure: all rows are in
    assert other.status is S.CANCELED
    assert other.filled_quantity == 100
    # a status without filled_volume is not taken to say 0
    third = await cancelled_after(oms, broker, 0)
    mapper.link(third.client_order_id, "CL3")
    mapper.on_order(_gm_order("CL3", STATUS_CANCELED, None))
    assert third.status is S.PENDING_CANCEL
    await store.close()


def _file_status(sid: str, status: int, filled: int) -> StatusRow:
    return StatusRow(
        sid=sid,
        cl_ord_id="TC1",
        order_id="O1",
        symbol=SYM,
        side=Side.BUY,
        status=status,
        price=PRICE,
        volume=1000,
        filled=filled,
        reject_code=0,
        reject_detail="",
        ts_event=T0,
    )


def _file_exec(sid: str, exec_type: int, exec_id: str, volume: int = 0) -> ExecRow:
    return ExecRow(
        sid=sid,
        order_id="O1",
        exec_id=exec_id,
        symbol=SYM,
        side=Side.BUY,
        exec_type=exec_type,
        price=PRICE,
        volume=volume,
        reject_code=0,
        reject_detail="",
        commission=0,
        stamp_duty=0,
        transfer_fee=0,
        ts_event=T0,
    )


async def test_file_route_status_row_with_filled_ahead_of_its_execution_row(tmp_path: Path) -> None:
    _, broker, oms, store = await engine(tmp_path)
    tracker = ReportTracker()

    def feed(events: list[OrderEvent]) -> None:
        for event in events:
            oms.on_event(event)

    order = await cancelled_after(oms, broker, 0)
    sid = order.client_order_id
    feed(tracker.on_status(_file_status(sid, FILE_NEW, 0), T0))
    feed(tracker.on_exec(_file_exec(sid, FILE_EXEC_TRADE, "X1", 200), T0))
    feed(tracker.on_status(_file_status(sid, FILE_CANCELED, 500), T0))  # order_status_change.csv first
    assert order.status is S.PENDING_CANCEL
    feed(tracker.on_exec(_file_exec(sid, FILE_EXEC_TRADE, "X2", 300), T0))  # execution_report.csv later
    assert order.status is S.CANCELED
    assert order.filled_quantity == 500
    feed(tracker.on_exec(_file_exec(sid, FILE_EXEC_TRADE, "X2", 300), T0))  # a re-read file: dropped
    assert order.filled_quantity == 500
    # the execution row's cancel says nothing; the status row after it carries the figure
    other = await cancelled_after(oms, broker, 0)
    sid = other.client_order_id
    feed(tracker.on_exec(_file_exec(sid, FILE_EXEC_CANCELED, "X3"), T0))
    assert other.status is S.PENDING_CANCEL
    feed(tracker.on_status(_file_status(sid, FILE_CANCELED, 0), T0))
    assert other.status is S.CANCELED
    await store.close()


async def test_the_simulated_exchange_ends_carry_its_exact_filled_count() -> None:
    venue = tiny_venue(positions={SYM: 1000})
    cid = await venue.submit(Side.SELL, 9990, 800, when="09:30:01")  # takes bid 9.99 x 500
    await venue.cancel(cid, when="09:30:02")
    rest = await venue.submit(Side.BUY, 9000, 100, when="09:30:02")
    venue.run()
    (canceled,) = venue.of(cid, OrderCanceled)
    assert isinstance(canceled, OrderCanceled)
    assert canceled.filled_qty == 500
    venue.exchange.expire_all()
    venue.run()
    (expired,) = venue.of(rest, OrderExpired)
    assert isinstance(expired, OrderExpired)
    assert expired.filled_qty == 0


async def test_the_fault_pushes_the_end_ahead_of_the_rows_of_fills_just_before_it() -> None:
    """``cancel_ahead_of_fill`` (replay.faults): the order's trade rows lag, its end does not."""
    lag = 2 * 10**9
    clock, _, adapter = make_venue(FaultPlan(seed=3, cancel_ahead_of_fill=1.0, fill_row_lag_ns=lag))
    delivered: list[OrderEvent] = []
    adapter.bind(delivered.append)
    order = Order(client_order_id="A", symbol=SYM, side=Side.BUY, price=10_010, quantity=800)
    run_until(clock, at("09:30:01"))
    await adapter.submit(order)  # takes the ask 10.01 x 300 on arrival, rests the rest
    run_until(clock, at("09:30:01") + 500_000_000)
    await adapter.cancel(order)
    while clock.step():
        pass
    kinds = [type(e).__name__ for e in delivered]
    assert kinds == ["OrderAccepted", "OrderCanceled", "OrderFilled"]
    end = delivered[1]
    assert isinstance(end, OrderCanceled)
    assert end.filled_qty == 300  # the exchange's exact count, ahead of the row
    assert adapter.injected["cancel_ahead_of_fill"] == 1
    assert adapter.rows_pushed_late == 1
    # the broker's books have the trade at once: a query lists it before the row is pushed
    assert [t.quantity for t in await adapter.query_trades()] == [300]


# ------------------------------------------------------------------------------------------ algorithms
async def test_a_child_beyond_the_parents_room_is_refused_at_the_last_check() -> None:
    world = await world_with_quote()
    algo = TwapAlgo(make_parent(1_000), context(world))
    algo.child_quantity = lambda wanted: wanted  # type: ignore[method-assign]  # a sizing bug
    algo.start()
    algo.work(1_500, "aggressive", 0, "test")
    assert world.broker.submitted == []
    assert algo.children_refused_over_parent == 1


async def test_a_late_fill_on_an_ended_child_that_over_commits_the_parent_cancels_the_working_ones() -> None:
    """A broker that ended a child with a wrong figure: the replacement is sized, then the late row comes."""
    world = await world_with_quote()
    algo = TwapAlgo(make_parent(1_000, start="10:00", end="10:10", interval_s="600"), context(world))
    algo.start()
    await world.run_until(twap_at("10:00"))
    (first,) = world.broker.submitted
    algo.work(1_000, "aggressive", 0, "again")
    await world.oms.flush()
    world.broker.confirm_cancel(first.client_order_id, filled=0)  # says 0: the fill is not counted
    await world.oms.flush()
    assert len(world.broker.submitted) == 2
    second = world.broker.submitted[1]
    assert second.quantity == 1_000
    world.broker.fill(first.client_order_id, 400)  # the late row on the ended child
    await world.oms.flush()
    assert second.client_order_id in world.broker.cancel_requests  # over-committed: cancelled at once


async def test_a_twap_child_cancelled_ahead_of_its_fill_row_never_overfills_the_parent() -> None:
    """End to end on the simulated exchange: a passive child fills 800 at 09:30:06; the final sweep
    cancels it at 09:30:07; the cancel confirmation (800 filled) overtakes the fill row, which comes 30 s
    later. The sweep must not size a replacement from 0 filled (that would buy 1000 more: 1800)."""
    market = MarketData(days={SYM: tiny_day()}, trade_date=DAY)
    holder: list[FaultyAdapter] = []

    def wrap(exchange: Any, clock: Any) -> FaultyAdapter:
        plan = FaultPlan(seed=1, cancel_ahead_of_fill=1.0, fill_row_lag_ns=30 * 10**9)
        holder.append(FaultyAdapter(exchange, plan, clock))
        return holder[0]

    with tempfile.TemporaryDirectory() as tmp:
        config = ReplayConfig(cash=10**10, db_path=Path(tmp) / "j.db")
        session = await open_session(market, config, at("09:30:04"), wrap=wrap)
        try:
            basket = Basket(session.ctx)
            parent = ParentOrder(
                parent_id="P1",
                symbol=SYM,
                side=Side.BUY,
                quantity=1_000,
                start_ns=at("09:30:04"),
                end_ns=at("09:30:14"),
                algo="twap",
                params={"interval_s": "60", "price_policy": "passive", "final_sweep_s": "7"},
            )
            basket.add(parent)
            basket.start()
            await session.run(at("09:31:30"), lambda: basket.done)
            children = session.oms.children_of("P1")
            filled = sum(c.filled_quantity for c in children)
            venue = {r.client_order_id: r.filled_quantity for r in await session.exchange.query_orders()}
        finally:
            await session.store.close()
    assert holder[0].injected["cancel_ahead_of_fill"] == 1
    assert session.oms.held_ends.counters.held == 1
    assert filled == 1_000  # never 1800
    assert basket.algos["P1"].filled_quantity == 1_000
    assert {c.client_order_id: c.filled_quantity for c in children} == venue
    assert session.oms.counters.fills_after_end == 0
    assert [c.status for c in children] == [S.CANCELED, S.FILLED]
    assert children[0].filled_quantity == 800
    assert children[1].quantity == 200  # the sweep sized from the confirmed 800


async def test_an_order_denied_cancel_of_a_never_sent_order_ends_at_once(tmp_path: Path) -> None:
    """A cancel of an order still in the outbox never reached a broker: it ends with 0 at once."""
    _, broker, oms, store = await engine(tmp_path)
    order = oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=100, price=PRICE))
    assert oms.cancel(order.client_order_id)
    assert order.status is S.CANCELED
    assert broker.submitted == []
    await store.close()


def test_records_default_to_a_broker_that_did_not_say() -> None:
    assert OrderCanceled(ts_event=1, ts_init=1, client_order_id="Z", symbol=SYM).filled_qty is None
    assert OrderExpired(ts_event=1, ts_init=1, client_order_id="Z", symbol=SYM).filled_qty is None
