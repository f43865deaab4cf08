"""Every refusal in algos/ is a ``ParameterError`` (also a ``ValueError``) naming the parameter and value.

What must hold: no ``raise ValueError(`` is left in the package; a bad algorithm parameter, a bad parent
and a damaged saved state each raise a ``ParameterError`` whose ``name`` and ``value`` say which and
what, with the message people have always read.
"""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest

from tests.fakes import World, calendar, make_world
from zhixing.algos.base import AlgoContext
from zhixing.algos.registry import ALGOS, create_algo
from zhixing.algos.saved_state import state_index, state_int, state_ints
from zhixing.algos.schedule import split_quantity
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.enums import Side
from zhixing.engine.errors import ParameterError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder

ALGOS_DIR = Path(__file__).resolve().parents[2] / "algos"
DAY = date(2021, 12, 1)


def parent(quantity: int = 1_000, algo: str = "twap", **params: str) -> ParentOrder:
    return ParentOrder(
        parent_id="P1",
        symbol="600000.SH",
        side=Side.BUY,
        quantity=quantity,
        start_ns=shanghai_ns(DAY, "10:00"),
        end_ns=shanghai_ns(DAY, "10:05"),
        algo=algo,
        params=params,
    )


def context(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


def test_no_bare_value_error_is_raised_in_algos() -> None:
    raised = []
    for path in sorted(ALGOS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id == "ValueError":
                    raised.append(f"{path.name}:{node.lineno}")
    assert raised == []


@pytest.mark.parametrize(
    ("algo", "params", "name", "value"),
    [
        ("twap", {"interval_s": "0"}, "interval_s", 0),
        ("twap", {"interval_s": "soon"}, "interval_s", "soon"),
        ("twap", {"interval": "60"}, "interval", "60"),
        ("twap", {"end_policy": "keep"}, "end_policy", "keep"),
        ("twap", {"closing_auction": "2"}, "closing_auction", 2.0),
        ("vwap", {"interval_s": "0", "profile": "u_shape"}, "interval_s", 0),
        ("vwap", {}, "profile", ""),
        ("pov", {"target_rate": "0.3"}, "max_rate", 0.25),
        ("iceberg", {"display_qty": "0"}, "display_qty", 0),
        ("chase", {"reprice_s": "0"}, "reprice_s", 0),
    ],
)
async def test_a_bad_parameter_is_a_parameter_error_naming_it(
    algo: str, params: dict[str, str], name: str, value: object
) -> None:
    world = await make_world(shanghai_ns(DAY, "09:59"))
    with pytest.raises(ParameterError) as raised:
        create_algo(parent(algo=algo, **params), context(world))
    assert isinstance(raised.value, ValueError)
    assert raised.value.name == name
    assert raised.value.value == value
    assert f"{algo} parameter {name!r}" in str(raised.value)


async def test_an_unknown_algo_and_a_bad_quantity_name_the_parameter() -> None:
    world = await make_world(shanghai_ns(DAY, "09:59"))
    with pytest.raises(ParameterError) as raised:
        create_algo(parent(algo="sniper"), context(world))
    assert (raised.value.name, raised.value.value) == ("algo", "sniper")
    with pytest.raises(ParameterError) as raised:
        TwapAlgo(parent(quantity=0), context(world))
    assert (raised.value.name, raised.value.value) == ("quantity", 0)


def test_a_damaged_saved_state_names_the_key_and_value() -> None:
    with pytest.raises(ParameterError) as raised:
        state_int({"next_slice": "3"}, "next_slice")
    assert (raised.value.name, raised.value.value) == ("next_slice", "3")
    with pytest.raises(ParameterError) as raised:
        state_ints({"slice_times": [1, True]}, "slice_times")
    assert (raised.value.name, raised.value.value) == ("slice_times", [1, True])
    with pytest.raises(ParameterError) as raised:
        state_index({"next_slice": 5}, "next_slice", 4)
    assert (raised.value.name, raised.value.value) == ("next_slice", 5)


async def test_a_restored_state_of_another_version_names_it() -> None:
    world = await make_world(shanghai_ns(DAY, "09:59"))
    algo = TwapAlgo(parent(), context(world))
    with pytest.raises(ParameterError) as raised:
        algo.restore({**algo.state(), "version": 99})
    assert (raised.value.name, raised.value.value) == ("version", 99)


def test_the_slicing_maths_names_its_argument() -> None:
    with pytest.raises(ParameterError) as raised:
        split_quantity(100, 0, 100)
    assert (raised.value.name, raised.value.value) == ("n_slices", 0)


@pytest.mark.parametrize(
    ("algo", "raw"),
    [
        ("twap", {"interval_s": "99999999999999999999"}),
        ("twap", {"offset_ticks": -(10**12)}),
        ("pov", {"target_rate": "inf"}),
        ("pov", {"max_rate": float("nan")}),
        ("iceberg", {"display_qty": 10**15}),
    ],
)
def test_a_number_no_algorithm_can_use_is_a_parameter_error_naming_it(
    algo: str, raw: dict[str, object]
) -> None:
    """Huge or non-finite numbers would overflow int64 as ns or milli-yuan later (a journal write, a timer):
    refused where they are read, naming the parameter."""
    (name,) = raw
    with pytest.raises(ParameterError, match=f"'{name}': must be a finite number") as caught:
        ALGOS[algo].params_type.parse(raw, algo=algo)
    assert caught.value.name == name
