"""Cross-reference checks of a site config, run once its shapes are valid.

Each finding names the object and the fix, e.g. "device cr3-probe: unit id 2 is already used
by cr2-probe on bus rs485-1". Warnings are things a technician should look at but that do not
stop the system (a probe polled slower than GSP's one minute, a big room with one probe, a
room whose rules watch no room-air point, a cold room whose defrosts nobody reports: see
:mod:`coldchain.config.coverage`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coldchain.config.errors import NO_VALUE
from coldchain.config.site import Bus, Device, Gateway, SiteConfig, broker_address, is_loopback
from coldchain.config.yamldoc import PathT
from coldchain.durations import format_duration
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile, MqttProfile, PointKind

GSP_SAMPLING_S = 60.0


@dataclass(frozen=True, slots=True)
class Finding:
    """A cross-reference problem at a data path."""

    path: PathT
    message: str
    fix: str | None = None
    value: Any = NO_VALUE
    warning: bool = False


def _near(word: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return close[0] if close else None


def _ref_fix(word: str, options: Iterable[str], what: str) -> str:
    opts = sorted(options)
    hint = _near(word, opts)
    if hint:
        return f"did you mean {hint!r}?"
    return f"use one of the {what}: {', '.join(opts)}" if opts else f"define the {what} first"


def _unique(items: Iterable[tuple[PathT, str]], what: str) -> list[Finding]:
    out: list[Finding] = []
    first: dict[str, PathT] = {}
    for path, ident in items:
        if ident in first:
            out.append(
                Finding(
                    (*path, "id"),
                    f"{what} id {ident!r} is used twice",
                    "give each one its own id",
                    ident,
                )
            )
        else:
            first[ident] = path
    return out


def check(cfg: SiteConfig, profiles: ProfileRegistry, *, advice: bool = True) -> list[Finding]:
    """Every cross-reference problem of ``cfg``. ``advice=False`` skips the checks that can
    only warn (sensor coverage, what the rules watch: the latter builds every watch of the
    site twice, a few MB and a moment on a Pi's start for a big gateway), for loading a
    config to run it rather than to review it."""
    out = _unique(((("sites", i), s.id) for i, s in enumerate(cfg.sites)), "site")
    for i, s in enumerate(cfg.sites):
        out += _unique(((("sites", i, "rooms", j), r.id) for j, r in enumerate(s.rooms)), "room")
    out += _unique(((("gateways", i), g.id) for i, g in enumerate(cfg.gateways)), "gateway")
    out += _unique(((("contacts", i), c.id) for i, c in enumerate(cfg.contacts)), "contact")
    site_ids = [s.id for s in cfg.sites]
    for i, c in enumerate(cfg.contacts):
        for j, sid in enumerate(c.sites):
            if sid not in site_ids:
                msg, fix = f"contact {c.id}: no site {sid!r}", _ref_fix(sid, site_ids, "sites")
                out.append(Finding(("contacts", i, "sites", j), msg, fix, sid))
    for i, g in enumerate(cfg.gateways):
        out += _check_gateway(cfg, ("gateways", i), g, profiles)
    from coldchain.alerting.checks import alert_issues

    if advice:
        from coldchain.config.coverage import coverage

        out += _probe_coverage(cfg, profiles)
        out += coverage(cfg, profiles)

    out += [
        Finding(path, msg, fix, NO_VALUE if value is None else value)
        for path, msg, fix, value in alert_issues(cfg)
    ]
    return out


@dataclass
class _GatewayScope:
    """What a device of one gateway is checked against."""

    gateway: Gateway
    rooms: list[str]
    buses: dict[str, Bus]
    profiles: ProfileRegistry
    unit_owner: dict[tuple[str, int], str]


def _check_gateway(
    cfg: SiteConfig, at: PathT, g: Gateway, profiles: ProfileRegistry
) -> list[Finding]:
    site_ids = [s.id for s in cfg.sites]
    if g.site not in site_ids:
        fix = _ref_fix(g.site, site_ids, "sites")
        return [Finding((*at, "site"), f"gateway {g.id}: no site {g.site!r}", fix, g.site)]
    out = _unique((((*at, "buses", j), b.id) for j, b in enumerate(g.buses)), "bus")
    out += _unique((((*at, "devices", j), d.id) for j, d in enumerate(g.devices)), "device")
    ports: dict[str, str] = {}
    for j, b in enumerate(g.buses):
        if b.type == "rtu" and b.port in ports:
            out.append(
                Finding(
                    (*at, "buses", j, "port"),
                    f"bus {b.id}: port {b.port} is also bus {ports[b.port]}",
                    "each RS-485 adapter is one bus; put both devices on one bus",
                    b.port,
                )
            )
        if b.type == "rtu":
            ports[b.port] = b.id
    out += _talks_to_itself(cfg, at, g)
    scope = _GatewayScope(
        g, [r.id for r in cfg.site(g.site).rooms], {b.id: b for b in g.buses}, profiles, {}
    )
    for j, d in enumerate(g.devices):
        out += _check_device(scope, (*at, "devices", j), d)
    return out


def _talks_to_itself(cfg: SiteConfig, at: PathT, g: Gateway) -> list[Finding]:
    """A gateway whose uplink is the very broker its own wireless sensors publish to: with
    no ``uplink`` section the agent connects to ``mqtt://localhost:1883``, which on a Pi is
    its own sensor broker, and would send everything there, to no hub."""
    host, port, _tls = broker_address(cfg.uplink.broker)
    if not is_loopback(host):
        return []
    return [
        Finding(
            (*at, "buses", j),
            f"gateway {g.id}: the uplink broker {cfg.uplink.broker} is this gateway's own "
            f"sensor broker (bus {b.id} at {b.host}:{b.port}); its readings would never "
            "leave the Pi",
            "set uplink.broker to the centre's broker, e.g. mqtts://hub.example.org:8883",
            warning=True,
        )
        for j, b in enumerate(g.buses)
        if b.type == "mqtt" and is_loopback(b.host) and b.port == port
    ]


def _check_device(scope: _GatewayScope, here: PathT, d: Device) -> list[Finding]:
    g, out = scope.gateway, []
    if d.room not in scope.rooms:
        fix = _ref_fix(d.room, scope.rooms, f"rooms of {g.site}")
        out.append(
            Finding(
                (*here, "room"), f"device {d.id}: site {g.site} has no room {d.room!r}", fix, d.room
            )
        )
    if d.profile not in scope.profiles:
        fix = _ref_fix(d.profile, scope.profiles.ids(), "profiles")
        msg = f"device {d.id}: no device profile {d.profile!r}"
        return [*out, Finding((*here, "profile"), msg, fix, d.profile)]
    profile = scope.profiles.get(d.profile)
    names = [p.name for p in profile.points]
    for name in d.points:
        if name not in names:
            msg = f"device {d.id}: profile {profile.id} has no point {name!r}"
            out.append(Finding((*here, "points", name), msg, _ref_fix(name, names, "points"), name))
    if d.bus not in scope.buses:
        fix = _ref_fix(d.bus, scope.buses, "buses")
        msg = f"device {d.id}: gateway {g.id} has no bus {d.bus!r}"
        return [*out, Finding((*here, "bus"), msg, fix, d.bus)]
    bus = scope.buses[d.bus]
    if isinstance(profile, ModbusProfile):
        out += _check_modbus_device(scope, here, d, profile, bus)
    else:
        out += _check_mqtt_device(here, d, profile, bus)
    return out + _check_sampling(here, d, profile)


def _check_modbus_device(
    scope: _GatewayScope, here: PathT, d: Device, profile: ModbusProfile, bus: Bus
) -> list[Finding]:
    if bus.type == "mqtt":
        msg = f"device {d.id}: profile {profile.id} speaks Modbus but bus {bus.id} is MQTT"
        return [Finding((*here, "bus"), msg, "put it on an RTU or TCP bus", d.bus)]
    if d.unit_id is None:
        msg = f"device {d.id}: missing unit_id on Modbus bus {bus.id}"
        return [Finding(here, msg, "add 'unit_id: N' (1-247, as set on the device)")]
    out = []
    if bus.type == "rtu" and d.unit_id == 0:
        msg = f"device {d.id}: unit id 0 is the RTU broadcast address"
        out.append(Finding((*here, "unit_id"), msg, "use the device's own address, 1-247", 0))
    key = (bus.id, d.unit_id)
    if key in scope.unit_owner:
        msg = (
            f"device {d.id}: unit id {d.unit_id} is already used by "
            f"{scope.unit_owner[key]} on bus {bus.id}"
        )
        fix = (
            "give each device on a bus its own address (set it with 'coldchain modbus set"
            " --unit OLD ... unit_id=NEW', or on the device: its keypad or DIP switches)"
        )
        out.append(Finding((*here, "unit_id"), msg, fix, d.unit_id))
    scope.unit_owner[key] = d.id
    if d.topic is not None:
        msg = f"device {d.id}: 'topic' is for MQTT devices"
        out.append(Finding((*here, "topic"), msg, "remove it", d.topic))
    if bus.type == "rtu" and profile.serial and profile.serial.baud != bus.baud:
        msg = (
            f"device {d.id}: {profile.model} ships at {profile.serial.baud} baud, "
            f"bus {bus.id} runs at {bus.baud}"
        )
        fix = "make sure the device was re-configured to the bus's baud"
        out.append(Finding((*here, "bus"), msg, fix, d.bus, warning=True))
    return out


def _check_mqtt_device(here: PathT, d: Device, profile: MqttProfile, bus: Bus) -> list[Finding]:
    out = []
    if bus.type != "mqtt":
        msg = (
            f"device {d.id}: profile {profile.id} publishes over MQTT but bus {bus.id} "
            f"is {bus.type.upper()}"
        )
        out.append(Finding((*here, "bus"), msg, "put it on an MQTT bus", d.bus))
    if d.unit_id is not None:
        msg = f"device {d.id}: unit_id is for Modbus devices"
        out.append(Finding((*here, "unit_id"), msg, "remove it", d.unit_id))
    return out


def _check_sampling(here: PathT, d: Device, profile: ModbusProfile | MqttProfile) -> list[Finding]:
    """GSP: temperature and humidity updated at least every minute (polled devices only;
    MQTT sensors publish on their own schedule)."""
    climate = any(p.kind in (PointKind.TEMPERATURE, PointKind.HUMIDITY) for p in profile.points)
    if not (climate and isinstance(profile, ModbusProfile) and d.poll_interval > GSP_SAMPLING_S):
        return []
    every = format_duration(d.poll_interval)
    msg = f"device {d.id}: polled every {every}; GSP asks for a reading at least every minute"
    fix = "set poll_interval to 1min or less"
    return [Finding((*here, "poll_interval"), msg, fix, every, warning=True)]


def _probe_coverage(cfg: SiteConfig, profiles: ProfileRegistry) -> list[Finding]:
    """GB 31605-2020: a store over 100 m² has at least two temperature sensors."""
    probes: dict[tuple[str, str], int] = {}
    for g in cfg.gateways:
        for d in g.devices:
            if d.profile in profiles and any(
                p.kind is PointKind.TEMPERATURE for p in profiles.get(d.profile).points
            ):
                probes[(g.site, d.room)] = probes.get((g.site, d.room), 0) + 1
    out: list[Finding] = []
    for i, s in enumerate(cfg.sites):
        for j, r in enumerate(s.rooms):
            n = probes.get((s.id, r.id), 0)
            if r.area_m2 and r.area_m2 > 100 and n < 2:
                out.append(
                    Finding(
                        ("sites", i, "rooms", j, "area_m2"),
                        f"room {s.id}/{r.id}: {r.area_m2:g} m² with {n} temperature "
                        "sensor(s); GB 31605 asks for at least 2 above 100 m²",
                        "add a second probe",
                        r.area_m2,
                        warning=True,
                    )
                )
    return out
