"""What the alert rules watch in each room, checked against what the profiles say: warnings
for a room whose rules would watch a point not declared room air, a point whose profile
does not say where it measures, and a cold room whose defrosts nobody reports.

Only a point whose profile says ``role: room`` is the room's air; the rules, the live
board, the reports and Grafana read nothing else. These checks build the room's watches
twice, once as configured and once as if every temperature and humidity point were room
air; a series watched only in the second build is one the rules skip because of its role.
Warnings, not errors: the system runs, but a technician should look.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from coldchain.alerting.rules import AnyRule
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.config.checks import Finding
from coldchain.config.limits import RoomClass
from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo, site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole

CLIMATE = (PointKind.TEMPERATURE, PointKind.HUMIDITY)
COLD = (RoomClass.CHILLED, RoomClass.FROZEN)

Place = tuple[str, str]  # site id, room id


def coverage(cfg: SiteConfig, profiles: ProfileRegistry) -> list[Finding]:
    """Room-air and defrost-source warnings of ``cfg`` (devices of unknown profiles, an
    error reported elsewhere, are left out)."""
    known = cfg.model_copy(
        update={
            "gateways": [
                g.model_copy(update={"devices": [d for d in g.devices if d.profile in profiles]})
                for g in cfg.gateways
            ]
        }
    )
    points = site_points(known, profiles)
    rules = effective_rules(cfg)
    as_is = _watched(known, points, rules)
    as_air = _watched(
        known,
        [dataclasses.replace(p, role=PointRole.ROOM) if p.kind in CLIMATE else p for p in points],
        rules,
    )
    by_sid = {str(p.sid): p for p in points}
    skipped = {sid: by_sid[sid] for sid in set(as_air) - set(as_is)}
    out = _unwatched_rooms(cfg, points, as_is, skipped)
    out += _undeclared_roles(cfg, profiles, skipped)
    out += _defrost_sources(cfg, points, as_is)
    return out


def _watched(cfg: SiteConfig, points: list[PointInfo], rules: list[AnyRule]) -> dict[str, bool]:
    """Series some watch reads -> whether a defrost can hold that watch (a temperature
    threshold or rate of rise)."""
    out: dict[str, bool] = {}
    for w in build_watches(cfg, points, rules):
        for sid in w.inputs:
            held = w.suppressible and w.quantity == "temperature"
            out[sid] = out.get(sid, False) or held
    return out


def _unwatched_rooms(
    cfg: SiteConfig, points: list[PointInfo], as_is: dict[str, bool], skipped: dict[str, PointInfo]
) -> list[Finding]:
    """A room whose rules watch none of its temperature (or humidity) points because none
    is declared room air."""
    watched: set[tuple[Place, PointKind]] = set()
    for p in points:
        if str(p.sid) in as_is and p.kind in CLIMATE:
            watched.add(((p.site, p.room), p.kind))
    missed: dict[tuple[Place, PointKind], list[PointInfo]] = defaultdict(list)
    for p in skipped.values():
        if ((p.site, p.room), p.kind) not in watched:
            missed[((p.site, p.room), p.kind)].append(p)
    out: list[Finding] = []
    for i, s in enumerate(cfg.sites):
        for j, r in enumerate(s.rooms):
            for kind in CLIMATE:
                found = missed.get(((s.id, r.id), kind))
                if not found:
                    continue
                named = ", ".join(
                    f"{p.sid.device}/{p.sid.point} ({p.role})"
                    for p in sorted(found, key=lambda p: str(p.sid))
                )
                out.append(
                    Finding(
                        ("sites", i, "rooms", j),
                        f"room {s.id}/{r.id}: its {kind} rules watch no point: none of its "
                        f"{kind} points is declared room air ({named})",
                        "add a probe in the room's air, or, if one of these measures the "
                        "room's air, say 'role: room' for it in its profile",
                        warning=True,
                    )
                )
    return out


def _undeclared_roles(
    cfg: SiteConfig, profiles: ProfileRegistry, skipped: dict[str, PointInfo]
) -> list[Finding]:
    """A point the room's rules would watch, whose profile does not say where it measures
    (it is taken as ``other``: not room air)."""
    names: dict[tuple[str, str], list[str]] = defaultdict(list)
    profile_of = {(g.id, d.id): d.profile for g in cfg.gateways for d in g.devices}
    for p in skipped.values():
        profile = profiles.get(profile_of[(p.gateway, p.sid.device)])
        if not profile.point(p.sid.point).role_declared:
            names[(p.gateway, p.sid.device)].append(p.sid.point)
    out: list[Finding] = []
    for i, g in enumerate(cfg.gateways):
        for j, d in enumerate(g.devices):
            found = names.get((g.id, d.id))
            if not found:
                continue
            listed = ", ".join(sorted(found))
            out.append(
                Finding(
                    ("gateways", i, "devices", j, "profile"),
                    f"device {d.id}: profile {d.profile} does not say where {listed} "
                    "measures, so the room's rules take it as 'other', not the room's air",
                    "in the profile, give each temperature and humidity point a role: "
                    "room (the room's air), evaporator, product, device or other",
                    d.profile,
                    warning=True,
                )
            )
    return out


def _defrost_sources(
    cfg: SiteConfig, points: list[PointInfo], as_is: dict[str, bool]
) -> list[Finding]:
    """A chilled or frozen room with temperature rules that a defrost would hold, and
    nothing that tells when it defrosts: no point of kind defrost in the room, no
    ``defrost:`` schedule. Its defrosts look like failures."""
    flagged = {(p.site, p.room) for p in points if p.kind is PointKind.DEFROST}
    held = {(p.site, p.room) for p in points if as_is.get(str(p.sid), False)}
    out: list[Finding] = []
    for i, s in enumerate(cfg.sites):
        for j, r in enumerate(s.rooms):
            place = (s.id, r.id)
            if r.room_class not in COLD or r.defrost is not None:
                continue
            if place in held and place not in flagged:
                out.append(
                    Finding(
                        ("sites", i, "rooms", j),
                        f"room {s.id}/{r.id}: {r.room_class} room with temperature rules "
                        "and no defrost source (no controller point of kind defrost, no "
                        "'defrost:' schedule): its defrosts cannot be told from a failure "
                        "and will raise temperature alerts",
                        "read the room's controller with a profile that has a defrost point, "
                        "or add 'defrost: {at: [\"HH:MM\", ...], duration: 30min}' with the "
                        "controller's defrost times",
                        warning=True,
                    )
                )
    return out
