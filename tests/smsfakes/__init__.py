"""Stand-ins for the clouds the notifiers talk to, as real HTTP servers on 127.0.0.1.

The real services cannot run here, so each stand-in checks a request the way its service
does (signature recomputed with the known secret, required fields, formats) and answers in
the service's own shape; see each module for its checks. Every stand-in records what it
accepted and can be told to fail (:meth:`~tests.smsfakes.base.Fake.fail_next`), for retry
and failover tests.

Fixtures: ``aliyun_fake``, ``tencent_fake``, ``twilio_fake``, ``dingtalk_fake``,
``wecom_fake``, ``webhook_fake``, or ``sms_cloud`` for all six. Each stand-in's
``settings(tmp_path, ...)`` gives the config of a notifier pointing at it, the secret in a
``file:`` reference (pass ``secret="..."`` for a wrong one). To use the fixtures in a test
module, bind them there (``aliyun_fake = smsfakes.aliyun_fake``: a plain import trips
ruff's F811 where a test names the fixture), or list them in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

from tests.smsfakes.aliyun import AliyunFake
from tests.smsfakes.base import Fake
from tests.smsfakes.robots import DingTalkFake, WebhookFake, WeComFake
from tests.smsfakes.tencent import TencentFake
from tests.smsfakes.twilio import TwilioFake

__all__ = [
    "AliyunFake",
    "DingTalkFake",
    "Fake",
    "SmsCloud",
    "TencentFake",
    "TwilioFake",
    "WeComFake",
    "WebhookFake",
    "aliyun_fake",
    "dingtalk_fake",
    "running",
    "serving",
    "sms_cloud",
    "tencent_fake",
    "twilio_fake",
    "webhook_fake",
    "wecom_fake",
]


F = TypeVar("F", bound=Fake)


def serving(fake: F) -> Iterator[F]:
    """Start ``fake``, yield it, tell it to stop (the body of every stand-in fixture).

    Teardown does not wait for the server to finish (uvicorn takes 0.1-0.2 s to notice and
    close): it does so in its own thread while the next test runs on another port. A test
    that needs it gone calls :meth:`~tests.smsfakes.base.Fake.stop`."""
    fake.start()
    try:
        yield fake
    finally:
        fake.request_stop()


@pytest.fixture
def aliyun_fake() -> Iterator[AliyunFake]:
    yield from serving(AliyunFake())


@pytest.fixture
def tencent_fake() -> Iterator[TencentFake]:
    yield from serving(TencentFake())


@pytest.fixture
def twilio_fake() -> Iterator[TwilioFake]:
    yield from serving(TwilioFake())


@pytest.fixture
def dingtalk_fake() -> Iterator[DingTalkFake]:
    yield from serving(DingTalkFake())


@pytest.fixture
def wecom_fake() -> Iterator[WeComFake]:
    yield from serving(WeComFake())


@pytest.fixture
def webhook_fake() -> Iterator[WebhookFake]:
    yield from serving(WebhookFake())


@dataclass(frozen=True)
class SmsCloud:
    """All the stand-ins of one test."""

    aliyun: AliyunFake
    tencent: TencentFake
    twilio: TwilioFake
    dingtalk: DingTalkFake
    wecom: WeComFake
    webhook: WebhookFake

    def all(self) -> tuple[Fake, ...]:
        return (self.aliyun, self.tencent, self.twilio, self.dingtalk, self.wecom, self.webhook)


@contextlib.contextmanager
def running(*fakes: Fake) -> Iterator[None]:
    """Serve several stand-ins for a ``with`` block (stopped as :func:`serving` does)."""
    try:
        for fake in fakes:
            fake.start()
        yield
    finally:
        for fake in fakes:
            fake.request_stop()


@pytest.fixture
def sms_cloud() -> Iterator[SmsCloud]:
    """Every stand-in, running."""
    cloud = SmsCloud(
        AliyunFake(), TencentFake(), TwilioFake(), DingTalkFake(), WeComFake(), WebhookFake()
    )
    with running(*cloud.all()):
        yield cloud
