"""A job of the day is reported for what it achieved (issue 13, item 9): ``zhixing run`` on a virtual
clock, the simulated exchange, a real local SMTP server.

- halted at 09:35 and resumed at 09:51, a rebalance whose sell leg ended (09:45) during the halt runs its
  buy leg after the resume, and the job is not "ok" while a parent is unfilled;
- a rebalance that ends while trading is halted is "halted", never "ok";
- a rebalance still running at the summary is listed as running, and one still running when the run ends
  is reported unfinished;
- every halt and resume reaches the mail, and so do the risk gate's denials.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.adapters.notify.test_notify_support import MailRecorder, smtp_server
from tests.engine.cli.test_run_day import write_config
from zhixing.engine.bus import EventBus
from zhixing.engine.cli.run_cmd import ConfiguredSession, RunResult, run_config
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.denial_alerts import DenialAlerts
from zhixing.engine.events import OrderDenied
from zhixing.engine.market import shanghai_ns
from zhixing.engine.notify import Message
from zhixing.engine.reasons import DenialCode
from zhixing.engine.store import StateStore
from zhixing.engine.units import NS_PER_SECOND

DAY = date(2021, 12, 1)


async def run_day(
    folder: Path,
    commands: list[tuple[str, str]],
    *,
    until: str | None = None,
    extra: str = "",
    job_params: str = "",
) -> tuple[RunResult, MailRecorder]:
    """The sample day with ``commands`` ((hh:mm, halt|resume)) given by the operator at those times;
    ``job_params``: an inline TOML table of the rebalance job's algorithm parameters."""
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        path = write_config(folder, port)
        text = path.read_text(encoding="utf-8")
        if job_params:
            text = text.replace("window_minutes = 30\n", f"window_minutes = 30\nparams = {job_params}\n", 1)
        path.write_text(text + extra, encoding="utf-8")
        config = load_config(path)
        clock = SimClock(shanghai_ns(DAY, "08:30"))

        def operator(run: ConfiguredSession) -> None:  # the commands as the control channel applies them
            for hhmm, command in commands:
                act = (
                    (lambda: run.control.on_halt("desk: news"))
                    if command == "halt"
                    else run.control.on_resume
                )
                clock.call_at(shanghai_ns(DAY, hhmm), act, f"operator:{command}")

        result = await run_config(config, clock=clock, until=until, on_open=operator)
    return result, recorder


def subjects(recorder: MailRecorder) -> list[str]:
    return [str(m["Subject"]) for m in recorder.mails]


async def test_a_rebalance_halted_at_0935_and_resumed_at_0951_runs_its_buy_leg_after_the_resume(
    tmp_path: Path,
) -> None:
    result, recorder = await run_day(tmp_path, [("09:35", "halt"), ("09:51", "resume")])
    runner = result.runner
    rebalance = runner.rebalances[0]
    assert rebalance.done
    assert {p.symbol for p in rebalance.buy_parents} == {"600258.SH", "600446.SH"}
    store = await StateStore.open(tmp_path / "state" / "zhixing.db")
    orders = await store.load_orders()
    await store.close()
    buys = [o for o in orders if o.side.value == "BUY"]
    sells = [o for o in orders if o.side.value == "SELL"]
    assert buys, "the buy leg never started"
    resumed = shanghai_ns(DAY, "09:51")
    assert all(resumed <= o.ts_created < shanghai_ns(DAY, "10:00") for o in buys)
    assert sum(o.filled_quantity for o in buys) > 0
    # nothing was sent while halted
    halted = shanghai_ns(DAY, "09:35")
    assert not [o for o in orders if halted + 2 * 10**9 < o.ts_created < resumed]
    # the sell leg stopped at the halt with part of its 20,000 unsold: the job is partial, and says why
    assert 0 < sum(o.filled_quantity for o in sells) < 20_000
    outcome = next(o for o in runner.outcomes if o.job == "rebalance")
    assert outcome.status == "partial", outcome.detail
    assert "600566.SH SELL" in outcome.detail
    assert not outcome.ok
    mails = subjects(recorder)
    assert any("HALTED" in s or "halt" in s.lower() for s in mails), mails
    assert any("resumed" in s.lower() for s in mails), mails
    assert any("rebalance ended partial" in s for s in mails), mails
    report = next(m for m in recorder.mails if "execution" in str(m["Subject"]))
    body = report.get_body().get_content()  # type: ignore[union-attr]
    assert "rebalance (execute)" in body
    assert "PARTIAL" in body


@pytest.mark.slow
async def test_a_rebalance_that_ends_while_halted_is_reported_halted_not_ok(tmp_path: Path) -> None:
    result, recorder = await run_day(tmp_path, [("09:35", "halt")])
    outcome = next(o for o in result.runner.outcomes if o.job == "rebalance")
    assert outcome.status == "halted", outcome.detail
    assert "desk: news" in outcome.detail
    bought = [r.filled for r in result.runner.results() if r.side.value == "BUY"]
    assert sum(bought) == 0  # the buy leg never traded: it was sized while halted
    assert any("rebalance ended halted" in s for s in subjects(recorder))


async def test_a_rebalance_still_running_when_the_run_ends_is_reported_unfinished(tmp_path: Path) -> None:
    result, recorder = await run_day(tmp_path, [], until="09:40")
    outcome = next(o for o in result.runner.outcomes if o.job == "rebalance")
    assert outcome.status in ("partial", "failed"), outcome.detail
    assert "not finished when the run ended" in outcome.detail
    assert any("rebalance ended" in s for s in subjects(recorder))


async def test_the_whole_day_without_incident_is_ok(tmp_path: Path) -> None:
    result, _ = await run_day(tmp_path, [])
    outcome = next(o for o in result.runner.outcomes if o.job == "rebalance")
    complete = all(r.filled >= r.quantity for r in result.runner.results())
    assert outcome.ok is complete, outcome.detail
    assert outcome.status == ("ok" if complete else "partial")


async def test_the_risk_gates_denials_reach_the_mail(tmp_path: Path) -> None:
    """A size limit below every slice: each parent's first child is denied, and each denial is in a mail."""
    # today's slicing (no minimum child value): the first slices, denied one after another
    result, recorder = await run_day(
        tmp_path,
        [],
        until="10:30",
        extra="\n[risk]\nmax_order_quantity = 100\n",
        job_params="{ min_child_value = 0 }",
    )
    denied = result.runner.session.oms.counters.denied
    assert denied >= 3
    assert result.runner.session.oms.halted_reason is None
    # the mail dispatcher may combine messages into one mail: read every mail's whole text
    text = "\n".join(f"{m['Subject']}\n{m.get_body().get_content()}" for m in recorder.mails)  # type: ignore[union-attr]
    singles = text.count("was denied by the risk gate")
    digested = [
        int(line.split(" more orders denied")[0].rsplit(" ", 1)[-1])
        for line in text.splitlines()
        if " more orders denied by the risk gate" in line
    ]
    assert singles == 1, text  # the first at once, the others in the minute after it
    assert singles + sum(digested) == denied, text
    assert "max_order_quantity" in text


def more(subject: object) -> int:
    """The count of a digest's subject: '... N more orders denied: ...'."""
    return int(str(subject).split(" more orders denied")[0].rsplit(" ", 1)[-1])


def denial(n: int, symbol: str = "600000.SH", reason: str = "max_order_quantity: 5000 > 100") -> OrderDenied:
    code = DenialCode(reason.split(":", 1)[0])  # the test's shorthand: the code is the text's first word
    return OrderDenied(
        ts_event=0, ts_init=0, client_order_id=f"Z{n}", symbol=symbol, reason=reason, code=code
    )


def wait(clock: SimClock, ns: int) -> None:
    """Let ``ns`` pass on ``clock``, firing every timer due meanwhile."""
    until = clock.now_ns() + ns
    while clock.step(until_ns=until):
        pass
    clock.advance_to(until)


def test_a_storm_of_denials_is_one_digest_a_minute_and_none_is_lost() -> None:
    clock = SimClock(shanghai_ns(DAY, "09:30"))
    bus = EventBus()
    posted: list[Message] = []
    alerts = DenialAlerts(bus, clock, posted.append, account="8800123456").attach()
    n = 0
    for _second in range(150):  # 10 denials a second for 2.5 minutes, on two symbols
        for _ in range(10):
            n += 1
            bus.publish(denial(n, "600000.SH" if n % 3 else "000001.SZ"))
        wait(clock, NS_PER_SECOND)
    bus.publish(denial(n + 1, reason="halted: operator"))  # the halt's own message says so
    alerts.flush()
    assert alerts.told == n
    assert 1 + sum(more(m.subject) for m in posted[1:]) == n
    assert len(posted) == 4  # the first, then one digest per minute (2), and what the flush found
    assert "by symbol: 600000.SH" in posted[1].body
    assert "max_order_quantity" in posted[1].body
    # a quiet minute: the next denial is told on its own again
    wait(clock, 5 * 60 * NS_PER_SECOND)
    bus.publish(denial(n + 2))
    assert "order denied:" in posted[-1].subject
