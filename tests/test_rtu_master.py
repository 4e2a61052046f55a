"""The agent's Modbus RTU master (``edge_agent/rtu.py`` behind ``ModbusLink``) against a slave
written byte by byte in the test, on a pseudo-terminal: the silence it keeps between frames,
how it finds the reply among stray bytes, and what it makes of bad ones."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import tty
from collections.abc import AsyncIterator, Callable

import pytest

from coldchain.config.site import RtuBus
from coldchain.profiles.schema import Table
from coldchain.rtu import char_time, crc16, frame, frame_gap, reply_length, sleep_until
from edge_agent.modbus_io import ModbusLink, ReadError, Request

READ = Request(Table.INPUT, 1, 2, unit=7)
REPLY = frame(7, bytes.fromhex("04 04 00eb 0258"))  # 23.5 °C, 60.0 %RH as an XY-MD02 says it

Answer = Callable[[bytes], list[bytes]]  # the request frame -> chunks written back


class PtySlave:
    """The slave end of a pty: records when each request arrived and writes back what
    ``answer`` gives, ``delay`` seconds after the request is read (as a device answers once
    the request has crossed the wire)."""

    def __init__(self, answer: Answer, delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        os.set_blocking(self.master, False)
        self.requests: list[tuple[float, bytes]] = []  # (monotonic time read, bytes)
        self.replied: list[float] = []  # monotonic time of each reply's last chunk
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        data = os.read(self.master, 512)
        self.requests.append((time.monotonic(), data))
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._reply, data)
        else:
            self._reply(data)

    def _reply(self, data: bytes) -> None:
        for chunk in self.answer(data):
            os.write(self.master, chunk)
        self.replied.append(time.monotonic())

    def close(self) -> None:
        if self.master < 0:
            return
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)
        self.master = -1


@pytest.fixture
async def slave_and_link() -> AsyncIterator[Callable[[Answer], tuple[PtySlave, ModbusLink]]]:
    made: list[tuple[PtySlave, ModbusLink]] = []

    def make(
        answer: Answer, timeout: str = "150ms", delay: float = 0.0
    ) -> tuple[PtySlave, ModbusLink]:
        slave = PtySlave(answer, delay)
        link = ModbusLink(RtuBus(id="rs485", port=slave.path, baud=9600, timeout=timeout))
        made.append((slave, link))
        return slave, link

    yield make
    for slave, link in made:
        link.close()
        slave.close()


def test_the_line_timing_follows_the_character_length() -> None:
    assert char_time(9600, "N") == pytest.approx(10 / 9600)  # 8N1: 10 bits, not 11
    assert char_time(9600, "E") == pytest.approx(11 / 9600)
    assert char_time(9600, "N", 2) == pytest.approx(11 / 9600)
    assert frame_gap(9600, "N") == pytest.approx(3.5 * 10 / 9600)
    assert frame_gap(19200, "E") == pytest.approx(3.5 * 11 / 19200)
    assert frame_gap(38400, "N") == 0.00175  # the spec's fixed t3.5 above 19200
    bus = RtuBus(id="b", port="/dev/ttyUSB0", baud=4800, parity="E")
    assert bus.frame_gap == pytest.approx(3.5 * 11 / 4800)
    assert RtuBus(id="b", port="/dev/x", inter_frame_gap="5ms").frame_gap == 0.005


def test_a_reply_s_length_follows_from_its_first_bytes() -> None:
    assert reply_length(REPLY[:2]) is None  # a read: the byte count is the third byte
    assert reply_length(REPLY[:3]) == len(REPLY) == 9
    assert reply_length(frame(7, bytes.fromhex("84 02"))) == 5  # an exception reply
    assert reply_length(frame(7, bytes.fromhex("06 0001 0005"))) == 8
    assert reply_length(bytes.fromhex("07 2b 0e")) is None  # not a function a master here asks


async def test_sleep_until_never_returns_early() -> None:
    for ahead in (0.0003, 0.0011, 0.0025, 0.004):
        deadline = time.monotonic() + ahead
        await sleep_until(deadline)
        assert time.monotonic() >= deadline


async def test_registers_and_bits_are_read(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    def answer(req: bytes) -> list[bytes]:
        if req[1] == 4:
            return [REPLY]
        return [frame(req[0], bytes.fromhex("02 02 0501"))]  # 10 bits, LSB first

    _, link = slave_and_link(answer)
    assert await link.read(READ) == [0x00EB, 0x0258]
    bits = await link.read(Request(Table.DISCRETE, 0, 10, unit=7))
    assert bits == [True, False, True, False, False, False, False, False, True, False]


async def test_the_master_keeps_the_silence_after_every_byte_on_the_line(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    """A request is never written sooner than t3.5 after the last byte of a reply (or of
    noise). The device answers 15 ms after the request, later than the request's own time on
    the wire plus t3.5 (12 ms), so only the reply's last byte can set the silence."""

    def answer(req: bytes) -> list[bytes]:
        return [REPLY[:4], REPLY[4:]]

    slave, link = slave_and_link(answer, delay=0.015)
    for _ in range(12):
        await link.read(READ)
    gap = frame_gap(9600, "N")
    arrivals = [t for t, _ in slave.requests]
    quiet = [arrivals[i + 1] - slave.replied[i] for i in range(len(arrivals) - 1)]
    assert min(quiet) >= gap, quiet

    # a stray byte on the line after the reply (noise, a late device) restarts the silence
    await link.read(READ)
    os.write(slave.master, b"\x00")
    noise = time.monotonic()
    await asyncio.sleep(0.001)
    await link.read(READ)
    assert slave.requests[-1][0] - noise >= gap


async def test_the_reply_is_found_among_stray_bytes(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    """An adapter's echo of the request, a late reply from another unit and a candidate with a
    bad CRC come before the real reply, in pieces: the read still gets the right values."""

    def answer(req: bytes) -> list[bytes]:
        late = frame(3, bytes.fromhex("04 04 0001 0002"))
        broken = REPLY[:-1] + bytes((REPLY[-1] ^ 0xFF,))
        return [req, late[:4], late[4:] + broken[:5], broken[5:] + REPLY[:2], REPLY[2:]]

    _, link = slave_and_link(answer)
    assert await link.read(READ) == [0x00EB, 0x0258]


async def test_a_bad_crc_is_no_reply_and_its_bytes_are_counted(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    def answer(req: bytes) -> list[bytes]:
        return [REPLY[:-2] + bytes(b ^ 0xA5 for b in REPLY[-2:])]

    _, link = slave_and_link(answer)
    await link.connect()
    before = link.received
    with pytest.raises(ReadError) as err:
        await link.read(READ)
    assert err.value.kind == "timeout"
    assert link.received - before == len(REPLY)  # commissioning calls that garbled


async def test_an_exception_reply_and_a_short_reply(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    replies = iter(
        [
            frame(7, bytes.fromhex("84 02")),
            frame(7, bytes.fromhex("04 02 00eb")),  # one register for two
            frame(7, bytes.fromhex("06 0001 0009")),  # a write confirmed with another value
        ]
    )
    _, link = slave_and_link(lambda req: [next(replies)])
    with pytest.raises(ReadError) as err:
        await link.read(READ)
    assert (err.value.kind, err.value.code) == ("exception", 2)
    with pytest.raises(ReadError) as err:
        await link.read(READ)
    assert err.value.kind == "garbage"
    assert "1 registers for 2" in str(err.value)
    with pytest.raises(ReadError) as err:
        await link.write_register(1, 5, unit=7)
    assert err.value.kind == "garbage"


async def test_a_late_reply_between_requests_is_counted_not_taken(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    """A reply that comes after its request timed out is not the next request's reply."""
    slow = frame(7, bytes.fromhex("04 04 0001 0001"))
    calls = 0

    def answer(req: bytes) -> list[bytes]:
        nonlocal calls
        calls += 1
        if calls == 1:
            asyncio.get_running_loop().call_later(0.08, os.write, slave.master, slow)
            return []
        return [REPLY]

    slave, link = slave_and_link(answer, timeout="50ms")
    with pytest.raises(ReadError) as err:
        await link.read(READ)
    assert err.value.kind == "timeout"
    await asyncio.sleep(0.1)  # the late reply arrives between the two requests
    assert link.received == len(slow)
    assert await link.read(READ) == [0x00EB, 0x0258]


async def test_an_unplugged_adapter_is_a_link_error_and_a_missing_port_too(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    slave, link = slave_and_link(lambda req: [REPLY])
    assert await link.read(READ) == [0x00EB, 0x0258]
    slave.close()  # the other end goes away: reads give EIO, as from a USB adapter pulled out
    with pytest.raises(ReadError) as err:
        await link.read(READ)
    assert err.value.kind == "link"
    assert not link.connected
    missing = ModbusLink(RtuBus(id="rs485", port="/dev/ttyNOPE9"))
    with pytest.raises(ReadError) as err:
        await missing.read(READ)
    assert err.value.kind == "link"
    assert "/dev/ttyNOPE9" in err.value.message


def test_crc_of_a_known_frame() -> None:
    # Modbus over Serial Line, read of input registers 1..2 of unit 1: 01 04 00 01 00 02 20 0B
    assert crc16(bytes.fromhex("01 04 0001 0002")) == bytes.fromhex("20 0b")


async def test_two_callers_on_one_line_take_turns(slave_and_link) -> None:  # type: ignore[no-untyped-def]
    """A command from the centre reads on the poller's own link while it polls: the line
    carries one transaction at a time, each caller gets its own reply."""

    def answer(req: bytes) -> list[bytes]:
        return [frame(req[0], bytes.fromhex("04 04 00") + bytes((req[0], 0, 1)))]

    slave, link = slave_and_link(answer, delay=0.01)
    reads = [link.read(Request(Table.INPUT, 1, 2, unit=u)) for u in (3, 4, 5)]
    assert await asyncio.gather(*reads) == [[3, 1], [4, 1], [5, 1]]
    arrivals = [t for t, _ in slave.requests]
    assert all(b - a >= 0.01 for a, b in itertools.pairwise(arrivals))  # never two at once
