"""Time-of-day volume profiles for VWAP: 240 fractions (one per continuous-session minute) summing to 1.

Minute ``m`` is the continuous-session minute a 1-minute bar ENDS in (``replay.bars``): 0 is 09:30-09:31,
119 is 11:29-11:30, 120 is 13:00-13:01, 239 is 14:59-15:00 (which holds the closing auction).

``build_profile`` averages days: each (symbol, day)'s minute volumes are first divided by that day's total,
so a heavy day does not dominate. Profiles are stored as JSON with a schema version (``save_profile`` /
``load_profile``); anything malformed raises ``InputError`` naming the file and what is wrong.

``u_shaped_profile`` is a synthetic default; it is used only when asked for by name (``"u_shape"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from zhixing.algos.params import parameter_error
from zhixing.engine.errors import InputError
from zhixing.engine.input_limits import PROFILE, check_cell, decode_text, json_document, read_bounded

SESSION_MINUTES = 240
PROFILE_SCHEMA = "zhixing.volume_profile"
PROFILE_VERSION = 1
POOLED_KEY = "*"
U_SHAPE = "u_shape"
SUM_TOLERANCE = 1e-6


def _normalised(curve: np.ndarray) -> list[float]:
    total = float(curve.sum())
    return [float(v) / total for v in curve]


def build_profile(bars: pd.DataFrame, pooled: bool = False) -> dict[str, list[float]]:
    """Per-symbol (or, ``pooled``, one under ``"*"``) average of each day's normalised minute volumes.

    ``bars`` has the columns of ``replay.bars.load_minute_bars``. Days with no volume are skipped; a
    symbol (or the pool) with no day left is left out. Raises ``ParameterError`` when nothing is left at all.
    """
    missing = {"symbol", "trade_date", "minute_of_session", "volume"} - set(bars.columns)
    if missing:
        raise parameter_error(
            f"bars lack the columns {', '.join(sorted(missing))}", name="bars", value=sorted(missing)
        )
    minutes = bars["minute_of_session"].to_numpy(dtype=np.int64)
    if len(minutes) and (minutes.min() < 0 or minutes.max() >= SESSION_MINUTES):
        raise parameter_error(
            f"minute_of_session outside 0..{SESSION_MINUTES - 1}",
            name="minute_of_session",
            value=(int(minutes.min()), int(minutes.max())),
        )
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    grouped = bars.groupby(["symbol", "trade_date"], sort=True)
    for (symbol, _day), day in grouped:
        curve = np.bincount(
            day["minute_of_session"].to_numpy(dtype=np.int64),
            weights=day["volume"].to_numpy(dtype=np.float64),
            minlength=SESSION_MINUTES,
        )
        total = float(curve.sum())
        if total <= 0:
            continue
        key = POOLED_KEY if pooled else str(symbol)
        sums[key] = sums.get(key, np.zeros(SESSION_MINUTES)) + curve / total
        counts[key] = counts.get(key, 0) + 1
    if not sums:
        raise parameter_error("no day with any volume in the bars", name="bars", value=len(bars))
    return {key: _normalised(sums[key] / counts[key]) for key in sorted(sums)}


def u_shaped_profile() -> list[float]:
    """A synthetic U: heavy at the open and the close, light at midday (a quadratic in session time)."""
    centre = (SESSION_MINUTES - 1) / 2
    raw = np.array([1.0 + 3.0 * ((m - centre) / centre) ** 2 for m in range(SESSION_MINUTES)])
    return _normalised(raw)


def save_profile(profile: dict[str, list[float]], path: str | Path) -> Path:
    """Write ``profile`` as versioned JSON (validated first, so only loadable files are written)."""
    path = Path(path)
    _check_profiles(profile, str(path))
    payload = {
        "schema": PROFILE_SCHEMA,
        "version": PROFILE_VERSION,
        "minutes": SESSION_MINUTES,
        "profiles": {key: [float(v) for v in curve] for key, curve in profile.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def load_profile(path: str | Path) -> dict[str, list[float]]:
    """Read a file written by ``save_profile``; ``InputError`` naming the file on anything wrong."""
    name = str(path)
    file = Path(path)
    if not file.exists():
        raise InputError("volume profile file not found", path=name)
    text = decode_text(file, read_bounded(file, PROFILE), hint="save the profile as UTF-8")
    payload = json_document(file, text)
    if not isinstance(payload, dict):
        raise InputError("expected a JSON object", path=name)
    if payload.get("schema") != PROFILE_SCHEMA:
        raise InputError(f"not a volume profile (schema {payload.get('schema')!r})", path=name)
    if payload.get("version") != PROFILE_VERSION:
        raise InputError(
            f"unsupported volume profile version {payload.get('version')!r} (expected {PROFILE_VERSION})",
            path=name,
        )
    profiles = payload.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise InputError("'profiles' must be a non-empty object", path=name)
    if len(profiles) > PROFILE.max_rows:
        raise InputError(f"{len(profiles):,} profiles, more than {PROFILE.max_rows:,}", path=name)
    for key in profiles:
        check_cell(file, key, PROFILE, row=None, field="profiles")
    return _check_profiles(profiles, name)


def _check_profiles(profiles: Mapping[str, object], name: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for key, curve in profiles.items():
        if not isinstance(curve, list) or len(curve) != SESSION_MINUTES:
            size = len(curve) if isinstance(curve, list) else type(curve).__name__
            raise InputError(f"profile {key!r}: expected {SESSION_MINUTES} values, got {size}", path=name)
        values: list[float] = []
        for i, v in enumerate(curve):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InputError(f"profile {key!r}: minute {i} is {v!r}, not a finite value >= 0", path=name)
            values.append(float(v))
        total = math.fsum(values)
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise InputError(f"profile {key!r}: values sum to {total!r}, not 1", path=name)
        out[str(key)] = values
    return out


def resolve_profile(spec: str) -> dict[str, list[float]]:
    """``"u_shape"`` -> the synthetic U under ``"*"``; anything else is a profile file's path."""
    if spec == U_SHAPE:
        return {POOLED_KEY: u_shaped_profile()}
    return load_profile(spec)


def curve_for(profiles: dict[str, list[float]], symbol: str, source: str) -> list[float]:
    """The curve of ``symbol``, else the pooled one; ``InputError`` naming ``source`` when neither."""
    curve = profiles.get(symbol, profiles.get(POOLED_KEY))
    if curve is None:
        raise InputError(
            f"no volume profile for {symbol} and no pooled {POOLED_KEY!r} profile; "
            f"has: {', '.join(sorted(profiles))}",
            path=source,
        )
    return curve
