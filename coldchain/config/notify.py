"""Notifier settings: how the hub (and an agent's GSM modem) reaches people.

A discriminated union on ``type``, :data:`Notifier`: the one list of notifier kinds. Each
settings class says whether its kind texts a phone number (``texts_phones``); the hub builds
each kind through ``alerts.notifiers.factory.BUILDERS`` (one builder per kind, checked
against :data:`NOTIFIER_KINDS` at import). Adding a kind is a settings class here, in the
union, plus its notifier class and builder. Cloud SMS providers in China send only pre-approved
templates, so each names its template code per message kind (see
:data:`MESSAGE_KINDS`); Twilio and the GSM modem send the rendered text. Credentials are
:data:`~coldchain.secrets.SecretRef` values (``env:NAME`` or ``file:/path``), never the
secret itself. ``endpoint`` exists so a private gateway or a test stand-in can be named.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field

from coldchain.config.base import StrictModel
from coldchain.durations import Duration
from coldchain.secrets import SecretRef

ID = r"^[a-z0-9][a-z0-9_-]*$"

MESSAGE_KINDS = ("alarm", "warning", "resolved", "grouped", "reminder", "test")
"""What a message says; cloud providers map each kind to an approved template."""

TemplateMap = Annotated[
    dict[Literal["alarm", "warning", "resolved", "grouped", "reminder", "test"], str],
    Field(description="message kind -> the provider's approved template code"),
]


class _Notifier(StrictModel):
    texts_phones: ClassVar[bool] = True
    """This kind sends to a contact's phone number (else it posts to a group or a URL)."""

    id: str = Field(description="notifier id, named by escalation levels", pattern=ID)
    timeout: Duration = Field(10.0, description="how long one request may take")


class AliyunSms(_Notifier):
    """Alibaba Cloud SMS (dysmsapi SendSms, RPC signature HMAC-SHA1)."""

    type: Literal["aliyun"] = "aliyun"
    access_key_id: str = Field(description="AccessKey ID (not secret)")
    access_key_secret: SecretRef = Field(description="AccessKey secret")
    sign_name: str = Field(description="approved signature (签名), e.g. 城区物流")
    templates: TemplateMap
    region: str = Field("cn-hangzhou", description="RegionId")
    endpoint: str = Field("https://dysmsapi.aliyuncs.com", description="API endpoint")


class TencentSms(_Notifier):
    """Tencent Cloud SMS (SendSms 2021-01-11, TC3-HMAC-SHA256)."""

    type: Literal["tencent"] = "tencent"
    secret_id: str = Field(description="SecretId (not secret)")
    secret_key: SecretRef = Field(description="SecretKey")
    sdk_app_id: str = Field(description="SmsSdkAppId")
    sign_name: str = Field(description="approved signature (签名)")
    templates: TemplateMap
    region: str = Field("ap-guangzhou", description="region")
    endpoint: str = Field("https://sms.tencentcloudapi.com", description="API endpoint")


class TwilioSms(_Notifier):
    """Twilio Programmable Messaging (basic auth, form fields)."""

    type: Literal["twilio"] = "twilio"
    account_sid: str = Field(description="Account SID, AC...", pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretRef = Field(description="auth token")
    from_number: str | None = Field(None, description="sender, E.164", pattern=r"^\+\d{6,15}$")
    messaging_service_sid: str | None = Field(None, description="MG... (instead of from_number)")
    endpoint: str = Field("https://api.twilio.com", description="API endpoint")


class GsmModem(_Notifier):
    """A GSM/LTE modem on a serial port, driven by AT commands in PDU mode."""

    type: Literal["gsm"] = "gsm"
    port: str = Field(description="serial device, e.g. /dev/ttyUSB2 or /dev/serial/by-id/...")
    baud: int = Field(115200, description="baud rate", ge=1200, le=921600)
    pin: SecretRef | None = Field(None, description="SIM PIN, when the SIM has one")
    smsc: str | None = Field(
        None, description="SMS centre, E.164; absent: the SIM's", pattern=r"^\+\d{6,15}$"
    )
    delivery_reports: bool = Field(default=True, description="ask the network for delivery reports")


class Webhook(_Notifier):
    """A JSON POST to any URL, signed with HMAC-SHA256 when a secret is given."""

    texts_phones: ClassVar[bool] = False

    type: Literal["webhook"] = "webhook"
    url: str = Field(description="where to POST")
    secret: SecretRef | None = Field(None, description="HMAC-SHA256 key for X-Coldchain-Signature")


class DingTalkRobot(_Notifier):
    """A DingTalk group robot (custom robot webhook, signed)."""

    texts_phones: ClassVar[bool] = False

    type: Literal["dingtalk"] = "dingtalk"
    url: str = Field(description="webhook URL with access_token")
    secret: SecretRef | None = Field(None, description="the robot's SEC... signing secret")


class WeComRobot(_Notifier):
    """A WeCom (企业微信) group robot webhook."""

    texts_phones: ClassVar[bool] = False

    type: Literal["wecom"] = "wecom"
    url: str = Field(description="webhook URL with key")


class FileNotifier(_Notifier):
    """Writes each message as a JSON line to a file instead of sending it: for the demo, a
    dry run, or commissioning rules before an SMS contract exists."""

    type: Literal["file"] = "file"
    path: str = Field(description="JSON-lines file, relative to the hub's data_dir")


Notifier = Annotated[
    AliyunSms
    | TencentSms
    | TwilioSms
    | GsmModem
    | Webhook
    | DingTalkRobot
    | WeComRobot
    | FileNotifier,
    Field(discriminator="type"),
]
NOTIFIER_KINDS: dict[str, type[_Notifier]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(Notifier)[0])
}
"""Notifier kind (its ``type``) -> settings class, in the union's order."""
SMS_TYPES = tuple(kind for kind, cls in NOTIFIER_KINDS.items() if cls.texts_phones)
"""Notifier types that text a phone number; the others post to a group or a URL."""
