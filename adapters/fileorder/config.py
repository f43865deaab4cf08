"""``FileOrderConfig``: the ``[route.fileorder]`` table of the config file, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine import names
from engine.errors import ConfigError
from engine.market import FeeSchedule
from engine.units import price_from_yuan

_KEY = "route.fileorder"


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
    # C901 waived until the rewrite: rewritten by the config model (issue 14 item 3)
    def from_settings(cls, settings: Mapping[str, Any], source: str = "config") -> FileOrderConfig:  # noqa: C901
        """Build from the ``[route.fileorder]`` table of the config file (``engine.config`` keeps it raw).
        Every problem is a ``ConfigError`` naming ``source`` and the key; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        for key in settings:
            if key not in known:
                raise ConfigError(f"{source}: key '{_KEY}.{key}': unknown (expected one of {sorted(known)})")
        values: dict[str, Any] = {}
        for key in ("input_dir", "output_dir", "account_id", "state_dir"):
            value = settings.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: key '{_KEY}.{key}': required, a non-empty string")
            values[key] = value if key == "account_id" else Path(value)
        if "poll_interval_ns" in settings:
            interval = settings["poll_interval_ns"]
            if not isinstance(interval, int) or isinstance(interval, bool):
                raise ConfigError(f"{source}: key '{_KEY}.poll_interval_ns': expected an integer (ns)")
            values["poll_interval_ns"] = interval
        if "completion_marker" in settings:
            if not isinstance(settings["completion_marker"], bool):
                raise ConfigError(f"{source}: key '{_KEY}.completion_marker': expected true or false")
            values["completion_marker"] = settings["completion_marker"]
        if "estimate_fees" in settings:
            if not isinstance(settings["estimate_fees"], bool):
                raise ConfigError(f"{source}: key '{_KEY}.estimate_fees': expected true or false")
            values["estimate_fees"] = settings["estimate_fees"]
        if "commission_ppm" in settings:
            ppm = settings["commission_ppm"]
            if not isinstance(ppm, int) or isinstance(ppm, bool) or not 0 <= ppm <= 3_000:
                raise ConfigError(
                    f"{source}: key '{_KEY}.commission_ppm': an integer 0-3000 (250 = 0.025%), got {ppm!r}"
                )
            values["commission_ppm"] = ppm
        if "min_commission_yuan" in settings:
            minimum = settings["min_commission_yuan"]
            if isinstance(minimum, bool) or not isinstance(minimum, int | float) or not 0 <= minimum <= 100:
                raise ConfigError(
                    f"{source}: key '{_KEY}.min_commission_yuan': a number 0-100 (yuan), got {minimum!r}"
                )
            values["min_commission_yuan"] = float(minimum)
        if "encoding" in settings:
            if not isinstance(settings["encoding"], str):
                raise ConfigError(f"{source}: key '{_KEY}.encoding': expected a string")
            values["encoding"] = settings["encoding"]
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
