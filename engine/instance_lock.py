"""One engine per account: an exclusive, non-blocking ``fcntl.flock`` on a lock file.

The lock lives on an open file description, so the kernel drops it when the holding process dies for
any reason (including ``kill -9``): there is never a stale lock to clean up by hand. The file itself
stays on disk (deleting it would race with a second engine opening it); it holds the holder's pid, for
the error message only. The flock, not the file's existence or content, is the truth.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from engine.errors import ZhixingError


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

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor drops the flock

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
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
