"""One place builds an engine (issue 14): ``zhixing/assembly.py``. This scan of the source keeps it so.

- Only the composition root constructs an ``OrderManager``, a ``RiskControls`` or the market-rules check.
- Nothing wires a collaborator onto a built OrderManager: no ``x.checks.append/insert``, no
  ``x.before_commit.append``, no ``x.gate =`` (an object's own ``self.checks`` is its own business).
- ``engine`` (but its CLI, the drivers) imports nothing from ``algos``, ``adapters``, ``replay`` or
  ``zhixing``; the import map of the packages (printed by ``import_map``) has no other edge into the
  root's job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "algos", "adapters", "replay", "zhixing")
BUILDER = ROOT / "zhixing" / "assembly.py"
BUILT_ONLY_THERE = {"OrderManager", "RiskControls", "market_rules_check"}
WIRING_CALLS = {("checks", "append"), ("checks", "insert"), ("before_commit", "append")}


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    rel = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name in BUILT_ONLY_THERE and path != BUILDER:
                found.append(f"{rel}:{node.lineno}: builds {name} (only zhixing/assembly.py does)")
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Attribute)
                and (func.value.attr, func.attr) in WIRING_CALLS
                and not (isinstance(func.value.value, ast.Name) and func.value.value.id == "self")
            ):
                found.append(
                    f"{rel}:{node.lineno}: wires .{func.value.attr}.{func.attr}() onto a built engine"
                )
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "gate"
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                ):
                    found.append(f"{rel}:{node.lineno}: sets .gate on a built OrderManager")
    return found


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute import (``from zhixing import engine``: ``zhixing.engine``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "zhixing":
                found.extend((node.lineno, f"zhixing.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, node.module))
    return found


def package_of(module: str) -> str | None:
    """The tree's package a ``zhixing.*`` module belongs to (``zhixing`` itself: the root and the API)."""
    parts = module.split(".")
    if parts[0] != "zhixing":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "zhixing"


def imported_packages(path: Path) -> set[str]:
    return {p for _, m in imported_modules(path) if (p := package_of(m)) is not None}


LIBRARY = ("api.py", "sync.py")  # zhixing.api, zhixing.sync: strategy scripts' front (docs/API.md)


def import_map() -> dict[str, set[str]]:
    """Which package imports which (``engine.cli`` and the library front, ``zhixing.api``, apart: drivers)."""
    edges: dict[str, set[str]] = {}
    for path in sources():
        parts = path.relative_to(ROOT).parts
        unit = "engine.cli" if parts[:2] == ("engine", "cli") else parts[0]
        if parts[:1] == ("zhixing",) and parts[1] in LIBRARY:
            unit = "zhixing.api"
        edges.setdefault(unit, set()).update(imported_packages(path) - {parts[0]})
    return edges


@pytest.mark.slow
def test_only_the_composition_root_builds_and_wires_an_engine() -> None:
    found = [v for path in sources() for v in violations(path)]
    assert found == []


def test_the_scan_finds_what_it_forbids(tmp_path: Path) -> None:
    """The rule is not vacuous: each forbidden shape is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "oms = OrderManager(clock=c)\noms.checks.insert(0, f)\noms.before_commit.append(h)\noms.gate = g\n",
        encoding="utf-8",
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(violations(bad)) == 4
    finally:
        ROOT = saved


@pytest.mark.slow
def test_the_import_map_has_no_edge_around_the_root() -> None:
    edges = import_map()
    assert edges["engine"] == set()  # the core imports nothing from the outside packages
    assert edges["algos"] <= {"engine"}
    assert edges["adapters"] <= {"engine"}
    # replays build through the root; the terminal emulator speaks the file-order route's format
    assert edges["replay"] <= {"engine", "algos", "adapters", "zhixing"}
    assert edges["zhixing"] <= {"engine", "algos"}  # the root: the core and the algorithms
    # the library for scripts drives the root as the CLI does: live sessions, replays
    assert edges["zhixing.api"] <= {"engine", "algos", "replay", "zhixing"}


def test_every_import_uses_the_one_zhixing_name() -> None:
    """``engine``, ``algos``, ``adapters``, ``replay`` are folders of the repository, ``zhixing.*`` when
    imported: a bare ``import engine`` would load a second copy of every module (two ``OrderManager``
    classes, two clocks) from a checkout and fail outright when installed."""
    scanned = [
        *sources(),
        *sorted((ROOT / "tests").rglob("*.py")),
        *sorted((ROOT / "benchmarks").rglob("*.py")),
    ]
    scanned += sorted((ROOT / "examples").rglob("*.py"))
    bare = [
        f"{path.relative_to(ROOT)}:{line}: import {module}"
        for path in scanned
        for line, module in imported_modules(path)
        if module.split(".")[0] in PACKAGES and module.split(".")[0] != "zhixing"
    ]
    assert bare == []
