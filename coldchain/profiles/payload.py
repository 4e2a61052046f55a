"""The MQTT payload codec: vendor payloads (Zigbee2MQTT, Tasmota, Shelly) <-> point values.

Pure, no I/O. :func:`decode_payload` turns one message into the values of the points its
topic carries (scale, offset and valid range applied as in the register codec);
:func:`encode_payloads` is the inverse, used by the simulator to publish a sensor's state in
its vendor's format, with the extra fields that vendor adds (battery, linkquality, ids).

A point's topic is its profile topic under the device's base topic; the base topic is the
profile's ``base_topic`` (or the device's ``topic``) with ``{name}`` filled in. A JSON field
is a dotted path (``DS18B20.Temperature``); a point without a field takes the whole payload
as text (Shelly gen1 ``open``/``close``, a plain number). ``map`` turns text or JSON literals
(``true``/``false``) into numbers.
"""

from __future__ import annotations

import json
import math
import zlib
from datetime import UTC, datetime
from typing import Any

from coldchain.profiles.codec import Decoded, scaled
from coldchain.profiles.schema import MqttPoint, MqttProfile

Decodes = list[tuple[MqttPoint, Decoded]]


class PayloadError(ValueError):
    """A message that cannot be decoded (or values that cannot be encoded), with its topic.

    ``decoded`` holds the points of the same message that did decode: a Zigbee2MQTT state
    without ``battery`` (not reported yet) still carries a good door state.
    """

    def __init__(self, topic: str, reason: str, decoded: Decodes | None = None) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason
        self.decoded: Decodes = decoded or []


class _PointError(Exception):
    """One point's problem inside a message."""


def base_topic(profile: MqttProfile, name: str, topic: str | None = None) -> str:
    """The device's base topic: ``topic`` (the site config's override) or the profile's
    ``base_topic``, with ``{name}`` replaced by ``name``."""
    template = profile.base_topic if topic is None else topic
    try:
        return template.format(name=name)
    except (KeyError, IndexError, ValueError) as exc:
        raise PayloadError(
            template, f"cannot fill in the base topic ({exc!r}); only {{name}} is replaced"
        ) from None


def point_topic(device_base_topic: str, point: MqttPoint) -> str:
    """The full topic a point arrives on."""
    return f"{device_base_topic}/{point.topic}" if point.topic else device_base_topic


def topics(profile: MqttProfile, device_base_topic: str) -> dict[str, list[MqttPoint]]:
    """The topics a device publishes on, each with the points it carries."""
    out: dict[str, list[MqttPoint]] = {}
    for p in profile.points:
        out.setdefault(point_topic(device_base_topic, p), []).append(p)
    return out


def decode_payload(
    profile: MqttProfile, device_base_topic: str, topic: str, payload: bytes
) -> Decodes:
    """The points ``topic`` carries, decoded from ``payload``; ``[]`` for a topic that carries
    none. Raise :class:`PayloadError` for bad JSON, a missing field or unmapped text."""
    points = topics(profile, device_base_topic).get(topic, [])
    if not points:
        return []
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(topic, f"payload is not UTF-8 text ({exc.reason})") from None
    doc: Any = None
    if any(p.field is not None for p in points):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(
                topic, f"payload is not JSON ({exc.msg} at column {exc.colno}): {_show(text)}"
            ) from None
        if not isinstance(doc, dict):
            raise PayloadError(topic, f"expected a JSON object, got {_show(text)}")
    out: Decodes = []
    problems: list[str] = []
    for p in points:
        try:
            raw = _raw(p, doc, text)
        except _PointError as exc:
            problems.append(f"point {p.name}: {exc}")
            continue
        out.append((p, scaled(raw, scale=p.scale, offset=p.offset, valid_range=p.valid_range)))
    if problems:
        raise PayloadError(topic, "; ".join(problems), out)
    return out


def _raw(point: MqttPoint, doc: Any, text: str) -> float:
    where = "payload" if point.field is None else f"field {point.field!r}"
    value: Any = text.strip() if point.field is None else _lookup(doc, point.field)
    if value is None:
        raise _PointError(f"{where} is null")
    if point.map is not None:
        key = _key(value)
        if key not in point.map:
            known = ", ".join(repr(k) for k in point.map)
            raise _PointError(f"{where} {key!r} is not one of {known}")
        return point.map[key]
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    shown = _show(value) if isinstance(value, str) else _show(json.dumps(value))
    raise _PointError(f"{where} {shown} is not a number")


def _lookup(doc: dict[str, Any], field: str) -> Any:
    node: Any = doc
    walked: list[str] = []
    for part in field.split("."):
        if not isinstance(node, dict):
            parent = ".".join(walked)
            raise _PointError(f"field {parent!r} is not an object (looking for {field!r})")
        if part not in node:
            keys = ", ".join(sorted(node)) or "none"
            raise _PointError(f"missing field {field!r} (keys here: {keys})")
        node = node[part]
        walked.append(part)
    return node


def _key(value: Any) -> str:
    """The ``map`` key of a JSON literal or text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return f"{value:g}"
    return json.dumps(value)


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


# --- encoding (the simulator's side) -------------------------------------------------------


def encode_payloads(
    profile: MqttProfile, device_base_topic: str, values: dict[str, float], *, ts_ms: int = 0
) -> dict[str, bytes]:
    """Messages (topic -> payload) that carry ``values`` (point name -> engineering value) in
    the vendor's format. Points without a value are left out; ``ts_ms`` stamps formats that
    carry a time (Tasmota's ``Time``)."""
    unknown = sorted(set(values) - {p.name for p in profile.points})
    if unknown:
        known = ", ".join(p.name for p in profile.points)
        raise PayloadError(
            device_base_topic, f"profile {profile.id} has no point {unknown[0]!r} (has {known})"
        )
    out: dict[str, bytes] = {}
    for topic, points in topics(profile, device_base_topic).items():
        chosen = [p for p in points if p.name in values]
        if not chosen:
            continue
        if chosen[0].field is None:  # the schema allows no other point on such a topic
            out[topic] = str(_encoded(chosen[0], values[chosen[0].name], topic)).encode()
            continue
        doc: dict[str, Any] = {}
        for p in chosen:
            assert p.field is not None  # see the schema's topic check
            _put(doc, p.field, _encoded(p, values[p.name], topic))
        doc = _vendor_fields(profile, device_base_topic, topic, doc, ts_ms)
        out[topic] = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return out


def _encoded(point: MqttPoint, value: float, topic: str) -> Any:
    """The JSON value (or text) a device sends for an engineering value."""
    raw = (value - point.offset) / point.scale if (point.scale != 1 or point.offset) else value
    if point.map is None:
        return _number(raw)
    for key, mapped in point.map.items():
        if math.isclose(mapped, raw, abs_tol=1e-9):
            if point.field is not None and key in ("true", "false"):
                return key == "true"
            return key
    raise PayloadError(topic, f"point {point.name}: {value!r} is not a value of its map")


def _number(raw: float) -> int | float:
    return int(raw) if float(raw).is_integer() else round(raw, 6)


def _put(doc: dict[str, Any], field: str, value: Any) -> None:
    *parents, leaf = field.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _vendor_fields(
    profile: MqttProfile, base: str, topic: str, doc: dict[str, Any], ts_ms: int
) -> dict[str, Any]:
    """Fields the real device sends besides our points, so simulated payloads look real."""
    if profile.payload_format == "zigbee2mqtt":
        return {"battery": 100, "voltage": 3025, **doc, "linkquality": doc.get("linkquality", 120)}
    if profile.payload_format == "tasmota":
        when = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        sensor_id = f"0000{zlib.crc32(base.encode()):08X}"  # a stable 48-bit 1-Wire serial
        body = {
            k: ({"Id": sensor_id, **v} if isinstance(v, dict) and k.startswith("DS18") else v)
            for k, v in doc.items()
        }
        return {"Time": when, **body, "TempUnit": "C"}
    if profile.payload_format == "shelly-gen2":
        _, _, component = topic.rpartition("/")
        _, sep, index = component.partition(":")
        out: dict[str, Any] = {"id": int(index)} if sep and index.isdigit() else {}
        out.update(doc)
        if isinstance(out.get("tC"), int | float) and "tF" not in out:
            out["tF"] = round(out["tC"] * 9 / 5 + 32, 1)
        if isinstance(out.get("battery"), dict):
            out["battery"] = {"V": 3.05, **out["battery"]}
            out.setdefault("external", {"present": False})
        return out
    return doc
