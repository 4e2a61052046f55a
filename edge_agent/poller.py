"""Polling the Modbus devices of one bus.

RS-485 is half duplex: one transaction at a time per line, with the inter-frame gap kept
between frames. A TCP endpoint takes up to ``max_concurrent`` requests at once. Devices are
polled at their own interval from staggered start offsets so they do not all fire together.

Errors are per block: a failed block marks only its points bad (with the reason) and the
rest of the device is still read. A timeout ends the device's turn (its other blocks would
time out too), so a silent device costs its neighbours at most one timeout per cycle; a device
that keeps failing is backed off exponentially up to ``backoff_max``. An illegal-address reply
to a merged block splits it at a point boundary (remembered for the device) and the halves
are read at once. The loop survives anything: a broken link is closed and reopened with
backoff, for a PLC reboot or a USB adapter unplugged and replugged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from coldchain.config.site import Device, RtuBus, TcpBus
from coldchain.profiles.codec import decode_bit, decode_words
from coldchain.profiles.schema import ModbusPoint, ModbusProfile, PointKind, Table
from coldchain.reading import Quality, Reading, SeriesId
from edge_agent.calibration import to_reading
from edge_agent.modbus_io import ModbusLink, ReadError, Request
from edge_agent.planner import Block, Limits, plan, split_block

log = logging.getLogger(__name__)

Sink = Callable[[list[tuple[Reading, PointKind]]], None]
Outcome = Literal["ok", "silent", "link"]
LINK_RETRY_MAX = 30.0  # a rebooted PLC or a replugged adapter is retried at least this often


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class DeviceState:
    """A Modbus device as the poller knows it."""

    device: Device
    profile: ModbusProfile
    series: dict[str, SeriesId]
    limits: Limits
    points: list[ModbusPoint]
    blocks: list[Block] = field(default_factory=list)
    next_due: float = 0.0
    failures: int = 0
    polls: int = 0
    polls_ok: int = 0
    requests: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        self.replan()

    def replan(self) -> None:
        self.blocks = plan(self.points, self.limits)

    def learn_split(self, block: Block) -> bool:
        """Remember a split of ``block``; False if it cannot be split further."""
        barrier = split_block(block)
        if barrier is None:
            return False
        self.limits = Limits(
            fill_registers=self.limits.fill_registers,
            fill_bits=self.limits.fill_bits,
            max_registers=self.limits.max_registers,
            max_bits=self.limits.max_bits,
            unreadable=self.limits.unreadable,
            barriers=self.limits.barriers | {barrier},
        )
        self.replan()
        return True


def device_state(
    device: Device,
    profile: ModbusProfile,
    *,
    site: str,
    gateway: str,
    fill_registers: int,
    fill_bits: int,
) -> DeviceState:
    enabled = [
        p
        for p in profile.points
        if device.points.get(p.name) is None or device.points[p.name].enabled
    ]
    series = {p.name: SeriesId(site, gateway, device.id, p.name) for p in enabled}
    limits = Limits(
        fill_registers=fill_registers,
        fill_bits=fill_bits,
        max_registers=min(profile.max_registers, device.max_registers or 125),
        max_bits=profile.max_bits,
        unreadable=tuple(profile.unreadable),
    )
    return DeviceState(device, profile, series, limits, enabled)


class BusPoller:
    """Polls every device of one bus, forever."""

    def __init__(
        self,
        bus: RtuBus | TcpBus,
        devices: Sequence[DeviceState],
        sink: Sink,
        *,
        backoff_max: float = 300.0,
        link: ModbusLink | None = None,
    ) -> None:
        self.bus, self.devices, self.sink = bus, list(devices), sink
        self.backoff_max = backoff_max
        self.link = link or ModbusLink(bus)
        self.link_failures = 0
        self._gap = bus.frame_gap if isinstance(bus, RtuBus) else 0.0
        self._slots = asyncio.Semaphore(bus.max_concurrent if isinstance(bus, TcpBus) else 1)
        start = time.monotonic()
        for i, d in enumerate(self.devices):  # stagger first polls across one interval
            d.next_due = start + d.device.poll_interval * i / max(len(self.devices), 1)

    async def run(self) -> None:
        """Poll every device as it falls due; never returns."""
        async with asyncio.TaskGroup() as tg:
            for d in self.devices:
                tg.create_task(self._device_loop(d), name=f"poll-{self.bus.id}-{d.device.id}")

    async def _device_loop(self, d: DeviceState) -> None:
        while True:
            await asyncio.sleep(max(0.0, d.next_due - time.monotonic()))
            async with self._slots:  # RTU: the line is ours alone; TCP: bounded
                await self._turn(d)

    async def _turn(self, d: DeviceState) -> None:
        started = time.monotonic()
        try:
            outcome = await self.poll_device(d)
        except Exception as exc:  # the loop must survive anything a device does
            log.exception("polling %s failed", d.device.id)
            d.last_error, outcome = f"internal error: {exc}", "silent"
        interval = d.device.poll_interval
        if outcome == "ok":
            d.failures = 0
            d.next_due = max(d.next_due + interval, started)
            return
        d.failures += 1
        cap = max(self.backoff_max, interval)
        if outcome == "link":  # the line or endpoint, not the device: try again sooner
            cap = min(cap, max(LINK_RETRY_MAX, interval))
        d.next_due = time.monotonic() + min(interval * 2 ** (d.failures - 1), cap)

    async def poll_device(self, d: DeviceState) -> Outcome:
        """Read every block of ``d`` once and emit the readings; say how it went."""
        d.polls += 1
        out: list[tuple[Reading, PointKind]] = []
        answered, link_down = False, False
        pending = list(d.blocks)
        while pending:
            block = pending.pop(0)
            try:
                data = await self._read(d, block)
            except ReadError as err:
                d.last_error = str(err)
                if err.kind == "exception" and err.code == 2 and d.learn_split(block):
                    log.info("%s: illegal address in %s; splitting", d.device.id, block)
                    names = {p.name for p in block.points}
                    halves = [b for b in d.blocks if names & {p.name for p in b.points}]
                    pending = halves + pending
                    continue
                answered = answered or err.kind in ("exception", "garbage")
                out += self._bad(d, block.points, err.reason)
                if err.kind in ("timeout", "link"):
                    link_down = err.kind == "link"
                    rest = [p for b in pending for p in b.points]
                    out += self._bad(d, rest, err.reason)
                    break
                continue
            answered = True
            out += self._decode(d, block, data, now_ms())
        if answered:
            d.polls_ok += 1
        self.sink(out)
        return "ok" if answered else ("link" if link_down else "silent")

    async def _read(self, d: DeviceState, block: Block) -> list[int] | list[bool]:
        assert d.device.unit_id is not None  # checked by the config
        req = Request(block.table, block.start, block.count, d.device.unit_id)
        d.requests += 1
        try:
            return await self.link.read(req)
        finally:
            if self._gap:
                await asyncio.sleep(self._gap)

    def _decode(
        self, d: DeviceState, block: Block, data: list[int] | list[bool], ts: int
    ) -> list[tuple[Reading, PointKind]]:
        out = []
        for p in block.points:
            off = p.address - block.start
            dec = (
                decode_bit(p, bool(data[off]))
                if p.table in (Table.COIL, Table.DISCRETE)
                else decode_words(p, [int(w) for w in data[off : off + p.count]])
            )
            reading = to_reading(d.series[p.name], ts, dec, d.device.points.get(p.name))
            out.append((reading, p.kind))
        return out

    def _bad(
        self, d: DeviceState, points: Sequence[ModbusPoint], reason: str
    ) -> list[tuple[Reading, PointKind]]:
        ts = now_ms()
        return [(Reading(d.series[p.name], ts, None, Quality.BAD, reason), p.kind) for p in points]
