"""The installed distribution (issue 14): one top-level name, ``zhixing``, and every module under it.

The wheel is built offline from this checkout (``--no-build-isolation``: the test extra brings setuptools)
and unpacked into a folder that is the only place ``zhixing`` can come from; a fresh interpreter, started
outside the repository, imports it from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel, starts interpreters
ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("engine", "algos", "adapters", "replay")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    (built,) = out.glob("zhixing-*.whl")
    return built


def test_the_wheel_installs_only_the_zhixing_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"zhixing", wheel.name.split("-py")[0] + ".dist-info"}


def test_every_module_of_the_tree_is_in_the_wheel_under_zhixing(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"zhixing/{p.relative_to(ROOT / 'zhixing').as_posix()}" for p in (ROOT / "zhixing").rglob("*.py")
    }
    for folder in FOLDERS:
        expected |= {f"zhixing/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / folder).rglob("*.py")}
    assert expected - names == set()  # a package missing from pyproject's list would drop its modules
    assert any(n.startswith("zhixing/replay/sample_data/snapshots_20211201/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "zhixing = zhixing.engine.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_unpacked_wheel_imports_as_zhixing_and_not_as_engine(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import importlib.util, zhixing, zhixing.engine.oms, zhixing.replay\n"
        "from zhixing import build_engine, ParentOrder, Side, ZhixingError\n"
        "print(zhixing.__file__)\n"
        "print(zhixing.engine.oms.__file__)\n"
        "print([n for n in ('engine', 'algos', 'adapters', 'replay') if importlib.util.find_spec(n)])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    package, oms, generic = result.stdout.splitlines()
    assert Path(package).is_relative_to(site)
    assert Path(oms) == site / "zhixing" / "engine" / "oms.py"
    assert generic == "[]"  # no generic top-level package is importable from the installed distribution
    cli = subprocess.run(
        [sys.executable, "-m", "zhixing.engine.cli", "algos"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert "twap" in cli.stdout.lower()
