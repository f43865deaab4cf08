"""``zhixing config check FILE``: validate a live-run config and print what it would connect to.

Secrets are shown only as their reference and whether it resolves (``env:SMTP_PASSWORD (set)``),
never as values.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zhixing.engine.cli.routes import check_route, load_checked
from zhixing.engine.config import ROUTES, Config
from zhixing.engine.errors import ConfigError
from zhixing.engine.logs import mask_account
from zhixing.engine.secrets import resolve_secret


def add_parsers(sub: Any) -> None:
    config = sub.add_parser("config", help="live-run config files")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file and print what it would connect to")
    check.add_argument("file", type=Path, help="the TOML config")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.add_argument(
        "--adapter", choices=ROUTES, help="check this route instead of the config's [route] kind"
    )
    check.set_defaults(handler=run_check)


def secret_status(spec: str) -> str:
    """``env:NAME (set)`` / ``(NOT SET)``; keyring references are not looked up here."""
    kind, _, name = spec.partition(":")
    if kind == "env":
        return f"{spec} ({'set' if os.environ.get(name) else 'NOT SET'})"
    return f"{spec} (keyring, resolved at connect)"


def check_set_secrets(config: Config) -> None:
    """Every ``env:`` secret that is set is resolved as the run resolves it (a value too short is refused
    there): ``config check`` refuses what ``run`` refuses. Keyring entries are looked up only at connect."""
    for key, spec in config.secret_keys():
        if spec.startswith("env:") and os.environ.get(spec[4:]):
            try:
                resolve_secret(spec, key=key)
            except ConfigError as exc:
                raise ConfigError(f"{config.path}: {exc}") from None


def summarize(config: Config) -> dict[str, object]:
    secrets = dict(config.secret_keys())

    def shown(prefix: str, settings: Any) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in settings.items():
            dotted = f"{prefix}.{key}"
            if dotted in secrets:
                out[key] = secret_status(secrets[dotted])
            elif "account" in key and isinstance(value, str):
                out[key] = mask_account(value)
            else:
                out[key] = value
        return out

    return {
        "file": str(config.path),
        "account": mask_account(config.account.id),
        "store": str(config.store.path),
        "route": {"kind": config.route.kind, **shown(f"route.{config.route.kind}", config.route.settings)},
        "feed": {
            "kind": config.feed.kind,
            "stale_after_s": config.stale_after_s,
            "resubscribe_after_s": config.resubscribe_after_s,
            **shown(f"feed.{config.feed.kind}", config.feed.settings),
        },
        "risk": asdict(config.risk),
        "notify": {n.kind: shown(f"notify.{n.kind}", n.settings) for n in config.notify},
        "jobs": [
            {"name": j.name, "cron": j.cron, "kind": j.kind}
            | ({"command": list(j.command)} if j.command else {})
            | ({"targets": str(j.targets)} if j.targets else {})
            for j in config.jobs
        ],
        "shutdown": config.shutdown,
        "calendar": {
            "holidays": str(config.calendar.holidays.path) if config.calendar.holidays else None,
            "known_until": (
                config.calendar.holidays.known_until.isoformat()
                if config.calendar.holidays and config.calendar.holidays.known_until
                else None
            ),
            "beyond_known": config.calendar.beyond_known,
        },
        "unresolved_secrets": [
            key for key, spec in secrets.items() if spec.startswith("env:") and not os.environ.get(spec[4:])
        ],
    }


def run_check(args: argparse.Namespace) -> int:
    config = load_checked(args.file, adapter=args.adapter)
    # the route's and feed's own settings are checked by building them (nothing connects)
    check_route(config)
    check_set_secrets(config)
    summary = summarize(config)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(f"config {summary['file']}: OK")
        for key in ("account", "store", "route", "feed", "risk", "notify", "jobs", "shutdown", "calendar"):
            print(f"  {key}: {json.dumps(summary[key], ensure_ascii=False)}")
    unresolved = [
        key for key, spec in config.secret_keys() if spec.startswith("env:") and not os.environ.get(spec[4:])
    ]
    if unresolved:
        print(f"zhixing: warning: secrets not set in the environment: {', '.join(unresolved)}")
        return 1
    return 0
