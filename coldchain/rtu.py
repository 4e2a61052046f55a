"""Modbus RTU on the wire, for both ends of a line: the agent's master and the simulator's
slaves.

* A character is a start bit, 8 data bits, a parity bit unless the parity is N, and the stop
  bits: 10 bits on an 8N1 line, 11 on 8E1 or 8N2 (:func:`char_time`).
* Frames are separated by at least 3.5 characters of silence; above 19,200 baud the spec
  fixes that at 1.75 ms (*Modbus over Serial Line V1.02*, 2.5.1.1; :func:`frame_gap`).
* A frame is the address, the PDU and a CRC-16, low byte first (:func:`crc16`, :func:`frame`);
  a reply's length follows from its first three bytes (:func:`reply_length`).
* :func:`sleep_until` waits for a point on the line's time line to within about a tenth of a
  millisecond: asyncio's timers wake on whole milliseconds (``epoll_wait``), which at 19,200
  baud is half the silence between two frames.
"""

from __future__ import annotations

import asyncio
import time

SPEC_GAP_ABOVE_19200 = 0.00175
"""Seconds of inter-frame silence at rates above 19,200 baud (the spec's fixed t3.5)."""
BLOCKING_TAIL = 0.0012
"""The last seconds of a :func:`sleep_until` slept without the event loop (see there)."""


def char_bits(parity: str, stop_bits: int = 1) -> int:
    """Bits one character takes on the line: start, 8 data, parity unless ``N``, stop."""
    return 1 + 8 + (parity != "N") + stop_bits


def char_time(baud: int, parity: str, stop_bits: int = 1) -> float:
    """Seconds one character takes on the line."""
    return char_bits(parity, stop_bits) / baud


def frame_gap(baud: int, parity: str, stop_bits: int = 1) -> float:
    """The silence that ends a frame (t3.5): 3.5 characters, or 1.75 ms above 19,200 baud."""
    if baud > 19200:
        return SPEC_GAP_ABOVE_19200
    return 3.5 * char_time(baud, parity, stop_bits)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> bytes:
    """The Modbus CRC-16 of ``data`` as sent on the wire (low byte first)."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc.to_bytes(2, "little")


def frame(unit: int, pdu: bytes) -> bytes:
    """An RTU frame: address, PDU, CRC."""
    body = bytes((unit,)) + pdu
    return body + crc16(body)


def reply_length(head: bytes | bytearray) -> int | None:
    """Bytes in the reply frame (address to CRC) that starts with ``head``; None when more of
    it is needed to tell, or the function code is not one a master here asks (then the
    length is unknown and the caller treats the bytes as garbage)."""
    if len(head) < 2:
        return None
    fc = head[1]
    if fc & 0x80:
        return 5  # address, function | 0x80, exception code, CRC
    if fc in (1, 2, 3, 4):
        return 5 + head[2] if len(head) >= 3 else None  # address, function, count, data, CRC
    if fc in (5, 6, 15, 16):
        return 8  # address, function, address, value or quantity, CRC
    return None


async def sleep_until(deadline: float) -> None:
    """Return at ``time.monotonic()`` ``deadline``, not before, and late by little more than
    the scheduler's wake-up (tens of microseconds), where ``asyncio.sleep`` is late by up to a
    millisecond more (its timers wake on whole milliseconds).

    All but the last :data:`BLOCKING_TAIL` seconds are an ordinary ``asyncio.sleep``; the tail
    is slept with ``time.sleep`` (the kernel's high-resolution timer), holding the event loop
    for at most that long. An RS-485 line is worth it: at 9,600 baud a millisecond lost per
    transaction is 4 % of an XY-MD02's exchange."""
    left = deadline - time.monotonic()
    if left > BLOCKING_TAIL:
        await asyncio.sleep(left - BLOCKING_TAIL)
        left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)  # noqa: ASYNC251 - the tail, on purpose (see above)
