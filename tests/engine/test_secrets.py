"""Secrets: resolution from env/keyring, literal values refused, hidden reprs, scrubbed from every log."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator

import keyring
import pytest
import structlog
from keyring.backend import KeyringBackend

from zhixing.engine.errors import ConfigError
from zhixing.engine.logs import configure_logging
from zhixing.engine.secrets import Secret, resolve_secret, scrub


class MemoryKeyring(KeyringBackend):
    """A real keyring backend (the package's API) that keeps entries in memory."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("info")
    yield
    structlog.reset_defaults()


def test_secret_hides_its_value_in_repr_str_and_format() -> None:
    secret = Secret("hunter2-canary-0001")
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "Secret('***')"
    assert f"{secret}" == "Secret('***')"
    assert "canary" not in repr([secret, {"k": secret}])
    assert secret.reveal() == "hunter2-canary-0001"


def test_secret_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(Secret("hunter2-canary-0002"))


def test_env_spec_resolves_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZX_TEST_SMTP_PASSWORD", "env-value-0003")
    assert resolve_secret("env:ZX_TEST_SMTP_PASSWORD", key="notify.email.password").reveal() == (
        "env-value-0003"
    )


def test_missing_env_variable_names_the_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZX_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match=r"notify\.email\.password.*ZX_TEST_UNSET"):
        resolve_secret("env:ZX_TEST_UNSET", key="notify.email.password")


def test_literal_secret_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError, match=r"route\.qmt\.password") as caught:
        resolve_secret("literal-password-0004", key="route.qmt.password")
    assert "literal-password-0004" not in str(caught.value)


def test_too_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZX_TEST_SHORT", "abc")
    with pytest.raises(ConfigError, match="shorter than"):
        resolve_secret("env:ZX_TEST_SHORT", key="notify.email.password")


def test_keyring_spec_reads_the_os_keyring(memory_keyring: MemoryKeyring) -> None:
    keyring.set_password("zhixing-smtp", "ops@example.com", "ring-value-0005")
    secret = resolve_secret("keyring:zhixing-smtp/ops@example.com", key="notify.email.password")
    assert secret.reveal() == "ring-value-0005"


def test_missing_keyring_entry_names_the_key(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(ConfigError, match=r"notify\.email\.password.*no keyring entry zhixing/nobody"):
        resolve_secret("keyring:zhixing/nobody", key="notify.email.password")


def test_scrub_masks_every_registered_form_of_a_secret() -> None:
    Secret("a b/c?d=canary-0006")
    assert scrub("x a b/c?d=canary-0006 y") == "x *** y"
    assert scrub("url-quoted a%20b%2Fc%3Fd%3Dcanary-0006") == "url-quoted ***"
    assert scrub("nothing here") == "nothing here"


def test_log_redaction_scrubs_secret_from_message_values_and_tracebacks(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = Secret("log-canary-0007")
    log = structlog.get_logger("zhixing.test")
    try:
        raise RuntimeError(f"login failed with {secret.reveal()}")
    except RuntimeError:
        log.exception("send_failed", detail=f"tried {secret.reveal()}", nested={"v": [secret.reveal()]})
    log.error("plain", error=RuntimeError(secret.reveal()))
    err = capsys.readouterr().err
    assert "log-canary-0007" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["event"] == "send_failed"
    assert "RuntimeError: login failed with ***" in lines[0]["exception"]
    assert lines[0]["detail"] == "tried ***"
    assert lines[0]["nested"] == {"v": ["***"]}
    assert lines[1]["error"] == "RuntimeError('***')"


def test_stdlib_logging_records_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from zhixing.engine.logs import install_secret_filter

    secret = Secret("stdlib-canary-0008")
    handler = logging.StreamHandler()  # writes to the current sys.stderr (captured)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_secret_filter()
        library = logging.getLogger("aiohttp.client")
        library.warning("connect to %s failed", f"https://h/?key={secret.reveal()}")
        try:
            raise OSError(f"refused {secret.reveal()}")
        except OSError:
            library.exception("request failed")
    finally:
        root.removeHandler(handler)
    err = capsys.readouterr().err
    assert "connect to https://h/?key=*** failed" in err
    assert "OSError: refused ***" in err
    assert "stdlib-canary-0008" not in err


def test_keyring_without_a_backend_is_a_config_error_naming_the_key() -> None:
    from keyring.backends.fail import Keyring as NoBackend

    previous = keyring.get_keyring()
    keyring.set_keyring(NoBackend())  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(
            ConfigError, match=r"key 'notify\.wecom\.webhook_url': keyring lookup zhixing/wecom"
        ):
            resolve_secret("keyring:zhixing/wecom", key="notify.wecom.webhook_url")
    finally:
        keyring.set_keyring(previous)
