"""Polling the Modbus devices of one bus.

RS-485 is half duplex: one transaction at a time per line (the link keeps the inter-frame
silence, :mod:`edge_agent.rtu`). A TCP endpoint takes up to ``max_concurrent`` requests at
once. Devices are polled at their own interval from staggered start offsets so they do not
all fire together.

Errors are per block: a failed block marks only its points bad (with the reason) and the
rest of the device is still read. A timeout ends the device's turn (its other blocks would
time out too), so a silent device costs its neighbours at most one timeout per cycle. A
device that keeps failing is tried again every cycle while the line has room for it (half
its idle time, measured over the last minute, holds that device's timeout with those of the
others tried so: a sensor that recovers is read again within a cycle), and otherwise backed
off exponentially up to ``backoff_max``. An illegal-address reply
to a merged block splits it at a point boundary (remembered for the device) and the halves
are read at once. The loop survives anything: a broken link is closed and reopened with
backoff, for a PLC reboot or a USB adapter unplugged and replugged.

A device that gives no data (every block timed out, refused or garbled, or the link is down)
is logged once when it starts failing, with the error (bus, endpoint, unit id, block), and once
when it gives data again, with how long it was down and how many polls failed; the polls in
between are counted (health: ``failing_since_ms``, ``failed_polls``), not logged: a Pi writes
its log to an SD card.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from coldchain.clock import WALL, Clock
from coldchain.config.site import Device, RtuBus, TcpBus
from coldchain.durations import format_duration
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
BUSY_WINDOW_S = 60.0  # wall seconds over which a line's occupancy is measured
RECOVERY_SHARE = 0.5  # of a line's idle time, at most, spent trying failing devices each cycle


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
    failing_since_ms: int | None = None  # the first poll without data of the current failure
    failing_polls: int = 0  # polls without data since failing_since_ms
    failed_polls: int = 0  # polls without data, in all

    def __post_init__(self) -> None:
        self.replan()

    def count_poll(self, *, ok: bool, now_ms: int) -> bool:
        """Count a poll that gave data (``ok``) or none; True when it starts or ends a failure
        (the moments worth a log line). A failure's start and length stay until it ends."""
        if not ok:
            self.failed_polls += 1
            self.failing_polls += 1
            if self.failing_since_ms is None:
                self.failing_since_ms = now_ms
                return True
            return False
        if self.failing_since_ms is None:
            return False
        self.failing_since_ms, self.failing_polls = None, 0
        return True

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


class BusyMeter:
    """Seconds a line was held by turns that gave data, over the last :data:`BUSY_WINDOW_S`,
    summed per second: a few dozen numbers however many devices share the line (one entry
    per turn would be 60,000 for a thousand devices polled every second). Times are
    ``time.monotonic()`` seconds."""

    def __init__(self, window: float = BUSY_WINDOW_S, since: float | None = None) -> None:
        self.window = window
        self._buckets: deque[list[float]] = deque()  # [whole second, busy seconds in it]
        self._sum = 0.0
        self._since = time.monotonic() if since is None else since

    def add(self, start: float, end: float) -> None:
        """A turn held the line from ``start`` to ``end``."""
        second = float(int(end))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += end - start
        else:
            self._buckets.append([second, end - start])
        self._sum += end - start
        self._expire(end)

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] + 1.0 <= now - self.window:
            self._sum -= self._buckets.popleft()[1]
        if not self._buckets:
            self._sum = 0.0  # no rounding left behind

    def share(self, width: int = 1) -> float:
        """The share of the window (since the meter started, if that is shorter, and at least
        a second) that was busy, on ``width`` slots."""
        now = time.monotonic()
        self._expire(now)
        span = min(self.window, max(1.0, now - self._since))
        return min(1.0, max(0.0, self._sum) / (span * width))

    def __len__(self) -> int:
        return len(self._buckets)


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
        clock: Clock = WALL,
    ) -> None:
        self.bus, self.devices, self.sink = bus, list(devices), sink
        self.backoff_max = backoff_max
        self.link = link or ModbusLink(bus)
        self.link_failures = 0
        self._width = bus.max_concurrent if isinstance(bus, TcpBus) else 1
        self._slots = asyncio.Semaphore(self._width)
        self.clock = clock  # poll intervals, backoff and timestamps; the wire stays wall time
        self.busy = BusyMeter()  # wall seconds the line was held by turns that gave data
        self.probing: set[str] = set()  # failing devices tried every cycle: the line has room
        start = clock.monotonic()
        for i, d in enumerate(self.devices):  # stagger first polls across one interval
            d.next_due = start + d.device.poll_interval * i / max(len(self.devices), 1)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The bus to oneself (a commissioning command): the polls in progress finish, the
        next wait until the block is left; the link is closed on the way in, so another
        client may open the port, and the poller opens it again when it next polls."""
        slots = self.bus.max_concurrent if isinstance(self.bus, TcpBus) else 1
        held = 0
        try:
            for _ in range(slots):
                await self._slots.acquire()
                held += 1
            self.link.close()
            yield
        finally:
            self.link.close()
            for _ in range(held):
                self._slots.release()

    async def run(self) -> None:
        """Poll every device as it falls due; never returns."""
        async with asyncio.TaskGroup() as tg:
            for d in self.devices:
                tg.create_task(self._device_loop(d), name=f"poll-{self.bus.id}-{d.device.id}")

    async def _device_loop(self, d: DeviceState) -> None:
        while True:
            await self.clock.sleep(max(0.0, d.next_due - self.clock.monotonic()))
            async with self._slots:  # RTU: the line is ours alone; TCP: bounded
                await self._turn(d)

    async def _turn(self, d: DeviceState) -> None:
        started, wall = self.clock.monotonic(), time.monotonic()
        try:
            outcome = await self.poll_device(d)
        except Exception as exc:  # the loop must survive anything a device does
            d.last_error, outcome = f"internal error: {exc}", "silent"
            if d.count_poll(ok=False, now_ms=self.clock.now_ms()):
                log.exception("%s: polling failed; quiet until it gives data again", d.device.id)
        interval = d.device.poll_interval
        if outcome == "ok":
            self.busy.add(wall, time.monotonic())
            self.probing.discard(d.device.id)
            d.failures = 0
            d.next_due = max(d.next_due + interval, started)
            return
        d.failures += 1
        if outcome == "silent" and self._room_to_try(d.device.id):
            self.probing.add(d.device.id)  # found again within a cycle of answering again
            d.next_due = max(d.next_due + interval, started)
            return
        self.probing.discard(d.device.id)
        cap = max(self.backoff_max, interval)
        if outcome == "link":  # the line or endpoint, not the device: try again sooner
            cap = min(cap, max(LINK_RETRY_MAX, interval))
        d.next_due = self.clock.monotonic() + min(interval * 2 ** (d.failures - 1), cap)

    def occupancy(self) -> float:
        """The share of the line's time (of its slots', on TCP) the devices that answer
        took, over the last minute (or since the poller started)."""
        return self.busy.share(self._width)

    def _room_to_try(self, device: str) -> bool:
        """Whether a failing ``device`` may be tried again next cycle: its timeout, with those
        of the other failing devices tried so, fits in half the idle time of the shortest
        cycle on the line."""
        cycle = self.clock.to_wall(min(d.device.poll_interval for d in self.devices))
        idle = cycle * self._width * (1.0 - self.occupancy())
        allowed = int(idle * RECOVERY_SHARE // max(self.bus.timeout, 1e-3))
        return len(self.probing - {device}) < allowed

    async def poll_device(self, d: DeviceState) -> Outcome:
        """Read every block of ``d`` once and emit the readings; say how it went."""
        d.polls += 1
        out: list[tuple[Reading, PointKind]] = []
        pending = list(d.blocks)
        answered, link_down, got_data = False, False, not pending
        first: ReadError | None = None
        while pending:
            block = pending.pop(0)
            try:
                data = await self._read(d, block)
            except ReadError as err:
                d.last_error = err.summary
                if err.kind == "exception" and err.code == 2 and d.learn_split(block):
                    log.info("%s: illegal address in %s; splitting", d.device.id, block)
                    names = {p.name for p in block.points}
                    halves = [b for b in d.blocks if names & {p.name for p in b.points}]
                    pending = halves + pending
                    continue
                first = first or err
                answered = answered or err.kind in ("exception", "garbage")
                out += self._bad(d, block.points, err.reason)
                if err.kind in ("timeout", "link"):
                    link_down = err.kind == "link"
                    rest = [p for b in pending for p in b.points]
                    out += self._bad(d, rest, err.reason)
                    break
                continue
            answered = got_data = True
            out += self._decode(d, block, data, self.clock.now_ms())
        if answered:
            d.polls_ok += 1
        self._log_change(d, got_data, first)
        self.sink(out)
        return "ok" if answered else ("link" if link_down else "silent")

    def _log_change(self, d: DeviceState, got_data: bool, error: ReadError | None) -> None:
        """One line when ``d`` starts giving no data, one when it gives data again."""
        since = d.failing_since_ms
        failed = d.failing_polls
        if not d.count_poll(ok=got_data, now_ms=self.clock.now_ms()):
            return
        if not got_data:
            why = error.summary if error is not None else d.last_error
            log.warning(
                "%s: no data: %s; retried each cycle while the line has room, else with backoff; "
                "logged again when it gives data",
                d.device.id,
                why,
            )
            return
        assert since is not None
        down = max(0.0, (self.clock.now_ms() - since) / 1000)
        log.info(
            "%s: gives data again after %s and %d failed poll%s; last error: %s",
            d.device.id,
            format_duration(round(down)) if down >= 1 else f"{down:.1f}s",
            failed,
            "" if failed == 1 else "s",
            d.last_error,
        )

    async def _read(self, d: DeviceState, block: Block) -> list[int] | list[bool]:
        assert d.device.unit_id is not None  # checked by the config
        req = Request(block.table, block.start, block.count, d.device.unit_id)
        d.requests += 1
        return await self.link.read(req)  # on RS-485 the link keeps the silence between frames

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
        ts = self.clock.now_ms()
        return [(Reading(d.series[p.name], ts, None, Quality.BAD, reason), p.kind) for p in points]
