"""MQTT topics, versioned under one prefix.

``{prefix}/v1/gw/{gateway}/{kind}``, where kind is one of

========== ========= ======== ====== ==============================================
kind       direction QoS      retain payload
========== ========= ======== ====== ==============================================
telemetry  gw -> hub 1        no     a batch of readings with a sequence number
ack        hub -> gw 1        no     the batch sequence numbers the store committed
status     gw -> hub 1        yes    online / offline (offline is the last will)
health     gw -> hub 0        no     buffer depth, poll success, CPU temperature ...
config     hub -> gw 1        yes    the gateway's config bundle, with a revision
config/ack gw -> hub 1        no     revision applied, or the error
alerts     gw -> hub 1        no     alarms the gateway texted itself (edge fallback)
alerts/ack hub -> gw 1        no     the (id, revision) of the notices the hub stored
time       hub -> gw 0        no     a clock probe: a nonce and the hub's time
time/reply gw -> hub 0        no     the probe's times and the gateway's (timesync)
cmd        hub -> gw 1        no     a commissioning command: scan or read a bus
cmd/reply  gw -> hub 1        no     its result, or why it failed (commands)
========== ========= ======== ====== ==============================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from coldchain.protocol import VERSION

DEFAULT_PREFIX = "coldchain"
Kind = Literal[
    "telemetry",
    "ack",
    "status",
    "health",
    "config",
    "config/ack",
    "alerts",
    "alerts/ack",
    "time",
    "time/reply",
    "cmd",
    "cmd/reply",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class TopicError(ValueError):
    """A topic outside the protocol."""


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one prefix (``coldchain`` unless a deployment shares a broker)."""

    prefix: str = DEFAULT_PREFIX

    @property
    def root(self) -> str:
        return f"{self.prefix}/v{VERSION}/gw"

    def topic(self, gateway: str, kind: Kind) -> str:
        if not _ID.match(gateway):
            raise TopicError(f"gateway id {gateway!r} cannot be a topic level")
        return f"{self.root}/{gateway}/{kind}"

    def all(self, kind: Kind, *, share: str | None = None) -> str:
        """Subscription filter for ``kind`` of every gateway; ``share`` names a shared
        subscription group (``$share/<group>/...``) so several hub workers split the load."""
        base = f"{self.root}/+/{kind}"
        return f"$share/{share}/{base}" if share else base

    def stored(self) -> str:
        """The hubs' own topic of readings stored, for the alert leader
        (:mod:`coldchain.protocol.stored`); no gateway may publish or read it."""
        return f"{self.prefix}/v{VERSION}/hub/stored"

    def parse(self, topic: str) -> tuple[str, Kind]:
        """(gateway, kind) of a protocol topic; raise :class:`TopicError` otherwise."""
        head = self.root + "/"
        if not topic.startswith(head):
            raise TopicError(f"topic {topic!r} is not under {head}")
        gateway, _, kind = topic[len(head) :].partition("/")
        if not _ID.match(gateway) or kind not in KINDS:
            raise TopicError(f"topic {topic!r} is not a coldchain v{VERSION} topic")
        return gateway, kind
