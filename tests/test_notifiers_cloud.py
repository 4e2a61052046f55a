"""The cloud notifiers against stand-ins that check requests as the real services do, and
their signatures against the worked examples the providers publish."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from alerts.notifiers import aliyun, tencent
from alerts.notifiers.aliyun import AliyunNotifier
from alerts.notifiers.base import Notifier
from alerts.notifiers.cloud import build
from alerts.notifiers.robots import DingTalkNotifier, dingtalk_sign
from alerts.notifiers.tencent import PARAM_ORDER, TencentNotifier
from alerts.notifiers.twilio import (
    TwilioCallbackError,
    TwilioStatus,
    parse_inbound,
    parse_status_callback,
    twilio_signature,
    verify_twilio_signature,
)
from alerts.notifiers.webhook import body_signature
from coldchain.config.notify import MESSAGE_KINDS, GsmModem
from coldchain.secrets import SecretError
from coldchain.sms.types import SendError, Sms
from tests import smsfakes
from tests.smsfakes import (
    AliyunFake,
    DingTalkFake,
    Fake,
    SmsCloud,
    TencentFake,
    TwilioFake,
    WebhookFake,
    WeComFake,
    running,
)
from tests.smsfakes import aliyun as aliyun_stand_in
from tests.smsfakes import tencent as tencent_stand_in
from tests.smsfakes.twilio import form_of

PARAMS = {
    "site": "城区仓",
    "room": "冷库2",
    "value": "9.1°C",
    "limit": "8°C",
    "since": "10:42",
    "link": "https://hub.example/a/17",
}
ALARM = Sms(
    to="+8613800138000",
    text="城区仓 冷库2: 9.1°C, above 8°C since 10:42 https://hub.example/a/17",
    kind="alarm",
    ref="n-17",
    params=PARAMS,
)
# The stand-ins' fixtures (tests/conftest.py, owned elsewhere, does not list them yet).
aliyun_fake = smsfakes.aliyun_fake
tencent_fake = smsfakes.tencent_fake
twilio_fake = smsfakes.twilio_fake
dingtalk_fake = smsfakes.dingtalk_fake
wecom_fake = smsfakes.wecom_fake
webhook_fake = smsfakes.webhook_fake
sms_cloud = smsfakes.sms_cloud

PROVIDERS = ("aliyun", "tencent", "twilio", "dingtalk", "wecom", "webhook")


def stand_in(request: pytest.FixtureRequest, provider: str) -> Any:
    """The running stand-in of ``provider`` (only that one is started)."""
    return request.getfixturevalue(f"{provider}_fake")


# -- known answers ---------------------------------------------------------------------

ALIYUN_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF"
    "%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF"
    "%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
    "%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)


def test_aliyun_signature_matches_the_published_sms_example() -> None:
    # Alibaba Cloud SMS "signature method" page: AccessKeyId testId, secret testSecret.
    assert aliyun.string_to_sign(ALIYUN_DOC_PARAMS) == ALIYUN_DOC_STRING_TO_SIGN
    assert aliyun.signature(ALIYUN_DOC_PARAMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_stand_in.expected_signature(ALIYUN_DOC_PARAMS, "testSecret") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4=",
        ALIYUN_DOC_STRING_TO_SIGN,
    )


def test_aliyun_percent_encoding_follows_rfc3986() -> None:
    assert aliyun.percent_encode("a b*c~d/e+f") == "a%20b%2Ac~d%2Fe%2Bf"
    assert aliyun.percent_encode("冷") == "%E5%86%B7"


def test_aliyun_numbers() -> None:
    assert aliyun.aliyun_number("+8613800138000") == "13800138000"
    assert aliyun.aliyun_number("+85261234567") == "85261234567"
    with pytest.raises(ValueError, match=r"'13800138000' is not an international number"):
        aliyun.aliyun_number("13800138000")


TENCENT_DOC_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)


def test_tencent_signature_matches_the_published_example() -> None:
    # Tencent Cloud API 3.0 "Signature v3" worked example (CVM DescribeInstances).
    headers = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}
    signed = ("content-type", "host")
    auth = tencent.authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        timestamp=1551113065,
        service="cvm",
        headers=headers,
        signed=signed,
        payload=TENCENT_DOC_PAYLOAD,
    )
    signature = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    assert auth == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        f"tc3_request, SignedHeaders=content-type;host, Signature={signature}"
    )
    canonical = tencent.canonical_request(headers, signed, TENCENT_DOC_PAYLOAD)
    assert canonical.endswith("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    assert (
        tencent_stand_in.expected_signature(
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            date="2019-02-25",
            service="cvm",
            timestamp="1551113065",
            canonical=canonical,
        )
        == signature
    )


TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize(
    ("caller", "signature"),
    [
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),  # Twilio's docs, older edition
        ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),  # Twilio's docs, current edition
    ],
)
def test_twilio_signature_matches_the_published_example(caller: str, signature: str) -> None:
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": caller,
        "Digits": "1234",
        "From": caller,
        "To": "+18005551212",
    }
    assert twilio_signature(TWILIO_URL, form, "12345") == signature
    assert verify_twilio_signature(TWILIO_URL, form, signature, "12345")
    assert not verify_twilio_signature(TWILIO_URL, form | {"Digits": "9999"}, signature, "12345")
    assert not verify_twilio_signature(TWILIO_URL + "&x=1", form, signature, "12345")
    assert not verify_twilio_signature(TWILIO_URL, form, signature, "54321")


def test_dingtalk_sign_matches_an_independent_implementation() -> None:
    # DingTalk publishes the recipe, not a vector; this one is from the `dingding` Rust crate.
    from urllib.parse import quote_plus

    assert quote_plus(dingtalk_sign(1700000000000, "secret")) == (
        "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
    )


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    assert body_signature(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


# -- sending ---------------------------------------------------------------------------


async def test_aliyun_sends_the_template_and_the_stand_in_records_it(
    aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    notifier = build(aliyun_fake.settings(tmp_path))
    try:
        delivery = await notifier.send(ALARM)
        intl = await notifier.send(Sms("+85261234567", "", "resolved", "n-18", {"room": "冷库2"}))
    finally:
        await notifier.aclose()
    assert (delivery.notifier, delivery.status) == ("aliyun-test", "accepted")
    assert notifier.texts_phones
    first, second = aliyun_fake.records
    assert first == {
        "to": "13800138000",
        "sign_name": "城区物流",
        "template": aliyun_fake.templates["alarm"],
        "params": PARAMS,
        "ref": "n-17",
        "provider_ref": delivery.provider_ref,
    }
    assert (second["to"], second["template"]) == ("85261234567", aliyun_fake.templates["resolved"])
    assert intl.provider_ref == second["provider_ref"]


async def test_tencent_sends_the_parameters_in_the_kinds_order(
    tencent_fake: TencentFake, tmp_path: Path
) -> None:
    notifier = build(tencent_fake.settings(tmp_path))
    try:
        delivery = await notifier.send(ALARM)
    finally:
        await notifier.aclose()
    assert delivery.status == "accepted"
    assert tencent_fake.records == [
        {
            "to": "+8613800138000",
            "sign_name": "城区物流",
            "template": tencent_fake.templates["alarm"],
            "params": ["城区仓", "冷库2", "9.1°C", "8°C", "10:42", "https://hub.example/a/17"],
            "ref": "n-17",
            "provider_ref": delivery.provider_ref,
            "app_id": tencent_fake.sdk_app_id,
        }
    ]


async def test_twilio_sends_the_text(twilio_fake: TwilioFake, tmp_path: Path) -> None:
    callback = "https://hub.example/twilio/status"
    notifier = build(twilio_fake.settings(tmp_path), status_callback=callback)
    via_service = build(
        twilio_fake.settings(
            tmp_path,
            id="twilio-mg",
            from_number=None,
            messaging_service_sid=twilio_fake.messaging_service_sid,
        )
    )
    try:
        delivery = await notifier.send(ALARM)
        await via_service.send(ALARM)
    finally:
        await notifier.aclose()
        await via_service.aclose()
    assert delivery.provider_ref is not None
    assert delivery.provider_ref.startswith("SM")
    assert delivery.parts == 1
    first, second = twilio_fake.records
    assert first == {
        "to": "+8613800138000",
        "from": twilio_fake.number,
        "messaging_service_sid": None,
        "text": ALARM.text,
        "status_callback": callback,
        "provider_ref": delivery.provider_ref,
    }
    assert (second["from"], second["messaging_service_sid"]) == (
        None,
        twilio_fake.messaging_service_sid,
    )


@pytest.mark.parametrize("signed", [True, False])
async def test_robots_and_webhook_post_the_text(tmp_path: Path, signed: bool) -> None:
    dingtalk, wecom, webhook = DingTalkFake(signed=signed), WeComFake(), WebhookFake(signed=signed)
    with running(dingtalk, wecom, webhook):
        notifiers = [
            build(dingtalk.settings(tmp_path)),
            build(wecom.settings(tmp_path)),
            build(webhook.settings(tmp_path)),
        ]
        for notifier in notifiers:
            assert not notifier.texts_phones
            delivery = await notifier.send(ALARM)
            assert delivery.status == "accepted"
            await notifier.aclose()
    assert dingtalk.records == wecom.records == [{"text": ALARM.text, "msgtype": "text"}]
    assert webhook.records == [
        {
            "ref": "n-17",
            "kind": "alarm",
            "to": "+8613800138000",
            "text": ALARM.text,
            "params": PARAMS,
        }
    ]


# -- refusals --------------------------------------------------------------------------

WRONG = {
    "aliyun": ({"secret": "not-the-secret"}, "SignatureDoesNotMatch: Specified signature"),
    "tencent": ({"secret": "not-the-secret"}, "AuthFailure.SignatureFailure"),
    "twilio": ({"secret": "0" * 32}, "(HTTP 401): 20003: Authenticate"),
    "dingtalk": ({"secret": "SECnot"}, "errcode 310000: sign not match"),
    "wecom": ({"key": "not-the-key"}, "errcode 93000: invalid webhook url"),
    "webhook": ({"secret": "not-the-secret"}, "HTTP 401 from 127.0.0.1"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_wrong_secret_is_refused_for_good(
    request: pytest.FixtureRequest, tmp_path: Path, provider: str
) -> None:
    fake = stand_in(request, provider)
    overrides, message = WRONG[provider]
    notifier = build(fake.settings(tmp_path, **overrides))
    with pytest.raises(SendError) as caught:
        await notifier.send(ALARM)
    await notifier.aclose()
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{provider}-test: ")
    assert not caught.value.retryable
    assert fake.records == []


THROTTLED = {
    "aliyun": "isv.BUSINESS_LIMIT_CONTROL",
    "tencent": "RequestLimitExceeded",
    "twilio": "(HTTP 429): 20429",
    "dingtalk": "errcode 130101",
    "wecom": "errcode 45009",
    "webhook": "HTTP 429",
}
FAILING = {
    "aliyun": "(HTTP 503): ServiceUnavailable",
    "tencent": "HTTP 502 from 127.0.0.1",
    "twilio": "(HTTP 503): 20503",
    "dingtalk": "HTTP 502 from 127.0.0.1",
    "wecom": "HTTP 502 from 127.0.0.1",
    "webhook": "HTTP 503 from 127.0.0.1",
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("how", ["throttle", "error"])
async def test_throttling_and_server_errors_are_worth_retrying(
    request: pytest.FixtureRequest, tmp_path: Path, provider: str, how: str
) -> None:
    fake = stand_in(request, provider)
    fake.fail_next(1, how)
    notifier = build(fake.settings(tmp_path))
    try:
        with pytest.raises(SendError) as caught:
            await notifier.send(ALARM)
        assert (THROTTLED if how == "throttle" else FAILING)[provider] in str(caught.value)
        assert caught.value.retryable
        assert (await notifier.send(ALARM)).status == "accepted"  # the retry goes through
    finally:
        await notifier.aclose()
    assert (fake.calls, len(fake.records)) == (2, 1)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_timeout_is_worth_retrying(
    request: pytest.FixtureRequest, tmp_path: Path, provider: str
) -> None:
    fake = stand_in(request, provider)
    fake.fail_next(1, "hang")
    notifier = build(fake.settings(tmp_path, timeout="200ms"))
    try:
        with pytest.raises(SendError) as caught:
            await notifier.send(ALARM)
    finally:
        await notifier.aclose()
        fake.release()
    assert str(caught.value) == f"{provider}-test: no answer from 127.0.0.1 within 0.2s"
    assert caught.value.retryable


async def test_an_unreachable_endpoint_is_worth_retrying(tmp_path: Path) -> None:
    fake = AliyunFake()  # never started: its settings name a port nobody listens on
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        fake.port = closed.getsockname()[1]
        notifier = build(fake.settings(tmp_path))
        with pytest.raises(SendError) as caught:
            await notifier.send(ALARM)
        await notifier.aclose()
    assert str(caught.value).startswith("aliyun-test: cannot reach 127.0.0.1: ")
    assert caught.value.retryable


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_a_kind_without_a_template_is_a_clear_error(
    request: pytest.FixtureRequest, tmp_path: Path, provider: str
) -> None:
    fake = stand_in(request, provider)
    templates = {"alarm": fake.templates["alarm"]}
    notifier = build(fake.settings(tmp_path, templates=templates))
    reminder = Sms("+8613800138000", "still open", "reminder", "n-20", PARAMS)
    with pytest.raises(SendError) as caught:
        await notifier.send(reminder)
    await notifier.aclose()
    name = "Aliyun template" if provider == "aliyun" else "Tencent template"
    assert str(caught.value) == (
        f"{provider}-test: no {name} for message kind 'reminder': add templates.reminder "
        f"(the approved {'template code' if provider == 'aliyun' else 'TemplateId'}) "
        f"to notifier {provider}-test"
    )
    assert not caught.value.retryable
    assert fake.calls == 0


async def test_tencent_refuses_a_message_lacking_a_template_parameter(
    tencent_fake: TencentFake, tmp_path: Path
) -> None:
    notifier = build(tencent_fake.settings(tmp_path))
    lacking = Sms("+8613800138000", "", "alarm", "n-21", {"site": "城区仓", "room": "冷库2"})
    with pytest.raises(SendError, match=r"lacks template parameters value, limit, since, link; "):
        await notifier.send(lacking)
    await notifier.aclose()
    assert tencent_fake.calls == 0


def test_every_message_kind_has_a_tencent_parameter_order() -> None:
    assert set(PARAM_ORDER) == set(MESSAGE_KINDS)


async def test_bad_numbers_are_refused_for_good(sms_cloud: SmsCloud, tmp_path: Path) -> None:
    bad = Sms("13800138000", "no country code", "alarm", "n-22", PARAMS)
    for fake, where in (
        (sms_cloud.aliyun, "is not an international number"),
        (sms_cloud.tencent, "is not an international number"),
        (sms_cloud.twilio, "(HTTP 400): 21211: Invalid 'To' Phone Number: 13800138000"),
    ):
        notifier = build(fake.settings(tmp_path))
        with pytest.raises(SendError) as caught:
            await notifier.send(bad)
        await notifier.aclose()
        assert where in str(caught.value)
        assert not caught.value.retryable
    assert sms_cloud.twilio.rejections == [
        {"code": "21211", "message": "Invalid 'To' Phone Number: 13800138000"}
    ]


# -- what the stand-ins check beyond the signature -------------------------------------


async def test_aliyun_stand_in_refuses_a_reused_nonce_and_a_stale_timestamp(
    aliyun_fake: AliyunFake,
) -> None:
    def notifier(**kw: Any) -> AliyunNotifier:
        return AliyunNotifier(
            id="aliyun-test",
            access_key_id=aliyun_fake.access_key_id,
            access_key_secret=SecretStr(aliyun_fake.secret),
            sign_name=aliyun_fake.sign_name,
            templates=aliyun_fake.templates,
            endpoint=aliyun_fake.url,
            **kw,
        )

    same_nonce = notifier(nonce=lambda: "0b8d1f0e-5c4e-4d7e-9a51-3c2b1a0f9e8d")
    await same_nonce.send(ALARM)
    with pytest.raises(SendError, match=r"SignatureNonceUsed: Specified signature nonce"):
        await same_nonce.send(ALARM)
    stale = notifier(clock=lambda: time.time() - 3600)
    with pytest.raises(SendError, match=r"InvalidTimeStamp.Expired") as caught:
        await stale.send(ALARM)
    assert not caught.value.retryable
    await same_nonce.aclose()
    await stale.aclose()
    assert len(aliyun_fake.records) == 1


async def test_aliyun_stand_in_refuses_an_unapproved_sign_name(
    aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    notifier = build(aliyun_fake.settings(tmp_path, sign_name="别的签名"))
    with pytest.raises(SendError, match=r"\(HTTP 200\): isv.SMS_SIGNATURE_ILLEGAL: "):
        await notifier.send(ALARM)
    await notifier.aclose()


async def test_tencent_stand_in_refuses_a_skewed_clock(tencent_fake: TencentFake) -> None:
    notifier = TencentNotifier(
        id="tencent-test",
        secret_id=tencent_fake.secret_id,
        secret_key=SecretStr(tencent_fake.secret_key),
        sdk_app_id=tencent_fake.sdk_app_id,
        sign_name=tencent_fake.sign_name,
        templates=tencent_fake.templates,
        endpoint=tencent_fake.url,
        clock=lambda: time.time() - 600,
    )
    with pytest.raises(SendError, match=r"AuthFailure.SignatureExpire: Signature expired"):
        await notifier.send(ALARM)
    await notifier.aclose()


async def test_dingtalk_stand_in_refuses_a_timestamp_an_hour_off(
    dingtalk_fake: DingTalkFake, tmp_path: Path
) -> None:
    assert dingtalk_fake.secret is not None
    notifier = DingTalkNotifier(
        id="dingtalk-test",
        url=dingtalk_fake.settings(tmp_path).url,
        secret=SecretStr(dingtalk_fake.secret),
        clock=lambda: time.time() + 3700,
    )
    with pytest.raises(SendError, match=r"errcode 310000: invalid timestamp"):
        await notifier.send(ALARM)
    await notifier.aclose()


async def test_wecom_stand_in_refuses_an_oversized_text(
    wecom_fake: WeComFake, tmp_path: Path
) -> None:
    notifier = build(wecom_fake.settings(tmp_path))
    with pytest.raises(SendError, match=r"errcode 40058: content exceed max length 2048"):
        await notifier.send(Sms("", "冷" * 700, "grouped", "n-23"))
    await notifier.aclose()


async def test_stand_ins_refuse_tampered_and_incomplete_requests(sms_cloud: SmsCloud) -> None:
    cloud = sms_cloud
    ali = AliyunNotifier(
        id="aliyun-test",
        access_key_id=cloud.aliyun.access_key_id,
        access_key_secret=SecretStr(cloud.aliyun.secret),
        sign_name=cloud.aliyun.sign_name,
        templates=cloud.aliyun.templates,
    )
    tc = TencentNotifier(
        id="tencent-test",
        secret_id=cloud.tencent.secret_id,
        secret_key=SecretStr(cloud.tencent.secret_key),
        sdk_app_id=cloud.tencent.sdk_app_id,
        sign_name=cloud.tencent.sign_name,
        templates=cloud.tencent.templates,
        endpoint=cloud.tencent.url,
    )
    await ali.aclose()
    await tc.aclose()

    def aliyun_query(params: dict[str, str], signed: dict[str, str]) -> str:
        sig = aliyun.signature(signed, cloud.aliyun.secret)
        return f"{cloud.aliyun.url}/?Signature={aliyun.percent_encode(sig)}&" + (
            aliyun.canonical_query(params)
        )

    params = ali.params(ALARM)
    retargeted = params | {"PhoneNumbers": "13900139000"}  # changed after signing
    unsigned_name = {k: v for k, v in ali.params(ALARM).items() if k != "SignName"}
    body = json.dumps(tc.body(ALARM)).encode()
    twilio_auth = (cloud.twilio.account_sid, cloud.twilio.auth_token)
    twilio_url = f"{cloud.twilio.url}/2010-04-01/Accounts/{cloud.twilio.account_sid}/Messages.json"
    async with httpx.AsyncClient() as client:
        answers = [
            await client.get(aliyun_query(retargeted, params)),
            await client.get(aliyun_query(unsigned_name, unsigned_name)),
            await client.post(cloud.tencent.url, content=body + b" ", headers=tc.headers(body)),
            await client.post(twilio_url, data={"To": "+8613800138000"}, auth=twilio_auth),
            await client.post(
                f"{cloud.webhook.url}/hook",
                content=b"{}",
                headers={"X-Coldchain-Signature": body_signature(b"[]", str(cloud.webhook.secret))},
            ),
        ]
    assert [a.status_code for a in answers] == [400, 400, 200, 400, 401]
    assert answers[0].json()["Code"] == "SignatureDoesNotMatch"
    assert answers[1].json()["Code"] == "MissingSignName"
    assert answers[2].json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert answers[3].json() == {
        "code": 21602,
        "message": "Message body is required.",
        "more_info": "https://www.twilio.com/docs/errors/21602",
        "status": 400,
    }
    assert all(fake.records == [] for fake in cloud.all())


# -- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["aliyun", "tencent", "twilio", "dingtalk", "webhook"])
async def test_secrets_stay_out_of_logs_errors_and_reprs(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = stand_in(request, provider)
    settings = fake.settings(tmp_path)
    secret_file = settings.model_dump()[_SECRET_FIELD[provider]].removeprefix("file:")
    secret = Path(secret_file).read_text()  # noqa: ASYNC240 - a test's own tmp file
    forms = {secret}
    if isinstance(fake, TwilioFake):  # the basic auth header carries it in base64
        forms.add(base64.b64encode(f"{fake.account_sid}:{secret}".encode()).decode())
    notifier = build(settings)
    errors: list[SendError] = []
    for how in ("error", "throttle"):
        fake.fail_next(1, how)
        with pytest.raises(SendError) as caught:
            await notifier.send(ALARM)
        errors.append(caught.value)
    await notifier.send(ALARM)
    await notifier.aclose()
    fake.stop()
    with pytest.raises(SendError) as caught:  # nobody listens any more
        await (unreachable := build(settings)).send(ALARM)
    await unreachable.aclose()
    errors.append(caught.value)
    texts = [caplog.text, repr(notifier), repr(settings), str(vars(notifier))]
    texts += ["".join(traceback.format_exception(e)) for e in errors]
    assert caplog.records, "the notifier and httpx log at DEBUG; the check must see them"
    for text in texts:
        for form in forms:
            assert form not in text


_SECRET_FIELD = {
    "aliyun": "access_key_secret",
    "tencent": "secret_key",
    "twilio": "auth_token",
    "dingtalk": "secret",
    "webhook": "secret",
}


async def test_a_missing_secret_stops_the_build_naming_the_notifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = AliyunFake()
    monkeypatch.delenv("COLDCHAIN_TEST_NO_SUCH_SECRET", raising=False)
    settings = fake.settings(tmp_path, access_key_secret="env:COLDCHAIN_TEST_NO_SUCH_SECRET")
    with pytest.raises(SecretError) as caught:
        build(settings)
    assert str(caught.value) == (
        "notifier aliyun-test: access_key_secret: environment variable "
        "COLDCHAIN_TEST_NO_SUCH_SECRET is not set (secret env:COLDCHAIN_TEST_NO_SUCH_SECRET)"
    )
    gone = tmp_path / "gone"
    with pytest.raises(SecretError, match=r"^notifier twilio-test: auth_token: cannot read "):
        build(TwilioFake().settings(tmp_path, auth_token=f"file:{gone}"))


def test_other_notifier_types_are_not_built_here() -> None:
    with pytest.raises(ValueError, match=r"notifier modem: type 'gsm' is not a cloud notifier"):
        build(GsmModem(id="modem", port="/dev/ttyUSB2"))


async def test_an_injected_client_is_shared_and_left_open(
    wecom_fake: WeComFake, tmp_path: Path
) -> None:
    async with httpx.AsyncClient() as client:
        notifier: Notifier = build(wecom_fake.settings(tmp_path), client=client)
        await notifier.send(ALARM)
        await notifier.aclose()
        assert not client.is_closed
    assert len(wecom_fake.records) == 1


# -- Twilio's callbacks ----------------------------------------------------------------


class HubSide(Fake):
    """What the hub will do with Twilio's callbacks: check the signature, parse, answer."""

    name = "hub-side"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/twilio/status", self.status, methods=["POST"])
        app.add_api_route("/twilio/inbound", self.inbound, methods=["POST"])

    async def verified(self, request: Request) -> dict[str, str] | None:
        form = await form_of(request)
        signature = request.headers.get("x-twilio-signature", "")
        return (
            form if verify_twilio_signature(str(request.url), form, signature, self.token) else None
        )

    async def status(self, request: Request) -> Response:
        form = await self.verified(request)
        if form is None:
            return Response(status_code=403)
        self.records.append({"status": parse_status_callback(form)})
        return Response(status_code=204)

    async def inbound(self, request: Request) -> Response:
        form = await self.verified(request)
        if form is None:
            return Response(status_code=403)
        self.records.append({"inbound": parse_inbound(form)})
        return Response("<Response/>", media_type="text/xml")


async def test_twilio_callbacks_verify_and_parse(twilio_fake: TwilioFake, tmp_path: Path) -> None:
    hub, stranger = HubSide(twilio_fake.auth_token), HubSide("some-other-token")
    with running(hub, stranger):
        callback = f"{hub.url}/twilio/status?notifier=twilio-test"
        notifier = build(twilio_fake.settings(tmp_path), status_callback=callback)
        sid = (await notifier.send(ALARM)).provider_ref
        await notifier.aclose()
        assert sid is not None
        assert await twilio_fake.report(sid, "delivered") == 204
        assert await twilio_fake.report(sid, "undelivered", error_code="30003") == 204
        assert (
            await twilio_fake.inbound(f"{hub.url}/twilio/inbound", "+8613900139000", "ACK 17")
            == 200
        )
        assert await twilio_fake.inbound(f"{stranger.url}/twilio/inbound", "+1", "x") == 403
    assert [r.get("status") for r in hub.records[:2]] == [
        TwilioStatus(sid, "delivered", "delivered"),
        TwilioStatus(sid, "failed", "undelivered", "30003"),
    ]
    inbound = hub.records[2]["inbound"]
    assert (inbound.sender, inbound.text, inbound.to) == (
        "+8613900139000",
        "ACK 17",
        twilio_fake.number,
    )


def test_twilio_callback_parsers() -> None:
    assert (
        parse_status_callback({"MessageSid": "SM1", "MessageStatus": "sent"}).status == "accepted"
    )
    assert (
        parse_status_callback({"MessageSid": "SM1", "MessageStatus": "read"}).status == "delivered"
    )
    with pytest.raises(TwilioCallbackError, match=r"^status callback lacks MessageStatus$"):
        parse_status_callback({"MessageSid": "SM1"})
    with pytest.raises(TwilioCallbackError, match=r"^inbound SMS lacks From$"):
        parse_inbound({"Body": "hi"})
