"""The terminal's folders are a trust boundary: who may write them, and how zhixing opens files there.

Whoever can write the input folder can place orders on the account (the terminal executes every
``*.order.csv`` it finds); whoever can write the output folder decides what zhixing believes was
filled. So, before it reads or writes there, zhixing checks (POSIX):

- **folders** (``check_folder``): the folder itself is owned by the user running zhixing and is not
  writable by group or others; each folder above it (after resolving symlinks) is owned by that user or
  root and is not writable by others unless it is sticky (``/tmp``); a symlink on the configured path
  is owned by the user or root. Group write is accepted only for the user's own private group (the
  group named after the user, with no other member: the ``umask 002`` convention), as Debian's OpenSSH
  does for ``~/.ssh``. The error names the path and the command that fixes it;
- **reading** (``open_for_reading``): ``O_NOFOLLOW`` (a symlinked output file is refused, not
  followed), ``O_NONBLOCK`` then a regular-file check (a FIFO planted under a report's name cannot hang
  the poll);
- **writing** (``write_new_file``): an unpredictable temporary name (``secrets``), created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode ``0o600`` (a planted file or symlink there makes the create
  fail instead of writing through it), fsync'd, then renamed over a name where nothing may exist yet
  (``os.replace`` never follows a symlink at the destination); every file is readable by its owner only.

Windows (where the terminals run) has no mode bits or uid: ``os.stat`` there reports only the
read-only attribute, so the owner and permission checks are skipped and the folders' ACLs are the
user's to set (``docs/routes/fileorder.md`` gives the ``icacls`` command). What Windows does check:
a symlink or junction (reparse point) as an output file is refused (``lstat`` before the open, and the
opened file must be the one ``lstat`` saw), the exclusive create of a random temporary name, and the
rename that refuses an existing destination.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Final

from zhixing.engine.errors import BrokerError

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; Windows checks with lstat instead
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)
_SYMLINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK})  # Linux/macOS ELOOP, FreeBSD EMLINK
TEMP_SUFFIX = ".tmp"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class UntrustedPathError(BrokerError):
    """A folder or file of the route that someone else could control; the message names the path
    and the fix. Nothing was read from or written to it."""


def _is_link(st: os.stat_result) -> bool:
    return stat.S_ISLNK(st.st_mode) or bool(getattr(st, "st_file_attributes", 0) & _REPARSE_POINT)


# ------------------------------------------------------------------------------------------ folders
def check_folder(path: Path, role: str) -> None:
    """Refuse (``UntrustedPathError``) a folder another user could write or own; see the module text.
    ``role`` is the config key, named in the error. A missing folder is an error too."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UntrustedPathError(f"fileorder: {role} {path} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedPathError(f"fileorder: {role} {path} is not a folder")
    if sys.platform != "win32":
        _check_posix_folder(path, role)


if sys.platform != "win32":
    import grp
    import pwd

    @functools.lru_cache(maxsize=16)  # asked at every poll; the user database may be remote (LDAP)
    def _private_group(gid: int, uid: int) -> bool:
        """Is ``gid`` the user's own group: their primary group, with no other member?"""
        try:
            user = pwd.getpwuid(uid)
            group = grp.getgrgid(gid)
        except KeyError:
            return False
        if user.pw_gid != gid or any(member != user.pw_name for member in group.gr_mem):
            return False
        return not any(p.pw_gid == gid and p.pw_uid != uid for p in pwd.getpwall())

    def _writable_by_others(st: os.stat_result, uid: int, *, sticky_ok: bool) -> str | None:
        """Who besides the owner can create or rename entries in this folder (None: nobody)."""
        if sticky_ok and st.st_mode & stat.S_ISVTX:
            return None  # /tmp: others create entries but cannot rename or delete ours
        if st.st_mode & stat.S_IWOTH:
            return "every user"
        if st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid, uid):
            return f"group {st.st_gid}"
        return None

    def _check_posix_folder(path: Path, role: str) -> None:
        uid = os.geteuid()
        absolute = Path(os.path.abspath(path))
        # a symlink on the way must belong to us or root: its owner could point it elsewhere later
        for part in [absolute, *absolute.parents]:
            link = os.lstat(part)
            if stat.S_ISLNK(link.st_mode) and link.st_uid not in (0, uid):
                raise UntrustedPathError(
                    f"fileorder: {role} {path}: the symlink {part} belongs to user {link.st_uid}; "
                    "configure the real folder instead"
                )
        real = Path(os.path.realpath(absolute))
        st = os.stat(real)
        if st.st_uid != uid:
            raise UntrustedPathError(
                f"fileorder: {role} {path} belongs to user {st.st_uid}, not to the user running zhixing "
                f"({uid}); use a folder of your own (or: chown {uid} {real})"
            )
        who = _writable_by_others(st, uid, sticky_ok=False)
        if who is not None:
            raise UntrustedPathError(
                f"fileorder: {role} {path} can be written by {who} (mode {stat.S_IMODE(st.st_mode):o}): "
                f"they could place or alter files the terminal and zhixing trust; fix: chmod go-w {real}"
            )
        for parent in real.parents:
            pst = os.stat(parent)
            if pst.st_uid not in (0, uid):
                raise UntrustedPathError(
                    f"fileorder: {role} {path}: the folder above it, {parent}, belongs to user "
                    f"{pst.st_uid}, who could replace it; move the folder under one of your own"
                )
            who = _writable_by_others(pst, uid, sticky_ok=True)
            if who is not None:
                raise UntrustedPathError(
                    f"fileorder: {role} {path}: the folder above it, {parent}, can be written by {who} "
                    f"(mode {stat.S_IMODE(pst.st_mode):o}), who could replace it; fix: chmod go-w {parent}"
                )


class FolderGuard:
    """``check_folder`` for a folder asked about at every poll. In full when the folder's own stat
    (inode, owner, group, mode, ctime: a ``chmod``/``chown`` changes it) differs from the last full
    check, and at least every ``full_every`` calls (the folders above it: within a minute at the
    default poll); otherwise one ``stat``."""

    def __init__(self, path: Path, role: str, *, full_every: int = 120) -> None:
        self.path = path
        self.role = role
        self.full_every = full_every
        self._signature: tuple[int, ...] | None = None
        self._calls = 0

    def check(self) -> bool:
        """False while the folder does not exist; raises ``UntrustedPathError`` when it is untrusted."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._signature = None
            return False
        signature = (st.st_dev, st.st_ino, st.st_uid, st.st_gid, st.st_mode, st.st_ctime_ns)
        self._calls += 1
        if signature != self._signature or self._calls >= self.full_every:
            self._signature = None
            check_folder(self.path, self.role)
            self._signature, self._calls = signature, 0
        return True


def make_private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by its owner only, if it does not exist."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)


# ------------------------------------------------------------------------------------------ reading
def open_for_reading(path: Path) -> int | None:
    """A read-only descriptor of the regular file ``path``, never through a symlink; None if missing.
    Raises ``UntrustedPathError`` for a symlink, junction, FIFO, device or folder."""
    if sys.platform == "win32":
        try:
            seen = os.lstat(path)
        except FileNotFoundError:
            return None
        if _is_link(seen):
            raise _link_error(path)
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY | _O_NOFOLLOW | _O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _SYMLINK_ERRNOS:
            raise _link_error(path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedPathError(
                f"fileorder: {path} is not a regular file (mode {st.st_mode:o}); remove it and let the "
                "terminal write it"
            )
        if sys.platform == "win32" and seen.st_ino and (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            raise _link_error(path)  # swapped between the lstat and the open
    except BaseException:
        os.close(fd)
        raise
    return fd


def _link_error(path: Path) -> UntrustedPathError:
    return UntrustedPathError(
        f"fileorder: {path} is a symlink (or junction); zhixing does not follow links in the "
        "terminal's folders: delete it and let the terminal write the file there"
    )


class FileTooLarge(ValueError):
    """A file larger than its reader's bound; nothing of it was read."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"{path}: {size:,} bytes, more than the {limit:,} read of such a file")
        self.size = size
        self.limit = limit


def read_bytes(path: Path, limit: int | None = None) -> bytes | None:
    """The whole file, opened as ``open_for_reading`` does; None if it is missing. With ``limit``, a
    larger file raises ``FileTooLarge`` before it is read (and never more than ``limit`` bytes are)."""
    fd = open_for_reading(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as handle:
        if limit is None:
            return handle.read()
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise FileTooLarge(path, size, limit)
        data = handle.read(limit + 1)
        if len(data) > limit:
            raise FileTooLarge(path, len(data), limit)
        return data


# ------------------------------------------------------------------------------------------ writing
def temp_name(final_name: str) -> str:
    """``.<final>.<16 random hex>.tmp``: hidden from the terminal's globs and not guessable."""
    return f".{final_name}.{secrets.token_hex(8)}{TEMP_SUFFIX}"


def create_exclusive(path: Path, data: bytes) -> None:
    """Create ``path`` (owner-only), write ``data``, fsync. Fails if anything exists at ``path``,
    a symlink included (``O_EXCL``; ``O_NOFOLLOW`` where the system has it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_NOFOLLOW
    try:
        fd = os.open(path, flags, PRIVATE_FILE_MODE)
    except FileExistsError:
        raise UntrustedPathError(
            f"fileorder: {path} already exists (a file or link planted under a temporary name?); "
            "nothing written: check who else writes to this folder"
        ) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


_NO_HARDLINK_ERRNOS: Final = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}
)


def write_new_file(folder: Path, name: str, data: bytes) -> Path:
    """Put ``data`` at ``folder/name`` whole or not at all: exclusive create of a random temporary
    name, fsync, then an exclusive move to ``name``. Refuses (nothing visible) when something exists at
    ``name``, also one that appears at the last instant: the move itself refuses (``os.link`` on POSIX,
    ``os.rename`` on Windows), there is no check-then-replace gap."""
    final = folder / name
    temp = folder / temp_name(name)
    create_exclusive(temp, data)
    try:
        _move_exclusive(temp, final)
    except FileExistsError:
        raise UntrustedPathError(
            f"fileorder: {final} already exists; zhixing never overwrites a file in the terminal's "
            "folder (nothing written)"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)  # after a link, the temporary name; after a failure, the file
    return final


def _move_exclusive(temp: Path, final: Path) -> None:
    """Give ``temp``'s file the name ``final``, raising ``FileExistsError`` if that name is taken."""
    if sys.platform == "win32":
        os.rename(temp, final)  # refuses an existing destination
        return
    try:
        os.link(temp, final, follow_symlinks=False)  # atomic, refuses an existing name (even a link)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARDLINK_ERRNOS:
            raise
        # a file system without hard links (FAT, some network shares): the narrowest check-then-move
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
        os.rename(temp, final)


def ensure_private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only if missing (SQLite then gives its ``-wal``/``-shm`` files
    the same mode); refuse a symlink there."""
    if sys.platform == "win32":
        with contextlib.suppress(FileNotFoundError):
            if _is_link(os.lstat(path)):
                raise _link_error(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | _O_BINARY | _O_NOFOLLOW, PRIVATE_FILE_MODE)
    except OSError as exc:
        if exc.errno in _SYMLINK_ERRNOS:
            raise _link_error(path) from None
        raise
    os.close(fd)
