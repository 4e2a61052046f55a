"""From the site config to the evaluator's watches: every rule applied to every room (and
gateway) it selects, with the built-in rules filling in what the config leaves out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from coldchain.alerting.defaults import DEFAULT_RULES
from coldchain.alerting.rules import AnyRule
from coldchain.alerting.rules.base import Watch, WatchContext
from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo


def effective_rules(cfg: SiteConfig, overrides: Iterable[AnyRule] = ()) -> list[AnyRule]:
    """The config's rules, then built-in ones of other ids; ``overrides`` (edited through
    the API) replace rules of the same id or add new ones."""
    rules: dict[str, AnyRule] = {}
    if cfg.alerts.default_rules:
        rules.update({r.id: r for r in DEFAULT_RULES})
    rules.update({r.id: r for r in cfg.alert_rules})
    rules.update({r.id: r for r in overrides})
    return list(rules.values())


def build_watches(
    cfg: SiteConfig,
    points: list[PointInfo],
    rules: Iterable[AnyRule],
    *,
    gateways: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
) -> list[Watch]:
    """Every watch of ``rules`` over ``points``; ``gateways``/``kinds`` narrow it (an agent's
    edge fallback watches only its own gateway's points, with temperature and door rules)."""
    only_gw = set(gateways) if gateways is not None else None
    only_kinds = set(kinds) if kinds is not None else None
    by_room: dict[tuple[str, str], list[PointInfo]] = defaultdict(list)
    for p in points:
        if only_gw is None or p.gateway in only_gw:
            by_room[(p.site, p.room)].append(p)
    site_gateways: dict[str, list[str]] = defaultdict(list)
    for g in cfg.gateways:
        if only_gw is None or g.id in only_gw:
            site_gateways[g.site].append(g.id)
    out: dict[str, Watch] = {}
    for rule in rules:
        if only_kinds is not None and rule.kind not in only_kinds:
            continue
        for site in cfg.sites:
            ctx = WatchContext(
                default_policy=cfg.alerts.default_policy,
                gateways=tuple(site_gateways.get(site.id, ())),
            )
            for room in site.rooms:
                if not rule.applies_to(site, room):
                    continue
                for w in rule.watches(site, room, by_room.get((site.id, room.id), []), ctx):
                    out.setdefault(w.key, w)
    return list(out.values())
