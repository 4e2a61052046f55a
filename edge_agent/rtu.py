"""The agent's Modbus RTU master: one serial line, one transaction at a time, on the line's
own time.

pymodbus's serial client spent about 1.4 ms of its own per transaction on a 9600 baud line
(the request written a loop turn after it is asked for, a second turn to hand the reply on,
the silence after a reply computed for 11-bit characters and slept with asyncio's
millisecond timers): 6 % of an XY-MD02's exchange, where this master spends 0.4 ms
(``bench/bench_rtu.py``). Here every transaction is scheduled against absolute times:

* the request is written in the same turn it is asked for, but not before the line has
  been silent for the inter-frame gap (:attr:`RtuBus.frame_gap
  <coldchain.config.site.RtuBus.frame_gap>`, from the line's real character length) since
  the last byte on it, whoever sent it; the wait ends on time to within a tenth of a
  millisecond (:func:`coldchain.rtu.sleep_until`), and the agent's own work between two
  transactions is part of that silence, not added to it;
* the reply is complete as soon as its last byte is read: its length follows from its first
  three bytes (:func:`coldchain.rtu.reply_length`), so no silence is waited out to end it;
  bytes before it that are not the start of a reply from the unit asked (an adapter's echo,
  a late reply from another unit) are skipped, and so is a candidate whose CRC is wrong;
* no good reply by the timeout (counted from the request's writing) is :class:`NoReplyError`.

Every byte that arrives is counted in :attr:`RtuLine.received`, between transactions too
(commissioning's scan tells a garbled or late reply from silence by it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import serial

from coldchain.rtu import crc16, frame, reply_length, sleep_until

log = logging.getLogger(__name__)


class NoReplyError(TimeoutError):
    """No reply with a good CRC from the unit asked, in time."""


class RtuLine:
    """A Modbus RTU master on serial ``port``."""

    def __init__(
        self,
        port: str,
        *,
        baud: int,
        parity: str,
        stop_bits: int,
        char_time: float,
        gap: float,
        timeout: float,
        on_bytes: Callable[[str, bytes], None] | None = None,  # ("send" or "recv", bytes)
    ) -> None:
        self.port, self.baud, self.parity, self.stop_bits = port, baud, parity, stop_bits
        self.char, self.gap, self.timeout = char_time, gap, timeout
        self.received = 0  # bytes that arrived, in transactions or not
        self._on_bytes = on_bytes
        self._serial: serial.Serial | None = None
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buf = bytearray()
        self._want: tuple[int, int] = (-1, -1)  # (unit, function) of the reply awaited
        self._reply: asyncio.Future[bytes] | None = None
        self._ready_at = 0.0  # monotonic time from which the line has been silent long enough
        self._turn = asyncio.Lock()  # one transaction at a time: a remote read joins the polls

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        """Open and set up the port; raise ``OSError`` (pyserial's ``SerialException`` is
        one) if it cannot be."""
        self.close()
        port = serial.serial_for_url(
            self.port,
            exclusive=True,
            baudrate=self.baud,
            bytesize=8,
            parity=self.parity,
            stopbits=self.stop_bits,
            timeout=0,
            write_timeout=0,
        )
        self._loop = asyncio.get_running_loop()
        self._serial, self._fd = port, port.fileno()
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._fd, self._readable)
        self._ready_at = time.monotonic() + self.gap  # a device may be in mid-frame

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._fd = -1
        self._fail(ConnectionError(f"{self.port}: closed"))
        try:
            port.close()
        except OSError:  # closing a port that went away must not raise
            log.debug("closing %s failed", self.port, exc_info=True)

    def _fail(self, exc: BaseException) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(exc)

    async def transact(self, unit: int, pdu: bytes) -> bytes:
        """Send ``pdu`` to ``unit``; the reply's PDU (function code onwards), an exception
        reply included. :class:`NoReplyError` if none came in time; ``OSError`` if the port failed
        (it is then closed)."""
        async with self._turn:
            return await self._transact(unit, pdu)

    async def _transact(self, unit: int, pdu: bytes) -> bytes:
        if self._serial is None or self._loop is None:
            raise ConnectionError(f"{self.port}: not open")
        await sleep_until(self._ready_at)
        if self._serial is None:
            raise ConnectionError(f"{self.port}: closed")
        request = frame(unit, pdu)
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._buf.clear()
        self._want, self._reply = (unit, pdu[0]), fut
        try:
            self._write(request)
            sent = self._loop.time()
            # the request occupies the line for its length; with no reply, the line is free
            # one gap after that (a reply's bytes move this on, see _readable)
            self._ready_at = time.monotonic() + len(request) * self.char + self.gap
            timer = self._loop.call_at(sent + self.timeout, _expire, fut)
            try:
                return await fut
            finally:
                timer.cancel()
        finally:
            self._reply = None

    def _write(self, data: bytes) -> None:
        if self._on_bytes is not None:
            self._on_bytes("send", data)
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            self.close()
            raise
        if n < len(data):  # a frame is a few bytes; a full output buffer is a stuck port
            self.close()
            raise ConnectionError(f"{self.port}: the port takes no more output")

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 512)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # an unplugged adapter
            self._fail(exc)
            self.close()
            return
        if not data:
            self._fail(ConnectionError(f"{self.port}: the port closed"))
            self.close()
            return
        self._ready_at = time.monotonic() + self.gap
        self.received += len(data)
        if self._on_bytes is not None:
            self._on_bytes("recv", data)
        fut = self._reply
        if fut is None or fut.done():
            return  # between transactions: counted, not kept
        self._buf += data
        reply = self._take()
        if reply is not None:
            fut.set_result(reply)

    def _take(self) -> bytes | None:
        """The reply's PDU once it is complete in the buffer, skipping what cannot start it."""
        unit, fc = self._want
        buf = self._buf
        while len(buf) >= 2:
            if buf[0] != unit or buf[1] & 0x7F != fc:
                del buf[0]
                continue
            n = reply_length(buf)
            if n is None or len(buf) < n:
                return None
            if crc16(buf[: n - 2]) == buf[n - 2 : n]:
                pdu = bytes(buf[1 : n - 2])
                del buf[:n]
                return pdu
            del buf[0]
        return None


def _expire(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.set_exception(NoReplyError())
