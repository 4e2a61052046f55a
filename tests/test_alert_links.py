"""Signed acknowledge links and reply codes."""

from __future__ import annotations

import base64
import hmac
import re

import pytest

from coldchain.alerting.links import LinkClaim, LinkError, reply_code, sign, verify

KEY = b"test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789ab"
NOW = 1_746_239_400_000  # 2025-05-03 02:30:00Z
DAY = 86_400_000


def test_round_trip() -> None:
    token = sign(17, "zhang-wei", NOW + DAY, KEY)
    assert verify(token, KEY, NOW) == LinkClaim(17, "zhang-wei", NOW + DAY)
    assert re.fullmatch(r"[A-Za-z0-9_-]{18}\.zhang-wei", token)


@pytest.mark.parametrize(
    ("alert_id", "length"),
    [(0, 18), (127, 18), (128, 19), (16_383, 19), (16_384, 20), (2_097_151, 20), (2**34, 23)],
)
def test_token_is_short(alert_id: int, length: int) -> None:
    token = sign(alert_id, "li-na", NOW + DAY, KEY)
    assert len(token) == length + len(".li-na")
    assert verify(token, KEY, NOW).alert_id == alert_id


def test_expiry_is_rounded_down_to_the_second() -> None:
    token = sign(5, "li-na", NOW + 1999, KEY)
    assert verify(token, KEY, NOW).expires_ms == NOW + 1000


def test_expired() -> None:
    token = sign(17, "zhang-wei", NOW, KEY)
    assert verify(token, KEY, NOW - 1).alert_id == 17
    with pytest.raises(LinkError, match=r"^acknowledge link for alert 17 expired at "
                       r"2025-05-03 02:30:00Z$"):  # fmt: skip
        verify(token, KEY, NOW)


def _flip(token: str, i: int) -> str:
    c = token[i]
    return token[:i] + ("B" if c == "A" else "A") + token[i + 1 :]


@pytest.mark.parametrize("position", [0, 5, 9, 16])
def test_tampered_body_or_mac(position: int) -> None:
    token = sign(17, "zhang-wei", NOW + DAY, KEY)
    with pytest.raises(LinkError, match="has a bad signature: altered, or signed with another"):
        verify(_flip(token, position), KEY, NOW)


def test_other_contact() -> None:
    token = sign(17, "zhang-wei", NOW + DAY, KEY)
    forged = token.replace("zhang-wei", "wang-li")
    with pytest.raises(LinkError, match="bad signature"):
        verify(forged, KEY, NOW)


def test_wrong_key() -> None:
    token = sign(17, "zhang-wei", NOW + DAY, KEY)
    with pytest.raises(LinkError, match="bad signature"):
        verify(token, OTHER_KEY, NOW)


def test_forged_and_expired_is_reported_as_forged() -> None:
    token = sign(17, "zhang-wei", NOW - DAY, OTHER_KEY)
    with pytest.raises(LinkError, match="bad signature"):
        verify(token, KEY, NOW)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("", "expected <base64url>.<contact id>"),
        ("EWgW0SjosvwDzzMesg", "expected <base64url>.<contact id>"),  # no contact
        ("EWgW0Sjos+wDzzMesg.li-na", "expected <base64url>.<contact id>"),  # not base64url
        ("EWgW0SjosvwDzzMesg.Li Na", "expected <base64url>.<contact id>"),  # not a contact id
        ("EWgW0SjosvwDzzMesg.li-na.x", "expected <base64url>.<contact id>"),
        ("EWgW0SjosvwDzzMes.li-na", "not base64url"),  # 17 characters: no whole byte count
        (_b64(bytes(12)) + ".li-na", "wrong length or encoding"),  # no room for id and expiry
        ("EWgW0SjosvwDzzMesh.li-na", "wrong length or encoding"),  # unused bits set
        (_b64(b"\x81\x00" + bytes(4) + bytes(8)) + ".li-na", "bad alert id"),  # overlong varint
        (_b64(b"\x81" + bytes(4) + bytes(8)) + ".li-na", "bad alert id"),  # unterminated
        (_b64(b"\x01\x02" + bytes(4) + bytes(8)) + ".li-na", "bad alert id"),  # two varints
    ],
)
def test_malformed(token: str, error: str) -> None:
    with pytest.raises(LinkError, match=r"^malformed acknowledge link .*" + re.escape(error)):
        verify(token, KEY, NOW)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1, "li-na", NOW, KEY), "alert id must be >= 0, got -1"),
        ((1, "Li Na", NOW, KEY), "contact id 'Li Na' is not a config id"),
        ((1, "li.na", NOW, KEY), "contact id 'li.na' is not a config id"),
        ((1, "li-na", 2**32 * 1000, KEY), "outside 1970-2106"),
        ((1, "li-na", NOW, b"short"), "link key must be at least 16 bytes, got 5"),
    ],
)
def test_sign_rejects(args: tuple[int, str, int, bytes], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        sign(*args)


def test_reply_code_is_stable_and_four_digits() -> None:
    digest = hmac.new(KEY, b"coldchain-reply-v1\x00" + bytes(7) + b"\x11", "sha256").digest()
    assert int.from_bytes(digest[:8], "big") % 10_000 == 8733  # the documented derivation
    assert reply_code(17, KEY) == reply_code(17, KEY) == "8733"
    codes = [reply_code(i, KEY) for i in range(20_000)]
    assert all(re.fullmatch(r"\d{4}", c) for c in codes)
    assert len(set(codes)) > 8_000  # spread over the 10 000 codes, not sequential
    assert codes[:100] != [reply_code(i, OTHER_KEY) for i in range(100)]


def test_reply_code_rejects() -> None:
    with pytest.raises(ValueError, match=r"alert id must be in 0\.\.2\^64-1, got -1"):
        reply_code(-1, KEY)
    with pytest.raises(ValueError, match="link key must be at least 16 bytes"):
        reply_code(1, b"")
