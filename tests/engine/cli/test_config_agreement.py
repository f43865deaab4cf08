"""``zhixing config check`` and ``zhixing run`` agree: what one refuses the other refuses, with the same
exit status and a message naming the file and the dotted key; what one accepts the other runs.

Every malformed file below goes through both commands (``engine.cli.main``). The run of a valid file is
a sim day stopped at 08:31, before the market opens and before any job fires: nothing trades.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zhixing.engine.cli import main
from zhixing.engine.stop import EXIT_BAD_INPUT

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"

VALID = f"""
shutdown = "cancel"

[account]
id = "8800123456"
cash_yuan = 1000000
positions = {{ "600566.SH" = 2000 }}

[store]
path = "state/zhixing.db"

[route]
kind = "sim"
connect_timeout_s = 60
[route.sim]
data = "{SAMPLE.as_posix()}"
latency_ms = 20

[risk]
max_messages_per_second = 20
max_messages_per_day = 5000
max_order_value_yuan = 500000

[clock]
check_interval_s = 1

[[jobs]]
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""

FILEORDER = """
[account]
id = "8800123456"
[store]
path = "state/zhixing.db"
[route]
kind = "fileorder"
[route.fileorder]
input_dir = "in"
output_dir = "out"
account_id = "8800123456"
state_dir = "state"
[feed]
kind = "qmt"
"""

QMT = """
[account]
id = "8800123456"
[store]
path = "state/zhixing.db"
[route]
kind = "qmt"
[route.qmt]
path = "C:/qmt/userdata_mini"
account_id = "8800"
"""


def edit(old: str, new: str, base: str = VALID) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


# (what is wrong, the file's text, the dotted key both messages must name)
MALFORMED = [
    ("typo in [account]", edit("cash_yuan = 1000000", "cash_yaun = 1000000"), "account.cash_yaun"),
    (
        "typo in [store]",
        edit('path = "state/zhixing.db"', 'path = "z.db"\nsynchonous = "FULL"'),
        "store.synchonous",
    ),
    ("typo in [route]", edit("connect_timeout_s = 60", "conect_timeout_s = 60"), "route.conect_timeout_s"),
    ("typo in [route.sim]", edit("latency_ms = 20", "latency = 20"), "route.sim.latency"),
    (
        "typo in [risk]",
        edit("max_messages_per_day = 5000", "max_orders_per_day = 5000"),
        "risk.max_orders_per_day",
    ),
    ("typo in [feed]", VALID + '[feed]\nkind = "sim"\nstale_after = 5\n', "feed.stale_after"),
    ("typo in [[jobs]]", edit('kind = "summary"', 'kind = "summary"\ntimeout = 5'), "jobs[0].timeout"),
    ("typo in [clock]", edit("check_interval_s = 1", "check_interval = 1"), "clock.check_interval"),
    ("typo in [calendar]", VALID + '[calendar]\nholiday = "h.txt"\n', "calendar.holiday"),
    ("typo in [backup]", VALID + '[backup]\ndir = "b"\nkeepdays = 3\n', "backup.keepdays"),
    (
        "typo in a notify channel",
        VALID + '[notify.wecom]\nwebhook_url = "env:X"\ntimout_s = 3\n',
        "notify.wecom.timout_s",
    ),
    ("unknown notify channel", VALID + '[notify.slack]\nwebhook_url = "env:X"\n', "notify.slack"),
    ("unknown top-level key", "shutdwon = 'leave'\n" + VALID, "shutdwon"),
    ("account id not a string", edit('id = "8800123456"', "id = 8800123456"), "account.id"),
    (
        "cap written as a string",
        edit("max_messages_per_second = 20", 'max_messages_per_second = "20"'),
        "risk.max_messages_per_second",
    ),
    ("negative timeout", edit("connect_timeout_s = 60", "connect_timeout_s = -1"), "route.connect_timeout_s"),
    (
        "zero quantity cap",
        VALID.replace("[risk]\n", "[risk]\nmax_order_quantity = 0\n"),
        "risk.max_order_quantity",
    ),
    ("negative position", edit('"600566.SH" = 2000', '"600566.SH" = -5'), "account.positions.600566.SH"),
    (
        "per-second cap at the regulator's line",
        edit("max_messages_per_second = 20", "max_messages_per_second = 300"),
        "risk.max_messages_per_second",
    ),
    (
        "per-day cap above the regulator's line",
        edit("max_messages_per_day = 5000", "max_messages_per_day = 25000"),
        "risk.max_messages_per_day",
    ),
    (
        "cancel reserve leaves no orders",
        VALID.replace("[risk]\n", "[risk]\ncancel_reserve_pct = 100\n"),
        "risk.cancel_reserve_pct",
    ),
    (
        "not-a-number value",
        edit("max_order_value_yuan = 500000", "max_order_value_yuan = nan"),
        "risk.max_order_value_yuan",
    ),
    ("bad time string", VALID + '[backup]\ndir = "b"\nat = "25:00"\n', "backup.at"),
    ("bad cron", edit('cron = "5 15 * * *"', 'cron = "5 15 * *"'), "jobs[0].cron"),
    ("unknown adapter", edit('kind = "sim"', 'kind = "ctp"'), "route.kind"),
    ("missing account id", edit('id = "8800123456"\n', ""), "account.id"),
    (
        "duplicate job names",
        VALID + '[[jobs]]\nname = "summary"\ncron = "0 9 * * *"\nkind = "summary"\n',
        "jobs[1].name",
    ),
    (
        "signal job without command",
        VALID + '[[jobs]]\nname = "sig"\ncron = "0 9 * * *"\nkind = "signal"\n',
        "jobs[1].command",
    ),
    ("sim route fed by qmt", VALID + '[feed]\nkind = "qmt"\n', "feed.kind"),
    (
        "secret written in the file",
        VALID + '[notify.wecom]\nwebhook_url = "https://qyapi.example"\n',
        "notify.wecom.webhook_url",
    ),
    (
        "mail without recipients",
        VALID + '[notify.email]\nhost = "smtp.example.com"\nsender = "a@example.com"\n',
        "notify.email.recipients",
    ),
    (
        "typo in [route.fileorder]",
        edit('state_dir = "state"', 'state_dir = "state"\npoll_interval = 5', FILEORDER),
        "route.fileorder.poll_interval",
    ),
    (
        "fileorder commission out of range",
        edit('state_dir = "state"', 'state_dir = "state"\ncommission_ppm = 5000', FILEORDER),
        "route.fileorder.commission_ppm",
    ),
    (
        "fileorder missing account id",
        edit('account_id = "8800123456"\n', "", FILEORDER),
        "route.fileorder.account_id",
    ),
    (
        "typo in [route.qmt]",
        edit('account_id = "8800"', 'account_id = "8800"\nsesion_id = 2', QMT),
        "route.qmt.sesion_id",
    ),
]


def run_both(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[tuple[int, str], tuple[int, str]]:
    check = main(["config", "check", str(path)])
    check_err = capsys.readouterr().err
    run = main(["run", str(path), "--until", "08:31"])
    run_err = capsys.readouterr().err
    return (check, check_err), (run, run_err)


@pytest.mark.parametrize(("problem", "text", "key"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_check_and_run_refuse_the_same_file_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str, text: str, key: str
) -> None:
    path = tmp_path / "zhixing.toml"
    path.write_text(text, encoding="utf-8")
    (check, check_err), (run, run_err) = run_both(path, capsys)
    assert check == run == EXIT_BAD_INPUT, (problem, check_err, run_err)
    for err in (check_err, run_err):
        assert str(path) in err
        assert re.search(rf"key '{re.escape(key)}'", err), (problem, err)
    assert not (tmp_path / "state").exists()  # the run stopped before it opened a journal


def test_non_utf8_bytes_are_refused_by_both_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "zhixing.toml"
    path.write_bytes(VALID.replace('id = "8800123456"', 'id = "账户"').encode("gbk"))
    (check, check_err), (run, run_err) = run_both(path, capsys)
    assert check == run == EXIT_BAD_INPUT
    for err in (check_err, run_err):
        assert str(path) in err
        assert "not UTF-8" in err


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "utf8-bom"])
def test_a_valid_file_is_accepted_by_both_with_or_without_a_bom(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bom: bytes
) -> None:
    path = tmp_path / "zhixing.toml"
    path.write_bytes(bom + VALID.encode("utf-8"))
    assert main(["config", "check", str(path)]) == 0
    assert f"config {path}: OK" in capsys.readouterr().out
    assert main(["run", str(path), "--until", "08:31"]) == 0
    out = capsys.readouterr().out
    assert "no order of ours works at the broker" in out  # it opened, reconciled and closed: nothing sent
    assert (tmp_path / "state" / "zhixing.db").exists()


def test_every_command_reads_its_config_through_the_one_loader() -> None:
    """Only ``engine.cli.routes.load_checked`` calls ``engine.config.load_config`` in the CLI."""
    cli = Path(__file__).resolve().parents[3] / "engine" / "cli"
    callers = sorted(p.name for p in cli.glob("*.py") if "load_config(" in p.read_text(encoding="utf-8"))
    assert callers == ["routes.py"]
    users = sorted(p.name for p in cli.glob("*.py") if "load_checked(" in p.read_text(encoding="utf-8"))
    assert {"config_cmd.py", "run_cmd.py", "live_ops.py", "account_cmd.py"} <= set(users)
