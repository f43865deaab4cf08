"""The QMT route and feed call only what the real xtquant package has, with its parameter names, and
the fake matches the real signatures. The real sources are parsed with ``ast`` (their ``.pyd`` are
Windows-only, so ``xttrader`` and ``xtdata`` cannot be imported here); constants come from the real
``xtconstant`` module."""

from __future__ import annotations

import ast
import inspect
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import tests.qmt_fake as fake
from zhixing.adapters.qmt import codes as qmt_codes
from zhixing.adapters.qmt import trader as qmt_trader
from zhixing.adapters.qmt.codes import (
    XtCodes,
    constants_from_source,
    load_codes,
    load_xtconstant,
    xtquant_dir,
)

WHEEL_DIRS = (Path("/tmp/dlq"),)


@cache
def real_source(name: str) -> str:
    """``xtquant/<name>`` from the installed package, else from a downloaded wheel; skip if neither."""
    folder = xtquant_dir()
    if folder is not None and (folder / name).exists():
        return (folder / name).read_text(encoding="utf-8")
    for wheels in WHEEL_DIRS:
        for wheel in sorted(wheels.glob("xtquant-*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                return archive.read(f"xtquant/{name}").decode("utf-8")
    pytest.skip("xtquant is neither installed nor downloaded")


def _params(fn: ast.FunctionDef) -> list[str]:
    args = fn.args
    names = [a.arg for a in [*args.posonlyargs, *args.args]]
    return names[1:] if names and names[0] == "self" else names


def real_methods(module: str, cls: str) -> dict[str, list[str]]:
    tree = ast.parse(real_source(module))
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    return {f.name: _params(f) for f in node.body if isinstance(f, ast.FunctionDef)}


def real_functions(module: str) -> dict[str, list[str]]:
    tree = ast.parse(real_source(module))
    return {f.name: _params(f) for f in tree.body if isinstance(f, ast.FunctionDef)}


def real_attributes(cls: str) -> set[str]:
    """Attributes the real ``xttype`` record's ``__init__`` assigns (``self.x = ...``)."""
    tree = ast.parse(real_source("xttype.py"))
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    (init,) = [f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]
    return {
        t.attr
        for stmt in ast.walk(init)
        if isinstance(stmt, ast.Assign)
        for t in stmt.targets
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }


def fake_params(fn: Callable[..., Any]) -> list[str]:
    """Positional-or-keyword parameter names (keyword-only test hooks of the fake are not part of it)."""
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


# what the route calls on the trader object, with the keyword names it relies on
TRADER_CALLS: dict[str, list[str]] = {
    "__init__": [],
    "register_callback": [],
    "start": [],
    "stop": [],
    "connect": [],
    "subscribe": [],
    "order_stock_async": [],  # called positionally in the documented order
    "cancel_order_stock_async": [],
    "query_stock_asset": [],
    "query_stock_positions": [],
    "query_stock_orders": [],
    "query_stock_trades": [],
}
# what the feed calls in xtdata, with the keyword names it passes
XTDATA_CALLS = {
    "connect": ["ip", "port"],
    "subscribe_quote": ["period", "count", "callback"],
    "subscribe_whole_quote": ["callback"],
    "unsubscribe_quote": [],
    "get_full_tick": [],
    "get_instrument_detail": [],
}
# record attributes the route reads
RECORD_FIELDS = {
    "XtAsset": {"cash", "frozen_cash", "total_asset", "market_value"},
    "XtPosition": {"stock_code", "volume", "can_use_volume", "avg_price"},
    "XtOrder": {
        "order_id",
        "order_remark",
        "stock_code",
        "order_type",
        "order_status",
        "status_msg",
        "order_time",
        "price",
        "order_volume",
        "traded_volume",
    },
    "XtTrade": {
        "traded_id",
        "traded_time",
        "traded_price",
        "traded_volume",
        "commission",
        "order_id",
        "order_remark",
        "stock_code",
        "order_type",
    },
    "XtOrderError": {"order_id", "error_id", "error_msg", "order_remark"},
    "XtCancelError": {"order_id", "error_id", "error_msg"},
    "XtOrderResponse": {"order_id", "seq", "error_msg"},
    "XtCancelOrderResponse": {"order_id", "seq", "cancel_result", "error_msg"},
    "XtAccountStatus": {"status"},
}


def test_every_trader_method_the_route_calls_exists_with_the_real_parameters() -> None:
    real = real_methods("xttrader.py", "XtQuantTrader")
    for name in TRADER_CALLS:
        assert name in real, f"XtQuantTrader.{name} is not in the real xttrader.py"
        assert fake_params(getattr(fake.XtQuantTrader, name)) == real[name], name
    assert real["order_stock_async"] == [
        "account",
        "stock_code",
        "order_type",
        "order_volume",
        "price_type",
        "price",
        "strategy_name",
        "order_remark",
    ]
    assert real["cancel_order_stock_async"] == ["account", "order_id"]
    assert real["__init__"] == ["path", "session", "callback"]


def test_route_calls_only_methods_listed_above() -> None:
    source = inspect.getsource(qmt_trader)
    used = {  # every attribute read on a trader object: calls and methods handed to the executor
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "trader"
    }
    queried = {"query_stock_asset", "query_stock_positions", "query_stock_orders", "query_stock_trades"}
    assert used <= set(TRADER_CALLS), used - set(TRADER_CALLS)
    assert {"register_callback", "start", "stop", "connect", "subscribe", "order_stock_async"} <= used
    assert queried <= set(TRADER_CALLS)
    for method in queried:  # called through _query(getattr(trader, method)(account))
        assert f'"{method}"' in source


def test_the_callback_answers_every_push_the_real_trader_makes() -> None:
    real = real_methods("xttrader.py", "XtQuantTraderCallback")
    ours = {
        name: fake_params(fn)
        for name, fn in inspect.getmembers(qmt_trader._Callback, inspect.isfunction)
        if name.startswith("on_")
    }
    fakes = {
        name: fake_params(fn)
        for name, fn in inspect.getmembers(fake.XtQuantTraderCallback, inspect.isfunction)
        if name.startswith("on_")
    }
    stock_pushes = {
        n for n in real if not n.startswith(("on_smt", "on_bank", "on_ctp", "on_smart", "on_operate"))
    }
    assert set(ours) == stock_pushes
    for name, params in ours.items():
        assert real[name] == params, name
        assert fakes[name] == params, name


@pytest.mark.parametrize("record", sorted(RECORD_FIELDS))
def test_records_have_the_fields_the_route_reads_and_the_fake_mirrors_them(record: str) -> None:
    real_fields = real_attributes(record)
    assert RECORD_FIELDS[record] <= real_fields, RECORD_FIELDS[record] - real_fields
    real_init = real_methods("xttype.py", record)["__init__"]
    assert fake_params(getattr(fake, record).__init__) == real_init
    assert set(vars(_instance(getattr(fake, record), real_init))) == real_fields


def _instance(cls: type, params: list[str]) -> Any:
    return cls(*[0] * len(params))


def test_stock_account_signature_matches() -> None:
    assert fake_params(fake.StockAccount.__init__) == real_methods("xttype.py", "StockAccount")["__init__"]


def test_every_xtdata_function_the_feed_calls_exists_with_the_keywords_it_passes() -> None:
    real = real_functions("xtdata.py")
    for name, keywords in XTDATA_CALLS.items():
        assert name in real, f"xtdata.{name} is not in the real xtdata.py"
        assert set(keywords) <= set(real[name]), (name, keywords, real[name])
        assert fake_params(getattr(fake.FakeXtData, name)) == real[name], name


def test_the_fields_the_feed_reads_are_named_in_the_real_xtdata() -> None:
    source = real_source("xtdata.py")
    for field in (
        "PreClose",
        "UpStopPrice",
        "DownStopPrice",
        "PriceTick",
        "InstrumentStatus",
        "InstrumentName",
    ):
        assert f"'{field}'" in source, field
    for key in (
        "lastPrice",
        "bidPrice",
        "askPrice",
        "bidVol",
        "askVol",
        "volume",
        "pvolume",
        "amount",
        "time",
    ):
        assert f"'{key}'" in source, key
    assert "'lastClose'" in source


def test_codes_come_from_the_real_xtconstant_and_agree_with_its_source() -> None:
    module = load_xtconstant()
    assert getattr(module, "__name__", "") == "xtquant.xtconstant"  # imported, not parsed, on this machine
    parsed = XtCodes.from_module(constants_from_source(Path(module.__file__)))
    assert load_codes() == parsed
    assert (parsed.ORDER_UNREPORTED, parsed.ORDER_JUNK, parsed.ORDER_UNKNOWN) == (48, 57, 255)
    assert (parsed.STOCK_BUY, parsed.STOCK_SELL, parsed.FIX_PRICE) == (23, 24, 11)
    assert fake.XC is module


def test_status_and_return_codes_are_mapped_faithfully() -> None:
    from zhixing.engine.enums import OrderStatus as S

    c = load_codes()
    A = qmt_codes.StatusAction
    expected = {
        48: (A.NONE, S.SUBMITTED),
        49: (A.NONE, S.SUBMITTED),
        50: (A.ACCEPT, S.ACCEPTED),
        51: (A.ACCEPT, S.PENDING_CANCEL),
        52: (A.ACCEPT, S.PENDING_CANCEL),
        53: (A.CANCEL, S.CANCELED),
        54: (A.CANCEL, S.CANCELED),
        55: (A.ACCEPT, S.PARTIALLY_FILLED),
        56: (A.ACCEPT, S.FILLED),
        57: (A.REJECT, S.REJECTED),
        255: (A.UNKNOWN, S.SUBMITTED),
    }
    for code, (action, status) in expected.items():
        assert c.action_of(code) is action, code
        assert c.engine_status(code, traded_volume=0) is status, code
    assert c.engine_status(50, traded_volume=100) is S.PARTIALLY_FILLED
    out = qmt_codes.SendOutcome
    assert [qmt_codes.send_outcome(v) for v in (1, 12345, -1, -2, 0, None, "x")] == [
        out.SENT,
        out.SENT,
        out.FAILED,
        out.UNKNOWN,
        out.UNKNOWN,
        out.UNKNOWN,
        out.UNKNOWN,
    ]
