"""Logging is configured once, here, by the entry point; never at import.

structlog renders JSON lines to stderr. Account ids are masked and known secret keys redacted by a
processor on every event, so they cannot reach a log whatever a component binds.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset({"password", "passwd", "secret", "token", "api_key", "smtp_password", "auth"})
ACCOUNT_KEYS = frozenset({"account", "account_id"})


def mask_account(value: str) -> str:
    """Keep the first 2 and last 2 characters: ``12345678`` -> ``12****78``."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        lowered = key.lower()
        if lowered in SECRET_KEYS or re.search(r"pass|secret|token", lowered):
            event_dict[key] = "***"
        elif lowered in ACCOUNT_KEYS and isinstance(event_dict[key], str):
            event_dict[key] = mask_account(event_dict[key])
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write (it may be replaced later, e.g. by
    a test's capture or a notebook), instead of holding on to the stream of configuration time."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "warning") -> None:
    numeric = getattr(logging, level.upper(), logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
