"""End to end: OrderManager -> FileOrderAdapter -> real folders -> TerminalEmulator -> SimExchange,
on real 2021-12-01 snapshots and a SimClock. Submit, partial fill, fill, cancel, venue reject; terminal
faults: a missed file leaves the order in flight until the terminal sees it (never re-dropped), and
duplicated output rows never double a fill."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session
from zhixing.replay.terminal import TerminalEmulator, TerminalFaults

SNAPSHOTS = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600103.SH"  # 2.78 / 2.79 around 09:31
ACCOUNT = "acct-sim-1"
VENUE_CASH = 600_000_000  # 600,000 yuan at the venue; the engine believes it has far more


def status(order: Order) -> OrderStatus:
    """The order's status now (a call, so a type checker does not carry an earlier assert forward)."""
    return order.status


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SNAPSHOTS, symbols=[SYMBOL])


@dataclass
class Route:
    session: ReplaySession
    adapter: FileOrderAdapter
    terminal: TerminalEmulator
    venue: SimExchange
    input_dir: Path
    out_dir: Path

    async def run_until(self, hhmmss: str) -> None:
        end = shanghai_ns(self.session.market.trade_date, hhmmss)
        clock, oms = self.session.clock, self.session.oms
        while clock.step(until_ns=end):
            await oms.flush()
            await self.session.inflight.check()
            await oms.flush()
        clock.advance_to(end)

    def submit(self, side: Side, price: int, quantity: int) -> Order:
        return self.session.oms.submit(SubmitOrder(symbol=SYMBOL, side=side, quantity=quantity, price=price))

    def exec_rows(self) -> list[dict[str, str]]:
        with open(self.out_dir / "execution_report.csv", encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))


async def _route(tmp_path: Path, market: MarketData, faults: TerminalFaults) -> AsyncIterator[Route]:
    input_dir, push = tmp_path / "scan", tmp_path / "push"
    input_dir.mkdir()
    parts: dict[str, object] = {}

    def wrap(exchange: SimExchange, clock: SimClock) -> FileOrderAdapter:
        # the venue behind the terminal holds less cash than the engine thinks: a venue reject to see
        venue = SimExchange(
            market, clock, calendar=exchange._calendar, latency_ns=20_000_000, cash=VENUE_CASH
        )
        terminal = TerminalEmulator(input_dir, push, ACCOUNT, venue, clock, faults=faults)
        terminal.start()
        config = FileOrderConfig(
            input_dir=input_dir,
            output_dir=push,
            account_id=ACCOUNT,
            state_dir=tmp_path / "state",
            poll_interval_ns=250_000_000,
            completion_marker=True,
        )
        adapter = FileOrderAdapter(config, clock)
        parts.update(venue=venue, terminal=terminal, adapter=adapter)
        return adapter

    config = ReplayConfig(cash=10**12, db_path=tmp_path / "journal.db")
    session = await open_session(market, config, shanghai_ns(market.trade_date, "09:31"), wrap=wrap)
    route = Route(
        session=session,
        adapter=parts["adapter"],  # type: ignore[arg-type]
        terminal=parts["terminal"],  # type: ignore[arg-type]
        venue=parts["venue"],  # type: ignore[arg-type]
        input_dir=input_dir,
        out_dir=push / ACCOUNT,
    )
    try:
        yield route
    finally:
        route.terminal.stop()
        await route.adapter.close()
        await session.store.close()


@pytest.mark.slow
async def test_submit_partial_fill_fill_cancel_and_reject_through_files(
    tmp_path: Path, market: MarketData
) -> None:
    async for route in _route(tmp_path, market, TerminalFaults(scan_interval_ns=500_000_000)):
        big = route.submit(Side.BUY, 2790, 200_000)  # larger than the 2.79 ask: fills over time
        resting = route.submit(Side.BUY, 2600, 1_000)  # far below the market: rests
        await route.run_until("09:31:05")
        too_big = route.submit(Side.BUY, 2790, 100_000)  # the venue's cash is frozen by `big`
        await route.run_until("09:31:10")
        assert big.status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
        assert resting.status is OrderStatus.ACCEPTED
        assert resting.broker_order_id.startswith("S")
        assert too_big.status is OrderStatus.REJECTED
        assert too_big.reason == "no_enough_cash: insufficient_cash"
        route.session.oms.cancel(resting.client_order_id)
        await route.run_until("09:45")
        assert status(resting) is OrderStatus.CANCELED
        assert status(big) is OrderStatus.FILLED
        assert len(big.trade_ids) >= 2  # a partial fill first, then the rest
        assert big.filled_quantity == 200_000
        # what the engine holds is what the venue did, fill by fill
        venue_trades = {t.trade_id: t.quantity for t in await route.venue.query_trades()}
        assert {t: q for t, q in venue_trades.items()} == {
            row["exec_id"]: int(row["volume"]) for row in route.exec_rows() if row["exec_type"] == "15"
        }
        assert big.trade_ids == set(venue_trades)
        # one file per order or cancel, each with its completion marker; every sid handed over once
        assert len(list(route.input_dir.glob("*.order.csv"))) == 3
        assert len(list(route.input_dir.glob("*.cancel_order.csv"))) == 1
        assert len(list(route.input_dir.glob("*.fin"))) == 4
        assert sorted(route.terminal.stats.sids) == sorted(
            [big.client_order_id, resting.client_order_id, too_big.client_order_id]
        )
        # the broker's view answers the engine's queries
        reports = {r.client_order_id: r for r in await route.adapter.query_orders()}
        assert reports[big.client_order_id].status is OrderStatus.FILLED
        assert reports[resting.client_order_id].status is OrderStatus.CANCELED
        (position,) = await route.adapter.query_positions()
        assert (position.symbol, position.quantity, position.sellable) == (SYMBOL, 200_000, 0)  # T+1
        account = await route.adapter.query_account()
        assert account.cash == (await route.venue.query_account()).cash


async def test_missed_file_stays_in_flight_and_is_never_redropped(tmp_path: Path, market: MarketData) -> None:
    faults = TerminalFaults(seed=7, scan_interval_ns=1_000_000_000, miss_probability=1.0, miss_scans=8)
    async for route in _route(tmp_path, market, faults):
        order = route.submit(Side.BUY, 2600, 1_000)
        await route.run_until("09:31:07")
        assert order.status is OrderStatus.SUBMITTED  # the terminal has not seen the file yet
        assert route.session.inflight.stats.queried >= 1  # the engine asked; the broker did not know it
        assert route.terminal.stats.files_missed == 1
        await route.run_until("09:31:30")
        assert status(order) is OrderStatus.ACCEPTED  # resolved by the terminal, not by policy
        assert route.session.inflight.stats.resolved_by_policy == []
        assert len(list(route.input_dir.glob("*.order.csv"))) == 1  # never re-dropped under a new sid
        assert route.terminal.stats.sids == [order.client_order_id]


@pytest.mark.slow
async def test_duplicated_output_rows_never_double_a_fill(tmp_path: Path, market: MarketData) -> None:
    faults = TerminalFaults(seed=3, scan_interval_ns=500_000_000, duplicate_probability=1.0)
    async for route in _route(tmp_path, market, faults):
        order = route.submit(Side.BUY, 2790, 200_000)
        await route.run_until("09:45")
        trades = [row for row in route.exec_rows() if row["exec_type"] == "15"]
        exec_ids = [row["exec_id"] for row in trades]
        assert len(exec_ids) == 2 * len(set(exec_ids))  # every trade row written twice
        venue_filled = sum(t.quantity for t in await route.venue.query_trades())
        assert order.filled_quantity == venue_filled == 200_000
        assert order.status is OrderStatus.FILLED
        assert route.adapter.tracker.stats.duplicate_exec_rows == len(set(exec_ids))
        assert route.session.oms.counters.overfill_alarms == 0
        assert route.session.oms.counters.illegal_transitions == 0


async def test_terminal_down_order_waits_in_flight_and_is_processed_once_on_recovery(
    tmp_path: Path, market: MarketData
) -> None:
    # the terminal scans only once a minute: far beyond the in-flight timeout x max queries (15 s)
    faults = TerminalFaults(scan_interval_ns=60_000_000_000)
    async for route in _route(tmp_path, market, faults):
        order = route.submit(Side.BUY, 2600, 1_000)
        await route.run_until("09:31:50")
        assert status(order) is OrderStatus.SUBMITTED  # unknown outcome: still waiting (E3)
        assert route.session.inflight.stats.queried >= 3
        assert route.session.inflight.stats.resolved_by_policy == []  # the file is there: not given up
        (waiting,) = await route.adapter.query_orders()
        assert (waiting.client_order_id, waiting.status, waiting.quantity) == (
            order.client_order_id,
            OrderStatus.SUBMITTED,
            1_000,
        )
        await route.run_until("09:32:10")  # the terminal's scan at 09:32:00
        assert status(order) is OrderStatus.ACCEPTED
        assert route.terminal.stats.sids == [order.client_order_id]
        assert len(list(route.input_dir.glob("*.order.csv"))) == 1
