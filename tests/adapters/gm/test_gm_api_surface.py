"""The gm route against the real ``gm==3.0.192`` sources (parsed, not imported: ``gm.api`` needs a native
SDK and pins pandas<2 on Python 3.11).

Checks: every ``gm.api`` function the adapter and feed call exists, is exported by ``gm.api`` and takes the
keyword arguments we pass; the fake has the same parameter names, order and defaults; every code in
``adapters.gm.codes`` equals the constant of that name in ``gm/enum.py``; the callbacks ``adapters.gm.entry``
defines are the names gm's ``run`` looks up; every payload field we read exists in gm's protobuf messages.

The wheel is found with ``importlib.util.find_spec('gm')``; install it without its pins with
``pip install --no-deps gm==3.0.192``. Without it these tests skip (and say so).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gm_fake import FakeGmApi, instrument, tick
from zhixing.adapters.gm import entry
from zhixing.adapters.gm.codes import GM_ENUM_NAMES, installed_enum_mismatches


def _gm_root() -> Path | None:
    try:
        spec = importlib.util.find_spec("gm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location)
        if (root / "api" / "trade.py").is_file() and (root / "enum.py").is_file():
            return root
    return None


GM = _gm_root()
pytestmark = pytest.mark.skipif(
    GM is None, reason="gm wheel not installed (pip install --no-deps gm==3.0.192)"
)

# function -> keyword arguments the route, the feed or the runner pass (adapters/gm/*.py)
USED: dict[str, set[str]] = {
    "order_volume": {
        "symbol",
        "volume",
        "side",
        "order_type",
        "position_effect",
        "price",
        "order_duration",
        "order_qualifier",
        "account",
    },
    "order_cancel": {"wait_cancel_orders"},
    "get_orders": set(),
    "get_unfinished_orders": set(),
    "get_execution_reports": set(),
    "get_cash": {"account_id"},
    "get_position": {"account_id"},
    "set_token": {"token"},
    "set_serv_addr": {"addr"},
    "subscribe": {"symbols", "frequency", "unsubscribe_previous"},
    "unsubscribe": {"symbols", "frequency"},
    "current": {"symbols"},
    "get_instruments": {"symbols", "skip_suspended", "skip_st", "df"},
    "run": {"strategy_id", "filename", "mode", "token", "serv_addr"},  # adapters/gm/runner.py
    "stop": set(),
}


def _root() -> Path:
    assert GM is not None
    return GM


def _enum_values() -> dict[str, int]:
    tree = ast.parse((_root() / "enum.py").read_text(encoding="utf-8"))
    values: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = ast.literal_eval(node.value)
            if isinstance(value, int):
                values[node.targets[0].id] = value
    return values


def _real_functions() -> dict[str, ast.FunctionDef]:
    functions: dict[str, ast.FunctionDef] = {}
    for path in sorted((_root() / "api").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                functions.setdefault(node.name, node)
    return functions


def _exported() -> set[str]:
    tree = ast.parse((_root() / "api" / "__init__.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 1:
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _default(node: ast.expr, enums: dict[str, int]) -> Any:
    if isinstance(node, ast.Name):
        return enums[node.id]
    return ast.literal_eval(node)


def _params(fn: ast.FunctionDef, enums: dict[str, int]) -> list[tuple[str, Any]]:
    args = fn.args.args
    defaults: list[Any] = [inspect.Parameter.empty] * (len(args) - len(fn.args.defaults))
    defaults += [_default(d, enums) for d in fn.args.defaults]
    return [(a.arg, d) for a, d in zip(args, defaults, strict=True)]


def test_every_function_we_call_exists_is_exported_and_takes_our_keywords() -> None:
    real, exported = _real_functions(), _exported()
    for name, keywords in USED.items():
        assert name in real, f"gm.api has no function {name}"
        assert name in exported, f"gm.api does not export {name}"
        params = {a.arg for a in real[name].args.args}
        assert keywords <= params, f"{name}: gm takes {sorted(params)}, we pass {sorted(keywords)}"


def test_fake_has_the_real_parameter_names_order_and_defaults() -> None:
    real, enums = _real_functions(), _enum_values()
    fake = FakeGmApi()
    for name in USED:
        signature = inspect.signature(getattr(fake, name))
        mine = [(p.name, p.default) for p in signature.parameters.values()]
        assert mine == _params(real[name], enums), f"fake {name} differs from gm.api.{name}"


def test_codes_equal_the_constants_in_gm_enum() -> None:
    enums = _enum_values()
    for name, value in GM_ENUM_NAMES.items():
        assert enums.get(name) == value, f"{name}: gm/enum.py says {enums.get(name)}, we say {value}"


def test_entry_callbacks_are_the_names_gm_run_looks_up() -> None:
    source = (_root() / "api" / "basic.py").read_text(encoding="utf-8")
    looked_up = {
        node.args[1].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    }
    mine = {n for n, f in vars(entry).items() if inspect.isfunction(f) and f.__module__ == entry.__name__}
    assert mine - {"init"} <= looked_up, sorted(mine - looked_up)
    assert "init" in looked_up or "init_fun" in source


def _message_fields(pyi: str, message: str) -> set[str]:
    tree = ast.parse((_root() / "pb" / pyi).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == message:
            fields = {
                b.target.id
                for b in node.body
                if isinstance(b, ast.AnnAssign) and isinstance(b.target, ast.Name)
            }
            fields |= {b.name for b in node.body if isinstance(b, ast.FunctionDef) and b.name != "__init__"}
            return {f for f in fields if not f.isupper()}
    raise AssertionError(f"{pyi} has no message {message}")


# fields the adapter reads from each payload, and the message gm builds the payload from
READ = {
    ("account_pb2.pyi", "Order"): {
        "account_id", "cl_ord_id", "symbol", "side", "status", "ord_rej_reason", "ord_rej_reason_detail",
        "price", "volume", "filled_volume", "created_at", "updated_at",
    },
    ("account_pb2.pyi", "ExecRpt"): {
        "account_id", "cl_ord_id", "exec_id", "symbol", "side", "exec_type", "ord_rej_reason",
        "ord_rej_reason_detail", "price", "volume", "commission", "created_at",
    },
    ("account_pb2.pyi", "Cash"): {"balance", "available", "market_value", "nav"},
    ("account_pb2.pyi", "Position"): {"symbol", "volume", "available_now", "vwap"},
    ("data_pb2.pyi", "Tick"): {"symbol", "price", "quotes", "cum_volume", "cum_amount", "created_at"},
    ("data_pb2.pyi", "Quote"): {"bid_p", "bid_v", "ask_p", "ask_v"},
}  # fmt: skip


def test_fields_we_read_exist_in_gm_messages() -> None:
    for (pyi, message), fields in READ.items():
        real = _message_fields(pyi, message)
        assert fields <= real, f"{message} lacks {sorted(fields - real)}"
    instrument_fields = _message_fields("data_pb2.pyi", "Instrument") | _message_fields(
        "data_pb2.pyi", "InstrumentInfo"
    )  # get_instruments unfolds ``info`` into the row
    assert {
        "symbol",
        "sec_name",
        "price_tick",
        "pre_close",
        "upper_limit",
        "lower_limit",
        "is_suspended",
    } <= (instrument_fields)


def test_fake_payloads_use_only_real_field_names() -> None:
    api = FakeGmApi()
    (order,) = api.order_volume("SHSE.600000", 100, 1, 1, 1, price=10.0)
    extras = {"origin_module", "origin_product"}  # added by gm.api.trade after protobuf_to_dict
    assert set(order) - extras <= _message_fields("account_pb2.pyi", "Order")
    assert set(api.execrpts[0]) <= _message_fields("account_pb2.pyi", "ExecRpt")
    assert set(api.cash) <= _message_fields("account_pb2.pyi", "Cash")
    the_tick = tick("SHSE.600000", 10.0, 9.99, 10.01)
    assert set(the_tick) <= _message_fields("data_pb2.pyi", "Tick")
    row = instrument("SHSE.600000", 10.0, upper=11.0, lower=9.0)
    allowed = _message_fields("data_pb2.pyi", "Instrument") | _message_fields(
        "data_pb2.pyi", "InstrumentInfo"
    )
    assert set(row) - {"trade_date"} <= allowed  # created_at is renamed trade_date by get_instruments


def test_installed_gm_enum_agrees_at_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    assert installed_enum_mismatches() == []  # the real gm.enum, imported
    renumbered = types.ModuleType("gm.enum")
    for name, value in GM_ENUM_NAMES.items():
        setattr(renumbered, name, value)
    renumbered.ExecType_Trade = 16  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gm.enum", renumbered)
    assert installed_enum_mismatches() == ["gm.enum.ExecType_Trade is 16, zhixing expects 15"]
