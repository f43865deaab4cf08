"""Identifiers that become part of a path: one strict pattern, checked where they are configured and
again where they are joined to a folder.

An account id, a parent id or a file name that zhixing puts into a path must be a single, ordinary
path component on every operating system it runs on. The rule (``check_name``):

- 1 to 128 characters, ASCII letters, digits, ``_``, ``-`` and ``.`` only: no separator (``/``, ``\\``),
  no drive colon (``C:``), no NUL or control character, no space, nothing a shell or a CSV cell treats
  specially;
- starts with a letter or a digit (no ``.``: hidden files and ``..``; no ``-``: an option to a tool) and
  does not end with ``.`` (Windows drops a trailing dot, so ``a.`` would be ``a``);
- contains no ``..``;
- is not a Windows device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``-``COM9``, ``LPT1``-``LPT9``,
  with or without an extension: ``nul.csv`` opens the null device there).

``join(folder, name, what)`` checks ``name`` and returns ``folder / name``; a path-join site uses it
instead of ``/`` so that a name that slipped past (or around) the config check still cannot leave
its folder. Full paths the user configures (folders) are not names; ``check_path_text`` only refuses
NUL and control characters in them.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME = 128
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.\-]{0,126}[A-Za-z0-9_\-])?")
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "0123456789¹²³"}  # 0 and the superscripts are reserved too (Windows docs)
    | {f"LPT{i}" for i in "0123456789¹²³"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeNameError(ValueError):
    """A name that must not become part of a path."""


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a safe path component, or None when it is one."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "is empty"
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long (at most {MAX_NAME})"
    if _CONTROL.search(value):
        return "contains a NUL or control character"
    if "/" in value or "\\" in value or ":" in value:
        return "contains a path separator or a drive colon"
    if ".." in value:
        return "contains '..'"
    if not _NAME.fullmatch(value):
        return (
            "may use only ASCII letters, digits, '_', '-' and '.', must start with a letter or a digit "
            "and must not end with '.'"
        )
    if value.split(".", 1)[0].upper() in _WINDOWS_DEVICES:
        return "is a Windows device name"
    return None


def check_name(value: object, what: str) -> str:
    """``value`` if it is a safe path component; else ``UnsafeNameError`` naming ``what`` and the rule."""
    problem = name_problem(value)
    if problem is not None:
        raise UnsafeNameError(f"{what} {value!r} {problem}")
    assert isinstance(value, str)
    return value


def join(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` after ``check_name``: the result is always a direct child of ``folder``."""
    path = folder / check_name(name, what)
    if path.parent != folder:  # cannot happen for a checked name; kept as the invariant's statement
        raise UnsafeNameError(f"{what} {name!r} leaves its folder {folder}")
    return path


def check_path_text(value: str, what: str) -> str:
    """A configured path: any spelling the user wants, but no NUL or control character (they cut a
    path short in C APIs, and split a log line or a crontab entry)."""
    if _CONTROL.search(value):
        raise UnsafeNameError(f"{what} {value!r} contains a NUL or control character")
    return value
