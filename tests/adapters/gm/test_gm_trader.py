"""The gm API route end to end against the scripted gm fake: a real OrderManager and StateStore (SQLite in
``tmp_path``), callbacks delivered from a background thread through ``adapters.gm.entry`` and the bridge.

``settle`` runs the fake's queued callbacks on their thread, joins it, then waits until every hop it made
has run on the loop (FIFO): no sleeps, nothing timed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gm_fake import FakeGmApi, GmError
from zhixing.adapters.gm import GmBridge, GmBrokerAdapter, GmRouteConfig, install, uninstall
from zhixing.adapters.gm.ledger import LinkLedger
from zhixing.adapters.gm.runner import run_live
from zhixing.engine.account import Account
from zhixing.engine.bus import EventBus
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import ConfigError
from zhixing.engine.events import OrderFilled, SubmitOrder
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.oms import OrderManager
from zhixing.engine.orders import Order
from zhixing.engine.reconcile import recover
from zhixing.engine.store import StateStore

SYM = "600000.SH"
CASH = 10**10  # milli-yuan
T0 = 1_795_000_000 * 10**9
ACCOUNT = "acct-1"


@dataclass
class Route:
    api: FakeGmApi
    bridge: GmBridge
    adapter: GmBrokerAdapter
    oms: OrderManager
    store: StateStore
    clock: SimClock

    async def settle(self) -> None:
        await asyncio.to_thread(self.api.deliver)
        await self.bridge.drain()

    async def buy(self, quantity: int = 1000, price: int = 10020) -> str:
        order = self.oms.submit(SubmitOrder(symbol=SYM, side=Side.BUY, quantity=quantity, price=price))
        await self.oms.flush()
        return order.client_order_id

    def cl(self, cid: str) -> str:
        return self.oms.orders[cid].broker_order_id or self.adapter.mapper.cl_of[cid]


def status_of(order: Order) -> OrderStatus:
    """The status read through a call, so a type checker does not carry a narrowing across awaits."""
    return order.status


async def open_route(tmp_path: Path, api: FakeGmApi, clock: SimClock | None = None) -> Route:
    clock = clock or SimClock(T0)
    bridge = GmBridge()
    install(bridge)
    config = GmRouteConfig(account_id=ACCOUNT, strategy_id="strategy-1", state_dir=tmp_path / "state")
    adapter = GmBrokerAdapter(config, clock, api=api, bridge=bridge)
    store = await StateStore.open(tmp_path / "journal.db")
    oms = OrderManager(clock=clock, bus=EventBus(), adapter=adapter, store=store, account=Account(CASH))
    await oms.open()
    await adapter.connect()
    return Route(api, bridge, adapter, oms, store, clock)


async def close_route(route: Route) -> None:
    await route.adapter.close()
    await route.store.close()
    uninstall(route.bridge)


@pytest.fixture
async def route(tmp_path: Path) -> AsyncIterator[Route]:
    r = await open_route(tmp_path, FakeGmApi(ACCOUNT))
    yield r
    await close_route(r)


async def test_submit_ack_partial_fill_fill_from_the_gm_thread(route: Route) -> None:
    cid = await route.buy(1000, 10020)
    (call,) = [c for n, c in route.api.calls if n == "order_volume"]
    assert call == {"symbol": "SHSE.600000", "volume": 1000, "side": 1, "price": 10.02, "account": ACCOUNT}
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.ACCEPTED
    cl = order.broker_order_id
    assert cl in route.api.orders

    route.api.fill(cl, 400, 10.01)
    await route.settle()
    assert status_of(order) is OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == 400
    assert order.filled_value == 400 * 10010
    assert order.commission == 5000  # 5.00 yuan

    route.api.fill(cl, 600)
    await route.settle()
    assert status_of(order) is OrderStatus.FILLED
    assert order.filled_quantity == 1000
    assert route.oms.account is not None
    assert route.oms.account.positions[SYM].quantity == 1000


async def test_ack_overtaking_order_volume_return_is_held_and_applied_once(route: Route) -> None:
    route.api.callbacks_before_return = True
    cid = await route.buy()
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.ACCEPTED
    assert route.adapter.stats.held_reports >= 1
    assert route.oms.counters.unknown_order_events == 0


async def test_cancel_sends_cl_ord_id_and_account_and_cancels(route: Route) -> None:
    cid = await route.buy()
    await route.settle()
    cl = route.cl(cid)
    route.api.fill(cl, 300)
    await route.settle()
    assert route.oms.cancel(cid)
    await route.oms.flush()
    (call,) = [c for n, c in route.api.calls if n == "order_cancel"]
    assert call == {"wait_cancel_orders": [{"cl_ord_id": cl, "account_id": ACCOUNT}]}
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.CANCELED
    assert order.filled_quantity == 300


async def test_cancel_reject_after_fill_never_overwrites_filled(route: Route) -> None:
    cid = await route.buy()
    await route.settle()
    cl = route.cl(cid)
    assert route.oms.cancel(cid)
    route.api.fill(cl, 1000)  # the fill races the cancel request
    await route.oms.flush()  # order_cancel reaches gm after the fill: 委托已完成 (101)
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 1000
    assert order.reason.startswith("order_finalized")


async def test_cancel_reject_on_working_order_returns_to_previous_state(route: Route) -> None:
    cid = await route.buy()
    await route.settle()
    route.api.fill(route.cl(cid), 200)
    await route.settle()
    route.oms.cancel(cid)
    route.api.orders[route.cl(cid)]["status"] = 3  # make gm refuse it, as a counter setting would
    await route.oms.flush()
    route.api.orders[route.cl(cid)]["status"] = 2
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.reason == "order_finalized: 委托已完成"


async def test_reject_carries_gm_reason_and_detail(route: Route) -> None:
    route.api.reject_next = (2, "资金不足")
    cid = await route.buy()
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "no_enough_cash: 资金不足"
    assert order.venue_confirmed is True


async def test_sdk_error_before_placing_leaves_order_in_flight_then_query_settles_it(route: Route) -> None:
    route.api.fail_next_order = GmError("gm status 1020")
    cid = await route.buy()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.SUBMITTED  # unknown outcome: never rejected blindly, never resent
    assert route.adapter.stats.unknown_submits == 1
    assert [n for n, _ in route.api.calls].count("order_volume") == 1
    assert await route.adapter.query_orders() == []  # the broker has nothing: in-flight policy decides


async def test_lost_answer_is_linked_from_the_ledger_by_query(route: Route) -> None:
    route.api.raise_after_place = TimeoutError("no answer")
    cid = await route.buy(500, 10000)
    assert route.oms.orders[cid].status is OrderStatus.SUBMITTED
    (report,) = await route.adapter.query_orders()
    assert report.client_order_id == cid  # recovered by symbol/side/price/volume/time from the ledger
    assert report.status is OrderStatus.ACCEPTED
    await route.adapter.resync()
    assert route.oms.orders[cid].status is OrderStatus.ACCEPTED


async def test_submit_while_disconnected_is_refused_locally(route: Route) -> None:
    route.api.disconnect()
    await route.settle()
    assert not route.adapter.connected
    cid = await route.buy()
    assert route.oms.orders[cid].status is OrderStatus.REJECTED
    assert "not connected" in route.oms.orders[cid].reason
    assert [n for n, _ in route.api.calls].count("order_volume") == 0


async def test_disconnect_keeps_orders_in_flight_and_reconnect_dedupes_repushed_reports(route: Route) -> None:
    link: list[tuple[bool, str]] = []
    route.adapter.set_connection_listener(lambda up, reason="": link.append((up, reason)))
    cid = await route.buy()
    await route.settle()
    cl = route.cl(cid)
    route.api.fill(cl, 100)
    await route.settle()
    route.api.disconnect()
    await route.settle()
    route.api.fill(cl, 200)  # happens while the link is down: no callback reaches us
    route.api.fill(cl, 300)
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == 100

    route.api.reconnect(repush=True)  # gm re-pushes every report of the day
    await route.settle()
    await asyncio.gather(*route.adapter._tasks)  # the resync the reconnect started
    assert order.filled_quantity == 600
    assert len(order.trade_ids) == 3
    assert route.adapter.stats.duplicate_exec_reports >= 3
    assert route.oms.counters.duplicate_fills == 0  # dedupe happened at the adapter
    assert route.adapter.stats.disconnects == 1
    assert link == [(False, "gm_trade_data_disconnected"), (True, "")]  # what the engine's monitor hears


async def test_queries_map_cash_positions_orders_and_trades(route: Route) -> None:
    route.api.positions["SZSE.000001"] = {
        "account_id": ACCOUNT, "symbol": "SZSE.000001", "side": 1, "volume": 500, "vwap": 12.345,
        "available_now": 300,
    }  # fmt: skip
    route.api.positions["SZSE.000002"] = {"account_id": ACCOUNT, "symbol": "SZSE.000002", "volume": 0}
    cid = await route.buy(1000, 10020)
    await route.settle()
    route.api.fill(route.cl(cid), 1000, 10.02, commission=5.01)
    await route.settle()

    account = await route.adapter.query_account()
    assert account.cash == 10**9 - 10_020_000 - 5010
    assert account.frozen == 0
    positions = await route.adapter.query_positions()
    assert [(p.symbol, p.quantity, p.sellable, p.avg_cost) for p in positions] == [
        ("000001.SZ", 500, 300, 12345),
        ("600000.SH", 1000, 0, 10020),
    ]
    (report,) = await route.adapter.query_orders()
    assert (report.client_order_id, report.status, report.filled_quantity) == (cid, OrderStatus.FILLED, 1000)
    assert (report.symbol, report.side, report.price, report.quantity) == (SYM, Side.BUY, 10020, 1000)
    (trade,) = await route.adapter.query_trades()
    assert (trade.client_order_id, trade.quantity, trade.price, trade.commission) == (cid, 1000, 10020, 5010)


async def test_order_placed_by_hand_in_the_terminal_is_external(route: Route) -> None:
    route.api.order_volume("SHSE.600000", 100, 1, 1, 1, price=10.0, account=ACCOUNT)
    await route.settle()
    (report,) = await route.adapter.query_orders()
    assert report.client_order_id.startswith("gm:")
    assert route.oms.counters.unknown_order_events == 0  # held, never applied to an engine order


async def test_restart_reconciles_by_client_order_id(tmp_path: Path) -> None:
    api = FakeGmApi(ACCOUNT)
    first = await open_route(tmp_path, api)
    cid = await first.buy(1000, 10020)
    await first.settle()
    cl = first.cl(cid)
    api.fill(cl, 400)
    await first.settle()
    assert first.oms.orders[cid].filled_quantity == 400
    await close_route(first)  # the engine goes down; gm keeps trading
    api.fill(cl, 600)
    api.deliver()  # nobody listening: dropped by the entry module
    api.reconnect(repush=False)
    api.deliver()

    second = await open_route(tmp_path, api, first.clock)
    report = await recover(second.oms, second.store, second.adapter, trading_day_start_ns=T0 - 3600 * 10**9)
    order = second.oms.orders[cid]
    assert report.ok, report.mismatches
    assert report.adopted == [cid]
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 1000
    assert [n for n, _ in api.calls].count("order_volume") == 1  # nothing was sent again
    await close_route(second)


async def test_restart_after_crash_between_send_and_link_adopts_the_order(tmp_path: Path) -> None:
    api = FakeGmApi(ACCOUNT)
    first = await open_route(tmp_path, api)
    api.raise_after_place = ConnectionError("process killed before the link was written")
    cid = await first.buy(1000, 10020)
    await close_route(first)
    links = LinkLedger(tmp_path / "state" / "gm_links.sqlite")
    assert [(link.client_order_id, link.state, link.cl_ord_id) for link in links.links()] == [
        (cid, "sending", "")
    ]
    links.close()
    (cl,) = api.orders
    api.fill(cl, 1000)

    second = await open_route(tmp_path, api, first.clock)
    report = await recover(second.oms, second.store, second.adapter, trading_day_start_ns=T0 - 3600 * 10**9)
    assert report.ok, report.mismatches
    assert report.external == []
    assert second.oms.orders[cid].status is OrderStatus.FILLED
    await close_route(second)


async def test_ambiguous_unlinked_order_is_never_guessed(tmp_path: Path) -> None:
    api = FakeGmApi(ACCOUNT)
    first = await open_route(tmp_path, api)
    api.raise_after_place = ConnectionError("lost")
    cid = await first.buy(1000, 10020)
    api.order_volume("SHSE.600000", 1000, 1, 1, 1, price=10.02, account=ACCOUNT)  # same order, by hand
    reports = await first.adapter.query_orders()
    assert sorted(r.client_order_id.startswith("gm:") for r in reports) == [True, True]
    assert cid not in {r.client_order_id for r in reports}
    await close_route(first)


async def test_same_client_order_id_is_never_placed_twice(route: Route) -> None:
    cid = await route.buy()
    with pytest.raises(Exception, match="already sent once"):
        await route.adapter.submit(route.oms.orders[cid])
    assert [n for n, _ in route.api.calls].count("order_volume") == 1


async def test_fill_events_carry_exec_id_as_trade_id(route: Route) -> None:
    seen: list[OrderFilled] = []
    route.oms.bus.subscribe(OrderFilled, seen.append)
    cid = await route.buy()
    await route.settle()
    route.api.fill(route.cl(cid), 1000)
    await route.settle()
    (fill,) = seen
    assert fill.trade_id == route.api.execrpts[-1]["exec_id"]
    assert fill.side is Side.BUY


def test_config_from_settings_names_the_key(tmp_path: Path) -> None:
    config = GmRouteConfig.from_settings(
        {"account_id": "a", "strategy_id": "s", "token": "env:GM_TOKEN", "state_dir": "st"}, base=tmp_path
    )
    assert config.state_dir == tmp_path / "st"
    with pytest.raises(ConfigError, match=r"route\.gm\.strategy_id"):
        GmRouteConfig.from_settings({"account_id": "a"}, base=tmp_path)
    with pytest.raises(ConfigError, match=r"zhixing\.toml: route\.gm\.strategy_id: must be"):
        GmRouteConfig.from_settings(
            {"account_id": "a", "strategy_id": " "}, base=tmp_path, where="zhixing.toml"
        )
    with pytest.raises(ConfigError, match=r"route\.gm\.acount_id"):
        GmRouteConfig.from_settings({"acount_id": "a", "strategy_id": "s"}, base=tmp_path)


def test_run_live_runs_gm_on_the_main_thread_and_the_engine_beside_it(tmp_path: Path) -> None:
    """gm's run (the fake: imports ``adapters.gm.entry`` by gm's path rule, polls on this thread) and the
    engine's loop on a worker thread: an order placed by the engine is acknowledged through gm's callbacks;
    when the engine returns, gm stops."""
    api = FakeGmApi(ACCOUNT)
    config = GmRouteConfig(account_id=ACCOUNT, strategy_id="strategy-1", state_dir=tmp_path / "state")
    statuses: list[OrderStatus] = []
    argv_seen: list[list[str]] = []

    async def engine(bridge: GmBridge) -> None:
        clock = SimClock(T0)
        adapter = GmBrokerAdapter(config, clock, api=api, bridge=bridge)
        accepted = asyncio.Event()
        adapter.bind(lambda e: accepted.set() if type(e).__name__ == "OrderAccepted" else None)
        await adapter.connect()
        order = Order(client_order_id="Z1", symbol=SYM, side=Side.BUY, price=10020, quantity=100)
        order.status = OrderStatus.SUBMITTED
        await adapter.submit(order)
        await asyncio.wait_for(accepted.wait(), timeout=10)  # a safety bound, not a timing assumption
        statuses.append(OrderStatus.ACCEPTED)
        argv_seen.append(list(sys.argv))
        await adapter.close()

    argv = sys.argv
    sys.argv = [argv[0], "--config", "zhixing.toml"]
    try:
        run_live(api, config, engine)
    finally:
        sys.argv = argv
    assert statuses == [OrderStatus.ACCEPTED]
    assert api.run_args["filename"].endswith("entry.py")
    assert api.run_args["mode"] == 1
    assert api.running is False
    assert argv_seen == [[argv[0]]]  # gm's optparse never saw zhixing's options


async def test_sell_closes_with_the_sell_side(route: Route) -> None:
    assert route.oms.account is not None
    route.oms.account.position(SYM).quantity = 500
    route.oms.account.position(SYM).sellable = 500
    order = route.oms.submit(SubmitOrder(symbol=SYM, side=Side.SELL, quantity=500, price=10100))
    await route.oms.flush()
    (call,) = [c for n, c in route.api.calls if n == "order_volume"]
    assert (call["side"], call["volume"], call["price"]) == (2, 500, 10.1)
    (placed,) = route.api.orders.values()
    assert placed["position_effect"] == 2  # PositionEffect_Close
    await route.settle()
    route.api.fill(placed["cl_ord_id"], 500)
    await route.settle()
    assert status_of(order) is OrderStatus.FILLED
    assert route.oms.account.positions[SYM].quantity == 0


async def test_inflight_check_resolves_a_lost_answer_by_query_and_a_never_placed_order_by_policy(
    route: Route,
) -> None:
    route.api.raise_after_place = TimeoutError("answer lost")
    placed = await route.buy(500, 10000)
    route.api.fail_next_order = GmError("refused before placing")
    never = await route.buy(300, 10000)
    checker = InflightChecker(route.oms, route.adapter, timeout_ns=5 * 10**9, max_queries=2)
    route.clock.advance_to(T0 + 6 * 10**9)
    await checker.check()
    assert status_of(route.oms.orders[placed]) is OrderStatus.ACCEPTED  # found through the ledger
    assert status_of(route.oms.orders[never]) is OrderStatus.SUBMITTED  # one miss: still asking
    route.clock.advance_to(T0 + 12 * 10**9)
    await checker.check()
    order = route.oms.orders[never]
    assert status_of(order) is OrderStatus.REJECTED
    assert order.venue_confirmed is False
    assert checker.stats.resolved_by_policy == [never]
    assert [n for n, _ in route.api.calls].count("order_volume") == 2  # nothing resent


async def test_lost_execution_report_is_fetched_when_the_status_counts_more_fills(route: Route) -> None:
    cid = await route.buy(1000, 10020)
    await route.settle()
    route.api.fill(route.cl(cid), 1000, lose_report=True)  # only the 已成 status arrives
    await route.settle()
    await asyncio.gather(*route.adapter._tasks)  # the query the gap started
    order = route.oms.orders[cid]
    assert status_of(order) is OrderStatus.FILLED
    assert order.filled_quantity == 1000
    assert route.adapter.stats.fill_gaps >= 1


async def test_fill_gap_queries_are_bounded_to_one_per_second_on_the_clock(route: Route) -> None:
    def queries() -> int:
        return [n for n, _ in route.api.calls].count("get_execution_reports")

    cid = await route.buy(1000, 10020)
    await route.settle()
    before = queries()
    route.api.fill(route.cl(cid), 300, lose_report=True)
    await route.settle()
    await asyncio.gather(*route.adapter._tasks)
    assert queries() == before + 1
    route.api.fill(route.cl(cid), 300, lose_report=True)
    route.api.fill(route.cl(cid), 100, lose_report=True)
    await route.settle()
    await asyncio.gather(*route.adapter._tasks)
    assert queries() == before + 1  # within the second: waiting on the clock, not querying
    assert route.oms.orders[cid].filled_quantity == 300
    while route.clock.step():  # one second later (virtual): one query covers both gaps
        pass
    await asyncio.gather(*route.adapter._tasks)
    assert queries() == before + 2
    assert route.oms.orders[cid].filled_quantity == 700
