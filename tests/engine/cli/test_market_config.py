"""``[market] status_file``: the securities' statuses a run's rules, its account and its simulated
exchange use (issue 20), read and checked at load through the one config loader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zhixing.engine.cli.routes import build_route
from zhixing.engine.cli.run_cmd import engine_settings
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.errors import ConfigError
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.replay.exchange import SimExchange

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"
DAY = date(2021, 12, 1)

CONFIG = f"""
[account]
id = "8800123456"
cash_yuan = 1000000

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
[route.sim]
data = "{SAMPLE.as_posix()}"
"""


def write(folder: Path, market: str = "") -> Path:
    path = folder / "zhixing.toml"
    path.write_text(CONFIG + market, encoding="utf-8")
    return path


def test_a_status_file_makes_its_st_name_trade_in_the_5_percent_band(tmp_path: Path) -> None:
    (tmp_path / "status.csv").write_text(
        "symbol,status,from,to\n600103.SH,st,2021-01-04,2021-12-31\n", encoding="utf-8"
    )
    config = load_config(write(tmp_path, '\n[market]\nstatus_file = "status.csv"\n'))
    rules = engine_settings(config).market_rules
    assert rules.instrument("600103.SH", DAY).limit_pct_bp == 500
    assert rules.instrument("600103.SH", DAY).is_st
    assert rules.instrument("600107.SH", DAY).limit_pct_bp == 1000  # not in the file: normal
    assert rules.instrument("600103.SH", date(2022, 1, 4)).limit_pct_bp == 1000  # after its span

    clock = SimClock(shanghai_ns(DAY, "09:00"))
    route = build_route(config, clock, TradingCalendar(), rules=rules)
    assert isinstance(route.adapter, SimExchange)
    assert route.adapter.instrument("600103.SH").limit_pct_bp == 500  # the exchange knows it too
    shipped = build_route(load_config(write(tmp_path)), clock, TradingCalendar())
    assert isinstance(shipped.adapter, SimExchange)
    assert shipped.adapter.instrument("600103.SH").limit_pct_bp == 1000


def test_a_bad_status_file_is_a_config_error_naming_the_key_and_row(tmp_path: Path) -> None:
    (tmp_path / "status.csv").write_text("symbol,status,from,to\n600103.SH,sick,,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"market\.status_file.*row 2.*sick"):
        load_config(write(tmp_path, '\n[market]\nstatus_file = "status.csv"\n'))


def test_a_missing_status_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"market\.status_file.*nowhere.csv: file not found"):
        load_config(write(tmp_path, '\n[market]\nstatus_file = "nowhere.csv"\n'))


def test_an_unknown_market_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="market"):
        load_config(write(tmp_path, '\n[market]\nstatus = "status.csv"\n'))
