"""Rules edited at run time (through the API): an edit replaces the config's rule of the
same id until it is reverted; both are stored and audited (``rule.edit``, ``rule.revert``).

After an edit the evaluator is rebuilt from the effective rules, keeping what the old one
knew of the live state (latest readings, rooms, gateways), and the open alerts are resumed
in it: an alert whose rule is gone is resolved, the others continue.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from alerts.context import AlertContext
from alerts.errors import NotFoundError
from alerts.lifecycle import Lifecycle
from alerts.store import AlertStore
from coldchain.alerting.evaluator import Evaluator
from coldchain.alerting.rules import AnyRule, Rule
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo

RULE: TypeAdapter[AnyRule] = TypeAdapter(Rule)


def current_rules(cfg: SiteConfig, store: AlertStore) -> list[AnyRule]:
    """The config's rules with the stored edits applied."""
    edits = store.rule_edits()
    overrides = [RULE.validate_python(b) for b in edits.values() if b is not None]
    return effective_rules(cfg, overrides)


def build_evaluator(
    cfg: SiteConfig, points: list[PointInfo], rules: list[AnyRule], now_ms: int
) -> Evaluator:
    return Evaluator(cfg, points, build_watches(cfg, points, rules), now_ms=now_ms)


class RuleEdits:
    """Edits and reverts rules, and rebuilds the evaluator after each."""

    def __init__(self, ctx: AlertContext, lifecycle: Lifecycle) -> None:
        self.ctx, self.lifecycle = ctx, lifecycle

    def rules(self) -> list[AnyRule]:
        return current_rules(self.ctx.cfg, self.ctx.store)

    def put(self, body: dict[str, Any], *, by: str) -> AnyRule:
        ctx = self.ctx
        rule = RULE.validate_python(body)
        before = next((r for r in self.rules() if r.id == rule.id), None)
        ctx.store.save_rule(rule.id, rule.model_dump(mode="json"), now_ms=ctx.clock(), by=by)
        ctx.audit(
            actor=by,
            action="rule.edit",
            obj=f"rule/{rule.id}",
            before=before.model_dump(mode="json") if before else None,
            after=rule.model_dump(mode="json"),
        )
        self.rebuild()
        return rule

    def revert(self, rule_id: str, *, by: str) -> None:
        ctx = self.ctx
        edits = ctx.store.rule_edits()
        if edits.get(rule_id) is None:
            raise NotFoundError(f"rule {rule_id} has no edit to revert")
        ctx.store.save_rule(rule_id, None, now_ms=ctx.clock(), by=by)
        ctx.audit(actor=by, action="rule.revert", obj=f"rule/{rule_id}", before=edits[rule_id])
        self.rebuild()

    def reconfigure(self, cfg: SiteConfig, points: list[PointInfo]) -> None:
        """Judge by ``cfg`` from now on (its rooms, limits, rules, devices): the evaluator is
        rebuilt as after a rule edit; what it knew of series the config kept stays."""
        ctx = self.ctx
        ctx.cfg, ctx.points = cfg, points
        ctx.__post_init__()  # its contacts, policies, sites and rooms, by id
        self.rebuild()

    def rebuild(self) -> None:
        """New watches from the edited rules (by whichever hub led when they were edited);
        keep what is known of the live state."""
        ctx = self.ctx
        old = ctx.evaluator
        ctx.evaluator = build_evaluator(ctx.cfg, ctx.points, self.rules(), ctx.clock())
        for name, view in ctx.evaluator.views.series.items():
            kept = old.views.series.get(name)
            if kept is not None:  # a new rate rule's window fills from now on
                kept.windows = {ms: w for ms, w in kept.windows.items() if ms in view.windows}
                for window_ms in view.windows:
                    kept.track(window_ms)
            else:  # a series the config gained
                old.views.series[name] = view
        for key, room in ctx.evaluator.views.rooms.items():
            old.views.rooms.setdefault(key, room)
        for gw, gview in ctx.evaluator.views.gateways.items():
            old.views.gateways.setdefault(gw, gview)
        ctx.evaluator.views = old.views
        now = ctx.clock()
        for row in list(ctx.open.values()):
            self.lifecycle.resume(row, now)
