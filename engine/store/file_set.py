"""Files that belong together written as one set: a temporary folder beside the target, renamed into place.

``orders.csv`` and ``fills.csv`` of an export, or a backup's ``journal.db``, trade log and manifest, are
only right together: a new ``orders.csv`` beside an old ``fills.csv`` (the disk filled between the two)
is a trade log that no journal ever held. The rule, for every set of files zhixing writes for people or
for a restore:

- everything is written into ``.<name>.<random>.partial`` in the target's own parent folder (the same
  file system, so the renames below are renames), every file fsynced, then the folder;
- no previous set: the folder is renamed to the target. A previous set: it is renamed aside to
  ``.<name>.<random>.old``, the new folder renamed to the target, the parent fsynced, the old one removed.
  A failure (a full disk, a write error, a refusal) before the first rename changes nothing; one at the
  second rename puts the old set back;
- the previous set is replaced only when it holds nothing but the files of the set (``ours``): a folder
  that holds anything else is refused, naming those files, and nothing is written;
- leftovers of a process that died meanwhile are recovered before the next write: a ``.partial`` folder
  is removed (it never became the set), an ``.old`` one is renamed back when the target is missing (the
  process died between the two renames: the previous complete set comes back) and removed otherwise.

So a reader (a person, a spreadsheet, ``zhixing journal restore``) finds the previous complete set, the
new complete set, or, when there was none before, nothing; never a mixture. Removing a leftover removes
only its regular files and links, never a sub-folder or what a link points to.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

from zhixing.engine.errors import StoreError

log = structlog.get_logger("zhixing.store")

T = TypeVar("T")

PARTIAL = ".partial"
OLD = ".old"


class FileSetError(StoreError):
    """A set of files could not be written; the message names the folder, why, and that nothing changed."""


ErrorFactory = Callable[[str], StoreError]


def write_file_set(
    target: Path,
    fill: Callable[[Path], T],
    *,
    ours: Callable[[str], bool],
    what: str,
    error: ErrorFactory = FileSetError,
) -> T:
    """Write a set into the folder ``target`` as one (see the module text): ``fill(folder)`` writes the
    files into an empty temporary folder (and returns what the caller wants back); ``ours(name)`` says
    which names in an existing ``target`` belong to the set. ``what`` names the set in errors, ``error``
    makes them (a ``StoreError`` subclass). An ``OSError`` becomes ``error``; other exceptions of
    ``fill`` pass unchanged. Either way nothing changed."""
    target = Path(os.path.abspath(target))
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(
            f"{target}: cannot create the folder {parent} ({exc.strerror or exc}); nothing was written"
        ) from exc
    recover(target)
    check_replaceable(target, ours, what=what, error=error)
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=PARTIAL, dir=parent))
    except OSError as exc:
        raise error(
            f"{target}: cannot write in {parent} ({exc.strerror or exc}); nothing was written"
        ) from exc
    try:
        result = fill(temp)
        fsync_dir(temp)
        _swap(temp, target)
    except BaseException as exc:
        remove_folder(temp)
        if isinstance(exc, OSError):
            raise error(
                f"{target}: the {what} could not be written ({exc.strerror or exc}); nothing was changed"
                + (" (the previous one is as it was)" if os.path.lexists(target) else "")
            ) from exc
        raise
    return result


def check_replaceable(
    target: Path, ours: Callable[[str], bool], *, what: str, error: ErrorFactory = FileSetError
) -> None:
    """``target`` is missing, or a real folder that holds only files of the set; else ``error``."""
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise error(f"{target}: exists and is not a folder; nothing was written")
    foreign = sorted(p.name for p in target.iterdir() if not ours(p.name) or not _plain_file(p))
    if foreign:
        raise error(
            f"{target}: exists and holds files zhixing did not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); the {what} is written as one set into a folder of "
            "its own; nothing was written"
        )


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _swap(temp: Path, target: Path) -> None:
    parent = target.parent
    if not os.path.lexists(target):
        os.rename(temp, target)
        fsync_dir(parent)
        return
    aside = parent / f".{target.name}.{secrets.token_hex(8)}{OLD}"
    os.rename(target, aside)
    try:
        os.rename(temp, target)
    except BaseException:
        os.rename(aside, target)  # the previous set back in place
        raise
    fsync_dir(parent)
    remove_folder(aside)


def leftovers(target: Path) -> tuple[list[Path], list[Path]]:
    """The ``.partial`` and ``.old`` folders a write of ``target`` left behind (a process that died)."""
    pattern = re.compile(
        rf"\.{re.escape(target.name)}\.[0-9a-z_]{{8,16}}({re.escape(PARTIAL)}|{re.escape(OLD)})"
    )
    partial: list[Path] = []
    old: list[Path] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in target.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match is None or entry.is_symlink() or not entry.is_dir():
                continue
            (partial if match[1] == PARTIAL else old).append(entry)
    return sorted(partial), sorted(old, key=lambda p: p.stat().st_mtime_ns)


def recover(target: Path) -> None:
    """Clean up after a write of ``target`` that died (see the module text)."""
    partial, old = leftovers(target)
    for folder in partial:
        log.warning("file_set_partial_removed", folder=str(folder), target=str(target))
        remove_folder(folder)
    if old and not os.path.lexists(target):
        back = old.pop()  # the newest: the set that was in place when the process died
        os.rename(back, target)
        fsync_dir(target.parent)
        log.warning("file_set_restored", folder=str(back), target=str(target))
    for folder in old:
        remove_folder(folder)


def remove_folder(folder: Path) -> None:
    """Remove ``folder``'s regular files and links, then the folder; a sub-folder (not ours) stays."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in folder.iterdir():
            if entry.is_symlink() or entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("file_set_leftover_kept", folder=str(folder), error=str(exc))


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX; Windows cannot open a folder for fsync and does not need to)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
