"""The terminal emulator: scans like the terminal, answers in its files and codes, injects its faults."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.format import (
    CASH_HEADER,
    ORDER_HEADER,
    ORDER_STATUS_HEADER,
    POSITION_HEADER,
    render_csv,
)
from zhixing.engine.clock import SimClock
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.terminal import TerminalEmulator, TerminalFaults

SNAPSHOTS = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
ACCOUNT = "acct-sim-1"
SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SNAPSHOTS, symbols=["600103.SH"])


class Desk:
    def __init__(
        self,
        tmp_path: Path,
        market: MarketData,
        faults: TerminalFaults,
        *,
        other_accounts: tuple[str, ...] = (),
        **kw: bool,
    ) -> None:
        self.scan_dir = tmp_path / "scan"
        self.scan_dir.mkdir()
        self.out = tmp_path / "push" / ACCOUNT
        self.clock = SimClock(shanghai_ns(market.trade_date, "09:31"))
        self.exchange = SimExchange(
            market, self.clock, calendar=TradingCalendar(), cash=10**12, positions={"600103.SH": 5_000}
        )
        self.terminal = TerminalEmulator(
            self.scan_dir, tmp_path / "push", ACCOUNT, self.exchange, self.clock, faults=faults, **kw
        )
        self.venues = {
            a: SimExchange(market, self.clock, calendar=TradingCalendar(), cash=10**12)
            for a in other_accounts
        }
        for account, venue in self.venues.items():
            self.terminal.serve(account, venue)
        self.terminal.start()
        self._n = 0

    def order_file(self, *rows: tuple[object, ...], marker: bool = False) -> Path:
        self._n += 1
        path = self.scan_dir / f"{self._n:04d}.order.csv"
        path.write_text(render_csv(ORDER_HEADER, rows), encoding="utf-8-sig", newline="")
        if marker:
            (self.scan_dir / f"{path.name}.fin").touch()
        return path

    def cancel_file(self, sid: str) -> None:
        self._n += 1
        path = self.scan_dir / f"{self._n:04d}.cancel_order.csv"
        path.write_text(render_csv(("sid", "comment"), [(sid, "")]), encoding="utf-8-sig", newline="")

    def run(self, seconds: float) -> None:
        end = self.clock.now_ns() + int(seconds * SECOND)
        while self.clock.step(until_ns=end):
            pass
        self.clock.advance_to(end)

    def rows(self, name: str) -> list[dict[str, str]]:
        with open(self.out / name, encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    def statuses(self, sid: str) -> list[str]:
        return [r["status"] for r in self.rows("order_status_change.csv") if r["sid"] == sid]


def _buy(sid: str, price: str = "2.60", volume: int = 100, account: str = ACCOUNT) -> tuple[object, ...]:
    return (sid, account, "SHSE.600103", volume, 1, 1, price, "")


def test_order_is_answered_in_gm_codes_and_files(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults())
    desk.order_file(_buy("S1", price="2.79", volume=100))
    desk.run(2)
    assert desk.statuses("S1") == ["10", "1", "3"]  # PendingNew, New, Filled
    (trade,) = desk.rows("execution_report.csv")
    assert (trade["sid"], trade["exec_type"], trade["volume"], trade["price"]) == ("S1", "15", "100", "2.79")
    assert (trade["symbol"], trade["order_business(order_biz)"]) == ("SHSE.600103", "1")
    raw = (desk.out / "execution_report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfaccount_id,sid,")
    desk.run(3)  # a snapshot period
    (status,) = desk.rows("order_status.csv")
    assert (status["sid"], status["status"], status["filled_volume(filled_vol)"]) == ("S1", "3", "100")
    (cash,) = desk.rows("cash.csv")
    assert tuple(cash) == CASH_HEADER
    positions = desk.rows("position.csv")
    assert tuple(positions[0]) == POSITION_HEADER
    assert {(p["symbol"], p["volume"], p["available_now(avl_now)"]) for p in positions} == {
        ("SHSE.600103", "5100", "5000")  # bought today: not sellable until tomorrow
    }
    assert tuple(desk.rows("order_status_change.csv")[0]) == ORDER_STATUS_HEADER


def test_duplicate_sid_is_rejected_without_touching_the_exchange(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults())
    desk.order_file(_buy("S1"))
    desk.run(1.5)
    desk.order_file(_buy("S1", price="2.61"))
    desk.run(1.5)
    rows = [r for r in desk.rows("order_status_change.csv") if r["sid"] == "S1"]
    assert [(r["status"], r["order_id"] != "") for r in rows] == [("10", False), ("1", True), ("8", False)]
    assert rows[2]["ord_rej_reason_detail(rej_detail)"] == "duplicate sid"
    assert rows[2]["cl_ord_id"] != rows[0]["cl_ord_id"]  # a different terminal order
    assert desk.terminal.stats.sids == ["S1"]
    assert desk.exchange.stats.orders_received == 1
    assert desk.terminal.gm_status("S1") == 1


def test_refusals_use_gm_reject_codes(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults())
    desk.order_file(_buy("S1", account="someone-else"), ("S2", ACCOUNT, "SHSE.600103", 100, 20, 1, "", ""))
    desk.run(1.5)
    got = {r["sid"]: r["ord_rej_reason(rej_reason)"] for r in desk.rows("order_status_change.csv")}
    assert got == {
        "S1": "4",
        "S2": "14",
    }  # IllegalAccountId, OrderTypeNotSupported (BOC: not an SSE file order)
    assert desk.exchange.stats.orders_received == 0


def test_cancel_and_unknown_cancel(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults())
    desk.order_file(_buy("S1"))
    desk.run(1.5)
    desk.cancel_file("S1")
    desk.cancel_file("NOPE")
    desk.run(1.5)
    assert desk.statuses("S1") == ["10", "1", "5"]
    (reject,) = desk.rows("execution_report.csv")
    assert (reject["sid"], reject["exec_type"], reject["ord_rej_reason_detail(rej_detail)"]) == (
        "NOPE",
        "19",
        "unknown sid",
    )


def test_require_marker_waits_for_the_fin_file(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults(), require_marker=True)
    path = desk.order_file(_buy("S1"))
    desk.run(3)
    assert desk.terminal.stats.files_processed == 0
    (desk.scan_dir / f"{path.name}.fin").touch()
    desk.run(1)
    assert desk.terminal.stats.sids == ["S1"]


def test_missed_file_is_seen_after_the_configured_scans(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults(miss_probability=1.0, miss_scans=4))
    desk.order_file(_buy("S1"))
    desk.run(4.5)  # scans 1..4: hidden
    assert desk.terminal.stats.sids == []
    desk.run(1)  # scan 5
    assert desk.terminal.stats.sids == ["S1"]
    assert desk.terminal.stats.files_missed == 1


def test_slow_scan_processes_only_at_its_interval(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults(scan_interval_ns=10 * SECOND))
    desk.order_file(_buy("S1"))
    desk.run(9.9)
    assert desk.terminal.stats.scans == 0
    desk.run(0.2)
    assert (desk.terminal.stats.scans, desk.terminal.stats.sids) == (1, ["S1"])


def test_duplicate_rows_fault_repeats_rows(tmp_path: Path, market: MarketData) -> None:
    desk = Desk(tmp_path, market, TerminalFaults(duplicate_probability=1.0))
    desk.order_file(_buy("S1", price="2.79"))
    desk.run(2)
    trades = desk.rows("execution_report.csv")
    assert len(trades) == 2
    assert trades[0] == trades[1]
    assert desk.statuses("S1") == ["10", "10", "1", "1", "3", "3"]


def test_faults_replay_exactly_from_the_seed(tmp_path: Path, market: MarketData) -> None:
    def misses(root: Path, seed: int) -> list[str]:
        root.mkdir()
        desk = Desk(root, market, TerminalFaults(seed=seed, miss_probability=0.5, miss_scans=2))
        for i in range(12):
            desk.order_file(_buy(f"S{i:02d}"))
        desk.run(1.5)
        return sorted(desk.terminal.stats.sids)

    first, again = misses(tmp_path / "a", 11), misses(tmp_path / "b", 11)
    assert first == again
    assert 0 < len(first) < 12  # some files missed by the first scan, not all


def test_one_terminal_serves_two_accounts_from_one_folder_and_a_sid_is_its_key_across_them(
    tmp_path: Path, market: MarketData
) -> None:
    desk = Desk(tmp_path, market, TerminalFaults(), other_accounts=("acct-sim-2",))
    other_venue = desk.venues["acct-sim-2"]
    desk.order_file(_buy("S1"), _buy("S2", account="acct-sim-2"))
    desk.run(1.5)
    desk.order_file(_buy("S1", account="acct-sim-2"))  # a sid the other account used: refused
    desk.run(1.5)
    assert desk.terminal.stats.sids == ["S1", "S2"]
    assert (desk.exchange.stats.orders_received, other_venue.stats.orders_received) == (1, 1)
    assert {r["sid"] for r in desk.rows("order_status_change.csv")} == {"S1"}
    with open(tmp_path / "push" / "acct-sim-2" / "order_status_change.csv", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["account_id"] for r in rows} == {"acct-sim-2"}
    assert [(r["sid"], r["status"]) for r in rows][-1] == (
        "S1",
        "8",
    )  # the duplicate, in its account's folder
    assert ("S2", "1") in [(r["sid"], r["status"]) for r in rows]
