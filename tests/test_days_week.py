"""A week of trading days on one simulated exchange (``replay.sim_days``), jobs fired by ``zhixing run``
(``run_config`` on virtual clocks): the signal at 09:00 names each day's targets by the engine's trading
day, the rebalance at 09:30 sells what the targets drop (often what was bought the day before: T+1) and
buys the rest, the summary at 15:05.

The mixed week restarts between some days and keeps one engine running across others (over a weekend,
and from a Saturday start); it ends with books equal to a clean week (one engine process per day):
positions, cash, every day's orders and fills.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from engine.cli.routes import Route
from engine.cli.run_cmd import RunResult, run_config
from engine.clock import SimClock
from engine.config import load_config
from engine.market import TradingCalendar, shanghai_ns, trading_date_of
from engine.store import StateStore
from replay.data import load_snapshots
from replay.sim_days import SimDays

SAMPLE = Path(__file__).resolve().parents[1] / "replay" / "sample_data" / "snapshots_20211201"
WEEK = [date(2021, 12, 1), date(2021, 12, 2), date(2021, 12, 3), date(2021, 12, 6), date(2021, 12, 7)]
HELD = "600566.SH"

# each day's targets (5% each), chosen by the trading day the engine says it is
SIGNAL = """
import os, pathlib
day = os.environ["ZHIXING_TRADING_DAY"]
rotation = {
    "2021-12-01": ["600258.SH", "600446.SH"],
    "2021-12-02": ["600258.SH", "600103.SH"],
    "2021-12-03": ["600103.SH", "600446.SH"],
    "2021-12-06": ["600258.SH", "600446.SH"],
    "2021-12-07": ["600566.SH", "600446.SH"],
}
rows = "".join(f"{day},{s},0.05\\n" for s in rotation[day])
pathlib.Path("targets.csv").write_text("date,symbol,weight\\n" + rows, encoding="utf-8")
print("signal for", day)
"""

CONFIG = """
[account]
id = "8800123456"
cash_yuan = 2000000
positions = {{ "600566.SH" = 20000 }}

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"

[[jobs]]
name = "signal"
cron = "0 9 * * *"
kind = "signal"
command = ["{python}", "signal.py"]
timeout_s = 60

[[jobs]]
name = "rebalance"
cron = "30 9 * * *"
kind = "execute"
targets = "targets.csv"
algo = "twap"
window_minutes = 30

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def write_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signal.py").write_text(SIGNAL, encoding="utf-8")
    path = folder / "zhixing.toml"
    path.write_text(CONFIG.format(data=SAMPLE.as_posix(), python=Path(sys.executable).as_posix()))
    return path


@dataclass(slots=True)
class Week:
    """One desk's week: its folder, its config and the broker that outlives its engine processes."""

    folder: Path
    opens_at: str = "00:00"
    runs: list[RunResult] = field(default_factory=list)
    days: SimDays | None = None

    async def run(self, start: str, until: str) -> RunResult:
        """One engine process from ``start`` to ``until`` (``YYYY-MM-DD HH:MM``), on its own clock."""
        day, hhmm = start.split(" ")
        clock = SimClock(shanghai_ns(date.fromisoformat(day), hhmm))
        config = load_config(write_config(self.folder))
        if self.days is None:
            self.days = SimDays(
                load_snapshots(SAMPLE),
                TradingCalendar(),
                clock,
                cash=config.account.cash,
                positions=dict(config.account.positions),
                opens_at=self.opens_at,
            )
        exchange, feed = self.days.attach(clock)
        result = await run_config(config, clock=clock, until=until, route=Route(adapter=exchange, feed=feed))
        self.runs.append(result)
        return result

    async def books(self) -> Books:
        assert self.days is not None
        store = await StateStore.open(self.folder / "state" / "zhixing.db")
        try:
            orders = await store.load_orders()
            fills = await store.load_fills()
            positions = await store.load_positions()
        finally:
            await store.close()
        by_day: dict[date, list[tuple[object, ...]]] = {}
        for o in sorted(orders, key=lambda o: (o.ts_created, o.parent_id, o.symbol, o.side, o.price)):
            row = (o.ts_created, o.parent_id, o.symbol, o.side.value, o.price, o.quantity, o.filled_quantity)
            by_day.setdefault(trading_date_of(o.ts_created), []).append((*row, o.status.value))
        fill_rows = sorted(
            (f.ts_event, parent, f.symbol, f.side.value, f.price, f.quantity, f.fees) for f, parent in fills
        )
        account = self.days.exchange._account
        return Books(
            orders=by_day,
            fills=fill_rows,
            journal_positions={s: (q, c) for s, (q, _, c) in positions.items() if q},
            broker_positions={s: p.quantity for s, p in account.positions.items() if p.quantity},
            broker_cash=account.cash,
        )


@dataclass(slots=True)
class Books:
    orders: dict[date, list[tuple[object, ...]]]
    fills: list[tuple[object, ...]]
    journal_positions: dict[str, tuple[int, int]]
    broker_positions: dict[str, int]
    broker_cash: int


def at(day: date, hhmm: str) -> str:
    return f"{day.isoformat()} {hhmm}"


async def clean_week(folder: Path) -> Week:
    """One engine process per trading day, 08:30 to 15:30."""
    week = Week(folder)
    for day in WEEK:
        await week.run(at(day, "08:30"), at(day, "15:30"))
    return week


async def test_a_week_with_restarts_and_an_engine_running_across_days_ends_with_the_clean_books(
    tmp_path: Path,
) -> None:
    clean = await clean_week(tmp_path / "clean")
    mixed = Week(tmp_path / "mixed")
    # Wednesday to Thursday in one engine, a restart on Friday, then an engine started on the Saturday
    # that runs over the weekend into Monday and Tuesday
    across = await mixed.run(at(WEEK[0], "08:30"), at(WEEK[1], "15:30"))
    friday = await mixed.run(at(WEEK[2], "08:30"), at(WEEK[2], "15:30"))
    weekend = await mixed.run(at(date(2021, 12, 4), "10:00"), at(WEEK[4], "15:30"))

    want, got = await clean.books(), await mixed.books()
    assert sorted(want.orders) == WEEK  # every trading day traded, nothing on the weekend
    for day in WEEK:
        assert got.orders.get(day) == want.orders[day], day
    assert got.fills == want.fills
    assert got.journal_positions == want.journal_positions
    assert got.broker_positions == want.broker_positions
    assert got.broker_cash == want.broker_cash
    assert {s: q for s, (q, _) in got.journal_positions.items()} == got.broker_positions

    # every day's jobs were fired and ok, also in the engines that ran across days
    fired = [when for r in (across, friday, weekend) for _, when in r.fired]
    assert sorted({trading_date_of(w) for w in fired}) == WEEK
    assert all(o.ok for r in mixed.runs for o in r.runner.outcomes), [
        (o.job, o.status, o.detail) for r in mixed.runs for o in r.runner.outcomes if not o.ok
    ]
    # the engine that ran overnight sold on Thursday what it bought on Wednesday (T+1), in full
    sold = filled(got.orders[WEEK[1]], "600446.SH", "SELL")
    assert sold == filled(got.orders[WEEK[0]], "600446.SH", "BUY") > 0
    assert not got.broker_positions.get("600103.SH")  # bought Thursday, sold Monday
    assert HELD in got.broker_positions  # sold Wednesday, bought back Tuesday
    # no parent id is used on two days
    parents_by_day = {day: {row[1] for row in rows} for day, rows in got.orders.items()}
    for day, parents in parents_by_day.items():
        assert all(str(p).startswith(f"{day:%Y%m%d}-") for p in parents), parents
    # the day started once per trading day in each engine, Saturday's start at the restart only
    starts = [(s.day, s.new_day) for r in mixed.runs for s in _starts(r)]
    assert [d for d, _ in starts] == [WEEK[0], WEEK[1], WEEK[2], date(2021, 12, 4), WEEK[3], WEEK[4]]
    assert all(new for _, new in starts)


def filled(rows: list[tuple[object, ...]], symbol: str, side: str) -> int:
    return sum(int(str(row[6])) for row in rows if row[2] == symbol and row[3] == side)


def _starts(result: RunResult) -> list:  # type: ignore[type-arg]
    day = result.runner.session.day
    assert day is not None
    return list(day.starts)
