"""From a checkout, ``zhixing.engine`` (and ``algos``, ``adapters``, ``replay``) are the repository's folders.

Installed, those four packages sit inside ``zhixing/`` (``pyproject.toml`` maps them). In a checkout they sit
beside it, and ``zhixing/__init__.py`` installs :class:`CheckoutFolders`, which answers for exactly those
four names and nothing else: the repository's other folders (``tests/``, ``benchmarks/``, ``zhixing/``
itself) never become ``zhixing.tests`` or a second copy ``zhixing.zhixing.engine`` whose classes differ
from the real ones. Their subpackages and modules are then found the ordinary way, under each folder.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

FOLDERS = ("engine", "algos", "adapters", "replay")


class CheckoutFolders(importlib.abc.MetaPathFinder):
    """Finds ``zhixing.<folder>`` at ``<root>/<folder>/__init__.py`` for the four folders."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        parent, _, name = fullname.rpartition(".")
        if parent != "zhixing" or name not in FOLDERS:
            return None
        folder = self.root / name
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def install(root: Path) -> None:
    """Once per interpreter, ahead of the path finder (an editable install's own finder agrees with it)."""
    if not any(isinstance(f, CheckoutFolders) for f in sys.meta_path):
        sys.meta_path.insert(0, CheckoutFolders(root))
