"""Rejects that will repeat (issue 19, 4): classified by their reason, a parent stopped or backed off, a
per-symbol breaker that fills elsewhere do not reset, the operator told; each vendor's texts classified."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import cast

import pytest

from tests.adapters.gm.test_gm_trader import Route, route  # noqa: F401 (the gm route fixture)
from tests.adapters.notify.test_notify_support import MailRecorder, smtp_server
from tests.adapters.qmt.test_qmt_trader import START, send, start_rig
from tests.engine.cli.test_run_day import write_config
from tests.fakes import FakeBroker, FakeQuotes, FakeStore, World, calendar, oms_with
from tests.qmt_fake import FakeQmtTerminal
from zhixing.adapters.fileorder.tracker import reject_reason as fileorder_reject_reason
from zhixing.adapters.gm.codes import REJECT_REASON_NAMES
from zhixing.adapters.gm.codes import reject_reason as gm_reject_reason
from zhixing.algos.base import (
    BACKOFF_FIRST_NS,
    MAX_BACKOFF_REJECTS,
    MAX_FREE_RETRIES,
    AlgoContext,
)
from zhixing.algos.basket import Basket
from zhixing.algos.twap import TwapAlgo
from zhixing.engine.bus import EventBus
from zhixing.engine.cli.run_cmd import ConfiguredSession, run_config
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.events import OrderRejected, SubmitOrder
from zhixing.engine.market import shanghai_ns
from zhixing.engine.notify import Message
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.engine.reasons import UnfilledCode
from zhixing.engine.reject_alerts import RejectAlerts
from zhixing.engine.reject_reasons import CATEGORIES, RejectAction, classify_reject
from zhixing.engine.risk_controls import RiskControls, RiskLimits
from zhixing.engine.store import StateStore
from zhixing.engine.units import NS_PER_SECOND
from zhixing.replay.data import load_snapshots
from zhixing.replay.faults import SUSPENDED_REASON, FaultPlan, FaultyAdapter
from zhixing.replay.harness import ReplayConfig, ReplaySession, open_session

DAY = date(2021, 12, 1)
SYM = "600000.SH"
OTHER = "600036.SH"
BID, ASK = 9_990, 10_000
SUSPENDED = "symbol_suspended: 交易代码停牌"


def at(hhmm: str) -> int:
    return shanghai_ns(DAY, hhmm)


# ------------------------------------------------------------------------------------------ the rig
class RejectingBroker(FakeBroker):
    """A fake broker that answers a submit with a reject when ``reject(order)`` names a reason, else acks
    (and fills, when ``fill_on_submit`` says so)."""

    def __init__(self, clock: SimClock, reject: Callable[[Order], str | None], **kw: object) -> None:
        super().__init__(clock, **kw)  # type: ignore[arg-type]
        self.reject = reject

    async def submit(self, order: Order) -> None:
        reason = self.reject(order)
        if reason is None:
            await super().submit(order)
            return
        self.submitted.append(order)
        self.submit_times.append(self.clock.now_ns())
        self.orders[order.client_order_id] = order
        now = self.clock.now_ns()
        self._emit(
            OrderRejected(
                ts_event=now,
                ts_init=now,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                reason=reason,
            )
        )


async def rejecting_world(
    reject: Callable[[Order], str | None],
    *,
    start: str = "09:59:59",
    fill: bool = True,
    risk: RiskLimits | None = None,
) -> tuple[World, RiskControls | None]:
    clock = SimClock(at(start))
    bus = EventBus()
    broker = RejectingBroker(clock, reject, fill_on_submit=(lambda o: o.quantity) if fill else None)
    store = FakeStore()
    quotes = FakeQuotes(clock)
    for symbol in (SYM, OTHER):
        quotes.set(symbol, bid=BID, ask=ASK)
    oms, controls = oms_with(clock, bus, broker, cast(StateStore, store), quotes, risk=risk)
    await oms.open()
    return World(clock, bus, broker, store, oms, quotes, controls), controls


def context(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


def twap(
    quantity: int = 2_000,
    *,
    symbol: str = SYM,
    side: Side = Side.BUY,
    end: str = "10:10",
    interval_s: int = 60,
    parent_id: str = "P1",
) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol=symbol,
        side=side,
        quantity=quantity,
        start_ns=at("10:00"),
        end_ns=at(end),
        params={"final_sweep_s": "0", "interval_s": str(interval_s)},
    )


def sent(world: World, symbol: str = SYM) -> list[Order]:
    return [o for o in world.broker.submitted if o.symbol == symbol]


# ------------------------------------------------------------------------------------------ the parent
async def test_a_suspended_symbol_gets_one_child_then_its_parent_stops_with_the_reason() -> None:
    world, _ = await rejecting_world(lambda o: SUSPENDED if o.symbol == SYM else None)
    algo = TwapAlgo(twap(), context(world))
    algo.start()
    await world.run_until(at("10:11"))
    assert len(sent(world)) == 1  # ten slices were due: one child, then the parent stopped
    assert algo.done
    assert algo.parent.status is ParentStatus.DONE
    assert algo.unfilled_reason == f"rejected:{SUSPENDED}"
    assert algo.stats()["children_rejected"] == 1


async def test_other_symbols_keep_trading_while_one_is_suspended() -> None:
    world, _ = await rejecting_world(lambda o: SUSPENDED if o.symbol == SYM else None)
    basket = Basket(context(world))
    basket.add(twap(parent_id="SUSP"))
    basket.add(twap(symbol=OTHER, parent_id="OK"))
    basket.start()
    await world.run_until(at("10:11"))
    assert len(sent(world, SYM)) == 1
    assert len(sent(world, OTHER)) == 10
    assert basket.algos["OK"].filled_quantity == 2_000
    assert basket.algos["SUSP"].unfilled_reason == f"rejected:{SUSPENDED}"
    assert basket.done


async def test_an_insufficient_position_reject_stops_the_sell() -> None:
    reason = "xtquant error -61: [COUNTER] [251005][证券可用数量不足]"
    world, _ = await rejecting_world(lambda o: reason if o.side is Side.SELL else None)
    algo = TwapAlgo(twap(side=Side.SELL), context(world))
    algo.start()
    await world.run_until(at("10:11"))
    assert len(world.broker.submitted) == 1
    assert algo.done
    assert algo.unfilled_reason == f"rejected:{reason}"


async def test_transient_rejects_are_retried_at_the_next_slice() -> None:
    throttled = {"n": 0}

    def reject(order: Order) -> str | None:
        if throttled["n"] < MAX_FREE_RETRIES:
            throttled["n"] += 1
            return "throttle: 流控限制"
        return None

    world, _ = await rejecting_world(reject)
    algo = TwapAlgo(twap(1_000, end="10:05"), context(world))
    algo.start()
    await world.run_until(at("10:06"))
    # rejected at 10:00, 10:01 and 10:02, each retried at the next slice; 10:03 and 10:04 fill
    assert [t for t in world.broker.submit_times] == [at(f"10:0{m}") for m in range(5)]
    assert algo.filled_quantity == 1_000
    assert algo.unfilled_reason == ""


async def test_transient_rejects_that_never_stop_back_off_then_stop() -> None:
    world, _ = await rejecting_world(lambda o: "系统繁忙,请稍后重试", fill=False)
    algo = TwapAlgo(twap(10_000, end="11:30", interval_s=10), context(world))
    algo.start()
    await world.run_until(at("11:31"))
    # 3 retried at once, then 4 waits (30, 60, 120, 240 s), then the 5th that backs off stops the parent
    assert len(world.broker.submitted) == MAX_FREE_RETRIES + MAX_BACKOFF_REJECTS
    assert algo.done
    assert algo.unfilled_reason == "rejected:系统繁忙,请稍后重试"


async def test_a_price_limit_reject_backs_off_on_a_bounded_schedule_then_stops() -> None:
    world, _ = await rejecting_world(lambda o: "price_above_limit_up", fill=False)
    algo = TwapAlgo(twap(10_000, end="10:20", interval_s=10), context(world))
    algo.start()
    await world.run_until(at("10:21"))
    assert world.broker.submit_times == [
        at("10:00"),
        at("10:00:30"),
        at("10:01:30"),
        at("10:03:30"),
        at("10:07:30"),
    ]
    assert algo.done
    assert algo.unfilled_reason == "rejected:price_above_limit_up"


async def test_an_unknown_reject_text_backs_off_rather_than_retrying_every_slice() -> None:
    world, _ = await rejecting_world(lambda o: "柜台返回: 错误 87654321" if len(sent(world)) == 0 else None)
    algo = TwapAlgo(twap(1_000, end="10:05", interval_s=10), context(world))
    algo.start()
    await world.run_until(at("10:06"))
    assert world.broker.submit_times[:2] == [at("10:00"), at("10:00") + BACKOFF_FIRST_NS]
    assert algo.filled_quantity == 1_000  # it cleared: the parent went on after the wait


async def test_a_fill_of_the_parent_resets_its_back_off() -> None:
    script = itertools.chain(
        ["price_above_limit_up"] * 4, [None], ["price_above_limit_up"] * 4, itertools.repeat(None)
    )
    world, _ = await rejecting_world(lambda o: next(script))
    algo = TwapAlgo(twap(100_000, end="11:00", interval_s=10), context(world))
    algo.start()
    await world.run_until(at("11:01"))
    # 8 rejects that back off, but never 5 since a fill: the parent was never stopped
    assert algo.stats()["children_rejected"] == 8
    assert not algo.unfilled_reason.startswith("rejected")
    assert algo.progress_state()["backoff_rejects"] == 0


async def test_a_local_reject_is_retried_not_counted_as_the_venues() -> None:
    world, _ = await rejecting_world(lambda o: None)
    algo = TwapAlgo(twap(1_000, end="10:05"), context(world))
    algo.start()
    await world.run_until(at("10:00"))
    child = world.broker.submitted[0]
    assert child.status is OrderStatus.FILLED
    verdict = classify_reject("no_response_from_broker", venue_confirmed=False)
    assert verdict.action is RejectAction.RETRY
    assert verdict.category == "local"


async def test_the_back_off_survives_a_restart() -> None:
    world, _ = await rejecting_world(lambda o: "price_above_limit_up", fill=False)
    algo = TwapAlgo(twap(10_000, end="10:20", interval_s=10), context(world))
    algo.start()
    await world.run_until(at("10:00:05"))
    state = json.loads(json.dumps(algo.state()))
    assert state["backoff_until"] == at("10:00:30")
    # a new engine on the same books: the restored algorithm waits out the back-off
    restored = TwapAlgo(twap(10_000, end="10:20", interval_s=10), context(world))
    algo.stop()
    restored.restore({**state, "finished": False, "finishing": False})
    restored.start()
    before = len(world.broker.submitted)
    await world.run_until(at("10:00:29"))
    assert len(world.broker.submitted) == before
    await world.run_until(at("10:00:31"))
    assert len(world.broker.submitted) == before + 1


async def test_a_final_reject_learnt_at_the_restart_stops_the_parent_before_it_sends() -> None:
    world, _ = await rejecting_world(lambda o: SUSPENDED)
    algo = TwapAlgo(twap(), context(world))
    algo.start()
    state_before_the_reject = json.loads(json.dumps(algo.state()))
    await world.run_until(at("10:00"))
    assert len(world.broker.submitted) == 1  # rejected: this engine dies before journaling its state
    restored = TwapAlgo(twap(), context(world))
    restored.restore(state_before_the_reject)
    restored.start()
    await world.run_until(at("10:11"))
    assert len(world.broker.submitted) == 1  # the restarted one read the reject from the books
    assert restored.done
    assert restored.unfilled_reason == f"rejected:{SUSPENDED}"


# ------------------------------------------------------------------------------------------ the breaker
LIMITS = RiskLimits(max_rejects_per_symbol=3, duplicate_window_ns=0)


def order_on(world: World, symbol: str) -> Order:
    return world.oms.submit(SubmitOrder(symbol=symbol, side=Side.BUY, quantity=100, price=ASK))


async def test_fills_on_other_symbols_do_not_reset_the_per_symbol_breaker() -> None:
    world, risk = await rejecting_world(
        lambda o: "insufficient_cash" if o.symbol == SYM else None, risk=LIMITS
    )
    assert risk is not None
    blocked: list[tuple[str, str]] = []
    risk.on_symbol_blocked = lambda symbol, why: blocked.append((symbol, why))
    for _ in range(3):
        order_on(world, SYM)
        await world.oms.flush()
        order_on(world, OTHER)  # fills: resets the account-wide count, not SYM's
        await world.oms.flush()
    assert risk.consecutive_rejects == 0
    assert [s for s, _ in blocked] == [SYM]
    denied = order_on(world, SYM)
    assert denied.status is OrderStatus.DENIED
    assert denied.reason.startswith(f"symbol_rejects: {SYM} blocked after 3 broker rejects")
    assert order_on(world, OTHER).status is not OrderStatus.DENIED
    assert risk.report()["blocked_symbols"] == {SYM: risk.blocked_symbols[SYM]}


async def test_an_ack_does_not_reset_a_symbols_count_but_its_fill_does() -> None:
    world, risk = await rejecting_world(lambda o: None, risk=LIMITS, fill=False)
    assert risk is not None

    def reject(symbol: str) -> None:
        now = world.clock.now_ns()
        risk.on_rejected(
            OrderRejected(ts_event=now, ts_init=now, client_order_id="X", symbol=symbol, reason=SUSPENDED)
        )

    reject(SYM)
    reject(SYM)
    order = order_on(world, SYM)
    await world.oms.flush()  # acked (the counter took it): SYM's count stays
    assert order.status is OrderStatus.ACCEPTED
    assert risk.report()["symbol_rejects"] == {SYM: 2}
    world.broker.fill(order.client_order_id, 100)  # a fill proves the name trades
    assert risk.report()["symbol_rejects"] == {}
    reject(SYM)
    reject(SYM)
    assert SYM not in risk.blocked_symbols


async def test_transient_and_local_rejects_do_not_count_toward_the_symbol_breaker() -> None:
    world, risk = await rejecting_world(lambda o: None, risk=LIMITS)
    assert risk is not None
    now = world.clock.now_ns()
    for reason, confirmed in (
        ("throttle: 流控限制", True),
        ("请求超时", True),
        ("adapter: link down", False),
    ) * 3:
        risk.on_rejected(
            OrderRejected(
                ts_event=now,
                ts_init=now,
                client_order_id="X",
                symbol=SYM,
                reason=reason,
                venue_confirmed=confirmed,
            )
        )
    assert risk.blocked_symbols == {}
    assert risk.consecutive_rejects == 9  # the account-wide breaker still counts them


async def test_a_blocked_symbol_stays_blocked_across_a_restart_and_clears_the_next_day() -> None:
    world, risk = await rejecting_world(lambda o: SUSPENDED, risk=LIMITS)
    assert risk is not None
    for _ in range(3):
        order_on(world, SYM)
        await world.oms.flush()
    assert SYM in risk.blocked_symbols
    journaled = json.dumps(risk.report())
    again = RiskControls(LIMITS, world.clock, world.quotes, bus=EventBus())
    again.restore(journaled)
    assert again.blocked_symbols == risk.blocked_symbols
    assert again.check(Order(client_order_id="Y", symbol=SYM, side=Side.BUY, price=ASK, quantity=100))
    world.clock.advance_to(shanghai_ns(date(2021, 12, 2), "09:30"))
    world.quotes.set(SYM, bid=BID, ask=ASK)
    assert again.check(Order(client_order_id="Z", symbol=SYM, side=Side.BUY, price=ASK, quantity=100)) is None
    assert again.blocked_symbols == {}


async def test_an_operator_resume_clears_the_blocks() -> None:
    world, risk = await rejecting_world(lambda o: SUSPENDED, risk=LIMITS)
    assert risk is not None
    for _ in range(3):
        order_on(world, SYM)
        await world.oms.flush()
    risk.reset_rejects()
    assert risk.blocked_symbols == {}
    assert risk.report()["symbol_rejects"] == {}


async def test_an_algorithm_denied_by_the_symbol_breaker_stops_at_once() -> None:
    world, risk = await rejecting_world(lambda o: "price_below_limit_down", risk=LIMITS, fill=False)
    assert risk is not None
    risk.blocked_symbols[SYM] = "blocked after 3 broker rejects since its last fill (test)"
    algo = TwapAlgo(twap(), context(world))
    algo.start()
    await world.run_until(at("10:11"))
    assert world.broker.submitted == []
    assert algo.done
    assert algo.unfilled_reason.startswith("denied:symbol_rejects")
    assert algo.children_denied == 1


# ------------------------------------------------------------------------------------------ the operator
async def test_the_operator_is_told_of_will_repeat_rejects_and_blocked_symbols() -> None:
    world, risk = await rejecting_world(
        lambda o: SUSPENDED if o.symbol == SYM else "throttle: 流控限制", risk=LIMITS, fill=False
    )
    assert risk is not None
    posted: list[Message] = []
    alerts = RejectAlerts(
        world.bus, world.clock, posted.append, account="acct-1", digest_ns=60 * NS_PER_SECOND
    )
    alerts.attach(risk)
    for _ in range(3):
        order_on(world, SYM)
        order_on(world, OTHER)  # transient: retried, not told here
        await world.oms.flush()
    subjects = [m.subject for m in posted]
    assert len(posted) == 2, subjects
    assert "order rejected: 600000.SH suspended" in subjects[0]
    assert "blocked for today" in subjects[1]
    assert alerts.blocks_told == 1
    await world.run_until(world.clock.now_ns() + 61 * NS_PER_SECOND)
    assert "2 more orders rejected: 2 suspended" in posted[-1].subject  # the digest of the minute
    assert alerts.told == 3
    alerts.flush()
    assert len(posted) == 3


# ------------------------------------------------------------------------------------------ the vendors
@pytest.mark.parametrize(
    ("reason", "category", "action"),
    [
        # gm / file route: ord_rej_reason name + detail
        (gm_reject_reason(16, "交易代码停牌"), "suspended", RejectAction.STOP),
        (gm_reject_reason(6, ""), "unknown_symbol", RejectAction.STOP),
        (gm_reject_reason(2, "资金不足"), "insufficient_cash", RejectAction.STOP),
        (gm_reject_reason(3, "仓位不足"), "insufficient_position", RejectAction.STOP),
        (gm_reject_reason(8, "非法委托价"), "price_limit", RejectAction.BACK_OFF),
        (gm_reject_reason(13, "非交易时段"), "not_in_session", RejectAction.BACK_OFF),
        (gm_reject_reason(15, "流控限制"), "rate_limit", RejectAction.RETRY),
        (gm_reject_reason(10, "交易账号被禁止交易"), "account_restricted", RejectAction.STOP),
        (gm_reject_reason(14, "委托类型不支持"), "not_permitted", RejectAction.STOP),
        (gm_reject_reason(7, "非法委托量"), "invalid_order", RejectAction.STOP),
        (gm_reject_reason(1, "不符合风控规则"), "broker_risk", RejectAction.BACK_OFF),
        (gm_reject_reason(0, "资金不足"), "insufficient_cash", RejectAction.STOP),  # unknown code, known text
        (gm_reject_reason(999, "内部错误"), "unknown", RejectAction.BACK_OFF),
        (gm_reject_reason(11, ""), "busy", RejectAction.RETRY),  # account_disconnected
        (fileorder_reject_reason(16, "停牌"), "suspended", RejectAction.STOP),
        (fileorder_reject_reason(3, ""), "insufficient_position", RejectAction.STOP),
        (fileorder_reject_reason(42, "证券代码不存在"), "unknown_symbol", RejectAction.STOP),
        # QMT: on_order_error "xtquant error <id>: <msg>", or the 废单 status_msg alone
        ("xtquant error -61: 可用资金不足", "insufficient_cash", RejectAction.STOP),
        ("[COUNTER] [251005][证券可用数量不足]", "insufficient_position", RejectAction.STOP),
        ("xtquant error -1: [COUNTER] [-110][该股票停牌,不能交易]", "suspended", RejectAction.STOP),
        ("[COUNTER] [150906130][证券代码不存在]", "unknown_symbol", RejectAction.STOP),
        ("委托价格超出涨跌停范围", "price_limit", RejectAction.BACK_OFF),
        ("[COUNTER] 客户无科创板交易权限", "not_permitted", RejectAction.STOP),
        ("当前时间不允许委托", "not_in_session", RejectAction.BACK_OFF),
        ("xtquant error -3: 系统繁忙", "busy", RejectAction.RETRY),
        ("请求超时", "timeout", RejectAction.RETRY),
        ("账户状态异常,限制交易", "account_restricted", RejectAction.STOP),
        ("xtquant error 12345:", "unknown", RejectAction.BACK_OFF),  # an id alone: the text decides
        # the simulated exchange's rules
        ("insufficient_sellable", "insufficient_position", RejectAction.STOP),
        ("quantity_above_position", "insufficient_position", RejectAction.STOP),
        ("price_below_limit_down", "price_limit", RejectAction.BACK_OFF),
        ("price_off_tick", "invalid_order", RejectAction.STOP),
        ("no_trading_rules", "unknown_symbol", RejectAction.STOP),
        ("market_closed", "not_in_session", RejectAction.BACK_OFF),
        # hostile spellings
        ("NoEnoughCash", "insufficient_cash", RejectAction.STOP),
        ("ＳＹＭＢＯＬ＿ＳＵＳＰＥＮＤＥＤ", "suspended", RejectAction.STOP),  # full width
        ("资 金 不 足", "insufficient_cash", RejectAction.STOP),
        ("系统繁忙; 该证券停牌", "suspended", RejectAction.STOP),  # names both: the safe reading
        ("", "unknown", RejectAction.BACK_OFF),
        ("broker_rejected", "unknown", RejectAction.BACK_OFF),
    ],
)
def test_each_vendors_reason_text_is_classified(reason: str, category: str, action: RejectAction) -> None:
    verdict = classify_reject(reason)
    assert (verdict.category, verdict.action) == (category, action), reason
    assert verdict.category in CATEGORIES


def test_every_gm_reject_code_has_a_category() -> None:
    for code, name in REJECT_REASON_NAMES.items():
        verdict = classify_reject(gm_reject_reason(code, ""))
        if name in ("unknown", "internal"):
            assert verdict.category == "unknown", name
        else:
            assert verdict.category != "unknown", name


def test_a_huge_reject_text_is_classified_in_bounded_time_and_safely() -> None:
    assert classify_reject("x" * 5_000_000 + "资金不足").category == "unknown"  # past the first 2,000: unseen
    assert classify_reject("资金不足" + "x" * 5_000_000).category == "insufficient_cash"


async def test_the_qmt_route_reject_reaches_the_engine_classified(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path / "journal.db", FakeQmtTerminal(), SimClock(START))
    try:
        rig.terminal.auto_ack = False
        order = await send(rig, SubmitOrder(symbol=SYM, side=Side.BUY, quantity=1000, price=10_020))
        xo = rig.terminal.order_by_remark(order.client_order_id)
        rig.terminal.reject(xo.order_id, -61, "[COUNTER] [-110][该股票停牌,不能交易]")
        await rig.terminal.settle()
        assert order.status is OrderStatus.REJECTED
        verdict = classify_reject(order.reason, venue_confirmed=order.venue_confirmed)
        assert (verdict.category, verdict.action) == ("suspended", RejectAction.STOP)
    finally:
        await rig.adapter.close()
        await rig.store.close()


async def test_the_gm_route_reject_reaches_the_engine_classified(route: Route) -> None:  # noqa: F811
    route.api.reject_next = (16, "交易代码停牌")
    cid = await route.buy()
    await route.settle()
    order = route.oms.orders[cid]
    assert order.status is OrderStatus.REJECTED
    assert classify_reject(order.reason, venue_confirmed=order.venue_confirmed).category == "suspended"


# ------------------------------------------------------------------------------------------ end to end
SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"


async def run_suspended_day(
    tmp_path: Path, parents_on: Callable[[list[str]], list[ParentOrder]]
) -> tuple[ReplaySession, Basket, RiskControls, FaultyAdapter, list[ParentOrder]]:
    """The sample day through the real OMS, risk gate and simulated exchange; the first symbol is
    suspended from 09:30 (the broker rejects its every order with the suspension's reason)."""
    market = load_snapshots(SAMPLE)
    parents = parents_on(list(market.symbols))
    suspended = market.symbols[0]
    start = min(p.start_ns for p in parents)
    plan = FaultPlan(seed=1, suspensions=((suspended, shanghai_ns(market.trade_date, "09:30")),))
    holder: list[FaultyAdapter] = []

    def wrap(exchange: object, clock: object) -> FaultyAdapter:
        holder.append(FaultyAdapter(exchange, plan, clock))  # type: ignore[arg-type]
        return holder[0]

    limits = RiskLimits(duplicate_window_ns=0, max_messages_per_second=200)
    config = ReplayConfig(cash=10**13, db_path=tmp_path / "day.db", risk=limits)
    session = await open_session(market, config, start, wrap=wrap)
    risk = session.engine.risk
    basket = Basket(session.ctx)
    try:
        for parent in parents:
            basket.add(parent)
        basket.start()
        await session.run(max(p.end_ns for p in parents) + 60 * NS_PER_SECOND, lambda: basket.done)
    finally:
        await session.store.close()
    return session, basket, risk, holder[0], parents


def day_twap(symbol: str, parent_id: str, day: date) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol=symbol,
        side=Side.BUY,
        quantity=3_000,
        start_ns=shanghai_ns(day, "09:31"),
        end_ns=shanghai_ns(day, "10:01"),
        params={"interval_s": "60", "final_sweep_s": "0"},
    )


async def test_on_the_simulated_exchange_a_suspended_name_stops_and_the_others_fill(tmp_path: Path) -> None:
    day = date(2021, 12, 1)
    session, basket, risk, adapter, parents = await run_suspended_day(
        tmp_path, lambda symbols: [day_twap(s, f"P{i}", day) for i, s in enumerate(symbols[:3])]
    )
    suspended = parents[0]
    children = session.oms.children_of(suspended.parent_id)
    assert [(c.status, c.reason) for c in children] == [(OrderStatus.REJECTED, SUSPENDED_REASON)]
    assert basket.algos["P0"].done
    assert basket.algos["P0"].unfilled_reason == f"rejected:{SUSPENDED_REASON}"
    for parent in parents[1:]:
        assert basket.algos[parent.parent_id].filled_quantity > 0  # the others traded on
    assert adapter.injected["repeated_rejects"] == 1
    assert risk.blocked_symbols == {}  # one reject: below the per-symbol breaker


async def test_many_parents_on_one_suspended_name_send_no_more_than_the_symbol_breaker_allows(
    tmp_path: Path,
) -> None:
    """Eight parents on the same suspended name, starting a minute apart: each stops at its own reject,
    and from the fifth reject on the risk gate denies the name: the broker sees five children, not eight."""
    day = date(2021, 12, 1)

    def parents(symbols: list[str]) -> list[ParentOrder]:
        out = []
        for i in range(8):
            parent = day_twap(symbols[0], f"S{i}", day)
            parent.start_ns += i * 60 * NS_PER_SECOND
            parent.end_ns += i * 60 * NS_PER_SECOND
            out.append(parent)
        return out

    _, basket, risk, adapter, placed = await run_suspended_day(tmp_path, parents)
    assert adapter.injected["repeated_rejects"] == RiskLimits().max_rejects_per_symbol == 5
    assert placed[0].symbol in risk.blocked_symbols
    assert all(a.done for a in basket.algos.values())
    unfilled = [basket.algos[p.parent_id].unfilled for p in placed]
    codes = [u.code if u is not None else None for u in unfilled]
    assert codes == [UnfilledCode.REJECTED] * 5 + [UnfilledCode.DENIED] * 3
    assert risk.report()["denials"] == {"symbol_rejects": 3}


async def test_parents_whose_children_are_all_in_flight_at_once_each_stop_at_their_own_reject(
    tmp_path: Path,
) -> None:
    """Eight parents on the suspended name send their first child in the same instant, before any reject is
    back: the breaker cannot recall what is in flight, but every parent stops at its one reject."""
    day = date(2021, 12, 1)
    session, basket, risk, adapter, placed = await run_suspended_day(
        tmp_path, lambda symbols: [day_twap(symbols[0], f"S{i}", day) for i in range(8)]
    )
    assert adapter.injected["repeated_rejects"] == 8
    assert all(len(session.oms.children_of(p.parent_id)) == 1 for p in placed)
    assert all(a.unfilled_reason == f"rejected:{SUSPENDED_REASON}" for a in basket.algos.values())
    assert placed[0].symbol in risk.blocked_symbols


@pytest.mark.slow
async def test_zhixing_run_tells_the_operator_by_mail_and_the_job_reports_the_reason(tmp_path: Path) -> None:
    """`zhixing run` on the sample day; 600258.SH (a name the rebalance buys) is suspended at the broker:
    its parent sends one child and stops, the mail says so, and the job's outcome carries the reason."""
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = load_config(write_config(tmp_path, port))
        clock = SimClock(shanghai_ns(DAY, "08:30"))

        def suspend(run: ConfiguredSession) -> None:  # the broker side of the route refuses the name
            oms = run.session.oms
            faulty = FaultyAdapter(oms.adapter, FaultPlan(seed=1, suspensions=(("600258.SH", 0),)), clock)
            oms.adapter = faulty
            faulty.bind(oms.on_event)

        result = await run_config(config, clock=clock, on_open=suspend)
    runner = result.runner
    children = [o for o in runner.session.oms.orders.values() if o.symbol == "600258.SH"]
    assert [(o.status, o.reason) for o in children] == [(OrderStatus.REJECTED, SUSPENDED_REASON)]
    assert sum(o.filled_quantity for o in runner.session.oms.orders.values() if o.symbol == "600446.SH") > 0
    text = "\n".join(f"{m['Subject']}\n{m.get_body().get_content()}" for m in recorder.mails)  # type: ignore[union-attr]
    assert "order rejected: 600258.SH suspended" in text, text
    assert "will not go away by itself" in text
    outcome = next(o for o in runner.outcomes if o.job == "rebalance")
    assert not outcome.ok
    assert SUSPENDED_REASON in next(r.unfilled_reason for r in runner.results() if r.symbol == "600258.SH")
