"""File-order writer: atomic drops (no partial file is ever visible), the sid ledger, markers."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.format import CANCEL_HEADER, ORDER_HEADER
from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import BrokerError

START = 1_638_322_200_000_000_000  # 2021-12-01 09:30 +08:00


def _row(sid: str) -> tuple[object, ...]:
    return (sid, "acct-1", "SHSE.600000", 100, 1, 1, "9.87", "zhixing")


def _writer(tmp_path: Path, *, marker: bool = False, ledger: SidLedger | None = None) -> OrderFileWriter:
    folder = tmp_path / "scan"
    folder.mkdir(exist_ok=True)
    return OrderFileWriter(
        folder,
        ledger or SidLedger(tmp_path / "state" / "sids.sqlite"),
        SimClock(START),
        completion_marker=marker,
    )


def _read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_order_file_has_exact_header_bom_and_one_row(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    path = writer.drop_order(_row("Z000000001"))
    assert path.name.endswith(".order.csv")
    raw = path.read_bytes()
    assert raw.startswith(
        b"\xef\xbb\xbfsid,account_id,symbol,volume,order_type,order_business(order_biz),price,"
    )
    rows = _read(path)
    assert tuple(rows[0]) == ORDER_HEADER
    assert rows[1:] == [["Z000000001", "acct-1", "SHSE.600000", "100", "1", "1", "9.87", "zhixing"]]
    assert writer.ledger.state("Z000000001") == "reserved"
    assert writer.ledger.file_of("Z000000001") == path.name


def test_cancel_file_is_separate_with_sid_comment(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    path = writer.drop_cancel("Z000000001", "zhixing")
    assert path.name.endswith(".cancel_order.csv")
    rows = _read(path)
    assert tuple(rows[0]) == CANCEL_HEADER
    assert rows[1] == ["Z000000001", "zhixing"]
    writer.drop_cancel("Z000000001")  # a cancel may be repeated
    assert len(list(writer.input_dir.glob("*.cancel_order.csv"))) == 2


def test_reused_sid_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.drop_order(_row("Z1"))
    with pytest.raises(BrokerError, match="used before"):
        writer.drop_order(_row("Z1"))
    assert len(list(writer.input_dir.iterdir())) == 1


def test_ledger_is_shared_by_independent_connections(tmp_path: Path) -> None:
    first = _writer(tmp_path)
    second = _writer(tmp_path, ledger=SidLedger(tmp_path / "state" / "sids.sqlite"))
    first.drop_order(_row("Z7"))
    with pytest.raises(BrokerError):
        second.drop_order(_row("Z7"))
    assert len(list(first.input_dir.glob("*.order.csv"))) == 1


def test_failed_write_raises_broker_error_and_burns_the_sid(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.input_dir.rmdir()  # the folder vanished: nothing can reach the terminal
    with pytest.raises(BrokerError, match="could not write"):
        writer.drop_order(_row("Z9"))
    assert writer.ledger.state("Z9") == "failed"
    writer.input_dir.mkdir()
    with pytest.raises(BrokerError):
        writer.drop_order(_row("Z9"))  # never reused, even after a failure
    assert list(writer.input_dir.iterdir()) == []


def test_completion_marker_follows_the_file(tmp_path: Path) -> None:
    writer = _writer(tmp_path, marker=True)
    path = writer.drop_order(_row("Z2"))
    assert (path.parent / f"{path.name}.fin").read_bytes() == b""


def test_names_are_unique_for_the_same_instant(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    names = {writer.drop_order(_row(f"Z{i}")).name for i in range(50)}
    assert len(names) == 50  # the clock did not move: pid and sequence keep them apart


def test_leftover_temp_files_are_invisible_to_globs_and_cleaned(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    leftover = writer.input_dir / ".123_1_000001.order.csv.tmp"
    leftover.write_text("sid,acc", encoding="utf-8")  # a writer killed mid-write (E1)
    assert list(writer.input_dir.glob("*.order.csv")) == []
    assert writer.cleanup_temp() == [leftover]
    assert not leftover.exists()


@pytest.mark.slow
def test_concurrent_scanner_only_ever_sees_complete_files(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    total = 300
    done = threading.Event()
    failures: list[str] = []

    def write() -> None:
        try:
            for i in range(total):
                writer.drop_order(_row(f"W{i:05d}"))
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen: set[str] = set()
    scans = 0
    while not done.is_set() or scans == 0:
        scans += 1
        for path in writer.input_dir.glob("*.order.csv"):
            raw = path.read_bytes()
            rows = _read(path)
            if (
                not raw.endswith(b"\r\n")
                or len(rows) != 2
                or tuple(rows[0]) != ORDER_HEADER
                or len(rows[1]) != 8
            ):
                failures.append(f"{path.name}: {raw!r}")
            seen.add(rows[1][0] if len(rows) > 1 else "")
    thread.join()
    assert failures == []
    final = {_read(p)[1][0] for p in writer.input_dir.glob("*.order.csv")}
    assert final == {f"W{i:05d}" for i in range(total)}
    assert seen <= final


def test_the_folder_fsync_is_skipped_on_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows cannot open a folder for fsync (os.open on a directory fails there): the rename's
    durability is left to NTFS's metadata journal, and the drop must not fail on it. POSIX opens and
    fsyncs the folder."""
    from zhixing.adapters.fileorder import writer

    real_open = writer.os.open
    opened: list[object] = []

    def recording_open(path: object, *args: object, **kwargs: object) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.os, "open", recording_open)
    with monkeypatch.context() as windows:
        windows.setattr(writer.os, "name", "nt")
        writer.fsync_dir(tmp_path)
    assert opened == []
    writer.fsync_dir(tmp_path)
    assert opened == [tmp_path]
