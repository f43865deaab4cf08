"""An algorithm's journaled state from its rows: a progress row joined with the plan it names.

Schema version 2 journals an algorithm's plan (``algo_plans``, written once per ``plan_version``) apart
from its progress (``algo_states``, with the plan version it goes with); a NULL ``plan_version`` (every
row of a version 1 journal) is a state complete by itself. ``join_algo_state`` is the one place that puts
them back together, for the engine's restore and for ``zhixing status`` alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from zhixing.engine.errors import StoreError

SELECT_V1 = "SELECT parent_id, algo, state, NULL, NULL, NULL, NULL FROM algo_states ORDER BY parent_id"
"""``schema.SELECT_ALGO_STATES``'s columns from a version 1 journal (one read without migrating it)."""


def join_algo_state(where: str, row: Sequence[object]) -> tuple[str, str, dict[str, object]]:
    """``(parent_id, algo, complete state)`` from one row of ``schema.SELECT_ALGO_STATES``. Raises
    ``StoreError`` naming ``where`` when a progress row's plan is missing or of another version or
    algorithm (the journal never writes one without the other)."""
    parent_id, algo, state, version, plan_algo, plan_version, plan = row
    values = _object(where, str(state))
    if version is not None:
        if plan is None or plan_version != version or plan_algo != algo:
            held = "none" if plan is None else f"version {plan_version} of algo {plan_algo!r}"
            raise StoreError(
                f"{where}: algo state of parent {parent_id!r} ({algo}) needs plan version "
                f"{version}; the journal holds {held}"
            )
        values = {**_object(where, str(plan)), **values}
    return str(parent_id), str(algo), values


def _object(where: str, text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{where}: an algorithm state is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise StoreError(f"{where}: an algorithm state is not a JSON object")
    return value
