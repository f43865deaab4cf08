"""The error tree (``engine/errors.py``) is the only way zhixing refuses input on purpose.

- A scan of the source: no ``raise ValueError`` anywhere (a bad argument is a ``ParameterError``, which is
  also a ``ValueError``; a bad file an ``InputError``; a bad setting a ``ConfigError``), and ``raise
  TypeError`` only at the few sites listed here, each a Python type contract broken by our own code (a
  bug, which the command line reports as one), never input.
- The errors say what is wrong: each one built here by the code that raises it names the file, row,
  field, key, parameter or value.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.format import MAX_LINE, Row, parse_int, parse_money, parse_ts, split_line
from zhixing.adapters.fileorder.reader import exec_row, status_row
from zhixing.adapters.fileorder.tail import TailFile
from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger
from zhixing.adapters.notify.email import SmtpNotifier
from zhixing.adapters.notify.factory import notifier_from_settings
from zhixing.adapters.notify.webhook import WeComNotifier
from zhixing.engine import errors
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import CalendarError, ConfigError, InputError, ParameterError, ZhixingError
from zhixing.engine.market import TradingCalendar
from zhixing.engine.secrets import Secret
from zhixing.replay.faults import FaultPlan

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("ValueError", "TypeError")

# (file, function, exception): why a TypeError is right there. Every entry must still match a raise.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("engine/secrets.py", "Secret.__init__", "TypeError"): "a Secret built from a non-str by our own code",
    (
        "engine/secrets.py",
        "Secret.__reduce__",
        "TypeError",
    ): "pickle's own contract for an unpicklable object",
    ("engine/cli/session.py", "_int", "TypeError"): "narrows a STRICT INTEGER journal column for mypy",
    ("engine/store/staging.py", "parent_row", "TypeError"): "the engine's own parent dict, wrong Python type",
    ("engine/store/state_store.py", "StateStore.stage_algo_plan", "TypeError"): "plan_version from our code",
    ("engine/store/state_store.py", "StateStore.stage_algo_progress", "TypeError"): "the same, progress",
    ("engine/store/state_store.py", "StateStore.stage_position", "TypeError"): "the account's own ints",
    (
        "algos/params.py",
        "_convert_type",
        "TypeError",
    ): "an algorithm declares a parameter of a type it cannot parse",
}


def _raises(path: Path) -> Iterator[tuple[str, str, int]]:
    """(enclosing ``Class.function``, exception name, line) of every ``raise ValueError/TypeError``."""

    def walk(node: ast.AST, scope: tuple[str, ...]) -> Iterator[tuple[str, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from walk(child, (*scope, child.name))
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                target = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                if isinstance(target, ast.Name) and target.id in FORBIDDEN:
                    yield ".".join(scope) or "<module>", target.id, child.lineno
            yield from walk(child, scope)

    yield from walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), ())


# Modules whose functions are pydantic validators: pydantic's contract is a ValueError, which it gathers into
# a ValidationError that engine.config.load_config turns into a ConfigError naming the file and the key.
VALIDATOR_MODULES: dict[str, str] = {
    "engine/config_model.py": "pydantic validators (ConfigError at the loader)"
}


def _scan(package: str) -> tuple[list[str], set[tuple[str, str, str]]]:
    """Violations (``file:line: raise X in function``) and the allowed sites seen, under ``package``."""
    violations: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for scope, name, line in _raises(path):
            if name == "ValueError" and rel in VALIDATOR_MODULES:
                continue
            if (rel, scope, name) in ALLOWED:
                seen.add((rel, scope, name))
            else:
                violations.append(f"{rel}:{line}: raise {name} in {scope}")
    return violations, seen


@pytest.mark.parametrize(
    "package",
    [
        "engine",
        "adapters",
        "replay",
        "zhixing",
        "algos",
    ],
)
def test_no_bare_value_or_type_error_is_raised_for_input(package: str) -> None:
    violations, _ = _scan(package)
    assert violations == [], "raise a ParameterError, InputError or ConfigError instead:\n" + "\n".join(
        violations
    )


def test_the_scan_sees_a_raise_and_every_allowed_site_still_exists(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "class A:\n"
        "    def f(self, x):\n"
        "        if x:\n"
        "            raise ValueError(x)\n"
        "        raise TypeError\n"
    )
    assert list(_raises(sample)) == [("A.f", "ValueError", 4), ("A.f", "TypeError", 5)]
    seen = set().union(
        *(_scan(package)[1] for package in ("engine", "adapters", "replay", "zhixing", "algos"))
    )
    assert seen == set(ALLOWED), "an allowed site is gone: remove it from ALLOWED"


def test_every_error_class_in_the_tree_module_is_in_its_documented_tree() -> None:
    tree = errors.__doc__ or ""
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, ZhixingError) and obj.__module__ == errors.__name__
    ]
    assert len(classes) >= 12
    assert [c.__name__ for c in classes if c.__name__ not in tree] == []
    assert [c.__name__ for c in classes if not c.__doc__] == []


def test_input_and_parameter_errors_name_where_and_what() -> None:
    error = InputError("not a number: 'x'", path="orders.csv", row=3, field="quantity")
    assert str(error) == "orders.csv, row 3, field 'quantity': not a number: 'x'"
    assert (error.path, error.row, error.field) == ("orders.csv", 3, "quantity")
    assert str(InputError("empty", field="exec_id")) == "field 'exec_id': empty"

    bad = ParameterError("must be > 0, got -1", name="interval_s", value=-1)
    assert str(bad) == "interval_s: must be > 0, got -1"
    assert (bad.name, bad.value) == ("interval_s", -1)
    assert isinstance(bad, ValueError)  # callers that catch ValueError for a bad argument keep working


def _row(**values: str) -> Row:
    return Row({name: i for i, name in enumerate(values)}, list(values.values()))


def _tail(tmp_path: Path) -> object:
    return TailFile(tmp_path / "execution_report.csv", chunk=1024, verify_budget=2048)


def _writer(tmp_path: Path) -> object:
    ledger = SidLedger(tmp_path / "ledger" / "sids.db")
    try:
        return OrderFileWriter(tmp_path / "in", ledger, SimClock(0), tag="acct-1")
    finally:
        ledger.close()


WEBHOOK_URL = "ftp://qyapi.example.com/cgi-bin/webhook/send?key=0123456789abcdef0123"
Case = tuple[Callable[[Path], object], type[ZhixingError], tuple[str, ...]]
CASES: dict[str, Case] = {
    # adapters/fileorder: a bad line or cell of the terminal's files (the reader adds file and line)
    "parse_int": (lambda _: parse_int("12.5"), InputError, ("whole number", "'12.5'")),
    "parse_money": (lambda _: parse_money("12,5"), InputError, ("not a number", "'12,5'")),
    "parse_ts": (lambda _: parse_ts("yesterday"), InputError, ("timestamp", "'yesterday'")),
    "split_line": (lambda _: split_line("x" * (MAX_LINE + 1)), InputError, (f"{MAX_LINE + 1:,} characters",)),
    "exec_row": (lambda _: exec_row(_row(exec_id="", order_business="1")), InputError, ("field 'exec_id'",)),
    "side": (
        lambda _: status_row(_row(symbol="SHSE.600000", order_business="7")),
        InputError,
        ("field 'order_business'", "7"),
    ),
    # adapters: a value handed to a constructor
    "tail": (_tail, ParameterError, ("verify_budget", "2048", "1024")),
    "writer": (_writer, ParameterError, ("tag", "'acct-1'")),
    "smtp_security": (
        lambda _: SmtpNotifier(
            "smtp.example.com", 465, None, None, "a@example.com", ["b@example.com"], "tls"
        ),  # type: ignore[arg-type]
        ParameterError,
        ("security", "'tls'"),
    ),
    "smtp_recipients": (
        lambda _: SmtpNotifier("smtp.example.com", 465, None, None, "a@example.com", []),
        ParameterError,
        ("recipients",),
    ),
    "webhook": (
        lambda _: WeComNotifier(Secret(WEBHOOK_URL), clock=SimClock(0)),
        ParameterError,
        ("url", "http(s)://host/", "wecom"),
    ),
    "notify_config": (
        lambda _: notifier_from_settings(
            "email",
            {"host": "smtp.example.com", "port": 0, "recipients": ["b@example.com"]},
            clock=SimClock(0),
        ),
        ConfigError,
        ("notify.email.port",),
    ),
    # replay: a fault plan's knob; engine: a day past the calendar
    "fault_plan": (lambda _: FaultPlan(seed=1, drop_ack=1.5), ParameterError, ("FaultPlan.drop_ack", "1.5")),
    "fault_ns": (lambda _: FaultPlan(seed=1, stale_ns=-5), ParameterError, ("FaultPlan.stale_ns", "-5")),
    "calendar": (
        lambda _: TradingCalendar().is_trading_day(date(2099, 1, 5)),
        CalendarError,
        ("2099-01-05", "zhixing calendar"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_error_names_what_is_wrong(tmp_path: Path, case: Case) -> None:
    build, kind, named = case
    with pytest.raises(kind) as caught:
        build(tmp_path)
    assert type(caught.value) is kind
    assert [text for text in named if text not in str(caught.value)] == []
    assert "0123456789abcdef0123" not in str(caught.value)  # a webhook key never goes into a message
