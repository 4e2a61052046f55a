"""Configuration revisions from the centre: checked, applied live, proved, kept or rolled back.

A revision (:mod:`coldchain.protocol.revisions`) carries the gateway's slice of the site
config (:mod:`coldchain.config.slices`). The agent

1. takes it only if it is newer than the last it applied or refused (a revision seen again,
   the retained one on reconnecting, is answered again as before, and nothing changes);
2. checks it as a whole config before touching anything: a slice that is not valid here is
   refused with the reason;
3. applies it live (:meth:`Agent.reconfigure`): the buses it changed start anew, the rest poll
   on, the outbox and the uplink are untouched;
4. gives it ``agent.config_grace`` to prove itself: it is kept once every new or changed
   Modbus bus has a device that answers; a bus of it that cannot open, or whose devices all
   fail, by the end of the grace, rolls the agent back to the revision it ran before, and
   the revision is refused with what failed;
5. keeps what it applied (or refused) in ``DATA_DIR/GATEWAY.config.json``, so a restarted
   agent runs on the last good revision (unless its local config changed since: a new
   bundle or an edit on site wins, until the hub's retained revision comes again), and
   answers ``{rev, ok}`` (with ``restart``: what it
   takes up only when it next starts).

One revision is tried at a time; a newer one that arrives meanwhile waits its turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coldchain.config.site import SiteConfig
from coldchain.config.slices import (
    SliceError,
    apply_slice,
    digest,
    gateway_slice,
    needs_restart,
    slice_text,
)
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.bounded import loads_bounded
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.revisions import MAX_CONFIG_BYTES, ConfigAck, Revision

if TYPE_CHECKING:
    from edge_agent.agent import Agent

log = logging.getLogger(__name__)
CHECK_EVERY_S = 0.2  # how often a trial looks at the new buses' devices


class Reconfigurer:
    """One agent's revisions from the centre (see the module docstring)."""

    def __init__(self, agent: Agent, data_dir: Path, gateway: str) -> None:
        self.agent, self.gateway = agent, gateway
        self.path = data_dir / f"{gateway}.config.json"
        self.applied: dict[str, Any] | None = None  # {"rev", "sha256", "slice"}
        self.refused: dict[str, Any] | None = None  # {"rev", "error"}
        self.restart: list[str] = []
        self.base = ""  # the digest of the local config's own slice (restore sets it)
        self._lock = asyncio.Lock()
        self._load()

    @property
    def last_rev(self) -> int:
        return max(r["rev"] if r else 0 for r in (self.applied, self.refused))

    @property
    def applied_rev(self) -> int | None:
        return self.applied["rev"] if self.applied else None

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s unreadable (%s): running on the local config", self.path, exc)
            return
        if isinstance(doc, dict):
            self.applied, self.refused = doc.get("applied"), doc.get("refused")

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"applied": self.applied, "refused": self.refused}))
        with open(tmp, "rb+") as f:  # the rename below must not outrun the data (power cut)
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def restore(
        self, cfg: SiteConfig, profiles: ProfileRegistry
    ) -> tuple[SiteConfig, ProfileRegistry]:
        """``cfg`` with the last revision applied, if there is one, it was applied over this
        same local config, and it still checks. A local config that changed since (a new
        bundle installed, an edit on site) wins: the revision is forgotten, and taken up
        again over it when the hub's retained copy arrives."""
        self.base = digest(slice_text(gateway_slice(cfg, self.gateway, profiles)))
        if self.applied is None:
            return cfg, profiles
        if self.applied.get("base") != self.base:
            log.info(
                "the local config changed since config revision %s was applied: running on it",
                self.applied.get("rev"),
            )
            self.applied = self.refused = None
            return cfg, profiles
        try:
            doc = _parse(self.applied["slice"])
            out = apply_slice(cfg, self.gateway, doc, profiles)
        except (SliceError, ProtocolError, KeyError, TypeError) as exc:
            log.warning(
                "config revision %s kept in %s does not apply (%s): running on the local config",
                self.applied.get("rev"),
                self.path,
                exc,
            )
            self.applied = None
            return cfg, profiles
        log.info("running on config revision %d from the centre", self.applied["rev"])
        return out

    async def on_revision(self, rev: Revision) -> ConfigAck | None:
        """Try ``rev``; the answer to send, or None for a revision older than the last."""
        async with self._lock:
            if rev.rev < self.last_rev:
                log.info("ignoring config revision %d: %d came after it", rev.rev, self.last_rev)
                return None
            if self.applied is not None and rev.rev == self.applied["rev"]:
                return ConfigAck(rev.rev, ok=True, restart=tuple(self.restart))
            if self.refused is not None and rev.rev == self.refused["rev"]:
                return ConfigAck(rev.rev, ok=False, error=self.refused["error"])
            ack = await self._try(rev)
            if ack.ok:
                self.refused = None
                self.applied = {
                    "rev": rev.rev,
                    "sha256": rev.sha256,
                    "slice": rev.text,
                    "base": self.base,  # the local config it was applied over
                }
                self.restart = list(ack.restart)
            else:
                self.refused = {"rev": rev.rev, "error": ack.error}
            self._save()
            return ack

    async def _try(self, rev: Revision) -> ConfigAck:
        agent = self.agent
        old_cfg, old_profiles = agent.cfg, agent.profiles
        try:
            new_cfg, new_profiles = apply_slice(
                old_cfg, self.gateway, _parse(rev.text), old_profiles
            )
        except (SliceError, ProtocolError) as exc:
            log.warning("config revision %d refused: %s", rev.rev, exc)
            return ConfigAck(rev.rev, ok=False, error=f"invalid: {exc}")
        changed = await agent.reconfigure(new_cfg, new_profiles)
        log.info(
            "config revision %d applied; buses started anew: %s",
            rev.rev,
            ", ".join(sorted(changed)) or "none",
        )
        failure = await self._prove(changed, new_cfg.agent.config_grace)
        if failure is not None:
            log.warning("config revision %d rolled back: %s", rev.rev, failure)
            await agent.reconfigure(old_cfg, old_profiles)
            return ConfigAck(rev.rev, ok=False, error=f"rolled back: {failure}")
        return ConfigAck(
            rev.rev, ok=True, restart=tuple(needs_restart(old_cfg, new_cfg, self.gateway))
        )

    async def _prove(self, buses: set[str], grace_s: float) -> str | None:
        """Wait until every Modbus bus in ``buses`` has a device that answered (None), or
        ``grace_s`` of the agent's clock ran out: then what failed, or None if the buses'
        devices have not all been polled yet (a poll interval longer than the grace)."""
        clock = self.agent.clock
        deadline = clock.monotonic() + grace_s
        while True:
            pollers = [p for p in self.agent.pollers if p.bus.id in buses]
            waiting = [p for p in pollers if not any(d.polls_ok for d in p.devices)]
            if not waiting:
                return None
            if clock.monotonic() >= deadline:
                failed = [p for p in waiting if any(d.polls for d in p.devices)]
                if not failed:
                    return None
                p = failed[0]
                errors = {d.last_error for d in p.devices if d.last_error}
                why = "; ".join(sorted(errors))[:300] or "no answer"
                return f"bus {p.bus.id}: no device answered in {grace_s:g}s ({why})"
            await clock.sleep(CHECK_EVERY_S)


def _parse(text: str) -> Any:
    return loads_bounded(text.encode(), max_bytes=MAX_CONFIG_BYTES, max_depth=32, what="slice")
