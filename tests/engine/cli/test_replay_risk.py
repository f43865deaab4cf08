"""``zhixing replay --config CFG`` and ``--risk KEY=VALUE``: a replay meets the gate a live run would.

The limits are validated by the config file's own ``[risk]`` model (``engine.config_model.RiskModel``), so
a replay refuses what ``zhixing run`` refuses (a typo, a cap at the regulator's line), naming where the
value came from, and the report's gate section shows the caps it ran under.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.cli.test_config_agreement import edit
from zhixing.engine.cli import main

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data"
REPLAY = [
    "replay",
    "--data",
    str(SAMPLE / "snapshots_20211201"),
    "--orders",
    str(SAMPLE / "demo_orders.csv"),
    "--start",
    "09:30",
    "--end",
    "09:36",
    "--json",
]


def gate_of(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    assert main([*REPLAY, *extra]) == 0
    gate = json.loads(capsys.readouterr().out)["gate"]
    assert isinstance(gate, dict)
    return gate


@pytest.mark.slow
def test_risk_flags_set_the_caps_the_replay_meets(capsys: pytest.CaptureFixture[str]) -> None:
    default = gate_of(capsys)
    capped = gate_of(capsys, "--risk", "max_messages_per_second=2", "--risk", "max_messages_per_day=30")
    assert default["max_messages_per_second"] == 50
    assert (capped["max_messages_per_second"], capped["max_messages_per_day"]) == (2, 30)
    assert capped["peak_per_second"] <= 2 < default["peak_per_second"]  # type: ignore[operator]
    assert capped["messages_today"] <= 30 < default["messages_today"]  # type: ignore[operator]


@pytest.mark.slow
def test_a_live_configs_risk_table_is_the_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "zhixing.toml"
    cfg.write_text(edit("max_messages_per_second = 20", "max_messages_per_second = 3"), encoding="utf-8")
    gate = gate_of(capsys, "--config", str(cfg))
    assert gate["max_messages_per_second"] == 3
    assert gate["max_messages_per_day"] == 5000  # the file's, not the default 10,000
    over = gate_of(capsys, "--config", str(cfg), "--risk", "max_messages_per_second=2")
    assert over["max_messages_per_second"] == 2  # --risk over the file


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--risk", "max_mesages_per_second=3"], "--risk: key 'risk.max_mesages_per_second': unknown key"),
        (["--risk", "max_messages_per_second=300"], "regulator's high-frequency line"),
        (["--risk", "max_messages_per_second=fast"], "--risk: key 'risk.max_messages_per_second'"),
        (["--risk", "max_messages_per_second"], "--risk wants KEY=VALUE"),
    ],
)
def test_a_bad_risk_flag_is_refused_naming_the_key(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*REPLAY, *flags]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err


def test_a_config_the_run_refuses_is_refused_by_the_replay_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "zhixing.toml"
    cfg.write_text(edit("max_messages_per_second = 20", "max_messages_per_second = 300"), encoding="utf-8")
    assert main([*REPLAY, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err
    assert "risk.max_messages_per_second" in err
