"""A GSM modem on a pseudo-terminal: the AT commands of TS 27.005 / 27.007 in PDU mode, with
the network behind it played well enough to test a driver against.

The emulator holds the master side of a pty; a driver opens the slave path (``path``, or a
symlink at ``link`` as udev makes under ``/dev/serial/by-id``) as it would a USB modem.
Like a real modem it:

* echoes what it receives until ``ATE0``; answers ``OK``, ``ERROR``, ``+CME ERROR`` and
  ``+CMS ERROR`` (numeric, or text for CME with ``AT+CMEE=2``; ``ERROR`` with CMEE=0);
* keeps the SIM locked until ``AT+CPIN`` gets the PIN (three wrong tries: SIM PUK); SMS
  commands before that answer ``+CMS ERROR: 311``;
* after ``AT+CMGS=<n>`` prompts ``> ``, takes hex until Ctrl-Z (submit) or ESC (cancel),
  and rejects with ``+CMS ERROR: 304`` a PDU that is not hex, whose TPDU is not ``<n>``
  octets (the SCA not counted) or that is no readable SMS-SUBMIT (each reason kept in
  ``rejected``); answers ``+CMGS: <mr>`` with a fresh message reference;
* decodes each SMS-SUBMIT (``parts``) and joins long messages (``messages``);
* sends ``+CDS`` delivery reports for messages that asked for one, when ``AT+CNMI`` routes
  them (``reports``: delivered, failed, or none);
* stores injected incoming messages (:meth:`inject_incoming`) on the "SIM", announces them
  with ``+CMTI`` (or gives them with ``+CMT``, per ``AT+CNMI``), serves ``AT+CMGR``,
  ``AT+CMGL`` and ``AT+CMGD``;
* holds unsolicited results back while a PDU is being typed.

Faults: :meth:`fail_next` (the network rejects the next sends with a +CMS ERROR code),
``silent`` (a hung modem: reads, answers nothing), :meth:`unplug` / :meth:`replug` (a USB
modem re-enumerating: the pty goes away, a new one comes, the modem state resets).

``python -m simulator.gsm_modem`` serves one for a technician and prints its path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from coldchain.sms.modem import CME_ERRORS
from coldchain.sms.pdu import (
    Concat,
    PduError,
    decode_submit,
    encode_deliver,
    encode_status_report,
    join_parts,
)

log = logging.getLogger(__name__)

ReportMode = Literal["delivered", "failed", "none"]
REPORT_CODES = {"delivered": 0x00, "failed": 0x46}  # TP-ST: received / validity expired
STORAGE = 30  # messages the "SIM" holds
MAX_TPDU = 164  # the longest SMS-SUBMIT TPDU (TS 23.040)


@dataclass(frozen=True, slots=True)
class SubmittedPart:
    """One SMS-SUBMIT the emulator accepted."""

    destination: str
    text: str
    concat: Concat | None
    reference: int  # the TP-MR it answered
    status_report: bool
    received_ms: int


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A whole message: a single SMS, or every part of a long one joined."""

    destination: str
    text: str
    references: tuple[int, ...]
    received_ms: int

    @property
    def parts(self) -> int:
        return len(self.references)


@dataclass
class _Stored:
    pdu: str
    length: int
    stat: int  # 0 REC UNREAD, 1 REC READ


class _FinalResultError(Exception):
    """Ends a command with this final result instead of OK."""

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


class GsmModemEmulator:
    """An emulated modem; ``async with GsmModemEmulator() as modem: modem.path``."""

    def __init__(
        self,
        *,
        pin: str | None = None,
        reports: ReportMode = "delivered",
        report_delay: float = 0.0,
        smsc: str = "+8613800100500",
        link: Path | None = None,
        on_message: Callable[[SentMessage], None] | None = None,
    ) -> None:
        self.pin, self.reports, self.report_delay = pin, reports, report_delay
        self.smsc, self.link, self.on_message = smsc, link, on_message
        self.messages: list[SentMessage] = []
        self.parts: list[SubmittedPart] = []
        self.rejected: list[str] = []
        self.commands: list[str] = []
        self.storage: dict[int, _Stored] = {}
        self.silent = False
        self.received = 0  # bytes read from the driver, silent or not
        self._master = self._slave = -1
        self._tty = ""
        self._mr = 0
        self._in_ref = 0
        self._fail: list[int | None] = []
        self._partial: dict[tuple[str, int, int], dict[int, SubmittedPart]] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._reset()

    def _reset(self) -> None:
        """Power-on state: what a modem forgets when it restarts."""
        self.echo = True
        self.cmee = 0
        self.cmgf = 0
        self.cnmi = (0, 0, 0, 0, 0)
        self.sim = "SIM PIN" if self.pin else "READY"
        self.pin_tries = 3
        self.csca = self.smsc
        self._mode: Literal["command", "pdu"] = "command"
        self._line = bytearray()
        self._pdu_length = 0
        self._deferred: list[str] = []

    # --- lifetime ---------------------------------------------------------------------

    @property
    def path(self) -> str:
        """What a driver opens: the link when there is one, else the pty's slave."""
        return str(self.link) if self.link is not None else self._tty

    async def __aenter__(self) -> GsmModemEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serve on a new pty."""
        self._plug()

    async def stop(self) -> None:
        """Close the pty and forget pending reports."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._unplug()

    def unplug(self) -> None:
        """The USB modem vanishes: the pty closes, a driver reading it gets EIO."""
        self._unplug()

    def replug(self) -> None:
        """The modem comes back on a new pty (the link follows) in its power-on state."""
        self._reset()
        self._plug()

    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no line discipline: bytes pass as they are
        os.set_blocking(self._master, False)
        self._tty = os.ttyname(self._slave)
        if self.link is not None:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self._tty)
        asyncio.get_running_loop().add_reader(self._master, self._readable)
        log.info("GSM modem emulator on %s", self.path)

    def _unplug(self) -> None:
        if self._master < 0:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    # --- test controls ----------------------------------------------------------------

    def fail_next(self, code: int, n: int = 1, *, after: int = 0) -> None:
        """The network rejects ``n`` well-formed sends with ``+CMS ERROR: <code>``, after
        letting ``after`` more through (``after=1``: the second part of a long message)."""
        self._fail += [None] * after + [code] * n

    def inject_incoming(self, sender: str, text: str, *, when: datetime | None = None) -> list[int]:
        """A message from ``sender`` arrives: stored (and announced) one entry per part;
        the storage indexes it took."""
        self._in_ref = (self._in_ref + 1) % 256
        pdus = encode_deliver(
            sender, text, when or datetime.now(UTC), smsc=self.smsc, ref=self._in_ref
        )
        indexes: list[int] = []
        for pdu in pdus:
            length = len(pdu) // 2 - 1 - int(pdu[:2], 16)
            if self.cnmi[1] == 2:  # routed to the TE directly, not stored
                self._urc(f"+CMT: ,{length}\r\n{pdu}")
                continue
            free = [i for i in range(1, STORAGE + 1) if i not in self.storage]
            if not free:
                raise RuntimeError(f"emulated SIM storage is full ({STORAGE} messages)")
            self.storage[free[0]] = _Stored(pdu, length, 0)
            indexes.append(free[0])
            if self.cnmi[1] == 1:
                self._urc(f'+CMTI: "SM",{free[0]}')
        return indexes

    # --- bytes in, bytes out ----------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: nobody holds the slave (cannot happen while we do)
            return
        self._feed(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._master >= 0:
            try:
                view = view[os.write(self._master, view) :]
            except OSError as exc:  # a full pty nobody reads: bytes lost, as on a wire
                log.debug("gsm emulator: %d bytes dropped: %s", len(view), exc)
                return

    def _feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.silent:
            return
        echo = bytearray()
        for byte in data:
            if self.echo:
                echo.append(byte)
            if self._mode == "pdu":
                if byte in (0x1A, 0x1B):
                    self._write(bytes(echo))
                    echo.clear()
                    self._end_pdu(submit=byte == 0x1A)
                else:
                    self._line.append(byte)
            elif byte == 0x0D:
                self._write(bytes(echo))
                echo.clear()
                line = self._line.decode("latin-1")
                self._line.clear()
                self._command(line)
            elif byte == 0x08 and self._line:  # backspace, for a technician typing
                del self._line[-1]
            elif byte != 0x0A:
                self._line.append(byte)
        self._write(bytes(echo))

    def _send_lines(self, lines: list[str], final: str | None) -> None:
        out = "".join(f"\r\n{line}\r\n" for line in lines)
        if final is not None:
            out += f"\r\n{final}\r\n"
        self._write(out.encode("latin-1"))

    def _urc(self, text: str) -> None:
        """An unsolicited result; held back while the driver types a PDU."""
        if self._master < 0 or self.silent:
            return
        if self._mode == "pdu":
            self._deferred.append(text)
        else:
            self._send_lines([text], None)

    def _cme(self, code: int) -> _FinalResultError:
        if self.cmee == 0:
            return _FinalResultError("ERROR")
        return _FinalResultError(
            f"+CME ERROR: {CME_ERRORS.get(code, code) if self.cmee == 2 else code}"
        )

    def _cms(self, code: int) -> _FinalResultError:
        return _FinalResultError("ERROR" if self.cmee == 0 else f"+CMS ERROR: {code}")

    # --- commands ---------------------------------------------------------------------

    def _command(self, raw: str) -> None:
        start = raw.upper().find("AT")
        if start < 0:
            return  # no AT prefix: line noise, ignored like a modem does
        line = raw[start:].strip()
        self.commands.append(line)
        try:
            lines = self._execute(line[2:].upper())
        except _FinalResultError as final:
            self._send_lines([], final.result)
            return
        if lines is not None:  # None: the command answers later (the > prompt)
            self._send_lines(lines, "OK")

    def _execute(self, body: str) -> list[str] | None:  # noqa: PLR0911 - a dispatch
        name, _, arg = body.partition("=")
        if body in ("", "E0", "E1", "E"):  # plain AT, or echo on/off ("E" is E0)
            self.echo = body == "E1" or (self.echo and not body)
            return []
        if body == "Z":
            self._reset()
            return []
        if body in ("I", "+CGMI", "+CGMM"):
            return ["coldchain GSM modem emulator"]
        if body == "+CSQ":
            return ["+CSQ: 20,99"]
        if name == "+CMEE":
            return self._set_int("cmee", "+CMEE", arg, body, (0, 1, 2))
        if name == "+CMGF":
            return self._set_int("cmgf", "+CMGF", arg, body, (0, 1))
        if body.startswith("+CPIN"):
            return self._cpin(body)
        if name == "+CSMS":
            if body.endswith("?"):
                return ["+CSMS: 0,1,1,1"]
            if arg not in ("0", "1"):
                raise self._cms(303)
            return ["+CSMS: 1,1,1"]
        if name == "+CNMI":
            return self._set_cnmi(arg, body)
        if name.startswith(("+CSCA", "+CPMS", "+CMGS", "+CMGR", "+CMGD", "+CMGL")):
            return self._sms_command(name.rstrip("?"), arg, body)
        raise _FinalResultError("ERROR")

    def _set_int(
        self, attr: str, label: str, arg: str, body: str, allowed: tuple[int, ...]
    ) -> list[str]:
        if body.endswith("?"):
            return [f"{label}: {getattr(self, attr)}"]
        if not arg.isdigit() or int(arg) not in allowed:
            raise self._cme(4)
        setattr(self, attr, int(arg))
        return []

    def _set_cnmi(self, arg: str, body: str) -> list[str]:
        if body.endswith("?"):
            return ["+CNMI: " + ",".join(map(str, self.cnmi))]
        fields = [f.strip() for f in arg.split(",")]
        if not all(f.isdigit() or f == "" for f in fields) or len(fields) > 5:
            raise self._cms(303)
        old = list(self.cnmi)
        for i, f in enumerate(fields):
            if f:
                old[i] = int(f)
        self.cnmi = (old[0], old[1], old[2], old[3], old[4])
        return []

    def _cpin(self, body: str) -> list[str]:
        if body == "+CPIN?":
            return [f"+CPIN: {self.sim}"]
        pin = body.partition("=")[2].split(",")[0].strip().strip('"')
        if self.sim == "READY":
            raise self._cme(3)
        if self.sim == "SIM PUK":
            raise self._cme(12)
        if pin == self.pin:
            self.sim = "READY"
            return []
        self.pin_tries -= 1
        if self.pin_tries == 0:
            self.sim = "SIM PUK"
        raise self._cme(16)

    def _sms_command(self, name: str, arg: str, body: str) -> list[str] | None:
        if self.sim != "READY":
            raise self._cms(316 if self.sim == "SIM PUK" else 311)
        if name == "+CSCA":
            if body.endswith("?"):
                return [f'+CSCA: "{self.csca}",145']
            self.csca = arg.split(",", maxsplit=1)[0].strip().strip('"')
            return []
        if name == "+CPMS":
            used = len(self.storage)
            return [f"+CPMS: {used},{STORAGE},{used},{STORAGE},{used},{STORAGE}"]
        if name == "+CMGS":
            self._start_pdu(arg)
            return None
        if name == "+CMGL":
            return self._list(int(arg) if arg.isdigit() else 4)
        index, _, flag = arg.partition(",")
        if not index.isdigit():
            raise self._cms(304)
        if name == "+CMGR":
            return self._read(int(index))
        return self._delete(int(index), int(flag) if flag.isdigit() else 0)

    # --- sending ----------------------------------------------------------------------

    def _start_pdu(self, arg: str) -> None:
        if self.cmgf != 0:
            raise self._cms(302)  # text mode is not emulated
        if not arg.isdigit() or not 7 <= int(arg) <= MAX_TPDU:
            raise self._cms(304)
        self._mode, self._pdu_length = "pdu", int(arg)
        self._line.clear()
        self._write(b"\r\n> ")

    def _end_pdu(self, *, submit: bool) -> None:
        text = self._line.decode("latin-1").strip()
        self._line.clear()
        self._mode = "command"
        if not submit:
            self._send_lines([], "OK")  # ESC: cancelled, nothing sent
        else:
            try:
                self._send_lines(self._submit(text, self._pdu_length), "OK")
            except _FinalResultError as final:
                self._send_lines([], final.result)
        deferred, self._deferred = self._deferred, []
        for urc in deferred:
            self._urc(urc)

    def _reject(self, reason: str) -> _FinalResultError:
        self.rejected.append(reason)
        log.info("gsm emulator: rejected a PDU: %s", reason)
        return self._cms(304)

    def _submit(self, text: str, length: int) -> list[str]:
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise self._reject(f"PDU is not hex: {text[:40]!r}") from None
        if not data or len(data) != length + 1 + data[0]:
            tpdu = len(data) - 1 - data[0] if data else 0
            raise self._reject(f"AT+CMGS={length} but the PDU holds a {tpdu}-octet TPDU")
        if self._fail and (code := self._fail.pop(0)) is not None:
            raise self._cms(code)
        try:
            sub = decode_submit(text)
        except PduError as exc:
            raise self._reject(str(exc)) from None
        self._mr = (self._mr + 1) % 256
        part = SubmittedPart(
            sub.destination, sub.text, sub.concat, self._mr, sub.status_report, _now_ms()
        )
        self.parts.append(part)
        self._join(part)
        if sub.status_report and self.reports != "none":
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(self.report_delay, self._report, part))
        return [f"+CMGS: {self._mr}"]

    def _join(self, part: SubmittedPart) -> None:
        concat = part.concat
        if concat is None or concat.total <= 1:
            self._record(part.destination, [part])
            return
        key = (part.destination, concat.ref, concat.total)
        got = self._partial.setdefault(key, {})
        got[concat.seq] = part
        if all(i in got for i in range(1, concat.total + 1)):
            del self._partial[key]
            self._record(part.destination, [got[i] for i in range(1, concat.total + 1)])

    def _record(self, destination: str, parts: list[SubmittedPart]) -> None:
        text = join_parts([p.text for p in parts])
        message = SentMessage(
            destination, text, tuple(p.reference for p in parts), parts[-1].received_ms
        )
        self.messages.append(message)
        log.info("gsm emulator: message to %s in %d part(s)", destination, len(parts))
        if self.on_message is not None:
            self.on_message(message)

    def _report(self, part: SubmittedPart) -> None:
        if self.cnmi[3] != 1 or self.reports == "none":
            return  # reports not routed to the TE
        now = datetime.now(UTC)
        pdu, length = encode_status_report(
            part.reference,
            part.destination,
            REPORT_CODES[self.reports],
            received=now,
            discharged=now,
            smsc=self.csca,
        )
        self._urc(f"+CDS: {length}\r\n{pdu}")

    # --- storage ----------------------------------------------------------------------

    def _read(self, index: int) -> list[str]:
        stored = self.storage.get(index)
        if stored is None:
            raise self._cms(321)
        lines = [f"+CMGR: {stored.stat},,{stored.length}", stored.pdu]
        stored.stat = 1
        return lines

    def _list(self, stat: int) -> list[str]:
        lines: list[str] = []
        for index in sorted(self.storage):
            stored = self.storage[index]
            if stat in (4, stored.stat):
                lines += [f"+CMGL: {index},{stored.stat},,{stored.length}", stored.pdu]
                stored.stat = 1
        return lines

    def _delete(self, index: int, flag: int) -> list[str]:
        if flag == 0:
            self.storage.pop(index, None)
        else:  # 1: read ones, 2 and 3: also sent/unsent (none kept here), 4: all
            for i in [i for i, s in self.storage.items() if flag == 4 or s.stat == 1]:
                del self.storage[i]
        return []


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- command line -----------------------------------------------------------------------


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _console(emulator: GsmModemEmulator, line: str) -> None:
    words = line.split(maxsplit=2)
    if len(words) == 3 and words[0] == "sms":
        _out(f"stored at {emulator.inject_incoming(words[1], words[2])}")
    elif len(words) >= 2 and words[0] == "fail" and all(w.isdigit() for w in words[1:]):
        emulator.fail_next(int(words[1]), int(words[2]) if len(words) == 3 else 1)
    elif len(words) == 2 and words[0] == "silent":
        emulator.silent = words[1] == "on"
    elif words:
        _out("commands: sms FROM TEXT | fail CODE [N] | silent on|off")


async def _serve(args: argparse.Namespace) -> None:
    def show(message: SentMessage) -> None:
        _out(f"to {message.destination} ({message.parts} part(s)): {message.text}")

    emulator = GsmModemEmulator(pin=args.pin, reports=args.reports, link=args.link, on_message=show)
    async with emulator:
        _out(f"GSM modem emulator on {emulator.path}  (Ctrl-C to stop)")
        _out("commands: sms FROM TEXT | fail CODE [N] | silent on|off")
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def typed() -> None:
            line = sys.stdin.readline()
            if not line:  # end of input: keep serving until interrupted
                loop.remove_reader(sys.stdin.fileno())
                return
            _console(emulator, line.strip())

        with contextlib.suppress(OSError, ValueError):
            loop.add_reader(sys.stdin.fileno(), typed)
        await stop


def main(argv: list[str] | None = None) -> int:
    """``python -m simulator.gsm_modem``: serve an emulated modem until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m simulator.gsm_modem", description=__doc__)
    parser.add_argument("--pin", help="SIM PIN the modem asks for (default: none)")
    parser.add_argument("--reports", choices=("delivered", "failed", "none"), default="delivered")
    parser.add_argument("--link", type=Path, help="also reachable at this symlink")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
