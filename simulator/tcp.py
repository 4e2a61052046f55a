"""Modbus TCP slaves: one server per TCP bus on 127.0.0.1 (a free port), with the bus's
devices behind it by unit id, like a PLC or a TCP-to-RTU gateway.

MBAP framing (transaction id echoed, protocol 0). A unit id nobody has gets exception 0x0B
(gateway target device failed to respond), as a TCP-to-RTU gateway answers; if the bus has
a single device, unit 0 and 255 reach it (a PLC ignores the unit id). A silent device gives
no reply; garbage is random bytes. ``link_down`` of the gateway closes the listener and
every connection (connections are refused) until the fault is cleared; the port is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct

from coldchain.config.site import TcpBus
from simulator.device import SimDevice
from simulator.faults import FaultKind, FaultSet
from simulator.pdu import ExceptionCode, exception_pdu, handle

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


class TcpBusServer:
    """All devices of one Modbus TCP bus behind one endpoint."""

    def __init__(
        self,
        *,
        gateway: str,
        bus: TcpBus,
        devices: list[SimDevice],
        faults: FaultSet,
        rng: random.Random,
    ) -> None:
        self.gateway, self.bus, self.devices, self.faults = gateway, bus, devices, faults
        self._rng = rng
        self.host = HOST
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests = 0

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def set_up(self, up: bool) -> None:
        """Listen (the link is up) or refuse connections (link down)."""
        if up and self._server is None:
            await self.start()
        elif not up and self._server is not None:
            await self.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._writers):
            w.close()
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                await w.wait_closed()
        self._writers.clear()

    def _device(self, unit: int) -> SimDevice | None:
        for dev in self.devices:
            if dev.unit_id == unit:
                return dev
        if unit in (0, 255) and len(self.devices) == 1:
            return self.devices[0]
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(7)
                tid, proto, length, unit = struct.unpack(">HHHB", header)
                if proto != 0 or not 2 <= length <= 254:
                    log.debug("tcp %s: bad MBAP header %s", self.bus.id, header.hex())
                    break
                pdu = await reader.readexactly(length - 1)
                reply = self.respond(tid, unit, pdu)
                if reply is None:
                    continue
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # a bug must not kill the server
            log.exception("tcp %s/%s: connection failed", self.gateway, self.bus.id)
        finally:
            self._writers.discard(writer)
            writer.close()

    def respond(self, tid: int, unit: int, pdu: bytes) -> bytes | None:
        """The bytes sent back for a request to ``unit`` (None: no reply)."""
        self.requests += 1
        fc = pdu[0] if pdu else 0
        dev = self._device(unit)
        if dev is None:
            reply = exception_pdu(fc, ExceptionCode.GATEWAY_TARGET_FAILED)
        else:
            fault = self.faults.wire_fault(dev.key, self.gateway)
            kind = fault.kind if fault is not None else None
            if kind is FaultKind.SILENT:
                return None
            if kind is FaultKind.GARBAGE:
                return bytes(self._rng.randrange(256) for _ in range(9))
            if fault is not None and kind is FaultKind.EXCEPTION:
                reply = exception_pdu(fc, fault.code or ExceptionCode.SERVER_DEVICE_FAILURE)
            else:
                reply = handle(dev, pdu)
        return struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply
