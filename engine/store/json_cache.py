"""``to_json`` for a value re-encoded over and over with the same long lists in it.

An algorithm's state carries its whole schedule (hundreds of ints that never change once built) next to
a few counters that do; encoding it at every change spends most of the time on the unchanged lists.
``StateEncoder.encode(state)`` returns exactly ``to_json(state)`` (same bytes), reusing the encoded text
of a long top-level list when the list equals the one seen last time under that key and holds only
``int``, ``str`` and ``None`` (exact types: for those, ``==`` between elements implies the same JSON;
``bool`` and ``float`` are excluded because ``1 == True == 1.0`` and ``0.0 == -0.0``). Anything else is
encoded in full.

How the cached text goes back in: the state is encoded with each cached list replaced by ``0``, and the
one structural occurrence of ``"key":0`` is replaced by ``"key":<text>``. A raw ``"key":`` can only be
structural (inside a JSON string every ``"`` is escaped); if the key occurs more than once (a nested
dict with the same key) the state is encoded in full.
"""

from __future__ import annotations

import functools
from typing import Final

from zhixing.engine.store.staging import to_json

MIN_LIST: Final = 32
"""Shorter lists are not worth caching."""

_PLAIN: Final = frozenset({int, str, type(None)})


class StateEncoder:
    """One per staged key (e.g. per parent id): remembers that key's long lists and their text."""

    __slots__ = ("_lists",)

    def __init__(self) -> None:
        self._lists: dict[str, tuple[list[object], str]] = {}

    def encode(self, value: dict[str, object]) -> str:
        reused: dict[str, str] = {}
        for key, item in value.items():
            if type(item) is not list or len(item) < MIN_LIST or type(key) is not str:
                continue
            cached = self._lists.get(key)
            plain = set(map(type, item)) <= _PLAIN
            if cached is not None and plain and cached[0] == item:
                reused[key] = cached[1]
            elif plain:
                self._lists[key] = (list(item), to_json_list(item))
                reused[key] = self._lists[key][1]
            else:
                self._lists.pop(key, None)
        if not reused:
            return to_json(value)
        text = to_json({**value, **dict.fromkeys(reused, 0)})
        for key, fragment in reused.items():
            name = _key_json(key)
            if text.count(name + ":") != 1:
                return to_json(value)
            text = text.replace(name + ":0", name + ":" + fragment, 1)
        return text


@functools.lru_cache(maxsize=256)
def _key_json(key: str) -> str:
    """A key as JSON, e.g. '"slice_times"'."""
    return to_json_list([key])[1:-1]


def to_json_list(value: list[object]) -> str:
    """A list's JSON, as ``to_json`` writes it inside a value."""
    text = to_json({"": value})
    return text[4:-1]  # strip '{"":' and '}'
