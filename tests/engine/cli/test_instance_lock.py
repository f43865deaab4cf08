"""Single-instance lock (RELIABILITY A9): a second engine on the same account exits with a clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zhixing import engine
from zhixing.engine.errors import ZhixingError
from zhixing.engine.instance_lock import AlreadyRunning, InstanceLock

ROOT = Path(engine.__file__).resolve().parent.parent

TRY_ACQUIRE = """
import sys
from zhixing.engine.instance_lock import AlreadyRunning, InstanceLock
try:
    InstanceLock(sys.argv[1]).acquire()
except AlreadyRunning as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
print("acquired")
"""

HOLD = """
import sys, time
from zhixing.engine.instance_lock import InstanceLock
lock = InstanceLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _try_in_other_process(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TRY_ACQUIRE, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(),
        check=False,
    )


def test_second_process_exits_with_clear_error_naming_lock_file_and_pid(tmp_path: Path) -> None:
    lock = InstanceLock.for_store(tmp_path / "journal.db")
    assert lock.path == tmp_path / "journal.db.lock"
    with lock:
        assert lock.path.read_text().strip() == str(os.getpid())
        result = _try_in_other_process(lock.path)
        assert result.returncode == 3
        assert "already running" in result.stderr
        assert str(lock.path) in result.stderr
        assert f"pid {os.getpid()}" in result.stderr
    # released: another process can take it now
    result = _try_in_other_process(lock.path)
    assert (result.returncode, result.stdout.strip()) == (0, "acquired")


def test_same_process_second_lock_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "acct.lock"
    with InstanceLock(path):
        other = InstanceLock(path)
        with pytest.raises(AlreadyRunning) as info:
            other.acquire()
        assert isinstance(info.value, ZhixingError)
        assert info.value.pid == os.getpid()
        assert not other.held
    with InstanceLock(path) as again:
        assert again.held


def test_lock_dies_with_a_sigkilled_holder(tmp_path: Path) -> None:
    path = tmp_path / "acct.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning) as info:
            InstanceLock(path).acquire()
        assert info.value.pid == holder.pid
        assert str(holder.pid) in str(info.value)
        os.kill(holder.pid, signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    lock = InstanceLock(path)
    lock.acquire()  # no stale lock after kill -9
    assert lock.path.read_text().strip() == str(os.getpid())
    lock.release()
    lock.release()  # idempotent
    assert not lock.held


class FakeMsvcrt:
    """``msvcrt.locking`` as Windows documents it: LK_NBLCK locks ``nbytes`` from the file position or
    raises OSError (EACCES) if another open file holds them; LK_UNLCK unlocks what this file locked.
    Shared by every "process" in the test, as the OS would be."""

    LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2

    def __init__(self) -> None:
        self.held: dict[tuple[int, int], int] = {}  # (file id, offset) -> fd holding it
        self.calls: list[tuple[int, int]] = []  # (mode, offset)

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        key = (os.fstat(fd).st_ino, os.lseek(fd, 0, os.SEEK_CUR))
        self.calls.append((mode, key[1]))
        if mode == self.LK_NBLCK:
            if key in self.held:
                raise PermissionError(13, "Permission denied")
            self.held[key] = fd
        elif mode == self.LK_UNLCK:
            if self.held.get(key) != fd:
                raise PermissionError(13, "Permission denied")
            del self.held[key]
        else:
            raise AssertionError(f"mode {mode} not used by zhixing")


def test_the_windows_lock_refuses_a_second_engine_and_is_released(tmp_path: Path) -> None:
    from zhixing.engine.instance_lock import WINDOWS_LOCK_OFFSET, MsvcrtBackend

    msvcrt = FakeMsvcrt()
    path = tmp_path / "journal.db.lock"
    first = InstanceLock(path, MsvcrtBackend(msvcrt))  # type: ignore[arg-type]
    first.acquire()
    assert path.read_text().strip() == str(os.getpid())  # the pid sits before the locked byte
    with pytest.raises(AlreadyRunning) as info:
        InstanceLock(path, MsvcrtBackend(msvcrt)).acquire()  # type: ignore[arg-type]
    assert info.value.pid == os.getpid()
    first.release()
    assert msvcrt.held == {}
    again = InstanceLock(path, MsvcrtBackend(msvcrt))  # type: ignore[arg-type]
    again.acquire()
    again.release()
    assert {offset for _, offset in msvcrt.calls} == {WINDOWS_LOCK_OFFSET}
    assert [mode for mode, _ in msvcrt.calls] == [2, 2, 0, 2, 0]


@pytest.mark.slow
def test_the_cli_imports_where_fcntl_does_not_exist() -> None:
    """On Windows there is no fcntl: ``zhixing`` (its whole command tree, the lock included) must import."""
    code = (
        "import sys; sys.modules['fcntl'] = None\n"  # import fcntl -> ImportError, as on Windows
        "import zhixing.engine.cli, zhixing.engine.cli.run_cmd, zhixing.engine.instance_lock\n"
        "print('imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env(), check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "imported"), result.stderr
