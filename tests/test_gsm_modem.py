"""The GSM modem driver (coldchain.sms.modem) and notifier (coldchain.sms.gsm) against the
modem emulator (simulator.gsm_modem) over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from alerts.notifiers.base import Notifier
from coldchain.config.notify import GsmModem
from coldchain.sms.gsm import GsmNotifier
from coldchain.sms.modem import (
    Modem,
    ModemCommandError,
    ModemPortError,
    ModemTimeoutError,
    SimError,
)
from coldchain.sms.pdu import decode_status_report, encode_submit
from coldchain.sms.types import DeliveryStatus, SendError, Sms
from simulator.gsm_modem import GsmModemEmulator, ReportMode
from tests.services import until

PHONE = "+8613912345678"
ALARM_EN = "ALARM cold room 2 (poultry): 9.6 C above 4.0 C for 15 min. Reply 1 to acknowledge."
# Chinese punctuation is full width (RUF001 mistakes it for look-alikes).
ALARM_ZH = (
    "【冷链告警】城区仓库二号冷库（禽肉）温度9.6℃，已超过上限4.0℃持续15分钟。"  # noqa: RUF001
    "请值班人员立即检查制冷机组和库门是否关好，处理后回复1确认，回复2升级给主管。"  # noqa: RUF001
)
REPLY_ZH = "收到，马上到冷库检查制冷机组。" * 6  # noqa: RUF001 - 90 characters: two parts


@pytest.fixture
async def emulator() -> AsyncIterator[GsmModemEmulator]:
    async with GsmModemEmulator() as emu:
        yield emu


def settings(emu: GsmModemEmulator, **extra: object) -> GsmModem:
    return GsmModem.model_validate({"id": "gsm-1", "port": emu.path, "timeout": "2s", **extra})


def sms(text: str, ref: str = "n-1") -> Sms:
    return Sms(to=PHONE, text=text, kind="alarm", ref=ref)


# --- opening ------------------------------------------------------------------------------


def test_the_notifier_has_the_notifier_shape(emulator: GsmModemEmulator) -> None:
    notifier: Notifier = GsmNotifier(settings(emulator))  # checked by mypy: structural
    assert (notifier.id, notifier.texts_phones) == ("gsm-1", True)


async def test_open_puts_the_modem_in_pdu_mode_with_reports(emulator: GsmModemEmulator) -> None:
    async with Modem(emulator.path, timeout=2) as modem:
        assert modem.connected
    wanted = ["AT", "ATE0", "AT+CMEE=2", "AT+CPIN?", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0"]
    assert [c for c in emulator.commands if c in wanted] == wanted
    assert not emulator.echo
    assert emulator.cmgf == 0
    assert emulator.cnmi == (2, 1, 0, 1, 0)


async def test_open_sets_the_sms_centre_when_configured(emulator: GsmModemEmulator) -> None:
    async with Modem(emulator.path, timeout=2, smsc="+8613800571500"):
        pass
    assert 'AT+CSCA="+8613800571500",145' in emulator.commands
    assert emulator.csca == "+8613800571500"


async def test_open_enters_the_pin() -> None:
    async with GsmModemEmulator(pin="4711") as emu, Modem(emu.path, pin="4711", timeout=2) as m:
        assert emu.sim == "READY"
        await m.send(PHONE, "PIN ok")
    assert emu.messages[0].text == "PIN ok"


async def test_a_sim_asking_for_a_pin_that_is_not_configured() -> None:
    async with GsmModemEmulator(pin="4711") as emu:
        modem = Modem(emu.path, timeout=2)
        with pytest.raises(SimError, match=r"AT\+CPIN\?: the SIM asks for a PIN; configure pin"):
            await modem.open()
        await modem.close()


async def test_a_rejected_pin_is_never_tried_again() -> None:
    async with GsmModemEmulator(pin="4711") as emu:
        modem = Modem(emu.path, pin="0000", timeout=2)
        with pytest.raises(SimError, match=r"rejected the PIN \(\+CME ERROR: incorrect password\)"):
            await modem.open()
        with pytest.raises(SimError, match="not tried again, so as not to lock the SIM"):
            await modem.send(PHONE, "again?")
        await modem.close()
        assert emu.pin_tries == 2  # one wrong try, not three: the SIM is not PUK-locked


async def test_no_modem_on_the_port(tmp_path: Path) -> None:
    modem = Modem(str(tmp_path / "ttyUSB9"), timeout=2)
    with pytest.raises(ModemPortError, match=r"ttyUSB9: cannot open the port: .*No such file"):
        await modem.open()


# --- sending ------------------------------------------------------------------------------


async def test_send_a_short_english_text(emulator: GsmModemEmulator) -> None:
    async with Modem(emulator.path, timeout=2) as modem:
        refs = await modem.send(PHONE, ALARM_EN)
    [message] = emulator.messages
    assert (message.destination, message.text, message.references) == (PHONE, ALARM_EN, (1,))
    assert refs == [1]
    [part] = emulator.parts
    assert part.status_report
    assert part.concat is None


async def test_send_a_long_chinese_text_in_parts(emulator: GsmModemEmulator) -> None:
    assert len(ALARM_ZH) > 70
    notifier = GsmNotifier(settings(emulator))
    try:
        delivery = await notifier.send(sms(ALARM_ZH))
    finally:
        await notifier.aclose()
    [message] = emulator.messages
    assert message.text == ALARM_ZH
    assert message.destination == PHONE
    assert delivery.parts == message.parts == 2
    assert (delivery.notifier, delivery.status) == ("gsm-1", "accepted")
    assert delivery.provider_ref == ",".join(map(str, message.references))
    concat = [p.concat for p in emulator.parts]
    assert [(c.total, c.seq) for c in concat if c] == [(2, 1), (2, 2)]


async def test_two_long_messages_get_different_concatenation_references(
    emulator: GsmModemEmulator,
) -> None:
    async with Modem(emulator.path, timeout=2) as modem:
        await modem.send(PHONE, ALARM_ZH)
        await modem.send(PHONE, ALARM_ZH)
    refs = {p.concat.ref for p in emulator.parts if p.concat}
    assert len(refs) == 2
    assert [m.text for m in emulator.messages] == [ALARM_ZH, ALARM_ZH]


@pytest.mark.parametrize(("mode", "expected"), [("delivered", "delivered"), ("failed", "failed")])
async def test_delivery_reports_reach_the_callback_with_the_sms_ref(
    mode: ReportMode, expected: DeliveryStatus
) -> None:
    got: list[tuple[str, DeliveryStatus]] = []
    async with GsmModemEmulator(reports=mode) as emu:
        notifier = GsmNotifier(settings(emu), on_delivery=lambda ref, s: got.append((ref, s)))
        try:
            await notifier.send(sms(ALARM_ZH, ref="alarm-42"))  # two parts, two reports
            await notifier.send(sms(ALARM_EN, ref="alarm-43"))
            await until(lambda: len(got) == 2, "two delivery reports")
        finally:
            await notifier.aclose()
    assert sorted(got) == [("alarm-42", expected), ("alarm-43", expected)]


async def test_async_delivery_callback(emulator: GsmModemEmulator) -> None:
    got = asyncio.Event()

    async def on_delivery(ref: str, status: DeliveryStatus) -> None:
        assert (ref, status) == ("n-7", "delivered")
        got.set()

    notifier = GsmNotifier(settings(emulator), on_delivery=on_delivery)
    try:
        await notifier.send(sms("hi", ref="n-7"))
        async with asyncio.timeout(5):
            await got.wait()
    finally:
        await notifier.aclose()


async def test_no_report_asked_when_disabled(emulator: GsmModemEmulator) -> None:
    notifier = GsmNotifier(settings(emulator, delivery_reports=False))
    try:
        await notifier.send(sms("no report please"))
    finally:
        await notifier.aclose()
    assert not emulator.parts[0].status_report


async def test_pin_from_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSM_TEST_PIN", "2468")
    async with GsmModemEmulator(pin="2468") as emu:
        notifier = GsmNotifier(settings(emu, pin="env:GSM_TEST_PIN"))
        try:
            await notifier.send(sms("PIN from the environment"))
        finally:
            await notifier.aclose()
        assert emu.messages[0].text == "PIN from the environment"


# --- incoming -----------------------------------------------------------------------------


async def test_an_incoming_reply_reaches_on_incoming(emulator: GsmModemEmulator) -> None:
    got: list[tuple[str, str]] = []
    async with Modem(emulator.path, timeout=2, on_incoming=lambda s, t: got.append((s, t))):
        emulator.inject_incoming("+8613800000001", "1")
        emulator.inject_incoming("+8613800000002", REPLY_ZH)
        await until(lambda: len(got) == 2, "two incoming messages")
        await until(lambda: not emulator.storage, "the messages deleted from the SIM")
    assert got == [("+8613800000001", "1"), ("+8613800000002", REPLY_ZH)]
    assert {"AT+CMGR=1", "AT+CMGD=1"} <= set(emulator.commands)


async def test_messages_stored_before_opening_are_read(emulator: GsmModemEmulator) -> None:
    emulator.inject_incoming("+8613800000001", "arrived while the agent was down")
    got: list[tuple[str, str]] = []
    async with Modem(emulator.path, timeout=2, on_incoming=lambda s, t: got.append((s, t))):
        await until(lambda: bool(got), "the stored message")
    assert got == [("+8613800000001", "arrived while the agent was down")]
    assert not emulator.storage


async def test_a_message_given_directly_with_cmt(emulator: GsmModemEmulator) -> None:
    got: list[tuple[str, str]] = []
    async with Modem(emulator.path, timeout=2, on_incoming=lambda s, t: got.append((s, t))) as m:
        await m.command("AT+CNMI=2,2,0,1,0")  # as another program may have left it
        emulator.inject_incoming("+8613800000001", REPLY_ZH)
        await until(lambda: bool(got), "the message")
    assert got == [("+8613800000001", REPLY_ZH)]
    assert not emulator.storage  # +CMT: never stored


async def test_notifier_passes_incoming_on(emulator: GsmModemEmulator) -> None:
    got: list[tuple[str, str]] = []
    notifier = GsmNotifier(settings(emulator), on_incoming=lambda s, t: got.append((s, t)))
    try:
        await notifier.open()
        emulator.inject_incoming("+8613800000001", "2")
        await until(lambda: bool(got), "the reply")
    finally:
        await notifier.aclose()
    assert got == [("+8613800000001", "2")]


# --- failures -----------------------------------------------------------------------------


async def test_cms_error_is_clear(emulator: GsmModemEmulator) -> None:
    async with Modem(emulator.path, timeout=2) as modem:
        emulator.fail_next(21)
        with pytest.raises(ModemCommandError) as caught:
            await modem.send(PHONE, ALARM_EN)
        length = encode_submit(PHONE, ALARM_EN)[0].length
        assert str(caught.value) == (
            f"{emulator.path}: AT+CMGS={length}: +CMS ERROR 21: short message transfer rejected"
        )
        assert (caught.value.kind, caught.value.code) == ("CMS", 21)
        assert await modem.send(PHONE, ALARM_EN) == [1]  # the next one goes through


async def test_cms_error_in_the_second_part_names_the_part(emulator: GsmModemEmulator) -> None:
    async with Modem(emulator.path, timeout=2) as modem:
        emulator.fail_next(38, after=1)
        with pytest.raises(
            ModemCommandError, match=r"\(part 2/2 to \+8613912345678\): \+CMS ERROR 38: network out"
        ):
            await modem.send(PHONE, ALARM_ZH)
    assert len(emulator.parts) == 1  # the first part went; no message is whole


@pytest.mark.parametrize(
    ("code", "retryable", "meaning"),
    [
        (21, True, "short message transfer rejected"),  # often a SIM without credit
        (331, True, "no network service"),
        (1, False, "unassigned (unallocated) number"),
    ],
)
async def test_notifier_says_whether_to_retry(
    emulator: GsmModemEmulator, code: int, retryable: bool, meaning: str
) -> None:
    notifier = GsmNotifier(settings(emulator))
    try:
        emulator.fail_next(code)
        with pytest.raises(SendError) as caught:
            await notifier.send(sms(ALARM_EN, ref="n-9"))
    finally:
        await notifier.aclose()
    assert caught.value.retryable is retryable
    assert str(caught.value).startswith("gsm-1: message n-9: ")
    assert f"+CMS ERROR {code}: {meaning}" in str(caught.value)


async def test_a_bad_number_is_not_retryable(emulator: GsmModemEmulator) -> None:
    notifier = GsmNotifier(settings(emulator))
    with pytest.raises(SendError, match="recipient '110-abc' is not a phone number") as caught:
        await notifier.send(Sms(to="110-abc", text="x", kind="alarm", ref="n-1"))
    assert not caught.value.retryable
    await notifier.aclose()


async def test_a_silent_modem_times_out_within_the_timeout(emulator: GsmModemEmulator) -> None:
    async with Modem(emulator.path, timeout=0.5) as modem:
        emulator.silent = True
        started = time.monotonic()
        with pytest.raises(ModemTimeoutError, match=r"AT\+CMGS=\d+: no '> ' prompt within 0.5s"):
            await modem.send(PHONE, ALARM_EN)
        assert time.monotonic() - started < 0.5 + 0.4
        emulator.silent = False
        assert await modem.send(PHONE, ALARM_EN) == [1]
    assert emulator.commands.count("ATE0") == 2  # a timeout makes the driver start over


async def test_silent_from_the_start_gives_up_within_the_timeout(
    emulator: GsmModemEmulator,
) -> None:
    emulator.silent = True
    modem = Modem(emulator.path, timeout=0.6)
    started = time.monotonic()
    with pytest.raises(ModemTimeoutError, match=r"AT: no answer to 3 tries within 0.6s"):
        await modem.open()
    assert time.monotonic() - started < 0.6 + 0.4
    await modem.close()


async def test_emulator_rejects_a_pdu_whose_length_does_not_match(
    emulator: GsmModemEmulator,
) -> None:
    [pdu] = encode_submit(PHONE, "length check")
    async with Modem(emulator.path, timeout=2) as modem:
        with pytest.raises(ModemCommandError, match=r"\+CMS ERROR 304: invalid PDU mode parameter"):
            await modem.command(f"AT+CMGS={pdu.length + 1}", payload=pdu.hex)
        lines = await modem.command(f"AT+CMGS={pdu.length}", payload=pdu.hex)
    assert emulator.rejected == [
        f"AT+CMGS={pdu.length + 1} but the PDU holds a {pdu.length}-octet TPDU"
    ]
    assert lines == ["+CMGS: 1"]
    assert [m.text for m in emulator.messages] == ["length check"]


async def test_a_vanished_port_fails_clearly_and_the_next_send_reopens(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-gsm"  # like /dev/serial/by-id/..., which follows the device
    async with GsmModemEmulator(pin="4711", link=link) as emu:
        async with Modem(str(link), pin="4711", timeout=2) as modem:
            await modem.send(PHONE, "before")
            emu.unplug()
            await until(lambda: not modem.connected, "the driver to notice the lost port")
            with pytest.raises(ModemPortError, match=r"ttyUSB-gsm: cannot open the port"):
                await modem.send(PHONE, "while unplugged")
            emu.replug()  # a new pty, the modem restarted: echo on, SIM locked again
            await modem.send(PHONE, "after")
        assert [m.text for m in emu.messages] == ["before", "after"]
        assert emu.commands.count('AT+CPIN="4711"') == 2


async def test_the_driver_reopens_a_returning_port_by_itself(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-gsm"
    got: list[tuple[str, str]] = []

    def incoming(sender: str, text: str) -> None:
        got.append((sender, text))

    async with GsmModemEmulator(link=link) as emu, Modem(str(link), on_incoming=incoming) as m:
        emu.unplug()
        await until(lambda: not m.connected, "the driver to notice the lost port")
        emu.replug()
        await until(lambda: m.connected, "the driver to reopen in the background")
        emu.inject_incoming("+8613800000001", "1")  # a reply arrives without any send
        await until(lambda: bool(got), "the reply")
    assert got == [("+8613800000001", "1")]


async def test_a_port_lost_during_a_command_fails_at_once(tmp_path: Path) -> None:
    async with GsmModemEmulator() as emu, Modem(emu.path, timeout=30, reconnect=False) as m:
        emu.silent = True
        before = emu.received
        sending = asyncio.create_task(m.send(PHONE, "lost"))
        await until(lambda: emu.received > before, "the command to reach the modem")
        started = time.monotonic()
        emu.unplug()
        with pytest.raises(ModemPortError, match=r"AT\+CMGS=\d+: the port (failed|closed)"):
            await sending
        assert time.monotonic() - started < 5  # not the 30 s timeout


# --- the emulator itself, byte by byte ------------------------------------------------------


class RawPort:
    """The slave side of the emulator's pty, read and written byte for byte."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.buf += os.read(self.fd, 4096)

    async def expect(self, want: bytes) -> bytes:
        """Everything up to and including ``want``."""

        def arrived() -> bool:
            self._read()
            return want in self.buf

        await until(arrived, f"{want!r} from the emulator")
        end = self.buf.index(want) + len(want)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def raw(emulator: GsmModemEmulator) -> Iterator[RawPort]:
    port = RawPort(emulator.path)
    yield port
    port.close()


async def test_echo_until_ate0(raw: RawPort) -> None:
    raw.write(b"AT\r")
    assert await raw.expect(b"OK\r\n") == b"AT\r\r\nOK\r\n"
    raw.write(b"ATE0\r")
    assert await raw.expect(b"OK\r\n") == b"ATE0\r\r\nOK\r\n"
    raw.write(b"AT\r")
    assert await raw.expect(b"OK\r\n") == b"\r\nOK\r\n"


async def test_esc_cancels_the_prompt(raw: RawPort, emulator: GsmModemEmulator) -> None:
    [pdu] = encode_submit(PHONE, "never sent")
    raw.write(b"ATE0\r")
    await raw.expect(b"OK\r\n")
    raw.write(f"AT+CMGS={pdu.length}\r".encode())
    assert await raw.expect(b"> ") == b"\r\n> "
    raw.write(pdu.hex.encode() + b"\x1b")
    assert await raw.expect(b"OK\r\n") == b"\r\nOK\r\n"
    assert emulator.parts == []
    assert emulator.messages == []


async def test_ctrl_z_submits_and_a_report_follows(
    raw: RawPort, emulator: GsmModemEmulator
) -> None:
    [pdu] = encode_submit(PHONE, "by hand")
    raw.write(b"ATE0\r")
    await raw.expect(b"OK\r\n")
    raw.write(b"AT+CNMI=2,1,0,1,0\r")
    await raw.expect(b"OK\r\n")
    raw.write(f"AT+CMGS={pdu.length}\r".encode())
    await raw.expect(b"> ")
    raw.write(pdu.hex.encode() + b"\x1a")
    assert await raw.expect(b"OK\r\n") == b"\r\n+CMGS: 1\r\n\r\nOK\r\n"
    await raw.expect(b"+CDS: ")
    length = int(await raw.expect(b"\r\n"))
    report = decode_status_report((await raw.expect(b"\r\n")).decode(), tpdu_length=length)
    assert (report.reference, report.recipient, report.status) == (1, PHONE, "delivered")
    assert emulator.messages[0].text == "by hand"


async def test_sim_pin_errors_as_a_modem_gives_them() -> None:
    async with GsmModemEmulator(pin="4711") as emu:
        raw = RawPort(emu.path)
        try:
            for command, answer in [
                (b"ATE0", b"OK"),
                (b"AT+CMGS=20", b"ERROR"),  # CMEE=0: plain ERROR
                (b"AT+CMEE=1", b"OK"),
                (b"AT+CMGS=20", b"+CMS ERROR: 311"),  # SIM PIN required
                (b'AT+CPIN="1111"', b"+CME ERROR: 16"),
                (b"AT+CMEE=2", b"OK"),
                (b'AT+CPIN="2222"', b"+CME ERROR: incorrect password"),
                (b'AT+CPIN="3333"', b"+CME ERROR: incorrect password"),
                (b"AT+CPIN?", b"+CPIN: SIM PUK"),
                (b'AT+CPIN="4711"', b"+CME ERROR: SIM PUK required"),
            ]:
                raw.write(command + b"\r")
                got = await raw.expect(b"\r\n\r\n" if command == b"AT+CPIN?" else answer + b"\r\n")
                assert answer in got, (command, got)
        finally:
            raw.close()


async def test_command_line_emulator_prints_its_path_and_takes_messages() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.gsm_modem",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            first = (await proc.stdout.readline()).decode()
            assert first.startswith("GSM modem emulator on /dev/")
            path = first.split()[4]
            async with Modem(path, timeout=2) as modem:
                await modem.send(PHONE, "hello technician")
            while "hello technician" not in (line := (await proc.stdout.readline()).decode()):
                assert line, "the emulator ended"
            assert line.strip() == f"to {PHONE} (1 part(s)): hello technician"
    finally:
        proc.terminate()
        await proc.wait()
