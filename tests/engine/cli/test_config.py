"""The live-run config file: a full example loads; every mistake is a ConfigError naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.engine.config import load_config
from zhixing.engine.errors import ConfigError

FULL = """
shutdown = "cancel"

[account]
id = "8800123456"
cash_yuan = 1000000
positions = { "600000.SH" = 1000 }

[store]
path = "state/zhixing.db"

[route]
kind = "fileorder"
connect_timeout_s = 900
[route.fileorder]
input_dir = "C:/gm/fileorder/input"
output_dir = "C:/gm/fileorder/output"
account_id = "8800123456"
state_dir = "state"

[feed]
kind = "qmt"
stale_after_s = 20
resubscribe_after_s = 45
[feed.qmt]
mode = "whole"

[risk]
max_messages_per_second = 20
max_order_value_yuan = 500000

[notify.email]
host = "smtp.example.com"
port = 465
security = "ssl"
username = "desk@example.com"
password = "env:ZHIXING_SMTP_PASSWORD"
recipients = ["desk@example.com"]

[notify.wecom]
webhook_url = "keyring:zhixing/wecom"

[[jobs]]
name = "signal"
cron = "0 9 * * *"
kind = "signal"
command = ["python", "signal.py"]
timeout_s = 600

[[jobs]]
name = "execute"
cron = "30 9 * * *"
kind = "execute"
targets = "targets.csv"
algo = "twap"
window_minutes = 60
params = { price_policy = "passive" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zhixing.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_example_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.account.id == "8800123456"
    assert config.account.cash == 1_000_000_000  # milli-yuan
    assert config.account.positions == {"600000.SH": 1000}
    assert config.store.path == tmp_path / "state" / "zhixing.db"
    assert config.store.synchronous == "FULL"
    assert config.route.kind == "fileorder"
    assert config.route.settings["input_dir"] == "C:/gm/fileorder/input"
    assert config.connect_timeout_s == 900.0
    assert config.resubscribe_after_s == 45.0
    assert (config.feed.kind, config.feed.settings["mode"], config.stale_after_s) == ("qmt", "whole", 20.0)
    assert config.risk.max_messages_per_second == 20
    assert config.risk.max_order_value == 500_000_000  # milli-yuan
    assert [n.kind for n in config.notify] == ["email", "wecom"]
    assert [j.name for j in config.jobs] == ["signal", "execute"]
    assert config.jobs[0].command == ("python", "signal.py")
    assert config.jobs[1].targets == tmp_path / "targets.csv"
    assert config.jobs[1].params == {"price_policy": "passive"}
    assert sorted(key for key, _ in config.secret_keys()) == [
        "notify.email.password",
        "notify.wecom.webhook_url",
    ]


def test_feed_defaults_to_the_route_kind(tmp_path: Path) -> None:
    text = '[account]\nid = "1"\n[store]\npath = "z.db"\n[route]\nkind = "qmt"\n[route.qmt]\npath = "x"\n'
    config = load_config(write(tmp_path, text))
    assert config.feed.kind == "qmt"
    assert config.jobs == ()
    assert config.connect_timeout_s == 600.0  # ten minutes for the terminal to come up


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('kind = "fileorder"', 'kind = "ctp"', "route.kind"),
        ('id = "8800123456"', "id = 8800123456", "account.id"),
        ('[store]\npath = "state/zhixing.db"', '[store]\npaht = "x.db"', "store.path"),
        ('path = "state/zhixing.db"', 'path = "z.db"\nsynchonous = "FULL"', "store.synchonous"),
        ("stale_after_s = 20", 'stale_after_s = "soon"', "feed.stale_after_s"),
        ("connect_timeout_s = 900", "connect_timeout_s = -1", "route.connect_timeout_s"),
        ("resubscribe_after_s = 45", "resubscribe_after_s = 0.5", "feed.resubscribe_after_s"),
        ("max_messages_per_second = 20", 'max_messages_per_second = "20"', "risk.max_messages_per_second"),
        ('password = "env:ZHIXING_SMTP_PASSWORD"', 'password = "hunter2"', "notify.email.password"),
        (
            'webhook_url = "keyring:zhixing/wecom"',
            'webhook_url = "https://qyapi"',
            "notify.wecom.webhook_url",
        ),
        ('kind = "signal"', 'kind = "trade"', "jobs[0].kind"),
        ('command = ["python", "signal.py"]', "command = []", "jobs[0].command"),
        ('targets = "targets.csv"\n', "", "jobs[1].targets"),
        ('name = "execute"', 'name = "signal"', "jobs[1].name"),
        ("window_minutes = 60", "window_minutes = 0", "jobs[1].window_minutes"),
        ('shutdown = "cancel"', 'shutdown = "panic"', "shutdown"),
        (
            'positions = { "600000.SH" = 1000 }',
            'positions = { "600000.SH" = -1 }',
            "account.positions.600000.SH",
        ),
    ],
)
def test_each_mistake_names_the_file_and_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in FULL
    path = write(tmp_path, FULL.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert f"'{key}'" in str(info.value)


def test_secret_value_never_appears_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, FULL.replace('"env:ZHIXING_SMTP_PASSWORD"', '"canary-s3cr3t"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "canary-s3cr3t" not in str(info.value)


def test_missing_file_bad_toml_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[account\n"))
    path = tmp_path / "gbk.toml"
    path.write_bytes('[account]\nid = "账户"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_config_check_prints_the_route_and_never_a_secret_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FULL)
    monkeypatch.delenv("ZHIXING_SMTP_PASSWORD", raising=False)
    assert main(["config", "check", str(path)]) == 1  # a secret is not set: said, and not OK to run
    out = capsys.readouterr().out
    assert "ZHIXING_SMTP_PASSWORD (NOT SET)" in out
    assert "notify.email.password" in out
    monkeypatch.setenv("ZHIXING_SMTP_PASSWORD", "canary-7f3a")
    assert main(["config", "check", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert "canary-7f3a" not in out
    assert summary["account"] == "88******56"
    assert summary["route"]["kind"] == "fileorder"
    assert summary["notify"]["email"]["password"] == "env:ZHIXING_SMTP_PASSWORD (set)"
    assert [j["name"] for j in summary["jobs"]] == ["signal", "execute"]
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_the_shipped_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "sim_day" / "zhixing.toml"
    assert main(["config", "check", str(example)]) == 0
    assert "'kind': 'sim'" in capsys.readouterr().out.replace('"', "'")
