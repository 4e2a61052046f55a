"""Finding the devices on a line: ``coldchain modbus scan`` (and a scan the centre asks of a
running agent, ``edge_agent/remote.py``), with the agent's own Modbus link
(:class:`~edge_agent.modbus_io.ModbusLink`).

Each (baud, parity) line setting in turn, each unit id in turn: one read of holding register
0. Any reply with a good CRC from that address proves a device is there, an exception reply
included (most devices have no register 0); silence until the timeout means nobody. Bytes
that make no good frame are a garbled reply (a device at another parity, two answering at
once, noise): reported, but not a device. Behind a TCP-to-RTU gateway, exception 10 or 11
(path unavailable, target did not respond) means nobody. Nothing is ever written.

On RS-485 a silent address costs the whole timeout, so the timeouts decide how long a scan
takes: a first pass waits only the exchange's wire time plus :data:`FAST_MARGIN`, and the
addresses after which stray bytes came (a slow device's late reply) are probed again with
the whole timeout, the wire time plus :data:`DEFAULT_LATENCY` (:func:`fast_pass`;
``docs/commissioning.md``; ``bench/bench_scan.py`` measures it against the line's physical
limit). Which profile fits each device found is :mod:`edge_agent.commission`'s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from coldchain.config.site import RtuBus, TcpBus
from coldchain.profiles.schema import Table
from coldchain.rtu import char_time
from edge_agent.modbus_io import ModbusLink, ReadError, Request

BAUDS = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200)
"""The rates a scan may try (what RS-485 sensors and controllers offer)."""
PROBE_REQUEST_BYTES = 8  # address, function 03, start, count, CRC
PROBE_REPLY_BYTES = 7  # address, 03, byte count, one register, CRC
PROBE_EXCEPTION_BYTES = 5  # address, 0x83, exception code, CRC
DEFAULT_LATENCY = 0.1
"""Seconds a device may take between the end of a request and the start of its reply.

The Modbus serial line spec leaves it to the device; the transmitters and controllers of the
shipped profiles answer within tens of milliseconds. ``--timeout`` overrides the whole wait
for slower devices."""
FAST_MARGIN = 0.015
"""Seconds beyond the wire time the first, fast pass waits: a USB adapter's latency timer
(an FTDI chip's is up to 16 ms) and the scheduler, not the device (see :func:`fast_pass`)."""
ABSENT_CODES = frozenset({10, 11})  # a TCP-to-RTU gateway: path unavailable, no response


def probe_wire_time(baud: int, parity: str) -> float:
    """The least time one probe of a silent address occupies the line: the request, then
    the 3.5 characters of silence that end it. No master can probe faster than this."""
    return (PROBE_REQUEST_BYTES + 3.5) * char_time(baud, parity)


def default_timeout(baud: int, parity: str) -> float:
    """How long a scan waits for a reply: the whole exchange on the wire, plus latency."""
    wire = (PROBE_REQUEST_BYTES + 3.5 + PROBE_REPLY_BYTES) * char_time(baud, parity)
    return round(wire + DEFAULT_LATENCY, 4)


def fast_timeout(baud: int, parity: str) -> float:
    """The first pass's wait: the exchange on the wire plus :data:`FAST_MARGIN`."""
    wire = (PROBE_REQUEST_BYTES + 3.5 + PROBE_REPLY_BYTES) * char_time(baud, parity)
    return round(wire + FAST_MARGIN, 4)


def parse_units(text: str) -> list[int]:
    """``1-247``, ``1,5,10-12``: unit ids in the order given, each once; ValueError if bad."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo_text, dash, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if dash else lo
        except ValueError:
            raise ValueError(f"{part!r} is not a unit id or a range like 1-247") from None
        if not 1 <= lo <= hi <= 247:
            raise ValueError(f"{part!r}: unit ids run from 1 to 247, low to high")
        out += [u for u in range(lo, hi + 1) if u not in out]
    return out


def parse_choices(text: str, allowed: Iterable[str], what: str) -> list[str]:
    """A comma-separated list of ``allowed`` values, each once; ValueError naming the bad."""
    choices = [c.strip().upper() for c in text.split(",") if c.strip()]
    allowed = list(allowed)
    bad = [c for c in choices if c not in allowed]
    if bad or not choices:
        raise ValueError(f"{what} {bad[0] if bad else text!r}: choose from {','.join(allowed)}")
    return list(dict.fromkeys(choices))


def parse_bauds(text: str) -> list[int]:
    """``9600,19200``: baud rates from :data:`BAUDS`, each once, in the order given."""
    return [int(b) for b in parse_choices(text, (str(b) for b in BAUDS), "baud")]


@dataclass(frozen=True, slots=True)
class LineSetting:
    """How the master talks on the line: baud and parity (8 data bits, 1 stop bit)."""

    baud: int
    parity: str

    def __str__(self) -> str:
        return f"{self.baud} 8{self.parity}1"


def rtu_link(port: str, setting: LineSetting, timeout: float) -> ModbusLink:
    """A link on serial ``port`` at ``setting`` (what the agent would use for such a bus)."""
    bus = RtuBus(
        id="rs485",
        port=port,
        baud=setting.baud,
        parity=setting.parity,
        timeout=f"{timeout:.6f}s",
    )
    return ModbusLink(bus, count_received=True)


def tcp_link(host: str, port: int, timeout: float) -> ModbusLink:
    """A link to a Modbus TCP device or TCP-to-RTU gateway."""
    bus = TcpBus(id="tcp", host=host, port=port, timeout=f"{timeout:.6f}s")
    return ModbusLink(bus, count_received=True)


# -- scan --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Found:
    """A device that answered a probe: where, and what its answer was."""

    unit: int
    setting: LineSetting | None  # None: over TCP
    answer: str  # "data" or "exception N (name)"


@dataclass(slots=True)
class ScanResult:
    found: list[Found] = field(default_factory=list)
    garbled: dict[str, list[int]] = field(default_factory=dict)  # setting -> unit ids
    probes: int = 0
    seconds: float = 0.0
    skipped: list[LineSetting] = field(default_factory=list)  # not tried (stopped early)


Progress = Callable[[int, str], None]  # probes done since the last call, what is going on


async def probe(link: ModbusLink, unit: int) -> str | None:
    """One probe of ``unit``: ``data``, ``exception N (name)``, ``garbled``, or None if
    nobody answered. A link that cannot open raises :class:`ReadError` (kind ``link``)."""
    before = link.received
    try:
        await link.read(Request(Table.HOLDING, 0, 1, unit))
    except ReadError as exc:
        if exc.kind == "timeout":
            # bytes came but no frame pymodbus could take: garble, not silence
            return "garbled" if link.received > before else None
        if exc.kind == "garbage":
            return "garbled"
        if exc.kind == "exception":
            if isinstance(link.bus, TcpBus) and exc.code in ABSENT_CODES:
                return None
            return exc.detail
        raise
    return "data"


async def scan_units(
    link: ModbusLink,
    units: Sequence[int],
    setting: LineSetting | None,
    result: ScanResult,
    *,
    progress: Progress | None = None,
    expect: int | None = None,
) -> None:
    """Probe ``units`` on one link (one line setting), each with the link's whole timeout,
    adding to ``result``."""
    label = str(setting) if setting is not None else "tcp"
    for unit in units:
        if expect is not None and len(result.found) >= expect:
            return
        answer = await probe(link, unit)
        result.probes += 1
        if answer == "garbled":
            result.garbled.setdefault(label, []).append(unit)
        elif answer is not None:
            result.found.append(Found(unit, setting, answer))
        if progress is not None:
            progress(1, f"{label} unit {unit}: {len(result.found)} found")


async def fast_pass(
    link: ModbusLink,
    units: Sequence[int],
    setting: LineSetting,
    result: ScanResult,
    *,
    lookback: int,
    settle: float,
    progress: Progress | None = None,
    expect: int | None = None,
) -> list[int]:
    """Probe ``units`` with a short timeout; return the ones to probe again, slowly.

    A device slower than the short timeout still answers: its reply arrives during a later
    probe (RS-485 loses nothing, it is late). Every byte on the line is counted, so bytes
    beyond the replies that were understood mean a late or garbled reply from one of the
    last ``lookback`` addresses probed, and those are returned to be probed again with the
    whole timeout. An adapter that echoes what it sends makes every address suspect: the
    scan is then as slow as without this pass, never wrong.
    """
    label = str(setting)
    suspects: list[int] = []
    recent: list[int] = []
    mark = link.received
    for unit in units:
        if expect is not None and len(result.found) >= expect:
            return suspects
        answer = await probe(link, unit)
        result.probes += 1
        understood = 0
        if answer is not None and answer != "garbled":
            result.found.append(Found(unit, setting, answer))
            understood = PROBE_REPLY_BYTES if answer == "data" else PROBE_EXCEPTION_BYTES
        else:
            recent.append(unit)
        recent = recent[-lookback:]
        if link.received - mark > understood:
            suspects += [u for u in recent if u not in suspects]
        mark = link.received
        if progress is not None:
            progress(1, f"{label} unit {unit}: {len(result.found)} found")
    await asyncio.sleep(settle)  # the last addresses' late replies
    if link.received > mark:
        suspects += [u for u in recent if u not in suspects]
    return suspects


async def scan_rtu(
    port: str,
    settings: Sequence[LineSetting],
    units: Sequence[int],
    *,
    wait: float | None = None,
    fast: bool = True,
    first: bool = False,
    expect: int | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Probe every unit at every line setting on serial ``port``.

    ``wait``: the longest a device may take to answer (default :func:`default_timeout`).
    ``fast``: probe first with the short timeout of :func:`fast_timeout` and again, with
    ``wait``, only the addresses after which stray bytes came (:func:`fast_pass`).
    ``first``: stop after the first setting at which any device answered cleanly (a line
    whose devices all run at one rate). ``expect``: stop once that many devices answered.
    """
    result = ScanResult()
    start = time.monotonic()
    for i, setting in enumerate(settings):
        if (first and result.found) or (expect is not None and len(result.found) >= expect):
            result.skipped = list(settings[i:])
            if progress is not None:
                progress(len(units) * len(result.skipped), "stopped early")
            break
        slow = wait or default_timeout(setting.baud, setting.parity)
        quick = fast_timeout(setting.baud, setting.parity)
        shown = 0  # probes of this setting on the progress bar (one per address)

        def step(n: int, what: str) -> None:
            nonlocal shown
            shown += n
            if progress is not None:
                progress(n, what)

        todo: Sequence[int] = units
        if fast and quick < slow:
            link = rtu_link(port, setting, quick)
            try:
                await link.connect()
                todo = await fast_pass(
                    link,
                    units,
                    setting,
                    result,
                    lookback=math.ceil(slow / quick) + 1,
                    settle=slow,
                    progress=step,
                    expect=expect,
                )
            finally:
                link.close()
            if todo:
                step(0, f"{setting}: probing {len(todo)} again, slowly")
        link = rtu_link(port, setting, slow)
        try:
            await link.connect()
            await scan_units(
                link,
                todo,
                setting,
                result,
                progress=step if todo is units else None,  # else already on the bar
                expect=expect,
            )
        finally:
            link.close()
        step(len(units) - shown, "")
    order = {s: i for i, s in enumerate(settings)}
    result.found.sort(key=lambda f: (order[f.setting] if f.setting else 0, f.unit))
    result.seconds = time.monotonic() - start
    return result


async def scan_tcp(
    host: str,
    port: int,
    units: Sequence[int],
    *,
    wait: float = 1.0,
    expect: int | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Probe every unit behind a Modbus TCP endpoint (a TCP-to-RTU gateway, or a PLC)."""
    result = ScanResult()
    start = time.monotonic()
    link = tcp_link(host, port, wait)
    try:
        await link.connect()
        await scan_units(link, units, None, result, progress=progress, expect=expect)
    finally:
        link.close()
    result.seconds = time.monotonic() - start
    return result
