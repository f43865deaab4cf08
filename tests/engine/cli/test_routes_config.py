"""The composition root builds each configured route; the 掘金 route runs under gm's own ``run()`` (the
fake's, here), with the engine's loop on a worker thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gm_fake import FakeGmApi
from zhixing.adapters.fileorder import FileOrderAdapter
from zhixing.adapters.gm import GmBrokerAdapter, GmQuoteFeed
from zhixing.adapters.qmt import QmtBrokerAdapter, QmtQuoteFeed
from zhixing.engine.cli import main, routes
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.errors import ConfigError
from zhixing.engine.market import TradingCalendar

BASE = """
[account]
id = "acct-1"
[store]
path = "z.db"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zhixing.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return path


def test_fileorder_and_qmt_routes_are_built_from_their_tables(tmp_path: Path) -> None:
    fileorder = write(
        tmp_path,
        '[route]\nkind = "fileorder"\n[route.fileorder]\ninput_dir = "in"\noutput_dir = "out"\n'
        'account_id = "acct-1"\nstate_dir = "state"\n[feed]\nkind = "qmt"\n',
    )
    route = routes.build_route(load_config(fileorder), SimClock(0), TradingCalendar())
    assert isinstance(route.adapter, FileOrderAdapter)
    assert isinstance(route.feed, QmtQuoteFeed)
    qmt = write(
        tmp_path, '[route]\nkind = "qmt"\n[route.qmt]\npath = "C:/qmt/userdata_mini"\naccount_id = "8800"\n'
    )
    route = routes.build_route(load_config(qmt), SimClock(0), TradingCalendar())
    assert isinstance(route.adapter, QmtBrokerAdapter)
    assert isinstance(route.feed, QmtQuoteFeed)


def test_config_check_names_a_bad_route_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path, '[route]\nkind = "qmt"\n[route.qmt]\npath = "x"\naccount_id = "1"\nsesion_id = 2\n'
    )
    assert main(["config", "check", str(path)]) == 2
    assert "route.qmt.sesion_id" in capsys.readouterr().err
    path = write(tmp_path, '[route]\nkind = "gm"\n[route.gm]\naccount_id = "a"\n')
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "route.gm" in err
    assert "strategy_id" in err


def test_gm_route_runs_the_engine_beside_gms_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeGmApi("acct-1", cash=500_000.0)
    monkeypatch.setattr(routes, "_gm_api", lambda config: api)
    config = load_config(
        write(tmp_path, '[route]\nkind = "gm"\n[route.gm]\naccount_id = "acct-1"\nstrategy_id = "s-1"\n')
    )

    async def engine(bridge: Any) -> tuple[str, str, int]:
        route = routes.build_route(config, SimClock(0), TradingCalendar(), gm_bridge=bridge)
        assert isinstance(route.adapter, GmBrokerAdapter)
        assert isinstance(route.feed, GmQuoteFeed)
        route.adapter.bind(lambda event: None)
        await route.adapter.connect()
        account = await route.adapter.query_account()
        await route.adapter.close()
        return type(route.adapter).__name__, type(route.feed).__name__, account.cash

    assert routes.run_route(config, engine) == ("GmBrokerAdapter", "GmQuoteFeed", 500_000_000)
    assert api.run_args["strategy_id"] == "s-1"  # gm's run() was the one driving


def test_gm_route_without_the_sdk_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        write(tmp_path, '[route]\nkind = "gm"\n[route.gm]\naccount_id = "acct-1"\nstrategy_id = "s-1"\n')
    )
    monkeypatch.setitem(__import__("sys").modules, "gm", None)
    with pytest.raises(ConfigError, match="pip install --no-deps gm"):
        routes.run_route(config, lambda bridge: None)  # type: ignore[arg-type,return-value]


def test_adapter_flag_picks_another_route_table_of_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '[route]\nkind = "qmt"\n[route.qmt]\npath = "C:/qmt/userdata_mini"\naccount_id = "8800"\n'
        '[route.fileorder]\ninput_dir = "in"\noutput_dir = "out"\naccount_id = "acct-1"\nstate_dir = "st"\n'
        '[feed]\nkind = "qmt"\n',
    )
    assert load_config(path).route.kind == "qmt"
    switched = load_config(path, adapter="fileorder")
    assert switched.route.kind == "fileorder"
    assert switched.route.settings["input_dir"] == "in"
    assert isinstance(routes.build_route(switched, SimClock(0), TradingCalendar()).adapter, FileOrderAdapter)
    assert main(["config", "check", str(path), "--adapter", "fileorder", "--json"]) == 0
    assert '"kind": "fileorder"' in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"--adapter gm: the config has no \[route.gm\] table"):
        load_config(path, adapter="gm")
