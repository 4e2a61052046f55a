"""The MQTT payload codec: vendor formats both ways, base topics, malformed messages."""

from __future__ import annotations

import json

import pytest

from coldchain.profiles.payload import (
    PayloadError,
    base_topic,
    decode_payload,
    encode_payloads,
    topics,
)
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import MqttProfile
from coldchain.reading import Quality

# A value for every point of every shipped MQTT profile, inside each point's range.
STATES: dict[str, dict[str, float]] = {
    "aqara-mccgq11lm": {"door": 1, "device_temperature": 6, "battery": 91, "linkquality": 87},
    "aqara-wsdcgq11lm": {
        "temperature": 23.46,
        "humidity": 55.21,
        "pressure": 1012.4,
        "battery": 97,
    },
    "tasmota-ds18b20": {"temperature": -18.4},
    "shelly-dw2": {"door": 0, "temperature": 3.6, "battery": 87, "lux": 120},
    "shelly-plus-ht": {"temperature": 2.4, "humidity": 51.3, "battery": 64},
}


def mqtt(profiles: ProfileRegistry, profile_id: str) -> MqttProfile:
    profile = profiles.get(profile_id)
    assert isinstance(profile, MqttProfile)
    return profile


def test_states_cover_every_mqtt_profile(profiles: ProfileRegistry) -> None:
    shipped = {p.id: {q.name for q in p.points} for p in profiles if isinstance(p, MqttProfile)}
    assert {k: set(v) for k, v in STATES.items()} == shipped


@pytest.mark.parametrize("profile_id", sorted(STATES))
def test_encode_then_decode_gives_the_values_back(
    profiles: ProfileRegistry, profile_id: str
) -> None:
    profile = mqtt(profiles, profile_id)
    base = base_topic(profile, "dev-1")
    messages = encode_payloads(profile, base, STATES[profile_id], ts_ms=1_714_545_000_000)
    assert set(messages) == set(topics(profile, base))
    got: dict[str, float | None] = {}
    for topic, payload in messages.items():
        for point, decoded in decode_payload(profile, base, topic, payload):
            assert decoded.quality is Quality.GOOD, (point.name, decoded)
            got[point.name] = decoded.value
    assert got == pytest.approx(STATES[profile_id])


def test_zigbee2mqtt_payload_looks_like_zigbee2mqtt(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "aqara-mccgq11lm")
    (payload,) = encode_payloads(profile, "zigbee2mqtt/d1", {"door": 1}).values()
    doc = json.loads(payload)
    assert doc["contact"] is False  # door open: the magnet is away
    assert {"battery", "voltage", "linkquality"} <= set(doc)
    (payload,) = encode_payloads(profile, "zigbee2mqtt/d1", {"door": 0}).values()
    assert json.loads(payload)["contact"] is True


def test_tasmota_payload_has_time_id_and_unit(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "tasmota-ds18b20")
    msgs = encode_payloads(profile, "tele/probe-7", {"temperature": 2.5}, ts_ms=1_714_545_000_000)
    doc = json.loads(msgs["tele/probe-7/SENSOR"])
    assert doc["Time"] == "2024-05-01T06:30:00"  # 1714545000 s after the epoch, UTC
    assert doc["TempUnit"] == "C"
    assert doc["DS18B20"]["Temperature"] == 2.5
    assert len(doc["DS18B20"]["Id"]) == 12
    assert list(doc) == ["Time", "DS18B20", "TempUnit"]


def test_shelly_gen1_sends_plain_text(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-dw2")
    msgs = encode_payloads(profile, "shellies/d1", {"door": 1, "temperature": -1.5})
    assert msgs == {
        "shellies/d1/sensor/state": b"open",
        "shellies/d1/sensor/temperature": b"-1.5",
    }


def test_shelly_gen2_component_status(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-plus-ht")
    msgs = encode_payloads(profile, "ht-1", {"temperature": 20.0, "battery": 80})
    assert json.loads(msgs["ht-1/status/temperature:0"]) == {"id": 0, "tC": 20, "tF": 68.0}
    power = json.loads(msgs["ht-1/status/devicepower:0"])
    assert power["id"] == 0
    assert power["battery"]["percent"] == 80
    assert "humidity" not in "".join(msgs)  # a point without a value is not sent


def test_base_topic_templating(profiles: ProfileRegistry) -> None:
    dw2 = mqtt(profiles, "shelly-dw2")
    assert base_topic(dw2, "chill-door") == "shellies/chill-door"
    assert base_topic(dw2, "x", "shellies/shellydw2-483FDA1B2C3D") == (
        "shellies/shellydw2-483FDA1B2C3D"
    )
    assert base_topic(dw2, "d9", "site-a/{name}/dw2") == "site-a/d9/dw2"
    ht = mqtt(profiles, "shelly-plus-ht")
    assert base_topic(ht, "tea-humidity") == "tea-humidity"
    with pytest.raises(PayloadError) as info:
        base_topic(dw2, "d9", "shellies/{mac}")
    assert "shellies/{mac}: cannot fill in the base topic (KeyError('mac'))" in str(info.value)


def test_a_topic_the_device_does_not_use_carries_nothing(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-dw2")
    assert decode_payload(profile, "shellies/d1", "shellies/d1/sensor/tilt", b"12") == []
    assert decode_payload(profile, "shellies/d1", "shellies/d2/sensor/state", b"open") == []


def test_missing_field_keeps_what_did_decode(profiles: ProfileRegistry) -> None:
    # Right after pairing Zigbee2MQTT has no battery yet: the door state must still count.
    profile = mqtt(profiles, "aqara-mccgq11lm")
    with pytest.raises(PayloadError) as info:
        decode_payload(profile, "zigbee2mqtt/d1", "zigbee2mqtt/d1", b'{"contact":false}')
    err = info.value
    assert err.topic == "zigbee2mqtt/d1"
    assert "point battery: missing field 'battery' (keys here: contact)" in err.reason
    assert [(p.name, d.value) for p, d in err.decoded] == [("door", 1.0)]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"contact":fals', "zigbee2mqtt/d1: payload is not JSON (Expecting value at column 12)"),
        (b"", "zigbee2mqtt/d1: payload is not JSON (Expecting value at column 1): ''"),
        (b"[1, 2]", "zigbee2mqtt/d1: expected a JSON object, got '[1, 2]'"),
        (b"\xff\xfe", "zigbee2mqtt/d1: payload is not UTF-8 text (invalid start byte)"),
        (b'{"contact":null}', "point door: field 'contact' is null"),
        (b'{"contact":1}', "point door: field 'contact' '1' is not one of 'false', 'true'"),
        (b'{"contact":true,"battery":"full"}', "point battery: field 'battery' 'full' is not"),
        (b'{"contact":true,"battery":{"pct":1}}', "field 'battery' '{\"pct\": 1}' is not a num"),
    ],
)
def test_malformed_zigbee2mqtt_payloads(
    profiles: ProfileRegistry, payload: bytes, message: str
) -> None:
    profile = mqtt(profiles, "aqara-mccgq11lm")
    with pytest.raises(PayloadError) as info:
        decode_payload(profile, "zigbee2mqtt/d1", "zigbee2mqtt/d1", payload)
    assert message in str(info.value)


def test_nested_field_through_a_non_object(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-plus-ht")
    with pytest.raises(PayloadError) as info:
        decode_payload(profile, "h", "h/status/devicepower:0", b'{"id":0,"battery":64}')
    assert str(info.value) == (
        "h/status/devicepower:0: point battery: field 'battery' is not an object "
        "(looking for 'battery.percent')"
    )


def test_text_payload_that_is_not_a_number(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-dw2")
    with pytest.raises(PayloadError) as info:
        decode_payload(profile, "s/d", "s/d/sensor/temperature", b"n/a")
    assert (
        str(info.value)
        == "s/d/sensor/temperature: point temperature: payload 'n/a' is not a number"
    )


def test_out_of_range_value_is_a_bad_reading_not_an_error(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-dw2")
    ((_, decoded),) = decode_payload(profile, "s/d", "s/d/sensor/temperature", b"999")
    assert (decoded.value, decoded.quality) == (None, Quality.BAD)
    assert decoded.reason == "out of sensor range -20..60: 999"


def test_encode_rejects_unknown_points_and_unmapped_values(profiles: ProfileRegistry) -> None:
    profile = mqtt(profiles, "shelly-dw2")
    with pytest.raises(PayloadError) as info:
        encode_payloads(profile, "s/d", {"tilt": 12})
    assert "profile shelly-dw2 has no point 'tilt' (has door, temperature, battery, lux)" in str(
        info.value
    )
    with pytest.raises(PayloadError) as info:
        encode_payloads(profile, "s/d", {"door": 0.5})
    assert str(info.value) == "s/d/sensor/state: point door: 0.5 is not a value of its map"
