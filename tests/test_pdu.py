"""The SMS PDU codec (coldchain.sms.pdu): published PDUs, segmentation at the boundaries,
and round trips over random text in every alphabet we meet (English, Chinese, emoji, the
GSM extension characters)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from coldchain.sms.pdu import (
    Concat,
    PduError,
    Reassembler,
    decode_deliver,
    decode_status_report,
    decode_submit,
    decode_timestamp,
    encode_address,
    encode_deliver,
    encode_status_report,
    encode_submit,
    encode_timestamp,
    encode_user_data,
    encoding_for,
    gsm7_septets,
    gsm7_text,
    join_parts,
    pack_septets,
    report_status,
    segments,
    validity_octet,
)

CST = timezone(timedelta(hours=8))
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua.Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.Duis aute irure "
    "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur."
    "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt "
    "mollit anim id est laborum."
)

# --- published PDUs ------------------------------------------------------------------------

# "SMS and the PDU format" (Lars Pettersson, dreamfabric.com), the classic example, as
# mirrored at turbocontrol.com/CoolStuff/SMS messages and the PDU format.htm: SMS-SUBMIT of
# "hellohello" to +46708251358, TP-VP 0xAA (4 days), no status report.
HELLOHELLO_SUBMIT = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
# The same page's SMS-DELIVER: SMSC +27381000015, sender 27838890001 (type 0xC8).
HELLOHELLO_DELIVER = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
# hbjorgo/ATLib src/HeboTech.ATLib.Tests/Messaging/SmsDeliverDecoderTests.cs: the
# 3GPP-style "How are you?" from +31641600986 via +31624000000, 2002-08-26 19:37:41 +02:00.
HOW_ARE_YOU = "07911326040000F0040B911346610089F60000208062917314800CC8F71D14969741F977FD07"
# Same file, a real capture: an alphanumeric sender ("Telia"), Norwegian letters in the
# default alphabet, and a 16-bit concatenation reference (IE 0x08), part 1 of 4.
TELIA = (
    "069174290021104009D0D4323B1D06000042218091255540A0060804E2C30401D6327BFD6EB7CB6E103DCD06"
    "BDE7F31048589E33D6207A999D0EBBDCEFD7FAEDA687DD7479F90C32BFE5A00768FD6EB7CBA034E81C769F41"
    "ED3219B47EBBE961377DFD96D3CB7410394DA7BB40D2F2393DA7CBCBF2B4FB3C87CBDFF3F27C5E7683D06139"
    "48CC4ED3E9A0B29B2C2FD341EF33A8FD00B91FA0B39A212FCF41F007885E66A7C3"
)
# hbjorgo/ATLib src/HeboTech.ATLib.Tests/Messaging/SmsSubmitEncoderTests.cs: LOREM to
# +15125551234 in three 7-bit parts, concatenation reference 12, no TP-VP, no report.
LOREM_SUBMIT = [
    "0041000B915121551532F40000A00500030C0301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB7416"
    "68FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE"
    "9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795"
    "DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7E7",
    "0041000B915121551532F40000A00500030C030240EEF79C2EAF9341657C593E4ED3C3F4F4DB0DAAB3D9E1F6"
    "F80D6287C56F797A0E72A7E769509D0E0AB3D3F17A1A0E2AE341E53068FC6EB7DFE43768FC76CFCBF17A98EE"
    "22D6D37350B84E2F83D2F2BABC0C22BFD96F3928ED06C9CB7079195D7693CBF2341D947683EC6F761D4E0FD3"
    "CB207B999DA683CAF37919344EB3D9F53688FC66BFE5",
    "0041000B915121551532F40000900500030C0303CAA0721D64AE9FD3613AC85D67B3C32078589E0ED3EB7257"
    "113F2EC3E9E5BA1C344FBBE9A0F7781C2E8FC374D0B80E4F93C3F4301DE47EBB4170F93B4D2EBBE92CD0BCEE"
    "A683D26ED0B8CE868741F17A1AF4369BD3E37418442ECFCBF2BA9B0E6ABFD9EC341D1476A7DBA03419549ED3"
    "41ECB0F82DAFB75D",
]
# "中文PDU短信" (ppmy.cn/news/172198.html), a Chinese walk-through: WORK_HAPPY in UCS-2 to
# +8613902433649 with TP-VP 0x00 (5 minutes), sent with AT+CMGS=25.
CHINESE_TPDU = "11000D91683109423346F90008000A5DE54F5C61095FEBFF01"
WORK_HAPPY = "工作愉快\uff01"  # ending in a FULLWIDTH EXCLAMATION MARK
# Neoway N11 AT command manual (SMS chapter): UCS-2 "hello" to the national number
# 13421839693, no SMSC in the PDU, no TP-VP.
NEOWAY_UCS2 = "0001000B813124819396F300080A00680065006C006C006F"
# hbjorgo/ATLib src/HeboTech.ATLib.Tests/Messaging/SmsStatusReportDecoderTests.cs: a report
# for TP-MR 214 to +31628870634, received by the recipient.
STATUS_REPORT = "07911326040000F006D60B911326880736F4111011719551401110117195714000"
# amro.blogspot.com/2007/09/receiving-sms-status-report-message.html: "+CDS:" as a modem
# gave it, without an SCA: TP-MR 0 to +20121875612, status 0.
CDS_WITHOUT_SCA = "06000B910221815716F2709021510121807090215101718000"


def test_hellohello_submit_is_built_byte_for_byte() -> None:
    [pdu] = encode_submit("+46708251358", "hellohello", status_report=False, validity=4 * 86400)
    assert pdu.hex == HELLOHELLO_SUBMIT
    assert pdu.length == 23  # the TPDU: all but the leading 00 (no SMSC)
    assert pdu.concat is None


def test_hellohello_submit_decodes() -> None:
    sub = decode_submit(HELLOHELLO_SUBMIT)
    assert (sub.destination, sub.text, sub.encoding) == ("+46708251358", "hellohello", "gsm7")
    assert sub.smsc is None
    assert not sub.status_report
    assert sub.validity == 4 * 86400


def test_hellohello_deliver_decodes() -> None:
    d = decode_deliver(HELLOHELLO_DELIVER)
    assert d.smsc == "+27381000015"
    assert d.originator == "27838890001"  # type 0xC8 is not international: no +
    assert d.text == "hellohello"
    # Two-digit years are read as 20yy (a modem in service sees this century).
    assert d.timestamp == datetime(2099, 3, 29, 15, 16, 59, tzinfo=timezone(timedelta(hours=2)))


def test_how_are_you_deliver_decodes() -> None:
    d = decode_deliver(HOW_ARE_YOU)
    assert (d.smsc, d.originator, d.text) == ("+31624000000", "+31641600986", "How are you?")
    assert d.timestamp == datetime(2002, 8, 26, 19, 37, 41, tzinfo=timezone(timedelta(hours=2)))
    assert d.concat is None


def test_alphanumeric_sender_and_16_bit_concatenation_decode() -> None:
    d = decode_deliver(TELIA)
    assert d.originator == "Telia"
    assert d.smsc == "+4792001201"
    assert d.concat == Concat(ref=0xE2C3, total=4, seq=1)
    assert d.text.startswith("Velkommen til oss! Besøk telia.no/kontantreg for å komme i gang")
    assert d.text.endswith("må nå gjøres på telia")


def test_alphanumeric_sender_encodes_as_published() -> None:
    assert encode_address("Telia", names=True).hex().upper() == "09D0D4323B1D06"


def test_three_part_gsm_message_is_built_byte_for_byte() -> None:
    pdus = encode_submit("+15125551234", LOREM, status_report=False, validity=None, ref=12)
    assert [p.hex for p in pdus] == LOREM_SUBMIT
    assert [p.length for p in pdus] == [len(h) // 2 - 1 for h in LOREM_SUBMIT]
    assert [p.concat for p in pdus] == [Concat(12, 3, i) for i in (1, 2, 3)]


def test_three_part_gsm_message_reassembles() -> None:
    joiner = Reassembler()
    out = [joiner.add("+15125551234", p.text, p.concat) for p in map(decode_submit, LOREM_SUBMIT)]
    assert out[:2] == [None, None]
    assert out[2] == LOREM


def test_chinese_ucs2_submit_is_built_as_published() -> None:
    [pdu] = encode_submit("+8613902433649", WORK_HAPPY, status_report=False, validity=300)
    assert pdu.hex == "00" + CHINESE_TPDU
    assert pdu.length == 25
    assert decode_submit(pdu.hex).text == WORK_HAPPY


def test_national_number_ucs2_submit_decodes() -> None:
    sub = decode_submit(NEOWAY_UCS2)
    assert (sub.destination, sub.text, sub.encoding) == ("13421839693", "hello", "ucs2")
    assert sub.validity is None


def test_emoji_are_surrogate_pairs() -> None:
    # hbjorgo/ATLib SmsSubmitEncoderTests.cs: "😀" is D83D DE00 in the user data.
    assert encode_user_data("😀", "ucs2", None) == (4, bytes.fromhex("D83DDE00"))
    udl, ud = encode_user_data("A😀B😹C📱D📶E📞F", "ucs2", None)
    assert (udl, ud.hex().upper()) == (
        0x20,
        "0041D83DDE000042D83DDE390043D83DDCF10044D83DDCF60045D83DDCDE0046",
    )


def test_status_report_decodes_with_and_without_sca() -> None:
    report = decode_status_report(STATUS_REPORT)
    assert (report.reference, report.recipient, report.code) == (214, "+31628870634", 0)
    assert (report.status, report.meaning) == ("delivered", "received by the recipient")
    assert report.smsc == "+31624000000"
    cet = timezone(timedelta(hours=1))
    assert report.timestamp == datetime(2011, 1, 11, 17, 59, 15, tzinfo=cet)
    assert report.discharged == datetime(2011, 1, 11, 17, 59, 17, tzinfo=cet)
    bare = decode_status_report(STATUS_REPORT[16:], tpdu_length=len(STATUS_REPORT[16:]) // 2)
    assert bare.smsc is None
    assert (bare.reference, bare.recipient) == (214, "+31628870634")


def test_status_report_from_a_modem_without_sca() -> None:
    report = decode_status_report(CDS_WITHOUT_SCA, tpdu_length=25)
    assert (report.reference, report.recipient, report.status) == (0, "+20121875612", "delivered")
    plus2 = timezone(timedelta(hours=2))
    assert report.timestamp == datetime(2007, 9, 12, 15, 10, 12, tzinfo=plus2)


def test_seven_bit_packing_as_published() -> None:
    # cosimo/perl5-device-gsm t/20pdu.t: UDL and packed text.
    text = "The quick fox jumps over the lazy dog"
    udl, ud = encode_user_data(text, "gsm7", None)
    assert (bytes((udl,)) + ud).hex().upper() == (
        "2554741914AFA7C76B90F98D07A9EB6DF81CF4B697E5203ABA0C6287F57910F97D06"
    )


@pytest.mark.parametrize(
    ("number", "encoded"),
    [  # cosimo/perl5-device-gsm t/20pdu.t
        ("3289287791", "0A812398827719"),
        ("+393289287791", "0C91932398827719"),
        ("347101010", "098143171010F0"),
        ("+39347101010", "0B919343171010F0"),
    ],
)
def test_addresses_as_published(number: str, encoded: str) -> None:
    assert encode_address(number).hex().upper() == encoded


# --- segmentation boundaries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("a" * 160, [160]),
        ("a" * 161, [153, 8]),
        ("a" * 306, [153, 153]),
        ("a" * 307, [153, 153, 1]),
        ("中" * 70, [70]),
        ("中" * 71, [67, 4]),
        ("中" * 134, [67, 67]),
        ("a" * 69 + "中", [70]),  # one non-GSM character makes it all UCS-2
        ("a" * 70 + "中", [67, 4]),
        ("a" * 158 + "€", [159]),  # € costs two septets: 160, fits
        ("a" * 159 + "€", [153, 7]),  # 161 septets
        ("a" * 152 + "{" + "b" * 10, [152, 11]),  # the escape pair is not split
        ("中" * 68 + "😀", [69]),  # 70 UTF-16 units: fits one
        ("中" * 69 + "😀", [67, 3]),  # 71 units
        ("中" * 66 + "😀" + "中" * 10, [66, 11]),  # the surrogate pair is not split
        ("", [0]),
    ],
)
def test_segments_at_the_boundaries(text: str, sizes: list[int]) -> None:
    parts = segments(text)
    assert [len(p) for p in parts] == sizes
    assert "".join(parts) == text


def test_extension_character_moves_whole_to_the_next_part() -> None:
    parts = segments("a" * 152 + "€" + "a" * 10)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")
    pdus = encode_submit("+8613900000000", "a" * 152 + "€" + "a" * 10)
    assert [decode_submit(p.hex).text for p in pdus] == parts


def test_encoding_choice() -> None:
    assert encoding_for("Cold room 2: 9.5 °C") == "ucs2"  # ° is not in the GSM alphabet
    assert encoding_for("Cold room 2: 9.5 C, door open {since 10 min} €[]~|^\\") == "gsm7"
    assert encoding_for("Ä Ö Ñ Ü § ¿ à ΔΦΓΛΩΠΨΣΘΞ £$¥ èéùìò") == "gsm7"
    assert encoding_for("冷库2号 温度过高") == "ucs2"


# --- round trips over random text ----------------------------------------------------------

ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?-+=/()*#%&'\"\n"
GSM_EXTRA = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà"
GSM_EXTENSION = "€{}[]~|^\\\f"
CHINESE = "冷库温度过高门未关湿度传感器故障请立即处理仓库号已恢复正常茶叶果蔬禽肉"
EMOJI = "😀😹📱📶📞🧊🔥❄✅"  # BMP (❄ ✅) and beyond (the rest)


def random_text(rng: random.Random) -> str:
    pools = [ASCII, ASCII + GSM_EXTRA, ASCII + GSM_EXTENSION, CHINESE, ASCII + CHINESE + EMOJI]
    pool = rng.choice(pools)
    return "".join(rng.choice(pool) for _ in range(rng.choice([0, 1, 5, 70, 160, 200, 500])))


def units(text: str) -> int:
    """What a part's limit counts: septets (GSM) or UTF-16 code units (UCS-2)."""
    if encoding_for(text) == "gsm7":
        return len(gsm7_septets(text))
    return len(text.encode("utf-16-be")) // 2


@pytest.mark.parametrize("seed", range(40))
def test_random_text_round_trips(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        text = random_text(rng)
        ref = rng.randrange(256)
        pdus = encode_submit("+8613912345678", text, ref=ref)
        parts = segments(text)
        assert len(pdus) == len(parts)
        gsm = encoding_for(text) == "gsm7"
        limit = (160 if gsm else 70) if len(parts) == 1 else (153 if gsm else 67)
        joiner = Reassembler()
        whole = None
        for i, pdu in enumerate(pdus):
            part = parts[i]
            assert units(part) <= limit, part
            if i < len(parts) - 1:  # parts are filled: the next character would not fit
                assert units(part + parts[i + 1][0]) > limit
            assert pdu.length == len(pdu.hex) // 2 - 1
            sub = decode_submit(pdu.hex)
            assert sub.text == part
            assert sub.destination == "+8613912345678"
            assert sub.status_report
            if len(pdus) > 1:
                assert sub.concat == Concat(ref, len(pdus), i + 1)
            whole = joiner.add(sub.destination, sub.text, sub.concat)
        assert whole == text


@pytest.mark.parametrize("seed", range(10))
def test_random_deliver_round_trips(seed: int) -> None:
    rng = random.Random(1000 + seed)
    when = datetime(2025, 1, 27, 23, 59, 58, tzinfo=CST)
    text = random_text(rng)
    joiner = Reassembler()
    got = None
    pdus = encode_deliver("+8613800000001", text, when, smsc="+8613800100500", ref=7)
    rng.shuffle(pdus)  # parts may arrive in any order
    for pdu in pdus:
        d = decode_deliver(pdu)
        assert (d.originator, d.smsc, d.timestamp) == ("+8613800000001", "+8613800100500", when)
        joined = joiner.add(d.originator, d.text, d.concat)
        if joined is not None:
            got = joined
    assert got == text
    assert joiner.pending == 0


def test_status_report_round_trips() -> None:
    received = datetime(2025, 6, 1, 8, 0, 0, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    pdu, length = encode_status_report(
        200, "+8613912345678", 0x46, received=received, discharged=received, smsc="+861380010"
    )
    report = decode_status_report(pdu, tpdu_length=length)
    assert (report.reference, report.recipient, report.status) == (200, "+8613912345678", "failed")
    assert report.meaning == "validity period expired"
    assert report.timestamp == received


# --- details -------------------------------------------------------------------------------


def test_unknown_escape_shows_the_default_character() -> None:
    # TS 23.038 6.2.1.1: an escape to an undefined extension code shows the main table's.
    assert gsm7_text([0x1B, ord("A") - 0x40 + 0x40, 0x1B, 0x65]) == "A€"


def test_timestamps_round_trip_with_negative_offsets() -> None:
    for offset in (timedelta(hours=8), timedelta(hours=-3, minutes=-30), timedelta(0)):
        when = datetime(2024, 2, 29, 12, 34, 56, tzinfo=timezone(offset))
        assert decode_timestamp(encode_timestamp(when)) == when


def test_impossible_timestamp_is_none() -> None:
    assert decode_timestamp(bytes.fromhex("00310000000000")) is None  # month 13


@pytest.mark.parametrize(
    ("seconds", "octet"),
    [(300, 0x00), (12 * 3600, 143), (86400, 0xA7), (4 * 86400, 0xAA), (63 * 7 * 86400, 255)],
)
def test_validity_period(seconds: float, octet: int) -> None:
    assert validity_octet(seconds) == octet


def test_validity_beyond_63_weeks_is_refused() -> None:
    with pytest.raises(PduError, match="longer than the 63 weeks"):
        validity_octet(64 * 7 * 86400)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0x00, "delivered"),
        (0x02, "delivered"),
        (0x21, "pending"),
        (0x46, "failed"),
        (0x62, "failed"),
    ],
)
def test_report_status(code: int, status: str) -> None:
    assert report_status(code)[0] == status


def test_report_status_meanings() -> None:
    assert report_status(0x62) == ("failed", "no response from the recipient, no more attempts")


def test_reassembler_takes_parts_in_any_order_and_forgets_old_ones() -> None:
    joiner = Reassembler(max_pending=2)
    assert joiner.add("+1", "b", Concat(1, 2, 2)) is None
    assert joiner.add("+2", "x", Concat(1, 2, 1)) is None  # another sender, same ref
    assert joiner.add("+1", "a", Concat(1, 2, 1)) == "ab"
    for ref in range(3):
        joiner.add("+3", "p", Concat(ref, 2, 1))
    assert joiner.pending == 2  # the oldest incomplete ones went


def test_split_surrogate_pair_is_joined() -> None:
    # Another sender may cut a UCS-2 message inside a surrogate pair.
    high, low = "😀".encode("utf-16-be")[:2], "😀".encode("utf-16-be")[2:]
    first = (b"\x00A" + high).decode("utf-16-be", "surrogatepass")
    second = (low + b"\x00B").decode("utf-16-be", "surrogatepass")
    assert join_parts([first, second]) == "A😀B"


def test_fill_bits_after_the_header() -> None:
    # A 6-octet header is 48 bits: one fill bit puts the first septet on bit 49.
    udl, ud = encode_user_data("A", "gsm7", Concat(1, 2, 1))
    assert udl == 8
    assert ud[:6] == bytes.fromhex("050003010201")
    assert ud[6:] == pack_septets([0x41], fill=1)


# --- errors --------------------------------------------------------------------------------


def test_a_name_is_no_recipient() -> None:
    with pytest.raises(PduError, match=r"recipient 'call me' is not a phone number"):
        encode_submit("call me", "hi")


def test_too_long_for_255_parts() -> None:
    with pytest.raises(PduError, match="needs 256 parts; at most 255"):
        encode_submit("+8613900000000", "a" * (153 * 255 + 1))


def test_concatenation_reference_range() -> None:
    with pytest.raises(PduError, match=r"reference 256 is not 0\.\.255"):
        encode_submit("+8613900000000", "a" * 200, ref=256)


def test_not_hex() -> None:
    with pytest.raises(PduError, match="SMS-SUBMIT is not hex"):
        decode_submit("0011zz")


def test_truncated_pdu_says_where() -> None:
    with pytest.raises(PduError, match=r"SMS-SUBMIT ends at octet 5; TP-DA needs 6 more from 5"):
        decode_submit(HELLOHELLO_SUBMIT[:10])


def test_wrong_kind_of_pdu_is_named() -> None:
    with pytest.raises(PduError, match="first octet 0x11 is an SMS-SUBMIT"):
        decode_deliver(HELLOHELLO_SUBMIT)
