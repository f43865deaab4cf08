"""Channels built from ``[notify.*]`` settings: the right class, secrets resolved, mistakes name the key."""

from __future__ import annotations

from typing import Any

import pytest

from zhixing.adapters.notify.email import SmtpNotifier
from zhixing.adapters.notify.factory import notifier_from_settings
from zhixing.adapters.notify.webhook import DingTalkNotifier, FeishuNotifier, WeComNotifier
from zhixing.engine.clock import SimClock
from zhixing.engine.errors import ConfigError

CLOCK = SimClock(0)
EMAIL: dict[str, Any] = {
    "host": "smtp.example.com",
    "security": "starttls",
    "username": "desk@example.com",
    "password": "env:ZX_FACTORY_SMTP",
    "recipients": ["me@example.com"],
}


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZX_FACTORY_SMTP", "factory-smtp-pass")
    monkeypatch.setenv("ZX_FACTORY_URL", "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789")
    monkeypatch.setenv("ZX_FACTORY_SIGN", "SECfactory-sign-secret")


def test_email_defaults_follow_the_security_mode() -> None:
    smtp = notifier_from_settings("email", EMAIL, clock=CLOCK)
    assert isinstance(smtp, SmtpNotifier)
    assert (smtp.port, smtp.security, smtp.sender, smtp.timeout_s) == (
        587,
        "starttls",
        "desk@example.com",
        30.0,
    )


@pytest.mark.parametrize(
    ("kind", "cls"), [("wecom", WeComNotifier), ("dingtalk", DingTalkNotifier), ("feishu", FeishuNotifier)]
)
def test_robot_channels(kind: str, cls: type) -> None:
    settings = {"webhook_url": "env:ZX_FACTORY_URL"}
    if kind != "wecom":
        settings["secret"] = "env:ZX_FACTORY_SIGN"
    notifier = notifier_from_settings(kind, settings, clock=CLOCK)
    assert isinstance(notifier, cls)
    assert "abcdef0123456789" not in repr(notifier)


@pytest.mark.parametrize(
    ("kind", "change", "key"),
    [
        ("email", {"security": "tls"}, "notify.email.security"),
        ("email", {"recipients": []}, "notify.email.recipients"),
        ("email", {"port": "465"}, "notify.email.port"),
        ("email", {"pasword": "env:X"}, "notify.email.pasword"),
        ("email", {"password": "plain-text-password"}, "notify.email.password"),
        ("wecom", {"webhook_url": "env:ZX_FACTORY_UNSET"}, "notify.wecom.webhook_url"),
        ("sms", {}, "notify.sms"),
    ],
)
def test_mistakes_name_the_key(
    kind: str, change: dict[str, Any], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZX_FACTORY_UNSET", raising=False)
    settings = {**EMAIL, **change} if kind == "email" else change
    with pytest.raises(ConfigError, match=f"key '{key.replace('.', '[.]')}"):
        notifier_from_settings(kind, settings, clock=CLOCK)


def test_webhook_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZX_FACTORY_URL", "ftp://example.com/robot-key-0123456789")
    with pytest.raises(ConfigError, match=r"notify\.wecom\.webhook_url"):
        notifier_from_settings("wecom", {"webhook_url": "env:ZX_FACTORY_URL"}, clock=CLOCK)
