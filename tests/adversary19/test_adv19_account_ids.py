"""Adversary, issue 19 item 2 (accounts): what counts as "one of this account's ids".

Rule (docs/RELIABILITY.md, Accounts): "a remark/sid that is not one of this account's ids is external
(reported, never adopted, never a 'lost order' halt)". Ids this engine issues are ``Z`` + key + ASCII
digits (engine/order_ids.py: "made of [A-Za-z0-9] only"). The recogniser uses ``\\d`` and ``$``.
"""

from __future__ import annotations

from pathlib import Path

from tests.engine.cli.test_accounts_routes import QMT_ACCOUNTS, START, SYM, buy, qmt_engine
from tests.qmt_fake import XC, FakeQmtTerminal, StockAccount
from zhixing.engine.clock import SimClock
from zhixing.engine.lost_orders import lost_sequences
from zhixing.engine.order_ids import OrderIds

IDS = OrderIds.for_account("88001234")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def test_was_finding_an_id_with_non_ascii_digits_is_taken_as_this_accounts() -> None:
    # Never issued by make(): full-width digits, Arabic-Indic digits, a trailing newline.
    impostors = [
        IDS.prefix + "000000042".translate(FULLWIDTH),
        IDS.prefix + "٠٠٠٠٠٠٠٤٢",
        IDS.make(42) + "\n",
    ]
    ours = [cid for cid in impostors if IDS.is_ours(cid)]
    assert ours == [], f"ids this engine can never have issued are taken as its own: {ours!r}"


def test_was_finding_a_lookalike_external_id_is_a_lost_order_halt() -> None:
    # At a restart the broker lists a manual order whose remark is our prefix + full-width digits: the
    # rule says external, reported, never a "lost order" halt; lost_sequences picks it (halts, skips ids).
    external = [IDS.prefix + "000000042".translate(FULLWIDTH), "EXT-1"]
    assert lost_sequences(IDS, external) == []


async def test_was_finding_qmt_remark_with_fullwidth_digits_is_not_listed_as_external(tmp_path: Path) -> None:
    terminal = FakeQmtTerminal()
    a = await qmt_engine(tmp_path / "a.db", terminal, SimClock(START), QMT_ACCOUNTS[0])
    mine = await a.send(terminal, buy())
    hand = terminal.trader_factory("x", 99)
    hand.start()
    hand.connect()
    seq = a.oms.ids.sequence(mine.client_order_id) or 0
    impostor = a.oms.ids.prefix + f"{seq + 5:09d}".translate(FULLWIDTH)
    terminal._order(
        hand, StockAccount(QMT_ACCOUNTS[0]), SYM, XC.STOCK_BUY, 100, XC.FIX_PRICE, 9.5, "", impostor
    )
    await terminal.settle()
    listed = sorted(r.client_order_id for r in await a.adapter.query_orders())
    others = [cid for cid in listed if cid != mine.client_order_id]
    hand.stop()
    await a.close()
    assert all(cid.startswith("qmt-external-") for cid in others), (
        f"a hand-typed remark that is no id of ours is carried as a client order id: {others!r}"
    )


def test_held_ids_of_another_account_and_plain_lookalikes_are_not_ours() -> None:
    other = OrderIds.for_account("88001235")
    assert not IDS.is_ours(other.make(42))
    assert not IDS.is_ours("z" + IDS.make(42)[1:])
    assert not IDS.is_ours(IDS.prefix + "42")
    assert IDS.is_ours(IDS.make(42))
