"""The simulated exchange over consecutive trading days: one broker that outlives the engine processes.

``SimDays`` keeps one ``SimExchange`` (its account, the client order ids it has seen) across a run of
trading days and plays one recorded day as each of them (``replay.data.shift_market``). On its clock it
closes each trading day at 15:00 (what still works expires, as day orders do) and opens the next trading
day at ``opens_at`` (default 00:00; ``"08:00"`` is a broker that rolls its books late, so an engine
restarted at 00:00:01 still sees yesterday's orders and T+1): the new day's data, everything held
sellable, the day's order and trade lists empty. Each day is charged and banded by ``rules`` for that
day (the run's dated rules, ``[market] status_file`` included).

An engine process that restarts runs on a new clock: ``attach(clock)`` catches up with the days passed
(closing and opening them in order) and returns the exchange and a feed on that clock, the route of a
``zhixing run``. An engine left running across days keeps the clock: the days open on it as it passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from zhixing.engine.clock import SimClock, TimerHandle
from zhixing.engine.market import MarketRules, TradingCalendar, shanghai_ns, trading_date_of
from zhixing.replay.data import MarketData, shift_market
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed

CLOSE = "15:00"


class SimDays:
    def __init__(
        self,
        recorded: MarketData,
        calendar: TradingCalendar,
        clock: SimClock,
        *,
        cash: int,
        positions: Mapping[str, int] | None = None,
        latency_ns: int = 20_000_000,
        opens_at: str = "00:00",
        rules: MarketRules | None = None,
    ) -> None:
        self.recorded = recorded
        self.calendar = calendar
        self.clock = clock
        self.opens_at = opens_at
        first = trading_date_of(clock.now_ns())
        if not calendar.is_trading_day(first):
            first = calendar.next_trading_day(first)
        self.day = first  # the trading day the exchange plays
        self.opened: list[date] = [first]
        self.closed: set[date] = set()
        self.exchange = SimExchange(
            shift_market(recorded, first),
            clock,
            calendar=calendar,
            rules=rules,  # the dated table with the user's statuses (None: the shipped table alone)
            latency_ns=latency_ns,
            cash=cash,
            positions=dict(positions or {}),
        )
        self.feed: RecordedFeed | None = None
        self._timer: TimerHandle | None = None
        self._arm()

    def attach(self, clock: SimClock) -> tuple[SimExchange, RecordedFeed]:
        """A new engine process on ``clock``: the days passed are closed and opened, and the exchange and
        a new feed run on ``clock`` from now on."""
        if self._timer is not None:
            self._timer.cancel()
        self.clock = clock
        self.exchange.use_clock(clock)
        self.catch_up()
        self.feed = RecordedFeed(self.exchange.market, self.exchange, clock)
        self._arm()
        return self.exchange, self.feed

    def catch_up(self) -> None:
        """Close the day and open the next ones whose time has come."""
        now = self.clock.now_ns()
        while True:
            if self.day not in self.closed and now >= shanghai_ns(self.day, CLOSE):
                self.exchange.expire_all()
                self.closed.add(self.day)
            following = self.calendar.next_trading_day(self.day)
            if now < shanghai_ns(following, self.opens_at):
                return
            if self.day not in self.closed:
                self.exchange.expire_all()
                self.closed.add(self.day)
            self._open(following)

    def _open(self, day: date) -> None:
        self.day = day
        self.opened.append(day)
        market = shift_market(self.recorded, day)
        self.exchange.open_day(market)
        if self.feed is not None:
            self.feed.play(market)

    def _arm(self) -> None:
        if self.day in self.closed:
            when = shanghai_ns(self.calendar.next_trading_day(self.day), self.opens_at)
        else:
            when = shanghai_ns(self.day, CLOSE)
        self._timer = self.clock.call_at(when, self._tick, "sim_days")

    def _tick(self) -> None:
        self.catch_up()
        self._arm()
