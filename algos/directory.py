"""Every algorithm of a session as one read-only mapping, across baskets that join during the day.

A live day starts with one basket and adds one per rebalance; the kill switch, the operator's commands
and the stale-feed guard must see all of them, including parents added after they were wired.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from zhixing.algos.base import ExecAlgo


class AlgoDirectory(Mapping[str, ExecAlgo]):
    def __init__(self, *sources: Mapping[str, ExecAlgo]) -> None:
        self._sources: list[Mapping[str, ExecAlgo]] = list(sources)

    def add(self, source: Mapping[str, ExecAlgo]) -> None:
        """Include another basket's ``algos`` (read live: parents it gains later are included)."""
        self._sources.append(source)

    def __getitem__(self, parent_id: str) -> ExecAlgo:
        for source in self._sources:
            if parent_id in source:
                return source[parent_id]
        raise KeyError(parent_id)

    def __iter__(self) -> Iterator[str]:
        for source in self._sources:
            yield from source

    def __len__(self) -> int:
        return sum(len(source) for source in self._sources)
