"""Reading an algorithm's saved state back: typed getters over the JSON dict ``ExecAlgo.state()`` wrote.

Each getter names the key and the value it could not read, so a damaged journal row is reported, not
half-restored.
"""

from __future__ import annotations

from collections.abc import Mapping

from zhixing.algos.params import parameter_error

STATE_VERSION = 1
"""The version of ``ExecAlgo.state()``'s layout; ``restore`` refuses any other."""


def state_int(state: Mapping[str, object], key: str, default: int = 0) -> int:
    value = state.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise parameter_error(
            f"algo state {key!r}: expected an integer, got {value!r}", name=key, value=value
        )
    return value


def state_ints(state: Mapping[str, object], key: str) -> list[int]:
    value = state.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise parameter_error(
            f"algo state {key!r}: expected a list of integers, got {value!r}", name=key, value=value
        )
    return list(value)


def state_optional_int(state: Mapping[str, object], key: str) -> int | None:
    """An integer that may be absent or null (None then)."""
    return None if state.get(key) is None else state_int(state, key)


def state_flag(state: Mapping[str, object], key: str) -> bool:
    """A flag; absent in states written before it existed: False."""
    return bool(state.get(key, False))


def state_index(state: Mapping[str, object], key: str, size: int) -> int:
    """An index into a restored list of ``size`` items (``size`` itself: past the end)."""
    index = state_int(state, key)
    if not 0 <= index <= size:
        raise parameter_error(f"algo state: {key} {index} outside 0..{size}", name=key, value=index)
    return index
