"""Child processes that end with their job: a signal script and everything it started.

A job's script may start programs of its own (a shell pipeline, a Python that forks workers, a
grandchild that ignores SIGTERM). Killing the script alone leaves those running, holding its output
pipes open and the CPU busy after the engine has gone. So a child is started as the root of a tree that
is ended as a whole:

- **POSIX**: in its own session (``start_new_session=True``, hence its own process group). ``end`` sends
  SIGTERM to the group, waits up to ``grace_s`` for every member to go, then SIGKILLs the group. On Linux
  the members are found in ``/proc`` by process group *and* session, so a grandchild that moved to a
  group of its own (``setpgid``) is ended too; one that started a new session (``setsid``, a daemon's
  double fork) has left the tree and is out of reach: a script must not daemonize.
- **Windows** (not run in this project's tests; type-checked with ``mypy --platform win32``): the child
  gets ``CREATE_NEW_PROCESS_GROUP`` and is put in a Job Object with ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``:
  ``end`` sends CTRL_BREAK to the group, waits ``grace_s``, then terminates the job (every process in it);
  and the job's handle closing (also when this process dies, however) ends them all. A process the child
  starts in the instant before it is assigned to the job escapes it.

Every live tree is in ``live_trees()``: the stop's watchdog kills them all before it ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from zhixing.engine.clock import Clock, LiveClock

log = structlog.get_logger("zhixing.child")
HOST: Clock = LiveClock()  # a grace is the host's seconds, whatever the engine's clock (a replay's too)

KILL_GRACE_S = 5.0
"""How long a tree is given between SIGTERM (CTRL_BREAK) and SIGKILL (TerminateJobObject)."""
POLL_S = 0.05  # how often ``end`` looks whether the tree is gone
REAP_S = 2.0  # after SIGKILL: how long to wait for the tree to be gone before reporting it is not

_LIVE: set[ProcessTree] = set()


def live_trees() -> list[ProcessTree]:
    """Every tree started and not yet ended."""
    return list(_LIVE)


def kill_all_now() -> None:
    """SIGKILL (terminate) every live tree at once: synchronous, callable from any thread."""
    for tree in live_trees():
        tree.kill_now()


class ProcessTree:
    """A started child (``proc``) and everything it starts; see the module docstring."""

    def __init__(self, proc: asyncio.subprocess.Process, job: Any = None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._job = job  # Windows: the Job Object handle (None: not in a job)
        self.ended = False
        _LIVE.add(self)

    def members(self) -> list[int]:
        """The pids of the tree still running (zombies excluded where that can be told)."""
        if sys.platform == "win32":
            return [self.pid] if self.proc.returncode is None else []
        else:
            found = _proc_members(self.pid)
            if found is not None:
                return found
            try:  # no /proc: the group's existence is all POSIX tells (zombies count as members)
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return []
            return [self.pid]

    def alive(self) -> bool:
        return bool(self.members())

    async def end(self, grace_s: float = KILL_GRACE_S) -> bool:
        """Ask the tree to stop, wait up to ``grace_s``, kill what is left. True: the whole tree is gone."""
        try:
            self._terminate()
            await self._wait_gone(grace_s)
            self.kill_now()
            await self._wait_gone(REAP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), REAP_S)
            survivors = self.members()
        finally:
            self.kill_now()  # also when the wait above is cancelled: nothing of the tree outlives it
            self.close()
        if survivors:
            log.error("process_tree_survives", pid=self.pid, survivors=survivors)
        return not survivors

    async def _wait_gone(self, seconds: float) -> None:
        # nothing signals a grandchild's exit to us (it is not our child): the tree is looked at
        deadline = HOST.now_ns() + int(seconds * 1e9)
        while self.alive() and HOST.now_ns() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)

    def kill_now(self) -> None:
        """SIGKILL the tree (terminate the job) without waiting: synchronous, callable from any thread."""
        if sys.platform == "win32":
            if self._job is not None:
                _win_terminate_job(self._job)
            with contextlib.suppress(ProcessLookupError, OSError):
                self.proc.kill()
        else:
            _signal_tree(self.pid, signal.SIGKILL)

    def _terminate(self) -> None:
        if sys.platform == "win32":
            with contextlib.suppress(OSError, ValueError):
                os.kill(self.pid, signal.CTRL_BREAK_EVENT)  # the child's group: it may shut down itself
        else:
            _signal_tree(self.pid, signal.SIGTERM)

    def close(self) -> None:
        """Forget the tree (ended, or gone by itself): the watchdog no longer signals its group."""
        if self.ended:
            return
        self.ended = True
        _LIVE.discard(self)
        if sys.platform == "win32" and self._job is not None:
            _win_close(self._job)  # kill-on-close: whatever is still in the job goes with it
            self._job = None


async def start_tree(
    *command: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
) -> ProcessTree:
    """Start ``command`` as the root of a tree (module docstring). Raises ``OSError`` if it cannot start."""
    if sys.platform == "win32":
        import subprocess

        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
        )
        return ProcessTree(proc, _win_job_for(proc.pid))
    else:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
        return ProcessTree(proc)


# ------------------------------------------------------------------------------------------------ POSIX
def _proc_members(root: int) -> list[int] | None:
    """Linux: the pids in ``root``'s process group or session that are not zombies (None: no /proc)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").is_file():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 4:
            continue
        state, pgrp, session = fields[0], fields[2], fields[3]
        if state not in ("Z", "X") and str(root) in (pgrp, session):
            members.append(int(entry.name))
    return sorted(members)


def _signal_tree(root: int, signum: int) -> None:
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(root, signum)
        for pid in _proc_members(root) or ():  # a member that left the group but not the session
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)


# ---------------------------------------------------------------------------------------------- Windows
if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9
    _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
    _PROCESS_SET_QUOTA = 0x0100
    _PROCESS_TERMINATE = 0x0001

    class _IoCounters(ctypes.Structure):
        _fields_ = [
            ("ReadOperationCount", ctypes.c_ulonglong),
            ("WriteOperationCount", ctypes.c_ulonglong),
            ("OtherOperationCount", ctypes.c_ulonglong),
            ("ReadTransferCount", ctypes.c_ulonglong),
            ("WriteTransferCount", ctypes.c_ulonglong),
            ("OtherTransferCount", ctypes.c_ulonglong),
        ]

    class _BasicLimits(ctypes.Structure):
        _fields_ = [
            ("PerProcessUserTimeLimit", wintypes.LARGE_INTEGER),
            ("PerJobUserTimeLimit", wintypes.LARGE_INTEGER),
            ("LimitFlags", wintypes.DWORD),
            ("MinimumWorkingSetSize", ctypes.c_size_t),
            ("MaximumWorkingSetSize", ctypes.c_size_t),
            ("ActiveProcessLimit", wintypes.DWORD),
            ("Affinity", ctypes.c_size_t),
            ("PriorityClass", wintypes.DWORD),
            ("SchedulingClass", wintypes.DWORD),
        ]

    class _ExtendedLimits(ctypes.Structure):
        _fields_ = [
            ("BasicLimitInformation", _BasicLimits),
            ("IoInfo", _IoCounters),
            ("ProcessMemoryLimit", ctypes.c_size_t),
            ("JobMemoryLimit", ctypes.c_size_t),
            ("PeakProcessMemoryUsed", ctypes.c_size_t),
            ("PeakJobMemoryUsed", ctypes.c_size_t),
        ]

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    _kernel32.CreateJobObjectW.argtypes = [ctypes.c_void_p, wintypes.LPCWSTR]
    _kernel32.SetInformationJobObject.restype = wintypes.BOOL
    _kernel32.SetInformationJobObject.argtypes = [
        wintypes.HANDLE,
        ctypes.c_int,
        ctypes.c_void_p,
        wintypes.DWORD,
    ]
    _kernel32.OpenProcess.restype = wintypes.HANDLE
    _kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    _kernel32.AssignProcessToJobObject.restype = wintypes.BOOL
    _kernel32.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
    _kernel32.TerminateJobObject.restype = wintypes.BOOL
    _kernel32.TerminateJobObject.argtypes = [wintypes.HANDLE, wintypes.UINT]
    _kernel32.CloseHandle.restype = wintypes.BOOL
    _kernel32.CloseHandle.argtypes = [wintypes.HANDLE]

    def _win_job_for(pid: int) -> Any:
        """A kill-on-close Job Object holding ``pid`` (None, logged, if Windows refuses: the child is
        then ended alone)."""
        job = _kernel32.CreateJobObjectW(None, None)
        if not job:
            log.warning("job_object_failed", step="create", error=ctypes.get_last_error())
            return None
        limits = _ExtendedLimits()
        limits.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not _kernel32.SetInformationJobObject(
            job, _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(limits), ctypes.sizeof(limits)
        ):
            log.warning("job_object_failed", step="limits", error=ctypes.get_last_error())
            _kernel32.CloseHandle(job)
            return None
        process = _kernel32.OpenProcess(_PROCESS_SET_QUOTA | _PROCESS_TERMINATE, False, pid)
        if not process:
            log.warning("job_object_failed", step="open process", error=ctypes.get_last_error())
            _kernel32.CloseHandle(job)
            return None
        try:
            if not _kernel32.AssignProcessToJobObject(job, process):
                log.warning("job_object_failed", step="assign", error=ctypes.get_last_error())
                _kernel32.CloseHandle(job)
                return None
        finally:
            _kernel32.CloseHandle(process)
        return job

    def _win_terminate_job(job: Any) -> None:
        if not _kernel32.TerminateJobObject(job, 1):
            log.warning("job_object_failed", step="terminate", error=ctypes.get_last_error())

    def _win_close(job: Any) -> None:
        _kernel32.CloseHandle(job)
