"""E-mail over SMTP (aiosmtplib): implicit TLS ("ssl", port 465), STARTTLS (587) or plain ("none").

The password is a ``Secret`` revealed only into the AUTH call; SMTP protocol debugging is never turned
on (RELIABILITY K2). Every library or network failure becomes a ``NotifyError`` whose message names the
server and the failure, never the credentials; the library's exception is not chained.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import aiosmtplib

from zhixing.engine.clock import Clock, host_wall_ns
from zhixing.engine.errors import ParameterError
from zhixing.engine.notify import Message, NotifyError
from zhixing.engine.secrets import Secret, scrub

Security = Literal["ssl", "starttls", "none"]


class SmtpNotifier:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: Secret | None,
        sender: str,
        recipients: Sequence[str],
        security: Security = "ssl",
        timeout_s: float = 30.0,
        *,
        tls_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        if security not in ("ssl", "starttls", "none"):
            raise ParameterError(
                f"must be ssl, starttls or none, got {security!r}", name="security", value=security
            )
        if not recipients:
            raise ParameterError("at least one recipient is required", name="recipients", value=recipients)
        if (username is None) != (password is None):
            raise ParameterError("username and password go together", name="username", value=username)
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.sender = sender
        self.recipients = tuple(recipients)
        self.security: Security = security
        self.timeout_s = timeout_s
        self._tls_context = tls_context
        self._clock = clock  # for the Date header; without one the receiving server adds it

    def __repr__(self) -> str:
        return (
            f"SmtpNotifier(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"password={self._password!r}, sender={self.sender!r}, recipients={list(self.recipients)!r}, "
            f"security={self.security!r})"
        )

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Subject"] = message.subject
        if self._clock is not None:
            mail["Date"] = formatdate(host_wall_ns(self._clock) / 1e9, localtime=False)
        mail.set_content(message.body, charset="utf-8")
        return mail

    async def send(self, message: Message) -> None:
        mail = self.build(message)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password.reveal() if self._password is not None else None,
                use_tls=self.security == "ssl",
                start_tls=self.security == "starttls",
                timeout=self.timeout_s,
                tls_context=self._tls_context,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise NotifyError(
                f"SMTP {self.host}:{self.port}: authentication refused for {self.username!r} ({exc.code})"
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # the text of a library error is scrubbed of registered secrets before it goes anywhere
            raise NotifyError(
                f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {scrub(str(exc))}"
            ) from None
