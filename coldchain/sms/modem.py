"""A GSM modem on a serial port, driven by AT commands in PDU mode (TS 27.005 / 27.007).

:class:`Modem` opens the port, brings the modem into a known state (echo off, verbose
errors, SIM unlocked, PDU mode, new messages and delivery reports announced), sends texts
part by part with ``AT+CMGS``, and handles what the modem says unasked while commands run:
``+CDS`` delivery reports, ``+CMTI`` new messages (read, deleted, joined when long).

I/O: pyserial opens and configures the port (baud, raw 8N1, an exclusive lock) and leaves
the descriptor non-blocking; the event loop watches it with ``add_reader``. A thread
blocked in ``read()`` cannot be stopped cleanly when the device vanishes or the driver
closes, and needs polling reads to honour timeouts; a watched descriptor costs nothing while
idle, is cancelled with the task, works the same on a pseudo-terminal and on
``/dev/ttyUSB*`` (Linux epoll supports ttys), and a vanished USB modem shows up at once as
EIO or end-of-file on the next read. (Not for Windows' proactor loop; gateways run Linux.)

One command runs at a time (a lock); each waits for its final result code with a timeout.
A port that fails surfaces as :class:`ModemPortError` and is reopened by the next command
and, in the background, with jittered exponential backoff (a USB modem re-enumerating). A
timeout leaves the modem in an unknown state, so the next command first re-initialises.
A SIM that rejects its PIN is never sent the PIN again (three wrong tries lock it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import serial

from coldchain.sms.pdu import (
    DEFAULT_VALIDITY,
    PduError,
    Reassembler,
    ReportStatus,
    decode_deliver,
    decode_status_report,
    encode_submit,
)

log = logging.getLogger(__name__)

CTRL_Z, ESC = b"\x1a", b"\x1b"
RECONNECT_MAX_S = 60.0
OnStatus = Callable[[int, ReportStatus], Awaitable[None] | None]
OnIncoming = Callable[[str, str], Awaitable[None] | None]

# TS 27.005 3.2.5 (+CMS ERROR) and 24.011 RP-causes, the ones a sender meets.
CMS_ERRORS = {
    1: "unassigned (unallocated) number",
    8: "operator determined barring",
    10: "call barred",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    96: "invalid mandatory information",
    111: "protocol error",
    300: "ME failure",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    316: "SIM PUK required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    500: "unknown error",
}
# TS 27.007 9.2 (+CME ERROR).
CME_ERRORS = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    30: "no network service",
    31: "network timeout",
    100: "unknown",
}


class ModemError(Exception):
    """Something went wrong talking to the modem; names the port and the command."""

    def __init__(self, port: str, command: str | None, detail: str) -> None:
        where = f"{port}: {command}" if command else port
        super().__init__(f"{where}: {detail}")
        self.port, self.command, self.detail = port, command, detail


class ModemTimeoutError(ModemError):
    """No answer (or no ``>`` prompt) within the timeout."""


class ModemPortError(ModemError):
    """The serial port cannot be opened, or failed (unplugged, re-enumerating)."""


class SimError(ModemError):
    """The SIM is missing, locked, or wants a PIN that is not configured or was rejected."""


class ModemCommandError(ModemError):
    """The modem answered ``ERROR``, ``+CME ERROR`` or ``+CMS ERROR``.

    ``kind`` is "CMS", "CME" or "" (a bare ERROR); ``code`` is the number when the modem
    gave one (with ``AT+CMEE=2`` some give text instead), ``meaning`` the text."""

    def __init__(
        self, port: str, command: str, *, kind: str, code: int | None, meaning: str
    ) -> None:
        if kind:
            label = f"+{kind} ERROR {code}" if code is not None else f"+{kind} ERROR"
            detail = f"{label}: {meaning}" if meaning else label
        else:
            detail = "ERROR"
        super().__init__(port, command, detail)
        self.kind, self.code, self.meaning = kind, code, meaning


def parse_error(port: str, command: str, line: str) -> ModemCommandError:
    """The exception for a final error result such as ``+CMS ERROR: 21``."""
    m = re.match(r"\+(CM[ES]) ERROR:\s*(.*)$", line)
    if m is None:
        return ModemCommandError(port, command, kind="", code=None, meaning="")
    kind, value = m.group(1), m.group(2).strip()
    table = CMS_ERRORS if kind == "CMS" else CME_ERRORS
    if value.isdigit():
        code = int(value)
        return ModemCommandError(
            port, command, kind=kind, code=code, meaning=table.get(code, "see the modem's manual")
        )
    return ModemCommandError(port, command, kind=kind, code=None, meaning=value)


_FINAL_ERRORS = ("ERROR", "+CME ERROR:", "+CMS ERROR:", "NO CARRIER", "COMMAND NOT SUPPORT")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Lines:
    """Splits what the modem sends into lines, and the ``>`` prompt of ``AT+CMGS`` (which
    ends in a space, not a line break). ``None`` stands for the prompt."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[str | None]:
        self.buf += data
        out: list[str | None] = []
        while True:
            while self.buf and self.buf[0] in b"\r\n":
                del self.buf[0]
            if self.buf[:1] == b">":
                out.append(None)
                del self.buf[: 2 if self.buf[1:2] == b" " else 1]
                continue
            ends = [i for i in (self.buf.find(b"\r"), self.buf.find(b"\n")) if i >= 0]
            if not ends:
                return out
            end = min(ends)
            line = _CONTROL.sub("", self.buf[:end].decode("ascii", "replace")).strip()
            del self.buf[: end + 1]
            if line:
                out.append(line)


@dataclass
class _Pending:
    """The command in flight: its response lines and its final result."""

    command: str  # as shown in errors (a PIN masked)
    sent: str  # as sent, to recognise its echo
    done: asyncio.Future[list[str]]
    prompt: asyncio.Future[None] | None
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Urc:
    """Unsolicited: a status report (CDS), a message given directly (CMT) or announced
    as stored (CMTI), or a stored message already read and deleted (STORED)."""

    kind: Literal["CDS", "CMT", "CMTI", "STORED"]
    pdu: str = ""
    length: int | None = None
    memory: str = ""
    index: int = 0


class Modem:
    """An AT-command GSM modem on ``port``; use ``async with`` or :meth:`open`/:meth:`close`.

    ``timeout`` bounds each command (and each part's ``AT+CMGS``), in seconds.
    ``on_status(mr, status)`` gets each delivery report; ``on_incoming(sender, text)``
    each received message, long ones joined. Either may be a coroutine function; both run
    in the driver's own task, outside the command lock (they may call :meth:`send`).
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = 115200,
        pin: str | None = None,
        smsc: str | None = None,
        timeout: float = 10.0,
        on_status: OnStatus | None = None,
        on_incoming: OnIncoming | None = None,
        reconnect: bool = True,
    ) -> None:
        self.port, self.baud, self.smsc, self.timeout = port, baud, smsc, timeout
        self._pin = pin
        self.on_status, self.on_incoming = on_status, on_incoming
        self.reconnect = reconnect
        self._ser: serial.Serial | None = None
        self._lines = _Lines()
        self._active: _Pending | None = None
        self._lock = asyncio.Lock()
        self._ready = False
        self._closing = False
        self._sim_blocked: str | None = None
        self._urc_pdu: tuple[Literal["CDS", "CMT"], int | None] | None = None
        self._urcs: asyncio.Queue[_Urc] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._incoming = Reassembler()
        self._memory: str | None = None
        self._concat_ref = random.randrange(256)  # noqa: S311 - a message id, not a secret

    # --- lifetime ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The port is open and the modem initialised."""
        return self._ser is not None and self._ready

    async def __aenter__(self) -> Modem:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the port and initialise the modem; raises :class:`ModemError`."""
        self._closing = False
        async with self._lock:
            await self._ensure_ready()

    async def close(self) -> None:
        """Close the port and stop the driver's tasks."""
        self._closing = True
        for task in (self._reconnector, self._worker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reconnector = self._worker = None
        self._close_port("the driver was closed")

    # --- public commands --------------------------------------------------------------

    async def send(
        self,
        to: str,
        text: str,
        *,
        status_report: bool = True,
        validity: float | None = DEFAULT_VALIDITY,
    ) -> list[int]:
        """Send ``text`` to ``to`` (E.164 with ``+``), one ``AT+CMGS`` per part; the message
        references (TP-MR) the network gave the parts, in order.

        Raises :class:`~coldchain.sms.pdu.PduError` for a bad number or a text too long
        for 255 parts, :class:`ModemError` subclasses for everything the modem says."""
        self._concat_ref = (self._concat_ref + 1) % 256
        pdus = encode_submit(
            to, text, status_report=status_report, ref=self._concat_ref, validity=validity
        )
        refs: list[int] = []
        async with self._lock:
            await self._ensure_ready()
            for i, pdu in enumerate(pdus, 1):
                shown = f"AT+CMGS={pdu.length}"
                if len(pdus) > 1:
                    shown += f" (part {i}/{len(pdus)} to {to})"
                lines = await self._run(f"AT+CMGS={pdu.length}", payload=pdu.hex, shown=shown)
                refs.append(self._message_reference(lines, shown))
        # The lock is released and the references returned without an await in between,
        # so a caller that records them before its next await sees every report (the
        # report handler waits for the lock first).
        return refs

    async def command(
        self, command: str, *, payload: str | None = None, within: float | None = None
    ) -> list[str]:
        """Run one AT command (for diagnostics such as ``AT+CSQ``); its response lines.
        With ``payload`` the command must prompt ``>`` for it (``AT+CMGS``). ``within``
        overrides the timeout."""
        async with self._lock:
            await self._ensure_ready()
            return await self._run(command, payload=payload, within=within)

    # --- opening and initialising ----------------------------------------------------

    async def _ensure_ready(self) -> None:
        if self._sim_blocked is not None:
            raise SimError(self.port, None, self._sim_blocked)
        if self._ser is None:
            self._open_port()
        if not self._ready:
            await self._initialise()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._urc_loop(), name=f"gsm urc {self.port}")

    def _open_port(self) -> None:
        try:
            ser = serial.Serial(self.port, self.baud, timeout=0, write_timeout=0, exclusive=True)
        except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
            raise ModemPortError(self.port, None, f"cannot open the port: {exc}") from exc
        os.set_blocking(ser.fileno(), False)
        self._ser = ser
        self._lines = _Lines()
        self._urc_pdu = None
        asyncio.get_running_loop().add_reader(ser.fileno(), self._readable)
        log.info("%s: opened at %d baud", self.port, self.baud)

    def _close_port(self, why: str) -> None:
        ser, self._ser = self._ser, None
        self._ready = False
        if ser is None:
            return
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_reader(ser.fileno())
        with contextlib.suppress(OSError):
            ser.close()
        pending = self._active
        if pending is not None and not pending.done.done():
            pending.done.set_exception(ModemPortError(self.port, pending.command, why))

    async def _initialise(self) -> None:
        await self._sync()
        for command in ("ATE0", "AT+CMEE=2"):
            await self._run(command)
        await self._unlock_sim()
        await self._run("AT+CMGF=0")
        try:  # phase 2: delivery reports need no +CNMA acknowledgement
            await self._run("AT+CSMS=0")
        except ModemCommandError as exc:
            log.info("%s: AT+CSMS=0 not supported (%s); going on", self.port, exc.detail)
        await self._run("AT+CNMI=2,1,0,1,0")
        if self.smsc is not None:
            await self._run(f'AT+CSCA="{self.smsc}",145')
        self._memory = None
        self._ready = True
        log.info("%s: modem ready", self.port)
        await self._collect_stored()

    async def _sync(self) -> None:
        """``AT`` until the modem answers, a few tries within one timeout. An ESC first
        cancels a ``>`` prompt a crashed predecessor may have left open."""
        await self._write(ESC, "ESC")
        tries = 3
        for _ in range(tries):
            try:
                await self._run("AT", within=self.timeout / tries)
            except ModemTimeoutError:
                continue
            except ModemCommandError:
                pass  # an ERROR to a bare AT is still an answer: it lives
            return
        raise ModemTimeoutError(
            self.port,
            "AT",
            f"no answer to {tries} tries within {self.timeout:g}s; "
            f"is a modem on this port, at {self.baud} baud?",
        )

    async def _unlock_sim(self) -> None:
        state = await self._sim_state()
        if state == "READY":
            return
        if state == "SIM PIN":
            if self._pin is None:
                raise SimError(self.port, "AT+CPIN?", "the SIM asks for a PIN; configure pin")
            try:
                await self._run(f'AT+CPIN="{self._pin}"', shown='AT+CPIN="****"')
            except ModemCommandError as exc:
                self._sim_blocked = (
                    f"the SIM rejected the PIN ({exc.detail}); it is not tried again, so as not "
                    "to lock the SIM: fix pin and restart"
                )
                raise SimError(self.port, 'AT+CPIN="****"', self._sim_blocked) from exc
            await self._await_sim_ready()
            return
        if state == "SIM PUK":
            self._sim_blocked = "the SIM is locked (SIM PUK): unlock it with its PUK in a phone"
            raise SimError(self.port, "AT+CPIN?", self._sim_blocked)
        raise SimError(self.port, "AT+CPIN?", f"the SIM is not ready: {state}")

    async def _sim_state(self) -> str:
        try:
            lines = await self._run("AT+CPIN?")
        except ModemCommandError as exc:
            raise SimError(self.port, "AT+CPIN?", exc.detail) from exc
        for line in lines:
            if line.startswith("+CPIN:"):
                return line.partition(":")[2].strip()
        raise SimError(self.port, "AT+CPIN?", f"no +CPIN: in the answer {lines!r}")

    async def _await_sim_ready(self) -> None:
        """After the PIN a SIM takes a moment (seconds on real modems) to become ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (state := await self._sim_state()) != "READY":
            if loop.time() > deadline:
                raise SimError(self.port, "AT+CPIN?", f"SIM still {state} after the PIN")
            await asyncio.sleep(0.5)  # the modem's SIM start-up; nothing to wait on but time

    async def _collect_stored(self) -> None:
        """Messages that arrived while nobody listened: read, delete, pass on."""
        try:
            lines = await self._run("AT+CMGL=4")
        except ModemCommandError as exc:
            log.warning("%s: cannot list stored messages: %s", self.port, exc.detail)
            return
        for header, pdu in _with_pdus(lines, "+CMGL:"):
            index, stat = int(header[0]), int(header[1])
            if stat not in (0, 1):  # 2, 3: our own stored outgoing messages
                continue
            await self._run(f"AT+CMGD={index}")
            self._urcs.put_nowait(_Urc("STORED", pdu=pdu, length=_int_or_none(header[-1])))

    # --- one command ------------------------------------------------------------------

    async def _run(
        self,
        command: str,
        *,
        payload: str | None = None,
        within: float | None = None,
        shown: str | None = None,
    ) -> list[str]:
        """Send ``command`` (the lock held) and return its response lines on ``OK``."""
        shown = shown or command
        limit = self.timeout if within is None else within
        if self._ser is None:
            raise ModemPortError(self.port, shown, "the port is closed")
        loop = asyncio.get_running_loop()
        prompt: asyncio.Future[None] | None = loop.create_future() if payload else None
        pending = _Pending(shown, command, loop.create_future(), prompt)
        self._active = pending
        waiting_for = "an answer"
        try:
            async with asyncio.timeout(limit):
                await self._write(command.encode("ascii") + b"\r", shown)
                if pending.prompt is not None and payload is not None:
                    waiting_for = "'> ' prompt"
                    await asyncio.wait(
                        (pending.prompt, pending.done), return_when=asyncio.FIRST_COMPLETED
                    )
                    if not pending.done.done():
                        waiting_for = "answer to the PDU"
                        await self._write(payload.encode("ascii") + CTRL_Z, shown)
                    elif not pending.prompt.done():
                        pending.done.result()  # raises the error the modem gave instead
                        raise ModemError(self.port, shown, "answered without a '> ' prompt")
            async with asyncio.timeout(limit):
                return await pending.done
        except TimeoutError:
            self._ready = False  # unknown state: initialise again before the next command
            if waiting_for != "an answer":
                with contextlib.suppress(ModemError):
                    await self._write(ESC, "ESC")  # leave the prompt, if the modem is in it
            raise ModemTimeoutError(
                self.port, shown, f"no {waiting_for} within {limit:g}s"
            ) from None
        finally:
            self._active = None
            if pending.prompt is not None:
                pending.prompt.cancel()
            if not pending.done.done():
                pending.done.cancel()
            elif not pending.done.cancelled():
                pending.done.exception()  # retrieved: raised above or superseded by ours

    async def _write(self, data: bytes, command: str) -> None:
        view = memoryview(data)
        while view:
            ser = self._ser
            if ser is None:
                raise ModemPortError(self.port, command, "the port is closed")
            try:
                view = view[os.write(ser.fileno(), view) :]
            except BlockingIOError:
                await self._writable(ser.fileno())
            except OSError as exc:
                self._lost(exc)
                raise ModemPortError(self.port, command, f"write failed: {exc}") from exc

    async def _writable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            with contextlib.suppress(OSError, ValueError):  # the port may have gone meanwhile
                loop.remove_writer(fd)

    def _message_reference(self, lines: list[str], shown: str) -> int:
        for line in lines:
            if line.startswith("+CMGS:"):
                value = line.partition(":")[2].split(",")[0].strip()
                if value.isdigit():
                    return int(value)
        raise ModemError(self.port, shown, f"OK without a +CMGS: <mr> line ({lines!r})")

    # --- what the modem says ----------------------------------------------------------

    def _readable(self) -> None:
        ser = self._ser
        if ser is None:
            return
        try:
            data = os.read(ser.fileno(), 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        for line in self._lines.feed(data):
            self._dispatch(line)

    def _lost(self, exc: OSError | None) -> None:
        if self._ser is None:
            return
        why = f"the port failed: {exc}" if exc else "the port closed (modem unplugged?)"
        log.warning("%s: %s", self.port, why)
        self._close_port(why)
        if self.reconnect and not self._closing and self._reconnector is None:
            self._reconnector = asyncio.get_running_loop().create_task(
                self._reconnect_loop(), name=f"gsm reconnect {self.port}"
            )

    def _dispatch(self, line: str | None) -> None:
        pending = self._active
        if line is None:
            if pending is not None and pending.prompt is not None and not pending.prompt.done():
                pending.prompt.set_result(None)
            return
        if self._urc_pdu is not None:  # the line after +CDS: / +CMT: is its PDU
            kind, length = self._urc_pdu
            self._urc_pdu = None
            self._urcs.put_nowait(_Urc(kind, pdu=line, length=length))
            return
        if line.startswith(("+CDS:", "+CMT:")):
            self._urc_pdu = ("CDS" if line.startswith("+CDS:") else "CMT", _last_int(line))
            return
        if line.startswith("+CMTI:"):
            memory, _, index = line.partition(":")[2].rpartition(",")
            self._urcs.put_nowait(_Urc("CMTI", memory=memory.strip().strip('"'), index=int(index)))
            return
        if pending is None or pending.done.done():
            log.debug("%s: unsolicited %r", self.port, line)
            return
        if line == pending.sent:
            return  # the echo, before ATE0
        if line == "OK":
            pending.done.set_result(pending.lines)
        elif line.startswith(_FINAL_ERRORS):
            pending.done.set_exception(parse_error(self.port, pending.command, line))
        else:
            pending.lines.append(line)

    async def _urc_loop(self) -> None:
        """Handles unsolicited results one by one; a failure is logged, never fatal."""
        while True:
            urc = await self._urcs.get()
            try:
                await self._handle(urc)
            except ModemError as exc:
                log.warning("%s: %s", self.port, exc)
            except PduError as exc:
                log.warning("%s: unreadable %s PDU %s: %s", self.port, urc.kind, urc.pdu, exc)
            except Exception:
                log.exception("%s: handling %s", self.port, urc)

    async def _handle(self, urc: _Urc) -> None:
        async with self._lock:  # a barrier: the send in flight records its references first
            if urc.kind == "CMTI":
                urc = await self._read_stored(urc)
        if urc.kind == "CDS":
            report = decode_status_report(urc.pdu, tpdu_length=urc.length)
            log.info(
                "%s: report for mr %d to %s: %s (%s)",
                self.port,
                report.reference,
                report.recipient,
                report.status,
                report.meaning,
            )
            await _call(self.on_status, report.reference, report.status)
            return
        deliver = decode_deliver(urc.pdu, tpdu_length=urc.length)
        text = self._incoming.add(deliver.originator, deliver.text, deliver.concat)
        if text is not None:
            log.info("%s: message from %s (%d chars)", self.port, deliver.originator, len(text))
            await _call(self.on_incoming, deliver.originator, text)

    async def _read_stored(self, urc: _Urc) -> _Urc:
        """Read and delete the message a ``+CMTI`` announced (the lock held)."""
        if not self.connected:
            raise ModemPortError(self.port, f"AT+CMGR={urc.index}", "port closed; read at reopen")
        if urc.memory and urc.memory != self._memory:
            await self._run(f'AT+CPMS="{urc.memory}"')
            self._memory = urc.memory
        lines = await self._run(f"AT+CMGR={urc.index}")
        await self._run(f"AT+CMGD={urc.index}")
        found = _with_pdus(lines, "+CMGR:")
        if not found:
            raise ModemError(self.port, f"AT+CMGR={urc.index}", f"no message in {lines!r}")
        header, pdu = found[0]
        return _Urc("STORED", pdu=pdu, length=_int_or_none(header[-1]))

    async def _reconnect_loop(self) -> None:
        """Reopen a lost port with jittered, capped exponential backoff until it works."""
        backoff = 1.0
        try:
            while not self._closing:
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
                async with self._lock:
                    if self.connected:
                        return
                    try:
                        await self._ensure_ready()
                        log.info("%s: reopened", self.port)
                        return
                    except SimError as exc:
                        log.error("%s", exc)
                        return
                    except ModemError as exc:
                        log.info("%s: not back yet: %s", self.port, exc.detail)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
        finally:
            self._reconnector = None


async def _call(callback: Callable[..., Awaitable[None] | None] | None, *args: object) -> None:
    if callback is None:
        return
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


def _last_int(line: str) -> int | None:
    """The trailing number of ``+CDS: 25`` or ``+CMT: "",25`` (the TPDU length)."""
    m = re.search(r"(\d+)\s*$", line)
    return int(m.group(1)) if m else None


def _int_or_none(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def _with_pdus(lines: list[str], prefix: str) -> list[tuple[list[str], str]]:
    """``+CMGR:``/``+CMGL:`` headers (their comma-separated fields) with the PDU line after."""
    out: list[tuple[list[str], str]] = []
    for i, line in enumerate(lines):
        if line.startswith(prefix) and i + 1 < len(lines):
            fields = [f.strip() for f in line[len(prefix) :].split(",")]
            out.append((fields, lines[i + 1]))
    return out
