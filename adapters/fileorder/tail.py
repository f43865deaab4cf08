"""``TailFile``: reading one of the terminal's append-only output files without ever skipping a row.

The terminal appends to ``execution_report.csv`` and ``order_status_change.csv``; it may also clear
them at day start, rotate them, truncate them, rewrite them in place, or clear them and write more than
there was before, all between two polls. The rule: **the bytes before the offset are the bytes already
parsed**, and every poll checks that before it reads on:

- another file at the path (device and inode differ): rotated or replaced. If the old file is still in
  the folder under another name (rotation), what was added to it since the last poll is read first;
  then the new file is read from its start;
- the file is shorter than the offset: truncated; read from the start. If a copy of it is in the folder
  (logrotate's ``copytruncate``: a name starting with the file's stem that holds every byte we read),
  what the copy has past our offset is read first: those rows were added before the copy was taken;
- the bytes before the offset differ from what was read (a digest per 64 KiB chunk, not the size or
  the inode): cleared and refilled, past the old offset too, or rewritten in place, even at the same
  size; read from the start.

A re-read repeats rows: the consumer deduplicates (fills by exec id, statuses per order:
``tracker.py``). A last line without its line break is held (not parsed, not skipped) until it is
complete (a file whose lines end with a bare CR, where no row can complete, is reported).
A line longer than any row can be (``MAX_LINE_BYTES``, with or without its line break yet)
is consumed unparsed up to its line break and reported, and the rows after it are read as usual: it
can neither exhaust memory nor stop the rows behind it (a line longer than ``max_read`` used to be
re-read at every poll, and nothing after it ever was). A line with a cell too long, or malformed CSV,
is reported and skipped. A row that cannot be decoded with the configured encoding is reported (file,
line, the fix) and read with replacement
characters; a row whose field count differs from the header's is reported. Nothing is dropped without a
log line.

Cost: each poll parses at most ``max_read`` new bytes (8 MiB; a larger backlog is read over the next
polls, delayed, not skipped) and re-reads and hashes at most ``verify_budget`` bytes of the prefix
(1 MiB by default: a whole day of a busy account). Past that, every poll checks the chunk just before
the offset, the last full chunk and the first chunk (a day-start refill changes the first rows) and the
chunks in between in turn, so a change in the middle of a larger file is found within
``prefix / verify_budget`` polls.
Files are opened as ``trust.open_for_reading`` does (no symlink, regular files only).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import structlog

from zhixing.adapters.fileorder import trust
from zhixing.adapters.fileorder.format import MAX_LINE, Row, column_aliases, split_line
from zhixing.engine.errors import InputError, ParameterError

log = structlog.get_logger("zhixing.fileorder")

CHUNK = 64 * 1024
VERIFY_BUDGET = 1024 * 1024
MAX_LINE_BYTES = 4 * MAX_LINE  # UTF-8: at most 4 bytes a character; a longer line is no row
MAX_READ = 8 * 1024 * 1024  # new bytes parsed per poll: a huge backlog is read over several polls
COPY_CANDIDATES = 200  # folder entries looked at for a copy of a truncated file (copytruncate)


def _hasher() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=16)


@dataclass(slots=True)
class TailStats:
    polls: int = 0
    rows: int = 0
    restarts: dict[str, int] = field(default_factory=dict)  # reason -> count (replaced, truncated, ...)
    rotations_followed: int = 0  # old files found under another name and read to their end
    bytes_verified: int = 0
    undecodable_lines: int = 0
    odd_width_rows: int = 0
    long_lines: int = 0  # lines past MAX_LINE_BYTES, consumed unparsed
    bad_lines: int = 0  # lines split_line refused (too long a cell, malformed CSV)
    bare_cr_files: int = 0  # files seen ending their lines with a bare CR (no row can be delivered)


class _Prefix:
    """Digests of the consumed bytes: one per full chunk, and a running one for the open last chunk."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.full: list[bytes] = []
        self._open = _hasher()
        self.open_len = 0

    def add(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.chunk - self.open_len)
            self._open.update(view[:take])
            self.open_len += take
            view = view[take:]
            if self.open_len == self.chunk:
                self.full.append(self._open.digest())
                self._open, self.open_len = _hasher(), 0

    def segment(self, index: int) -> tuple[int, int, bytes]:
        """(start, length, digest) of chunk ``index``; ``len(full)`` is the open chunk."""
        if index == len(self.full):
            return index * self.chunk, self.open_len, self._open.copy().digest()
        return index * self.chunk, self.chunk, self.full[index]


class TailFile:
    """Incremental reader of one append-only CSV file (see the module text for the rule)."""

    def __init__(
        self,
        path: Path,
        encoding: str = "utf-8-sig",
        *,
        chunk: int = CHUNK,
        verify_budget: int = VERIFY_BUDGET,
        max_read: int = MAX_READ,
    ) -> None:
        if chunk <= 0:
            raise ParameterError(f"must be > 0 bytes, got {chunk}", name="chunk", value=chunk)
        if verify_budget < 3 * chunk:
            raise ParameterError(
                f"must cover at least three chunks of {chunk} bytes, got {verify_budget}",
                name="verify_budget",
                value=verify_budget,
            )
        self.path = path
        self.encoding = encoding
        self.stats = TailStats()
        self._chunk = chunk
        self._budget = verify_budget
        self._max_read = max_read
        self._cursor = 1  # next middle chunk to verify when the prefix is larger than the budget
        self._identity: tuple[int, int] | None = None
        self._reset()

    def _reset(self) -> None:
        self.offset = 0
        self.pending = 0  # bytes after the last line break: a line still being written
        self._lines = 0
        self._columns: dict[str, int] | None = None
        self._width = 0
        self._prefix = _Prefix(self._chunk)
        self._warned_cr = False
        self._skipping = False  # inside a line too long to be a row, consumed up to its line break
        self._long_bytes = 0

    def _restart(self, reason: str, source: Path) -> None:
        self.stats.restarts[reason] = self.stats.restarts.get(reason, 0) + 1
        log.warning("fileorder_file_reread", file=str(source), reason=reason, offset=self.offset)
        self._reset()

    # ------------------------------------------------------------------------------------- polling
    def poll(self) -> list[tuple[int, Row]]:
        """Rows completed since the last poll, with their 1-based line numbers (the header is line 1)."""
        self.stats.polls += 1
        rows: list[tuple[int, Row]] = []
        fd = trust.open_for_reading(self.path)
        if fd is None:
            if self._identity is None:
                return []
            rows = self._follow_rotation()  # renamed away, the new one not created yet
            self._identity = None
            self._restart("missing", self.path)
            return rows
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            identity = (st.st_dev, st.st_ino)
            if self._identity is not None and identity != self._identity:
                rows = self._follow_rotation()
                self._restart("replaced", self.path)
            self._identity = identity
            rows += self._advance(handle, st.st_size, self.path)
        return rows

    def _advance(self, handle: BinaryIO, size: int, source: Path) -> list[tuple[int, Row]]:
        rows: list[tuple[int, Row]] = []
        if size < self.offset or (self.offset and not self._prefix_intact(handle)):
            if source == self.path:  # copied away first (logrotate's copytruncate)? read the copy's rest
                rows = self._follow_copy()
            self._restart("truncated" if size < self.offset else "rewritten", source)
        if size <= self.offset:
            return rows
        handle.seek(self.offset)
        data = handle.read(min(size - self.offset, self._max_read))
        if self._skipping:
            if not self._skip_long_line(data, source):
                return []  # its line break not written yet
            if size <= self.offset:
                return []
            handle.seek(self.offset)  # just after the long line: read on as usual
            data = handle.read(min(size - self.offset, self._max_read))
        end = data.rfind(b"\n")
        more = min(size - self.offset, MAX_LINE_BYTES + 1) - len(data)
        if end < 0 and more > 0:
            # a line longer than ``max_read``: look on for its end, as far as a line may be long
            data += handle.read(more)
            end = data.rfind(b"\n")
        self.pending = len(data) - (end + 1)
        if end < 0 and self.pending > MAX_LINE_BYTES:
            # no row is this long: consume it unparsed up to its line break (told), read on after it
            self._skipping = True
            self._long_bytes = 0
            log.warning(
                "fileorder_line_too_long",
                file=str(source),
                line=self._lines + 1,
                bytes=self.pending,
                limit=MAX_LINE_BYTES,
            )
            self._skip_long_line(data, source)
            return []
        if end < 0:
            if b"\r" in data and not self._warned_cr:  # lines end with a bare CR: never one complete
                self._warned_cr = True
                self.stats.bare_cr_files += 1
                log.error(
                    "fileorder_bare_cr_line_ends",
                    file=str(source),
                    offset=self.offset,
                    bytes=len(data),
                    fix="the terminal must end lines with LF or CRLF; no row of this file is read",
                )
            return rows  # only a partial line so far: wait for its line break
        consumed = data[: end + 1]
        self._prefix.add(consumed)
        self.offset += len(consumed)
        return rows + self._parse(consumed, source)

    def _skip_long_line(self, data: bytes, source: Path) -> bool:
        """Inside a line too long to be a row: consume ``data`` up to and with its line break (the
        prefix digests see every byte). True when the line ended."""
        end = data.find(b"\n")
        taken = data if end < 0 else data[: end + 1]
        self._prefix.add(taken)
        self.offset += len(taken)
        self._long_bytes += len(taken)
        self.pending = 0
        if end < 0:
            return False
        self._skipping = False
        self._lines += 1
        self.stats.long_lines += 1
        log.warning("fileorder_long_line_skipped", file=str(source), line=self._lines, bytes=self._long_bytes)
        return True

    # ------------------------------------------------------------------------------------- checks
    def _plan(self) -> list[int]:
        """Which chunks of the prefix to verify at this poll (see the module text)."""
        prefix = self._prefix
        n = len(prefix.full)
        last = n if prefix.open_len else n - 1
        if (last + 1) * self._chunk <= self._budget:
            return list(range(last + 1))
        plan = list(dict.fromkeys(i for i in (last, last - 1, 0) if i >= 0))
        middle = max(0, last - 2)  # chunks 1 .. last-2
        for _ in range(min(middle, self._budget // self._chunk - len(plan))):
            if not 1 <= self._cursor <= middle:
                self._cursor = 1
            plan.append(self._cursor)
            self._cursor += 1
        return plan

    def _prefix_intact(self, handle: BinaryIO) -> bool:
        for index in self._plan():
            start, length, digest = self._prefix.segment(index)
            handle.seek(start)
            data = handle.read(length)
            self.stats.bytes_verified += len(data)
            hasher = _hasher()
            hasher.update(data)
            if len(data) != length or hasher.digest() != digest:
                return False
        return True

    def _follow_rotation(self) -> list[tuple[int, Row]]:
        """The old file, if it is still in the folder under another name: the rows added since the
        last poll. A line it holds without its line break is reported as abandoned."""
        old = self._find_by_identity()
        if old is None:
            if self.pending:
                log.warning("fileorder_partial_line_lost", file=str(self.path), bytes=self.pending)
            log.info("fileorder_file_replaced", file=str(self.path), offset=self.offset)
            return []
        fd = trust.open_for_reading(old)
        if fd is None:
            return []
        with os.fdopen(fd, "rb") as handle:
            rows = self._advance(handle, os.fstat(handle.fileno()).st_size, old)
        self.stats.rotations_followed += 1
        log.info("fileorder_rotation_followed", file=str(self.path), rotated_to=str(old), rows=len(rows))
        if self.pending:
            log.warning("fileorder_partial_line_abandoned", file=str(old), bytes=self.pending)
        return rows

    def _follow_copy(self) -> list[tuple[int, Row]]:
        """The file was truncated or rewritten in place: if a copy of it is in the folder (a name that
        starts with its stem, at least as long, holding exactly the bytes we consumed), the rows the copy
        has past our offset were added before the copy was taken: read them first."""
        if not self.offset:
            return []
        try:
            entries = sorted(os.scandir(self.path.parent), key=lambda e: e.name)
        except OSError:
            return []
        stem = self.path.stem
        candidates = [e for e in entries if e.name != self.path.name and e.name.startswith(stem)]
        for entry in candidates[:COPY_CANDIDATES]:
            fd = trust.open_for_reading(Path(entry.path))
            if fd is None:
                continue
            with os.fdopen(fd, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset or not self._prefix_matches(handle):
                    continue
                copy = Path(entry.path)
                rows = self._advance(handle, size, copy)
            self.stats.rotations_followed += 1
            log.info("fileorder_copy_followed", file=str(self.path), copy=str(copy), rows=len(rows))
            return rows
        return []

    def _prefix_matches(self, handle: BinaryIO) -> bool:
        """Every consumed byte is at its place in ``handle`` (all chunks, not the poll's budget)."""
        prefix = self._prefix
        last = len(prefix.full) if prefix.open_len else len(prefix.full) - 1
        for index in range(last + 1):
            start, length, digest = prefix.segment(index)
            handle.seek(start)
            hasher = _hasher()
            data = handle.read(length)
            hasher.update(data)
            if len(data) != length or hasher.digest() != digest:
                return False
        return True

    def _find_by_identity(self) -> Path | None:
        if self._identity is None or self._identity[1] == 0:
            return None  # a file system without inode numbers: nothing to match
        try:
            entries = list(os.scandir(self.path.parent))
        except FileNotFoundError:
            return None
        for entry in entries:
            if entry.name == self.path.name:
                continue
            try:
                st = os.stat(entry.path, follow_symlinks=False)  # DirEntry.stat has no inode on Windows
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == self._identity:
                return Path(entry.path)
        return None

    # ------------------------------------------------------------------------------------- parsing
    def _parse(self, data: bytes, source: Path) -> list[tuple[int, Row]]:
        rows: list[tuple[int, Row]] = []
        for raw in data.split(b"\n")[:-1]:
            self._lines += 1
            text = self._decode(raw, source)
            if not text.strip():
                continue
            try:
                values = split_line(text)
            except InputError as exc:  # a hostile or broken line: told and skipped, the rest is read
                self.stats.bad_lines += 1
                log.warning("fileorder_bad_line", file=str(source), line=self._lines, error=str(exc))
                continue
            if self._columns is None:
                self._columns = column_aliases(values)
                self._width = len(values)
                continue
            if len(values) != self._width:
                self.stats.odd_width_rows += 1
                log.warning(
                    "fileorder_row_width",
                    file=str(source),
                    line=self._lines,
                    fields=len(values),
                    header_fields=self._width,
                )
            rows.append((self._lines, Row(self._columns, values)))
        self.stats.rows += len(rows)
        return rows

    def _decode(self, raw: bytes, source: Path) -> str:
        raw = raw.rstrip(b"\r")
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            self.stats.undecodable_lines += 1
            log.warning(
                "fileorder_undecodable_line",
                file=str(source),
                line=self._lines,
                encoding=self.encoding,
                byte=exc.start,
                fix="set route.fileorder.encoding to the terminal's encoding (e.g. gbk)",
            )
            text = raw.decode(self.encoding, errors="replace")
        return text.lstrip("\ufeff")
