"""The per-kind bounds of user numbers (``engine.units``): finite, within the kind's maximum, and what
they convert to fits a signed 64-bit integer (the journal's SQLite ``INTEGER``)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from zhixing.engine.cli import main
from zhixing.engine.errors import ParameterError
from zhixing.engine.units import MAX_SECONDS, MAX_SHARES, MAX_YUAN, duration_ns, money, shares

INT64_MAX = 2**63 - 1


def test_each_kind_converts_its_largest_value_into_int64() -> None:
    assert money(MAX_YUAN) == MAX_YUAN * 1000 < INT64_MAX
    assert duration_ns(MAX_SECONDS) == MAX_SECONDS * 10**9 < INT64_MAX
    assert duration_ns(MAX_SECONDS * 1000, per_second=1000) == MAX_SECONDS * 10**9
    assert shares(MAX_SHARES) == MAX_SHARES < INT64_MAX


def test_conversions_are_exact() -> None:
    assert money("10.01") == 10010
    assert money(12.5) == 12500
    assert duration_ns("1.5") == 1_500_000_000
    assert duration_ns("20", per_second=1000) == 20_000_000
    assert shares("1e3") == 1000


@pytest.mark.parametrize(
    ("convert", "value"),
    [
        (money, "1e300"),
        (money, Decimal("1e400")),
        (money, "-1"),
        (money, "nan"),
        (money, "abc"),
        (money, True),
        (duration_ns, 1e308),
        (duration_ns, "inf"),
        (shares, "99999999999999999999999"),
        (shares, "1.5"),
        (shares, "-100"),
    ],
)
def test_a_value_beyond_its_kind_is_a_parameter_error_naming_it(
    convert: Callable[[Any], int], value: object
) -> None:
    with pytest.raises(ParameterError) as err:
        convert(value)
    assert repr(value) in str(err.value) or str(value) in str(err.value)


@pytest.mark.slow  # a run to 08:31 on the sim route: ~0.4 s, more on a busy machine
def test_a_set_env_secret_too_short_is_refused_by_check_as_by_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = Path(__file__).resolve().parents[2] / "replay" / "sample_data" / "snapshots_20211201"
    path = tmp_path / "zhixing.toml"
    path.write_text(
        f'[account]\nid = "8800123456"\n[store]\npath = "zhixing.db"\n[route]\nkind = "sim"\n'
        f'[route.sim]\ndata = "{data.as_posix()}"\n'
        '[notify.dingtalk]\nwebhook_url = "env:ZX_T_URL"\nsecret = "env:ZX_T_SECRET"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("ZX_T_URL", "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456")
    monkeypatch.setenv("ZX_T_SECRET", "abc")
    assert main(["config", "check", str(path)]) == 2
    check_err = capsys.readouterr().err
    assert main(["run", str(path), "--until", "08:31"]) == 2
    run_err = capsys.readouterr().err
    for err in (check_err, run_err):
        assert str(path) in err
        assert "notify.dingtalk.secret" in err
