"""The file route's fees: the terminal's execution rows carry none, so the tracker estimates each trade's
fees with the account's rates, the minimum commission once per order; fees the terminal does write are
taken as written; the estimate is off when asked; a restart re-reads the same rows to the same fees."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhixing.adapters.fileorder import FileOrderConfig
from zhixing.adapters.fileorder.format import EXEC_TRADE
from zhixing.adapters.fileorder.reader import ExecRow
from zhixing.adapters.fileorder.tracker import ReportTracker
from zhixing.engine.enums import Side
from zhixing.engine.errors import ConfigError
from zhixing.engine.events import OrderFilled
from zhixing.engine.market import FeeSchedule, instrument_for, shanghai_ns

TRADE_TS = shanghai_ns(date(2024, 3, 1), "10:00")  # a 2024 trade: 0.05% stamp duty, 0.001% transfer fee
SETTINGS = {"input_dir": "in", "output_dir": "out", "account_id": "acct-1", "state_dir": "state"}


def trade(exec_id: str, sid: str, side: Side, price: int, volume: int, **fees: int) -> ExecRow:
    return ExecRow(
        sid=sid,
        order_id=f"T-{sid}",
        exec_id=exec_id,
        symbol="600000.SH",
        side=side,
        exec_type=EXEC_TRADE,
        price=price,
        volume=volume,
        reject_code=0,
        reject_detail="",
        commission=fees.get("commission", 0),
        stamp_duty=fees.get("stamp_duty", 0),
        transfer_fee=fees.get("transfer_fee", 0),
        ts_event=TRADE_TS,
        fees_reported=bool(fees),
    )


def fills(tracker: ReportTracker, rows: list[ExecRow]) -> list[OrderFilled]:
    return [e for row in rows for e in tracker.on_exec(row, 0) if isinstance(e, OrderFilled)]


def test_partial_fills_are_charged_the_orders_fees_once_with_one_minimum_commission() -> None:
    schedule = FeeSchedule()  # 万2.5, 5 yuan minimum, stamp duty 0.05% on sells, transfer 0.001%
    rows = [
        trade("e1", "Z1", Side.SELL, 10_000, 1_000),  # 10,000 yuan: commission 2.50 -> the 5 yuan minimum
        trade("e2", "Z1", Side.SELL, 10_010, 30_000),  # 310,300 yuan in all: commission 77.575 -> 77.58
        trade("e3", "Z2", Side.BUY, 10_000, 100),  # another order: its own minimum, no stamp duty
    ]
    got = fills(ReportTracker(schedule), rows)
    z1 = [f for f in got if f.client_order_id == "Z1"]
    total_value = 10_000 * 1_000 + 10_010 * 30_000
    expected = schedule.fees(instrument_for("600000.SH"), Side.SELL, total_value, 1)
    assert (z1[0].commission, z1[1].commission) == (5_000, expected[0] - 5_000)
    assert sum(f.commission for f in z1) == expected[0] == 77_580
    assert sum(f.stamp_duty for f in z1) == expected[1]
    assert sum(f.transfer_fee for f in z1) == expected[2]
    z2 = next(f for f in got if f.client_order_id == "Z2")
    assert (z2.commission, z2.stamp_duty) == (5_000, 0)
    # query_trades reports the same fees as the pushed fills
    tracker = ReportTracker(schedule)
    fills(tracker, rows)
    assert {t.trade_id: t.commission for t in tracker.trades()} == {f.trade_id: f.commission for f in got}
    assert tracker.stats.fees_estimated == 3


def test_fees_the_terminal_writes_are_taken_as_written() -> None:
    tracker = ReportTracker(FeeSchedule())
    (fill,) = fills(
        tracker, [trade("e1", "Z1", Side.SELL, 10_000, 1_000, commission=1_230, stamp_duty=5_000)]
    )
    assert (fill.commission, fill.stamp_duty, fill.transfer_fee) == (1_230, 5_000, 0)
    assert tracker.stats.fees_estimated == 0


def test_without_an_estimate_a_trade_books_no_fees() -> None:
    (fill,) = fills(ReportTracker(None), [trade("e1", "Z1", Side.SELL, 10_000, 1_000)])
    assert (fill.commission, fill.stamp_duty, fill.transfer_fee) == (0, 0, 0)


def test_a_restart_rereads_the_rows_to_the_same_fees_and_a_repeated_row_is_not_charged_twice() -> None:
    rows = [trade(f"e{i}", "Z1", Side.BUY, 10_000, 200) for i in range(5)]
    first = fills(ReportTracker(FeeSchedule()), [*rows, rows[2]])  # the terminal repeats a row
    again = fills(ReportTracker(FeeSchedule()), rows)  # a new process reads the file from the top
    assert [(f.trade_id, f.commission, f.transfer_fee) for f in first] == [
        (f.trade_id, f.commission, f.transfer_fee) for f in again
    ]
    assert len(first) == 5
    assert sum(f.commission for f in first) == 5_000  # 10,000 yuan in all: one minimum commission


def test_the_rates_come_from_the_route_table() -> None:
    config = FileOrderConfig.from_settings({**SETTINGS, "commission_ppm": 100, "min_commission_yuan": 0.1})
    schedule = config.fee_schedule()
    assert schedule is not None
    assert (schedule.commission_ppm, schedule.min_commission) == (100, 100)
    assert FileOrderConfig.from_settings({**SETTINGS, "estimate_fees": False}).fee_schedule() is None
    assert FileOrderConfig.from_settings(SETTINGS).fee_schedule() == FeeSchedule()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("commission_ppm", 25.0),
        ("commission_ppm", 5_000),
        ("min_commission_yuan", -1),
        ("estimate_fees", "yes"),
    ],
)
def test_a_bad_rate_names_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"route\.fileorder\.{key}"):
        FileOrderConfig.from_settings({**SETTINGS, key: value}, source="live.toml")


@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    fills_=st.lists(
        st.tuples(st.integers(min_value=1_000, max_value=500_000), st.integers(min_value=1, max_value=5_000)),
        min_size=1,
        max_size=30,
    ),
    commission_ppm=st.integers(min_value=0, max_value=3_000),
    min_commission=st.integers(min_value=0, max_value=100_000),
)
def test_any_split_of_an_order_is_charged_exactly_the_orders_fees(
    side: Side, fills_: list[tuple[int, int]], commission_ppm: int, min_commission: int
) -> None:
    """However the terminal splits an order into trades, the estimates add up to the fees of the whole
    order, and no trade is charged a negative fee."""
    schedule = FeeSchedule(commission_ppm=commission_ppm, min_commission=min_commission)
    rows = [trade(f"e{i}", "Z1", side, price, volume) for i, (price, volume) in enumerate(fills_)]
    got = fills(ReportTracker(schedule), rows)
    total_value = sum(price * volume for price, volume in fills_)
    expected = schedule.fees(instrument_for("600000.SH"), side, total_value, 1)
    assert (
        sum(f.commission for f in got),
        sum(f.stamp_duty for f in got),
        sum(f.transfer_fee for f in got),
    ) == expected
    assert all(min(f.commission, f.stamp_duty, f.transfer_fee) >= 0 for f in got)
