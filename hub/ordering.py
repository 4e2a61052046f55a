"""The alert leader judges each gateway's batches in the order the gateway took them, whichever
ingest worker stored each (``hub.share_group``: the broker hands a gateway's consecutive
batches to different workers, and one that lags delivers its share late).

The evaluator skips a reading older than one it already judged for its series, as it must
for one stream; so a batch is judged only after the batch before it (by the gateway's outbox
sequence number, within one outbox epoch). A batch that arrives ahead of its turn is held,
until the missing one comes or :data:`HOLD_MS` passes (a batch the gateway dropped, or one
rejected and sent again much later): then the held ones are judged in order and the missing
one, if it comes after all, is judged late (its readings older than those judged are
skipped, as before). A batch stored again (a resend) is judged again: its readings are
older than those judged, and skipped. The first batch the leader sees of a gateway sets the
order's start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from coldchain.protocol.stored import Stored
from coldchain.reading import Reading

HOLD_MS = 30_000
"""How long a batch waits for the one before it (the alerts it shows are that much later)."""


@dataclass(slots=True)
class _Gateway:
    epoch: str
    next: int  # the sequence number judged next
    held: dict[int, tuple[list[Reading], int]] = field(default_factory=dict)  # seq: (r, since)


@dataclass(slots=True)
class OrderStats:
    in_order: int = 0  # batches judged on arrival
    held: int = 0  # batches that waited for an earlier one
    late: int = 0  # batches judged after later ones (came after their turn was given up)
    gaps: int = 0  # turns given up after HOLD_MS


class GatewayOrder:
    """Batches to ``judge`` in each gateway's order (see the module docstring)."""

    def __init__(self, judge: Callable[[list[Reading]], None], *, hold_ms: int = HOLD_MS) -> None:
        self.judge, self.hold_ms = judge, hold_ms
        self._gateways: dict[str, _Gateway] = {}
        self.stats = OrderStats()

    def add(self, batch: Stored, now_ms: int) -> None:
        gw = self._gateways.get(batch.gateway)
        if gw is None or gw.epoch != batch.epoch:  # new, or its outbox was made anew
            if gw is not None:
                self._release(gw, everything=True)
            gw = self._gateways[batch.gateway] = _Gateway(batch.epoch, batch.seq)
        if batch.seq < gw.next:
            self.stats.late += 1
            self.judge(batch.readings)
        elif batch.seq == gw.next:
            self.stats.in_order += 1
            self.judge(batch.readings)
            gw.next += 1
            self._release(gw)
        else:
            self.stats.held += 1
            earlier = gw.held.get(batch.seq)
            readings = batch.readings if earlier is None else [*earlier[0], *batch.readings]
            gw.held[batch.seq] = (readings, now_ms if earlier is None else earlier[1])
        self.expire(now_ms)

    def _release(self, gw: _Gateway, *, everything: bool = False) -> None:
        """Judge the held batches that are next in turn (all of them, in order, with
        ``everything``)."""
        while gw.held:
            if gw.next not in gw.held:
                if not everything:
                    return
                gw.next = min(gw.held)
            readings, _ = gw.held.pop(gw.next)
            self.judge(readings)
            gw.next += 1

    def expire(self, now_ms: int) -> None:
        """Give up waiting where the oldest held batch has waited :attr:`hold_ms`: judge
        from it on."""
        for gw in self._gateways.values():
            while gw.held and now_ms - min(since for _, since in gw.held.values()) >= self.hold_ms:
                self.stats.gaps += 1
                gw.next = min(gw.held)
                self._release(gw)

    def waiting(self) -> int:
        """Batches held now."""
        return sum(len(gw.held) for gw in self._gateways.values())
