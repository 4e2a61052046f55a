"""Golden codec cases: ``tests/cases/codec/<name>/case.yaml``, one directory per case.

A case names a profile (a shipped one, or ``<profile-id>.yaml`` beside the case) and a
point, gives the input (Modbus ``registers`` or ``bits``; MQTT ``topic`` and ``payload`` for
a device name and optional ``device_topic``), and expects either a decoded value (``expect``:
value, quality, reason) or an error text (``expect_error``, a substring of the message).
``why`` holds the arithmetic done by hand from the documented map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coldchain.profiles.codec import CodecError, Decoded, decode_bit, decode_words
from coldchain.profiles.payload import PayloadError, base_topic, decode_payload
from coldchain.profiles.registry import ProfileRegistry, check_profile_file
from coldchain.profiles.schema import ModbusProfile, MqttProfile

CASES = Path(__file__).parent / "cases" / "codec"
CASE_DIRS = sorted(p.parent for p in CASES.glob("*/case.yaml"))
KEYS = {
    "why", "profile", "point", "registers", "bits", "device", "device_topic", "topic",
    "payload", "expect", "expect_error",
}  # fmt: skip


def _load(case_dir: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load((case_dir / "case.yaml").read_text(encoding="utf-8"))
    unknown = set(case) - KEYS
    assert not unknown, f"{case_dir.name}: unknown keys {sorted(unknown)}"
    assert case.get("why"), f"{case_dir.name}: write the hand arithmetic in 'why'"
    assert ("expect" in case) != ("expect_error" in case), (
        f"{case_dir.name}: give exactly one of 'expect' and 'expect_error'"
    )
    return case


def _profile(
    case_dir: Path, case: dict[str, Any], profiles: ProfileRegistry
) -> ModbusProfile | MqttProfile:
    local = case_dir / f"{case['profile']}.yaml"
    if local.exists():
        profile, errors = check_profile_file(local)
        assert profile is not None, "\n".join(e.format() for e in errors)
        return profile
    return profiles.get(case["profile"])


def _decode(profile: ModbusProfile | MqttProfile, case: dict[str, Any]) -> Decoded:
    if isinstance(profile, ModbusProfile):
        point = profile.point(case["point"])
        if "bits" in case:
            (bit,) = case["bits"]
            return decode_bit(point, bit)
        return decode_words(point, case["registers"])
    base = base_topic(profile, case["device"], case.get("device_topic"))
    decoded = {
        p.name: d for p, d in decode_payload(profile, base, case["topic"], case["payload"].encode())
    }
    assert case["point"] in decoded, f"topic {case['topic']} does not carry {case['point']}"
    return decoded[case["point"]]


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[d.name for d in CASE_DIRS])
def test_codec_case(case_dir: Path, profiles: ProfileRegistry) -> None:
    case = _load(case_dir)
    profile = _profile(case_dir, case, profiles)
    if "expect_error" in case:
        with pytest.raises((CodecError, PayloadError)) as info:
            _decode(profile, case)
        assert case["expect_error"] in str(info.value)
        return
    got = _decode(profile, case)
    want = case["expect"]
    assert (got.quality, got.reason) == (want["quality"], want["reason"])
    if want["value"] is None:
        assert got.value is None
    else:
        assert got.value == pytest.approx(want["value"], abs=1e-9)


def test_every_shipped_profile_has_a_golden_case(profiles: ProfileRegistry) -> None:
    covered = {_load(d)["profile"] for d in CASE_DIRS}
    missing = sorted(set(profiles.ids()) - covered)
    assert not missing, f"add a case under tests/cases/codec/ for: {', '.join(missing)}"
