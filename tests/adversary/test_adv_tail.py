"""ADVERSARY: the terminal's output files. FINDING tests fail on the current code; HELD ones pass."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.format import Row
from zhixing.adapters.fileorder.tail import TailFile
from zhixing.adapters.fileorder.trust import UntrustedPathError

HEADER = "exec_id,client_order_id,qty\n"


def _ids(rows: list[tuple[int, Row]]) -> list[str]:
    return [row.get("exec_id") for _, row in rows]


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


# FINDING (files): logrotate's copytruncate. Between two polls the terminal appends E2, the file is copied
# to execution_report.csv.1 (a NEW inode) and the original truncated in place, then E3 is appended. The
# tailer sees "truncated" and re-reads from the start: E3 arrives, E2 (only in the copy) never does -
# a row skipped without any row-level report, although "a file rotated away" is the rule's own case.
def test_was_finding_copytruncate_rotation_loses_the_rows_added_before_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_text(HEADER + "E1,Z1,100\n")
    tail = TailFile(path)
    assert _ids(tail.poll()) == ["E1"]
    _append(path, "E2,Z2,100\n")
    shutil.copy2(path, tmp_path / "execution_report.csv.1")
    with open(path, "r+b") as handle:
        handle.truncate(0)
    path.write_text(HEADER + "E3,Z3,100\n")  # same inode (write_text opens with O_TRUNC)
    delivered = _ids(tail.poll())
    assert "E2" in delivered, delivered


# HELD: truncated to exactly the old offset and refilled with different bytes of the same length
def test_held_same_size_refill_to_the_exact_offset(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_text(HEADER + "E1,Z1,100\n")
    tail = TailFile(path)
    assert _ids(tail.poll()) == ["E1"]
    ino = path.stat().st_ino
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write((HEADER + "E9,Z9,100\n").encode())
    assert path.stat().st_ino == ino
    assert _ids(tail.poll()) == ["E9"]


# HELD: the file replaced by a hardlink of another file in the folder
def test_held_replaced_by_a_hardlink(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_text(HEADER + "E1,Z1,100\n")
    tail = TailFile(path)
    tail.poll()
    other = tmp_path / "other.csv"
    other.write_text(HEADER + "E1,Z1,100\nE2,Z2,100\n")
    path.unlink()
    os.link(other, path)
    assert "E2" in _ids(tail.poll())


# HELD: a directory or a FIFO where the file should be is refused, not read and not hung on
@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_held_directory_or_fifo_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "execution_report.csv"
    if kind == "dir":
        path.mkdir()
    else:
        os.mkfifo(path)
    with pytest.raises(UntrustedPathError):
        TailFile(path).poll()


# HELD: a row with a BOM in the middle of the file after a refill by a tool that writes one
def test_held_refill_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_text(HEADER + "E1,Z1,100\n")
    tail = TailFile(path)
    tail.poll()
    path.write_bytes(("\ufeff" + HEADER + "E1,Z1,100\nE2,Z2,100\n").encode())
    assert _ids(tail.poll()) == ["E1", "E2"]


# FINDING candidate (files): a terminal whose file ends lines with a bare CR (old Mac / some exporters):
# no row is ever delivered, and the only report comes after 1 MiB is pending.
def test_was_candidate_bare_cr_lines_are_never_delivered_nor_reported(tmp_path: Path) -> None:
    path = tmp_path / "execution_report.csv"
    path.write_bytes(b"exec_id,client_order_id,qty\rE1,Z1,100\rE2,Z2,100\r")
    tail = TailFile(path)
    rows = tail.poll()
    assert rows or tail.stats.bare_cr_files, f"nothing delivered or reported; {tail.pending} bytes pending"


# FINDING, fixed (files, a race): write_new_file promised "never overwrites a file in the terminal's
# folder" but checked with lexists() and then os.replace(), which on POSIX overwrites whatever appeared in
# between (the terminal writing its own file of that name, or a second zhixing). Simulated by planting the
# file right after our temporary file is written, before it is moved to its name.
def test_write_new_file_never_overwrites_a_file_that_appears_while_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhixing.adapters.fileorder import trust

    final = tmp_path / "Z1.order.csv"
    real_create = trust.create_exclusive

    def racing_create(path: Path, data: bytes) -> None:
        real_create(path, data)
        final.write_bytes(b"someone else's order\n")  # the other writer, at the worst instant

    monkeypatch.setattr(trust, "create_exclusive", racing_create)
    with pytest.raises(trust.UntrustedPathError, match="already exists"):
        trust.write_new_file(tmp_path, final.name, b"ours\n")
    assert final.read_bytes() == b"someone else's order\n", "the other file was overwritten"
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]  # our temporary file is gone
