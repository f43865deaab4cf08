"""zhixing as a library for strategy scripts (async): ``connect`` / ``connect_replay`` -> ``AsyncClient``.

A client drives the one engine of the composition root (``zhixing.assembly``): the same journal, market
rules (lots, STAR 200+1, tick, price bands, T+1), risk gate and OrderManager as the CLI.

- ``connect(config)`` opens the configured route as ``zhixing run`` does (``engine.cli.run_cmd.
  open_configured``: the journal verified, the account reconciled, the instance lock held until
  ``close``). A ``sim`` route's recorded day and a replay run on a virtual clock.
- ``connect_replay(data=DIR, cash=..., positions=...)`` opens the simulated exchange over recorded
  snapshots (``replay.harness.open_session``) with a virtual clock starting at ``start``.

Time on a virtual clock moves only when the script asks: ``await client.run_until("10:00")`` or a
handle's ``wait()``. On a live route it is the wall clock; the same calls then sleep.

Orders take 掘金's names and semantics, limit orders only (market orders: issue 15 item 3):

- ``price`` in yuan (as 掘金); ``None``: a marketable limit at the opposite best quote (ask for a buy,
  bid for a sell, the last price when that side is empty);
- ``percent`` is a fraction of total asset (0.1 = 10%), as 掘金's ``order_percent``;
- sizes are rounded down to the board's lot grid of the day (``buy_min + k * buy_step``: 100s on the
  main boards, 200 then steps of 1 on STAR), as 掘金 rounds ``order_value`` / ``order_percent`` to whole
  lots; a sell that would leave less than one lot sells the odd tail too (the exchange's rule for odd
  lots), and sells are clipped to the T+1 sellable quantity;
- a denied order raises ``OrderDenied`` (its ``code`` is the ``DenialCode``); a size that rounds to
  nothing raises ``ParameterError``;
- ``tag=`` keeps the script's own id on the order (``orders(tag=...)`` filters, ``zhixing status`` shows it).

``submit_file`` sends a 掘金 order or cancel file by ``zhixing submit``'s rules (``engine.cli.gm_files``),
checked whole first. ``trades()`` lists the day's fills journaled before this session (read at connect)
and then this session's.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zhixing.algos.base import ExecAlgo
from zhixing.algos.basket import Basket
from zhixing.algos.rebalance import Rebalance
from zhixing.assembly import Engine
from zhixing.engine.cli.gm_files import TAG_PREFIX, Sent, read_checked, send_checked
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import OrderType, Side, order_type_named
from zhixing.engine.errors import ParameterError, ZhixingError
from zhixing.engine.events import OrderFilled, SubmitOrder
from zhixing.engine.market import price_limits, shanghai_ns, trading_date_of
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder
from zhixing.engine.portfolio.planner import (
    Holding,
    MarketRef,
    order_quantity,
    plan_rebalance,
    targets_liquidate_all,
    targets_sell_fraction,
    targets_sell_where,
)
from zhixing.engine.portfolio.targets import Target, TargetKind
from zhixing.engine.reasons import DenialCode, Unfilled, UnfilledCode
from zhixing.engine.trading_day import day_start_ns
from zhixing.engine.units import price_from_yuan

if TYPE_CHECKING:
    from zhixing.engine.cli.routes import Route
    from zhixing.engine.cli.run_cmd import ConfiguredSession
    from zhixing.engine.instance_lock import InstanceLock
    from zhixing.remote import RemoteClient
    from zhixing.replay.data import MarketData
    from zhixing.replay.harness import ReplaySession

__all__ = [
    "AlgoHandle",
    "AsyncClient",
    "Cash",
    "OrderDenied",
    "Position",
    "Progress",
    "Sent",
    "Trade",
    "connect",
    "connect_replay",
]

Yuan = float | str | Decimal


class OrderDenied(ZhixingError):
    """An order the engine refused before any broker saw it: ``code`` says why, ``order`` is the record."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"{order.symbol} {order.side} {order.quantity} denied: {order.reason}")
        self.order = order
        self.code: DenialCode | None = order.denial


@dataclass(frozen=True, slots=True)
class Cash:
    """Milli-yuan: ``available`` = ``total`` - ``frozen``; ``total_asset`` values positions at the latest
    price (last, else mid, else their average cost)."""

    total: int
    frozen: int
    available: int
    market_value: int
    total_asset: int


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: int
    sellable: int  # T+1: held since before today, less what sells hold or sold
    avg_cost: int  # milli-yuan per share
    price: int  # the valuation price (milli-yuan)
    market_value: int


@dataclass(frozen=True, slots=True)
class Trade:
    client_order_id: str
    trade_id: str
    symbol: str
    side: Side
    price: int  # milli-yuan
    quantity: int
    fees: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Progress:
    quantity: int  # shares the handle's parents ask for (a rebalance: those started so far)
    filled: int
    working: int
    done: bool
    paused: bool


class _Driver(Protocol):
    engine: Engine

    async def advance(self, until_ns: int, done: Callable[[], bool]) -> None: ...

    async def watch(self, symbols: list[str]) -> None: ...

    async def reference(self, symbol: str) -> MarketRef: ...

    async def close(self) -> None: ...


class _ReplayDriver:
    def __init__(self, session: ReplaySession, scratch: Path | None) -> None:
        self.session = session
        self.engine = session.engine
        self.scratch = scratch  # the temporary folder of a journal nobody named: removed at close

    async def advance(self, until_ns: int, done: Callable[[], bool]) -> None:
        await self.session.run(until_ns, done, expire=False)
        clock = self.session.clock
        if not done():
            clock.advance_to(max(until_ns, clock.now_ns()))

    async def watch(self, symbols: list[str]) -> None:
        return None  # the exchange quotes every recorded symbol

    async def reference(self, symbol: str) -> MarketRef:
        return quote_reference(self.engine, symbol)

    async def close(self) -> None:
        try:
            await self.session.store.close()
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)


class _ConfiguredDriver:
    def __init__(self, run: ConfiguredSession, lock: InstanceLock) -> None:
        self.run = run
        self.lock = lock
        self.engine = run.session.engine

    async def advance(self, until_ns: int, done: Callable[[], bool]) -> None:
        session, clock = self.run.session, self.run.clock
        while clock.now_ns() < until_ns:
            if done() and not session.oms.working_orders():
                return
            if isinstance(clock, SimClock):
                if not clock.step(until_ns=until_ns):
                    clock.advance_to(until_ns)
            else:
                await clock.sleep_until(min(until_ns, clock.now_ns() + 1_000_000_000))
            await session.oms.flush()
            await session.poll()
            await session.oms.flush()

    async def watch(self, symbols: list[str]) -> None:
        session = self.run.session
        new = sorted(set(symbols) - session.symbols)
        if new:
            await session.feed.subscribe(new)
            session.book.watch(new)
            session.symbols.update(new)

    async def reference(self, symbol: str) -> MarketRef:
        """The feed's reference (as ``zhixing rebalance --config`` plans): a quote may not have come yet."""
        await self.watch([symbol])
        return await self.run.runner.reference(symbol)

    async def close(self) -> None:
        try:
            await self.run.close()
        finally:
            self.lock.release()


class AlgoHandle:
    """Algorithm parents started together (one algo order, a basket, or a rebalance)."""

    def __init__(
        self, client: AsyncClient, algos: Iterable[ExecAlgo] = (), rebalance: Rebalance | None = None
    ):
        self._client = client
        self._algos = list(algos)
        self.rebalance = rebalance

    @property
    def algos(self) -> list[ExecAlgo]:
        if self.rebalance is not None:
            return list(self.rebalance.basket.algos.values())
        return list(self._algos)

    @property
    def done(self) -> bool:
        if self.rebalance is not None:
            return self.rebalance.done
        return all(a.done for a in self._algos)

    def progress(self) -> Progress:
        algos = self.algos
        return Progress(
            quantity=sum(a.parent.quantity for a in algos),
            filled=sum(a.filled_quantity for a in algos),
            working=sum(a.working_quantity for a in algos),
            done=self.done,
            paused=any(not a.done for a in algos) and all(a.paused for a in algos if not a.done),
        )

    def pause(self) -> None:
        for algo in self.algos:
            if not algo.done:
                algo.pause(Unfilled(UnfilledCode.PAUSED, "paused by the script"))

    def resume(self) -> None:
        for algo in self.algos:
            if algo.paused:
                algo.resume()

    def cancel(self) -> None:
        """Stop every parent and cancel its working children (a rebalance starts no buy leg after)."""
        if self.rebalance is not None:  # its window ends now: no buy leg is sized after the sells end
            self.rebalance.end_ns = min(self.rebalance.end_ns, self._client.now_ns())
        for algo in self.algos:
            if not algo.done:
                algo.cancel(Unfilled(UnfilledCode.STOPPED, "cancelled by the script"))

    async def wait(self, until: str | int | None = None) -> Progress:
        """Let time run until every parent is done (or ``until``: ``HH:MM[:SS]`` today, or ns)."""
        client = self._client
        end = client._end_ns if until is None else client._at(until)
        await client._driver.advance(end, lambda: self.done)
        return self.progress()


class AsyncClient:
    """One open session (see the module docstring). Close it (``async with`` does)."""

    def __init__(self, driver: _Driver, end_ns: int) -> None:
        self._driver = driver
        self.engine = driver.engine
        self._end_ns = end_ns
        self._basket = Basket(self.engine.ctx)
        self.engine.add_basket(self._basket)
        self._basket.start()
        self._seq = 0
        self._journal_fills: list[OrderFilled] = []  # the day's fills before this session (load_journal)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._driver.close()

    # --------------------------------------------------------------------------------- time
    def now_ns(self) -> int:
        return self.engine.clock.now_ns()

    @property
    def today(self) -> date:
        return trading_date_of(self.now_ns())

    def _at(self, when: str | int) -> int:
        if isinstance(when, int):
            return when
        try:
            parsed = time.fromisoformat(when)
        except ValueError:
            raise ParameterError(f"not a time HH:MM[:SS]: {when!r}", name="time", value=when) from None
        return shanghai_ns(self.today, parsed.isoformat())

    async def run_until(self, when: str | int) -> None:
        """Let the session's time run to ``when`` (``HH:MM[:SS]`` today, or ns)."""
        await self._driver.advance(self._at(when), lambda: False)

    # --------------------------------------------------------------------------------- account
    def _price(self, symbol: str, fallback: int = 0) -> int:
        quote = self.engine.quotes.latest(symbol)
        if quote is None:
            return fallback
        return quote.last or quote.mid or fallback

    def positions(self) -> list[Position]:
        out = []
        for symbol, pos in sorted(self.engine.account.positions.items()):
            if pos.quantity <= 0:
                continue
            price = self._price(symbol, pos.avg_cost)
            out.append(
                Position(
                    symbol=symbol,
                    quantity=pos.quantity,
                    sellable=pos.sellable,
                    avg_cost=pos.avg_cost,
                    price=price,
                    market_value=price * pos.quantity,
                )
            )
        return out

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions() if p.symbol == symbol), None)

    def cash(self) -> Cash:
        account = self.engine.account
        value = sum(p.market_value for p in self.positions())
        return Cash(
            total=account.cash,
            frozen=account.frozen,
            available=account.available_cash,
            market_value=value,
            total_asset=account.cash + value,
        )

    def orders(self, tag: str | None = None) -> list[Order]:
        """Today's orders (the engine's live records: their status moves as the broker answers); with
        ``tag``, only those an ``order_*(..., tag=)`` call (or a file's ``gm:<sid>``) tagged so."""
        start = day_start_ns(self.today)
        return [
            o
            for o in self.engine.oms.orders.values()
            if o.ts_created >= start and (tag is None or o.tag == tag)
        ]

    def working_orders(self) -> list[Order]:
        return self.engine.oms.working_orders()

    def trades(self) -> list[Trade]:
        """Today's fills: the journal's from before this session (loaded at connect), then this
        session's, in order; a fill journaled and seen again is listed once."""
        start = day_start_ns(self.today)
        seen: set[tuple[str, str]] = set()
        out = []
        for f in [*self._journal_fills, *self.engine.fills]:
            key = (f.client_order_id, f.trade_id)
            if f.ts_event < start or key in seen:
                continue
            seen.add(key)
            out.append(
                Trade(
                    client_order_id=f.client_order_id,
                    trade_id=f.trade_id,
                    symbol=f.symbol,
                    side=f.side,
                    price=f.price,
                    quantity=f.quantity,
                    fees=f.fees,
                    ts_ns=f.ts_event,
                )
            )
        return out

    # --------------------------------------------------------------------------------- orders
    async def _limit_price(self, symbol: str, side: Side, price: Yuan | None) -> int:
        if price is not None:
            return price_from_yuan(_finite("price", price))
        await self._driver.watch([symbol])
        quote = self.engine.quotes.latest(symbol)
        if quote is not None:
            best = quote.ask_price if side is Side.BUY else quote.bid_price
            if best > 0:
                return best
            if quote.last > 0:
                return quote.last
        ref = await self._driver.reference(symbol)
        if ref.price > 0:
            return ref.price
        raise ParameterError(f"{symbol}: no quote to price a marketable limit; give a price", name="price")

    async def _send(
        self,
        symbol: str,
        side: Side,
        volume: int,
        price: int,
        kind: OrderType,
        bound: Yuan | None,
        tag: str = "",
    ) -> Order:
        """``price``: a limit order's price. A market order (``kind``) is sent with the user's ``bound``
        (its protection price) or 0, which the market rules turn into the day's limit-up / limit-down bound
        (what a buy reserves cash at); ``price`` then only sized it."""
        if tag.startswith(TAG_PREFIX):
            raise ParameterError(
                f"tag {tag!r}: {TAG_PREFIX!r} tags are a 掘金 file's sids (submit_file)",
                name="tag",
                value=tag,
            )
        if kind.is_market:
            price = price_from_yuan(bound) if bound is not None else 0
        order = self.engine.oms.submit(
            SubmitOrder(symbol=symbol, side=side, quantity=volume, price=price, order_type=kind, tag=tag)
        )
        await self.engine.oms.flush()
        if order.denial is not None:
            raise OrderDenied(order)
        return order

    def _held(self, symbol: str) -> tuple[int, int]:
        pos = self.engine.account.positions.get(symbol)
        return (0, 0) if pos is None else (pos.quantity, pos.sellable)

    def _sized(self, symbol: str, side: Side, volume: int) -> int:
        inst = self.engine.rules.instrument(symbol)
        held, sellable = self._held(symbol)
        quantity = order_quantity(inst, side, volume, held, sellable)
        if quantity <= 0:
            raise ParameterError(
                f"{symbol} {side} {volume}: rounds to no shares on the lot grid "
                f"(buy_min {inst.buy_min}, step {inst.buy_step}) or nothing sellable",
                name="volume",
                value=volume,
            )
        return quantity

    async def order_volume(
        self,
        symbol: str,
        volume: int,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """Buy or sell ``volume`` shares (rounded down to the lot grid; sells clipped to T+1 sellable)."""
        volume = _shares("volume", volume)
        limit = await self._limit_price(symbol, side, price)
        return await self._send(
            symbol, side, self._sized(symbol, side, volume), limit, _kind(order_type), price, tag
        )

    async def order_value(
        self,
        symbol: str,
        value: Yuan,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """Buy or sell ``value`` yuan's worth at the limit price: volume = value / price, rounded down."""
        limit = await self._limit_price(symbol, side, price)
        quantity = self._sized(symbol, side, price_from_yuan(_finite("value", value)) // limit)
        return await self._send(symbol, side, quantity, limit, _kind(order_type), price, tag)

    async def order_percent(
        self,
        symbol: str,
        percent: float,
        side: Side,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """Buy or sell ``percent`` (a fraction, 0.1 = 10%) of total asset's worth of ``symbol``."""
        value = _fraction(percent) * self.cash().total_asset
        limit = await self._limit_price(symbol, side, price)
        quantity = self._sized(symbol, side, int(value) // limit)
        return await self._send(symbol, side, quantity, limit, _kind(order_type), price, tag)

    async def order_target_volume(
        self,
        symbol: str,
        volume: int,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """Buy or sell the difference between ``volume`` and the shares held now."""
        volume = _shares("volume", volume)
        held, _ = self._held(symbol)
        if volume == held:
            raise ParameterError(f"{symbol}: already holds {held}", name="volume", value=volume)
        side = Side.BUY if volume > held else Side.SELL
        limit = await self._limit_price(symbol, side, price)
        quantity = self._sized(symbol, side, abs(volume - held))
        return await self._send(symbol, side, quantity, limit, _kind(order_type), price, tag)

    async def order_target_value(
        self,
        symbol: str,
        value: Yuan,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """To ``value`` yuan held in ``symbol`` (valued at the limit price)."""
        buy_price = await self._limit_price(symbol, Side.BUY, price)
        target = price_from_yuan(_finite("value", value)) // buy_price
        return await self.order_target_volume(symbol, target, price, order_type, tag)

    async def order_target_percent(
        self,
        symbol: str,
        percent: float,
        price: Yuan | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        tag: str = "",
    ) -> Order:
        """To ``percent`` (a fraction) of total asset held in ``symbol``."""
        value = _fraction(percent) * self.cash().total_asset
        limit = await self._limit_price(symbol, Side.BUY, price)
        return await self.order_target_volume(symbol, int(value) // limit, price, order_type, tag)

    def cancel(self, order: Order | str) -> bool:
        """Cancel one order (or its client order id); False when nothing is left to cancel."""
        return self.engine.oms.cancel(order if isinstance(order, str) else order.client_order_id)

    def cancel_all(self) -> list[str]:
        """Cancel every working order; the ids cancelled."""
        return self.engine.oms.cancel_all()

    async def close_all(self) -> list[Order]:
        """Sell every sellable share at the best bid (a marketable limit), one order per holding."""
        out = []
        for pos in self.positions():
            if pos.sellable > 0:
                out.append(await self.order_volume(pos.symbol, pos.sellable, Side.SELL))
        return out

    # --------------------------------------------------------------------------------- composite
    def holdings(self) -> list[Holding]:
        return [Holding(symbol=p.symbol, quantity=p.quantity, sellable=p.sellable) for p in self.positions()]

    async def rebalance(
        self,
        targets: Mapping[str, float] | list[Target],
        *,
        end: str | int | None = None,
        algo: str = "twap",
        params: Mapping[str, str] | None = None,
        liquidate_unlisted: bool = True,
        min_trade_value: Yuan = 0,
    ) -> AlgoHandle:
        """To ``targets`` (symbol -> fraction of total asset, or ``Target`` rows): sells first, then buys
        sized from the confirmed cash, each leg worked by ``algo`` until ``end`` (default: the session's
        end). Holdings not listed are sold unless ``liquidate_unlisted`` is False."""
        rows = (
            targets
            if isinstance(targets, list)
            else [
                Target(symbol=s, kind=TargetKind.WEIGHT, weight=Decimal(str(w))) for s, w in targets.items()
            ]
        )
        holdings = self.holdings()
        symbols = sorted({t.symbol for t in rows} | {h.symbol for h in holdings})
        await self._driver.watch(symbols)
        engine = self.engine
        plan = plan_rebalance(
            targets=rows,
            holdings=holdings,
            cash=engine.account.available_cash,
            market={s: await self._driver.reference(s) for s in symbols},
            fees=engine.fees_today(),
            min_trade_value=price_from_yuan(min_trade_value),
            liquidate_unlisted=liquidate_unlisted,
            instrument=engine.rules.instrument,
        )
        now = self.now_ns()

        def on_parent(parent: ParentOrder) -> None:
            parent.created_ns = self.now_ns()
            engine.store.stage_parent(parent.to_row())

        rebalance = Rebalance(
            engine.ctx,
            plan,
            account=engine.account,
            start_ns=now,
            end_ns=self._end_ns if end is None else self._at(end),
            algo=algo,
            params=dict(params or {}),
            fees=engine.fees_today(),
            instrument=engine.rules.instrument,
            id_prefix=await self._prefix("rebalance"),
            on_parent=on_parent,
        )
        engine.add_basket(rebalance.basket)
        rebalance.start()
        await engine.store.commit()
        await engine.oms.flush()
        return AlgoHandle(self, rebalance=rebalance)

    async def liquidate(self, **options: Any) -> AlgoHandle:
        """Sell every holding (through ``rebalance``'s algorithm and window options)."""
        return await self.rebalance(
            targets_liquidate_all(self.holdings()), liquidate_unlisted=False, **options
        )

    async def sell_fraction(self, fraction: float, **options: Any) -> AlgoHandle:
        """Sell ``fraction`` (0..1) of every holding, rounded down to the lot grid."""
        targets = targets_sell_fraction(
            self.holdings(), Decimal(str(fraction)), instrument=self.engine.rules.instrument
        )
        return await self.rebalance(targets, liquidate_unlisted=False, **options)

    async def sell_where(self, predicate: Callable[[str], bool], **options: Any) -> AlgoHandle:
        """Sell every holding whose symbol ``predicate`` accepts (e.g. by a market cap the script has)."""
        targets = targets_sell_where(self.holdings(), predicate)
        return await self.rebalance(targets, liquidate_unlisted=False, **options)

    # --------------------------------------------------------------------------------- algorithms
    async def _prefix(self, name: str) -> str:
        lead = f"{self.today:%Y%m%d}-api-{name}-"
        known = {str(row["parent_id"]) for row in await self.engine.store.load_parents()}
        known.update(self.engine.algos)
        self._seq = (
            max([self._seq, *(int(p[len(lead) :].split("-")[0]) for p in known if _numbered(p, lead))]) + 1
        )
        return f"{lead}{self._seq}-"

    async def algo(
        self,
        algo: str,
        orders: Mapping[str, int] | list[tuple[str, Side, int]],
        side: Side | None = None,
        *,
        start: str | int | None = None,
        end: str | int | None = None,
        limit: Yuan | None = None,
        **params: object,
    ) -> AlgoHandle:
        """Parents worked by ``algo`` (twap, vwap, pov, iceberg, chase, ...): ``orders`` as symbol ->
        shares with one ``side``, or (symbol, side, shares) rows; ``params`` the algorithm's own."""
        from zhixing.algos.registry import ALGOS

        if algo not in ALGOS:
            raise ParameterError(
                f"unknown algo {algo!r}; known: {', '.join(sorted(ALGOS))}", name="algo", value=algo
            )
        text = {k: str(v) for k, v in params.items()}
        ALGOS[algo].params_type.parse(text, algo=algo)
        if isinstance(orders, Mapping):
            if side is None:
                raise ParameterError("give side= with a symbol -> shares mapping", name="side")
            rows = [(s, side, q) for s, q in orders.items()]
        else:
            rows = list(orders)
        begin = self.now_ns() if start is None else max(self.now_ns(), self._at(start))
        finish = self._end_ns if end is None else self._at(end)
        prefix = await self._prefix(algo)
        parents = [
            ParentOrder(
                parent_id=f"{prefix}{i}",
                symbol=symbol,
                side=row_side,
                quantity=quantity,
                start_ns=begin,
                end_ns=finish,
                algo=algo,
                limit_price=0 if limit is None else price_from_yuan(limit),
                params=dict(text),
                created_ns=self.now_ns(),
            )
            for i, (symbol, row_side, quantity) in enumerate(rows, start=1)
        ]
        await self._driver.watch(sorted({p.symbol for p in parents}))
        algos = []
        for parent in parents:
            self.engine.store.stage_parent(parent.to_row())
            algos.append(self._basket.add(parent))
        await self.engine.store.commit()
        await self.engine.oms.flush()
        return AlgoHandle(self, algos)

    async def twap(self, orders: Any, side: Side | None = None, **options: Any) -> AlgoHandle:
        return await self.algo("twap", orders, side, **options)

    async def vwap(self, orders: Any, side: Side | None = None, **options: Any) -> AlgoHandle:
        return await self.algo("vwap", orders, side, **options)

    async def pov(self, orders: Any, side: Side | None = None, **options: Any) -> AlgoHandle:
        return await self.algo("pov", orders, side, **options)

    async def iceberg(self, orders: Any, side: Side | None = None, **options: Any) -> AlgoHandle:
        return await self.algo("iceberg", orders, side, **options)

    async def chase(self, orders: Any, side: Side | None = None, **options: Any) -> AlgoHandle:
        return await self.algo("chase", orders, side, **options)

    # --------------------------------------------------------------------------------- files, journal
    async def submit_file(self, path: str | Path) -> list[Sent]:
        """A 掘金 order file or cancel file (``zhixing submit``'s rules, ``engine.cli.
        gm_files``): every row checked first (the file alone, then against the session: sellable,
        the day's limits, sids not sent before, the orders a cancel names), then all sent; one
        ``Sent`` per row (its ``order`` the engine's live record). A bad row raises ``InputError`` naming
        the file, row and field, and nothing is sent; a file of another kind (targets, orders,
        positions) is refused naming what it is and the call that takes it. A row's ``sid`` is kept as
        the order's tag ``gm:<sid>`` (``orders(tag="gm:s1")``; a cancel file names it)."""
        account_id = self.engine.settings.account_id
        if not account_id:
            raise ParameterError(
                "this session has no account id to check a file's account_id against; "
                "open it with connect_replay(..., account_id=...) or a config's [account] id",
                name="account_id",
            )
        gm = read_checked(path, account_id)
        symbols = sorted({o.symbol for o in gm.orders})
        await self._driver.watch(symbols)
        quotes = self.engine.quotes
        if not all(quotes.latest(s) for s in symbols):  # the risk gate prices every order against one
            await self._driver.advance(self._end_ns, lambda: all(quotes.latest(s) for s in symbols))
        account = self.engine.account
        return await send_checked(
            self.engine.oms,
            gm,
            instrument=self.engine.rules.instrument,
            sellable=lambda symbol: account.position(symbol).sellable,
            reference=self._driver.reference,
        )

    async def load_journal(self) -> None:
        """The day's fills journaled before this session opened (``StateStore.load_fills``, as the
        account's T+1 load reads them), for ``trades``; ``connect`` and ``connect_replay`` call it."""
        start = day_start_ns(self.today)
        seen = {(f.client_order_id, f.trade_id) for f in self.engine.fills}
        self._journal_fills = [
            fill
            for fill, _ in await self.engine.store.load_fills()
            if fill.ts_event >= start and (fill.client_order_id, fill.trade_id) not in seen
        ]


def quote_reference(engine: Engine, symbol: str) -> MarketRef:
    """A planner's reference from the engine's latest quote (its band from the day's rules when the
    quote has none); price 0 (no price: the planner skips the name) before any quote."""
    quote = engine.quotes.latest(symbol)
    if quote is None:
        return MarketRef(symbol=symbol, price=0)
    low, high = quote.low_limit, quote.high_limit
    if (low <= 0 or high <= 0) and quote.prev_close > 0:
        low, high = price_limits(engine.rules.instrument(symbol), quote.prev_close)
    return MarketRef(
        symbol=symbol,
        price=quote.last or quote.mid or quote.prev_close,
        prev_close=quote.prev_close,
        high_limit=high,
        low_limit=low,
    )


def _numbered(parent_id: str, lead: str) -> bool:
    return parent_id.startswith(lead) and parent_id[len(lead) :].split("-")[0].isdigit()


def _fraction(percent: float) -> Decimal:
    value = Decimal(str(_finite("percent", percent)))
    if not Decimal(0) <= value <= Decimal(1):
        raise ParameterError(
            f"a fraction in [0, 1] (0.1 = 10%), got {percent}", name="percent", value=percent
        )
    return value


def _finite(name: str, value: Yuan | float) -> Yuan | float:
    """A number from a script: an int or a finite float (never bool, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value!r}", name=name, value=value)
    return value


def _shares(name: str, value: object) -> int:
    """A share count from a script: a whole ``int`` >= 0 (150.7 is refused, not truncated at the fill)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParameterError(
            f"{name} must be a whole number of shares >= 0, got {value!r}", name=name, value=value
        )
    return value


# ------------------------------------------------------------------------------------- opening
async def connect_replay(
    data: str | Path | MarketData,
    *,
    cash: Yuan = 0,
    positions: Mapping[str, int] | None = None,
    start: str = "09:30",
    end: str = "15:00",
    db: str | Path | None = None,
    symbols: list[str] | None = None,
    account_id: str = "",
) -> AsyncClient:
    """The simulated exchange over the recorded snapshots in ``data`` (one day), with ``cash`` yuan and
    ``positions`` (symbol -> shares, all sellable: bought before the day). The virtual clock starts at
    ``start``; handles wait at most until ``end``. ``db``: the journal (default: a temporary one,
    removed at ``close``; named again, ``trades()`` lists the day's fills already in it, while the account
    starts again from ``cash`` and ``positions``: no orders or positions are restored from it).
    ``account_id``: the replayed account's id (a 掘金 file's ``account_id`` must be it).
    ``data`` may be loaded already (``replay.data.load_snapshots``: one load for many sessions)."""
    import tempfile

    from zhixing.replay.data import MarketData, load_snapshots
    from zhixing.replay.harness import ReplayConfig, open_session

    market = data if isinstance(data, MarketData) else load_snapshots(Path(data), symbols=symbols)
    scratch = None
    if db is None:
        scratch = Path(tempfile.mkdtemp(prefix="zhixing-api-"))
        db = scratch / "journal.db"
    config = ReplayConfig(
        cash=price_from_yuan(cash),
        positions=dict(positions or {}),
        db_path=Path(db),
        account_id=account_id,
    )
    day = market.trade_date
    try:
        session = await open_session(market, config, shanghai_ns(day, start))
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    session.clock.advance_to(shanghai_ns(day, start))
    client = AsyncClient(_ReplayDriver(session, scratch), shanghai_ns(day, end))
    try:
        await client.load_journal()
    except BaseException:
        await client.close()
        raise
    return client


async def connect(
    config: str | Path = "zhixing.toml",
    *,
    start: str = "09:15",
    until: str | None = None,
    route: Route | None = None,
    clock: Any = None,
    calendar: Any = None,
) -> AsyncClient | RemoteClient:
    """The configured route through the one engine, as ``zhixing run`` opens it (the instance lock is
    held until ``close``). While ``zhixing run`` holds the account's lock: a ``zhixing.remote.RemoteClient``,
    whose calls reach that running engine through its journal. ``route``, ``clock`` and ``calendar`` are
    for tests (as ``open_configured``'s). The 掘金 (gm) route or feed needs gm's ``run()`` on the main
    thread: refused here (use ``zhixing run``)."""
    from zhixing.engine.cli.routes import load_checked
    from zhixing.engine.cli.run_cmd import open_configured
    from zhixing.engine.errors import ConfigError
    from zhixing.engine.instance_lock import AlreadyRunning, InstanceLock

    loaded = load_checked(Path(config))
    if "gm" in (loaded.route.kind, loaded.feed.kind):  # a gm feed of the file route too (feed-only session)
        key = "route.kind" if loaded.route.kind == "gm" else "feed.kind"
        raise ConfigError(f"{loaded.path}: key '{key}': 'gm' runs under gm's run(); use zhixing run")
    loaded.store.path.parent.mkdir(parents=True, exist_ok=True)
    lock = InstanceLock.for_store(loaded.store.path)
    try:
        lock.acquire()
    except AlreadyRunning:  # ``zhixing run`` holds the account: through its journal (zhixing.remote)
        if not loaded.store.path.is_file():
            raise
        from zhixing.remote import RemoteClient

        return RemoteClient(loaded.store.path)
    try:
        run = await open_configured(
            loaded, start=start, until=until, clock=clock, calendar=calendar, route=route
        )
    except BaseException:
        lock.release()
        raise
    client = AsyncClient(_ConfiguredDriver(run, lock), run.end_ns)
    try:
        await client.load_journal()
        await client._driver.watch([p.symbol for p in client.positions()])
    except BaseException:
        await client.close()
        raise
    return client


def _kind(order_type: OrderType | str) -> OrderType:
    """``OrderType`` or its name (``"b5tc"``, ``"fak"``, any case)."""
    return order_type if isinstance(order_type, OrderType) else order_type_named(order_type)
