"""What the command line does with an exception: ours is the user's to fix (a message, exit 2); any other,
a bare ``ValueError`` included, is a bug (the traceback, where to report it, exit 70)."""

from __future__ import annotations

import pytest

from zhixing.engine import secrets
from zhixing.engine.cli import BUG_REPORT, algos_cmd, main
from zhixing.engine.errors import ConfigError, InputError, ParameterError
from zhixing.engine.stop import EXIT_BAD_INPUT, EXIT_BUG


def _fail_with(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """Make ``zhixing algos`` raise ``exc`` from inside the command."""

    def describe_algos() -> list[tuple[str, str, str, str]]:
        raise exc

    monkeypatch.setattr(algos_cmd, "describe_algos", describe_algos)


def test_a_bare_value_error_in_a_command_is_a_bug_with_a_traceback_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(monkeypatch, ValueError("slice of -3 shares"))

    assert main(["algos"]) == EXIT_BUG == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "in describe_algos" in err  # the frame that raised
    assert "ValueError: slice of -3 shares" in err
    assert err.rstrip().endswith(BUG_REPORT)
    assert BUG_REPORT.endswith("docs/OPERATIONS.md#reporting-a-bug")


def test_any_other_unexpected_exception_is_a_bug_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(monkeypatch, KeyError("parent_id"))

    assert main(["algos"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "KeyError: 'parent_id'" in err
    assert err.rstrip().endswith(BUG_REPORT)


@pytest.mark.parametrize(
    "exc",
    [
        InputError("not a number: 'x'", path="orders.csv", row=3, field="quantity"),
        ConfigError("key 'risk.max_order_value': expected a positive integer"),
        ParameterError("must be > 0, got -1", name="interval_s", value=-1),  # also a ValueError: still ours
    ],
    ids=["input", "config", "parameter"],
)
def test_a_zhixing_error_is_a_message_and_the_bad_input_code_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: Exception
) -> None:
    _fail_with(monkeypatch, exc)

    assert main(["algos"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err == f"zhixing: error: {exc}\n"
    assert "Traceback" not in err
    assert BUG_REPORT not in err


def test_the_bug_traceback_masks_a_registered_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(secrets, "_registry", set())
    monkeypatch.setattr(secrets, "_ordered", ())
    secrets.register_sensitive("hunter2-smtp-password")
    _fail_with(monkeypatch, ValueError("login refused for hunter2-smtp-password"))

    assert main(["algos"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "hunter2-smtp-password" not in err
    assert f"ValueError: login refused for {secrets.MASK}" in err
