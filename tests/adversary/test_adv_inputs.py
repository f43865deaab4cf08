"""ADVERSARY: inputs that are stale or change under us. FINDING tests fail on the current code."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.clock import SimClock
from zhixing.engine.errors import InputError
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.portfolio.targets import load_targets
from zhixing.engine.store import StateStore
from zhixing.engine.target_snapshots import snapshot_to_trade, take_snapshot

TODAY = date(2021, 12, 1)  # a Wednesday
YESTERDAY = date(2021, 11, 30)


def _targets(path: Path, extra_header: str = "", extra: str = "") -> Path:
    path.write_text(f"symbol,weight{extra_header}\n600000.SH,0.5{extra}\n000001.SZ,0.5{extra}\n")
    return path


# FINDING (inputs): the issue says the execute job refuses a file "older than the signal run". The
# signal job ran today at 09:00 and exited 0 without writing; the undated file in place was written
# yesterday at 15:30 (e.g. yesterday's re-run after the close). It is snapshotted and traded today.
def test_was_finding_a_file_older_than_todays_signal_run_is_traded(tmp_path: Path) -> None:
    path = _targets(tmp_path / "targets.csv")
    written = shanghai_ns(YESTERDAY, "15:30")
    os.utime(path, ns=(written, written))
    calendar = TradingCalendar()

    async def run() -> None:
        store = await StateStore.open(tmp_path / "j.db")
        try:
            signal_clock = SimClock(shanghai_ns(TODAY, "09:00"))  # the signal job's run
            with pytest.raises(InputError):
                await take_snapshot(
                    store,
                    signal_clock,
                    calendar,
                    signal_job="signal",
                    job="execute",
                    path=path,
                    signal_started_ns=signal_clock.now_ns(),
                )
            execute_clock = SimClock(shanghai_ns(TODAY, "09:30"))
            with pytest.raises(InputError):
                await snapshot_to_trade(store, execute_clock, calendar, job="execute", path=path)
        finally:
            await store.close()

    asyncio.run(run())


# FINDING candidate (inputs): a date column with a UTC timestamp: 2021-12-01T20:00:00Z is 2021-12-02
# 04:00 in Shanghai, i.e. tomorrow's targets; the reader takes the text before 'T' and accepts it as today.
def test_was_finding_a_utc_timestamp_naming_tomorrow_in_shanghai_is_accepted_as_today(tmp_path: Path) -> None:
    path = _targets(tmp_path / "t.csv", ",as_of", ",2021-12-01T20:00:00Z")
    with pytest.raises(InputError):
        load_targets(path, trade_date=TODAY)


# HELD: a date column in another spelling (dd.mm.yyyy, 1 Dec 2021, 2021-12-1) is refused, not guessed
@pytest.mark.parametrize("cell", ["01.12.2021", "1 Dec 2021", "2021-12-1", "2021.12.01", "20211201.0"])
def test_held_date_in_another_format_is_refused(tmp_path: Path, cell: str) -> None:
    path = _targets(tmp_path / "t.csv", ",date", f",{cell}")
    with pytest.raises(InputError):
        load_targets(path, trade_date=TODAY)


# HELD: a BOM before a dated header still finds the date column (yesterday refused)
def test_held_bom_before_the_date_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffdate,symbol,weight\n2021-11-30,600000.SH,0.5\n".encode())
    with pytest.raises(InputError, match="2021-11-30"):
        load_targets(path, trade_date=TODAY)


# HELD: same weights, rows reordered after the signal planned it: refused as changed (hash)
def test_held_reordered_rows_after_the_signal_are_refused(tmp_path: Path) -> None:
    path = _targets(tmp_path / "targets.csv")
    calendar = TradingCalendar()

    async def run() -> None:
        store = await StateStore.open(tmp_path / "j.db")
        try:
            await take_snapshot(
                store, SimClock(shanghai_ns(TODAY, "09:00")), calendar, signal_job="s", job="e", path=path
            )
            st = path.stat()
            path.write_text("symbol,weight\n000001.SZ,0.5\n600000.SH,0.5\n")
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
            with pytest.raises(InputError, match="changed"):
                await snapshot_to_trade(
                    store, SimClock(shanghai_ns(TODAY, "09:30")), calendar, job="e", path=path
                )
        finally:
            await store.close()

    asyncio.run(run())
