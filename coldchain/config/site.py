"""The site config: sites and their rooms, gateways with their buses and devices.

One YAML file describes a network (a city centre and township cold stores). Every model
forbids unknown keys; every field says what it is; cross-references (profiles, buses, rooms,
unit ids) are checked by :mod:`coldchain.config.checks` after the shapes are valid.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from coldchain import rtu
from coldchain.alerting.rules import Rule
from coldchain.alerting.settings import AlertSettings, EdgeFallback
from coldchain.config.base import StrictModel
from coldchain.config.limits import DEFAULT_LIMITS, Limits, RoomClass
from coldchain.durations import Duration
from coldchain.protocol.limits import AGENT_MAX_BATCH_SIZE, MAX_ID_CHARS
from coldchain.secrets import SecretRef

ID = r"^[a-z0-9][a-z0-9_-]*$"
"""Ids of sites, rooms, gateways, buses, devices and contacts; at most ``MAX_ID_CHARS``
characters, the wire protocol's bound (``coldchain/protocol/limits.py``)."""
"""Ids are lower-case, digits, '-' and '_': they become MQTT topic levels and series names."""


class DefrostSchedule(StrictModel):
    """Defrosts at fixed local times (for rooms whose controller is not read)."""

    at: list[str] = Field(
        min_length=1,
        description="local start times, HH:MM",
        examples=[["02:00", "10:00", "18:00"]],
    )
    duration: Duration = Field(1800.0, description="how long each defrost lasts")

    @field_validator("at")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        for t in value:
            hh, _, mm = t.partition(":")
            if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
                raise ValueError(f"{t!r} is not a time of day; write HH:MM, e.g. '02:00'")
        return value


class Room(StrictModel):
    """A cold room, a store or the sorting hall."""

    id: str = Field(description="room id, unique in its site", pattern=ID, max_length=MAX_ID_CHARS)
    name: str = Field(description="name shown to operators")
    room_class: RoomClass = Field(
        alias="class", description="chilled, frozen, ambient or sorting; sets default limits"
    )
    limits: Limits | None = Field(None, description="overrides the class's default limits")
    area_m2: float | None = Field(
        None, description="floor area (GB 31605: > 100 m² needs >= 2 probes)", gt=0
    )
    defrost: DefrostSchedule | None = Field(
        None, description="scheduled defrosts, where no controller reports its defrost flag"
    )

    @property
    def effective_limits(self) -> Limits:
        return self.limits or DEFAULT_LIMITS[self.room_class]


class Site(StrictModel):
    """A place with rooms: the city logistics centre or a township cold store."""

    id: str = Field(description="site id", pattern=ID, max_length=MAX_ID_CHARS)
    name: str = Field(description="name shown to operators and in SMS")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone for display and reports")
    rooms: list[Room] = Field(min_length=1, description="the rooms of the site")


class RtuBus(StrictModel):
    """An RS-485 line driven by a USB adapter or a HAT on the Pi."""

    type: Literal["rtu"] = "rtu"
    id: str = Field(
        description="bus id, unique on the gateway", pattern=ID, max_length=MAX_ID_CHARS
    )
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baud: int = Field(9600, description="baud rate", ge=1200, le=921600)
    parity: Literal["N", "E", "O"] = Field("N", description="N (none), E (even) or O (odd)")
    stop_bits: Literal[1, 2] = Field(1, description="stop bits")
    timeout: Duration = Field(0.5, description="how long to wait for a reply, e.g. 500ms")
    inter_frame_gap: Duration | None = Field(
        None,
        description="silence between frames; absent: 3.5 characters at the line's "
        "baud, parity and stop bits (1.75 ms above 19200 baud, per the Modbus serial line spec)",
    )

    @property
    def char_time(self) -> float:
        """Seconds one character takes on this line (10 bits on 8N1, 11 on 8E1 or 8N2)."""
        return rtu.char_time(self.baud, self.parity, self.stop_bits)

    @property
    def frame_gap(self) -> float:
        """The silence the master keeps after the last byte on the line before it sends."""
        if self.inter_frame_gap is not None:
            return self.inter_frame_gap
        return rtu.frame_gap(self.baud, self.parity, self.stop_bits)


class TcpBus(StrictModel):
    """A Modbus TCP endpoint: a PLC, or a TCP-to-RTU gateway with unit ids behind it."""

    type: Literal["tcp"] = "tcp"
    id: str = Field(
        description="bus id, unique on the gateway", pattern=ID, max_length=MAX_ID_CHARS
    )
    host: str = Field(description="host name or address")
    port: int = Field(502, description="TCP port", ge=1, le=65535)
    timeout: Duration = Field(1.0, description="how long to wait for a reply")
    max_concurrent: int = Field(
        1, description="requests in flight at once (most PLCs answer one at a time)", ge=1, le=16
    )


class MqttBus(StrictModel):
    """A local MQTT broker the wireless sensors publish to (Zigbee2MQTT, Tasmota, Shelly)."""

    type: Literal["mqtt"] = "mqtt"
    id: str = Field(
        description="bus id, unique on the gateway", pattern=ID, max_length=MAX_ID_CHARS
    )
    host: str = Field("localhost", description="broker host")
    port: int = Field(1883, description="broker port", ge=1, le=65535)
    username: str | None = Field(None, description="broker user")
    password_file: str | None = Field(None, description="file holding the broker password")


Bus = Annotated[RtuBus | TcpBus | MqttBus, Field(discriminator="type")]


class PointOverride(StrictModel):
    """Per-point settings of one installed device."""

    calibration: float = Field(
        0.0,
        description="offset added after decoding (from the calibration certificate); "
        "recorded with every reading",
    )
    enabled: bool = Field(default=True, description="false: do not read this point")


class Device(StrictModel):
    """An installed sensor or controller: which profile, on which bus, at which address."""

    id: str = Field(
        description="device id, unique on the gateway", pattern=ID, max_length=MAX_ID_CHARS
    )
    profile: str = Field(description="device profile id (firmware_configs/profiles/<id>.yaml)")
    bus: str = Field(description="id of the gateway bus it is on")
    room: str = Field(description="id of the room it is in (in the gateway's site)")
    unit_id: int | None = Field(
        None, description="Modbus unit id (1-247); required on RTU and TCP buses", ge=0, le=247
    )
    topic: str | None = Field(
        None, description="MQTT base topic; absent: the profile's default with {name} = id"
    )
    poll_interval: Duration = Field(30.0, description="how often to read, e.g. 30s")
    points: dict[str, PointOverride] = Field(
        default_factory=dict, description="per-point overrides: calibration offset, enabled"
    )
    name: str | None = Field(None, description="label shown to technicians")
    max_registers: int | None = Field(
        None, description="most registers per request, if lower than the profile's", ge=1, le=125
    )


class Gateway(StrictModel):
    """A Raspberry Pi gateway: its buses and the devices on them."""

    id: str = Field(
        description="gateway id; also its MQTT client id", pattern=ID, max_length=MAX_ID_CHARS
    )
    site: str = Field(description="id of the site it stands in")
    buses: list[Bus] = Field(min_length=1, description="RS-485 lines, Modbus TCP endpoints, MQTT")
    devices: list[Device] = Field(default_factory=list, description="devices on those buses")
    fallback: EdgeFallback | None = Field(
        None, description="text alarms through a local GSM modem when the uplink is down"
    )


class Contact(StrictModel):
    """A person alerts reach (named in escalation policies)."""

    id: str = Field(description="contact id", pattern=ID, max_length=MAX_ID_CHARS)
    name: str = Field(description="full name")
    phone: str = Field(
        description="E.164 phone number, e.g. +8613800000000", pattern=r"^\+\d{6,15}$"
    )
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="message language")
    sites: list[str] = Field(
        default_factory=list, description="sites this person covers; empty: all"
    )


class Deadbands(StrictModel):
    """Report on change: a new value is sent when it moved at least this far (or when the
    point has been silent for ``max_silence``). Door, alarm and status points: any change."""

    temperature: float = Field(0.1, description="°C", ge=0)
    humidity: float = Field(0.5, description="%RH", ge=0)
    setpoint: float = Field(0.0, description="°C", ge=0)
    counter: float = Field(0.0, description="counts", ge=0)


def _readable_broker(url: str) -> str:
    broker_address(url)  # the pattern lets through what urlsplit cannot read
    return url


BrokerUrl = Annotated[
    str,
    Field(pattern=r"^mqtts?://[^/:]+(:\d+)?/?$", max_length=300),
    AfterValidator(_readable_broker),
]


class Uplink(StrictModel):
    """How gateways reach the centre's broker."""

    broker: BrokerUrl = Field(
        "mqtt://localhost:1883",
        description="central broker URL: mqtt://host:port, or mqtts://host:port for TLS",
    )
    standby_brokers: list[BrokerUrl] = Field(
        default_factory=list,
        max_length=4,
        description="more central brokers, in order: an agent that loses or cannot reach one "
        "moves to the next (its outbox kept, acks end to end); the hub subscribes to all",
    )
    prefix: str = Field("coldchain", description="topic prefix", pattern=r"^[a-z0-9][a-z0-9_/-]*$")
    ca_file: str | None = Field(None, description="CA bundle for mqtts (default: the system's)")
    username: str | None = Field(None, description="broker user; absent: the gateway id")
    password_file: str | None = Field(None, description="file holding the broker password")
    key_file: str | None = Field(
        None,
        description="file holding the gateway's message key (hex), shared with the hub: "
        "the hub's acks and the gateway's edge notices are authenticated with it",
    )
    client_cert: str | None = Field(
        None,
        description="the gateway's client certificate (PEM), for a broker that demands one "
        "(mutual TLS: coldchain broker config --client-ca); with client_key",
    )
    client_key: str | None = Field(None, description="the private key of client_cert (PEM)")
    protocol: Literal[1, 2] = Field(
        2,
        description="telemetry protocol the agents send: 2, compact (docs/protocol.md); 1 "
        "while the hub is older than 2026-12 (a hub reads both: upgrade it first)",
    )

    @property
    def brokers(self) -> list[str]:
        """``broker`` and the standby brokers, in the order they are tried."""
        return self.brokers_from(self.broker)

    def brokers_from(self, primary: str | None) -> list[str]:
        """:attr:`brokers` with ``primary`` (a ``--broker`` given) first instead of
        ``broker``, each once."""
        return list(dict.fromkeys([primary or self.broker, *self.standby_brokers]))

    @model_validator(mode="after")
    def _client_certificate(self) -> Uplink:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give uplink.client_cert and uplink.client_key together")
        if self.client_cert is not None:
            if not self.broker.startswith("mqtts://"):
                raise ValueError("a client certificate needs a TLS broker (mqtts://)")
            for standby in self.standby_brokers:
                if not standby.startswith("mqtts://"):
                    raise ValueError(
                        "a client certificate needs a TLS broker (mqtts://): the standby "
                        f"broker {standby} is not"
                    )
        return self


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of ``mqtt://host:port`` or ``mqtts://host:port``; ValueError saying
    what is wrong for anything else (a bracket that opens no IPv6 address, a port past
    65535)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r} cannot be read: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts") or not host:
        raise ValueError(f"broker URL {url!r} is not mqtt://host:port or mqtts://host:port")
    tls = parts.scheme == "mqtts"
    return host, port or (8883 if tls else 1883), tls


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AgentSettings(StrictModel):
    """How every gateway's agent polls, buffers and sends (one set for the network)."""

    data_dir: str = Field("/var/lib/coldchain", description="where the outbox lives")
    buffer_max_mb: int = Field(256, description="outbox size bound, MiB", ge=1)
    keep_recent: Duration = Field(
        86400.0, description="when full, every reading this recent is kept"
    )
    thin_interval: Duration = Field(
        1800.0, description="when full, older readings are thinned to one per this per series"
    )
    batch_size: int = Field(
        500, description="readings per telemetry batch", ge=1, le=AGENT_MAX_BATCH_SIZE
    )
    batch_interval: Duration = Field(
        1.0,
        description="the commit window: readings wait in memory at most this long, then go "
        "to the outbox in one transaction (one fsync) and out as batches; a power cut loses at "
        "most the open window, nothing committed",
        gt=0,
    )
    ack_timeout: Duration = Field(30.0, description="resend a batch not acknowledged by then")
    max_in_flight: int = Field(8, description="unacknowledged batches at once", ge=1, le=100)
    health_interval: Duration = Field(60.0, description="how often health is published")
    fill_registers: int = Field(
        8, description="registers read across a hole to save a request", ge=0, le=124
    )
    fill_bits: int = Field(64, description="coils/inputs read across a hole", ge=0, le=1999)
    deadband: Deadbands = Field(default_factory=Deadbands, description="report-on-change")
    max_silence: Duration = Field(60.0, description="send a point at least this often")
    backoff_max: Duration = Field(300.0, description="longest wait before retrying a dead device")
    config_grace: Duration = Field(
        60.0,
        description="how long a configuration revision pushed from the centre has to prove "
        "itself: a new or changed bus that cannot open, or whose devices all fail, by then is "
        "rolled back to the last good revision",
        gt=0,
    )
    clock_check: bool = Field(
        default=True,
        description="mark readings taken while the gateway's clock is not synchronised "
        "(the kernel's adjtimex state, as timedatectl shows it) uncertain, reason 'clock "
        "unsynchronised'; false only for a gateway whose clock is kept by something the "
        "kernel does not know of",
    )


REGULATION_RETENTION_S = 1827 * 86400.0
"""The shortest a temperature record may be kept: five years (GSP's appendix on temperature and
humidity monitoring; 1827 days, leap days included)."""


class RetentionWaiver(StrictModel):
    """Why this store keeps readings for less than the regulation asks, and who approved it."""

    reason: str = Field(
        description="why, e.g. 'test system; the records are kept by the county centre'",
        min_length=10,
        max_length=500,
    )
    approved_by: str = Field(
        description="the person who approved it (name and role)", min_length=2, max_length=100
    )


class SqliteStoreSettings(StrictModel):
    """The embedded default: one SQLite file in the hub's data directory."""

    type: Literal["sqlite"] = "sqlite"
    path: str = Field("store.db", description="file, relative to the hub's data_dir")
    retention: Duration = Field(
        REGULATION_RETENTION_S,
        description="how long raw readings are kept (GSP: 5 years, 1827 days); shorter only "
        "with retention_waiver",
    )
    retention_waiver: RetentionWaiver | None = Field(
        None,
        description="needed for a retention under five years: the reason and who approved "
        "it; the hub audits it when it starts with it",
    )

    @model_validator(mode="after")
    def _regulation_minimum(self) -> SqliteStoreSettings:
        if self.retention < REGULATION_RETENTION_S and self.retention_waiver is None:
            days = self.retention / 86400
            raise ValueError(
                f"retention of {days:g} days is under the regulation's five years (1827 days): "
                "temperature records are evidence (GSP); keep retention at 1827 days or more, "
                "or add retention_waiver with a reason and who approved it"
            )
        return self


def http_url(url: str) -> str:
    """``url``, if it is http(s)://host[:port][/path] (ValueError saying so if not)."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises past 65535 or for a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    return url


HttpUrl = Annotated[str, AfterValidator(http_url)]


class InfluxStoreSettings(StrictModel):
    """InfluxDB line protocol into InfluxDB 2/3 or VictoriaMetrics."""

    type: Literal["influx"] = "influx"
    url: HttpUrl = Field(description="base URL, e.g. http://localhost:8428 (VictoriaMetrics)")
    write_url: HttpUrl | None = Field(
        None,
        description="VictoriaMetrics only: write through this vmagent (e.g. "
        "http://localhost:8429), which copies every reading to each of its -remoteWrite.url "
        "and buffers on disk for one that is down; absent: write to url",
    )
    replicas: list[HttpUrl] = Field(
        default_factory=list,
        max_length=8,
        description="VictoriaMetrics only: more servers holding the same readings (vmagent's "
        "other -remoteWrite.url); reads go to the one that answered last, url first",
    )
    flavour: Literal["victoriametrics", "influxdb2"] = Field(
        "victoriametrics", description="how to read back: Prometheus API or Flux"
    )
    org: str = Field("coldchain", description="InfluxDB 2 organisation")
    bucket: str = Field("coldchain", description="InfluxDB 2 bucket")
    token_file: str | None = Field(None, description="file holding the InfluxDB API token")

    @model_validator(mode="after")
    def _vmagent_is_victoria_metrics(self) -> InfluxStoreSettings:
        if (self.write_url or self.replicas) and self.flavour != "victoriametrics":
            raise ValueError(
                "write_url and replicas are for VictoriaMetrics (vmagent writes to each "
                "replica); InfluxDB 2 takes its writes and reads at url"
            )
        if self.replicas and not self.write_url:
            raise ValueError(
                "replicas need write_url: the vmagent that writes every reading to url and to "
                "each replica (docs/store.md, readings kept twice)"
            )
        return self


StoreSettings = Annotated[SqliteStoreSettings | InfluxStoreSettings, Field(discriminator="type")]


class SqliteStateSettings(StrictModel):
    """The embedded default: the hub's state in ``hub.db`` in its data dir."""

    type: Literal["sqlite"] = "sqlite"


def postgres_url(url: str) -> str:
    """``url``, if it is postgresql://[user@]host[:port][,host[:port]...]/database without a
    password. Several hosts (a primary and its streaming standbys, with
    ``?target_session_attrs=read-write``): libpq tries each in turn."""
    try:
        parts = urlsplit(url)
        hosts = parts.netloc.rpartition("@")[2].split(",")
        ok = parts.scheme in ("postgresql", "postgres") and all(_host_port(h) for h in hosts)
        ok = ok and len(parts.path) > 1 and "/" not in parts.path[1:]
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{url!r} is not a postgresql://[user@]host[:port][,host[:port]...]/database URL"
        )
    if ":" in parts.netloc.rpartition("@")[0]:
        raise ValueError(
            "the state URL holds a password: put it in password_file (or ~/.pgpass) instead, "
            "so the config can be shown and shared"
        )
    return url


def _host_port(text: str) -> bool:
    """Whether ``text`` is host[:port] (a name or an IPv4 address; [IPv6] in brackets)."""
    host, colon, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not colon:
        host = text
    elif not (port.isdigit() and 0 < int(port) < 65536):
        return False
    return bool(host) and not any(c in host for c in "/?#@ ")


class PostgresStateSettings(StrictModel):
    """The hub's state on PostgreSQL (coldchain/statedb.py), shared by every hub process."""

    type: Literal["postgres"]
    url: Annotated[str, AfterValidator(postgres_url)] = Field(
        description="postgresql://user@host[:port]/database (no password here)",
        examples=["postgresql://coldchain@db.centre.lan/coldchain"],
    )
    password_file: str | None = Field(
        None,
        description="file holding the database user's password; absent: ~/.pgpass, "
        "PGPASSWORD or no password (peer or trust authentication)",
    )


StateSettings = Annotated[SqliteStateSettings | PostgresStateSettings, Field(discriminator="type")]


class S3CopySettings(StrictModel):
    """A copy of every daily backup in an S3-compatible bucket (hub/backup_s3.py)."""

    url: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?#]*)?$",
        description="s3://BUCKET/PREFIX where the copies go",
    )
    endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        description="the service's endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com; "
        "absent: AWS",
    )
    region: str | None = Field(None, max_length=64, description="the bucket's region")
    access_key_id: SecretRef | None = Field(
        None, description="absent (with the secret): boto3's chain (environment, ~/.aws)"
    )
    secret_access_key: SecretRef | None = None

    @model_validator(mode="after")
    def _keys_together(self) -> S3CopySettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give access_key_id and secret_access_key together, or neither")
        return self


class BackupSettings(StrictModel):
    """The hub's daily backup (hub/backup_schedule.py): where, when, and which to keep
    (grandfather-father-son: the newest of each day, ISO week and month)."""

    to: str = Field(
        description="directory the backups go to, outside the data dir (another disk or a "
        "mounted share); relative: to the hub's data_dir's parent"
    )
    at: str = Field(
        "02:30",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="local time of day (the first site's time zone), HH:MM",
    )
    keep_daily: int = Field(7, ge=1, le=366, description="days whose newest backup is kept")
    keep_weekly: int = Field(5, ge=0, le=520, description="ISO weeks whose newest is kept")
    keep_monthly: int = Field(
        60, ge=0, le=1200, description="months whose newest is kept (60: the five years of GSP)"
    )
    victoria_metrics_data: str | None = Field(
        None,
        description="with a VictoriaMetrics store on this machine: its -storageDataPath, so "
        "each backup takes a copy of it too (vmbackup); absent: the data dir only",
    )
    s3: S3CopySettings | None = Field(
        None,
        description="also copy each backup to an S3-compatible bucket and restore-test the "
        "copy there; the same keep_* thin out the copies",
    )


class HubSettings(StrictModel):
    """The centre: where the hub keeps its data, where it listens, which store it uses."""

    data_dir: str = Field("/var/lib/coldchain-hub", description="hub database and SQLite store")
    listen: str = Field(
        "127.0.0.1:8080", description="host:port of the API and web UI", pattern=r"^[^:]+:\d+$"
    )
    store: StoreSettings = Field(
        default_factory=SqliteStoreSettings, description="the time-series store"
    )
    state: StateSettings = Field(
        default_factory=SqliteStateSettings,
        description="where the hub keeps alerts, the audit trail, users, gateways and config "
        "revisions: hub.db in data_dir (sqlite), or a PostgreSQL database",
    )
    health_timeout: Duration = Field(
        180.0, description="a gateway silent this long (no health, no telemetry) is offline"
    )
    share_group: str | None = Field(
        None, description="MQTT shared-subscription group, for several ingest workers"
    )
    require_second_factor: bool = Field(
        default=False,
        description="signatures (acknowledging, closing, approving, rule edits signed) need "
        "the signer's authenticator code as well as the password; a user without a second "
        "factor (coldchain users ... totp NAME) cannot sign",
    )
    sign_rule_edits: bool = Field(
        default=True,
        description="an alert rule is edited or reverted through the API only as a "
        "signature (POST /api/signatures, object rule/ID, meaning changed or reverted, the "
        "manager's password again): the edit and who answers for it are one act (21 CFR "
        "11.10(e), 11.50); false lets PUT and DELETE /api/alerts/rules/ID edit unsigned",
    )
    clock_probe_interval: Duration = Field(
        60.0,
        description="how often the hub measures each online gateway's clock offset (a "
        "timestamped exchange over MQTT; the gateway_clock rule alerts on it)",
        gt=0,
    )
    config_watch: Duration = Field(
        5.0,
        description="how often the hub looks whether its config file changed (it then "
        "pushes each gateway's changed slice, docs/agent.md); 0: never",
        ge=0,
    )
    config_grace: Duration = Field(
        7 * 86400.0,
        description="after a config push, how long the hub still accepts series the new "
        "config dropped (a gateway's backlog taken before the push)",
        ge=0,
    )
    cjk_font: str | None = Field(
        None,
        description="a TrueType font (.ttf/.ttc) with Chinese glyphs, served to the web UI as "
        "a subset and embedded in PDF reports; default: the first installed of Debian's "
        "fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-uming, fonts-droid-fallback; "
        "'none': the browser's and the PDF viewer's own fonts",
    )
    backup: BackupSettings | None = Field(
        None,
        description="a daily backup of the data dir, restore-tested, with GFS retention; a "
        "missing or failed one alerts (rule kind backup); absent: none",
    )
    username: str | None = Field(None, description="the hub's broker user")
    password_file: str | None = Field(None, description="file holding the hub's broker password")

    @model_validator(mode="after")
    def _victoria_backup(self) -> HubSettings:
        vm_data = self.backup.victoria_metrics_data if self.backup else None
        if vm_data is not None and not (
            isinstance(self.store, InfluxStoreSettings) and self.store.flavour == "victoriametrics"
        ):
            raise ValueError(
                "backup.victoria_metrics_data is for a VictoriaMetrics store (store: type "
                "influx, flavour victoriametrics); this hub's store is not one"
            )
        return self


class SiteConfig(StrictModel):
    """A whole network: sites, gateways, contacts and alert rules."""

    version: Literal[1] = Field(1, description="config format version")
    uplink: Uplink = Field(default_factory=Uplink, description="the central broker")
    agent: AgentSettings = Field(default_factory=AgentSettings, description="agent settings")
    hub: HubSettings = Field(default_factory=HubSettings, description="hub settings")
    sites: list[Site] = Field(min_length=1, description="sites and their rooms")
    gateways: list[Gateway] = Field(default_factory=list, description="gateways and devices")
    contacts: list[Contact] = Field(default_factory=list, description="people alerts reach")
    alerts: AlertSettings = Field(
        default_factory=AlertSettings, description="escalation, notifiers, suppression"
    )
    alert_rules: list[Rule] = Field(default_factory=list, description="alert rules")

    def site(self, site_id: str) -> Site:
        for s in self.sites:
            if s.id == site_id:
                return s
        raise KeyError(f"no site {site_id!r}")

    def gateway(self, gateway_id: str) -> Gateway:
        for g in self.gateways:
            if g.id == gateway_id:
                return g
        known = ", ".join(g.id for g in self.gateways) or "none"
        raise KeyError(f"no gateway {gateway_id!r} (known: {known})")
