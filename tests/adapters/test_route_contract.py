"""One contract every broker route passes (issue 6 item 5): the simulated exchange, file orders through the
terminal emulator, the QMT fake and the gm fake, each behind a real OrderManager, Account and StateStore.

The engine-side result is checked identically for every route: statuses, filled quantities, the events
the engine published, fill dedupe, the broker's answers to the queries, and a restart that adopts the
broker's truth by client order id without resending. How each route is driven: ``tests/route_contract.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.route_contract import FILL_PLAN, ROUTES, SYMBOL, VENUE_CASH, Rig, make_venue, trade_cost
from zhixing.engine.enums import OrderStatus
from zhixing.engine.events import OrderCanceled, OrderCancelRejected, OrderFilled
from zhixing.engine.orders import Order

S = OrderStatus


def status(order: Order) -> OrderStatus:
    """The status now (a call: a type checker must not carry a narrowing across awaits)."""
    return order.status


@pytest.fixture(params=ROUTES)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(make_venue(request.param, tmp_path), tmp_path)
    await r.start()
    try:
        yield r
    finally:
        await r.close()


def assert_clean(rig: Rig) -> None:
    counters = rig.oms.counters
    assert (counters.illegal_transitions, counters.overfill_alarms, counters.duplicate_fills) == (0, 0, 0)
    assert counters.unknown_order_events == 0
    assert rig.oms.halted_reason is None


# ------------------------------------------------------------------------------------------ 1
async def test_submit_is_accepted_with_a_broker_order_id(rig: Rig) -> None:
    order = await rig.submit(rig.venue.resting_order())
    await rig.settle()
    assert status(order) is S.ACCEPTED
    assert order.broker_order_id
    assert order.filled_quantity == 0
    assert rig.engine.kinds(order.client_order_id) == ["OrderSubmitted", "OrderAccepted"]
    assert rig.engine.statuses[order.client_order_id] == [S.SUBMITTED, S.ACCEPTED]
    assert rig.venue.orders_received() == 1
    assert_clean(rig)


# ------------------------------------------------------------------------------------------ 2


@pytest.mark.parametrize("rig", ROUTES, indirect=True)
async def test_partial_fill_then_fill_in_two_trades(rig: Rig) -> None:
    first, second = FILL_PLAN
    order = await rig.submit(rig.venue.marketable_order())
    cid = order.client_order_id
    await rig.settle()
    await rig.venue.fill_to(cid, first)
    await rig.settle()
    assert status(order) is S.PARTIALLY_FILLED
    assert order.filled_quantity == first
    await rig.venue.fill_to(cid, first + second)
    await rig.settle()
    assert status(order) is S.FILLED
    assert order.filled_quantity == first + second == order.quantity
    assert len(order.trade_ids) == 2
    fills = [e for e in rig.engine.events if isinstance(e, OrderFilled)]
    assert [f.quantity for f in fills] == [first, second]
    assert {f.trade_id for f in fills} == order.trade_ids
    assert order.broker_order_id
    assert rig.engine.account.positions[SYMBOL].quantity == first + second
    # the journal holds each fill once
    journal = [fill for fill, _ in await rig.engine.store.load_fills() if fill.client_order_id == cid]
    assert sorted(f.trade_id for f in journal) == sorted(order.trade_ids)
    assert_clean(rig)
    # last, the one check a route fails today (see FILL_BEFORE_ACK): the engine's events in order
    assert rig.engine.kinds(cid) == ["OrderSubmitted", "OrderAccepted", "OrderFilled", "OrderFilled"]
    assert rig.engine.statuses[cid] == [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED]


# ------------------------------------------------------------------------------------------ 3
async def test_cancel_of_a_working_order_ends_canceled(rig: Rig) -> None:
    order = await rig.submit(rig.venue.resting_order())
    await rig.settle()
    assert status(order) is S.ACCEPTED
    await rig.cancel(order)
    await rig.settle()
    assert status(order) is S.CANCELED
    assert order.filled_quantity == 0
    cid = order.client_order_id
    assert rig.engine.kinds(cid) == ["OrderSubmitted", "OrderAccepted", "OrderPendingCancel", "OrderCanceled"]
    assert rig.engine.statuses[cid] == [S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL, S.CANCELED]
    assert rig.engine.account.frozen == 0  # what the order held is released
    assert_clean(rig)


# ------------------------------------------------------------------------------------------ 4
async def test_cancel_rejected_because_the_order_just_filled_stays_filled(rig: Rig) -> None:
    order = await rig.submit(rig.venue.marketable_order())
    cid = order.client_order_id
    await rig.settle()
    await rig.venue.fill_to(cid, order.quantity)  # the engine is not told yet ...
    await rig.cancel(order)  # ... and asks to cancel
    await rig.settle()
    assert status(order) is S.FILLED
    assert order.filled_quantity == order.quantity
    kinds = rig.engine.kinds(cid)
    assert "OrderPendingCancel" in kinds
    rejects = [e for e in rig.engine.events if isinstance(e, OrderCancelRejected)]
    assert [r.client_order_id for r in rejects] == [cid]
    assert rejects[0].reason
    assert not [e for e in rig.engine.events if isinstance(e, OrderCanceled)]
    assert rig.engine.statuses[cid][-1] is S.FILLED
    assert_clean(rig)


# ------------------------------------------------------------------------------------------ 5
async def test_venue_reject_carries_a_reason_naming_the_cause(rig: Rig) -> None:
    command, cause = rig.venue.refused_order()
    order = await rig.submit(command)
    await rig.settle()
    assert status(order) is S.REJECTED
    assert cause in order.reason, order.reason
    assert order.venue_confirmed is True
    assert order.filled_quantity == 0
    assert rig.engine.kinds(order.client_order_id).count("OrderRejected") == 1
    assert rig.venue.orders_received() == 1
    assert rig.engine.account.frozen == 0
    assert_clean(rig)


# ------------------------------------------------------------------------------------------ 6
async def test_queries_reflect_fills_cancels_and_rejects_by_client_order_id(rig: Rig) -> None:
    filled = await rig.submit(rig.venue.marketable_order())
    resting = await rig.submit(rig.venue.resting_order())
    await rig.settle()
    await rig.venue.fill_to(filled.client_order_id, filled.quantity)
    await rig.cancel(resting)
    await rig.settle()
    command, _ = rig.venue.refused_order()
    refused = await rig.submit(command)
    await rig.settle()
    assert (status(filled), status(resting), status(refused)) == (S.FILLED, S.CANCELED, S.REJECTED)

    reports = {r.client_order_id: r for r in await rig.adapter.query_orders()}
    for order in (filled, resting, refused):
        report = reports[order.client_order_id]
        assert (report.status, report.filled_quantity) == (order.status, order.filled_quantity)
        assert (report.symbol, report.side, report.quantity, report.price) == (
            order.symbol,
            order.side,
            order.quantity,
            order.price,
        )
    assert reports[filled.client_order_id].broker_order_id == filled.broker_order_id
    assert reports[refused.client_order_id].reason

    trades = [t for t in await rig.adapter.query_trades() if t.client_order_id == filled.client_order_id]
    assert {t.trade_id for t in trades} == filled.trade_ids
    assert sum(t.quantity for t in trades) == filled.quantity
    assert all(t.broker_order_id == filled.broker_order_id for t in trades)

    (position,) = [p for p in await rig.adapter.query_positions() if p.symbol == SYMBOL]
    assert position.quantity == filled.quantity
    assert position.sellable == 0  # bought today: T+1

    account = await rig.adapter.query_account()
    assert account.cash < VENUE_CASH
    assert account.frozen == 0  # nothing works any more
    assert_clean(rig)


async def test_queried_cash_is_the_start_less_the_queried_trades_and_their_fees(rig: Rig) -> None:
    """The file route's execution rows carry no fees: its tracker estimates them with the account's rates
    (here the emulated broker's own), so its trades and cash agree like the other routes'."""
    order = await rig.submit(rig.venue.marketable_order())
    await rig.settle()
    await rig.venue.fill_to(order.client_order_id, order.quantity)
    await rig.settle()
    assert status(order) is S.FILLED
    trades = [t for t in await rig.adapter.query_trades() if t.client_order_id == order.client_order_id]
    assert sum(t.quantity for t in trades) == order.quantity
    spent = sum(trade_cost(t.price, t.quantity, t.commission, t.stamp_duty, t.transfer_fee) for t in trades)
    engine_fees = order.commission + order.stamp_duty + order.transfer_fee
    assert engine_fees >= 5_000  # at least the minimum commission, on every route
    assert engine_fees == sum(t.commission + t.stamp_duty + t.transfer_fee for t in trades)
    account = await rig.adapter.query_account()
    assert account.cash == VENUE_CASH - spent


# ------------------------------------------------------------------------------------------ 7
async def test_restart_adopts_the_brokers_state_by_client_order_id_and_resends_nothing(rig: Rig) -> None:
    first, second = FILL_PLAN
    filling = await rig.submit(rig.venue.marketable_order())
    resting = await rig.submit(rig.venue.resting_order())
    await rig.settle()
    await rig.venue.fill_to(filling.client_order_id, first)
    await rig.settle()
    assert (status(filling), filling.filled_quantity) == (S.PARTIALLY_FILLED, first)
    heard = set(filling.trade_ids)
    sent = rig.venue.orders_received()

    await rig.crash()
    await rig.venue.fill_to(filling.client_order_id, first + second)  # the broker trades on while we are down
    await rig.venue.settle()  # ... and time passes: the terminal writes its files, pushes reach nobody
    report = await rig.restart()

    assert report.ok, report.mismatches
    assert sorted(report.adopted) == sorted([filling.client_order_id, resting.client_order_id])
    assert report.rebuilt == 2
    assert report.external == []
    assert report.fills_applied == 1  # the trade heard before the crash is not applied again
    adopted = rig.oms.orders[filling.client_order_id]
    assert adopted is not filling  # a new engine, rebuilt from the journal
    assert status(adopted) is S.FILLED
    assert adopted.filled_quantity == first + second
    assert heard < adopted.trade_ids
    assert len(adopted.trade_ids) == 2
    assert adopted.broker_order_id == filling.broker_order_id
    still = rig.oms.orders[resting.client_order_id]
    assert status(still) is S.ACCEPTED
    assert still.broker_order_id == resting.broker_order_id
    assert rig.engine.account.positions[SYMBOL].quantity == first + second
    journal = [
        f for f, _ in await rig.engine.store.load_fills() if f.client_order_id == filling.client_order_id
    ]
    assert sorted(f.trade_id for f in journal) == sorted(adopted.trade_ids)
    assert rig.venue.orders_received() == sent  # nothing was sent again
    counters = rig.oms.counters
    assert (counters.submitted, counters.illegal_transitions, counters.overfill_alarms) == (0, 0, 0)
    assert counters.duplicate_fills == 0
    assert rig.oms.halted_reason is None

    # the restarted engine still works the adopted order: a cancel reaches the broker
    await rig.cancel(still)
    await rig.settle()
    assert status(still) is S.CANCELED
