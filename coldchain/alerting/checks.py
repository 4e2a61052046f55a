"""Cross-reference checks of the alert settings: policies, contacts, notifiers and rules
name things that exist, and every temperature alarm reaches at least 3 people (GSP)."""

from __future__ import annotations

from collections.abc import Iterable

from coldchain.alerting.watches import effective_rules
from coldchain.config.notify import SMS_TYPES
from coldchain.config.site import SiteConfig

MIN_RECIPIENTS = 3
"""GSP: temperature alarms by SMS to at least 3 named people."""

Path = tuple[str | int, ...]
Issue = tuple[Path, str, str, object]  # path, message, fix, value


def _ref(path: Path, what: str, name: str, known: Iterable[str], owner: str) -> Issue | None:
    import difflib

    options = sorted(known)
    if name in options:
        return None
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if close:
        fix = f"did you mean {close[0]!r}?"
    elif options:
        fix = f"use one of: {', '.join(options)}"
    else:
        fix = f"define the {what} first"
    return (path, f"{owner}: no {what} {name!r}", fix, name)


def _temperature_alarm(rule: object) -> bool:
    kind = getattr(rule, "kind", "")
    if kind == "threshold":
        quantity = getattr(rule, "quantity", "")
        return quantity == "temperature" and getattr(rule, "alarm", None) is not None
    temperature_kinds = ("rate_of_rise", "forecast", "door_open_warm")
    return kind in temperature_kinds and getattr(rule, "severity", "") == "alarm"


def alert_issues(cfg: SiteConfig) -> list[Issue]:
    """Every alert-settings problem of ``cfg``."""
    a = cfg.alerts
    out: list[Issue | None] = []
    contacts = {c.id: c for c in cfg.contacts}
    policies = {p.id: p for p in a.policies}
    channels = [n.id for n in a.notifiers if n.type not in SMS_TYPES]
    seen: set[str] = set()
    for i, n in enumerate(a.notifiers):
        if n.id in seen:
            out.append(
                (
                    ("alerts", "notifiers", i, "id"),
                    f"notifier id {n.id!r} is used twice",
                    "give each one its own id",
                    n.id,
                )
            )
        seen.add(n.id)
    seen.clear()
    for i, p in enumerate(a.policies):
        if p.id in seen:
            out.append(
                (
                    ("alerts", "policies", i, "id"),
                    f"policy id {p.id!r} is used twice",
                    "give each one its own id",
                    p.id,
                )
            )
        seen.add(p.id)
        for j, lv in enumerate(p.levels):
            base: Path = ("alerts", "policies", i, "levels", j)
            out += [
                _ref((*base, "contacts", k), "contact", c, contacts, f"policy {p.id}")
                for k, c in enumerate(lv.contacts)
            ]
            out += [
                _ref((*base, "channels", k), "group notifier", c, channels, f"policy {p.id}")
                for k, c in enumerate(lv.channels)
            ]
    for sev, pid in a.default_policy.items():
        if sev not in ("warning", "alarm"):
            out.append(
                (
                    ("alerts", "default_policy", sev),
                    f"no severity {sev!r}",
                    "use warning or alarm",
                    sev,
                )
            )
        elif pid is not None:
            out.append(
                _ref(("alerts", "default_policy", sev), "policy", pid, policies, "default_policy")
            )
    out += _rule_refs(cfg, policies)
    out += _min_recipients(cfg)
    out += _edge_fallback(cfg)
    return [x for x in out if x is not None]


def _rule_refs(cfg: SiteConfig, policies: Iterable[str]) -> list[Issue | None]:
    policies = list(policies)
    out: list[Issue | None] = []
    site_ids = [s.id for s in cfg.sites]
    room_ids = {r.id for s in cfg.sites for r in s.rooms}
    for i, rule in enumerate(cfg.alert_rules):
        base = ("alert_rules", i)
        out += [
            _ref((*base, "sites", k), "site", s, site_ids, f"rule {rule.id}")
            for k, s in enumerate(rule.sites)
        ]
        out += [
            _ref((*base, "rooms", k), "room", r, room_ids, f"rule {rule.id}")
            for k, r in enumerate(rule.rooms)
        ]
        for field in ("policy",):
            pid = getattr(rule, field, None)
            if pid is not None:
                out.append(_ref((*base, field), "policy", pid, policies, f"rule {rule.id}"))
        for tier in ("warning", "alarm"):
            t = getattr(rule, tier, None)
            if t is not None and t.policy is not None:
                out.append(
                    _ref((*base, tier, "policy"), "policy", t.policy, policies, f"rule {rule.id}")
                )
    return out


def _edge_fallback(cfg: SiteConfig) -> list[Issue | None]:
    """A gateway's edge fallback texts the first level of its alarms' policy: someone there
    must cover the gateway's site, or the fallback would text no one."""
    out: list[Issue | None] = []
    policies = {p.id: p for p in cfg.alerts.policies}
    pid = cfg.alerts.default_policy.get("alarm")
    policy = policies.get(pid or "")
    contacts = {c.id: c for c in cfg.contacts}
    for i, g in enumerate(cfg.gateways):
        if g.fallback is None:
            continue
        people = (
            []
            if policy is None
            else [
                c
                for c in policy.levels[0].contacts
                if c in contacts and (not contacts[c].sites or g.site in contacts[c].sites)
            ]
        )
        if not people:
            out.append(
                (
                    ("gateways", i, "fallback"),
                    f"gateway {g.id}: its edge fallback would text no one: nobody at the first "
                    f"level of the alarm policy ({pid or 'none set'}) covers site {g.site}",
                    "set alerts.default_policy.alarm to a policy whose first level covers the site",
                    None,
                )
            )
    return out


def _min_recipients(cfg: SiteConfig) -> list[Issue | None]:
    """Each policy a temperature alarm uses must text >= 3 people of every site it covers
    at its first level, unless waived with a reason."""
    a = cfg.alerts
    policies = {p.id: (i, p) for i, p in enumerate(a.policies)}
    used: dict[str, set[str]] = {}  # policy -> sites
    missing_policy: list[str] = []
    for rule in effective_rules(cfg):
        if not _temperature_alarm(rule):
            continue
        tier = getattr(rule, "alarm", None)
        explicit = tier.policy if tier is not None else getattr(rule, "policy", None)
        pid = explicit if explicit is not None else a.default_policy.get("alarm")
        sites = set(rule.sites) or {s.id for s in cfg.sites}
        if pid is None:
            missing_policy.append(rule.id)
        else:
            used.setdefault(pid, set()).update(sites)
    out: list[Issue | None] = []
    if missing_policy and (a.policies or cfg.contacts):
        out.append(
            (
                ("alerts", "default_policy"),
                f"temperature alarms of rules {', '.join(missing_policy)} reach no one",
                "set alerts.default_policy.alarm to a policy, or give the rules one",
                None,
            )
        )
    contacts = {c.id: c for c in cfg.contacts}
    for pid, sites in sorted(used.items()):
        if pid not in policies:
            continue
        i, p = policies[pid]
        if p.waive_min_recipients:
            continue
        first = p.levels[0]
        for site in sorted(sites):
            people = [
                c
                for c in first.contacts
                if c in contacts and (not contacts[c].sites or site in contacts[c].sites)
            ]
            if len(set(people)) < MIN_RECIPIENTS:
                out.append(
                    (
                        ("alerts", "policies", i, "levels", 0, "contacts"),
                        f"policy {pid}: temperature alarms of site {site} reach {len(set(people))} "
                        f"people at once; GSP asks for at least {MIN_RECIPIENTS}",
                        "add contacts covering the site to the first level, or set "
                        "waive_min_recipients with the reason",
                        first.contacts,
                    )
                )
    return out
