"""One Modbus connection (a TCP endpoint or an RS-485 line) behind a narrow interface.

On TCP pymodbus does the framing; on RS-485 the agent's own master does
(:mod:`edge_agent.rtu`: pymodbus's serial client cannot keep a line at its physical limit).
This module turns their failure shapes into one :class:`ReadError` with a kind
(``timeout``, ``exception``, ``garbage``, ``link``) and the context a technician needs (bus,
endpoint, unit id, table, address range). pymodbus's own reconnect and retries are off: the
poller supervises connections and decides what to retry.

pymodbus's log is kept to what the agent does not say itself (:class:`PymodbusNoise`): the
poller logs a device's failure once when it starts and once when it ends, so pymodbus's
error at every timeout, with the last 20 raw frames appended, would only fill a Pi's SD card.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Any, Literal

from coldchain.config.site import RtuBus, TcpBus
from coldchain.profiles.schema import Table
from coldchain.supervise import cancels, honour_cancellation
from edge_agent.rtu import NoReplyError, RtuLine

log = logging.getLogger(__name__)

PYMODBUS_LOGGER = "pymodbus.logging"
"""The one logger pymodbus logs through (``Log._logger`` in ``pymodbus/logging.py``)."""

ErrorKind = Literal["timeout", "exception", "garbage", "link"]
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target did not respond",
}


class ReadError(Exception):
    """A read that did not return data, with where and why."""

    def __init__(self, kind: ErrorKind, where: str, detail: str, code: int | None = None) -> None:
        super().__init__(f"{where}: {detail}")
        self.kind, self.where, self.detail, self.code = kind, where, detail, code

    @property
    def reason(self) -> str:
        """Short text for a bad reading's reason."""
        if self.kind == "exception":
            return f"exception {self.code}: {EXCEPTION_NAMES.get(self.code or 0, 'unknown')}"
        return {"timeout": "no reply", "garbage": "garbled reply", "link": "link down"}[self.kind]

    @property
    def message(self) -> str:
        """For a person running a command: where and why, or, for a link that cannot open,
        the port or endpoint and why (without the bus name the link was made up with)."""
        return self.detail if self.kind == "link" else self.summary

    @property
    def summary(self) -> str:
        """Where and why in one line: the reason, or the detail where it says more."""
        return f"{self.where}: {self.detail if self.kind in ('garbage', 'link') else self.reason}"


class PymodbusNoise(logging.Filter):
    """Drops from pymodbus's log what the agent says better itself, and strips raw frames.

    * ``No response received ...`` (ERROR, at every timeout, ``CLOSING CONNECTION`` included):
      a :class:`ReadError`; the poller logs a device's failure once, with its context;
    * ``received pdu without a corresponding request`` (WARNING), and ``request ask for id=N
      but got id=M`` (ERROR) when it came during the next request, to another unit: a reply
      that came after its request had timed out (a slow device, or a stop in mid-request);
      already counted;
    * ``Repeating....``: pymodbus's stand-in for its previous message, which may be dropped;
    * the dump of the last 20 frames (``>>>>> send: 0x1 0x4 ...``) that pymodbus appends to
      every ERROR while its logger is not at DEBUG: the rest of such a message is kept.

    Everything else pymodbus warns about is kept, e.g. ``Failed to connect`` with the reason a
    serial port or endpoint cannot be opened. At DEBUG (``coldchain agent -v``) pymodbus logs
    every frame as it goes, and this filter does not hide those.
    """

    DROPPED = (
        "No response received",
        "received pdu without a corresponding request",
        "request ask for id=",
        "Repeating....",
    )
    FRAMES = "\n>>>>> "

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(d in text for d in self.DROPPED):
            return False
        head, frames, _ = text.partition(self.FRAMES)
        if frames:
            record.msg, record.args = head, ()
        return True


def filter_pymodbus_noise() -> None:
    """Install :class:`PymodbusNoise` on pymodbus's logger, once per process."""
    logger = logging.getLogger(PYMODBUS_LOGGER)
    if not any(isinstance(f, PymodbusNoise) for f in logger.filters):
        logger.addFilter(PymodbusNoise())


def quiet_pymodbus() -> None:
    """The agent's logging setup, without ``-v``: pymodbus logs WARNING and up (so none of its
    per-request DEBUG and INFO), less :class:`PymodbusNoise`."""
    logging.getLogger(PYMODBUS_LOGGER).setLevel(logging.WARNING)
    filter_pymodbus_noise()


@dataclass(frozen=True, slots=True)
class Request:
    table: Table
    start: int
    count: int
    unit: int

    def where(self, bus: str, endpoint: str) -> str:
        last = self.start + self.count - 1
        return f"bus {bus} ({endpoint}) unit {self.unit} {self.table} {self.start}..{last}"


FUNCTION_CODES = {Table.COIL: 1, Table.DISCRETE: 2, Table.HOLDING: 3, Table.INPUT: 4}


class ModbusLink:
    """One bus, connected on demand: pymodbus's client on TCP, :class:`RtuLine` on RS-485."""

    def __init__(self, bus: RtuBus | TcpBus, *, count_received: bool = False) -> None:
        self.bus = bus
        self._client: Any = None
        self._line: RtuLine | None = None
        if isinstance(bus, RtuBus):
            self._line = RtuLine(
                bus.port,
                baud=bus.baud,
                parity=bus.parity,
                stop_bits=bus.stop_bits,
                char_time=bus.char_time,
                gap=bus.frame_gap,
                timeout=bus.timeout,
                on_bytes=_log_frame,
            )
        # Bytes that arrived on the link, frames dropped included (a reply with a bad CRC is
        # silence to a master): commissioning tells garble from nobody by it.
        self._tcp_received = 0
        self._trace = self._count if count_received else None
        filter_pymodbus_noise()  # wherever the agent's Modbus runs: agent, demo, tests

    @property
    def received(self) -> int:
        return self._line.received if self._line is not None else self._tcp_received

    def _count(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._tcp_received += len(data)
        return data

    @property
    def connected(self) -> bool:
        if self._line is not None:
            return self._line.is_open
        return bool(self._client is not None and self._client.connected)

    async def connect(self) -> None:
        """Open the port or connection; raise :class:`ReadError` (kind ``link``) if not."""
        self.close()
        if self._line is not None:
            try:
                self._line.open()
            except OSError as exc:
                raise ReadError("link", f"bus {self.bus.id}", f"{self._endpoint()}: {exc}") from exc
            return
        b = self.bus
        assert isinstance(b, TcpBus)
        # pymodbus only where there is a TCP bus: an RS-485-only gateway (most township
        # stores) is spared its 2.7 MB
        from pymodbus.client import AsyncModbusTcpClient
        from pymodbus.exceptions import ModbusException

        self._client = AsyncModbusTcpClient(
            b.host,
            port=b.port,
            timeout=b.timeout,
            retries=0,
            reconnect_delay=0,
            trace_packet=self._trace,
        )
        try:
            before = cancels()
            ok = await self._client.connect()
            honour_cancellation(before)
        except (OSError, ModbusException) as exc:
            ok, why = False, str(exc)
        else:
            why = "cannot connect"
        if not ok:
            self.close()
            raise ReadError("link", f"bus {self.bus.id}", f"{self._endpoint()}: {why}")

    def _endpoint(self) -> str:
        b = self.bus
        return f"{b.host}:{b.port}" if isinstance(b, TcpBus) else b.port

    def close(self) -> None:
        if self._line is not None:
            self._line.close()
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a broken transport must not raise
                log.debug("closing %s failed", self._endpoint(), exc_info=True)
            self._client = None

    async def read(self, req: Request) -> list[int] | list[bool]:
        """Registers (words) or bits of ``req``; raise :class:`ReadError` otherwise."""
        if not self.connected:
            await self.connect()
        where = req.where(self.bus.id, self._endpoint())
        if self._line is not None:
            pdu = struct.pack(">BHH", FUNCTION_CODES[req.table], req.start, req.count)
            return parse_read(where, req, await self._transact(where, req.unit, pdu))
        fn = {
            Table.COIL: self._client.read_coils,
            Table.DISCRETE: self._client.read_discrete_inputs,
            Table.INPUT: self._client.read_input_registers,
            Table.HOLDING: self._client.read_holding_registers,
        }[req.table]
        rr = await self._exchange(where, fn(req.start, count=req.count, device_id=req.unit))
        if req.table.is_bits:
            bits = list(rr.bits)[: req.count]
            if len(bits) < req.count:
                raise ReadError("garbage", where, f"{len(bits)} bits for {req.count}")
            return bits
        regs = list(rr.registers)
        if len(regs) != req.count:
            raise ReadError("garbage", where, f"{len(regs)} registers for {req.count}")
        return regs

    async def write_register(self, address: int, word: int, unit: int) -> None:
        """Write one holding register (function 06); raise :class:`ReadError` if the device
        does not confirm it (commissioning: ``coldchain modbus set``)."""
        if not self.connected:
            await self.connect()
        where = Request(Table.HOLDING, address, 1, unit).where(self.bus.id, self._endpoint())
        if self._line is not None:
            pdu = struct.pack(">BHH", 6, address, word)
            reply = await self._transact(where, unit, pdu)
            if reply != pdu:
                raise ReadError("garbage", where, f"write confirmed as {reply.hex(' ')}")
            return
        await self._exchange(where, self._client.write_register(address, word, device_id=unit))

    async def _transact(self, where: str, unit: int, pdu: bytes) -> bytes:
        """One RTU transaction: the reply's PDU, or :class:`ReadError` with a kind."""
        assert self._line is not None
        try:
            reply = await self._line.transact(unit, pdu)
        except NoReplyError as exc:
            raise ReadError("timeout", where, "no reply") from exc
        except OSError as exc:
            self.close()
            raise ReadError("link", where, f"{self._endpoint()}: {exc}") from exc
        if reply[0] & 0x80:
            code = reply[1]
            name = EXCEPTION_NAMES.get(code, "unknown")
            raise ReadError("exception", where, f"exception {code} ({name})", code)
        return reply

    async def _exchange(self, where: str, call: Any) -> Any:
        """Await pymodbus's request ``call``; its reply, or :class:`ReadError` with a kind."""
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        before = cancels()
        try:
            try:
                rr = await call
            except ConnectionException as exc:
                self.close()
                raise ReadError("link", where, str(exc)) from exc
            except ModbusIOException as exc:
                text = str(exc)
                kind: ErrorKind = "timeout" if "No response" in text else "garbage"
                if isinstance(self.bus, TcpBus) and "CLOSING" in text:
                    self.close()
                raise ReadError(kind, where, text) from exc
            except (ModbusException, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                raise ReadError("garbage", where, str(exc)) from exc
        finally:
            # pymodbus waits through asyncio.wait_for, which on 3.11 can swallow a
            # cancellation (gh-86296): the poller's task group would then never stop
            honour_cancellation(before)
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            name = EXCEPTION_NAMES.get(code or 0, "unknown")
            raise ReadError("exception", where, f"exception {code} ({name})", code)
        return rr


def parse_read(where: str, req: Request, reply: bytes) -> list[int] | list[bool]:
    """The bits or registers of a read's reply PDU (function, byte count, data)."""
    data = reply[2:]
    if req.table.is_bits:
        if reply[1] != len(data) or len(data) * 8 < req.count:
            raise ReadError("garbage", where, f"{len(data) * 8} bits for {req.count}")
        return [bool(data[i // 8] >> (i % 8) & 1) for i in range(req.count)]
    if reply[1] != len(data) or len(data) != 2 * req.count:
        raise ReadError("garbage", where, f"{len(data) // 2} registers for {req.count}")
    return list(struct.unpack(f">{req.count}H", data))


def _log_frame(direction: str, data: bytes) -> None:
    """Every RTU frame at DEBUG (``coldchain agent -v``), as pymodbus logs TCP's."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s", direction, data.hex(" "))
