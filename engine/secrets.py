"""Secrets: resolved from the environment or the OS keyring, never written in a config file.

A ``Secret`` hides its value from ``repr``/``str``/formatting and refuses to be pickled; the value
comes out only through ``reveal()``, at the moment a component hands it to a library (SMTP AUTH, a
webhook URL). Every secret value is also put in a process-wide registry that ``engine.logs.redact``
scrubs from every string of every log event (messages, exception text, tracebacks), so a secret
cannot reach a log even embedded in an error message from a third-party library.

Specs (the only forms a config may hold for a secret key):

- ``env:NAME``                 the environment variable ``NAME``
- ``keyring:SERVICE/USERNAME`` the OS keyring entry (``keyring`` package, imported only when used)
"""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import Final, NoReturn
from urllib.parse import quote, quote_plus

from zhixing.engine.errors import ConfigError

MASK: Final = "***"
# Shorter values are not scrubbed from logs: "1" or "ok" would shred every message. Real passwords,
# tokens and webhook keys are longer; a secret this short is refused at resolution instead.
MIN_SCRUB_LENGTH: Final = 6
_ENV_SPEC = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")
_KEYRING_SPEC = re.compile(r"keyring:([^/\s]+)/([^/\s]+)")

_lock = threading.Lock()
_registry: set[str] = set()
_ordered: tuple[str, ...] = ()  # longest first, so a secret containing another is masked whole


def register_sensitive(value: str) -> None:
    """Add ``value`` (and its URL-quoted and base64 forms) to the strings scrubbed from logs."""
    global _ordered
    if len(value) < MIN_SCRUB_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}
    with _lock:
        if forms <= _registry:
            return
        _registry.update(f for f in forms if len(f) >= MIN_SCRUB_LENGTH)
        _ordered = tuple(sorted(_registry, key=len, reverse=True))


def scrub(text: str) -> str:
    """``text`` with every registered secret value replaced by ``***``."""
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return text


def has_sensitive() -> bool:
    """Whether any secret is registered (lets the log processor skip work when none is)."""
    return bool(_ordered)


class Secret:
    """A secret value. ``repr``/``str`` give ``Secret('***')``; ``reveal()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value
        register_sensitive(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is never pickled")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def resolve_secret(spec: str, *, key: str) -> Secret:
    """Resolve ``spec`` (``env:NAME`` or ``keyring:SERVICE/USERNAME``) for config key ``key``.

    A literal value is refused: the error names the key and never repeats the value.
    """
    env = _ENV_SPEC.fullmatch(spec)
    if env is not None:
        name = env.group(1)
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"key '{key}': environment variable {name} is not set or empty")
        return _checked(value, key, f"environment variable {name}")
    ring = _KEYRING_SPEC.fullmatch(spec)
    if ring is not None:
        service, username = ring.group(1), ring.group(2)
        value = _from_keyring(service, username, key)
        return _checked(value, key, f"keyring entry {service}/{username}")
    raise ConfigError(
        f"key '{key}': a secret must not be written in the config; use env:VARIABLE or keyring:SERVICE/USER"
    )


def _checked(value: str, key: str, source: str) -> Secret:
    if len(value) < MIN_SCRUB_LENGTH:
        raise ConfigError(
            f"key '{key}': the secret from {source} is shorter than {MIN_SCRUB_LENGTH} characters"
        )
    return Secret(value)


def _from_keyring(service: str, username: str, key: str) -> str:
    try:
        import keyring  # lazily: the package and its OS backends are needed only by keyring: specs
        from keyring.errors import KeyringError
    except ImportError as exc:
        raise ConfigError(
            f"key '{key}': keyring: specs need the 'keyring' package (pip install keyring)"
        ) from exc
    try:
        value = keyring.get_password(service, username)
    except KeyringError as exc:
        # the backend's message names the backend, never the password (which it could not read)
        raise ConfigError(f"key '{key}': keyring lookup {service}/{username} failed: {exc}") from None
    if not value:
        raise ConfigError(f"key '{key}': no keyring entry {service}/{username}")
    return value
