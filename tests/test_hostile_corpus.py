"""The hostile-input corpus (``tests/cases/hostile/*.yaml``) against a running hub: the real
:class:`~hub.service.Hub` on SQLite in a tmp dir, behind a real Mosquitto.

Each case names an MQTT message (a gateway's topic kind, the payload, retained or not,
how many times) or an HTTP request, and what must become of it: a batch rejected with a
reason, a status/health/alerts message refused with a reason, readings stored bad with a
reason, an HTTP status. Payloads are small literals (``batch``, ``json``, ``msgpack``,
``text``, ``base64``) or a generator spec for huge and deep ones, so the repository stays
small:

* ``{generate: {head, repeat, times, tail}}``: bytes (written as latin-1 text);
* ``{generate: {rows: N}}``: a telemetry batch of N good readings;
* ``{generate: {series: N}}``: a telemetry batch with a series table of N entries;
* ``{generate: {msgpack_string: N}}``: one MessagePack string of N bytes.

``$NOW`` in a ``batch`` or ``msgpack`` payload is the hub's now in UTC ms. A ``batch`` is a
telemetry batch of ``gw-centre-cold`` whose fields replace the defaults (one series: the
cold room 1 probe's temperature).

After every case: ``/healthz``, ``/api/gateways``, ``/gateways`` and ``/metrics`` answer
200, the ingest is still in its first MQTT session (no reconnect), no message handler
raised, every counter moved exactly as expected and no other, nothing unexpected was
stored, no log line is longer than a few hundred characters, and a good batch sent
afterwards is stored and acknowledged (the ingest is not wedged).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from coldchain.config.loader import load_site_config
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.messages import Batch, decode_ack, encode_batch, pack
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from firmware_configs import SITES_DIR
from hub.service import Hub
from tests.hubkit import get, running_hub_service, session_header
from tests.services import Broker, until

CASES = Path(__file__).parent / "cases" / "hostile"
GW, SITE = "gw-centre-cold", "chengqu-centre"
PROBE = SeriesId(SITE, GW, "cr1-probe-door", "temperature")
MAX_LOG_LINE = 1000  # characters of one formatted log message


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.spec.get("expect") or {})


def load_cases() -> list[Case]:
    return [
        Case(p.stem, yaml.safe_load(p.read_text(encoding="utf-8")))
        for p in sorted(CASES.glob("*.yaml"))
    ]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fill(value: Any, now: int) -> Any:
    """``value`` with every ``$NOW`` replaced by ``now``."""
    if value == "$NOW":
        return now
    if isinstance(value, list):
        return [_fill(v, now) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, now) for k, v in value.items()}
    return value


def _header(**changes: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "v": 1,
        "gw": GW,
        "site": SITE,
        "epoch": "e-hostile",
        "seq": 1000,
        "series": [[PROBE.device, PROBE.point, 0]],
        "r": [],
    }
    msg.update(changes)
    return msg


def _generated(spec: dict[str, Any], now: int) -> bytes:
    if "rows" in spec:  # built as bytes: packing a million lists would take the test's time
        row = pack([0, now, 1.5])
        n = int(spec["rows"])
        head = pack(_header())
        assert head.endswith(b"\xa1r\x90")  # "r": [] is the last entry
        return head[:-1] + b"\xdd" + struct.pack(">I", n) + row * n
    if "series" in spec:
        n = int(spec["series"])
        return pack(_header(series=[[f"d{i}", "temperature", 0] for i in range(n)]))
    if "msgpack_string" in spec:
        return pack("x" * int(spec["msgpack_string"]))
    text = str(spec.get("head", "")) + str(spec["repeat"]) * int(spec["times"])
    return (text + str(spec.get("tail", ""))).encode("latin-1")


def payload(spec: dict[str, Any], now: int) -> bytes:
    """The bytes a case's ``payload`` describes."""
    ((form, value),) = spec.items()
    if form == "batch":
        return pack(_fill(_header(**value), now))
    if form == "msgpack":
        return pack(_fill(value, now))
    if form == "json":
        return json.dumps(value).encode()
    if form == "text":
        return str(value).encode()
    if form == "base64":
        return base64.b64decode(value)
    if form == "generate":
        return _generated(value, now)
    raise AssertionError(f"unknown payload form {form!r}")


def _http(url: str, method: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.read()
        return int(err.code)


def signed_cookie(hub: Hub, claims_text: str) -> str:
    """A session cookie carrying ``claims_text``, signed with the hub's own key."""
    from hub.auth import COOKIE

    body = base64.urlsafe_b64encode(claims_text.encode()).rstrip(b"=").decode()
    return f"{COOKIE}={body}.{hub.auth.sessions._mac(body)}"


async def run_http(hub: Hub, spec: dict[str, Any]) -> int:
    url = hub.url + spec["path"]
    if "signed_claims" in spec:
        headers = {"Cookie": signed_cookie(hub, spec["signed_claims"])}
    else:
        headers = session_header(url)
    if "cookie_before" in spec:  # a cookie of another app on the host, before the session's
        session = headers.get("Cookie")
        headers["Cookie"] = "; ".join(c for c in (spec["cookie_before"], session) if c)
    return await asyncio.to_thread(_http, url, spec.get("method", "GET"), headers)


@dataclass
class Snapshot:
    rejected: Counter[str]
    values: Counter[str]
    messages: Counter[tuple[str, str]]
    batches: int
    sessions: int
    errors: int

    @classmethod
    def of(cls, hub: Hub) -> Snapshot:
        s = hub.ingest.stats
        return cls(
            Counter(s.rejected),
            Counter(s.rejected_values),
            Counter(s.rejected_messages),
            s.batches,
            s.sessions,
            s.message_errors,
        )


def _moved(after: Counter[Any], before: Counter[Any]) -> dict[Any, int]:
    return {k: n for k, n in (after - before).items() if n}


async def good_batch_is_acked(
    hub: Hub, gw: aiomqtt.Client, topics: Topics, seq: int, value: float
) -> None:
    """A good batch is stored and acknowledged: the ingest is not wedged."""
    reading = Reading(PROBE, now_ms() - 60_000 + seq, value)  # never the case's own $NOW
    await gw.publish(
        topics.topic(GW, "telemetry"), encode_batch(Batch(GW, SITE, "e-good", seq, [reading]))
    )
    async with asyncio.timeout(15):
        async for message in gw.messages:
            if decode_ack(bytes(message.payload)) == ("e-good", [seq]):
                break
    stored = await hub.store.raw(PROBE, reading.ts_ms, reading.ts_ms + 1)
    assert [r.value for r in stored] == [value]


@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c.name)
async def test_hostile_input_is_refused_and_the_hub_stays_up(
    case: Case,
    tmp_path: Path,
    mosquitto: Broker,
    caplog: pytest.LogCaptureFixture,
    profiles: ProfileRegistry,
) -> None:
    caplog.set_level(logging.INFO)
    path = SITES_DIR / "county.yaml"
    cfg = load_site_config(path, profiles)
    topics = Topics(cfg.uplink.prefix)
    expect = case.expect
    async with (
        running_hub_service(cfg, profiles, tmp_path / "hub", mosquitto.url) as hub,
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="hostile-gw") as gw,
    ):
        await gw.subscribe(topics.topic(GW, "ack"), qos=1)
        await until(lambda: hub.ingest.stats.connected, "the hub subscribed")
        await good_batch_is_acked(hub, gw, topics, 1, 2.5)
        before = Snapshot.of(hub)
        series_before = set(await hub.store.series())
        caplog.clear()

        if "http" in case.spec:
            status = await run_http(hub, case.spec["http"])
            needs = case.spec.get("needs")
            assert status == expect["status"], f"{case.name}: answered {status} (needs {needs})"
        else:
            m = case.spec["mqtt"]
            topic = topics.topic(m.get("gateway", GW), m["kind"])
            data = payload(m["payload"], now_ms())
            times = int(m.get("times", 1))
            for _ in range(times):
                await gw.publish(topic, data, qos=1, retain=bool(m.get("retain")))
            await _outcome(hub, case, before, times)

        await good_batch_is_acked(hub, gw, topics, 2, 3.5)
        after = Snapshot.of(hub)
        want_batch = {}
        if "batch_rejected" in expect:
            want_batch = {expect["batch_rejected"]: int(case.spec["mqtt"].get("times", 1))}
        assert _moved(after.rejected, before.rejected) == want_batch
        want_messages: dict[tuple[str, ...], int] = {}
        if "message_rejected" in expect:
            want_messages = {tuple(expect["message_rejected"]): 1}
        assert _moved(after.messages, before.messages) == want_messages
        assert _moved(after.values, before.values) == dict(expect.get("values_rejected") or {})
        assert (after.sessions, after.errors) == (before.sessions, before.errors), "reconnected"
        assert after.batches - before.batches == 1 + bool(expect.get("stored"))
        new_series = set(await hub.store.series()) - series_before
        assert len(new_series) <= (1 if expect.get("stored") else 0), new_series
        await _stored_as_expected(hub, expect)
        for url in ("/healthz", "/api/gateways", "/gateways", "/metrics"):
            status, _ = await get(hub.url + url)
            assert status == 200, url
        if "metrics_lacks" in expect:
            _, text = await get(hub.url + "/metrics")
            for absent in expect["metrics_lacks"]:
                assert absent not in text, f"{case.name}: /metrics has {absent!r}"

    long = [r.getMessage()[:200] for r in caplog.records if len(r.getMessage()) > MAX_LOG_LINE]
    assert not long, f"log lines over {MAX_LOG_LINE} characters: {long}"
    if "max_log_lines" in expect:
        lines = [r for r in caplog.records if "rejected a batch" in r.getMessage()]
        assert len(lines) <= expect["max_log_lines"], [r.getMessage() for r in lines]


async def _outcome(hub: Hub, case: Case, before: Snapshot, times: int) -> None:
    """Wait until the hub has dealt with the case's message(s)."""
    expect = case.expect
    s = hub.ingest.stats
    if "batch_rejected" in expect:
        reason = expect["batch_rejected"]
        await until(lambda: s.rejected[reason] - before.rejected[reason] >= times, case.name)
    elif "message_rejected" in expect:
        key = tuple(expect["message_rejected"])
        await until(lambda: s.rejected_messages[key] > before.messages[key], case.name)
    elif "stored" in expect:
        await until(lambda: s.batches > before.batches, case.name)
    elif "backlog" in expect:

        def reported() -> bool:
            state = hub.registry.get(GW)
            return state is not None and state.backlog == expect["backlog"]

        await until(reported, case.name)
    else:
        raise AssertionError(f"{case.name}: expects nothing the test can wait for")


async def _stored_as_expected(hub: Hub, expect: dict[str, Any]) -> None:
    rows = [r for r in await hub.store.raw(PROBE, 0, now_ms() + 86_400_000) if r.value != 2.5]
    rows = [r for r in rows if r.value != 3.5]
    want = list(expect.get("stored") or [])
    if want and not rows:  # the case wrote to another series of the gateway
        for sid in await hub.store.series():
            if sid != PROBE:
                rows += await hub.store.raw(sid, 0, now_ms() + 86_400_000)
    got = [{"quality": str(r.quality), "value": r.value, "reason": r.reason} for r in rows]
    assert got == want
