"""The order state machine: every legal transition, every illegal one, fills and races."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import IllegalTransition, OverfillError
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from zhixing.engine.orders import PREVIOUS, TRANSITIONS, Order
from zhixing.engine.reasons import DenialCode

S = OrderStatus
CID = "Z000000001"
EVENT_TYPES: list[type[OrderEvent]] = [
    OrderDenied,
    OrderSubmitted,
    OrderAccepted,
    OrderRejected,
    OrderPendingCancel,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
]


def make_order(status: OrderStatus = S.INITIALIZED, quantity: int = 1000, filled: int = 0) -> Order:
    return Order(
        client_order_id=CID,
        symbol="600000.SH",
        side=Side.BUY,
        price=10_000,
        quantity=quantity,
        status=status,
        filled_quantity=filled,
    )


_trade_seq = iter(range(1, 10**9))


def make_event(event_type: type[OrderEvent], quantity: int = 100, trade_id: str | None = None) -> OrderEvent:
    base = {"ts_event": 1, "ts_init": 2, "client_order_id": CID, "symbol": "600000.SH"}
    if event_type is OrderFilled:
        return OrderFilled(
            **base,
            trade_id=trade_id or f"T{next(_trade_seq)}",
            side=Side.BUY,
            price=10_000,
            quantity=quantity,
        )
    if event_type is OrderAccepted:
        return OrderAccepted(**base, broker_order_id="B1")
    if event_type is OrderDenied:
        return OrderDenied(**base, reason="halted: test", code=DenialCode.HALTED)
    if event_type in (OrderRejected, OrderCancelRejected):
        return event_type(**base, reason="test")  # type: ignore[call-arg]
    return event_type(**base)


@pytest.mark.parametrize(("status", "event_type"), sorted(TRANSITIONS, key=str))
def test_every_legal_transition_lands_in_the_table_status(
    status: OrderStatus, event_type: type[OrderEvent]
) -> None:
    order = make_order(status)
    order.status_before_cancel = S.ACCEPTED if status is S.PENDING_CANCEL else None
    assert order.apply(make_event(event_type)) is True
    expected = TRANSITIONS[(status, event_type)]
    if expected == PREVIOUS:
        expected = S.ACCEPTED
    assert order.status is expected


ILLEGAL = [(s, e) for s in S for e in EVENT_TYPES if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("status", "event_type"), ILLEGAL, ids=lambda x: getattr(x, "__name__", str(x)))
def test_every_illegal_transition_raises_and_names_both(
    status: OrderStatus, event_type: type[OrderEvent]
) -> None:
    order = make_order(status)
    with pytest.raises(IllegalTransition) as info:
        order.apply(make_event(event_type))
    assert event_type.__name__ in str(info.value)
    assert str(status) in str(info.value)
    assert order.status is status
    assert order.filled_quantity == 0


def test_terminal_states_are_absorbing_for_everything_but_fills_and_cancel_noise() -> None:
    for status in (S.DENIED, S.REJECTED, S.EXPIRED, S.FILLED, S.CANCELED):
        for event_type in (OrderSubmitted, OrderPendingCancel, OrderCanceled, OrderAccepted):
            nxt = TRANSITIONS.get((status, event_type))
            assert nxt in (None, status)


def test_full_fill_promotes_to_filled_and_partial_stays_partial() -> None:
    order = make_order(S.ACCEPTED)
    order.apply(make_event(OrderFilled, 400))
    assert order.status is S.PARTIALLY_FILLED
    order.apply(make_event(OrderFilled, 600))
    assert order.status is S.FILLED
    assert order.filled_quantity == 1000
    assert order.leaves_quantity == 0


def test_duplicate_fill_is_ignored_by_trade_id() -> None:
    order = make_order(S.ACCEPTED)
    fill = make_event(OrderFilled, 300, trade_id="T-dup")
    assert order.apply(fill) is True
    assert order.apply(fill) is False
    assert order.filled_quantity == 300


def test_fill_before_ack_then_late_ack_does_not_regress() -> None:
    order = make_order(S.SUBMITTED)
    order.apply(make_event(OrderFilled, 1000))
    assert order.status is S.FILLED
    order.apply(make_event(OrderAccepted))
    assert order.status is S.FILLED
    assert order.broker_order_id == "B1"


def test_fill_racing_a_cancel_then_cancel_confirmed_keeps_the_fill() -> None:
    order = make_order(S.ACCEPTED)
    order.apply(make_event(OrderPendingCancel))
    order.apply(make_event(OrderFilled, 400))
    assert order.status is S.PENDING_CANCEL
    order.apply(make_event(OrderCanceled))
    assert order.status is S.CANCELED
    assert order.filled_quantity == 400


def test_cancel_rejected_after_full_fill_never_overwrites_filled() -> None:
    order = make_order(S.ACCEPTED)
    order.apply(make_event(OrderPendingCancel))
    order.apply(make_event(OrderFilled, 1000))
    assert order.status is S.FILLED
    order.apply(make_event(OrderCancelRejected))
    assert order.status is S.FILLED


def test_cancel_rejected_returns_to_partially_filled_when_fills_arrived_meanwhile() -> None:
    order = make_order(S.ACCEPTED)
    order.apply(make_event(OrderPendingCancel))
    order.apply(make_event(OrderFilled, 300))
    order.apply(make_event(OrderCancelRejected))
    assert order.status is S.PARTIALLY_FILLED


def test_late_fill_on_cancelled_order_is_applied_and_order_stays_cancelled() -> None:
    order = make_order(S.CANCELED, filled=0)
    order.apply(make_event(OrderFilled, 200))
    assert order.status is S.CANCELED
    assert order.filled_quantity == 200


def test_overfill_raises_and_changes_nothing() -> None:
    order = make_order(S.ACCEPTED)
    order.apply(make_event(OrderFilled, 900))
    with pytest.raises(OverfillError):
        order.apply(make_event(OrderFilled, 200))
    assert order.filled_quantity == 900
    assert order.status is S.PARTIALLY_FILLED


def test_event_for_another_order_is_refused() -> None:
    order = make_order(S.ACCEPTED)
    other = OrderCanceled(ts_event=1, ts_init=1, client_order_id="OTHER", symbol="600000.SH")
    with pytest.raises(IllegalTransition):
        order.apply(other)


@given(
    st.lists(
        st.tuples(st.sampled_from(EVENT_TYPES), st.integers(1, 700), st.integers(0, 5)),
        max_size=40,
    )
)
def test_no_sequence_of_updates_overfills(steps: list[tuple[type[OrderEvent], int, int]]) -> None:
    order = make_order(S.INITIALIZED, quantity=1000)
    order.apply(make_event(OrderSubmitted))
    previous_filled = 0
    for event_type, quantity, dup in steps:
        event = make_event(event_type, quantity, trade_id=f"T{dup}" if event_type is OrderFilled else None)
        with contextlib.suppress(IllegalTransition, OverfillError):
            order.apply(event)
        assert 0 <= order.filled_quantity <= order.quantity
        assert order.filled_quantity >= previous_filled  # monotone
        previous_filled = order.filled_quantity
        if order.status is S.FILLED:
            assert order.filled_quantity == order.quantity


def test_duplicate_of_the_completing_fill_is_a_duplicate_not_an_illegal_transition() -> None:
    order = make_order(S.ACCEPTED)
    completing = make_event(OrderFilled, 1000, trade_id="T-last")
    assert order.apply(completing) is True
    assert order.status is S.FILLED
    assert order.apply(completing) is False  # re-pushed after reconnect: ignored, no error
    assert order.filled_quantity == 1000
