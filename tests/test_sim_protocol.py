"""The slaves' pure protocol parts: CRC, the RTU request framer, the PDU handler."""

from __future__ import annotations

import pytest

from coldchain.profiles.schema import Table
from coldchain.rtu import crc16
from coldchain.rtu import frame as rtu_frame
from simulator.pdu import ExceptionCode, SlaveError, handle
from simulator.rtu import RtuFramer

READ_XY = bytes.fromhex("010400010002200b")  # unit 1, FC04, address 1, count 2, CRC


class FakeSlave:
    """Registers 0-9 of every table, value = address; writes recorded."""

    max_registers = 125
    max_bits = 2000

    def __init__(self) -> None:
        self.writes: list[tuple[Table, int, list[int]]] = []

    def read(self, table: Table, address: int, count: int) -> list[int]:
        if address + count > 10:
            raise SlaveError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
        return [a % 2 if table.is_bits else a for a in range(address, address + count)]

    def write(self, table: Table, address: int, values: list[int]) -> None:
        if address + len(values) > 10:
            raise SlaveError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
        self.writes.append((table, address, values))


def test_crc_matches_a_known_frame() -> None:
    assert crc16(READ_XY[:-2]) == READ_XY[-2:]
    assert rtu_frame(1, READ_XY[1:-2]) == READ_XY


def test_the_framer_splits_joins_and_hunts() -> None:
    f = RtuFramer()
    assert f.feed(READ_XY[:3]) == []
    assert f.feed(READ_XY[3:]) == [READ_XY[:-2]]
    assert f.feed(b"\x00\xff\x13" + READ_XY + READ_XY) == [READ_XY[:-2], READ_XY[:-2]]
    assert f.dropped == 3
    bad = READ_XY[:-1] + b"\x00"
    assert f.feed(bad) == []
    assert f.flush() == [], "a frame with a bad CRC is dropped"
    write = rtu_frame(2, bytes.fromhex("10 0000 0002 04 0001 0002"))
    assert f.feed(write) == [write[:-2]]


def test_an_unknown_function_ends_at_the_silence() -> None:
    f = RtuFramer()
    frame = rtu_frame(1, bytes.fromhex("2b0e0100"))  # read device identification
    assert f.feed(frame) == []
    assert f.flush() == [frame[:-2]]
    assert f.feed(frame + READ_XY) == [frame[:-2], READ_XY[:-2]], "or where a good one starts"


@pytest.mark.parametrize(
    ("request_hex", "reply_hex"),
    [
        ("03 0002 0003", "03 06 0002 0003 0004"),
        ("04 0000 0001", "04 02 0000"),
        ("01 0000 000a", "01 02 aa 02"),
        ("02 0001 0003", "02 01 05"),
        ("03 0000 0000", "83 03"),  # count 0
        ("03 0000 007e", "83 03"),  # 126 registers
        ("01 0000 07d1", "81 03"),  # 2001 bits
        ("03 0008 0004", "83 02"),  # past the map
        ("03 fffe 0004", "83 02"),  # past 65535
        ("03 0000", "83 03"),  # short request
        ("05 0001 ff00", "05 0001 ff00"),
        ("05 0001 1234", "85 03"),  # coil value neither ON nor OFF
        ("06 0003 00ff", "06 0003 00ff"),
        ("0f 0000 000a 02 ff03", "0f 0000 000a"),
        ("0f 0000 000a 01 ff", "8f 03"),  # byte count does not fit
        ("10 0000 0002 04 0001 0002", "10 0000 0002"),
        ("10 0000 0002 02 0001", "90 03"),
        ("08 0000 0000", "88 01"),  # diagnostics: not implemented
        ("2b 0e 01 00", "ab 01"),
    ],
)
def test_pdu_replies(request_hex: str, reply_hex: str) -> None:
    assert handle(FakeSlave(), bytes.fromhex(request_hex)).hex() == reply_hex.replace(" ", "")


def test_writes_reach_the_slave() -> None:
    slave = FakeSlave()
    handle(slave, bytes.fromhex("0f 0000 000a 02 ff03"))
    handle(slave, bytes.fromhex("10 0004 0002 04 0001 fffe"))
    handle(slave, bytes.fromhex("05 0002 0000"))
    assert slave.writes == [
        (Table.COIL, 0, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
        (Table.HOLDING, 4, [1, 0xFFFE]),
        (Table.COIL, 2, [0]),
    ]
