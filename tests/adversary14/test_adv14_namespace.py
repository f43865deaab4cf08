"""Adversary, issue 14 item 5: one top-level name, and one copy of each module under it.

``zhixing/__init__.py`` appends the repository root to ``zhixing.__path__`` in a checkout (an editable
install too) so that ``zhixing.engine`` finds ``engine/``. The root also holds ``zhixing/`` itself,
``tests/``, ``benchmarks/``, ``examples/``: in a checkout they become ``zhixing.zhixing``,
``zhixing.tests``, ``zhixing.benchmarks`` (none of which exist in the wheel), and ``zhixing.zhixing.engine``
is a second copy of the engine whose enums and errors are other classes.
"""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["zhixing.zhixing", "zhixing.tests", "zhixing.benchmarks"])
def test_was_checkout_exposes_non_package_folders_under_zhixing(name: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_was_second_copy_of_engine_under_zhixing_zhixing() -> None:
    from zhixing.engine.errors import ZhixingError

    try:
        copy = importlib.import_module("zhixing.zhixing.engine.errors")
    except ModuleNotFoundError:
        return
    assert copy.ZhixingError is ZhixingError, "two ZhixingError classes: `except` on one misses the other"
