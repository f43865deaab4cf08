"""Canary secrets (RELIABILITY L1, K2): an SMTP password from the environment, a robot key and a signing
secret from the keyring flow through config → resolution → real servers → failing sends with exceptions.
The canaries must appear in no log line, mail, request, repr or formatted traceback. A negative control
first proves that the same search does find a canary that is printed unfiltered.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
import structlog
from aiohttp import web

from tests.adapters.notify.test_notify_support import USER, MailRecorder, smtp_server, until
from tests.engine.test_secrets import MemoryKeyring
from zhixing.adapters.notify.factory import notifier_from_settings
from zhixing.engine.clock import SimClock
from zhixing.engine.config import load_config
from zhixing.engine.logs import configure_logging
from zhixing.engine.notify import Message, MessageKind, NotificationDispatcher, NotifyError
from zhixing.engine.units import NS_PER_SECOND

SMTP_CANARY = "CANARY-smtp-9f8e7d6c5b4a"
KEY_CANARY = "CANARY-wecomkey-1a2b3c4d5e6f"
SIGN_CANARY = "CANARY-dingsign-0a9b8c7d6e5f"
CANARIES = (SMTP_CANARY, KEY_CANARY, SIGN_CANARY)
NOW_NS = 1_727_830_800 * NS_PER_SECOND


@pytest.fixture
def canary_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("debug")
    yield
    structlog.reset_defaults()


@pytest.fixture
async def robot() -> AsyncIterator[tuple[str, list[str]]]:
    """A robot server that records every raw request line and body, and refuses every message."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}\n{await request.text()}")
        # a vendor answer that echoes the key back, as some error pages do
        return web.json_response({"errcode": 93000, "errmsg": f"invalid key {request.query.get('key')}"})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def test_negative_control_the_search_finds_an_unfiltered_canary(capsys: pytest.CaptureFixture[str]) -> None:
    print(f"debug: logging in with {SMTP_CANARY}")  # what an unfiltered debug path would do
    assert leaks(capsys.readouterr().out) == [SMTP_CANARY]


async def test_canaries_reach_no_log_mail_request_repr_or_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    json_logs: None,
    canary_keyring: MemoryKeyring,
    robot: tuple[str, list[str]],
) -> None:
    base, requests = robot
    monkeypatch.setenv("ZX_CANARY_SMTP_PASSWORD", SMTP_CANARY)
    canary_keyring.set_password("zhixing", "wecom_url", f"{base}/cgi-bin/webhook/send?key={KEY_CANARY}")
    canary_keyring.set_password("zhixing", "ding_url", f"{base}/robot/send?access_token={KEY_CANARY}")
    canary_keyring.set_password("zhixing", "ding_sign", SIGN_CANARY)
    recorder = MailRecorder(password=SMTP_CANARY)
    evidence: list[str] = []
    with smtp_server(recorder) as port:
        config_path = tmp_path / "zhixing.toml"
        config_path.write_text(
            f"""
[account]
id = "8800123456"
[store]
path = "state.db"
[route]
kind = "sim"
[route.sim]
data = "d"
[notify.email]
host = "127.0.0.1"
port = {port}
security = "none"
username = "{USER}"
password = "env:ZX_CANARY_SMTP_PASSWORD"
sender = "zhixing@example.com"
recipients = ["trader@example.com"]
timeout_s = 5
[notify.wecom]
webhook_url = "keyring:zhixing/wecom_url"
[notify.dingtalk]
webhook_url = "keyring:zhixing/ding_url"
secret = "keyring:zhixing/ding_sign"
""",
            encoding="utf-8",
        )
        config = load_config(config_path)
        clock = SimClock(NOW_NS)
        channels = [notifier_from_settings(t.kind, t.settings, clock=clock) for t in config.notify]
        evidence += [repr(config), *map(repr, channels)]

        # a good send: the mail arrives, authenticated with the canary, which the mail does not carry
        email = channels[0]
        await email.send(Message(kind=MessageKind.ERROR, subject="canary run", body="hello"))
        assert recorder.logins == [(USER, True)]

        # failing sends, each through the dispatcher (logged) and directly (a traceback is formatted)
        recorder.password = "something-else"  # the server now refuses the canary password

        class Leaky:
            """A channel whose library puts the secret in its exception text."""

            name = "leaky"

            async def send(self, message: Message) -> None:
                raise RuntimeError(f"AUTH PLAIN failed for {USER}:{SMTP_CANARY} at {KEY_CANARY}")

        dispatcher = NotificationDispatcher([*channels, Leaky()], clock, max_retries=0, timeout_s=5.0)
        dispatcher.start()
        dispatcher.post(Message(kind=MessageKind.RISK, subject="denied", body="order denied"))
        await until(lambda: dispatcher.stats.gave_up == 4)
        await dispatcher.close(deadline_s=2.0)
        for channel in channels:  # our channels' own errors, formatted as a traceback would be
            try:
                await channel.send(Message(kind=MessageKind.ERROR, subject="x", body="y"))
            except NotifyError as exc:
                evidence.append("".join(traceback.format_exception(exc)))
                structlog.get_logger("zhixing.test").error("send_failed", exc_info=exc, channel=repr(channel))
            else:
                pytest.fail(f"{channel!r} should have failed")

    logged = capsys.readouterr()
    evidence += [logged.out, logged.err]
    evidence += [raw.decode("utf-8", "replace") for raw in recorder.raw]
    # the robot server saw the key in its URL (that is how the vendor authenticates), but never the
    # signing secret; our side must not have echoed the key anywhere else
    assert any(KEY_CANARY in r for r in requests)
    assert not any(SIGN_CANARY in r for r in requests)

    assert len(recorder.raw) == 1
    assert '"event": "notify_send_failed"' in logged.err  # the failures were logged ...
    assert "RuntimeError: AUTH PLAIN failed" in logged.err
    assert "authentication refused" in logged.err
    assert sum("Traceback" in e for e in evidence) >= 3
    found = {i: leaks(e) for i, e in enumerate(evidence) if leaks(e)}
    assert found == {}  # ... and no canary anywhere


def test_literal_secret_in_config_is_refused_without_echo(tmp_path: Path) -> None:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "username": USER,
        "password": SMTP_CANARY,
        "recipients": ["t@example.com"],
    }
    with pytest.raises(Exception, match=r"notify\.email\.password") as caught:
        notifier_from_settings("email", settings, clock=SimClock(NOW_NS))
    assert leaks(str(caught.value)) == []
