"""The request planner (pure): the fewest Modbus requests that read a device's points.

Points of one table are sorted by address and merged greedily into blocks. A point joins the
open block when

* the hole between the block's end and the point is at most ``fill`` registers (or bits),
* the block stays within the request limit (125 registers / 2000 bits, or the device's own
  lower limit),
* the block would not span an address the profile marks unreadable, nor a barrier the agent
  learned from an illegal-address reply.

Each condition holds for every sub-run of a feasible run, so extending the open block as far
as it goes is optimal: no partition of the sorted points into feasible runs has fewer runs
(the classic exchange argument). Sorting makes it O(n log n) for n points: each candidate
block is checked against the fences by binary search (a prefix maximum over the unreadable
ranges' ends, sorted barriers). ``optimal_request_count`` is an O(n^3) dynamic programme
(every partition into runs, each run checked in linear time) kept for tests and benchmarks
to prove the point.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from coldchain.profiles.schema import AddressRange, ModbusPoint, Table

MAX_REGISTERS = 125  # Modbus spec: FC03/FC04 read at most 125 registers
MAX_BITS = 2000  # Modbus spec: FC01/FC02 read at most 2000 bits


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: a contiguous address range of one table and the points in it."""

    table: Table
    start: int
    count: int
    points: tuple[ModbusPoint, ...]

    @property
    def end(self) -> int:
        return self.start + self.count

    def __str__(self) -> str:
        names = ",".join(p.name for p in self.points)
        return f"{self.table} {self.start}..{self.end - 1} ({self.count}) [{names}]"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a device allows in one request, and how much hole to read to save a request."""

    fill_registers: int = 8
    fill_bits: int = 64
    max_registers: int = MAX_REGISTERS
    max_bits: int = MAX_BITS
    unreadable: tuple[AddressRange, ...] = ()
    # Learned from illegal-address replies: a block may not hold both ``a - 1`` and ``a``.
    barriers: frozenset[tuple[Table, int]] = field(default_factory=frozenset)

    def fill(self, table: Table) -> int:
        return self.fill_bits if table.is_bits else self.fill_registers

    def limit(self, table: Table) -> int:
        return (
            min(self.max_bits, MAX_BITS)
            if table.is_bits
            else min(self.max_registers, MAX_REGISTERS)
        )


class _Fences:
    """Per-table sorted walls a block may not span: unreadable ranges and barriers."""

    def __init__(self, limits: Limits, table: Table) -> None:
        ranges = sorted((r.start, r.end) for r in limits.unreadable if r.table == table)
        self._starts = [s for s, _ in ranges]
        # _reach[i]: the furthest end among the first i + 1 ranges (they may nest)
        self._reach = list(itertools.accumulate((e for _, e in ranges), max))
        self._barriers = sorted(a for t, a in limits.barriers if t == table)

    def blocks(self, start: int, end: int) -> bool:
        """True if the range [start, end) touches an unreadable address or spans a barrier."""
        i = bisect.bisect_left(self._starts, end)  # ranges starting before ``end``
        if i and self._reach[i - 1] >= start:
            return True
        j = bisect.bisect_right(self._barriers, start)
        return j < len(self._barriers) and self._barriers[j] < end


@dataclass(frozen=True, slots=True)
class _Cluster:
    """Points of one table whose addresses overlap: they can only be read together."""

    start: int
    end: int
    points: tuple[ModbusPoint, ...]


def _clusters(points: Iterable[ModbusPoint], limit: int) -> dict[Table, list[_Cluster]]:
    by_table: dict[Table, list[_Cluster]] = {}
    for p in sorted(points, key=lambda p: (p.table, p.address, p.end)):
        cs = by_table.setdefault(p.table, [])
        last = cs[-1] if cs else None
        if last is not None and p.address < last.end and max(last.end, p.end) - last.start <= limit:
            cs[-1] = _Cluster(last.start, max(last.end, p.end), (*last.points, p))
        else:
            cs.append(_Cluster(p.address, p.end, (p,)))
    return by_table


def _feasible(cs: Sequence[_Cluster], fill: int, limit: int, fences: _Fences) -> bool:
    """Can clusters ``cs`` (consecutive, sorted) be read in one request?"""
    start, end = cs[0].start, max(c.end for c in cs)
    gaps_ok = all(b.start - a.end <= fill for a, b in itertools.pairwise(cs))
    return gaps_ok and end - start <= limit and not fences.blocks(start, end)


def plan(points: Sequence[ModbusPoint], limits: Limits | None = None) -> list[Block]:
    """The fewest requests reading ``points`` (of one device) under ``limits``."""
    limits = limits or Limits()
    blocks: list[Block] = []
    for table, clusters in _clusters(points, MAX_BITS).items():
        fences, fill, limit = _Fences(limits, table), limits.fill(table), limits.limit(table)
        run = [clusters[0]]
        for c in clusters[1:]:
            end = max(run[-1].end, c.end)
            if (
                c.start - run[-1].end <= fill
                and end - run[0].start <= limit
                and not fences.blocks(run[0].start, end)
            ):
                run.append(c)
                continue
            blocks.append(_block(table, run))
            run = [c]
        blocks.append(_block(table, run))
    return blocks


def _block(table: Table, run: Sequence[_Cluster]) -> Block:
    start, end = run[0].start, max(c.end for c in run)
    return Block(table, start, end - start, tuple(p for c in run for p in c.points))


def optimal_request_count(points: Sequence[ModbusPoint], limits: Limits | None = None) -> int:
    """The minimum number of requests, by exhaustive dynamic programming over every
    partition into runs (O(n^3)); for tests and benchmarks, not for the agent."""
    limits = limits or Limits()
    total = 0
    for table, cs in _clusters(points, MAX_BITS).items():
        fences, fill, limit = _Fences(limits, table), limits.fill(table), limits.limit(table)
        n = len(cs)
        best = [0] + [n + 1] * n  # best[j]: fewest requests for the first j clusters
        for j in range(1, n + 1):
            for i in range(1, j + 1):
                if _feasible(cs[i - 1 : j], fill, limit, fences):
                    best[j] = min(best[j], best[i - 1] + 1)
        total += best[n]
    return total


def split_block(block: Block) -> tuple[Table, int] | None:
    """Where to split a block an illegal-address reply refused, as a barrier: before the
    point that follows the block's widest hole (an unmapped gap is the likely culprit), or at
    the middle point boundary of a block without holes. None when it cannot be split (a
    single point: that point itself is unreadable)."""
    points = sorted(block.points, key=lambda p: (p.address, p.end))
    best: tuple[int, int] | None = None  # (hole width, address after it)
    end = points[0].end
    for p in points[1:]:
        if p.address >= end and (best is None or p.address - end > best[0]):
            best = (p.address - end, p.address)
        end = max(end, p.end)
    if best is None:
        return None
    if best[0] > 0:
        return (block.table, best[1])
    starts = sorted({p.address for p in points if p.address > block.start})
    return (block.table, starts[(len(starts) - 1) // 2])
