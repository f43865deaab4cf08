"""Chat-robot webhooks: WeCom (企业微信群机器人), DingTalk (钉钉自定义机器人), Feishu (飞书自定义机器人).

Payloads, per each vendor's robot documentation:

- WeCom:    POST ``{"msgtype": "text", "text": {"content": ...}}`` to ``.../cgi-bin/webhook/send?key=KEY``;
            answer ``{"errcode": 0, "errmsg": "ok"}``. Text content is limited to 2,048 bytes.
- DingTalk: POST ``{"msgtype": "text", "text": {"content": ...}}`` to ``.../robot/send?access_token=T``;
            with 加签 the URL also gets ``timestamp`` (ms) and ``sign`` =
            urlencode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}"))); answer ``errcode`` 0.
- Feishu:   POST ``{"msg_type": "text", "content": {"text": ...}}`` to ``.../bot/v2/hook/TOKEN``; with
            签名校验 the body also gets ``timestamp`` (s) and ``sign`` =
            base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b"")); answer ``code`` 0.

Webhook URLs carry the robot's key, so they are ``Secret``s like the signing secrets; the key parts are
registered for log scrubbing, and errors name only the host. Signing timestamps are the injected clock's
host wall time (``engine.clock.host_wall_ns``: the server checks them against its own clock).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

import aiohttp

from zhixing.engine.clock import Clock, host_wall_ns
from zhixing.engine.errors import ParameterError
from zhixing.engine.notify import Message, NotifyError
from zhixing.engine.secrets import Secret, register_sensitive, scrub


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    marker = "\n…(truncated)"
    room = max_bytes - len(marker.encode("utf-8"))
    return data[:room].decode("utf-8", errors="ignore") + marker


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签: base64 HMAC-SHA256 keyed by the secret over ``timestamp\\nsecret`` (not URL-encoded)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu 签名校验: base64 HMAC-SHA256 keyed by ``timestamp\\nsecret`` over an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _http_url(url: Secret) -> SplitResult | None:
    """The parts of an ``http(s)://host/...`` URL, None for anything else. urllib's own ``ValueError``
    (an IPv6 host left open) quotes the URL, a secret: it never goes out."""
    try:
        parts = urlsplit(url.reveal())
    except ValueError:
        return None
    return parts if parts.hostname and parts.scheme in ("http", "https") else None


class _RobotNotifier:
    name = "webhook"
    max_bytes = 4000

    def __init__(
        self,
        url: Secret,
        *,
        clock: Clock,
        signing_secret: Secret | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        parts = _http_url(url)
        if parts is None:
            raise ParameterError(f"must be http(s)://host/... for a {self.name} robot", name="url")
        # the robot key lives in the query (WeCom key, DingTalk access_token) or the path (Feishu)
        # (long values only: a short query value or path word is not a key, and would shred the logs)
        for value in [v for _, v in parse_qsl(parts.query)] + [parts.path.rsplit("/", 1)[-1]]:
            if len(value) >= 16:
                register_sensitive(value)
        self._url = url
        self._host = parts.hostname
        self._signing = signing_secret
        self._clock = clock
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        signed = self._signing is not None
        return f"{type(self).__name__}(host={self._host!r}, url={self._url!r}, signed={signed})"

    def text(self, message: Message) -> str:
        return truncate_utf8(f"{message.subject}\n\n{message.body}", self.max_bytes)

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body to POST (public so tests and dry runs can see exactly what is sent)."""
        raise NotImplementedError

    def check_answer(self, answer: dict[str, Any]) -> str | None:
        """The vendor's error text, or None when the answer says the message was taken."""
        code = answer.get("errcode")
        return None if code == 0 else f"errcode {code}: {answer.get('errmsg')}"

    async def send(self, message: Message) -> None:
        url, body = self.request(message)
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=body) as response,
            ):
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # aiohttp's texts can hold the full URL (and so the key): only the type and the host go out
            raise NotifyError(f"{self.name} robot at {self._host}: {type(exc).__name__}") from None
        if status != 200:
            raise NotifyError(f"{self.name} robot at {self._host}: HTTP {status}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise NotifyError(f"{self.name} robot at {self._host}: answer is not JSON") from None
        problem = self.check_answer(answer) if isinstance(answer, dict) else "answer is not an object"
        if problem is not None:
            raise NotifyError(f"{self.name} robot at {self._host}: {scrub(problem)}")


class WeComNotifier(_RobotNotifier):
    """企业微信群机器人. WeCom has no signing; the key in the URL is the credential."""

    name = "wecom"
    max_bytes = 2048

    def __init__(self, url: Secret, *, clock: Clock, timeout_s: float = 10.0) -> None:
        super().__init__(url, clock=clock, signing_secret=None, timeout_s=timeout_s)

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        return self._url.reveal(), {"msgtype": "text", "text": {"content": self.text(message)}}


class DingTalkNotifier(_RobotNotifier):
    """钉钉自定义机器人, optionally with 加签 (timestamp and sign as URL query parameters)."""

    name = "dingtalk"
    max_bytes = 18000

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        url = self._url.reveal()
        if self._signing is not None:
            timestamp_ms = host_wall_ns(self._clock) // 1_000_000
            sign = dingtalk_sign(self._signing.reveal(), timestamp_ms)
            query = urlencode({"timestamp": timestamp_ms, "sign": sign})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url, {"msgtype": "text", "text": {"content": self.text(message)}}


class FeishuNotifier(_RobotNotifier):
    """飞书自定义机器人, optionally with 签名校验 (timestamp and sign in the body)."""

    name = "feishu"
    max_bytes = 18000

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": self.text(message)}}
        if self._signing is not None:
            timestamp_s = host_wall_ns(self._clock) // 1_000_000_000
            body = {"timestamp": str(timestamp_s), "sign": feishu_sign(self._signing.reveal(), timestamp_s)}
            body |= {"msg_type": "text", "content": {"text": self.text(message)}}
        return self._url.reveal(), body

    def check_answer(self, answer: dict[str, Any]) -> str | None:
        code = answer.get("code", answer.get("StatusCode"))
        return None if code == 0 else f"code {code}: {answer.get('msg', answer.get('StatusMessage'))}"
