"""The terminal's append-only output files under hostile rewrites: no row is ever skipped.

Every case writes real files in a real folder and polls a real ``TailFile``; the terminal's moves are
done with the file operations a terminal (or a day-start script) would use: truncate-and-write in
place, write a longer file over the old one, rename away and create anew, rewrite bytes in place at
the same size, half-written lines, GBK text.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig
from zhixing.adapters.fileorder.format import EXECUTION_REPORT_FILE, EXECUTION_REPORT_HEADER, Row
from zhixing.adapters.fileorder.tail import TailFile
from zhixing.engine.clock import SimClock
from zhixing.engine.events import OrderEvent, OrderFilled

BOM = b"\xef\xbb\xbf"
ACCOUNT = "1395dc4f-3601-11eb-bda5-001018b67b94"
START = 1_638_322_200_000_000_000


def _line(values: list[object], encoding: str = "utf-8") -> bytes:
    return (",".join(str(v) for v in values) + "\r\n").encode(encoding)


HEADER = BOM + _line(list(EXECUTION_REPORT_HEADER))


def _exec(
    exec_id: str, volume: int = 100, *, sid: str = "Z1", detail: str = "", encoding: str = "utf-8"
) -> bytes:
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
            "order_business(order_biz)": 1,
            "ord_rej_reason(rej_reason)": 0,
            "ord_rej_reason_detail(rej_detail)": detail,
            "exec_type": 15,
            "price": "9.86",
            "volume": volume,
            "created_at": "2021-12-01T09:30:03+08:00",
        }
    )
    return _line([values[k] for k in EXECUTION_REPORT_HEADER], encoding)


def _ids(rows: list[tuple[int, Row]]) -> list[str]:
    return [row.get("exec_id") for _, row in rows]


def _id(line: bytes) -> str:
    return line.decode().split(",")[EXECUTION_REPORT_HEADER.index("exec_id")]


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """Truncate and write through the same inode (what ``open(path, "w")`` does)."""
    ino = path.stat().st_ino
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(data)
    assert path.stat().st_ino == ino


def test_cleared_and_refilled_past_the_old_offset_is_read_from_the_start(tmp_path: Path) -> None:
    """Day start: the terminal clears the file and, before the next poll, writes more rows than the
    file held before. Size and inode say "grew"; only the bytes before the offset tell."""
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1") + _exec("E2"))
    tail = TailFile(path)
    assert _ids(tail.poll()) == ["E1", "E2"]
    _rewrite_in_place(path, HEADER + _exec("N1") + _exec("N2") + _exec("N3"))
    assert _ids(tail.poll()) == ["N1", "N2", "N3"]
    assert tail.stats.restarts == {"rewritten": 1}


def test_truncated_file_is_read_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1") + _exec("E2"))
    tail = TailFile(path)
    assert len(tail.poll()) == 2
    _rewrite_in_place(path, HEADER + _exec("E3"))
    assert _ids(tail.poll()) == ["E3"]
    assert tail.stats.restarts == {"truncated": 1}


def test_rewritten_in_place_at_the_same_size_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1") + _exec("E2"))
    tail = TailFile(path)
    assert len(tail.poll()) == 2
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # one row changed, byte for byte the same length
        handle.seek(len(HEADER) + len(_exec("E1")))
        handle.write(_exec("E7"))
    assert path.stat().st_size == size
    assert _ids(tail.poll()) == ["E1", "E7"]


def test_rotation_is_followed_rows_added_to_the_old_file_are_not_lost(tmp_path: Path) -> None:
    """The terminal appends E2 to the old file, then renames it away and starts a new one, all
    between two polls: E2 is read from the rotated file, then the new file from its start."""
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1"))
    tail = TailFile(path)
    assert _ids(tail.poll()) == ["E1"]
    with open(path, "ab") as handle:
        handle.write(_exec("E2"))
    os.rename(path, tmp_path / "execution_report.20211201.csv")
    path.write_bytes(HEADER + _exec("N1"))
    assert _ids(tail.poll()) == ["E2", "N1"]
    assert tail.stats.rotations_followed == 1


def test_rotated_away_before_the_new_file_exists(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1"))
    tail = TailFile(path)
    tail.poll()
    with open(path, "ab") as handle:
        handle.write(_exec("E2"))
    os.rename(path, tmp_path / "execution_report.csv.1")
    assert _ids(tail.poll()) == ["E2"]  # the new file is not there yet
    path.write_bytes(HEADER + _exec("N1"))
    assert _ids(tail.poll()) == ["N1"]


def test_replaced_by_rename_is_read_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1"))
    tail = TailFile(path)
    tail.poll()
    temp = tmp_path / ".new"
    temp.write_bytes(HEADER + _exec("E1") + _exec("E2"))
    os.replace(temp, path)  # the whole log written anew: the consumer dedupes E1
    assert _ids(tail.poll()) == ["E1", "E2"]
    assert tail.stats.restarts == {"replaced": 1}


def test_a_partial_line_is_held_until_complete(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER)
    tail = TailFile(path)
    row = _exec("E1")
    for cut in (1, 10, len(row) - 1):  # never parsed half, never skipped
        _rewrite_in_place(path, HEADER + row[:cut])
        assert tail.poll() == []
        assert tail.pending == cut
    _rewrite_in_place(path, HEADER + row)
    assert _ids(tail.poll()) == ["E1"]
    assert tail.pending == 0


def test_gbk_rows_cut_inside_a_character_are_held_and_decoded_whole(tmp_path: Path) -> None:
    """东方财富 writes GBK: a 2-byte character split by the poll stays with its line."""
    path = tmp_path / EXECUTION_REPORT_FILE
    header = _line(list(EXECUTION_REPORT_HEADER), "gbk")
    row = _exec("E1", detail="资金不足", encoding="gbk")
    cut = row.index("资".encode("gbk")) + 1  # between the two bytes of 资
    path.write_bytes(header + row[:cut])
    tail = TailFile(path, "gbk")
    assert tail.poll() == []
    with open(path, "ab") as handle:
        handle.write(row[cut:])
    ((_, got),) = tail.poll()
    assert got.get("ord_rej_reason_detail") == "资金不足"
    _rewrite_in_place(path, header + _exec("N1", detail="撤单", encoding="gbk"))  # re-read works on GBK too
    ((_, got),) = tail.poll()
    assert (got.get("exec_id"), got.get("rej_detail")) == ("N1", "撤单")
    assert tail.stats.undecodable_lines == 0


def test_gbk_read_as_utf8_is_reported_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1", detail="资金不足", encoding="gbk"))
    tail = TailFile(path)  # configured utf-8-sig: wrong for this terminal
    assert _ids(tail.poll()) == ["E1"]  # the row still arrives (ids are ASCII) ...
    assert tail.stats.undecodable_lines == 1  # ... and the operator is told which setting to fix


def test_a_row_with_a_missing_field_is_reported(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    short = _exec("E1").rsplit(b",", 1)[0] + b"\r\n"
    path.write_bytes(HEADER + short)
    tail = TailFile(path)
    assert _ids(tail.poll()) == ["E1"]
    assert tail.stats.odd_width_rows == 1


def test_a_change_in_the_middle_of_a_large_file_is_found_within_bounded_polls(tmp_path: Path) -> None:
    """Past the verify budget each poll checks the ends and some middle chunks in turn: a row changed
    deep inside is found within prefix/budget polls, never missed."""
    path = tmp_path / EXECUTION_REPORT_FILE
    rows = [_exec(f"E{i:04d}") for i in range(200)]
    path.write_bytes(HEADER + b"".join(rows))
    tail = TailFile(path, chunk=256, verify_budget=3 * 256 + 256)  # the ends and 1 middle chunk a poll
    assert len(tail.poll()) == 200
    offset = len(HEADER) + sum(len(r) for r in rows[:100])
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(_exec("X0100"))
    chunks = tail.offset // 256 + 1
    polls = 0
    found: list[str] = []
    while not found and polls <= chunks:
        polls += 1
        found = _ids(tail.poll())
    assert "X0100" in found
    assert polls <= chunks


def test_a_huge_backlog_is_read_over_several_polls_without_a_gap(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    rows = [_exec(f"E{i:04d}") for i in range(100)]
    path.write_bytes(HEADER + b"".join(rows))
    tail = TailFile(path, max_read=1000)  # a few rows a poll
    seen: list[str] = []
    for _ in range(100):
        seen += _ids(tail.poll())
    assert seen == [f"E{i:04d}" for i in range(100)]


def test_a_deleted_file_recreated_is_read_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1") + _exec("E2"))
    tail = TailFile(path)
    tail.poll()
    path.unlink()
    assert tail.poll() == []
    path.write_bytes(HEADER + _exec("N1"))
    assert _ids(tail.poll()) == ["N1"]


async def test_fills_are_applied_once_when_a_rewritten_file_repeats_them(tmp_path: Path) -> None:
    """After a re-read the exec ids already applied are not applied again; the new ones are."""
    config = FileOrderConfig(
        input_dir=tmp_path / "scan",
        output_dir=tmp_path / "push",
        account_id=ACCOUNT,
        state_dir=tmp_path / "st",
    )
    config.input_dir.mkdir()
    config.account_output_dir.mkdir(parents=True)
    path = config.account_output_dir / EXECUTION_REPORT_FILE
    path.write_bytes(HEADER + _exec("E1") + _exec("E2"))
    events: list[OrderEvent] = []
    adapter = FileOrderAdapter(config, SimClock(START))
    adapter.bind(events.append)
    await adapter.connect()
    try:
        _rewrite_in_place(path, HEADER + _exec("E2") + _exec("E1") + _exec("E3", 300))
        adapter.poll()
        fills = [(e.trade_id, e.quantity) for e in events if isinstance(e, OrderFilled)]
        assert fills == [("E1", 100), ("E2", 100), ("E3", 300)]
        assert adapter.tracker.stats.duplicate_exec_rows == 2
    finally:
        await adapter.close()


# ------------------------------------------------------------------------------------- property
_OPS = st.lists(
    st.sampled_from(
        [
            "append",
            "half",
            "finish",
            "truncate_refill",
            "refill_longer",
            "rewrite_same",
            "rotate",
            "append_rotate",
        ]
    ),
    max_size=25,
)


@settings(deadline=None, max_examples=60)
@given(ops=_OPS, chunk=st.sampled_from([16, 64, 65536]))
def test_every_row_in_the_file_at_a_poll_has_been_delivered(
    tmp_path_factory: pytest.TempPathFactory, ops: list[str], chunk: int
) -> None:
    """Whatever the terminal did between two polls, every complete row the file (or the file it was
    rotated to) holds when a poll ends has been delivered by then."""
    folder = tmp_path_factory.mktemp("tail")
    path = folder / EXECUTION_REPORT_FILE
    counter = iter(range(10_000))
    lines = [_exec(f"R{next(counter):04d}")]
    half = b""
    path.write_bytes(HEADER + lines[0])
    tail = TailFile(path, chunk=chunk, verify_budget=1 << 30)
    delivered: set[str] = set(_ids(tail.poll()))
    rotated = 0
    left_behind: set[str] = set()  # complete rows of the files rotated away
    for op in ops:
        new = _exec(f"R{next(counter):04d}")
        if op == "append":
            lines.append(new)
            with open(path, "ab") as handle:
                handle.write(lines[-2][len(half) :] + new if half else new)
            half = b""
        elif op == "half" and not half:
            half = new[: len(new) // 2]
            with open(path, "ab") as handle:
                handle.write(half)
            lines.append(new)  # completed by "finish"
        elif op == "finish" and half:
            with open(path, "ab") as handle:
                handle.write(lines[-1][len(half) :])
            half = b""
        elif op in ("truncate_refill", "refill_longer"):
            count = 1 if op == "truncate_refill" else len(lines) + 2
            lines = [_exec(f"R{next(counter):04d}") for _ in range(count)]
            half = b""
            _rewrite_in_place(path, HEADER + b"".join(lines))
        elif op == "rewrite_same" and lines and not half:
            i = len(lines) // 2
            lines[i] = _exec(f"S{next(counter):04d}")  # same length as the R row it replaces
            _rewrite_in_place(path, HEADER + b"".join(lines))
        elif op in ("rotate", "append_rotate"):
            if op == "append_rotate":  # a last row written to the old file just before the rotation
                lines.append(new)
                with open(path, "ab") as handle:
                    handle.write(lines[-2][len(half) :] + new if half else new)
                half = b""
            os.rename(path, folder / f"execution_report.{rotated}.csv")
            rotated += 1
            if half:
                lines.pop()  # the half line stays behind in the rotated file: reported, not a row
            half = b""
            left_behind.update(_id(line) for line in lines)
            lines = [_exec(f"R{next(counter):04d}")]
            path.write_bytes(HEADER + lines[0])
        delivered.update(_ids(tail.poll()))
        complete = lines[:-1] if half else lines
        assert {_id(line) for line in complete} | left_behind <= delivered
