"""One engine per account: an exclusive, non-blocking OS lock on a lock file.

The lock belongs to an open file, so the OS drops it when the holding process dies for any reason
(including ``kill -9`` or Task Manager's "End task"): there is never a stale lock to clean up by hand.
POSIX: ``fcntl.flock`` on the whole file. Windows (where QMT and the 文件单 terminals run):
``msvcrt.locking`` of one byte at ``WINDOWS_LOCK_OFFSET``, past the pid, because Windows locks are
mandatory and a locked byte cannot be read by anyone else. The file itself stays on disk (deleting it
would race with a second engine opening it); it holds the holder's pid, for the error message only. The
lock, not the file's existence or content, is the truth.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Protocol

from zhixing.engine.errors import ZhixingError

WINDOWS_LOCK_OFFSET = 64  # the byte Windows locks: beyond any pid text


class LockBackend(Protocol):
    def try_lock(self, fd: int) -> bool:
        """Take the lock without waiting; False if another open file holds it."""
        ...

    def unlock(self, fd: int) -> None: ...


class FlockBackend:
    """POSIX: ``flock(LOCK_EX | LOCK_NB)`` on the whole file."""

    def __init__(self, fcntl: ModuleType | None = None) -> None:
        self._fcntl = fcntl or importlib.import_module("fcntl")

    def try_lock(self, fd: int) -> bool:
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(self, fd: int) -> None:
        self._fcntl.flock(fd, self._fcntl.LOCK_UN)


class MsvcrtBackend:
    """Windows: ``msvcrt.locking(LK_NBLCK)`` of one byte at ``WINDOWS_LOCK_OFFSET`` (allowed past the end
    of the file); a byte held by another open file raises ``OSError`` (EACCES)."""

    def __init__(self, msvcrt: ModuleType | None = None) -> None:
        self._msvcrt = msvcrt or importlib.import_module("msvcrt")

    def try_lock(self, fd: int) -> bool:
        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            self._msvcrt.locking(fd, self._msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(self, fd: int) -> None:
        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        self._msvcrt.locking(fd, self._msvcrt.LK_UNLCK, 1)


def default_backend() -> LockBackend:
    return MsvcrtBackend() if os.name == "nt" else FlockBackend()


class AlreadyRunning(ZhixingError):
    """Another engine holds the account's instance lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "a process whose pid could not be read"
        super().__init__(
            f"another zhixing engine is already running on this account: lock file {path} is held by "
            f"{holder}; stop that engine first (two engines on one account double-count every event)"
        )
        self.path = path
        self.pid = pid


class InstanceLock:
    """Exclusive per-account lock. ``acquire()`` raises ``AlreadyRunning`` at once, never waits."""

    def __init__(self, path: str | os.PathLike[str], backend: LockBackend | None = None) -> None:
        self.path = Path(path)
        self.backend = backend or default_backend()
        self._fd: int | None = None

    @classmethod
    def for_store(cls, store_path: str | os.PathLike[str]) -> InstanceLock:
        """The lock that guards a state store: ``<store>.lock`` next to it."""
        store = Path(store_path)
        return cls(store.with_name(store.name + ".lock"))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        # not inherited by children (PEP 446); O_BINARY: no newline translation on Windows
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            locked = self.backend.try_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.path, pid)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            self.backend.unlock(fd)
        os.close(fd)  # closing the file drops the lock in any case

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
