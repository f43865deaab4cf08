"""Robot webhooks against a real local HTTP server (aiohttp.web on 127.0.0.1): payloads and signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.adapters.notify.test_notify_support import free_port, until
from zhixing.adapters.notify.webhook import (
    DingTalkNotifier,
    FeishuNotifier,
    WeComNotifier,
    dingtalk_sign,
    feishu_sign,
    truncate_utf8,
)
from zhixing.engine.clock import SimClock
from zhixing.engine.notify import Message, MessageKind, NotificationDispatcher, NotifyError, Severity
from zhixing.engine.secrets import Secret
from zhixing.engine.units import NS_PER_SECOND

NOW_NS = 1_727_830_800 * NS_PER_SECOND + 123_456_789  # 2024-10-02 09:00:00.123 Shanghai
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "c0ffee00deadbeef1234567890abcdef"
DING_SECRET = "SECd1ng-signing-secret-0001"
FEISHU_TOKEN = "0f0e0d0c-feed-4bad-a55e-123456789abc"
FEISHU_SECRET = "feishu-signing-secret-0002"
MESSAGE = Message(
    kind=MessageKind.RISK,
    subject="[zhixing] 风控拒单",
    body="600000.SH 价格超出笼子",
    severity=Severity.WARNING,
)


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class Robots:
    base: str
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # queued non-default answers


@pytest.fixture
async def robots() -> AsyncIterator[Robots]:
    port = free_port()
    state = Robots(base=f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        state.requests.append(Received(request.path, dict(request.query), await request.json()))
        if state.answers:
            status, answer = state.answers.pop(0)
            return web.json_response(answer, status=status)
        if request.path.startswith("/open-apis/"):
            return web.json_response({"code": 0, "msg": "success", "data": {}})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield state
    await runner.cleanup()


async def test_wecom_posts_text_to_the_key_url(robots: Robots) -> None:
    url = Secret(f"{robots.base}/cgi-bin/webhook/send?key={WECOM_KEY}")
    await WeComNotifier(url, clock=SimClock(NOW_NS)).send(MESSAGE)
    (got,) = robots.requests
    assert got.path == "/cgi-bin/webhook/send"
    assert got.query == {"key": WECOM_KEY}
    assert got.body == {
        "msgtype": "text",
        "text": {"content": "[zhixing] 风控拒单\n\n600000.SH 价格超出笼子"},
    }


async def test_dingtalk_signs_timestamp_and_secret_in_the_query(robots: Robots) -> None:
    url = Secret(f"{robots.base}/robot/send?access_token={DING_TOKEN}")
    notifier = DingTalkNotifier(url, clock=SimClock(NOW_NS), signing_secret=Secret(DING_SECRET))
    await notifier.send(MESSAGE)
    (got,) = robots.requests
    assert got.query["access_token"] == DING_TOKEN
    assert got.query["timestamp"] == "1727830800123"  # milliseconds, from the injected clock
    # the server-side check, written from the vendor's description (not from the code under test)
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"1727830800123\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert got.query["sign"] == expected  # aiohttp has URL-decoded it: '+', '/' and '=' survived
    assert got.body == {
        "msgtype": "text",
        "text": {"content": "[zhixing] 风控拒单\n\n600000.SH 价格超出笼子"},
    }


async def test_dingtalk_without_signing_sends_no_timestamp(robots: Robots) -> None:
    url = Secret(f"{robots.base}/robot/send?access_token={DING_TOKEN}")
    await DingTalkNotifier(url, clock=SimClock(NOW_NS)).send(MESSAGE)
    assert robots.requests[0].query == {"access_token": DING_TOKEN}


async def test_feishu_signs_in_the_body(robots: Robots) -> None:
    url = Secret(f"{robots.base}/open-apis/bot/v2/hook/{FEISHU_TOKEN}")
    notifier = FeishuNotifier(url, clock=SimClock(NOW_NS), signing_secret=Secret(FEISHU_SECRET))
    await notifier.send(MESSAGE)
    (got,) = robots.requests
    assert got.path == f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}"
    expected = base64.b64encode(
        hmac.new(f"1727830800\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert got.body == {
        "timestamp": "1727830800",
        "sign": expected,
        "msg_type": "text",
        "content": {"text": "[zhixing] 风控拒单\n\n600000.SH 价格超出笼子"},
    }


async def test_vendor_error_answer_is_a_notify_error_naming_only_the_host(robots: Robots) -> None:
    url = Secret(f"{robots.base}/cgi-bin/webhook/send?key={WECOM_KEY}")
    robots.answers.append((200, {"errcode": 93000, "errmsg": f"invalid webhook url, key={WECOM_KEY}"}))
    with pytest.raises(NotifyError, match="errcode 93000") as caught:
        await WeComNotifier(url, clock=SimClock(NOW_NS)).send(MESSAGE)
    assert WECOM_KEY not in str(caught.value)


async def test_feishu_error_code_and_http_error(robots: Robots) -> None:
    url = Secret(f"{robots.base}/open-apis/bot/v2/hook/{FEISHU_TOKEN}")
    notifier = FeishuNotifier(url, clock=SimClock(NOW_NS))
    robots.answers.append(
        (200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
    )
    with pytest.raises(NotifyError, match="code 19021"):
        await notifier.send(MESSAGE)
    robots.answers.append((500, {}))
    with pytest.raises(NotifyError, match="HTTP 500"):
        await notifier.send(MESSAGE)


async def test_unreachable_robot_error_hides_the_url() -> None:
    url = Secret(f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key={WECOM_KEY}")
    with pytest.raises(NotifyError, match=r"wecom robot at 127\.0\.0\.1") as caught:
        await WeComNotifier(url, clock=SimClock(NOW_NS), timeout_s=2.0).send(MESSAGE)
    assert WECOM_KEY not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_dispatcher_burst_reaches_the_robot_as_one_digest(robots: Robots) -> None:
    clock = SimClock(NOW_NS)
    url = Secret(f"{robots.base}/robot/send?access_token={DING_TOKEN}")
    dispatcher = NotificationDispatcher(
        [DingTalkNotifier(url, clock=clock)], clock, digest_window_ns=60 * NS_PER_SECOND, max_retries=0
    )
    dispatcher.start()
    dispatcher.post(MESSAGE)
    await until(lambda: dispatcher.stats.delivered == 1)
    for i in range(200):
        dispatcher.post(Message(kind=MessageKind.RISK, subject=f"denied {i}", body="rate cap"))
    await until(lambda: clock.next_timer_ns() is not None)  # the digest window is armed
    clock.step()
    await until(lambda: dispatcher.stats.delivered == 2)
    assert len(robots.requests) == 2
    assert robots.requests[1].body["text"]["content"].startswith("[zhixing] 200 notifications: 200 risk")
    await dispatcher.close()


def test_truncate_keeps_whole_utf8_characters() -> None:
    text = "成交" * 2000
    cut = truncate_utf8(text, 2048)
    assert len(cut.encode()) <= 2048
    assert cut.endswith("…(truncated)")
    assert truncate_utf8("short", 2048) == "short"


def test_sign_helpers_match_the_vendor_examples() -> None:
    # recomputed independently: the formulas of the two vendors differ in key and message
    assert (
        dingtalk_sign("s", 1) == base64.b64encode(hmac.new(b"s", b"1\ns", hashlib.sha256).digest()).decode()
    )
    assert feishu_sign("s", 1) == base64.b64encode(hmac.new(b"1\ns", b"", hashlib.sha256).digest()).decode()


def test_repr_hides_the_url_and_key() -> None:
    notifier = WeComNotifier(
        Secret(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"), clock=SimClock(0)
    )
    assert WECOM_KEY not in repr(notifier)
    assert "qyapi.weixin.qq.com" in repr(notifier)
