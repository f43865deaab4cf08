"""An algorithm's journaled state put back together from its rows (``engine/store/algo_rows.py``), and
``zhixing status`` reading both a version 2 journal (plan apart from progress) and a version 1 journal
that an engine has not migrated yet, without migrating it (status never writes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.algos.test_algo_state_split import write_version_1_journal
from zhixing.engine.enums import Side
from zhixing.engine.errors import StoreError
from zhixing.engine.parents import ParentOrder
from zhixing.engine.status import collect_status
from zhixing.engine.store.algo_rows import join_algo_state


def test_a_complete_state_row_is_taken_as_it_is() -> None:
    assert join_algo_state("j.db", ("P1", "twap", '{"next_slice": 3}', None, None, None, None)) == (
        "P1",
        "twap",
        {"next_slice": 3},
    )


def test_progress_is_joined_with_the_plan_it_names() -> None:
    row = ("P1", "twap", '{"next_slice": 3, "plan_version": 2}', 2, "twap", 2, '{"targets": [100, 200]}')
    assert join_algo_state("j.db", row)[2] == {"targets": [100, 200], "next_slice": 3, "plan_version": 2}


@pytest.mark.parametrize(
    ("plan_algo", "plan_version", "plan", "held"),
    [
        (None, None, None, "none"),
        ("twap", 1, "{}", "version 1 of algo 'twap'"),
        ("vwap", 2, "{}", "version 2 of algo 'vwap'"),
    ],
)
def test_a_progress_row_without_its_plan_is_refused_naming_the_journal(
    plan_algo: str | None, plan_version: int | None, plan: str | None, held: str
) -> None:
    row = ("P1", "twap", '{"next_slice": 3}', 2, plan_algo, plan_version, plan)
    with pytest.raises(
        StoreError, match=rf"j\.db: algo state of parent 'P1' \(twap\) needs plan version 2; .*{held}"
    ):
        join_algo_state("j.db", row)


def test_status_reads_a_version_1_journal_without_migrating_it(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    parent = ParentOrder(
        parent_id="P1", symbol="600000.SH", side=Side.BUY, quantity=1_000, start_ns=1, end_ns=2, algo="twap"
    )
    write_version_1_journal(db, [(parent.to_row(), "twap", {"paused": True, "next_slice": 1})])
    status = collect_status(db)
    (algo,) = status["algos"]
    assert (algo["parent_id"], algo["paused"], algo["quantity"]) == ("P1", True, 1_000)
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "algo_plans" not in tables  # read as it was: status never migrates
