"""Client order ids that belong to one account: made here, recognised here, by every route.

An id is ``Z``, the account's key and a sequence number reserved in the journal: ``Zqhmwt000000042``.
It travels to the broker as the order's own key (the file route's ``sid``, QMT's ``order_remark``, the gm
link ledger's key), so two engines on two accounts that share a folder, a terminal or a state directory
never issue the same id, and each route keeps only the rows whose id is its account's:

- the **account key** is 5 lowercase letters drawn from a BLAKE2b digest of the broker account id (the
  route's ``account_id``; ``[account] id`` on the sim route). Deterministic: a restart, a second machine,
  a restored journal all derive the same key. It contains no character of the account id; it is not a
  secret either (an id guessed from the masked form in the logs can be checked against it), the way
  account ids themselves are identifiers, not secrets. Letters only: a case-insensitive file system or
  terminal cannot merge two keys, and the sequence is the id's trailing digits (the journal's integrity
  check reads it so). Account ids that differ only in case, or one that is the start of another, get
  unrelated keys (26^5 = 11.9 M keys: two given accounts share one with odds of 1 in 11.9 M);
- **15 characters** (more only past 10^9 orders): within QMT's 24-character ``order_remark``, the file
  route's 64-character sid, and made of ``[A-Za-z0-9]`` only;
- the **legacy form** ``Z`` + 9 digits, issued before ids carried the key, is still recognised as this
  engine's (a journal written then reconciles: its orders keep their ids, new ones carry the key). Such
  ids carry no account; where two accounts' legacy ids meet, only the routes' account columns tell them
  apart;
- an id of the keyed form with another key is **another account's** (another zhixing engine's): a route
  leaves its rows out; an id of neither form is external (a manual order, another tool) and reported as
  such, never adopted.

A journal is bound to the key of the account it was written for (``bind_journal``, at the start of a live
session); a journal of another account is refused before anything is sent.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final, Protocol

from zhixing.engine.errors import ParameterError, ZhixingError
from zhixing.engine.logs import mask_account

PREFIX: Final = "Z"
KEY_LENGTH: Final = 5
SEQ_DIGITS: Final = 9
MAX_SEQ_DIGITS: Final = 18  # Z + key + 18 digits = 24 characters (QMT order_remark), < SQLite's max int
MAX_ID_LENGTH: Final = 24  # QMT's order_remark, the tightest field an id travels in
JOURNAL_META_KEY: Final = "account_key"

_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_PERSON = b"zhixing-acct-id"  # BLAKE2b personalisation: these keys are not any other digest of the id
# ASCII digits only, a bounded count, the whole string (``$`` would also match before a trailing line
# break, ``\d`` any script's digits): an id this engine could not have issued is never taken as ours
_KEYED = re.compile(rf"{PREFIX}([a-z]{{{KEY_LENGTH}}})([0-9]{{{SEQ_DIGITS},{MAX_SEQ_DIGITS}}})")
_LEGACY = re.compile(rf"{PREFIX}([0-9]{{{SEQ_DIGITS},{MAX_SEQ_DIGITS}}})")


def account_key(account_id: str) -> str:
    """The 5-letter key of ``account_id`` (see the module docstring)."""
    if not account_id:
        raise ParameterError(
            "an account key needs a non-empty account id", name="account_id", value=account_id
        )
    digest = int.from_bytes(
        hashlib.blake2b(account_id.encode("utf-8"), digest_size=8, person=_PERSON).digest()
    )
    letters = []
    for _ in range(KEY_LENGTH):
        digest, index = divmod(digest, len(_ALPHABET))
        letters.append(_ALPHABET[index])
    return "".join(letters)


@dataclass(frozen=True, slots=True)
class OrderIds:
    """The client order ids of one account. ``key`` None: the legacy form only (replays, unit tests)."""

    key: str | None = None

    @classmethod
    def for_account(cls, account_id: str) -> OrderIds:
        return cls(account_key(account_id))

    @property
    def prefix(self) -> str:
        return PREFIX + (self.key or "")

    def make(self, seq: int) -> str:
        return f"{self.prefix}{seq:0{SEQ_DIGITS}d}"

    def sequence(self, cid: str) -> int | None:
        """The sequence number of ``cid`` if it is this account's id (keyed or legacy form), else None."""
        keyed = _KEYED.fullmatch(cid)
        if keyed is not None:
            return int(keyed.group(2)) if keyed.group(1) == self.key else None
        legacy = _LEGACY.fullmatch(cid)
        return int(legacy.group(1)) if legacy is not None else None

    def is_ours(self, cid: str) -> bool:
        return self.sequence(cid) is not None

    def is_another_accounts(self, cid: str) -> bool:
        """An id of the keyed form with another account's key: another zhixing engine's order."""
        keyed = _KEYED.fullmatch(cid)
        return keyed is not None and keyed.group(1) != self.key

    def is_new_form(self, cid: str) -> bool:
        """An id this account issues now (keyed form, this key)."""
        keyed = _KEYED.fullmatch(cid)
        return keyed is not None and keyed.group(1) == self.key


LEGACY_IDS: Final = OrderIds()


def route_order_ids(adapter: object, account_id: str = "") -> OrderIds:
    """The ids of the route's broker account when the adapter names them (``adapter.order_ids``: the
    file, QMT and gm routes), else those of ``account_id`` (``[account] id``); the legacy form without
    either."""
    named = getattr(adapter, "order_ids", None)
    if isinstance(named, OrderIds):
        return named
    return OrderIds.for_account(account_id) if account_id else LEGACY_IDS


class JournalAccountMismatch(ZhixingError):
    """The journal was written for another account than the one the config names."""


class MetaStore(Protocol):
    async def get_meta(self, key: str) -> str | None: ...

    def stage_meta(self, key: str, value: str) -> None: ...

    async def commit(self) -> None: ...


async def bind_journal(store: MetaStore, ids: OrderIds, account_id: str, journal: str) -> None:
    """Bind the journal to ``ids.key`` the first time (a journal from before keyed ids adopts the account
    it is opened for); refuse a journal bound to another key, naming both, before anything is sent."""
    if ids.key is None:
        return
    bound = await store.get_meta(JOURNAL_META_KEY)
    if bound is None:
        store.stage_meta(JOURNAL_META_KEY, ids.key)
        await store.commit()
        return
    if bound != ids.key:
        raise JournalAccountMismatch(
            f"journal {journal} was written for another account (account key {bound!r}); the config names "
            f"account {mask_account(account_id)} (key {ids.key!r}). A journal belongs to one account: point "
            "[store] path at this account's journal (or a new file), or restore the account id the journal "
            "was written with; nothing was sent"
        )
