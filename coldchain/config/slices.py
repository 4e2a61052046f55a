"""A gateway's slice of the site config: what its agent runs on, pushed from the centre.

The hub publishes each gateway's slice as a retained ``config`` message with a revision
(:mod:`coldchain.protocol.revisions`); the agent checks it and puts it in place of its own
part of the config it started with (:func:`apply_slice`). A slice holds

* ``gateway``: the gateway's entry (its buses, devices, edge fallback);
* ``site``: its site with the rooms (devices name their room);
* ``agent``: the agent settings (one set for the network);
* ``profiles``: every profile its devices use, in full, so a profile added at the centre
  reaches the Pi with the device that uses it;
* with an edge fallback only: ``contacts``, ``alerts`` and ``alert_rules``, which the
  fallback texts by.

The agent's ``uplink`` (broker, identity, key files) is never in a slice: a push must not
be able to cut a gateway off from the centre. The slice's text is canonical JSON (sorted
keys, no spaces), so the same config gives the same text and digest: a gateway whose slice
did not change is not sent a new revision.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from coldchain.config.checks import check
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile, MqttProfile, Profile

PROFILE: TypeAdapter[ModbusProfile | MqttProfile] = TypeAdapter(Profile)
FALLBACK_PARTS = ("contacts", "alerts", "alert_rules")
# agent settings the agent takes up at once; the others (where the outbox lives and how
# it is bounded, the clock check) take effect when the agent next starts
LIVE_SETTINGS = frozenset(
    {
        "batch_size",
        "batch_interval",
        "ack_timeout",
        "max_in_flight",
        "health_interval",
        "fill_registers",
        "fill_bits",
        "deadband",
        "max_silence",
        "backoff_max",
        "config_grace",
    }
)


class SliceError(ValueError):
    """A slice that is not valid where it is to be applied; the message says what."""


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


def gateway_slice(cfg: SiteConfig, gateway: str, profiles: ProfileRegistry) -> dict[str, Any]:
    """``gateway``'s slice of ``cfg`` (see the module docstring)."""
    gw = cfg.gateway(gateway)
    out: dict[str, Any] = {
        "gateway": _dump(gw),
        "site": _dump(cfg.site(gw.site)),
        "agent": _dump(cfg.agent),
        "profiles": {
            pid: _dump(profiles.get(pid)) for pid in sorted({d.profile for d in gw.devices})
        },
    }
    if gw.fallback is not None:
        doc = _dump(cfg)
        for part in FALLBACK_PARTS:
            out[part] = doc.get(part, [] if part != "alerts" else {})
    return out


def slice_text(doc: dict[str, Any]) -> str:
    """The canonical text of a slice: equal slices, equal text."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apply_slice(
    cfg: SiteConfig, gateway: str, doc: dict[str, Any], profiles: ProfileRegistry
) -> tuple[SiteConfig, ProfileRegistry]:
    """``cfg`` with ``gateway``'s part replaced by the slice ``doc``, and ``profiles`` with the
    slice's profiles added (or replacing those of the same id); checked as a whole config
    is. Raise :class:`SliceError` saying what is wrong; nothing is changed."""
    if not isinstance(doc, dict):
        raise SliceError("a slice is an object")
    unknown = sorted(set(doc) - {"gateway", "site", "agent", "profiles", *FALLBACK_PARTS})
    if unknown:
        raise SliceError(f"unknown part {unknown[0]!r:.40}")
    for part in ("gateway", "site", "agent", "profiles"):
        if not isinstance(doc.get(part), dict):
            raise SliceError(f"{part}: missing, or not an object")
    registry = _profiles(doc["profiles"], profiles)
    base = _dump(cfg)
    gw, site = doc["gateway"], doc["site"]
    if gw.get("id") != gateway:
        raise SliceError(f"the slice is for gateway {gw.get('id')!r:.40}, this is {gateway}")
    base["gateways"] = [g for g in base.get("gateways", []) if g.get("id") != gateway] + [gw]
    base["sites"] = [s for s in base.get("sites", []) if s.get("id") != site.get("id")] + [site]
    base["agent"] = doc["agent"]
    for part in FALLBACK_PARTS:
        if part in doc:
            base[part] = doc[part]
    try:
        new = SiteConfig.model_validate(base)
    except ValidationError as exc:
        raise SliceError(_first(exc)) from None
    findings = [f for f in check(new, registry, advice=False) if not f.warning]
    if findings:
        raise SliceError(f"{findings[0].message} ({findings[0].fix})")
    if new.gateway(gateway).site != site.get("id"):
        raise SliceError(f"the slice's site is {site.get('id')!r:.40}, its gateway's is not")
    return new, registry


def _first(exc: ValidationError) -> str:
    """The first error of ``exc``, as where: what."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _profiles(docs: dict[str, Any], base: ProfileRegistry) -> ProfileRegistry:
    by_id = {p.id: p for p in base}
    for pid, body in docs.items():
        try:
            profile = PROFILE.validate_python(body)
        except ValidationError as exc:
            raise SliceError(f"profile {pid!r:.40}: {_first(exc)}") from None
        if profile.id != pid:
            raise SliceError(f"profile {pid!r:.40} says its id is {profile.id!r:.40}")
        by_id[pid] = profile
    return ProfileRegistry(by_id.values())


def needs_restart(old: SiteConfig, new: SiteConfig, gateway: str) -> list[str]:
    """What of ``new`` the agent takes up only when it next starts: agent settings outside
    :data:`LIVE_SETTINGS`, and the edge fallback (its modem and what it texts by)."""
    a, b = old.agent.model_dump(), new.agent.model_dump()
    out = [f"agent.{k}" for k in a if k not in LIVE_SETTINGS and a[k] != b.get(k)]
    old_fb, new_fb = old.gateway(gateway).fallback, new.gateway(gateway).fallback
    if old_fb != new_fb or (
        new_fb is not None and any(getattr(old, p) != getattr(new, p) for p in FALLBACK_PARTS)
    ):
        out.append("fallback")
    return out
