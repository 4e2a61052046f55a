"""Modbus RTU slaves on a pseudo-terminal: one pty per RS-485 bus, several unit ids on it.

The simulator holds the master side of the pty; the agent opens the slave path
(``/dev/pts/N``) with pyserial as if it were a USB RS-485 adapter. Like a real bus:

* frames carry a CRC-16; a frame with a bad CRC is dropped, and the framer hunts for the
  next good frame after garbage; an unknown function code ends at the inter-frame silence;
* a request for a unit id nobody has gets no answer (silence), broadcasts (unit 0) are
  executed without a reply; a device answers only a master at its own baud (read from the
  client's termios on the pty), so a client at the wrong rate gets silence and a device
  re-configured to another baud answers at that baud;
* a reply is sent when it would have finished arriving on the wire: after the request and
  the reply at the bus's baud (1 start, 8 data, parity, stop bits per character) plus 3.5
  characters of turnaround, so a slow bus is slow; plus the device's own ``latency`` (0
  unless a test sets it: real devices take milliseconds to tens of them to start answering);
* fault injection works on the frame: silence, an exception reply, garbage, a bad CRC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import termios
import time
import tty

from coldchain.config.site import RtuBus
from coldchain.rtu import char_time, crc16, frame_gap
from coldchain.rtu import frame as rtu_frame
from simulator.device import SimDevice
from simulator.faults import FaultKind, FaultSet
from simulator.pdu import exception_pdu, handle, request_length

log = logging.getLogger(__name__)
_SPEEDS = {
    getattr(termios, f"B{b}"): b
    for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{b}")
}


class RtuFramer:
    """Splits the bytes a slave receives into request frames (address + PDU, CRC checked)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.dropped = 0  # bytes thrown away while hunting

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while len(self.buf) >= 4:
            n = self._length_at(0)
            if n is None:  # an unknown function: it ends where the next good frame starts
                i = self._next_frame()
                if i is None:
                    break  # ... or at the silence (see flush)
                out += self._take_unknown(i)
                continue
            if n < 0 or len(self.buf) < n:
                break
            if crc16(bytes(self.buf[: n - 2])) == self.buf[n - 2 : n]:
                out.append(bytes(self.buf[: n - 2]))
                del self.buf[:n]
            else:
                del self.buf[0]
                self.dropped += 1
        return out

    def _length_at(self, i: int) -> int | None:
        """Frame length of a request starting at ``i``: None for an unknown function, -1
        when more bytes are needed to tell."""
        head = bytes(self.buf[i + 1 : i + 7])
        if head[0] in (15, 16) and len(head) < 6:
            return -1
        pdu_len = request_length(head)
        return None if pdu_len is None else 1 + pdu_len + 2

    def _next_frame(self) -> int | None:
        for i in range(1, len(self.buf) - 3):
            n = self._length_at(i)
            if n is not None and n > 0 and i + n <= len(self.buf):
                frame = bytes(self.buf[i : i + n])
                if crc16(frame[:-2]) == frame[-2:]:
                    return i
        return None

    def _take_unknown(self, end: int) -> list[bytes]:
        head = bytes(self.buf[:end])
        del self.buf[:end]
        if len(head) >= 4 and crc16(head[:-2]) == head[-2:]:
            return [head[:-2]]
        self.dropped += len(head)
        return []

    def flush(self) -> list[bytes]:
        """The line went silent: what is buffered is one frame, or garbage."""
        data, self.buf = bytes(self.buf), bytearray()
        if len(data) >= 4 and crc16(data[:-2]) == data[-2:]:
            return [data[:-2]]
        self.dropped += len(data)
        return []


def bus_char_time(bus: RtuBus, baud: int | None = None) -> float:
    """Seconds a character takes on ``bus`` (at ``baud`` if given, the rate the master set)."""
    return char_time(baud or bus.baud, bus.parity, bus.stop_bits)


class RtuBusServer:
    """All devices of one RS-485 bus, served on the master side of a pty."""

    def __init__(
        self,
        *,
        gateway: str,
        bus: RtuBus,
        devices: list[SimDevice],
        faults: FaultSet,
        rng: random.Random,
    ) -> None:
        self.gateway, self.bus, self.devices, self.faults = gateway, bus, devices, faults
        self._rng = rng
        self.char_time = bus_char_time(bus)
        self.gap = frame_gap(bus.baud, bus.parity, bus.stop_bits)
        self._framer = RtuFramer()
        self._queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        self._master = self._slave = -1
        self.path = ""
        self._silence: asyncio.TimerHandle | None = None
        self._worker: asyncio.Task[None] | None = None
        self.requests = self.replies = 0
        # Seconds the replies went out after the moment the wire would have delivered them
        # (asyncio's timers wake on whole milliseconds): a benchmark of a master on this bus
        # subtracts it (bench/bench_rtu.py).
        self.late = 0.0

    async def start(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # binary, no echo, until the client sets its own modes
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        loop = asyncio.get_running_loop()
        loop.add_reader(self._master, self._readable)
        self._worker = asyncio.create_task(self._serve(), name=f"rtu {self.gateway}/{self.bus.id}")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._silence is not None:
            self._silence.cancel()
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: nobody holds the slave side (cannot happen while we do)
            return
        now = time.monotonic()
        for frame in self._framer.feed(data):
            self._queue.put_nowait((frame, now))
        if self._silence is not None:
            self._silence.cancel()
            self._silence = None
        if self._framer.buf:
            # Wait a little longer than t3.5: a pty delivers in chunks, not in bit times.
            self._silence = asyncio.get_running_loop().call_later(max(self.gap, 0.01), self._flush)

    def _flush(self) -> None:
        self._silence = None
        now = time.monotonic()
        for frame in self._framer.flush():
            self._queue.put_nowait((frame, now))

    def line_baud(self) -> int | None:
        """The baud the client set on its end of the pty (None: not a standard rate).

        A device only understands a master talking at its own baud, like on a real line: a
        client at the wrong rate gets silence, and after commissioning a new baud the device
        answers at that baud. (Parity cannot be told: Linux ptys drop the parity flags.)"""
        try:
            attrs = termios.tcgetattr(self._slave)
        except termios.error:
            return None
        return _SPEEDS.get(attrs[5])

    def _device(self, unit: int, baud: int) -> SimDevice | None:
        for dev in self.devices:
            if dev.unit_id == unit and dev.baud == baud:
                return dev
        return None

    async def _serve(self) -> None:
        while True:
            frame, received = await self._queue.get()
            try:
                reply = self.reply_to(frame)
            except Exception:  # a bug must not kill the bus
                log.exception("bus %s/%s: request %s", self.gateway, self.bus.id, frame.hex())
                continue
            if reply is None:
                continue
            char = bus_char_time(self.bus, self.line_baud())
            wire = (len(frame) + 2 + len(reply)) * char + 3.5 * char
            dev = next((d for d in self.devices if d.unit_id == frame[0]), None)
            latency = dev.latency if dev is not None else 0.0
            due = received + wire + latency
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            try:
                os.write(self._master, reply)
                self.late += max(0.0, time.monotonic() - due)
                self.replies += 1
            except OSError as exc:  # a full pty: nobody reads, like bytes on an idle line
                log.debug("bus %s/%s: reply dropped: %s", self.gateway, self.bus.id, exc)

    def reply_to(self, frame: bytes) -> bytes | None:
        """The bytes the bus carries back for a request frame (address + PDU), or None."""
        self.requests += 1
        unit, pdu = frame[0], frame[1:]
        baud = (self.line_baud() if self._slave >= 0 else None) or self.bus.baud
        if unit == 0:  # broadcast: every device executes a write, nobody answers
            if pdu and pdu[0] in (5, 6, 15, 16):
                for each in self.devices:
                    if each.baud == baud:
                        handle(each, pdu)
            return None
        dev = self._device(unit, baud)
        if dev is None:
            return None
        fault = self.faults.wire_fault(dev.key, self.gateway)
        kind = fault.kind if fault is not None else None
        if kind is FaultKind.SILENT:
            return None
        if kind is FaultKind.EXCEPTION and fault is not None:
            return rtu_frame(unit, exception_pdu(pdu[0] if pdu else 0, fault.code or 4))
        reply = rtu_frame(unit, handle(dev, pdu))
        if kind is FaultKind.GARBAGE:
            junk = bytes(self._rng.randrange(256) for _ in range(self._rng.randint(3, 12)))
            return junk if crc16(junk[:-2]) != junk[-2:] else junk + b"\x00"
        if kind is FaultKind.BAD_CRC:
            return reply[:-2] + bytes(b ^ 0xA5 for b in reply[-2:])
        return reply
