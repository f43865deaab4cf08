"""``zhixing profile build``: a time-of-day volume profile (for VWAP) from 1-minute bar files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zhixing.algos.profile import POOLED_KEY, build_profile, save_profile
from zhixing.engine.errors import InputError
from zhixing.replay.bars import load_minute_bars


def add_parsers(sub: Any) -> None:
    profile = sub.add_parser("profile", help="volume profiles for VWAP")
    psub = profile.add_subparsers(dest="profile_command", required=True)
    build = psub.add_parser("build", help="average each day's normalised minute volumes into a profile")
    build.add_argument("--bars", required=True, type=Path, help="1-minute bar file or folder")
    build.add_argument("--out", required=True, type=Path, help="profile JSON to write")
    build.add_argument("--pooled", action="store_true", help="one profile over all symbols (key '*')")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    bars = load_minute_bars(args.bars)
    try:
        profile = build_profile(bars, pooled=args.pooled)
    except ValueError as exc:
        raise InputError(str(exc), path=str(args.bars)) from None
    path = save_profile(profile, args.out)
    volume = bars.groupby(["symbol", "trade_date"])["volume"].sum()
    days = volume[volume > 0]
    symbols = days.index.get_level_values("symbol").nunique()
    dates = days.index.get_level_values("trade_date").nunique()
    keys = f"pooled under {POOLED_KEY!r}" if args.pooled else f"{len(profile)} profile(s)"
    print(f"wrote {path}: {symbols} symbol(s), {dates} day(s), {len(days)} symbol-days, {keys}")
    return 0
