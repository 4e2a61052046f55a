"""Modbus PDU handling for the simulated slaves: function codes 1, 2, 3, 4, 5, 6, 15 and 16,
with the exception replies a real device gives (01 illegal function, 02 illegal data
address, 03 illegal data value).

Pure: a request PDU and a :class:`Slave` in, a response PDU out. Framing (RTU with CRC, TCP
with MBAP) and fault injection live in :mod:`simulator.rtu` and :mod:`simulator.tcp`.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Protocol

from coldchain.profiles.schema import Table


class ExceptionCode(IntEnum):
    """Modbus exception codes (Modbus Application Protocol v1.1b3, section 7)."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_DATA_ADDRESS = 2
    ILLEGAL_DATA_VALUE = 3
    SERVER_DEVICE_FAILURE = 4
    GATEWAY_PATH_UNAVAILABLE = 10
    GATEWAY_TARGET_FAILED = 11


class SlaveError(Exception):
    """A request the slave refuses; becomes an exception reply with ``code``."""

    def __init__(self, code: ExceptionCode, message: str = "") -> None:
        super().__init__(message or code.name.lower().replace("_", " "))
        self.code = code


class Slave(Protocol):
    """The data of one slave as the PDU layer sees it."""

    @property
    def max_registers(self) -> int: ...

    @property
    def max_bits(self) -> int: ...

    def read(self, table: Table, address: int, count: int) -> list[int]:
        """Words (or bits, 0/1) at ``address``; raise :class:`SlaveError`."""
        ...

    def write(self, table: Table, address: int, values: list[int]) -> None:
        """Store words (holding) or bits (coil); raise :class:`SlaveError`."""
        ...


READ_TABLES = {1: Table.COIL, 2: Table.DISCRETE, 3: Table.HOLDING, 4: Table.INPUT}
MAX_READ_BITS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_BITS = 1968
MAX_WRITE_REGISTERS = 123


def exception_pdu(function: int, code: int) -> bytes:
    """The exception reply to ``function``."""
    return bytes(((function | 0x80) & 0xFF, code))


def request_length(pdu_head: bytes) -> int | None:
    """Length of a request PDU from its first bytes, or None if the function is unknown
    (the caller then relies on the frame's end). Needs 6 bytes for FC 15/16."""
    fc = pdu_head[0]
    if fc in (1, 2, 3, 4, 5, 6):
        return 5
    if fc in (15, 16):
        return 6 + pdu_head[5] if len(pdu_head) >= 6 else None
    return None


def _pack_bits(bits: list[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unpack_bits(data: bytes, count: int) -> list[int]:
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def _read(slave: Slave, fc: int, body: bytes) -> bytes:
    if len(body) != 4:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, "read request of wrong length")
    address, count = struct.unpack(">HH", body)
    table = READ_TABLES[fc]
    limit = (
        min(MAX_READ_BITS, slave.max_bits)
        if table.is_bits
        else min(MAX_READ_REGISTERS, slave.max_registers)
    )
    if not 1 <= count <= limit:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, f"count {count} not in 1..{limit}")
    if address + count > 0x10000:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "read past address 65535")
    values = slave.read(table, address, count)
    if table.is_bits:
        data = _pack_bits(values)
    else:
        data = b"".join(struct.pack(">H", v & 0xFFFF) for v in values)
    return bytes((fc, len(data))) + data


def _write_single(slave: Slave, fc: int, body: bytes) -> bytes:
    if len(body) != 4:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, "write request of wrong length")
    address, value = struct.unpack(">HH", body)
    if fc == 5:
        if value not in (0x0000, 0xFF00):
            raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, f"coil value {value:#06x}")
        slave.write(Table.COIL, address, [1 if value else 0])
    else:
        slave.write(Table.HOLDING, address, [value])
    return bytes((fc,)) + body


def _write_multiple(slave: Slave, fc: int, body: bytes) -> bytes:
    if len(body) < 5:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, "write request too short")
    address, count, nbytes = struct.unpack(">HHB", body[:5])
    data = body[5:]
    bits = fc == 15
    limit = MAX_WRITE_BITS if bits else MAX_WRITE_REGISTERS
    need = (count + 7) // 8 if bits else 2 * count
    if not 1 <= count <= limit or nbytes != need or len(data) != nbytes:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, "bad count or byte count")
    if address + count > 0x10000:
        raise SlaveError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "write past address 65535")
    if bits:
        slave.write(Table.COIL, address, _unpack_bits(data, count))
    else:
        slave.write(Table.HOLDING, address, list(struct.unpack(f">{count}H", data)))
    return bytes((fc,)) + struct.pack(">HH", address, count)


def handle(slave: Slave, pdu: bytes) -> bytes:
    """The response PDU to a request PDU (an exception reply if the slave refuses)."""
    if not pdu:
        return exception_pdu(0, ExceptionCode.ILLEGAL_FUNCTION)
    fc, body = pdu[0], pdu[1:]
    try:
        if fc in READ_TABLES:
            return _read(slave, fc, body)
        if fc in (5, 6):
            return _write_single(slave, fc, body)
        if fc in (15, 16):
            return _write_multiple(slave, fc, body)
        raise SlaveError(ExceptionCode.ILLEGAL_FUNCTION, f"function {fc}")
    except SlaveError as exc:
        return exception_pdu(fc, exc.code)
