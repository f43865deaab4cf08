"""A script's commands on the engine side (engine.api_commands through EngineControl): payloads bounded
and refused with a recorded result, each command idempotent by its id (the order's ``api:<id>`` tag, the
parent ``api-<id>``), on the simulated exchange with real data."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from zhixing.algos.basket import Basket
from zhixing.engine.api_commands import MAX_ARG_CHARS, parse_order, parse_parent
from zhixing.engine.control import Command, install, queue_command
from zhixing.engine.enums import OrderStatus, OrderType, Side
from zhixing.engine.errors import InputError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.harness import ReplayConfig, open_session

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600258.SH"


def order_arg(**fields: object) -> str:
    base: dict[str, object] = {"symbol": SYMBOL, "side": "BUY", "quantity": 100, "price": "23.50"}
    return json.dumps({**base, **fields})


def test_an_order_payload_is_parsed_exactly() -> None:
    request = parse_order(order_arg(tag="t1"))
    assert (request.symbol, request.side, request.quantity) == (SYMBOL, Side.BUY, 100)
    assert request.price == 23_500  # milli-yuan, from the text exactly
    assert request.order_type is OrderType.LIMIT
    assert request.tag == "t1"
    market = parse_order(
        json.dumps({"symbol": SYMBOL, "side": "sell", "quantity": 100, "order_type": "b5tc"})
    )
    assert market.order_type is OrderType.B5TC
    assert market.price == 0


@pytest.mark.parametrize(
    ("arg", "field"),
    [
        ("not json", "arg"),
        ("[1, 2]", "arg"),
        (order_arg(extra=1), "extra"),
        (order_arg(symbol=5), "symbol"),
        (order_arg(side="LONG"), "side"),
        (order_arg(quantity=True), "quantity"),
        (order_arg(quantity=-100), "quantity"),
        (order_arg(price=None), "price"),  # a limit order needs its price
        (order_arg(price=[1]), "price"),
        (order_arg(order_type="stop"), "order_type"),
        (order_arg(tag="x" * 65), "tag"),
        ("{" + " " * MAX_ARG_CHARS + "}", "arg"),
    ],
)
def test_a_bad_order_payload_is_refused_naming_its_field(arg: str, field: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_order(arg)
    assert refused.value.field == field


def test_a_parent_payload_needs_one_window_and_short_params() -> None:
    base = {"symbol": SYMBOL, "side": "BUY", "quantity": 1000}
    parsed = parse_parent(json.dumps({**base, "window_s": 600, "params": {"interval_s": 10}}))
    assert parsed.window_ns == 600 * 10**9
    assert parsed.params == {"interval_s": "10"}
    assert parsed.algo == "twap"
    for bad in (
        {**base},  # no window
        {**base, "window_s": 60, "end_ns": 5},  # both
        {**base, "window_s": 60, "params": {"k": {"nested": 1}}},
        {**base, "window_s": 60, "params": {f"p{i}": 1 for i in range(40)}},
        {**base, "window_s": 10**9},
    ):
        with pytest.raises(InputError):
            parse_parent(json.dumps(bad))


def test_queue_command_bounds_a_scripts_payload(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    db.touch()
    with pytest.raises(InputError, match="needs its payload"):
        queue_command(db, Command.SUBMIT_ORDER, " ")
    with pytest.raises(InputError, match="more than"):
        queue_command(db, Command.START_PARENT, "x" * (MAX_ARG_CHARS + 1))


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE, symbols=[SYMBOL])


async def test_each_command_applied_twice_acts_once(market: MarketData, tmp_path: Path) -> None:
    day = market.trade_date
    session = await open_session(
        market, ReplayConfig(cash=10**12, db_path=tmp_path / "j.db"), shanghai_ns(day, "09:30")
    )
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    basket.start()
    started: list[str] = []

    async def start_parents(parents: Sequence[ParentOrder]) -> None:
        for parent in parents:
            basket.add(parent)
            session.store.stage_parent(parent.to_row())
            started.append(parent.parent_id)

    control, channel = await install(
        oms=session.oms,
        store=session.store,
        algos=basket.algos,
        start_parents=start_parents,
        instrument=session.engine.rules.instrument,
    )
    oms = session.oms
    try:
        await session.run(shanghai_ns(day, "09:35"), lambda: False, expire=False)
        first = json.loads(await control.on_submit_order(7, order_arg(tag="mine")) or "")
        again = json.loads(await control.on_submit_order(7, order_arg(tag="mine")) or "")
        assert first["ok"] is True
        assert again == first  # the order it sent the first time, not a second one
        assert [o.tag for o in oms.orders.values()] == ["api:7:mine"]  # sent once
        odd = json.loads(await control.on_submit_order(11, order_arg(quantity=150)) or "")
        assert oms.orders[odd["client_order_id"]].quantity == 100  # on the lot grid, as zhixing.api sizes
        worth = json.loads(await control.on_submit_order(12, order_arg(quantity=None, value="5000")) or "")
        assert oms.orders[worth["client_order_id"]].quantity == 200  # 5000 / 23.50 = 212 -> 200
        nothing = json.loads(await control.on_submit_order(13, order_arg(side="SELL")) or "")
        assert nothing["code"] == "size"  # nothing held to sell

        arg = json.dumps({"symbol": SYMBOL, "side": "BUY", "quantity": 1000, "window_s": 300})
        parent = json.loads(await control.on_start_parent(8, arg))
        assert parent == {"ok": True, "parent_id": "api-8"}
        assert json.loads(await control.on_start_parent(8, arg))["again"] is True
        assert started == ["api-8"]
        assert basket.algos["api-8"].parent.end_ns == oms.clock.now_ns() + 300 * 10**9

        unknown = json.loads(await control.on_start_parent(9, arg.replace('"BUY"', '"BUY", "algo": "nope"')))
        assert unknown["ok"] is False
        assert "api-9" not in basket.algos  # refused before anything was journaled
        assert "api-9" not in {str(r["parent_id"]) for r in await session.store.load_parents()}

        cancelled = json.loads(control.on_cancel_order("api:7"))  # by the command's tag
        assert cancelled["client_order_id"] == first["client_order_id"]
        assert json.loads(control.on_cancel_order("no-such"))["code"] == "unknown_order"

        # through the channel: a refused payload is a recorded result, and the channel goes on
        bad = queue_command(session.db_path, Command.SUBMIT_ORDER, '{"symbol": 1}')
        halt = queue_command(session.db_path, Command.HALT, "after")
        await channel.poll()
        with sqlite3.connect(session.db_path) as conn:
            done = dict(conn.execute("SELECT id, result FROM control_commands WHERE done = 1").fetchall())
        assert json.loads(done[bad])["code"] == "bad_payload"
        assert done[halt].startswith("halted")
        assert oms.halted_reason == "after"
        denied = json.loads(await control.on_submit_order(10, order_arg()) or "")
        assert denied["ok"] is False
        assert denied["code"] == "halted"
        assert oms.orders[denied["client_order_id"]].status is OrderStatus.DENIED
    finally:
        await session.store.close()
