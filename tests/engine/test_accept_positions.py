"""``zhixing resume --accept-positions``: a position difference that persisted (a journal restored from a
backup, shares bought or sold at the terminal by hand) halts trading, and a resume alone would only halt
again at the next check. The operator, having looked at the broker, takes its quantities: only while
halted, only the position differences that persisted, journaled (the next start agrees), told."""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.test_freshness import SYM, ViewBroker, engine, later
from zhixing.engine.cli.ops_cmd import add_parsers
from zhixing.engine.clock import SimClock
from zhixing.engine.control import Command, EngineControl, queue_command
from zhixing.engine.freshness import position_differences
from zhixing.engine.inflight import InflightChecker
from zhixing.engine.oms import OrderManager
from zhixing.engine.reconcile import HALT_REASON, resync
from zhixing.engine.store import StateStore, schema


async def persisting(oms: OrderManager, broker: ViewBroker, checker: InflightChecker) -> None:
    """Ask the broker after each grace until the position difference persists (trading halts)."""
    clock = oms.clock
    assert isinstance(clock, SimClock)
    await resync(oms, broker)  # the first answer after a (re)connect; positions are asked by the checks
    for _ in range(oms.freshness.answers + 1):
        if oms.halted_reason is not None:
            return
        later(clock, oms.freshness.grace_ns)
        await checker.check()
    assert oms.halted_reason == HALT_REASON


@dataclass
class Halted:
    clock: SimClock
    oms: OrderManager
    store: StateStore
    checker: InflightChecker
    control: EngineControl
    alerts: list[tuple[str, str]]


async def halted_on_a_position(tmp_path: Path, local: int, broker_has: int) -> Halted:
    """The journal holds ``local`` shares, the broker ``broker_has`` on every answer: halted."""
    clock, broker, oms, store = await engine(tmp_path)
    assert oms.account is not None
    oms.account.load_position(SYM, local, 9_000, sellable=local)
    store.stage_position(SYM, local, local, 9_000)
    await store.commit()
    broker.position_view = {SYM: broker_has}
    alerts: list[tuple[str, str]] = []
    checker = InflightChecker(oms, broker, on_alert=lambda t, b: alerts.append((t, b)))
    # what the start-up comparison found (positions are compared at start; the checks then ask again)
    oms.freshness.observe([f"position {SYM}"], position_differences({SYM: local}, {SYM: broker_has}))
    await persisting(oms, broker, checker)
    control = EngineControl(oms, store, {}, on_alert=lambda t, b: alerts.append((t, b)))
    return Halted(clock, oms, store, checker, control, alerts)


async def test_the_brokers_position_is_taken_only_while_halted_journaled_and_told(tmp_path: Path) -> None:
    h = await halted_on_a_position(tmp_path, 1100, 1000)
    clock, oms, store, checker, control, alerts = h.clock, h.oms, h.store, h.checker, h.control, h.alerts
    assert oms.account is not None
    assert oms.freshness.persisted
    result = control.on_accept_positions()
    assert result.startswith("accepted 1 positions"), result
    assert f"{SYM}: 1100 -> 1000" in result
    assert oms.account.positions[SYM].quantity == 1000
    assert oms.account.positions[SYM].sellable == 1000  # 100 fewer shares: 100 fewer to sell
    assert oms.freshness.persisted == []
    assert alerts[-1][0] == "positions taken from the broker (operator)"
    await store.commit()
    assert (await store.load_positions())[SYM][0] == 1000  # a restart starts from it
    control.on_resume()
    assert oms.halted_reason is None
    for _ in range(4):  # the broker still shows 1000: it agrees now, nothing halts again
        later(clock, oms.freshness.grace_ns)
        await checker.check()
    assert oms.halted_reason is None
    await store.close()


async def test_more_shares_at_the_broker_are_taken_but_not_made_sellable(tmp_path: Path) -> None:
    """Shares the journal lacks were bought today at the earliest: T+1, not sellable today."""
    h = await halted_on_a_position(tmp_path, 1000, 1300)
    h.control.on_accept_positions()
    assert h.oms.account is not None
    pos = h.oms.account.positions[SYM]
    assert (pos.quantity, pos.sellable) == (1300, 1000)
    await h.store.close()


async def test_accepting_is_refused_while_trading_and_a_no_op_without_a_persisting_difference(
    tmp_path: Path,
) -> None:
    _, _, oms, store = await engine(tmp_path)
    assert oms.account is not None
    oms.account.load_position(SYM, 1100)
    control = EngineControl(oms, store, {})
    assert control.on_accept_positions().startswith("refused: only while halted")
    oms.halt("operator")
    # a difference seen once (a stale view) has not persisted: it is not the operator's to accept
    oms.freshness.observe([f"position {SYM}"], position_differences({SYM: 1100}, {SYM: 1000}))
    assert control.on_accept_positions() == "nothing to accept: no position difference persists"
    assert oms.account.positions[SYM].quantity == 1100
    await store.close()


def test_resume_accept_positions_queues_the_acceptance_before_the_resume(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with sqlite3.connect(db) as conn:
        for version in sorted(schema.MIGRATIONS):
            for statement in schema.MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    parser = argparse.ArgumentParser(prog="zhixing")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["resume", "--db", str(db), "--accept-positions"])
    assert args.handler(args) == 0
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT command FROM control_commands ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [Command.ACCEPT_POSITIONS.value, Command.RESUME.value]
    assert queue_command(db, Command.RESUME) == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["resume", "--accept-positions"])  # --db is required
