"""Kill switch and algorithm control through the journal: commands queued by the CLI handlers (another
connection, as another process would), applied once by the engine's control channel; end to end on the
simulated exchange with a real TWAP basket on real data."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from zhixing.algos.basket import Basket
from zhixing.engine.cli.ops_cmd import add_parsers, run_algo, run_halt, run_resume
from zhixing.engine.clock import SimClock
from zhixing.engine.control import Command, ControlChannel, EngineControl, install, queue_command
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import InputError, StoreError
from zhixing.engine.events import OrderRejected, SubmitOrder
from zhixing.engine.market import shanghai_ns
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.risk_controls import RiskControls, RiskLimits
from zhixing.engine.store import StateStore
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "replay" / "sample_data"
SYMBOLS = ["600258.SH", "600446.SH"]


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE / "snapshots_20211201", symbols=SYMBOLS)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------- the channel
@dataclass
class Recorder:
    calls: list[tuple[str, str]]

    def on_halt(self, reason: str) -> str:
        self.calls.append(("halt", reason))
        return "ok"

    def on_resume(self) -> str:
        self.calls.append(("resume", ""))
        return "ok"

    def on_pause(self, parent_id: str) -> str:
        self.calls.append(("pause", parent_id))
        return "ok"

    def on_resume_algo(self, parent_id: str) -> str:
        self.calls.append(("resume_algo", parent_id))
        return "ok"

    def on_cancel_algo(self, parent_id: str) -> str:
        self.calls.append(("cancel_algo", parent_id))
        return "ok"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    s = await StateStore.open(tmp_path / "j.db")
    try:
        yield s
    finally:
        await s.close()


def test_queue_command_refuses_a_missing_journal_and_bad_commands(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="journal database not found"):
        queue_command(tmp_path / "typo.db", Command.HALT)
    assert not (tmp_path / "typo.db").exists()
    (tmp_path / "x.db").touch()
    with pytest.raises(InputError, match="unknown control command"):
        queue_command(tmp_path / "x.db", "explode")
    with pytest.raises(InputError, match="needs a parent id"):
        queue_command(tmp_path / "x.db", Command.PAUSE, " ")
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE quotes (x)").connection.close()
    with pytest.raises(StoreError, match="not a zhixing journal"):
        queue_command(foreign, Command.HALT)


async def test_commands_are_applied_once_in_order_and_marked_done(store: StateStore) -> None:
    clock = SimClock(1_000)
    recorder = Recorder([])
    channel = ControlChannel(store, clock, recorder)
    first = queue_command(store.path, Command.HALT, "fat finger", clock=clock)
    queue_command(store.path, Command.PAUSE, "P1", clock=clock)
    queue_command(store.path, "resume", clock=clock)
    applied = await channel.poll()
    assert [r.id for r, _ in applied] == [first, first + 1, first + 2]
    assert recorder.calls == [("halt", "fat finger"), ("pause", "P1"), ("resume", "")]
    assert await channel.poll() == []
    assert recorder.calls == [("halt", "fat finger"), ("pause", "P1"), ("resume", "")]
    assert rows(store.path, "SELECT command, arg, done, result FROM control_commands ORDER BY id") == [
        ("halt", "fat finger", 1, "ok"),
        ("pause", "P1", 1, "ok"),
        ("resume", "", 1, "ok"),
    ]


async def test_a_command_applied_but_not_committed_before_a_crash_is_applied_again(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    store = await StateStore.open(db)
    clock = SimClock(1_000)

    async def crash() -> None:
        raise StoreError("power cut before the commit")

    queue_command(db, Command.HALT, "x", clock=clock)
    first = Recorder([])
    with pytest.raises(StoreError):
        await ControlChannel(store, clock, first, commit=crash).poll()
    await store.close()  # the staged done mark dies with the process
    assert rows(db, "SELECT done FROM control_commands") == [(0,)]
    store = await StateStore.open(db)
    try:
        again = Recorder([])
        await ControlChannel(store, clock, again).poll()
        assert again.calls == [("halt", "x")]
        assert rows(db, "SELECT done FROM control_commands") == [(1,)]
    finally:
        await store.close()


async def test_the_background_poller_applies_a_command_on_the_clock(store: StateStore) -> None:
    clock = SimClock(1_000)
    seen = asyncio.Event()

    class Signal(Recorder):
        def on_halt(self, reason: str) -> str:
            seen.set()
            return super().on_halt(reason)

    handlers = Signal([])
    channel = ControlChannel(store, clock, handlers, poll_interval_ns=100_000_000)
    queue_command(store.path, Command.HALT, "from cron", clock=clock)
    channel.start()
    try:
        for _ in range(50):  # let the task reach its sleep, then move virtual time past it
            await asyncio.sleep(0)
            if clock.next_timer_ns() is not None:
                break
        assert clock.next_timer_ns() == 1_000 + 100_000_000
        clock.step()
        await asyncio.wait_for(seen.wait(), timeout=10)
    finally:
        await channel.stop()
    assert handlers.calls == [("halt", "from cron")]


# ---------------------------------------------------------------------------------------- end to end
@dataclass
class Engine:
    session: ReplaySession
    basket: Basket
    control: EngineControl
    channel: ControlChannel
    risk: RiskControls

    @property
    def db(self) -> Path:
        return self.session.db_path

    async def run_to(self, hhmm: str) -> None:
        day = self.session.market.trade_date
        await self.session.run(shanghai_ns(day, hhmm), lambda: False, expire=False)


async def start_engine(
    market: MarketData, db: Path, *, restore: bool = False, told: list[tuple[str, bool]] | None = None
) -> Engine:
    day = market.trade_date
    start, end = shanghai_ns(day, "09:30"), shanghai_ns(day, "10:15")
    session = await open_session(market, ReplayConfig(cash=10**12, db_path=db), start)
    basket = Basket(session.ctx)
    session.engine.add_basket(basket)
    risk = session.engine.risk
    for i, symbol in enumerate(market.symbols):
        basket.add(
            ParentOrder(
                parent_id=f"P{i}",
                symbol=symbol,
                side=Side.BUY,
                quantity=40_000,
                start_ns=start,
                end_ns=end,
                params={"price_policy": "passive", "interval_s": "60"},
            )
        )
    control, channel = await install(
        oms=session.oms,
        store=session.store,
        algos=basket.algos,
        risk=risk,
        on_halt_change=None if told is None else lambda reason, halted: told.append((reason, halted)),
    )
    assert await control.restore() is restore  # halted again only if the journal says so
    basket.start()
    await session.store.commit()
    return Engine(session, basket, control, channel, risk)


def cli(**kwargs: object) -> argparse.Namespace:
    return argparse.Namespace(**kwargs)


def sent_after(engine: Engine, ts: int) -> list[str]:
    return [
        o.client_order_id
        for o in engine.session.oms.orders.values()
        if o.ts_created > ts and o.status is not OrderStatus.DENIED
    ]


async def test_kill_switch_cancels_working_orders_stops_new_ones_pauses_algos_and_resume_trades_again(
    market: MarketData, tmp_path: Path
) -> None:
    told: list[tuple[str, bool]] = []
    engine = await start_engine(market, tmp_path / "j.db", told=told)
    oms, clock = engine.session.oms, engine.session.clock
    try:
        await engine.run_to("09:40")
        before = {pid: algo.children_sent for pid, algo in engine.basket.algos.items()}
        assert all(n > 0 for n in before.values())
        quote = engine.session.exchange.latest(SYMBOLS[0])
        assert quote is not None
        manual = oms.submit(
            SubmitOrder(symbol=SYMBOLS[0], side=Side.BUY, quantity=100, price=quote.bid_price - 50)
        )
        await oms.flush()
        assert manual.status is not OrderStatus.DENIED, manual.reason
        await engine.session.run(clock.now_ns() + 100_000_000, lambda: False, expire=False)
        working_at_halt = oms.working_orders()
        assert manual in working_at_halt  # an order no algorithm owns: cancel_all must catch it
        assert working_at_halt  # passive children resting at the exchange
        assert run_halt(cli(db=engine.db, reason="operator test")) == 0
        pressed = clock.now_ns()
        await engine.channel.poll()
        assert oms.halted_reason == "operator test"
        assert told == [("operator test", True)]  # the operator is told when it happens
        engine.control.on_halt("again")  # already halted: not told twice
        assert told == [("operator test", True)]
        assert all(a.parent.status is ParentStatus.PAUSED for a in engine.basket.algos.values())
        await engine.run_to("09:50")
        assert oms.working_orders() == []  # every working order cancelled
        assert all(o.status is OrderStatus.CANCELED or o.is_terminal for o in working_at_halt)
        assert any(o.status is OrderStatus.CANCELED for o in working_at_halt)
        zero_at = max(o.ts_updated for o in oms.orders.values())
        assert zero_at - pressed <= 1_000_000_000  # J6: time to zero working orders
        assert sent_after(engine, pressed) == []  # nothing new reached the exchange
        assert {pid: a.children_sent for pid, a in engine.basket.algos.items()} == before
        # a direct submit while halted is denied with the reason
        denied = oms.submit(SubmitOrder(symbol=SYMBOLS[0], side=Side.BUY, quantity=100, price=1_000))
        assert denied.status is OrderStatus.DENIED
        assert denied.reason.startswith("halted")
        halt_row = await engine.session.store.get_meta("halt")
        assert halt_row is not None
        assert '"halted":true' in halt_row
        # resume: trading continues, paused algos slice again
        assert run_resume(cli(db=engine.db)) == 0
        resumed = clock.now_ns()
        await engine.channel.poll()
        assert oms.halted_reason is None
        assert [halted for _, halted in told] == [True, False]
        assert "resumed" in told[1][0]
        await engine.run_to("10:00")
        assert all(a.parent.status is ParentStatus.RUNNING for a in engine.basket.algos.values())
        assert sent_after(engine, resumed)
        assert rows(engine.db, "SELECT command, done FROM control_commands ORDER BY id") == [
            ("halt", 1),
            ("resume", 1),
        ]
    finally:
        await engine.session.store.close()


async def test_algo_pause_resume_and_cancel_through_the_channel(market: MarketData, tmp_path: Path) -> None:
    engine = await start_engine(market, tmp_path / "j.db")
    oms, clock = engine.session.oms, engine.session.clock
    p0, p1 = engine.basket.algos["P0"], engine.basket.algos["P1"]
    try:
        await engine.run_to("09:40")
        assert run_algo(cli(db=engine.db, algo_action="pause", parent_id="P0")) == 0
        paused_at = clock.now_ns()
        await engine.channel.poll()
        assert p0.parent.status is ParentStatus.PAUSED
        await engine.run_to("09:45")
        assert [o for o in oms.children_of("P0") if o.is_working] == []
        assert not [o for o in oms.children_of("P0") if o.ts_created > paused_at]
        assert [o for o in oms.children_of("P1") if o.ts_created > paused_at]  # the other keeps going
        assert run_algo(cli(db=engine.db, algo_action="resume", parent_id="P0")) == 0
        resumed_at = clock.now_ns()
        await engine.channel.poll()
        await engine.run_to("09:50")
        assert [o for o in oms.children_of("P0") if o.ts_created > resumed_at]
        assert run_algo(cli(db=engine.db, algo_action="cancel", parent_id="P1")) == 0
        assert run_algo(cli(db=engine.db, algo_action="pause", parent_id="NOPE")) == 0
        await engine.channel.poll()
        await engine.run_to("09:52")
        assert p1.parent.status is ParentStatus.CANCELED
        assert p1.done
        assert [o for o in oms.children_of("P1") if o.is_working] == []
        results = rows(engine.db, "SELECT command, arg, result FROM control_commands ORDER BY id")
        assert results[-1] == ("pause", "NOPE", "unknown parent NOPE")
        # the algorithms' states were journaled with the done marks
        states = await engine.session.store.load_algo_states()
        assert states["P1"][1]["finished"] is True
    finally:
        await engine.session.store.close()


async def test_a_halt_survives_a_restart_until_resumed(market: MarketData, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    engine = await start_engine(market, db)
    try:
        await engine.run_to("09:35")
        run_halt(cli(db=db, reason="overnight"))
        await engine.channel.poll()
        await engine.run_to("09:36")
    finally:
        await engine.session.store.close()
    told: list[tuple[str, bool]] = []
    again = await start_engine(market, db, restore=True, told=told)
    try:
        oms = again.session.oms
        assert oms.halted_reason == "overnight"
        assert told == [("still halted from before the restart: overnight", True)]
        assert all(a.parent.status is ParentStatus.PAUSED for a in again.basket.algos.values())
        await again.run_to("09:40")
        assert [o for o in oms.orders.values() if o.status is not OrderStatus.DENIED] == []
        run_resume(cli(db=db))
        await again.channel.poll()
        await again.run_to("09:45")
        assert oms.halted_reason is None
        assert [o for o in oms.orders.values() if o.is_working or o.filled_quantity]
    finally:
        await again.session.store.close()


async def test_auto_halt_from_consecutive_rejects_is_the_full_kill_switch_and_persists(
    market: MarketData, tmp_path: Path
) -> None:
    told: list[tuple[str, bool]] = []
    engine = await start_engine(market, tmp_path / "j.db", told=told)
    try:
        await engine.run_to("09:35")
        engine.risk.limits = RiskLimits(max_consecutive_rejects=2)
        working = engine.session.oms.working_orders()
        assert len(working) >= 2
        for order in working[:2]:
            now = engine.session.clock.now_ns()
            engine.session.oms.on_event(
                OrderRejected(
                    ts_event=now,
                    ts_init=now,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    reason="x",
                )
            )
        assert engine.session.oms.halted_reason is not None
        assert told == [(engine.session.oms.halted_reason, True)]  # the breaker's halt is told at once
        assert all(a.parent.status is ParentStatus.PAUSED for a in engine.basket.algos.values())
        await engine.run_to("09:36")
        assert engine.session.oms.working_orders() == []
        halt_row = await engine.session.store.get_meta("halt")
        assert halt_row is not None
        assert "auto_halt" in halt_row
    finally:
        await engine.session.store.close()


async def test_a_halt_the_oms_raises_itself_is_told_once_and_pauses_the_algorithms_that_ask(
    market: MarketData, tmp_path: Path
) -> None:
    """The in-flight checks, lost orders after a restore and a journal that cannot be written halt the
    OMS directly (not through ``zhixing halt``): the operator is told once, a second reason while halted
    is not a second halt, every algorithm that asks for a child while halted is paused (not stopped by the
    repeated-denial breaker), and the operator's resume resumes them."""
    told: list[tuple[str, bool]] = []
    engine = await start_engine(market, tmp_path / "j.db", told=told)
    try:
        await engine.run_to("09:33")
        oms = engine.session.oms
        oms.halt("reconciliation_mismatch")
        oms.halt("journal_write_failed")
        assert told == [("reconciliation_mismatch", True)]
        await engine.run_to("09:40")  # the algorithms ask for their next slices: denied, paused
        assert all(a.parent.status is ParentStatus.PAUSED for a in engine.basket.algos.values())
        assert engine.control.paused_by_halt == set(engine.basket.algos)
        before = engine.session.clock.now_ns()
        engine.control.on_resume()
        assert [h for _, h in told] == [True, False]
        await engine.run_to("09:45")
        assert not [a for a in engine.basket.algos.values() if a.parent.status is ParentStatus.PAUSED]
        assert sent_after(engine, before)  # trading again
    finally:
        await engine.session.store.close()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zhixing")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_cli_parsers_queue_each_command(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(store.path)
    for argv in (
        ["halt", "--db", db, "--reason", "lunch"],
        ["resume", "--db", db],
        ["algo", "pause", "P7", "--db", db],
        ["algo", "resume", "P7", "--db", db],
        ["algo", "cancel", "P7", "--db", db],
    ):
        args = parse(argv)
        assert args.handler(args) == 0
    assert "queued halt as command #1" in capsys.readouterr().out
    pending = await store.pending_commands()
    assert all(ts > 0 for _, ts, _, _ in pending)
    assert [(i, c, a) for i, _, c, a in pending] == [
        (1, "halt", "lunch"),
        (2, "resume", ""),
        (3, "pause", "P7"),
        (4, "resume_algo", "P7"),
        (5, "cancel_algo", "P7"),
    ]


@pytest.mark.slow
async def test_commands_from_another_process_while_the_engine_polls_are_each_applied_once(
    store: StateStore,
) -> None:
    clock = SimClock(1_000)
    recorder = Recorder([])
    channel = ControlChannel(store, clock, recorder)
    await channel.poll()  # the engine is up (table created) before the operator types
    script = (
        "import sys; from pathlib import Path; from engine.control import queue_command\n"
        "for i in range(40): queue_command(Path(sys.argv[1]), 'pause', f'P{i}')\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(store.path), cwd=ROOT)
    while proc.returncode is None:
        await channel.poll()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=0.01)
    assert proc.returncode == 0
    await channel.poll()
    assert recorder.calls == [("pause", f"P{i}") for i in range(40)]
    assert [r.id for r, _ in channel.applied] == list(range(1, 41))
    assert rows(store.path, "SELECT COUNT(*) FROM control_commands WHERE done = 1") == [(40,)]
