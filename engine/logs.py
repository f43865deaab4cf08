"""Logging is configured once, here, by the entry point; never at import.

structlog renders JSON lines to stderr. Account ids are masked and known secret keys redacted by a
processor on every event, so they cannot reach a log whatever a component binds.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog

from zhixing.engine import secrets

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
    if secrets.has_sensitive():
        _scrub_secret_values(event_dict)
    return event_dict


def _scrub_secret_values(event_dict: MutableMapping[str, Any]) -> None:
    """Scrub every registered secret value (``engine.secrets``) from every string of the event.

    An exception is formatted here, before scrubbing, so a secret in its text or in a chained
    exception's text cannot reach the rendered traceback; ``format_exc_info`` then has nothing left to do.
    """
    for name in ("exc_info", "stack_info"):
        if name in event_dict:
            raw = event_dict.pop(name)
            text = _exception_text(raw) if name == "exc_info" else (raw if isinstance(raw, str) else None)
            if text:
                event_dict["exception" if name == "exc_info" else "stack"] = text
    for key in list(event_dict):
        event_dict[key] = _scrubbed(event_dict[key])


def _exception_text(value: object) -> str | None:
    info: Any
    if value is True:
        info = sys.exc_info()
    elif isinstance(value, BaseException):
        info = (type(value), value, value.__traceback__)
    elif isinstance(value, tuple) and len(value) == 3:
        info = value
    else:
        return None
    if info[0] is None:
        return None
    return "".join(traceback.format_exception(*info))


def _scrubbed(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return secrets.scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < 4 and isinstance(value, dict):
        return {k: _scrubbed(v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list | tuple):
        return [_scrubbed(v, depth + 1) for v in value]
    # anything else is rendered with repr() by the JSON renderer: scrub that text when it holds a secret
    text = repr(value)
    cleaned = secrets.scrub(text)
    return value if cleaned == text else cleaned


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


class SecretScrubFilter(logging.Filter):
    """A stdlib ``logging`` filter that scrubs registered secrets (``engine.secrets``) from a record's
    message and exception text. Libraries (aiohttp, aiosmtplib, keyring) log through stdlib logging, which
    ``configure_logging`` does not route through structlog: this covers those handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not secrets.has_sensitive():
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template
            message = str(record.msg)
        record.msg, record.args = secrets.scrub(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = secrets.scrub(
                "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            )
            record.exc_info = None
        if record.stack_info:
            record.stack_info = secrets.scrub(record.stack_info)
        return True


def install_secret_filter() -> None:
    """Add ``SecretScrubFilter`` to every handler of the root logger and to ``logging.lastResort``
    (idempotent). The entry point calls this next to ``configure_logging``."""
    handlers = [*logging.getLogger().handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, SecretScrubFilter) for f in handler.filters):
            handler.addFilter(SecretScrubFilter())
