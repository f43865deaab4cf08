"""``zhixing run`` through whole days on a virtual clock: the signal job at 09:00, the rebalance at 09:30
through TWAP on the simulated exchange, the summary mail at 15:05 received by a real local SMTP server;
a non-trading day on which nothing fires; an SMTP server that is down while trading goes on unaffected."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from tests.adapters.notify.test_notify_support import MailRecorder, free_port, smtp_server
from zhixing.engine.cli.run_cmd import run_config
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.market import shanghai_ns
from zhixing.engine.store import StateStore

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"

SIGNAL = """
import pathlib
pathlib.Path("targets.csv").write_text(
    "symbol,weight\\n600258.SH,0.05\\n600446.SH,0.05\\n", encoding="utf-8"
)
print("signal: 2 names, 5% each")
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

[notify.email]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "zhixing@example.com"
recipients = ["desk@example.com"]
timeout_s = 5

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


def write_config(folder: Path, port: int) -> Path:
    (folder / "signal.py").write_text(SIGNAL, encoding="utf-8")
    path = folder / "zhixing.toml"
    path.write_text(CONFIG.format(data=SAMPLE.as_posix(), port=port, python=Path(sys.executable).as_posix()))
    return path


@pytest.mark.slow
async def test_a_whole_trading_day_signal_rebalance_summary_mail(tmp_path: Path) -> None:
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = load_config(write_config(tmp_path, port))
        result = await run_config(config)
    runner = result.runner
    day = (2021, 12, 1)
    assert [name for name, _ in result.fired] == ["signal", "rebalance", "summary"]
    d = date(*day)
    assert [when for _, when in result.fired] == [
        shanghai_ns(d, "09:00"),
        shanghai_ns(d, "09:30"),
        shanghai_ns(d, "15:05"),
    ]
    assert [(o.job, o.ok) for o in runner.outcomes] == [
        ("signal", True),
        ("rebalance", True),
        ("summary", True),
    ]
    # the rebalance sold what is not in the targets and bought the two names, inside 09:30-10:00
    parents = runner.parents()
    assert {(p.symbol, p.side.value) for p in parents} == {
        ("600566.SH", "SELL"),
        ("600258.SH", "BUY"),
        ("600446.SH", "BUY"),
    }
    store = await StateStore.open(config.store.path)
    orders = await store.load_orders()
    await store.close()
    assert orders
    assert all(shanghai_ns(d, "09:30") <= o.ts_created < shanghai_ns(d, "10:00") for o in orders)
    assert sum(o.filled_quantity for o in orders if o.symbol == "600566.SH") == 20_000
    # three mails: the signal summary, then the execution report at 15:05
    subjects = [m["Subject"] for m in recorder.mails]
    assert any("signal signal" in s for s in subjects), subjects
    assert any("execution" in s for s in subjects), subjects
    report = next(m for m in recorder.mails if "execution" in m["Subject"])
    body = report.get_body().get_content()  # type: ignore[union-attr]
    assert "600566.SH" in body
    assert "20000/20000" in body


async def test_a_non_trading_day_fires_nothing(tmp_path: Path) -> None:
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = load_config(write_config(tmp_path, port))
        saturday = date(2021, 12, 4)
        clock = SimClock(shanghai_ns(saturday, "08:30"))
        result = await run_config(config, clock=clock, until="15:30")
    assert result.fired == []
    assert result.runner.outcomes == []
    assert recorder.mails == []
    assert not (tmp_path / "targets.csv").exists()  # the signal never ran


@pytest.mark.slow
async def test_smtp_down_does_not_touch_trading(tmp_path: Path) -> None:
    up = tmp_path / "up"
    down = tmp_path / "down"
    up.mkdir()
    down.mkdir()
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        with_mail = await run_config(load_config(write_config(up, port)))
    dead_port = free_port()  # nothing listens here
    without_mail = await run_config(load_config(write_config(down, dead_port)))
    assert [(o.job, o.ok) for o in without_mail.runner.outcomes] == [
        (o.job, o.ok) for o in with_mail.runner.outcomes
    ]
    fills_up = [(r.symbol, r.filled) for r in with_mail.runner.results()]
    fills_down = [(r.symbol, r.filled) for r in without_mail.runner.results()]
    assert fills_down == fills_up
    assert without_mail.dispatcher.stats.gave_up > 0
    assert with_mail.dispatcher.stats.gave_up == 0


async def test_the_operator_is_told_when_quotes_stop(tmp_path: Path) -> None:
    """The recorded day ends at ~10:15 while the market trades on: the rebalance's symbols fall silent,
    their slicing pauses, and one mail (a digest when several go at once) names them."""
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = load_config(write_config(tmp_path, port))
        await run_config(config, until="11:00")
    texts = [f"{m['Subject']}\n{m.get_body().get_content()}" for m in recorder.mails]  # type: ignore[union-attr]
    stale = [t for t in texts if "market data stale" in t]
    assert stale, texts
    text = "\n".join(stale)
    for symbol in ("600258.SH", "600446.SH"):
        assert symbol in text
    assert "no new quote for 30 s during trading" in text
