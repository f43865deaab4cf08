"""A damaged journal is refused at start, before anything is sent, naming what is damaged and how to
restore; a sound one (fresh, older schema, or written by a real session) passes. Real SQLite files,
damaged byte by byte or by raw SQL; the engine is a real live session on the simulated exchange."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.adapters.notify.test_notify_support import MailRecorder, smtp_server
from tests.journal_files import execute, flip, make_journal, page_holding, page_size, patch
from zhixing.engine.account import Account
from zhixing.engine.cli import main
from zhixing.engine.cli.session import open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.store import SCHEMA_VERSION, StateStore, schema
from zhixing.engine.store.integrity import JournalDamaged, require_sound_journal, verify_journal, wal_files
from zhixing.replay.data import MarketData, load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed

SAMPLE = Path(__file__).resolve().parents[3] / "replay" / "sample_data" / "snapshots_20211201"


@pytest.fixture(scope="module")
def market() -> MarketData:
    return load_snapshots(SAMPLE, symbols=["600258.SH"])


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return asyncio.run(make_journal(tmp_path / "zhixing.db"))


# ---------------------------------------------------------------------------------------- damage
def page1_btree_header(db: Path) -> None:
    flip(db, 100, 8)  # the schema table's b-tree page header, right after the 100-byte file header


def sqlite_magic(db: Path) -> None:
    flip(db, 0)


def page_size_field(db: Path) -> None:
    patch(db, 16, b"\x03\x00")  # 768: not a power of two


def meta_cell_pointer(db: Path) -> None:
    _, start = page_holding(db, b'"halted"')
    # the meta leaf page's second cell pointer: the halt record's (cells in key order: account, halt, ...)
    flip(db, start + 10)


def meta_page_header(db: Path) -> None:
    _, start = page_holding(db, b'"halted"')
    patch(db, start, bytes(8))


def halt_key_garbled(db: Path) -> None:
    data = db.read_bytes()
    patch(db, data.find(b'"halted"') + 2, b"X")  # a well-formed page whose halt record lost its key


def halt_value_garbled(db: Path) -> None:
    data = db.read_bytes()
    patch(db, data.find(b'"halted": true') + len(b'"halted": '), b"1   ")  # "halted": 1


def truncated_to_whole_pages(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) - 3 * page_size(data)])


def truncated_mid_page(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) - 1000])


def zero_length(db: Path) -> None:
    db.write_bytes(b"")


def not_sqlite(db: Path) -> None:
    db.write_text("symbol,weight\n600258.SH,0.5\n", encoding="utf-8")


def a_folder(db: Path) -> None:
    db.unlink()
    db.mkdir()


def missing_table(db: Path) -> None:
    execute(db, "DROP TABLE algo_plans")


def missing_column(db: Path) -> None:
    execute(db, "ALTER TABLE orders DROP COLUMN reason")


def missing_counter_row(db: Path) -> None:
    execute(db, "DELETE FROM counters WHERE name = 'order_id'")


def counter_behind_issued_ids(db: Path) -> None:
    execute(db, "UPDATE counters SET value = 2")  # Z000000003 was issued


def schema_newer_than_code(db: Path) -> None:
    execute(db, f"INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION + 1})")


def schema_version_row_missing(db: Path) -> None:
    execute(db, "DELETE FROM schema_version WHERE version = 1")


def not_a_journal(db: Path) -> None:
    db.unlink()
    execute(db, "CREATE TABLE prices (symbol TEXT, close REAL)")


def an_empty_database(db: Path) -> None:
    db.unlink()
    execute(db, "PRAGMA user_version = 1")  # a valid SQLite file with no tables


def unknown_order_status(db: Path) -> None:
    execute(db, "UPDATE orders SET status = 'FILLXD' WHERE client_order_id = 'Z000000002'")


def overfilled_order(db: Path) -> None:
    execute(db, "UPDATE orders SET filled_quantity = 5000 WHERE client_order_id = 'Z000000001'")


def parent_params_not_json(db: Path) -> None:
    execute(db, "UPDATE parents SET params = '{\"slices\": 1' WHERE parent_id = 'P1'")


def progress_without_its_plan(db: Path) -> None:
    execute(db, "DELETE FROM algo_plans")


def risk_report_not_json(db: Path) -> None:
    execute(db, "UPDATE meta SET value = '{\"day\": ' WHERE key = 'risk_report'")


def command_row_garbled(db: Path) -> None:
    execute(db, "UPDATE control_commands SET done = 7")


def foreign_wal_left_over(db: Path) -> None:
    """The WAL of another journal next to this one (a restore by hand that left the old -wal)."""
    other = db.with_name("other.db")
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    for statement in schema.MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("CREATE TABLE filler (v TEXT)")
    for i in range(300):
        conn.execute("INSERT INTO filler VALUES (?)", ("x" * 200 + str(i),))
    shutil.copyfile(wal_files(other)[0], wal_files(db)[0])  # copied while the other is still open
    conn.close()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "page1_btree_header": (page1_btree_header, "sqlite"),
    "sqlite_magic": (sqlite_magic, "header: not an SQLite database"),
    "page_size_field": (page_size_field, "header: page size"),
    "meta_cell_pointer": (meta_cell_pointer, "(page of meta)"),
    "meta_page_header": (meta_page_header, "table meta: cannot be read"),
    "halt_key_garbled": (halt_key_garbled, "meta 'halt'"),
    "halt_value_garbled": (halt_value_garbled, "meta 'halt'"),
    "truncated_to_whole_pages": (truncated_to_whole_pages, "file: truncated"),
    "truncated_mid_page": (truncated_mid_page, "not a whole number of 4096-byte pages"),
    "zero_length": (zero_length, "file: empty (0 bytes)"),
    "not_sqlite": (not_sqlite, "header: not an SQLite database"),
    "a_folder": (a_folder, "file: not a regular file"),
    "missing_table": (missing_table, "table algo_plans is missing"),
    "missing_column": (missing_column, "table orders has no column reason"),
    "missing_counter_row": (missing_counter_row, "counters: the order_id row is missing"),
    "counter_behind_issued_ids": (counter_behind_issued_ids, "order Z000000003 was already issued"),
    "schema_newer_than_code": (schema_newer_than_code, "newer than this zhixing knows"),
    "schema_version_row_missing": (schema_version_row_missing, "a migration row is missing"),
    "not_a_journal": (not_a_journal, "not a zhixing journal"),
    "an_empty_database": (an_empty_database, "no tables at all"),
    "unknown_order_status": (unknown_order_status, "client_order_id='Z000000002'"),
    "overfilled_order": (overfilled_order, "client_order_id='Z000000001'"),
    "parent_params_not_json": (parent_params_not_json, "parents: unknown side or params"),
    "progress_without_its_plan": (progress_without_its_plan, "needs plan version 1"),
    "risk_report_not_json": (risk_report_not_json, "meta 'risk_report': not JSON"),
    "command_row_garbled": (command_row_garbled, "control_commands"),
    "foreign_wal_left_over": (foreign_wal_left_over, "schema_version"),  # its pages overlay ours
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
@pytest.mark.slow
def test_a_damaged_journal_is_named_and_refused(journal: Path, case: str) -> None:
    damage, expected = DAMAGE[case]
    assert verify_journal(journal).ok  # sound before the damage
    damage(journal)
    report = verify_journal(journal)
    assert not report.ok
    assert any(expected in problem for problem in report.problems), report.problems
    with pytest.raises(JournalDamaged) as refused:
        require_sound_journal(journal)
    message = str(refused.value)
    assert expected in message
    assert f"zhixing journal verify --db {journal}" in message  # how to check and restore
    assert "zhixing journal restore" in message


async def counting_session(
    clock: SimClock, market: MarketData, db: Path
) -> tuple[list[str], list[str], Exception | None]:
    """Open a live session on ``db`` against a simulated exchange; what the exchange was sent and asked."""
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**10)
    sent: list[str] = []
    queried: list[str] = []
    submit, query = exchange.submit, exchange.query_account

    async def counting_submit(o: Order) -> None:
        sent.append(o.client_order_id)
        await submit(o)

    async def counting_query() -> object:
        queried.append("account")
        return await query()

    exchange.submit = counting_submit  # type: ignore[method-assign]
    exchange.query_account = counting_query  # type: ignore[assignment, method-assign]
    try:
        session = await open_live_session(
            clock=clock,
            adapter=exchange,
            feed=RecordedFeed(market, exchange, clock),
            store_path=db,
            account=Account(10**10),
            trading_day_start_ns=shanghai_ns(market.trade_date, "00:00"),
            synchronous="NORMAL",
        )
    except Exception as exc:
        return sent, queried, exc
    await session.close(cancel_working=False)
    return sent, queried, None


@pytest.mark.parametrize(
    "case",
    ["meta_cell_pointer", "halt_key_garbled", "counter_behind_issued_ids", "zero_length", "missing_table"],
)
async def test_a_live_session_on_a_damaged_journal_sends_nothing(
    journal: Path, market: MarketData, case: str
) -> None:
    DAMAGE[case][0](journal)
    clock = SimClock(shanghai_ns(market.trade_date, "09:59"))
    sent, queried, error = await counting_session(clock, market, journal)
    assert isinstance(error, JournalDamaged), error
    assert DAMAGE[case][1] in str(error)
    assert sent == []  # nothing reached the broker
    assert queried == []  # refused before the broker was even asked


async def test_a_damaged_meta_page_no_longer_reads_as_not_halted(journal: Path) -> None:
    """What happened before the check: SQLite opens the file, the halt record reads as absent, and the
    halted account would trade again."""
    meta_cell_pointer(journal)
    store = await StateStore.open(journal)
    try:
        assert await store.get_meta("halt") is None  # the halt is silently gone
    finally:
        await store.close()
    with pytest.raises(JournalDamaged):
        require_sound_journal(journal)


async def test_a_fresh_journal_and_a_real_session_journal_pass(tmp_path: Path, market: MarketData) -> None:
    db = tmp_path / "new" / "zhixing.db"
    clock = SimClock(shanghai_ns(market.trade_date, "09:59"))
    _, queried, error = await counting_session(clock, market, db)  # first run: no file yet
    assert error is None
    assert queried
    report = verify_journal(db)
    assert report.ok, report.problems
    assert report.schema_version == SCHEMA_VERSION
    _, _, error = await counting_session(clock, market, db)  # and it opens again
    assert error is None


async def test_an_older_schema_journal_is_sound_and_migrates(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    execute(db, *schema.MIGRATIONS[1], "INSERT INTO schema_version (version) VALUES (1)")
    report = verify_journal(db)
    assert report.ok, report.problems
    assert report.schema_version == 1
    store = await StateStore.open(db)
    await store.close()
    assert verify_journal(db).schema_version == SCHEMA_VERSION


async def test_a_journal_of_many_orders_with_the_engine_counter_passes(tmp_path: Path) -> None:
    db = await make_journal(tmp_path / "big.db", orders=400)
    report = verify_journal(db)
    assert report.ok, report.problems
    assert (report.orders, report.fills) == (400, 400)


def test_a_deleted_journal_with_its_wal_left_is_not_a_first_run(journal: Path) -> None:
    foreign_wal_left_over(journal)
    journal.unlink()
    with pytest.raises(JournalDamaged, match="journal was deleted or moved"):
        require_sound_journal(journal)
    assert require_sound_journal(journal.with_name("never-existed.db")) is None  # a real first run


def test_verify_never_writes_the_file_it_checks(journal: Path) -> None:
    """A foreign WAL is not checkpointed into the journal by the check (deleting it would still help)."""
    foreign_wal_left_over(journal)
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    assert not verify_journal(journal).ok
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    wal_files(journal)[0].unlink()
    wal_files(journal)[1].unlink(missing_ok=True)
    assert verify_journal(journal).ok  # the journal itself was never touched


def test_verify_command_prints_ok_or_the_damage_with_an_exit_code(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "verify", "--db", str(journal)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {journal}: schema version {SCHEMA_VERSION}, 3 orders")
    assert main(["journal", "verify", "--db", str(journal), "--full"]) == 0
    capsys.readouterr()
    halt_key_garbled(journal)
    assert main(["journal", "verify", "--db", str(journal)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"DAMAGED {journal}:")
    assert "meta 'halt'" in out
    assert "zhixing journal restore" in out
    assert main(["journal", "verify", "--db", str(journal.with_name("missing.db"))]) == 1
    assert "file: no such file" in capsys.readouterr().out


RUN_CONFIG = """
[account]
id = "8800123456"
cash_yuan = 2000000

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
name = "summary"
cron = "5 15 * * *"
kind = "summary"
"""


def test_zhixing_run_on_a_damaged_journal_refuses_tells_the_operator_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = asyncio.run(make_journal(tmp_path / "state" / "zhixing.db"))
    halt_key_garbled(db)
    before = db.read_bytes()
    recorder = MailRecorder(password="")
    with smtp_server(recorder) as port:
        config = tmp_path / "zhixing.toml"
        config.write_text(RUN_CONFIG.format(data=SAMPLE.as_posix(), port=port), encoding="utf-8")
        assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "journal is damaged, refusing to trade (nothing was sent)" in err
    assert "meta 'halt'" in err
    assert db.read_bytes() == before
    (mail,) = recorder.mails
    assert "error in journal" in str(mail["Subject"])
    body = mail.get_body().get_content()  # type: ignore[union-attr]
    assert "meta 'halt'" in body
    assert "zhixing journal restore" in body
