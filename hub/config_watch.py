"""The hub's site config pushed to the gateways (:mod:`gateway.configpush`), and its file
watched: the latest revisions published again at each broker session, the config pushed on
start if it changed since the last push, the file looked at every ``hub.config_watch`` and
taken up when it changes and checks, the gateways' answers recorded (``docs/hub.md``)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from coldchain.config.loader import check_site_file
from coldchain.config.site import SiteConfig
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.revisions import decode_ack as decode_config_ack
from coldchain.reading import SeriesId
from gateway.configpush import Change, Revisions, plan, retired_series, revision_message
from gateway.ingest import Bounded, SessionPublish, series_bounds

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger(__name__)
RETIRE_CHECK_S = 3600.0  # how often series past hub.config_grace are let go


class ConfigWatch:
    """One hub's config pushes (see the module docstring)."""

    def __init__(self, hub: Hub, path: Path | None) -> None:
        self.hub, self.path = hub, path
        self.revisions = Revisions(hub.state)
        self.seen: tuple[int, int] | None = None  # the file's (mtime ns, size)
        self.sha: str | None = None  # of the text the hub runs on
        self.pushed = False  # this process pushed (or found pushed) its config

    def retired_series(self, cfg: SiteConfig) -> dict[str, dict[SeriesId, Bounded]]:
        """Series of revisions replaced within ``hub.config_grace``: still accepted."""
        since = self.hub.clock.now_ms() - round(cfg.hub.config_grace * 1000)
        return retired_series(
            cfg,
            self.hub.profiles,
            self.revisions.superseded(since),
            lambda c, p, gw: series_bounds(c, p).get(gw, {}),
        )

    async def republish(self, publish: SessionPublish) -> None:
        """At each session's start: the latest revisions published again (a broker that
        lost its retained messages, a standby broker a gateway moves to)."""
        for gw in self.hub.cfg.gateways:
            latest = self.revisions.latest(gw.id)
            if latest is not None:
                rev, _, text = latest
                topic, payload = revision_message(
                    self.hub.topics, gw.id, rev, text, self.hub.keys.get(gw.id)
                )
                await publish(topic, payload, qos=1, retain=True)

    async def run(self, publish: SessionPublish) -> None:
        """The config pushed if it changed, and the file watched, for as long as the hub
        runs; ``publish`` reaches every broker the hub is connected to (a revision made
        while none is, goes out with :meth:`republish` when one is)."""
        retire_at = time.monotonic() + RETIRE_CHECK_S
        while True:
            try:
                if self.hub.cfg.hub.config_watch or not self.pushed:
                    await self.check(publish)
                if time.monotonic() >= retire_at:  # series whose grace ran out: refused now
                    retire_at = time.monotonic() + RETIRE_CHECK_S
                    self.hub.ingest.reconfigure(
                        self.hub.cfg, self.hub.profiles, self.retired_series(self.hub.cfg)
                    )
            except (OSError, self.revisions.db_error) as exc:
                log.warning("config push: %s", exc)
            await asyncio.sleep(self.hub.cfg.hub.config_watch or RETIRE_CHECK_S)

    async def check(self, publish: SessionPublish) -> list[Change]:
        """Push the config if it is new: the one the hub started with, the first time, then
        the file's whenever it changes and checks. A file that does not check is logged and
        audited (``config.refused``) once, and the hub runs on as before."""
        path = self.path
        if path is None or self.sha is None:
            if self.pushed:
                return []
            return await self._push(self.hub.cfg, publish, actor="hub")
        st = path.stat()
        seen = (st.st_mtime_ns, st.st_size)
        if seen == self.seen and self.pushed:
            return []
        self.seen = seen
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest == self.sha:
            return [] if self.pushed else await self._push(self.hub.cfg, publish, actor="hub")
        result = check_site_file(path, self.hub.profiles, text=text, advice=False)
        if result.config is None:
            self._refuse_file(path, digest, [e.format() for e in result.errors[:20]])
            return []
        log.info("%s changed: taking it up and pushing it to the gateways", path)
        self.sha = self.hub.audit_config(path, text)
        return await self._push(result.config, publish, actor="hub (file changed)", take_up=True)

    def _refuse_file(self, path: Path, digest: str, errors: list[str]) -> None:
        """A config file that does not check: logged and audited once per content."""
        last = self.hub.audit.last("config.refused", "site-config")
        if last is not None and isinstance(last.after, dict) and last.after.get("sha256") == digest:
            return
        log.warning(
            "%s changed but does not check; running on as before:\n%s", path, "\n".join(errors)
        )
        self.hub.audit.record(
            actor="hub",
            action="config.refused",
            obj="site-config",
            after={"sha256": digest, "path": str(path), "errors": errors},
        )

    async def _push(
        self, cfg: SiteConfig, publish: SessionPublish, *, actor: str, take_up: bool = False
    ) -> list[Change]:
        """Record a new revision for each gateway whose slice of ``cfg`` changed, take
        ``cfg`` up (``take_up``: the hub accepts the new series before any gateway can send
        them), then publish the revisions, retained."""
        changes = plan(cfg, self.hub.profiles, self.revisions)
        now = self.hub.clock.now_ms()
        for ch in changes:
            self.revisions.record(ch, now_ms=now, actor=actor)
        if take_up:
            self.hub.reconfigure(cfg)
        elif changes:  # the hub started on a changed file: the replaced series' grace begins
            self.hub.ingest.reconfigure(cfg, self.hub.profiles, self.retired_series(cfg))
        for ch in changes:
            topic, payload = revision_message(
                self.hub.topics, ch.gateway, ch.rev, ch.text, self.hub.keys.get(ch.gateway)
            )
            await publish(topic, payload, qos=1, retain=True)
            log.info("config revision %d pushed to %s", ch.rev, ch.gateway)
        kept = {g.id for g in cfg.gateways}
        for gw in self.revisions.gateways():
            if gw not in kept:  # a gateway taken out of the config: no revision waits for it
                await publish(self.hub.topics.topic(gw, "config"), b"", qos=1, retain=True)
        if changes:
            self.hub.audit.record(
                actor=actor,
                action="config.push",
                obj="site-config",
                after={
                    "revisions": {ch.gateway: ch.rev for ch in changes},
                    "diff": {ch.gateway: ch.diff() for ch in changes},
                },
            )
        self.pushed = True
        self.hub.events.publish()
        return changes

    def on_ack(self, gateway: str, payload: bytes) -> None:
        """A gateway's answer to a revision: recorded and audited (who applied what)."""
        ack = decode_config_ack(payload)
        if not self.revisions.ack(gateway, ack, now_ms=self.hub.clock.now_ms()):
            raise ProtocolError(f"config ack: no revision {ack.rev} was pushed to {gateway}")
        self.hub.audit.record(
            actor=f"gateway/{gateway}",
            action="config.applied" if ack.ok else "config.refused",
            obj=f"gateway/{gateway}",
            after={"rev": ack.rev, "error": ack.error, "restart": list(ack.restart)},
        )
        level = logging.INFO if ack.ok else logging.WARNING
        log.log(
            level,
            "gateway %s: config revision %d %s",
            gateway,
            ack.rev,
            "applied" if ack.ok else f"refused: {ack.error}",
        )
