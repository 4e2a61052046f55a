"""Alert settings in the site config: escalation policies, suppression, notifiers, links,
storm control, and the agents' edge fallback."""

from __future__ import annotations

from pydantic import Field

from coldchain.alerting.rules.base import ID
from coldchain.config.base import StrictModel
from coldchain.config.notify import GsmModem, Notifier
from coldchain.durations import Duration
from coldchain.secrets import SecretRef


class Level(StrictModel):
    """One step of an escalation: whom to tell, and when."""

    after: Duration = Field(
        0.0, description="time after the alert fires (not after the previous level)"
    )
    contacts: list[str] = Field(default_factory=list, description="contact ids to text")
    channels: list[str] = Field(
        default_factory=list, description="group notifier ids (webhook, DingTalk, WeCom)"
    )


class Policy(StrictModel):
    """Who is told, in what order, until someone acknowledges."""

    id: str = Field(description="policy id, named by rules", pattern=ID)
    levels: list[Level] = Field(min_length=1, description="escalation levels, in order")
    repeat: Duration | None = Field(
        None, description="re-notify every level reached this often until acknowledged"
    )
    notify_resolved: bool = Field(
        default=True, description="tell those already told when the alert resolves"
    )
    waive_min_recipients: str | None = Field(
        None,
        description="why a temperature alarm may reach fewer than 3 people (GSP asks for 3)",
        min_length=10,
    )


class Suppression(StrictModel):
    """When temperature rules hold their fire (real controllers' defaults in brackets)."""

    defrost_holdoff: Duration = Field(
        1800.0, description="after a defrost ends (Eliwell dAO, Carel d8)"
    )
    while_door_open: bool = Field(
        default=False, description="hold temperature alarms while a door of the room is open"
    )
    door_holdoff: Duration = Field(300.0, description="after the door closes, when the above")
    power_up_holdoff: Duration = Field(
        900.0, description="after the room's supply returns (Eliwell PAO)"
    )


class EdgeFallback(StrictModel):
    """An agent texting alarms itself when its uplink is down."""

    modem: GsmModem = Field(description="the GSM modem on the gateway's serial port")
    after: Duration = Field(600.0, description="uplink down this long before the agent texts")


class AlertSettings(StrictModel):
    """How alerts reach people."""

    default_rules: bool = Field(
        default=True,
        description="apply the built-in rules per room class (a rule of the same id overrides)",
    )
    default_policy: dict[str, str | None] = Field(
        default_factory=dict,
        description="severity (warning, alarm) -> policy id for rules that name none",
    )
    policies: list[Policy] = Field(default_factory=list, description="escalation policies")
    suppression: Suppression = Field(default_factory=Suppression, description="hold-offs")
    notifiers: list[Notifier] = Field(
        default_factory=list, description="SMS notifiers in failover order, and group channels"
    )
    public_url: str | None = Field(
        None, description="the hub's address as phones reach it, for acknowledge links"
    )
    link_secret: SecretRef | None = Field(
        None, description="key for signed links; absent: generated once in the hub's data dir"
    )
    link_ttl: Duration = Field(7 * 86400.0, description="how long an acknowledge link works")
    linger: Duration = Field(
        0.15, description="wait this long for alerts firing together, then send one message"
    )
    storm_window: Duration = Field(
        120.0,
        description="after storm_burst messages about a site within this, a person "
        "gets the rest as one message at its end",
    )
    storm_burst: int = Field(
        2, description="messages per person and site within storm_window sent at once", ge=1
    )
    max_per_hour: int = Field(
        20, description="messages per recipient per hour; more are folded into one", ge=1
    )
    retries: int = Field(3, description="tries per notifier before failing over", ge=1, le=10)
    reply_ack: bool = Field(
        default=True, description="accept acknowledgement by SMS reply (Twilio, GSM modem)"
    )
