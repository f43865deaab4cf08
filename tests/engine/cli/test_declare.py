"""``zhixing declare``: the programmatic-trading report's numbers are those of what the replay sent.

The sample day (2021-12-01) is replayed with a config whose rebalance trades passively every 5 s, so
children rest, are cancelled and re-sent: the declared peak per second, the day's count, and the largest
order by value and size are checked against a count made here from the replay's journal (each order row
with its send time, each cancelled row with its cancel's) and against the risk gate's own journaled report.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.engine.cli.declare_cmd import declare_day, peak_per_second, with_account
from zhixing.engine.cli.routes import load_checked
from zhixing.engine.errors import ConfigError, InputError
from zhixing.engine.risk_controls import HFT_PER_DAY, HFT_PER_SECOND

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
LATENCY_NS = 20_000_000  # the sim route's default latency_ms

SIGNAL = """
import pathlib
weights = {"600258.SH": 0.05, "600446.SH": 0.05, "600133.SH": 0.05, "600251.SH": 0.05}
pathlib.Path("targets.csv").write_text(
    "symbol,weight\\n" + "".join(f"{s},{w}\\n" for s, w in weights.items()), encoding="utf-8"
)
"""

HEAD = """
[account]
id = "8800123456"
cash_yuan = 2000000
positions = {{ "600566.SH" = 20000, "600103.SH" = 30000 }}

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{data}"

[risk]
max_messages_per_second = 20
max_order_value_yuan = 500000

[[jobs]]
name = "signal"
cron = "0 9 * * *"
kind = "signal"
command = ["{python}", "signal.py"]
"""

EXECUTE = """
[[jobs]]
name = "rebalance"
cron = "30 9 * * *"
kind = "execute"
targets = "targets.csv"
algo = "twap"
window_minutes = 20
params = { price_policy = "passive", interval_s = "5" }
"""

SUMMARY = """
[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def write_config(folder: Path, *, trading: bool = True) -> Path:
    (folder / "signal.py").write_text(SIGNAL, encoding="utf-8")
    head = HEAD.format(data=SAMPLE.as_posix(), python=Path(sys.executable).as_posix())
    path = folder / "zhixing.toml"
    path.write_text(head + (EXECUTE if trading else "") + SUMMARY, encoding="utf-8")
    return path


def test_peak_per_second_counts_a_rolling_second() -> None:
    second = 1_000_000_000
    times = [0, 10, second - 1, second, second + 5, 3 * second]
    assert peak_per_second(times) == (4, 10)  # [10, 1 s + 10) holds 10, 1 s - 1, 1 s, 1 s + 5
    assert peak_per_second([]) == (0, None)


@pytest.mark.slow
def test_declared_rates_and_sizes_equal_a_count_of_the_journal(tmp_path: Path) -> None:
    config = load_checked(write_config(tmp_path))
    journal = tmp_path / "declare.db"
    declared, log = asyncio.run(declare_day(config, SAMPLE, journal))

    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT status, price, quantity, ts_created, ts_updated FROM orders WHERE status != 'DENIED'"
        ).fetchall()
        (report,) = db.execute("SELECT value FROM meta WHERE key = 'risk_report'").fetchone()
    risk = json.loads(report)
    # an order is sent when it is journaled (no rate queue here: risk reports none queued); a cancelled
    # order's last event is the exchange's confirmation, one latency each way after its cancel was sent
    assert risk["orders_queued"] == 0
    order_times = [ts_created for _, _, _, ts_created, _ in rows]
    cancel_times = [ts_updated - 2 * LATENCY_NS for status, *_, ts_updated in rows if status == "CANCELED"]
    peak, _ = peak_per_second(order_times + cancel_times)

    assert declared.orders == len(rows) == risk["orders_sent"] > 0
    assert declared.cancels == risk["cancels_sent"] >= len(cancel_times) > 0
    assert declared.per_day == risk["messages_today"]
    assert declared.peak_per_second == peak == risk["peak_per_second"]
    assert declared.largest_order_value == max(price * quantity for _, price, quantity, _, _ in rows)
    assert declared.largest_order_quantity == max(quantity for _, _, quantity, _, _ in rows)
    # the simulated exchange received exactly what the declaration counted
    stats = log.route.stats  # type: ignore[attr-defined]
    assert (stats.orders_received, stats.cancels_received) == (declared.orders, declared.cancels)
    assert declared.symbols == ("600103.SH", "600133.SH", "600251.SH", "600258.SH", "600446.SH", "600566.SH")
    assert declared.strategy.startswith("TWAP execution of target portfolios")
    assert declared.bought_value > 0
    assert declared.sold_value > 0
    assert declared.peak_buy_committed >= declared.bought_value


@pytest.mark.slow
def test_declare_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["declare", str(config), "--replay-data", str(SAMPLE), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {
        "account",
        "trade_date",
        "strategy",
        "algos",
        "jobs",
        "symbols",
        "execution_method",
        "software",
        "orders",
        "cancels",
        "peak_messages_per_second",
        "peak_second_at_ns",
        "messages_per_day",
        "largest_order_value_yuan",
        "largest_order_quantity",
        "capital",
        "thresholds",
        "caps",
    }
    assert out["account"] == "8800123456"
    assert out["trade_date"] == "2021-12-01"
    assert out["messages_per_day"] == out["orders"] + out["cancels"]
    assert out["thresholds"] == {"hft_per_second": HFT_PER_SECOND, "hft_per_day": HFT_PER_DAY}
    assert out["caps"]["max_messages_per_second"] == 20
    assert out["caps"]["max_order_value_yuan"] == 500000.0
    assert out["execution_method"].startswith("sim:")
    assert out["software"].startswith("zhixing ")
    assert set(out["capital"]) == {
        "starting_cash_yuan",
        "peak_buy_committed_yuan",
        "peak_net_drawn_yuan",
        "bought_value_yuan",
        "sold_value_yuan",
    }
    assert out["capital"]["starting_cash_yuan"] == 2000000.0
    assert len(out["jobs"]) == 1
    assert out["jobs"][0].startswith("rebalance (execute): ")


def test_a_config_without_a_trading_job_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, trading=False)
    with pytest.raises(ConfigError, match="no job trades"):
        asyncio.run(declare_day(load_checked(config), SAMPLE, tmp_path / "declare.db"))
    assert main(["declare", str(config), "--replay-data", str(SAMPLE)]) == 2
    err = capsys.readouterr().err
    assert "no job trades (signal, summary)" in err
    assert 'kind = "execute"' in err
    assert not (tmp_path / "targets.csv").exists()  # refused before anything ran


def test_cash_and_positions_given_replace_the_configs(tmp_path: Path) -> None:
    config = load_checked(write_config(tmp_path))
    held = tmp_path / "positions.csv"
    held.write_text("symbol,quantity\n600000.SH,1000\n", encoding="utf-8")
    replaced = with_account(config, cash="500000", positions=held)
    assert replaced.account.cash == 500_000_000  # milli-yuan
    assert replaced.account.positions == {"600000.SH": 1000}
    assert with_account(config, cash=None, positions=None).account == config.account


@pytest.mark.slow
def test_a_day_on_which_nothing_is_sent_is_refused_with_the_jobs_outcome(tmp_path: Path) -> None:
    config = load_checked(write_config(tmp_path))  # the execute job fires at 09:30
    with pytest.raises(
        InputError, match="nothing was sent on the replayed day 2021-12-01: no execute job fired"
    ):
        asyncio.run(declare_day(config, SAMPLE, tmp_path / "declare.db", until="09:20"))
