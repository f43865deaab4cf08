"""File-order reader and adapter mapping: half-written lines, BOM, dedupe by exec id, GM codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig
from zhixing.adapters.fileorder import format as gm
from zhixing.adapters.fileorder.format import (
    EXECUTION_REPORT_HEADER,
    ORDER_STATUS_HEADER,
    parse_ts,
    price_text,
    ts_text,
)
from zhixing.adapters.fileorder.reader import read_snapshot
from zhixing.adapters.fileorder.tail import TailFile
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerError, ConfigError
from zhixing.engine.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from zhixing.engine.orders import Order

START = 1_638_322_200_000_000_000  # 2021-12-01 09:30:00 +08:00
BOM = b"\xef\xbb\xbf"
ACCOUNT = "1395dc4f-3601-11eb-bda5-001018b67b94"


def _line(values: list[object]) -> bytes:
    return (",".join(str(v) for v in values) + "\r\n").encode("utf-8")


def _header(names: tuple[str, ...]) -> bytes:
    return BOM + _line(list(names))


def _status(
    sid: str, status: int, filled: int = 0, *, cl: str = "CL1", order_id: str = "O1", detail: str = ""
) -> bytes:
    values: dict[str, object] = dict.fromkeys(ORDER_STATUS_HEADER, "")
    values.update(
        {
            "account_id": ACCOUNT,
            "sid": sid,
            "cl_ord_id": cl,
            "order_id": order_id,
            "symbol": "SHSE.600000",
            "order_type": 1,
            "order_business(order_biz)": 1,
            "status": status,
            "ord_rej_reason(rej_reason)": 2 if status == 8 else 0,
            "ord_rej_reason_detail(rej_detail)": detail,
            "price": "9.87",
            "volume": 1000,
            "filled_volume(filled_vol)": filled,
            "created_at": "2021-12-01T09:30:01.000000+08:00",
            "updated_at": "2021-12-01T09:30:02.500000+08:00",
        }
    )
    return _line([values[k] for k in ORDER_STATUS_HEADER])


def _exec(sid: str, exec_id: str, volume: int, *, exec_type: int = 15, detail: str = "") -> bytes:
    values: dict[str, object] = dict.fromkeys(EXECUTION_REPORT_HEADER, "")
    values.update(
        {
            "account_id": ACCOUNT,
            "sid": sid,
            "cl_ord_id": "CL1",
            "order_id": "O1",
            "exec_id": exec_id,
            "symbol": "SHSE.600000",
            "order_type": 1,
            "order_business(order_biz)": 2,
            "ord_rej_reason(rej_reason)": 0,
            "ord_rej_reason_detail(rej_detail)": detail,
            "exec_type": exec_type,
            "price": "9.86",
            "volume": volume,
            "created_at": "2021-12-01T09:30:03+08:00",
        }
    )
    return _line([values[k] for k in EXECUTION_REPORT_HEADER])


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = SimClock(START)
        self.config = FileOrderConfig(
            input_dir=tmp_path / "scan",
            output_dir=tmp_path / "push",
            account_id=ACCOUNT,
            state_dir=tmp_path / "state",
            poll_interval_ns=100_000_000,
        )
        self.config.input_dir.mkdir()
        self.out = self.config.account_output_dir
        self.out.mkdir(parents=True)
        self.events: list[OrderEvent] = []
        self.adapter = FileOrderAdapter(self.config, self.clock)
        self.adapter.bind(self.events.append)

    def append(self, name: str, data: bytes) -> None:
        with open(self.out / name, "ab") as handle:
            handle.write(data)


@pytest.fixture
async def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    r = Rig(tmp_path)
    await r.adapter.connect()
    yield r
    await r.adapter.close()


def test_tail_keeps_a_half_written_line_for_the_next_poll(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_bytes(_header(EXECUTION_REPORT_HEADER) + _exec("Z1", "E1", 100))
    tail = TailFile(path)
    assert [r.get("exec_id") for _, r in tail.poll()] == ["E1"]
    full = _exec("Z1", "E2", 200)
    with open(path, "ab") as handle:
        handle.write(full[:25])  # the terminal is mid-line
    assert tail.poll() == []
    with open(path, "ab") as handle:
        handle.write(full[25:])
    rows = tail.poll()
    assert [(r.get("exec_id"), r.get("volume")) for _, r in rows] == [("E2", "200")]
    assert rows[0][0] == 3  # line numbers count the header


def test_tail_reads_bom_header_and_both_column_spellings(tmp_path: Path) -> None:
    path = tmp_path / "order_status_change.csv"
    path.write_bytes(_header(ORDER_STATUS_HEADER) + _status("Z1", 2, 300))
    ((_, row),) = TailFile(path).poll()
    assert row.get("sid") == "Z1"  # the BOM is not part of the first column's name
    assert row.get("filled_volume") == row.get("filled_vol") == row.get("filled_volume(filled_vol)") == "300"


def test_tail_restarts_when_the_file_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_bytes(_header(EXECUTION_REPORT_HEADER) + _exec("Z1", "E1", 100) + _exec("Z1", "E2", 100))
    tail = TailFile(path)
    assert len(tail.poll()) == 2
    path.write_bytes(_header(EXECUTION_REPORT_HEADER) + _exec("Z1", "E3", 100))
    assert [r.get("exec_id") for _, r in tail.poll()] == ["E3"]


def test_snapshot_mid_write_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "order_status.csv"
    whole = _header(ORDER_STATUS_HEADER) + _status("Z1", 1)
    path.write_bytes(whole[:-5])
    assert read_snapshot(path) is None
    path.write_bytes(whole)
    rows = read_snapshot(path)
    assert rows is not None
    assert [r.get("sid") for _, r in rows] == ["Z1"]


async def test_trades_become_fills_once_per_exec_id(rig: Rig) -> None:
    rig.append("execution_report.csv", _header(EXECUTION_REPORT_HEADER) + _exec("Z1", "E1", 300))
    rig.append("execution_report.csv", _exec("Z1", "E1", 300) + _exec("Z1", "E2", 200))  # E1 repeated
    rig.adapter.poll()
    fills = [e for e in rig.events if isinstance(e, OrderFilled)]
    assert [(f.trade_id, f.quantity, f.price, f.side) for f in fills] == [
        ("E1", 300, 9860, Side.SELL),
        ("E2", 200, 9860, Side.SELL),
    ]
    assert fills[0].symbol == "600000.SH"
    assert fills[0].ts_event == parse_ts("2021-12-01T09:30:03+08:00")
    assert rig.adapter.tracker.stats.duplicate_exec_rows == 1
    assert [t.trade_id for t in await rig.adapter.query_trades()] == ["E1", "E2"]


async def test_status_codes_map_to_events_once(rig: Rig) -> None:
    rig.append(
        "order_status_change.csv",
        _header(ORDER_STATUS_HEADER)
        + _status("Z1", 10, order_id="")
        + _status("Z1", 1)
        + _status("Z1", 2, 300)
        + _status("Z1", 5, 300)
        + _status("Z1", 5, 300)
        + _status("Z2", 8, cl="CL2", order_id="", detail="资金不足")
        + _status("Z3", 12, cl="CL3", order_id="O3"),
    )
    rig.adapter.poll()
    got = [(type(e).__name__, e.client_order_id) for e in rig.events]
    assert got == [  # acks of a poll first, then the rest in file order
        ("OrderAccepted", "Z1"),
        ("OrderAccepted", "Z3"),
        ("OrderCanceled", "Z1"),
        ("OrderRejected", "Z2"),
        ("OrderExpired", "Z3"),
    ]
    accepted = rig.events[0]
    assert isinstance(accepted, OrderAccepted)
    assert accepted.broker_order_id == "O1"
    rejected = rig.events[3]
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == "no_enough_cash: 资金不足"
    assert isinstance(rig.events[2], OrderCanceled)
    assert isinstance(rig.events[4], OrderExpired)
    reports = {r.client_order_id: r for r in await rig.adapter.query_orders()}
    assert (reports["Z1"].status, reports["Z1"].filled_quantity) == (OrderStatus.CANCELED, 300)
    assert reports["Z2"].status is OrderStatus.REJECTED
    assert reports["Z2"].reason.startswith("no_enough_cash")
    assert reports["Z3"].status is OrderStatus.EXPIRED


async def test_cancel_reject_exec_row_becomes_cancel_rejected(rig: Rig) -> None:
    rig.append(
        "execution_report.csv",
        _header(EXECUTION_REPORT_HEADER) + _exec("Z1", "X1", 0, exec_type=19, detail="order already filled"),
    )
    rig.adapter.poll()
    (event,) = rig.events
    assert isinstance(event, OrderCancelRejected)
    assert event.reason == "order already filled"


async def test_final_status_is_never_overwritten_by_a_stale_row(rig: Rig) -> None:
    rig.append(
        "order_status.csv", _header(ORDER_STATUS_HEADER) + _status("Z1", 3, 1000) + _status("Z1", 2, 300)
    )
    (report,) = await rig.adapter.query_orders()
    assert (report.status, report.filled_quantity) == (OrderStatus.FILLED, 1000)


async def test_another_order_under_a_known_sid_is_ignored(rig: Rig) -> None:
    rig.append(
        "order_status_change.csv",
        _header(ORDER_STATUS_HEADER)
        + _status("Z1", 1)
        + _status("Z1", 8, cl="CL9", order_id="", detail="duplicate sid"),
    )
    rig.adapter.poll()
    assert [type(e).__name__ for e in rig.events] == ["OrderAccepted"]
    (report,) = await rig.adapter.query_orders()
    assert report.status is OrderStatus.ACCEPTED
    assert rig.adapter.tracker.stats.foreign_rows == 1


async def test_polling_runs_on_the_injected_clock(rig: Rig) -> None:
    rig.append("execution_report.csv", _header(EXECUTION_REPORT_HEADER) + _exec("Z1", "E1", 100))
    assert rig.events == []  # written after connect: not read until the timer fires
    assert rig.clock.step()
    assert rig.clock.now_ns() == START + 100_000_000
    assert [type(e).__name__ for e in rig.events] == ["OrderFilled"]


async def test_cash_and_positions_from_snapshots(rig: Rig) -> None:
    with pytest.raises(BrokerError):
        await rig.adapter.query_account()  # nothing written yet: cannot answer
    (rig.out / "cash.csv").write_bytes(
        _header(gm.CASH_HEADER)
        + _line([ACCOUNT, "1100000.00", 0, 0, 0, 0, "990000.50", "1000000.00", "100000.00", "", "", ""])
    )
    (rig.out / "position.csv").write_bytes(
        _header(gm.POSITION_HEADER)
        + _line([ACCOUNT, "SZSE.000001", 1, 1000, 200, "17.5", "17500", "17.5", 0, "17500", 800, "", "", ""])
        + _line([ACCOUNT, "SHSE.600000", 1, 0, 0, "0", "0", "0", 0, "0", 0, "", "", ""])
    )
    account = await rig.adapter.query_account()
    assert (account.cash, account.frozen, account.market_value, account.total_asset) == (
        1_000_000_000,
        9_999_500,
        100_000_000,
        1_100_000_000,
    )
    (position,) = await rig.adapter.query_positions()
    assert (position.symbol, position.quantity, position.sellable, position.avg_cost) == (
        "000001.SZ",
        1000,
        800,
        17500,
    )


def test_values_round_trip() -> None:
    assert price_text(10010) == "10.01"
    assert price_text(1234) == "1.234"
    assert parse_ts(ts_text(START + 123_456_000)) == START + 123_456_000
    assert ts_text(START) == "2021-12-01T09:30:00.000000+08:00"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"route\.fileorder\.poll_interval_ns"):
        FileOrderConfig(
            input_dir=tmp_path, output_dir=tmp_path, account_id="a", state_dir=tmp_path, poll_interval_ns=0
        )
    with pytest.raises(ConfigError, match=r"route\.fileorder\.account_id"):
        FileOrderConfig(input_dir=tmp_path, output_dir=tmp_path, account_id=" ", state_dir=tmp_path)


def test_codes_match_the_real_gm_package() -> None:
    enum = pytest.importorskip("gm.enum")
    assert enum.OrderType_Limit == gm.ORDER_TYPE_LIMIT
    assert (
        enum.OrderBusiness_STOCK_BUY,
        enum.OrderBusiness_STOCK_SELL,
    ) == (gm.ORDER_BIZ_BUY, gm.ORDER_BIZ_SELL)
    assert [
        enum.OrderStatus_New,
        enum.OrderStatus_PartiallyFilled,
        enum.OrderStatus_Filled,
        enum.OrderStatus_Canceled,
    ] == [gm.STATUS_NEW, gm.STATUS_PARTIALLY_FILLED, gm.STATUS_FILLED, gm.STATUS_CANCELED]
    assert [
        enum.OrderStatus_Rejected,
        enum.OrderStatus_PendingNew,
        enum.OrderStatus_Expired,
    ] == [gm.STATUS_REJECTED, gm.STATUS_PENDING_NEW, gm.STATUS_EXPIRED]
    assert [
        enum.ExecType_Trade,
        enum.ExecType_CancelRejected,
        enum.ExecType_Rejected,
    ] == [gm.EXEC_TRADE, gm.EXEC_CANCEL_REJECTED, gm.EXEC_REJECTED]


def test_config_from_the_route_table(tmp_path: Path) -> None:
    table = {
        "input_dir": str(tmp_path / "scan"),
        "output_dir": str(tmp_path / "push"),
        "account_id": ACCOUNT,
        "state_dir": str(tmp_path / "state"),
        "poll_interval_ns": 200_000_000,
        "completion_marker": True,
    }
    config = FileOrderConfig.from_settings(table, "live.toml")
    assert config.account_output_dir == tmp_path / "push" / ACCOUNT
    assert (config.poll_interval_ns, config.completion_marker, config.encoding) == (
        200_000_000,
        True,
        "utf-8-sig",
    )
    with pytest.raises(ConfigError, match=r"live\.toml: key 'route\.fileorder\.poll_interval': unknown"):
        FileOrderConfig.from_settings({**table, "poll_interval": 1}, "live.toml")
    with pytest.raises(ConfigError, match=r"key 'route\.fileorder\.state_dir': is required"):
        FileOrderConfig.from_settings({k: v for k, v in table.items() if k != "state_dir"}, "live.toml")
    with pytest.raises(ConfigError, match=r"live\.toml: key 'route\.fileorder\.encoding': unknown encoding"):
        FileOrderConfig.from_settings({**table, "encoding": "klingon"}, "live.toml")


async def test_restarted_adapter_rebuilds_its_view_from_the_folders(tmp_path: Path) -> None:
    first = Rig(tmp_path)
    await first.adapter.connect()
    waiting = Order(client_order_id="Z2", symbol="600000.SH", side=Side.BUY, price=9870, quantity=500)
    await first.adapter.submit(waiting)  # dropped; the terminal has not answered it
    first.append("order_status_change.csv", _header(ORDER_STATUS_HEADER) + _status("Z1", 2, 300))
    first.append("execution_report.csv", _header(EXECUTION_REPORT_HEADER) + _exec("Z1", "E1", 300))
    await first.adapter.close()  # a crash: nothing but the files and the ledger survive

    second = FileOrderAdapter(first.config, SimClock(START + 10**9))
    events: list[OrderEvent] = []
    second.bind(events.append)
    await second.connect()
    reports = {r.client_order_id: r for r in await second.query_orders()}
    assert (reports["Z1"].status, reports["Z1"].filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 300)
    assert (reports["Z2"].status, reports["Z2"].quantity, reports["Z2"].price) == (
        OrderStatus.SUBMITTED,
        500,
        9870,
    )
    assert [t.trade_id for t in await second.query_trades()] == ["E1"]
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled"]  # replayed; the OMS dedupes
    with pytest.raises(BrokerError, match="used before"):
        await second.submit(waiting)  # the ledger outlives the process
    await second.close()
