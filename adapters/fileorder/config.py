"""``FileOrderConfig``: the ``[route.fileorder]`` table of the config file, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from zhixing.engine import names
from zhixing.engine.config_model import Strict, Text, config_error
from zhixing.engine.errors import ConfigError
from zhixing.engine.market import FeeSchedule
from zhixing.engine.units import price_from_yuan

_KEY = "route.fileorder"


class FileOrderSettings(Strict):
    """The table as written: the keys, their types and ranges (defaults: ``FileOrderConfig``'s)."""

    input_dir: Text
    output_dir: Text
    account_id: Text
    state_dir: Text
    poll_interval_ns: int = Field(500_000_000, gt=0)
    completion_marker: bool = False
    encoding: Text = "utf-8-sig"
    estimate_fees: bool = True
    commission_ppm: int = Field(250, ge=0, le=3_000)  # 250 = 0.025%
    min_commission_yuan: float = Field(5.0, ge=0, le=100)  # yuan


@dataclass(frozen=True, slots=True, kw_only=True)
class FileOrderConfig:
    """The ``[route.fileorder]`` section. ``output_dir`` is the terminal's output root: it writes each
    account's files under ``<output_dir>/<account_id>/``."""

    input_dir: Path
    output_dir: Path
    account_id: str
    state_dir: Path
    poll_interval_ns: int = 500_000_000
    completion_marker: bool = False
    encoding: str = "utf-8-sig"
    # the terminal's execution rows carry no fees: estimate them with the account's rates (see tracker.py)
    estimate_fees: bool = True
    commission_ppm: int = 250  # the broker's commission rate (parts per million of value): 250 = 万2.5
    min_commission_yuan: float = 5.0  # per order

    def __post_init__(self) -> None:
        problem = names.name_problem(self.account_id)  # it names the output sub-folder
        if problem is not None:
            raise ConfigError(
                f"key '{_KEY}.account_id': the terminal's account id (it names the folder "
                f"<output_dir>/<account_id>), got {self.account_id!r}: {problem}"
            )
        for key in ("input_dir", "output_dir", "state_dir"):
            try:
                names.check_path_text(str(getattr(self, key)), "the folder")
            except names.UnsafeNameError as exc:
                raise ConfigError(f"key '{_KEY}.{key}': {exc}") from None
        if self.poll_interval_ns <= 0:
            raise ConfigError(f"key '{_KEY}.poll_interval_ns': must be > 0, got {self.poll_interval_ns}")
        if self.commission_ppm < 0 or self.min_commission_yuan < 0:
            raise ConfigError(f"key '{_KEY}.commission_ppm' / 'min_commission_yuan': must be >= 0")
        try:
            ascii_compatible = "sid,\r\n".encode(self.encoding).endswith(b"sid,\r\n")
        except LookupError as exc:
            raise ConfigError(f"key '{_KEY}.encoding': unknown encoding {self.encoding!r}") from exc
        if not ascii_compatible:  # UTF-16/32: lines could not be split at b"\n"
            raise ConfigError(
                f"key '{_KEY}.encoding': {self.encoding!r} is not ASCII-compatible; the terminal "
                "writes utf-8-sig (default) or gbk"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], source: str = "config") -> FileOrderConfig:
        """Build from the ``[route.fileorder]`` table of the config file (``engine.config`` keeps it raw).
        Every problem is a ``ConfigError`` naming ``source`` and the key; unknown keys are errors."""
        try:
            table = FileOrderSettings.model_validate(settings)
        except ValidationError as exc:
            raise config_error(exc, source, model=FileOrderSettings, prefix=_KEY) from None
        values = table.model_dump()
        for key in ("input_dir", "output_dir", "state_dir"):
            values[key] = Path(values[key])
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    def fee_schedule(self) -> FeeSchedule | None:
        """The rates the tracker estimates a trade's fees with (None: ``estimate_fees = false``)."""
        if not self.estimate_fees:
            return None
        return FeeSchedule(
            commission_ppm=self.commission_ppm, min_commission=price_from_yuan(self.min_commission_yuan)
        )

    @property
    def account_output_dir(self) -> Path:
        return names.join(self.output_dir, self.account_id, f"{_KEY}.account_id")

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "fileorder_sids.sqlite"
