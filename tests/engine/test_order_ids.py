"""Client order ids are the account's (``engine.order_ids``): the key, the forms, what each route's fields
allow, the lost-order guard that looks only at this account's ids, and the journal bound to its account."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zhixing.adapters.fileorder.adapter import _SID
from zhixing.assembly import EngineSettings
from zhixing.engine.account import Account
from zhixing.engine.cli.session import LiveSession, open_live_session
from zhixing.engine.clock import SimClock
from zhixing.engine.enums import Side
from zhixing.engine.events import SubmitOrder
from zhixing.engine.lost_orders import lost_sequences
from zhixing.engine.market import TradingCalendar, shanghai_ns
from zhixing.engine.order_ids import (
    JOURNAL_META_KEY,
    LEGACY_IDS,
    MAX_ID_LENGTH,
    JournalAccountMismatch,
    OrderIds,
    account_key,
    route_order_ids,
)
from zhixing.engine.store import StateStore
from zhixing.replay.data import load_snapshots
from zhixing.replay.exchange import SimExchange
from zhixing.replay.paper import RecordedFeed

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
SYMBOL = "600258.SH"


def test_the_key_is_five_lowercase_letters_and_never_changes_between_versions() -> None:
    # pinned: a derivation that changed in an upgrade would orphan every journal's orders at the broker
    assert account_key("88001234") == account_key("88001234")
    assert account_key("12345678") == "zmmaw"
    assert account_key("1234567") == "ximgx"
    for account in ("1", "88001234", "Acct-1", "x" * 64, "资金账号"):
        assert re.fullmatch(r"[a-z]{5}", account_key(account))
    with pytest.raises(ValueError, match="non-empty"):
        account_key("")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Acct-1", "ACCT-1"),  # differ only in case
        ("acct-1", "Acct-1"),
        ("1234", "12345"),  # one is the start of the other
        ("12345", "123456"),
        ("88001234", "88001234 "),  # a trailing blank
    ],
)
def test_hostile_pairs_of_account_ids_get_ids_that_never_meet(one: str, other: str) -> None:
    a, b = OrderIds.for_account(one), OrderIds.for_account(other)
    assert a.key != b.key
    assert a.key is not None
    assert b.key is not None
    assert a.key.casefold() != b.key.casefold()  # a case-insensitive disk or terminal keeps them apart
    for seq in (1, 42, 999_999_999, 1_000_000_000):
        assert not b.is_ours(a.make(seq))
        assert not a.is_ours(b.make(seq))
        assert b.is_another_accounts(a.make(seq))
        assert a.make(seq) != b.make(seq)
        assert not b.make(seq).startswith(a.make(seq)[: len(a.prefix)])


def test_an_id_fits_every_field_it_travels_in() -> None:
    ids = OrderIds.for_account("88001234")
    for seq in (1, 999_999_999):
        cid = ids.make(seq)
        assert len(cid) == 15
        assert len(cid) <= MAX_ID_LENGTH  # QMT's order_remark
        assert _SID.fullmatch(cid)  # the file route's sid
        assert re.fullmatch(r"[A-Za-z0-9]+", cid)  # nothing a CSV cell, a file name or a remark mangles
        assert ids.sequence(cid) == seq
    assert ids.sequence(ids.make(10**12)) == 10**12  # past 10^9 orders: longer, still this account's


def test_legacy_ids_are_still_this_accounts_and_other_ids_are_nobodys() -> None:
    ids = OrderIds.for_account("88001234")
    assert ids.sequence("Z000000042") == 42  # issued before ids carried the key
    assert ids.is_ours("Z000000042")
    assert not ids.is_new_form("Z000000042")
    for external in ("EXT1", "qmt-external-1001", "gm:abc", "Z42", "z000000042", "ZABCDE000000001", ""):
        assert not ids.is_ours(external)
        assert not ids.is_another_accounts(external)
    assert LEGACY_IDS.make(7) == "Z000000007"
    assert not LEGACY_IDS.is_ours(ids.make(7))


def test_lost_orders_are_only_this_accounts_ids() -> None:
    ids = OrderIds.for_account("88001234")
    other = OrderIds.for_account("88001235")
    external = [other.make(900), ids.make(77), "Z000000050", "EXT1", other.make(5)]
    assert lost_sequences(ids, external) == [(50, "Z000000050"), (77, ids.make(77))]
    assert lost_sequences(other, external) == [(5, other.make(5)), (50, "Z000000050"), (900, other.make(900))]


def test_the_route_names_the_ids_else_the_configured_account() -> None:
    class Route:
        order_ids = OrderIds.for_account("route-account")

    assert route_order_ids(Route(), "config-name") == OrderIds.for_account("route-account")
    assert route_order_ids(object(), "config-name") == OrderIds.for_account("config-name")
    assert route_order_ids(object()) == LEGACY_IDS


# ------------------------------------------------------------------------------------- the journal's account
async def test_a_journal_is_bound_to_its_account_and_another_account_is_refused(tmp_path: Path) -> None:
    market = load_snapshots(SAMPLE, symbols=[SYMBOL])
    day = market.trade_date
    clock = SimClock(shanghai_ns(day, "09:59"))
    exchange = SimExchange(market, clock, calendar=TradingCalendar(), cash=10**10)
    db = tmp_path / "state" / "zhixing.db"

    async def open_as(account_id: str) -> LiveSession:
        return await open_live_session(
            clock=clock,
            adapter=exchange,
            feed=RecordedFeed(market, exchange, clock),
            store_path=db,
            account=Account(10**10),
            settings=EngineSettings(account_id=account_id),
            trading_day_start_ns=shanghai_ns(day, "00:00"),
            synchronous="NORMAL",
        )

    session = await open_as("acct-1")
    await session.feed.subscribe([SYMBOL])
    session.book.watch([SYMBOL])
    while clock.step(until_ns=shanghai_ns(day, "10:00")):
        pass
    order = session.oms.submit(SubmitOrder(symbol=SYMBOL, side=Side.BUY, quantity=100, price=21_000))
    await session.oms.flush()
    assert order.client_order_id == OrderIds.for_account("acct-1").make(1)
    assert await session.store.get_meta(JOURNAL_META_KEY) == account_key("acct-1")
    await session.close(cancel_working=False)
    received = exchange.stats.orders_received

    # the account renamed in the config (here: only its case): the journal is another account's
    with pytest.raises(JournalAccountMismatch) as refused:
        await open_as("ACCT-1")
    message = str(refused.value)
    assert str(db) in message
    assert account_key("acct-1") in message
    assert account_key("ACCT-1") in message
    assert "ACCT-1" not in message  # the account id is masked
    assert exchange.stats.orders_received == received  # nothing sent
    # the journal was closed and is unchanged: the right account opens it and goes on
    store = await StateStore.open(db)
    try:
        assert await store.get_meta(JOURNAL_META_KEY) == account_key("acct-1")
        assert [o.client_order_id for o in await store.load_orders()] == [order.client_order_id]
    finally:
        await store.close()
    again = await open_as("acct-1")
    assert again.reconcile.ok, again.reconcile.mismatches
    assert set(again.oms.orders) == {order.client_order_id}
    await again.close()
