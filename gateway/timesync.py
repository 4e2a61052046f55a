"""The hub's side of the clock exchange (:mod:`coldchain.protocol.timesync`): it probes each
online gateway every ``hub.clock_probe_interval`` and keeps, per gateway, the offset of the
exchange with the least delay among the last :data:`KEEP` (NTP's clock filter: the
quickest round trip is the least skewed by a queue on one way)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.timesync import decode_time_reply, encode_time_probe
from coldchain.protocol.topics import Topics

log = logging.getLogger(__name__)
KEEP = 8


@dataclass(frozen=True, slots=True)
class ClockSample:
    offset_ms: float  # the gateway's clock ahead of the hub's (negative: behind)
    delay_ms: int  # the exchange's round trip; the offset is known within half of it
    at_ms: int  # hub time of the reply


PENDING = 4  # unanswered probes kept per gateway (one a broker a round)


class ClockProbes:
    """Probes out, replies in, the best recent offset per gateway."""

    def __init__(self, topics: Topics, clock_ms: Callable[[], int]) -> None:
        self.topics, self.clock_ms = topics, clock_ms
        self._nonce = itertools.count(1)
        # gateway -> {nonce: t1}, the newest PENDING: with standby brokers one probe a round
        # goes out through each, and the gateway answers the one that reached it
        self._pending: dict[str, dict[int, int]] = {}
        self._samples: dict[str, deque[ClockSample]] = {}
        self.stray_replies = 0  # replies to no probe of ours (late, repeated or forged)

    def probe(self, gateway: str) -> tuple[str, bytes]:
        """A probe for ``gateway``, stamped now (the newest ``PENDING`` unanswered ones are
        kept)."""
        n, t1 = next(self._nonce), self.clock_ms()
        pending = self._pending.setdefault(gateway, {})
        pending[n] = t1
        while len(pending) > PENDING:
            del pending[min(pending)]
        return self.topics.topic(gateway, "time"), encode_time_probe(n, t1)

    def on_reply(self, gateway: str, payload: bytes) -> ClockSample | None:
        """A gateway's reply: the gateway's best recent offset, or None for a reply to no
        probe of ours. Raises :class:`ProtocolError` for a malformed one."""
        t4 = self.clock_ms()
        reply = decode_time_reply(payload)
        pending = self._pending.get(gateway, {})
        if pending.get(reply.n) != reply.t1:
            self.stray_replies += 1
            return None
        pending.clear()  # answered: the older probes' replies, if any, are late
        if reply.delay_ms(t4) < 0:
            raise ProtocolError("time reply: the gateway took longer than the round trip")
        samples = self._samples.setdefault(gateway, deque(maxlen=KEEP))
        samples.append(ClockSample(reply.offset_ms(t4), reply.delay_ms(t4), t4))
        return self.best(gateway)

    def best(self, gateway: str) -> ClockSample | None:
        """The recent exchange with the least delay (the latest among equals)."""
        samples = self._samples.get(gateway)
        if not samples:
            return None
        return min(reversed(samples), key=lambda s: s.delay_ms)

    def forget(self, gateway: str) -> None:
        """A gateway went offline: its samples may be from before a reboot."""
        self._pending.pop(gateway, None)
        self._samples.pop(gateway, None)

    async def run(
        self,
        publish: Callable[[str, bytes], Awaitable[None]],
        gateways: Callable[[], Iterable[str]],
        *,
        interval: float,
    ) -> None:
        """Probe ``gateways()`` every ``interval`` seconds (wall time: a round trip), until
        cancelled. QoS 0: a probe lost is replaced by the next one."""
        while True:
            for gw in gateways():
                topic, payload = self.probe(gw)
                await publish(topic, payload)
            await asyncio.sleep(interval)
