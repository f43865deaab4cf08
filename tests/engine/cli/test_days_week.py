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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.cli.routes import Route
from zhixing.engine.cli.run_cmd import ConfiguredSession, RunResult, run_config
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.market import TradingCalendar, shanghai_ns, trading_date_of
from zhixing.engine.store import StateStore
from zhixing.engine.trading_day import DayStart
from zhixing.replay.data import load_snapshots
from zhixing.replay.sim_days import SimDays

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
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


def write_config(folder: Path, config: str = CONFIG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signal.py").write_text(SIGNAL, encoding="utf-8")
    path = folder / "zhixing.toml"
    path.write_text(config.format(data=SAMPLE.as_posix(), python=Path(sys.executable).as_posix()))
    return path


@dataclass(slots=True)
class Week:
    """One desk's week: its folder, its config and the broker that outlives its engine processes."""

    folder: Path
    opens_at: str = "00:00"
    config: str = CONFIG
    runs: list[RunResult] = field(default_factory=list)
    days: SimDays | None = None

    async def run(
        self, start: str, until: str, on_open: Callable[[ConfiguredSession], None] | None = None
    ) -> RunResult:
        """One engine process from ``start`` to ``until`` (``YYYY-MM-DD HH:MM``), on its own clock."""
        day, hhmm = start.split(" ")
        clock = SimClock(shanghai_ns(date.fromisoformat(day), hhmm))
        config = load_config(write_config(self.folder, self.config))
        if self.days is None:
            self.days = SimDays(
                load_snapshots(SAMPLE),
                TradingCalendar(),
                clock,
                cash=config.account.cash,
                positions=dict(config.account.positions),
                opens_at=self.opens_at,
                rules=config.market.rules(),
            )
        exchange, feed = self.days.attach(clock)
        route = Route(adapter=exchange, feed=feed)
        result = await run_config(config, clock=clock, until=until, route=route, on_open=on_open)
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


@pytest.mark.slow
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
    # client order ids never repeat across days and restarts: the exchange refuses a used one for good,
    # and it received exactly the journal's sent orders
    assert mixed.days is not None
    sent = sum(1 for rows in got.orders.values() for row in rows if row[-1] != "DENIED")
    assert mixed.days.exchange.stats.orders_received == sent

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


# ----------------------------------------------------------------------------------------- hostile cases
TWO_DAYS = WEEK[:2]


async def two_clean_days(folder: Path, *, opens_at: str = "00:00") -> Books:
    week = Week(folder, opens_at=opens_at)
    for day in TWO_DAYS:
        await week.run(at(day, "08:30"), at(day, "15:30"))
    return await week.books()


def assert_same_books(got: Books, want: Books) -> None:
    assert sorted(want.orders) == TWO_DAYS
    for day in TWO_DAYS:
        assert got.orders.get(day) == want.orders[day], day
    assert got.fills == want.fills
    assert got.journal_positions == want.journal_positions
    assert (got.broker_positions, got.broker_cash) == (want.broker_positions, want.broker_cash)


@pytest.mark.slow
async def test_a_restart_at_00_00_01_before_the_broker_has_rolled_sells_yesterdays_buys(
    tmp_path: Path,
) -> None:
    """The broker rolls its books at 08:00: at 00:00:01 it still lists yesterday's orders and says
    yesterday's buys are not sellable. The engine's T+1 is its own (the journal's fills of today)."""
    want = await two_clean_days(tmp_path / "clean", opens_at="08:00")
    mixed = Week(tmp_path / "mixed", opens_at="08:00")
    await mixed.run(at(WEEK[0], "08:30"), at(WEEK[0], "15:30"))
    seen: dict[str, int] = {}

    def look(run: ConfiguredSession) -> None:
        assert mixed.days is not None
        seen["engine"] = run.session.account.positions["600446.SH"].sellable
        seen["broker"] = mixed.days.exchange._account.positions["600446.SH"].sellable
        seen["listed"] = len(mixed.days.exchange._orders)

    await mixed.run(at(WEEK[1], "00:00:01"), at(WEEK[1], "15:30"), on_open=look)
    assert seen["broker"] == 0 < seen["engine"]  # not rolled yet; the engine's T+1 says sellable
    assert seen["listed"] > 0  # yesterday's orders still listed, and not adopted by today's parents
    assert_same_books(await mixed.books(), want)


def fail_first_start_of(day: date) -> Callable[[ConfiguredSession], None]:
    """The start of ``day`` fails half-way (after yesterday's orders and parents were ended, before T+1
    and the journal), once."""

    def install(run: ConfiguredSession) -> None:
        account = run.session.account
        roll = account.start_day
        failed: list[date] = []

        def start_day(today: date) -> None:
            if today == day and not failed:
                failed.append(today)
                raise OSError("crash in the middle of the start of day")
            roll(today)

        account.start_day = start_day  # type: ignore[method-assign]

    return install


@pytest.mark.slow
async def test_a_start_of_day_that_fails_half_way_is_retried_and_nothing_trades_before(
    tmp_path: Path,
) -> None:
    want = await two_clean_days(tmp_path / "clean")
    mixed = Week(tmp_path / "mixed")
    result = await mixed.run(at(WEEK[0], "08:30"), at(WEEK[1], "15:30"), on_open=fail_first_start_of(WEEK[1]))
    day = result.runner.session.day
    assert day is not None
    assert day.failures == 1
    assert [s.day for s in day.starts] == TWO_DAYS
    assert day.starts[1].started_ns == shanghai_ns(WEEK[1], "00:01")  # the retry, a minute later
    assert_same_books(await mixed.books(), want)


@pytest.mark.slow
async def test_an_engine_that_stops_during_a_failed_start_of_day_starts_it_at_the_restart(
    tmp_path: Path,
) -> None:
    want = await two_clean_days(tmp_path / "clean")
    mixed = Week(tmp_path / "mixed")
    first = await mixed.run(
        at(WEEK[0], "08:30"), at(WEEK[1], "00:00:30"), on_open=fail_first_start_of(WEEK[1])
    )
    assert first.runner.session.day is not None
    assert [s.day for s in first.runner.session.day.starts] == [WEEK[0]]
    await mixed.run(at(WEEK[1], "08:30"), at(WEEK[1], "15:30"))
    assert_same_books(await mixed.books(), want)


@pytest.mark.slow
async def test_a_machine_asleep_at_midnight_starts_the_day_with_its_first_job(tmp_path: Path) -> None:
    """The start-of-day timer never fires (the machine slept through midnight, the clock jumped): the
    day's first job starts the day before it runs."""
    want = await two_clean_days(tmp_path / "clean")
    mixed = Week(tmp_path / "mixed")

    def asleep(run: ConfiguredSession) -> None:
        assert run.session.day is not None
        run.session.day.stop()

    result = await mixed.run(at(WEEK[0], "08:30"), at(WEEK[1], "15:30"), on_open=asleep)
    day = result.runner.session.day
    assert day is not None
    assert [(s.day, s.started_ns) for s in day.starts][1] == (WEEK[1], shanghai_ns(WEEK[1], "09:00"))
    assert_same_books(await mixed.books(), want)


LATE_JOB = (
    CONFIG.split('[[jobs]]\nname = "rebalance"')[0]
    + """[[jobs]]
name = "late"
cron = "59 23 * * *"
kind = "execute"
targets = "targets.csv"
algo = "twap"
window_minutes = 30
"""
)


async def test_a_job_at_23_59_ends_with_its_day(tmp_path: Path) -> None:
    """A rebalance started at 23:59 with a window past midnight: its parents carry their day, end with
    it (told, not ok) and send nothing on the next day, whose start finds nothing of it left working."""
    week = Week(tmp_path, config=LATE_JOB)
    seen: list[tuple[str, str, bool]] = []

    def watch(run: ConfiguredSession) -> None:
        def before_reset(started: DayStart) -> None:
            seen.extend(
                (p.parent_id, o.status, p.status.value == "DONE")
                for o in run.runner.outcomes
                if o.job == "late"
                for r in run.runner.rebalances
                for p in r.parents
            )

        assert run.session.day is not None
        run.session.day.on_new_day.insert(0, before_reset)

    result = await week.run(at(WEEK[0], "08:30"), at(WEEK[1], "00:30"), on_open=watch)
    assert seen
    assert all(pid.startswith(f"{WEEK[0]:%Y%m%d}-late-1-") for pid, _, _ in seen)
    assert all(status == "failed" and done for _, status, done in seen)
    day = result.runner.session.day
    assert day is not None
    assert day.starts[-1].day == WEEK[1]
    assert WEEK[1] not in (await week.books()).orders  # nothing sent on the next day
