"""The terminal's folders are a trust boundary: folders others can write or own are refused, links are
never followed, files are owner-only, and no identifier can lead a path out of its folder.

Real folders, real files, real symlinks and FIFOs. A folder of another user is made with ``chown``
when the tests run as root; otherwise (and in every run) the user is swapped instead: the trust check
is asked as if zhixing ran under another uid.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import sys
from pathlib import Path

import pytest

from zhixing.adapters.fileorder import FileOrderAdapter, FileOrderConfig, trust
from zhixing.adapters.fileorder.format import (
    EXECUTION_REPORT_FILE,
    EXECUTION_REPORT_HEADER,
    ORDER_STATUS_HEADER,
)
from zhixing.adapters.fileorder.trust import UntrustedPathError
from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger
from zhixing.engine import names
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.enums import OrderStatus, Side
from zhixing.engine.errors import BrokerError, ConfigError
from zhixing.engine.events import OrderEvent, OrderFilled
from zhixing.engine.names import UnsafeNameError
from zhixing.engine.orders import Order

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX owners, modes, FIFOs")

START = 1_638_322_200_000_000_000
ACCOUNT = "1395dc4f-3601-11eb-bda5-001018b67b94"
OTHER = "88001234"
BOM = b"\xef\xbb\xbf"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _line(values: list[object]) -> bytes:
    return (",".join(str(v) for v in values) + "\r\n").encode("utf-8")


def _exec_row(account: str, sid: str, exec_id: str, volume: int) -> bytes:
    values: dict[str, object] = dict.fromkeys(EXECUTION_REPORT_HEADER, "")
    values.update(
        {
            "account_id": account,
            "sid": sid,
            "exec_id": exec_id,
            "symbol": "SHSE.600000",
            "order_business(order_biz)": 1,
            "exec_type": 15,
            "price": "9.86",
            "volume": volume,
        }
    )
    return _line([values[k] for k in EXECUTION_REPORT_HEADER])


def _status_row(account: str, sid: str, status: int, filled: int) -> bytes:
    values: dict[str, object] = dict.fromkeys(ORDER_STATUS_HEADER, "")
    values.update(
        {
            "account_id": account,
            "sid": sid,
            "cl_ord_id": f"CL-{account[:4]}",
            "symbol": "SHSE.600000",
            "order_business(order_biz)": 1,
            "status": status,
            "price": "9.87",
            "volume": 1000,
            "filled_volume(filled_vol)": filled,
        }
    )
    return _line([values[k] for k in ORDER_STATUS_HEADER])


def _config(tmp_path: Path, account: str = ACCOUNT, **kwargs: object) -> FileOrderConfig:
    return FileOrderConfig(
        input_dir=tmp_path / "scan",
        output_dir=tmp_path / "push",
        account_id=account,
        state_dir=tmp_path / "state",
        **kwargs,  # type: ignore[arg-type]
    )


def _folders(config: FileOrderConfig) -> None:
    config.input_dir.mkdir(exist_ok=True)
    config.account_output_dir.mkdir(parents=True, exist_ok=True)


def _adapter(config: FileOrderConfig, events: list[OrderEvent] | None = None) -> FileOrderAdapter:
    adapter = FileOrderAdapter(config, SimClock(START))
    adapter.bind((events if events is not None else []).append)
    return adapter


def _order(sid: str = "Z1") -> Order:
    return Order(client_order_id=sid, symbol="600000.SH", side=Side.BUY, price=9870, quantity=500)


# ------------------------------------------------------------------------------------- folders
async def test_a_world_writable_input_folder_is_refused_at_connect(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    config.input_dir.chmod(0o777)
    with pytest.raises(UntrustedPathError, match=r"scan can be written by every user.*chmod go-w"):
        await _adapter(config).connect()
    assert not config.ledger_path.exists()  # refused before anything was opened


async def test_a_sticky_world_writable_input_folder_is_refused_too(tmp_path: Path) -> None:
    """Sticky stops others renaming our files, not creating theirs: an order planted in the input
    folder is executed by the terminal. Only folders *above* may be sticky (``/tmp``)."""
    config = _config(tmp_path)
    _folders(config)
    config.input_dir.chmod(0o1777)
    with pytest.raises(UntrustedPathError, match="every user"):
        await _adapter(config).connect()


async def test_a_world_writable_output_folder_is_refused_at_the_next_poll(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    adapter = _adapter(config)
    await adapter.connect()
    try:
        config.account_output_dir.chmod(0o757)  # changed mid-day
        with pytest.raises(UntrustedPathError, match=str(config.account_output_dir)):
            adapter.poll()
        with pytest.raises(BrokerError):  # the in-flight checker's query sees it too
            await adapter.query_orders()
    finally:
        await adapter.close()


async def test_a_drop_into_a_folder_opened_to_others_mid_day_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    adapter = _adapter(config)
    await adapter.connect()
    try:
        config.input_dir.chmod(0o777)
        with pytest.raises(UntrustedPathError, match="could not write"):
            await adapter.submit(_order())
        assert list(config.input_dir.glob("*.order.csv")) == []
    finally:
        await adapter.close()


def test_a_group_writable_folder_is_accepted_only_for_the_private_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    folder.chmod(0o770)
    monkeypatch.setattr(trust, "_private_group", lambda gid, uid: False)
    with pytest.raises(UntrustedPathError, match="can be written by group"):
        trust.check_folder(folder, "route.fileorder.input_dir")
    monkeypatch.setattr(trust, "_private_group", lambda gid, uid: True)  # umask 002, group = the user
    trust.check_folder(folder, "route.fileorder.input_dir")


def test_a_folder_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "push"
    folder.mkdir(mode=0o755)
    me = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: me + 4242)  # zhixing runs as another user
    with pytest.raises(UntrustedPathError, match=rf"push belongs to user {me}.*chown"):
        trust.check_folder(folder, "route.fileorder.output_dir")


@pytest.mark.skipif(not AS_ROOT, reason="chown to another uid needs root")
def test_a_folder_chowned_to_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "push"
    folder.mkdir(mode=0o755)
    os.chown(folder, 4242, -1)
    with pytest.raises(UntrustedPathError, match="belongs to user 4242"):
        trust.check_folder(folder, "route.fileorder.output_dir")


@pytest.mark.skipif(not AS_ROOT, reason="lchown to another uid needs root")
def test_a_symlink_of_another_user_on_the_path_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "scan"
    link.symlink_to(real)
    os.lchown(link, 4242, -1)  # its owner could repoint it at a folder of theirs at any time
    with pytest.raises(UntrustedPathError, match=r"symlink .*scan belongs to user 4242"):
        trust.check_folder(link, "route.fileorder.input_dir")


def test_a_folder_above_that_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    above = tmp_path / "shared"
    folder = above / "scan"
    folder.mkdir(parents=True)
    above.chmod(0o777)  # anyone can rename scan away and put their own in its place
    with pytest.raises(UntrustedPathError, match=r"the folder above it, .*shared, can be written by every"):
        trust.check_folder(folder, "route.fileorder.input_dir")
    above.chmod(0o1777)  # like /tmp: they cannot
    trust.check_folder(folder, "route.fileorder.input_dir")


def test_a_missing_or_non_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UntrustedPathError, match="does not exist"):
        trust.check_folder(tmp_path / "nope", "route.fileorder.input_dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UntrustedPathError, match="not a folder"):
        trust.check_folder(tmp_path / "file", "route.fileorder.input_dir")


# ------------------------------------------------------------------------------------- reading
async def test_a_symlinked_output_file_is_refused_and_not_read(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    bait = tmp_path / "bait.csv"  # a fill that never happened
    bait.write_bytes(BOM + _line(list(EXECUTION_REPORT_HEADER)) + _exec_row(ACCOUNT, "Z1", "E1", 500))
    (config.account_output_dir / EXECUTION_REPORT_FILE).symlink_to(bait)
    events: list[OrderEvent] = []
    adapter = _adapter(config, events)
    with pytest.raises(UntrustedPathError, match=r"execution_report.csv is a symlink.*delete it"):
        await adapter.connect()
    with pytest.raises(UntrustedPathError):
        adapter.poll()
    assert not [e for e in events if isinstance(e, OrderFilled)]


async def test_a_symlinked_snapshot_file_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    (tmp_path / "elsewhere.csv").write_text("account_id,balance\r\n")
    (config.account_output_dir / "cash.csv").symlink_to(tmp_path / "elsewhere.csv")
    adapter = _adapter(config)
    await adapter.connect()
    try:
        with pytest.raises(UntrustedPathError, match=r"cash\.csv is a symlink"):
            await adapter.query_account()
    finally:
        await adapter.close()


async def test_a_fifo_planted_as_an_output_file_does_not_hang_the_poll(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    os.mkfifo(config.account_output_dir / EXECUTION_REPORT_FILE)  # an open() for reading would block
    with pytest.raises(UntrustedPathError, match="not a regular file"):
        await _adapter(config).connect()


# ------------------------------------------------------------------------------------- writing
def _writer(tmp_path: Path, *, marker: bool = False) -> OrderFileWriter:
    folder = tmp_path / "scan"
    folder.mkdir(exist_ok=True)
    return OrderFileWriter(
        folder, SidLedger(tmp_path / "state" / "sids.sqlite"), SimClock(START), completion_marker=marker
    )


def _row(sid: str) -> tuple[object, ...]:
    return (sid, ACCOUNT, "SHSE.600000", 100, 1, 1, "9.87", "zhixing")


def test_a_symlink_planted_at_the_temp_name_is_not_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    monkeypatch.setattr(secrets, "token_hex", lambda n: "0" * (2 * n))  # the name, guessed
    name = f"{START}_{os.getpid()}_000001.order.csv"
    (writer.input_dir / f".{name}.{'0' * 16}.tmp").symlink_to(victim)
    with pytest.raises(BrokerError, match="already exists"):
        writer.drop_order(_row("Z1"))
    assert victim.read_text() == "precious"
    assert list(writer.input_dir.glob("*.order.csv")) == []
    assert writer.ledger.state("Z1") == "failed"  # never reused


def test_temp_names_are_not_predictable(tmp_path: Path) -> None:
    names_seen = {trust.temp_name("a.order.csv") for _ in range(100)}
    assert len(names_seen) == 100
    assert all(n.startswith(".a.order.csv.") and n.endswith(".tmp") for n in names_seen)


def test_a_file_planted_at_the_final_name_is_never_overwritten(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    name = f"{START}_{os.getpid()}_000001.order.csv"
    (writer.input_dir / name).symlink_to(victim)
    with pytest.raises(BrokerError, match="never overwrites"):
        writer.drop_order(_row("Z1"))
    assert victim.read_text() == "precious"
    assert [p.name for p in writer.input_dir.iterdir()] == [name]  # the temp file was removed


def test_order_files_markers_and_the_ledger_are_owner_only(tmp_path: Path) -> None:
    (tmp_path / "scan").mkdir()
    old = os.umask(0)  # even a permissive umask does not open them up
    try:
        writer = _writer(tmp_path, marker=True)
        path = writer.drop_order(_row("Z1"))
    finally:
        os.umask(old)
    for file in (path, path.with_name(path.name + ".fin"), writer.ledger.path):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(writer.ledger.path.parent.stat().st_mode) == 0o700


def test_a_symlinked_ledger_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "sids.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
    with pytest.raises(UntrustedPathError, match="symlink"):
        SidLedger(tmp_path / "state" / "sids.sqlite")
    assert not (tmp_path / "elsewhere.sqlite").exists()


async def test_a_sid_that_could_be_an_option_or_a_formula_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _folders(config)
    adapter = _adapter(config)
    await adapter.connect()
    try:
        for sid in ("-Z1", "=1+1", ".Z1", "Z/1", "Z\x001"):
            with pytest.raises(BrokerError, match="cannot be a sid"):
                await adapter.submit(_order(sid))
            with pytest.raises(BrokerError, match="cannot be a sid"):
                await adapter.cancel(_order(sid))
        assert list(config.input_dir.iterdir()) == []
    finally:
        await adapter.close()


# ------------------------------------------------------------------------------------- identifiers
@pytest.mark.parametrize(
    ("account", "problem"),
    [
        ("../other", "separator"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("acct/1", "separator"),
        ("acct\\1", "separator"),
        ("C:acct", "drive colon"),
        ("acct\x001", "NUL or control"),
        ("acct\n1", "NUL or control"),
        ("acct\x1b[31m", "NUL or control"),
        ("CON", "device name"),
        ("nul.csv", "device name"),
        ("acct.", "must not end"),
        ("-acct", "must start"),
        (".hidden", "must start"),
        ("账户", "ASCII"),
        ("a" * 129, "at most 128"),
        ("", "empty"),
    ],
)
def test_an_account_id_that_is_not_a_plain_name_is_refused(
    tmp_path: Path, account: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=r"route.fileorder.account_id.*" + problem):
        _config(tmp_path, account)
    table = {"input_dir": "in", "output_dir": "out", "account_id": account, "state_dir": "st"}
    if account:
        with pytest.raises(ConfigError, match=r"live.toml: .*account_id"):
            FileOrderConfig.from_settings(table, "live.toml")


def test_the_output_path_join_checks_the_name_even_past_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path)
    object.__setattr__(config, "account_id", "../other")  # slipped past validation somehow
    with pytest.raises(UnsafeNameError, match=re.escape("'../other'")):
        _ = config.account_output_dir
    with pytest.raises(UnsafeNameError):
        names.join(tmp_path, "..", "name")


def test_a_folder_path_with_a_control_character_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"route.fileorder.input_dir.*NUL or control"):
        FileOrderConfig(
            input_dir=Path("scan\x00x"), output_dir=tmp_path, account_id=ACCOUNT, state_dir=tmp_path
        )


def test_an_encoding_that_is_not_ascii_compatible_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not ASCII-compatible"):
        _config(tmp_path, encoding="utf-16")
    _config(tmp_path, encoding="gbk")


def test_the_engine_account_id_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    body = '[store]\npath = "z.db"\n[route]\nkind = "sim"\n[route.sim]\ndata = "d"\n'
    path.write_text('[account]\nid = "../../etc"\n' + body, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"live.toml: key 'account.id'.*separator"):
        load_config(path)
    path.write_text('[account]\nid = "8800123456"\n' + body, encoding="utf-8")
    assert load_config(path).account.id == "8800123456"


# ------------------------------------------------------------------------------------- accounts
async def test_two_accounts_in_one_folder_never_read_each_others_rows(tmp_path: Path) -> None:
    """The terminal writes both accounts' rows into one folder, and both engines drop into one input
    folder, with the same sid: this account's engine sees only its own fills, statuses and orders."""
    config = _config(tmp_path, ACCOUNT)
    _folders(config)
    out = config.account_output_dir
    (out / EXECUTION_REPORT_FILE).write_bytes(
        BOM
        + _line(list(EXECUTION_REPORT_HEADER))
        + _exec_row(OTHER, "Z1", "E-OTHER", 700)
        + _exec_row(ACCOUNT, "Z1", "E-MINE", 300)
    )
    (out / "order_status_change.csv").write_bytes(
        BOM
        + _line(list(ORDER_STATUS_HEADER))
        + _status_row(OTHER, "Z1", 3, 1000)
        + _status_row(ACCOUNT, "Z1", 2, 300)
    )
    other = OrderFileWriter(config.input_dir, SidLedger(tmp_path / "other" / "sids.sqlite"), SimClock(START))
    other_file = other.drop_order(("Z7", OTHER, "SHSE.600000", 100, 1, 1, "9.87", "zhixing"))
    other.ledger.close()
    events: list[OrderEvent] = []
    adapter = _adapter(config, events)
    await adapter.connect()
    try:
        fills = [(e.trade_id, e.quantity) for e in events if isinstance(e, OrderFilled)]
        assert fills == [("E-MINE", 300)]
        reports = {r.client_order_id: r for r in await adapter.query_orders()}
        assert set(reports) == {"Z1"}  # not Z7, the other account's order waiting in the input folder
        assert (reports["Z1"].status, reports["Z1"].filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 300)
        assert [t.trade_id for t in await adapter.query_trades()] == ["E-MINE"]
        assert adapter.stats.other_account_rows == {
            EXECUTION_REPORT_FILE: 1,
            "order_status_change.csv": 1,
            other_file.name: 1,
        }
    finally:
        await adapter.close()


def test_the_poll_guard_rechecks_in_full_on_change_and_the_folders_above_within_bounded_polls(
    tmp_path: Path,
) -> None:
    above = tmp_path / "push"
    folder = above / ACCOUNT
    folder.mkdir(parents=True)
    guard = trust.FolderGuard(folder, "route.fileorder.output_dir", full_every=3)
    assert guard.check()
    folder.chmod(0o777)  # the folder itself: caught at once (its ctime and mode changed)
    with pytest.raises(UntrustedPathError):
        guard.check()
    folder.chmod(0o755)
    assert guard.check()
    above.chmod(0o777)  # a folder above: its change does not touch the folder's own stat
    assert guard.check()  # not seen at once: one stat of the folder itself ...
    assert guard.check()
    with pytest.raises(UntrustedPathError, match="the folder above it"):
        guard.check()  # ... but by the full check every 3rd call
    assert not trust.FolderGuard(tmp_path / "not-yet", "x").check()  # not created by the terminal yet
