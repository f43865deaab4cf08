"""SmtpNotifier against a real SMTP server on localhost: plain, STARTTLS and implicit TLS, with AUTH."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.notify.test_notify_support import (
    USER,
    MailRecorder,
    free_port,
    make_cert,
    smtp_server,
    until,
)
from zhixing.adapters.notify.email import Security, SmtpNotifier
from zhixing.engine.clock import SimClock
from zhixing.engine.notify import Message, MessageKind, NotificationDispatcher, NotifyError, Severity
from zhixing.engine.secrets import Secret
from zhixing.engine.units import NS_PER_SECOND

PASSWORD = "smtp-pass-7c1e9a"
MESSAGE = Message(
    kind=MessageKind.EXECUTION_REPORT,
    subject="[zhixing] 成交回报: 2/3 完成",
    body="600000.SH 浦发银行 买入 1000/1000 股\n000001.SZ 平安银行 卖出 200/500 股 跌停无买盘",
    severity=Severity.WARNING,
)


def notifier(port: int, security: Security, tmp_path: Path, password: str = PASSWORD) -> SmtpNotifier:
    context = make_cert(tmp_path).client_context() if security != "none" else None
    return SmtpNotifier(
        "127.0.0.1",
        port,
        USER,
        Secret(password),
        "zhixing@example.com",
        ["trader@example.com", "备份@example.com"],
        security,
        timeout_s=5.0,
        tls_context=context,
        clock=SimClock(1_727_830_800 * NS_PER_SECOND),
    )


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
async def test_mail_arrives_with_utf8_subject_and_body(security: Security, tmp_path: Path) -> None:
    recorder = MailRecorder(password=PASSWORD)
    tls = make_cert(tmp_path)
    with smtp_server(recorder, security=security, tls=tls) as port:
        smtp = SmtpNotifier(
            "127.0.0.1",
            port,
            USER,
            Secret(PASSWORD),
            "zhixing@example.com",
            ["trader@example.com"],
            security,
            timeout_s=5.0,
            tls_context=tls.client_context() if security != "none" else None,
            clock=SimClock(1_727_830_800 * NS_PER_SECOND),
        )
        await smtp.send(MESSAGE)
    assert recorder.logins == [(USER, True)]
    (mail,) = recorder.mails
    assert mail["Subject"] == "[zhixing] 成交回报: 2/3 完成"
    assert mail["To"] == "trader@example.com"
    assert mail["Date"] == "Wed, 02 Oct 2024 01:00:00 -0000"
    assert mail.get_content().replace("\r\n", "\n").rstrip("\n") == MESSAGE.body  # type: ignore[attr-defined]


async def test_wrong_password_raises_notify_error_without_the_password(tmp_path: Path) -> None:
    recorder = MailRecorder(password=PASSWORD)
    with smtp_server(recorder) as port:
        smtp = notifier(port, "none", tmp_path, password="wrong-pass-55aa11")
        with pytest.raises(NotifyError, match="authentication refused") as caught:
            await smtp.send(MESSAGE)
    assert "wrong-pass-55aa11" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert recorder.mails == []


async def test_starttls_refused_by_a_plain_server_is_a_notify_error(tmp_path: Path) -> None:
    recorder = MailRecorder(password=PASSWORD)
    with smtp_server(recorder) as port, pytest.raises(NotifyError, match=r"SMTP 127\.0\.0\.1"):
        await notifier(port, "starttls", tmp_path).send(MESSAGE)
    assert recorder.mails == []


async def test_server_down_is_a_notify_error() -> None:
    smtp = SmtpNotifier("127.0.0.1", free_port(), None, None, "z@example.com", ["t@example.com"], "none")
    with pytest.raises(NotifyError, match=r"SMTP 127\.0\.0\.1"):
        await smtp.send(MESSAGE)


async def test_server_down_through_the_dispatcher_gives_up_after_bounded_retries() -> None:
    clock = SimClock(1_727_830_800 * NS_PER_SECOND)
    smtp = SmtpNotifier("127.0.0.1", free_port(), None, None, "z@example.com", ["t@example.com"], "none")
    dispatcher = NotificationDispatcher(
        [smtp], clock, timeout_s=5.0, max_retries=2, backoff_ns=NS_PER_SECOND, digest_window_ns=0
    )
    dispatcher.start()
    dispatcher.post(MESSAGE)  # returns at once; the failures happen in the background
    await until(lambda: dispatcher.stats.gave_up == 1, step=clock.step)  # backoff runs on the SimClock
    assert dispatcher.stats.failed_attempts == 3
    assert clock.next_timer_ns() is None
    await dispatcher.close(deadline_s=1.0)


def test_repr_hides_the_password(tmp_path: Path) -> None:
    text = repr(notifier(25, "none", tmp_path))
    assert PASSWORD not in text
    assert "password=Secret('***')" in text
