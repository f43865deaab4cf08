"""Real local servers for the notification tests: an SMTP server (aiosmtpd) with AUTH and TLS, a
self-signed certificate made here with ``cryptography``, and a webhook receiver (aiohttp.web).

Everything listens on 127.0.0.1 only. The helpers are imported by the other notify tests; the tests
at the bottom check the helpers themselves (a broken fixture must not make the real tests vacuous).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import itertools
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "ops@example.com"


async def until(
    condition: Callable[[], bool], timeout_s: float = 5.0, step: Callable[[], object] = bool
) -> None:
    """Let the loop run (real sockets need real I/O turns) until ``condition()``; fail after ``timeout_s``.
    ``step`` runs between checks (e.g. a SimClock's ``step``)."""
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            if condition():
                return
            step()
            await asyncio.sleep(0.001)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(folder: Path) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost (valid around the real date: TLS checks it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    not_before = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@dataclass
class MailRecorder:
    """aiosmtpd handler that keeps every accepted mail and every AUTH attempt."""

    password: str
    mails: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.raw.append(content)
        self.mails.append(message_from_bytes(content, policy=default_policy))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == USER and auth_data.password.decode() == self.password
        self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@contextmanager
def smtp_server(
    recorder: MailRecorder, *, security: str = "none", tls: TlsFiles | None = None
) -> Iterator[int]:
    """Run a real SMTP server on 127.0.0.1 (in aiosmtpd's own thread); yields its port."""
    port = free_port()
    # aiosmtpd sees STARTTLS but not implicit TLS as "TLS" for AUTH, and warns when AUTH is required
    # without it: plain and implicit-TLS servers offer AUTH without requiring it
    kwargs: dict[str, Any] = {
        "authenticator": recorder.authenticate,
        "auth_required": security == "starttls",
        "auth_require_tls": security == "starttls",
    }
    if security == "starttls":
        assert tls is not None
        kwargs |= {"tls_context": tls.server_context(), "require_starttls": True}
    elif security == "ssl":
        assert tls is not None
        kwargs["ssl_context"] = tls.server_context()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_self_signed_certificate_verifies_for_127_0_0_1(tmp_path: Path) -> None:
    files = make_cert(tmp_path)
    client = files.client_context()
    assert client.verify_mode == ssl.CERT_REQUIRED
    loaded = x509.load_pem_x509_certificate(files.cert.read_bytes())
    sans = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
