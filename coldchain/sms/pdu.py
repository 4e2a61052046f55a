"""SMS PDUs (3GPP TS 23.040) and their alphabets (TS 23.038): pure data in, data out.

A modem in PDU mode (``AT+CMGF=0``) takes and gives messages as hex strings: the SMS centre
address (SCA) followed by the TPDU. This module builds SMS-SUBMIT (what we send), and
reads SMS-SUBMIT (the emulator checks what a driver sent), SMS-DELIVER (a message that
arrived) and SMS-STATUS-REPORT (a delivery report); it also builds DELIVER and
STATUS-REPORT so the emulator can play the network.

Text goes in the GSM 7-bit default alphabet with its extension table when every character
is in them (160 septets in one message, 153 per part of a long one; an extension character
costs two septets and is never split from its escape), else in UCS-2, i.e. UTF-16BE
(70 code units in one message, 67 per part; a character outside the BMP is a surrogate
pair and is never split across parts). Long messages carry a concatenation header (IE 0x00,
8-bit reference); after a header the 7-bit text starts on a septet boundary (fill bits).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

Encoding = Literal["gsm7", "ucs2", "8bit"]
ReportStatus = Literal["delivered", "failed", "pending"]

# TS 23.038 6.2.1, the default alphabet by code; 0x1B is the escape to the extension table.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_ESC = 0x1B
# TS 23.038 6.2.1.1, the extension table (after an escape).
_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_SEPTETS: dict[str, tuple[int, ...]] = {c: (i,) for i, c in enumerate(_BASIC) if i != _ESC}
_SEPTETS.update({c: (_ESC, code) for code, c in _EXTENSION.items()})

GSM7_SINGLE, GSM7_PART = 160, 153  # septets
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units
MAX_PARTS = 255
_UDH_CONCAT_LEN = 6  # UDHL, IEI 0x00, IEDL 3, ref, total, seq

_MTI_DELIVER, _MTI_SUBMIT, _MTI_STATUS = 0, 1, 2
_UDHI, _SRR, _VPF_RELATIVE = 0x40, 0x20, 0x10
_MMS = 0x04  # in DELIVER / STATUS-REPORT: set means "no more messages are waiting"
TOA_INTERNATIONAL, TOA_UNKNOWN, TOA_ALPHANUMERIC = 0x91, 0x81, 0xD0
DEFAULT_VALIDITY = 86400.0  # an alarm a day late is no use; 24 h is TP-VP 0xA7


class PduError(ValueError):
    """A PDU that cannot be read or built; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Concat:
    """A concatenated message's header: reference, number of parts, this part (from 1)."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class SubmitPdu:
    """One SMS-SUBMIT ready for ``AT+CMGS=<length>``: ``hex`` is SCA + TPDU, ``length`` the
    TPDU's octets (the SCA is not counted, TS 27.005 3.5.1)."""

    hex: str
    length: int
    text: str
    concat: Concat | None


@dataclass(frozen=True, slots=True)
class Submit:
    """A decoded SMS-SUBMIT. ``validity`` is the relative validity in seconds (None when
    absent or in the absolute/enhanced formats)."""

    smsc: str | None
    reference: int
    destination: str
    text: str
    encoding: Encoding
    concat: Concat | None
    status_report: bool
    validity: float | None


@dataclass(frozen=True, slots=True)
class Deliver:
    """A decoded SMS-DELIVER: a message that arrived. ``timestamp`` is the SMS centre's
    (None when the PDU carries an impossible date)."""

    smsc: str | None
    originator: str
    timestamp: datetime | None
    text: str
    encoding: Encoding
    concat: Concat | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A decoded SMS-STATUS-REPORT: what became of the message with TP-MR ``reference``."""

    smsc: str | None
    reference: int
    recipient: str
    timestamp: datetime | None  # when the centre received the message
    discharged: datetime | None  # when it was delivered, or the last attempt
    code: int  # TP-ST
    status: ReportStatus
    meaning: str


# --- alphabets --------------------------------------------------------------------------


def encoding_for(text: str) -> Literal["gsm7", "ucs2"]:
    """GSM 7-bit when every character is in the default alphabet or its extension."""
    return "gsm7" if all(c in _SEPTETS for c in text) else "ucs2"


def _cost(c: str, encoding: str) -> int:
    if encoding == "gsm7":
        return len(_SEPTETS[c])
    return 2 if ord(c) > 0xFFFF else 1


def segments(text: str) -> list[str]:
    """The texts of the parts ``text`` is sent as (one part when it fits a single SMS)."""
    encoding = encoding_for(text)
    single, per_part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    costs = [_cost(c, encoding) for c in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start = used = 0
    for i, cost in enumerate(costs):
        if used + cost > per_part:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


def gsm7_septets(text: str) -> list[int]:
    """``text`` as default-alphabet septets (extension characters as escape + code)."""
    out: list[int] = []
    for i, c in enumerate(text):
        try:
            out += _SEPTETS[c]
        except KeyError:
            raise PduError(f"{c!r} at {i} is not in the GSM 7-bit alphabet") from None
    return out


def gsm7_text(septets: list[int]) -> str:
    """Septets back to text. An escape to an unknown extension code shows the default
    alphabet's character for that code, as TS 23.038 6.2.1.1 asks of a receiver."""
    out: list[str] = []
    escaped = False
    for s in septets:
        if escaped:
            out.append(_EXTENSION.get(s, _BASIC[s] if s != _ESC else " "))
            escaped = False
        elif s == _ESC:
            escaped = True
        else:
            out.append(_BASIC[s])
    return "".join(out)


def pack_septets(septets: list[int], fill: int = 0) -> bytes:
    """Septets packed LSB first into octets, after ``fill`` zero bits (TS 23.040 9.2.3.24)."""
    value = 0
    for i, s in enumerate(septets):
        value |= (s & 0x7F) << (fill + 7 * i)
    bits = fill + 7 * len(septets)
    return value.to_bytes((bits + 7) // 8, "little")


def unpack_septets(data: bytes, count: int, fill: int = 0) -> list[int]:
    """``count`` septets from ``data`` after ``fill`` bits."""
    if fill + 7 * count > 8 * len(data):
        raise PduError(f"user data holds {len(data)} octets, too few for {count} septets")
    value = int.from_bytes(data, "little")
    return [(value >> (fill + 7 * i)) & 0x7F for i in range(count)]


def join_parts(texts: list[str]) -> str:
    """The parts of a long message as one text; a surrogate pair another sender split
    across two UCS-2 parts is put back together."""
    joined = "".join(texts)
    return joined.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


# --- addresses and times -------------------------------------------------------------------

_NIBBLES = "0123456789*#abc"


def _swap_digits(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, len(digits), 2))


def _check_number(number: str, what: str) -> str:
    digits = number.removeprefix("+")
    if not digits.isdigit() or not digits.isascii() or not 1 <= len(digits) <= 20:
        raise PduError(f"{what} {number!r} is not a phone number (digits, optionally after +)")
    return digits


def encode_address(number: str, *, what: str = "address", names: bool = False) -> bytes:
    """TP-DA / TP-OA: digit count, type (0x91 international, 0x81 unknown), swapped
    semi-octets. With ``names`` a sender name such as "Telia" becomes an alphanumeric
    address (0xD0, 7-bit packed); a recipient is always a number."""
    if names and number and not number.removeprefix("+").isdigit():
        septets = gsm7_septets(number)
        if len(septets) > 11:
            raise PduError(f"alphanumeric {what} {number!r} is longer than 11 characters")
        semi_octets = (len(septets) * 7 + 3) // 4
        return bytes((semi_octets, TOA_ALPHANUMERIC)) + pack_septets(septets)
    digits = _check_number(number, what)
    toa = TOA_INTERNATIONAL if number.startswith("+") else TOA_UNKNOWN
    return bytes((len(digits), toa)) + _swap_digits(digits)


def encode_smsc(smsc: str | None) -> bytes:
    """The SCA before a TPDU: ``00`` (the SIM's centre) or length, type, digits."""
    if smsc is None:
        return b"\x00"
    digits = _check_number(smsc, "SMS centre")
    toa = TOA_INTERNATIONAL if smsc.startswith("+") else TOA_UNKNOWN
    body = bytes((toa,)) + _swap_digits(digits)
    return bytes((len(body),)) + body


def _decode_digits(data: bytes, count: int) -> str:
    out: list[str] = []
    for octet in data:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble != 0x0F and len(out) < count:
                out.append(_NIBBLES[nibble])
    return "".join(out)


def _decode_address(toa: int, data: bytes, count: int) -> str:
    if (toa >> 4) & 0x07 == 0x05:  # alphanumeric: 7-bit packed in count semi-octets
        return gsm7_text(unpack_septets(data, count * 4 // 7))
    number = _decode_digits(data, count)
    return "+" + number if (toa >> 4) & 0x07 == 0x01 else number


def validity_octet(seconds: float) -> int:
    """The shortest relative TP-VP (TS 23.040 9.2.3.12.1) that lasts ``seconds``."""
    for vp in range(256):
        if validity_seconds(vp) >= seconds:
            return vp
    raise PduError(f"validity {seconds:g}s is longer than the 63 weeks an SMS can live")


def validity_seconds(vp: int) -> float:
    """How long a relative TP-VP octet lasts."""
    if vp <= 143:
        return (vp + 1) * 300.0
    if vp <= 167:
        return 43200.0 + (vp - 143) * 1800.0
    if vp <= 196:
        return (vp - 166) * 86400.0
    return (vp - 192) * 604800.0


def _bcd(n: int) -> int:
    return (n % 10) << 4 | (n // 10)


def encode_timestamp(when: datetime) -> bytes:
    """TP-SCTS: year..second as swapped BCD, then the offset in quarter hours (sign bit 3)."""
    if when.tzinfo is None:
        raise PduError(f"timestamp {when} has no time zone")
    offset = when.utcoffset() or timedelta(0)
    quarters = round(offset.total_seconds() / 900)
    tz = _bcd(abs(quarters)) | (0x08 if quarters < 0 else 0)
    fields = (when.year % 100, when.month, when.day, when.hour, when.minute, when.second)
    return bytes(_bcd(f) for f in fields) + bytes((tz,))


def decode_timestamp(data: bytes) -> datetime | None:
    """TP-SCTS / TP-DT as an aware datetime; None for an impossible date."""

    def field(octet: int) -> int:
        return (octet & 0x0F) * 10 + (octet >> 4)

    year, month, day, hour, minute, second = (field(o) for o in data[:6])
    tz = data[6]
    quarters = ((tz & 0x07) * 10 + (tz >> 4)) * (-1 if tz & 0x08 else 1)
    try:
        zone = timezone(timedelta(minutes=15 * quarters))
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


# --- user data -------------------------------------------------------------------------


def _concat_header(concat: Concat) -> bytes:
    return bytes((5, 0x00, 3, concat.ref, concat.total, concat.seq))


def _fill_bits(header_octets: int) -> int:
    return (7 - (header_octets * 8) % 7) % 7


def encode_user_data(
    text: str, encoding: Literal["gsm7", "ucs2"], concat: Concat | None
) -> tuple[int, bytes]:
    """TP-UDL and TP-UD for one part: septets (7-bit) or octets (UCS-2), header included."""
    header = _concat_header(concat) if concat else b""
    if encoding == "gsm7":
        septets = gsm7_septets(text)
        fill = _fill_bits(len(header)) if header else 0
        udl = (len(header) * 8 + fill) // 7 + len(septets)
        if udl > GSM7_SINGLE:
            raise PduError(f"{udl} septets do not fit one SMS (at most {GSM7_SINGLE})")
        return udl, header + pack_septets(septets, fill)
    body = text.encode("utf-16-be")
    if len(header) + len(body) > 140:
        raise PduError(f"{len(header) + len(body)} octets do not fit one SMS (at most 140)")
    return len(header) + len(body), header + body


def _alphabet(dcs: int) -> Encoding:
    """The alphabet a TP-DCS names (TS 23.038 4); compressed text is refused."""
    group = dcs >> 4
    if group <= 0x07:  # general data coding, with or without automatic deletion
        if dcs & 0x20:
            raise PduError(f"TP-DCS {dcs:#04x}: compressed text is not supported")
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x03]
    if group in (0x0C, 0x0D):  # message waiting, discard / store, default alphabet
        return "gsm7"
    if group == 0x0E:  # message waiting, store, UCS-2
        return "ucs2"
    if group == 0x0F:
        return "8bit" if dcs & 0x04 else "gsm7"
    raise PduError(f"TP-DCS {dcs:#04x} is a reserved coding group")


def _parse_header(header: bytes) -> Concat | None:
    """The concatenation IE (0x00, 8-bit ref, or 0x08, 16-bit ref) of a user data header."""
    i = 0
    while i + 2 <= len(header):
        iei, size = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + size]
        if iei == 0x00 and size == 3 and len(value) == 3:
            return Concat(value[0], value[1], value[2])
        if iei == 0x08 and size == 4 and len(value) == 4:
            return Concat(value[0] << 8 | value[1], value[2], value[3])
        i += 2 + size
    return None


def decode_user_data(
    first: int, dcs: int, udl: int, ud: bytes
) -> tuple[str, Encoding, Concat | None]:
    """Text, alphabet and concatenation header of TP-UD."""
    encoding = _alphabet(dcs)
    header = b""
    if first & _UDHI:
        if not ud or ud[0] + 1 > len(ud):
            raise PduError("user data header is longer than the user data")
        header = ud[1 : 1 + ud[0]]
    concat = _parse_header(header) if header else None
    if encoding == "gsm7":
        head_bits = (len(header) + 1) * 8 if header else 0
        fill = _fill_bits(len(header) + 1) if header else 0
        count = udl - (head_bits + fill) // 7
        if count < 0 or udl > GSM7_SINGLE:
            raise PduError(f"TP-UDL {udl} does not fit a {len(header)}-octet header")
        septets = unpack_septets(ud, (head_bits + fill) // 7 + count)
        return gsm7_text(septets[(head_bits + fill) // 7 :]), encoding, concat
    if udl > len(ud) or udl > 140:
        raise PduError(f"TP-UDL {udl} but {len(ud)} octets of user data")
    body = ud[len(header) + 1 if header else 0 : udl]
    if encoding == "ucs2":
        return body[: len(body) // 2 * 2].decode("utf-16-be", "surrogatepass"), encoding, concat
    return body.decode("latin-1"), encoding, concat


# --- reading ---------------------------------------------------------------------------


class _Reader:
    """A cursor over PDU octets whose errors say where the PDU ended."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.what, self.pos = data, what, 0

    def take(self, n: int, field: str) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError(
                f"{self.what} ends at octet {len(self.data)}; "
                f"{field} needs {n} more from {self.pos}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def octet(self, field: str) -> int:
        return self.take(1, field)[0]

    def address(self, field: str) -> str:
        count = self.octet(field)
        toa = self.octet(field)
        return _decode_address(toa, self.take((count + 1) // 2, field), count)

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def _octets(pdu: str, what: str) -> bytes:
    try:
        return bytes.fromhex(pdu.strip())
    except ValueError:
        raise PduError(f"{what} is not hex: {pdu[:40]!r}") from None


def _open(pdu: str, what: str, tpdu_length: int | None) -> tuple[str | None, _Reader]:
    """Split off the SCA. With ``tpdu_length`` (from ``+CMGR``/``+CDS``) a PDU without an
    SCA is recognised, as some modems send status reports that way."""
    data = _octets(pdu, what)
    if tpdu_length is not None and len(data) == tpdu_length:
        return None, _Reader(data, what)
    reader = _Reader(data, what)
    n = reader.octet("SCA length")
    smsc = None
    if n:
        sca = reader.take(n, "SCA")
        smsc = _decode_address(sca[0], sca[1:], 2 * (n - 1)) if n > 1 else None
    return smsc, reader


def _check_mti(first: int, mti: int, what: str) -> None:
    if first & 0x03 != mti:
        names = {0: "SMS-DELIVER", 1: "SMS-SUBMIT", 2: "SMS-STATUS-REPORT", 3: "reserved"}
        raise PduError(f"{what}: first octet {first:#04x} is an {names[first & 0x03]}")


def decode_submit(pdu: str, *, tpdu_length: int | None = None) -> Submit:
    """Read an SMS-SUBMIT (SCA + TPDU hex)."""
    smsc, r = _open(pdu, "SMS-SUBMIT", tpdu_length)
    first = r.octet("first octet")
    _check_mti(first, _MTI_SUBMIT, "SMS-SUBMIT")
    reference = r.octet("TP-MR")
    destination = r.address("TP-DA")
    r.octet("TP-PID")
    dcs = r.octet("TP-DCS")
    vpf = (first >> 3) & 0x03
    validity = None
    if vpf == 2:
        validity = validity_seconds(r.octet("TP-VP"))
    elif vpf:
        r.take(7, "TP-VP")
    udl = r.octet("TP-UDL")
    text, encoding, concat = decode_user_data(first, dcs, udl, r.rest())
    return Submit(
        smsc=smsc,
        reference=reference,
        destination=destination,
        text=text,
        encoding=encoding,
        concat=concat,
        status_report=bool(first & _SRR),
        validity=validity,
    )


def decode_deliver(pdu: str, *, tpdu_length: int | None = None) -> Deliver:
    """Read an SMS-DELIVER (SCA + TPDU hex), as ``AT+CMGR`` gives it."""
    smsc, r = _open(pdu, "SMS-DELIVER", tpdu_length)
    first = r.octet("first octet")
    _check_mti(first, _MTI_DELIVER, "SMS-DELIVER")
    originator = r.address("TP-OA")
    r.octet("TP-PID")
    dcs = r.octet("TP-DCS")
    timestamp = decode_timestamp(r.take(7, "TP-SCTS"))
    udl = r.octet("TP-UDL")
    text, encoding, concat = decode_user_data(first, dcs, udl, r.rest())
    return Deliver(smsc, originator, timestamp, text, encoding, concat)


# TS 23.040 9.2.3.15 TP-Status, the values a modem's user may meet.
_ST_MEANING = {
    0x00: "received by the recipient",
    0x01: "forwarded, delivery not confirmable",
    0x02: "replaced by the SMS centre",
    0x20: "congestion",
    0x21: "recipient busy",
    0x22: "no response from the recipient",
    0x23: "service rejected",
    0x24: "quality of service not available",
    0x25: "error in the recipient",
    0x40: "remote procedure error",
    0x41: "incompatible destination",
    0x42: "connection rejected by the recipient",
    0x43: "not obtainable",
    0x44: "quality of service not available",
    0x45: "no interworking available",
    0x46: "validity period expired",
    0x47: "deleted by the sender",
    0x48: "deleted by the SMS centre",
    0x49: "message does not exist",
}


def report_status(code: int) -> tuple[ReportStatus, str]:
    """TP-ST as delivered / pending (the centre keeps trying) / failed, and its meaning."""
    if code < 0x20:
        status: ReportStatus = "delivered"
        meaning = _ST_MEANING.get(code, "transaction completed")
    elif code < 0x40:
        status, meaning = "pending", _ST_MEANING.get(code, "temporary error, still trying")
    elif code < 0x60:
        status, meaning = "failed", _ST_MEANING.get(code, "permanent error")
    elif code < 0x80:
        base = _ST_MEANING.get(code - 0x40, "temporary error")
        status, meaning = "failed", f"{base}, no more attempts"
    else:
        status, meaning = "failed", "reserved status"
    return status, meaning


def decode_status_report(pdu: str, *, tpdu_length: int | None = None) -> StatusReport:
    """Read an SMS-STATUS-REPORT, as ``+CDS: <length>`` gives it on the next line."""
    smsc, r = _open(pdu, "SMS-STATUS-REPORT", tpdu_length)
    first = r.octet("first octet")
    _check_mti(first, _MTI_STATUS, "SMS-STATUS-REPORT")
    reference = r.octet("TP-MR")
    recipient = r.address("TP-RA")
    timestamp = decode_timestamp(r.take(7, "TP-SCTS"))
    discharged = decode_timestamp(r.take(7, "TP-DT"))
    code = r.octet("TP-ST")
    status, meaning = report_status(code)
    return StatusReport(smsc, reference, recipient, timestamp, discharged, code, status, meaning)


# --- building ---------------------------------------------------------------------------


def _parts(text: str, ref: int) -> tuple[Literal["gsm7", "ucs2"], list[tuple[str, Concat | None]]]:
    if not 0 <= ref <= 255:
        raise PduError(f"concatenation reference {ref} is not 0..255")
    encoding = encoding_for(text)
    texts = segments(text)
    if len(texts) > MAX_PARTS:
        raise PduError(f"the text needs {len(texts)} parts; at most {MAX_PARTS} can be joined")
    if len(texts) == 1:
        return encoding, [(texts[0], None)]
    total = len(texts)
    return encoding, [(t, Concat(ref, total, i + 1)) for i, t in enumerate(texts)]


def encode_submit(
    to: str,
    text: str,
    *,
    smsc: str | None = None,
    status_report: bool = True,
    ref: int = 0,
    validity: float | None = DEFAULT_VALIDITY,
) -> list[SubmitPdu]:
    """SMS-SUBMITs for ``text`` to ``to`` (``+`` and digits: international), one per part.

    ``ref`` is the concatenation reference shared by the parts of one long message (0..255;
    use a different one for each long message to the same phone). ``validity`` is how long
    the centre keeps trying, in seconds (None: the network's default). TP-MR is 0: the
    modem assigns the message reference and answers it in ``+CMGS: <mr>``.
    """
    destination = encode_address(to, what="recipient")
    sca = encode_smsc(smsc)
    encoding, parts = _parts(text, ref)
    dcs = 0x00 if encoding == "gsm7" else 0x08
    out: list[SubmitPdu] = []
    for part, concat in parts:
        first = _MTI_SUBMIT | (_SRR if status_report else 0) | (_UDHI if concat else 0)
        vp = b""
        if validity is not None:
            first |= _VPF_RELATIVE
            vp = bytes((validity_octet(validity),))
        udl, ud = encode_user_data(part, encoding, concat)
        tpdu = bytes((first, 0)) + destination + bytes((0, dcs)) + vp + bytes((udl,)) + ud
        out.append(SubmitPdu((sca + tpdu).hex().upper(), len(tpdu), part, concat))
    return out


def encode_deliver(
    originator: str, text: str, when: datetime, *, smsc: str | None = None, ref: int = 0
) -> list[str]:
    """SMS-DELIVERs (SCA + TPDU hex), one per part: what a network hands a phone."""
    oa = encode_address(originator, what="originator", names=True)
    sca = encode_smsc(smsc)
    encoding, parts = _parts(text, ref)
    dcs = 0x00 if encoding == "gsm7" else 0x08
    out: list[str] = []
    for part, concat in parts:
        first = _MTI_DELIVER | _MMS | (_UDHI if concat else 0)
        udl, ud = encode_user_data(part, encoding, concat)
        tpdu = bytes((first,)) + oa + bytes((0, dcs)) + encode_timestamp(when) + bytes((udl,)) + ud
        out.append((sca + tpdu).hex().upper())
    return out


def encode_status_report(
    reference: int,
    recipient: str,
    code: int,
    *,
    received: datetime,
    discharged: datetime,
    smsc: str | None = None,
) -> tuple[str, int]:
    """An SMS-STATUS-REPORT (SCA + TPDU hex) and its TPDU length, for ``+CDS: <length>``."""
    tpdu = (
        bytes((_MTI_STATUS | _MMS, reference & 0xFF))
        + encode_address(recipient, what="recipient")
        + encode_timestamp(received)
        + encode_timestamp(discharged)
        + bytes((code,))
    )
    return (encode_smsc(smsc) + tpdu).hex().upper(), len(tpdu)


# --- reassembly -------------------------------------------------------------------------


class Reassembler:
    """Joins the parts of long messages as they arrive, in any order.

    Parts are kept per (sender, reference, total); a message whose parts never all arrive
    is dropped when ``max_pending`` newer ones are waiting, so memory stays bounded.
    """

    def __init__(self, *, max_pending: int = 64) -> None:
        self.max_pending = max_pending
        self._pending: OrderedDict[tuple[str, int, int], dict[int, str]] = OrderedDict()

    def add(self, sender: str, text: str, concat: Concat | None) -> str | None:
        """The whole text once ``text`` completes its message, else None."""
        if concat is None or concat.total <= 1:
            return text
        key = (sender, concat.ref, concat.total)
        parts = self._pending.setdefault(key, {})
        parts[concat.seq] = text
        if len(parts) < concat.total or any(i not in parts for i in range(1, concat.total + 1)):
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
            return None
        del self._pending[key]
        return join_parts([parts[i] for i in range(1, concat.total + 1)])

    @property
    def pending(self) -> int:
        """Messages with parts still missing."""
        return len(self._pending)
