"""No direct clock read may creep back into the packages: every time the engine acts on comes from the
injected ``Clock`` (``engine/clock.py``). The scan walks the syntax tree of every module of ``engine``,
``algos``, ``adapters`` and ``replay`` and flags the ways Python reads a clock: the ``time`` module's
clocks (``time.time()``, ``time.monotonic()``, ``perf_counter``, ``clock_gettime``, ``localtime()`` ...,
imported by any name), ``datetime.now()`` / ``utcnow()`` / ``today()`` and ``date.today()``, pandas'
``Timestamp.now()``, numpy's ``datetime64("now")``, ``email.utils.formatdate()`` without a time, a
logging time stamper, an event loop's ``time()``, and ``system_ns()`` (the host's stepping wall clock)
outside the step watch and ``host_wall_ns``. A few reads are allowed, each for a reason written here."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "algos", "adapters", "replay")

_TIME_OK = frozenset({"sleep", "struct_time"})  # a duration to block for, a type: no clock read
_DATETIME_NOW = frozenset({"now", "utcnow", "today"})
_LOOP_GETTERS = frozenset({"get_running_loop", "get_event_loop", "_running_loop"})

ALLOWED: dict[str, set[str]] = {
    # the clock module itself: the one place that reads the host's clocks
    "engine/clock.py": {"*"},
    # the chaos CLI measures how long a recovery took in wall time, for the printed figure only; the
    # suite's outcome never depends on it (replay/chaos.py: WallTimer)
    "engine/cli/chaos_cmd.py": {"time.perf_counter_ns"},
    # log lines carry the host's wall clock, as the operator's other logs do (a step shows there, which is
    # how it is matched with the time service's own log); nothing is decided from them
    "engine/logs.py": {"TimeStamper"},
    # the step watch compares the host's wall clock with the engine's: its whole job
    "engine/clock_watch.py": {"system_ns"},
    # the replay's engine view anchors the chaos suite's stepped host wall clock as a LiveClock does, and
    # the suite's clock watch compares the two (the clock_step fault)
    "replay/recovery.py": {"system_ns"},
    "replay/chaos.py": {"system_ns"},
}


@dataclass(frozen=True, slots=True)
class ClockRead:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    return "?"


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.found: list[ClockRead] = []
        self.time_modules: set[str] = set()  # names bound to the time module
        self.datetime_names: set[str] = {"datetime", "date"}  # classes (or the module) named so

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append(ClockRead(self.path, getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "time":
                self.time_modules.add(alias.asname or "time")
            if alias.name == "datetime":
                self.datetime_names.add(alias.asname or "datetime")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "time":
            for alias in node.names:
                if alias.name not in _TIME_OK:
                    self.flag(node, f"time.{alias.name}")
        if node.module == "datetime":
            for alias in node.names:
                if alias.name in ("datetime", "date"):
                    self.datetime_names.add(alias.asname or alias.name)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = node.value
        # a clock id (``CLOCK_BOOTTIME``) names a clock; reading it is a call, flagged by its name
        if (
            isinstance(base, ast.Name)
            and base.id in self.time_modules
            and node.attr not in _TIME_OK
            and not node.attr.startswith("CLOCK_")
        ):
            self.flag(node, f"time.{node.attr}")
        if node.attr == "TimeStamper":
            self.flag(node, "TimeStamper")
        if node.attr == "system_ns":  # called here or handed on as a source: the same read
            self.flag(node, "system_ns")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = func.value
            name = _dotted(receiver)
            last = name.rsplit(".", 1)[-1]
            if func.attr in _DATETIME_NOW and (last in self.datetime_names or last == "Timestamp"):
                self.flag(node, f"{name}.{func.attr}()")
            if func.attr == "time" and not node.args and _is_loop(receiver):
                self.flag(node, f"{name}.time()")
        callee = _dotted(func).rsplit(".", 1)[-1]
        if callee == "formatdate" and not node.args and not any(k.arg == "timeval" for k in node.keywords):
            self.flag(node, "formatdate()")
        if callee == "datetime64" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value in ("now", "today"):
                self.flag(node, f"datetime64({first.value!r})")
        self.generic_visit(node)


def _is_loop(receiver: ast.expr) -> bool:
    if isinstance(receiver, ast.Name):
        return "loop" in receiver.id.lower()
    if isinstance(receiver, ast.Attribute):
        return "loop" in receiver.attr.lower()
    if isinstance(receiver, ast.Call):
        return _dotted(receiver.func).rsplit(".", 1)[-1] in _LOOP_GETTERS
    return False


def scan_source(source: str, path: str) -> list[ClockRead]:
    scanner = _Scanner(path)
    scanner.visit(ast.parse(source, filename=path))
    return scanner.found


def scan_tree(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[ClockRead]:
    found: list[ClockRead] = []
    for package in packages:
        for file in sorted((root / package).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            found += scan_source(file.read_text(encoding="utf-8"), rel)
    return found


def _allowed(read: ClockRead) -> bool:
    allowed = ALLOWED.get(read.path, set())
    return "*" in allowed or read.what in allowed


@pytest.mark.slow
def test_no_module_reads_a_clock_except_through_the_injected_clock() -> None:
    found = [read for read in scan_tree(ROOT) if not _allowed(read)]
    assert not found, "direct clock reads (use the injected Clock):\n" + "\n".join(map(str, found))


@pytest.mark.slow
def test_every_allowance_is_still_needed() -> None:
    """An allowance nothing uses any more is removed, so it cannot cover a new read later."""
    used = {(read.path, read.what) for read in scan_tree(ROOT) if _allowed(read)}
    for path, whats in ALLOWED.items():
        for what in whats - {"*"}:
            assert (path, what) in used, f"{path}: allowance {what!r} is unused"


PLANTED = [
    ("import time\nx = time.time()\n", "time.time"),
    ("import time\nx = time.time_ns()\n", "time.time_ns"),
    ("import time as t\nx = t.monotonic()\n", "time.monotonic"),
    ("import time\nx = time.perf_counter()\n", "time.perf_counter"),
    ("import time\nx = time.clock_gettime_ns(time.CLOCK_REALTIME)\n", "time.clock_gettime_ns"),
    ("import time\nx = time.localtime()\n", "time.localtime"),
    ("import time\nf = time.monotonic_ns\n", "time.monotonic_ns"),  # passed on, read later
    ("from time import monotonic\n", "time.monotonic"),
    ("from time import time as now\n", "time.time"),
    ("from datetime import datetime\nx = datetime.now()\n", "datetime.now()"),
    ("from datetime import datetime as dt\nx = dt.utcnow()\n", "dt.utcnow()"),
    ("import datetime\nx = datetime.datetime.now(datetime.UTC)\n", "datetime.datetime.now()"),
    ("from datetime import date\nx = date.today()\n", "date.today()"),
    ("import pandas as pd\nx = pd.Timestamp.now()\n", "pd.Timestamp.now()"),
    ('import numpy as np\nx = np.datetime64("now")\n', "datetime64('now')"),
    ("from email.utils import formatdate\nx = formatdate()\n", "formatdate()"),
    ("import asyncio\nx = asyncio.get_running_loop().time()\n", "asyncio.get_running_loop().time()"),
    ("def f(loop):\n    return loop.time()\n", "loop.time()"),
    ("class A:\n    def f(self):\n        return self._loop.time()\n", "self._loop.time()"),
    ("import structlog\np = structlog.processors.TimeStamper(fmt='iso')\n", "TimeStamper"),
    ("def f(clock):\n    return clock.system_ns()\n", "system_ns"),
    ("def f(clock, watch):\n    return watch(clock.system_ns)\n", "system_ns"),
]


@pytest.mark.parametrize(("source", "what"), PLANTED, ids=[w for _, w in PLANTED])
def test_the_scan_finds_each_way_of_reading_a_clock(source: str, what: str) -> None:
    assert [r.what for r in scan_source(source, "engine/planted.py")] == [what]


def test_the_scan_leaves_what_reads_no_clock_alone() -> None:
    harmless = (
        "import time\n"
        "import asyncio\n"
        "from datetime import datetime, timedelta\n"
        "from email.utils import formatdate\n"
        "time.sleep(0.05)\n"  # a duration, not a reading
        "midnight = datetime.combine(datetime.min.date(), datetime.min.time())\n"  # a datetime's time part
        "stamp = formatdate(1.0e9, localtime=False)\n"  # formats a given time
        "async def f(clock):\n"
        "    await asyncio.sleep(1)\n"
        "    return clock.now_ns() + timedelta(seconds=1).seconds\n"
    )
    assert scan_source(harmless, "engine/harmless.py") == []


def test_a_planted_read_in_a_package_file_fails_the_tree_scan(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "clock.py").write_text("import time\nx = time.time()\n", encoding="utf-8")
    (tmp_path / "engine" / "oms.py").write_text("import time\nx = time.monotonic()\n", encoding="utf-8")
    found = [r for r in scan_tree(tmp_path, ("engine",)) if not _allowed(r)]
    assert [str(r) for r in found] == ["engine/oms.py:2: time.monotonic"]
