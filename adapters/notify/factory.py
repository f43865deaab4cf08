"""Build notification channels from the config's ``[notify.<channel>]`` tables.

Secret keys (``password``, ``webhook_url``, ``secret``) hold ``env:NAME`` or ``keyring:SERVICE/USER``
and are resolved here through ``engine.secrets``; every error is a ``ConfigError`` naming the dotted key.

=========  ==========================================================================================
channel    keys
=========  ==========================================================================================
email      host, port (465), security ("ssl" | "starttls" | "none"), username, password (secret),
           sender, recipients (list), timeout_s (30)
wecom      webhook_url (secret), timeout_s (10)
dingtalk   webhook_url (secret), secret (secret, optional: 加签), timeout_s (10)
feishu     webhook_url (secret), secret (secret, optional: 签名校验), timeout_s (10)
=========  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zhixing.adapters.notify.email import SmtpNotifier
from zhixing.adapters.notify.webhook import DingTalkNotifier, FeishuNotifier, WeComNotifier
from zhixing.engine.clock import Clock
from zhixing.engine.errors import ConfigError, ParameterError
from zhixing.engine.notify import Notifier
from zhixing.engine.secrets import Secret, resolve_secret

_KEYS = {
    "email": {"host", "port", "security", "username", "password", "sender", "recipients", "timeout_s"},
    "wecom": {"webhook_url", "timeout_s"},
    "dingtalk": {"webhook_url", "secret", "timeout_s"},
    "feishu": {"webhook_url", "secret", "timeout_s"},
}


class _Settings:
    def __init__(self, kind: str, settings: Mapping[str, Any]) -> None:
        self.kind = kind
        self.settings = settings
        unknown = sorted(set(settings) - _KEYS[kind])
        if unknown:
            raise ConfigError(f"key 'notify.{kind}.{unknown[0]}': unknown key")

    def key(self, name: str) -> str:
        return f"notify.{self.kind}.{name}"

    def text(self, name: str, default: str | None = None) -> str:
        value = self.settings.get(name, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"key '{self.key(name)}': expected a non-empty string")
        return value

    def number(self, name: str, default: float) -> float:
        value = self.settings.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"key '{self.key(name)}': expected a positive number")
        return float(value)

    def secret(self, name: str, *, required: bool = True) -> Secret | None:
        spec = self.settings.get(name)
        if spec is None and not required:
            return None
        if not isinstance(spec, str):
            raise ConfigError(f"key '{self.key(name)}': expected env:VARIABLE or keyring:SERVICE/USER")
        return resolve_secret(spec, key=self.key(name))


def notifier_from_settings(kind: str, settings: Mapping[str, Any], *, clock: Clock) -> Notifier:
    """One channel from its ``[notify.<kind>]`` table."""
    if kind not in _KEYS:
        raise ConfigError(f"key 'notify.{kind}': unknown channel (email, wecom, dingtalk, feishu)")
    s = _Settings(kind, settings)
    if kind == "email":
        security = s.text("security", "ssl")
        if security not in ("ssl", "starttls", "none"):
            raise ConfigError(f"key '{s.key('security')}': expected ssl, starttls or none")
        port = settings.get("port", 465 if security == "ssl" else 587 if security == "starttls" else 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"key '{s.key('port')}': expected a port number")
        recipients = settings.get("recipients")
        if (
            not isinstance(recipients, list)
            or not recipients
            or not all(isinstance(r, str) for r in recipients)
        ):
            raise ConfigError(f"key '{s.key('recipients')}': expected a non-empty list of addresses")
        username = settings.get("username")
        if username is not None and not isinstance(username, str):
            raise ConfigError(f"key '{s.key('username')}': expected a string")
        password = s.secret("password", required=username is not None)
        return SmtpNotifier(
            s.text("host"),
            port,
            username,
            password,
            s.text("sender", username),
            recipients,
            security,  # type: ignore[arg-type]  # checked against the three values above
            s.number("timeout_s", 30.0),
            clock=clock,
        )
    url = s.secret("webhook_url")
    assert url is not None
    timeout_s = s.number("timeout_s", 10.0)
    try:
        if kind == "wecom":
            return WeComNotifier(url, clock=clock, timeout_s=timeout_s)
        signing = s.secret("secret", required=False)
        if kind == "dingtalk":
            return DingTalkNotifier(url, clock=clock, signing_secret=signing, timeout_s=timeout_s)
        return FeishuNotifier(url, clock=clock, signing_secret=signing, timeout_s=timeout_s)
    except ParameterError as exc:
        raise ConfigError(f"key '{s.key('webhook_url')}': {exc}") from None
