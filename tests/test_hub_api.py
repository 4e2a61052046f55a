"""The REST API over a real socket: every endpoint, and bad input getting a 4xx that says
what is wrong."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from coldchain.config.loader import load_site_config
from coldchain.reading import Quality, Reading, SeriesId
from firmware_configs import SITES_DIR
from hub.service import Hub
from tests.hubkit import get, running_hub_service
from tests.services import Broker
from tests.sites import shipped_profiles

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

T0 = 1_764_300_000_000
TEMP = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-door", "temperature")
DOOR = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-doors", "door_1")


@contextlib.asynccontextmanager
async def hub_with_data(tmp_path: Path, broker: Broker) -> AsyncIterator[Hub]:
    profiles = shipped_profiles()
    path = SITES_DIR / "county.yaml"
    cfg = load_site_config(path, profiles)
    async with running_hub_service(
        cfg, profiles, tmp_path / "hub", broker.url, config_path=path
    ) as hub:
        readings = [Reading(TEMP, T0 + i * 60_000, 2.0 + (i % 10) / 10) for i in range(120)]
        readings.append(Reading(TEMP, T0 + 120 * 60_000, None, Quality.BAD, "probe open"))
        doors = [(0, 0.0), (5, 1.0), (7, 0.0), (30, 1.0)]
        readings += [Reading(DOOR, T0 + m * 60_000, v) for m, v in doors]
        await hub.store.write(readings)
        yield hub


def q(series: SeriesId) -> str:
    return quote(str(series), safe="")


async def test_config_endpoints(tmp_path: Path, mosquitto: Broker) -> None:
    async with hub_with_data(tmp_path, mosquitto) as hub:
        u = hub.url
        status, sites = await get(f"{u}/api/sites")
        assert status == 200
        assert [s["id"] for s in sites] == [
            "chengqu-centre",
            "shuangxi-poultry",
            "dongtang-produce",
            "meilin-tea",
        ]
        status, site = await get(f"{u}/api/sites/chengqu-centre")
        room = next(r for r in site["rooms"] if r["id"] == "cold-room-2")
        assert room["class"] == "frozen"
        assert room["limits"]["temperature_high"] == -18
        status, body = await get(f"{u}/api/sites/chengqu-centr")
        assert status == 404
        assert body["detail"] == "no site 'chengqu-centr'; did you mean 'chengqu-centre'?"
        status, body = await get(f"{u}/api/sites/chengqu-centre/rooms/cold-room-9")
        assert status == 404
        assert "no room in chengqu-centre 'cold-room-9'" in body["detail"]
        status, page = await get(f"{u}/api/devices?limit=5&offset=5")
        assert (status, page["total"], len(page["items"]), page["offset"]) == (200, 30, 5, 5)
        status, page = await get(f"{u}/api/devices?gateway=gw-centre-cold")
        assert {d["id"] for d in page["items"]} >= {"cr1-probe-door", "cr1-doors"}
        status, body = await get(f"{u}/api/devices?gateway=gw-nowhere")
        assert status == 404
        for bad in ("limit=0", "limit=5000", "offset=-1"):
            status, body = await get(f"{u}/api/devices?{bad}")
            assert status == 422, bad
        status, page = await get(f"{u}/api/points?kind=door&limit=1000")
        assert page["items"]
        assert all(p["kind"] == "door" for p in page["items"])
        status, body = await get(f"{u}/api/points?kind=doors")
        assert status == 422
        assert "door" in str(body["detail"])


async def test_readings_endpoints(tmp_path: Path, mosquitto: Broker) -> None:
    async with hub_with_data(tmp_path, mosquitto) as hub:
        u = hub.url
        status, latest = await get(f"{u}/api/latest?series={q(TEMP)}")
        assert status == 200
        assert latest[0]["quality"] == "bad"
        assert latest[0]["reason"] == "probe open"
        status, latest = await get(f"{u}/api/latest?room=cold-room-1")
        assert status == 200
        assert str(TEMP) in {r["series"] for r in latest}
        end = T0 + 121 * 60_000
        status, h = await get(f"{u}/api/history?series={q(TEMP)}&start={T0}&end={end}")
        assert status == 200
        assert len(h["readings"]) == 121
        assert h["readings"][0]["value"] == 2.0
        status, h = await get(
            f"{u}/api/history?series={q(TEMP)}&start={T0}&end={T0 + 600_000}&step=10min&agg=max"
        )
        assert status == 200
        # T0 is a multiple of 10 min: one bucket holding readings 2.0 .. 2.9
        assert [(b["value"], b["count"]) for b in h["buckets"]] == [(2.9, 10)]
        status, d = await get(f"{u}/api/doors?series={q(DOOR)}&start={T0}&end={T0 + 3600_000}")
        assert status == 200
        assert [(i["opened_ms"] - T0) // 60_000 for i in d] == [5, 30]
        assert d[0]["duration_s"] == 120
        assert d[1]["closed_ms"] is None


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("series=city/gw", 422, "is not site/gateway/device/point"),
        (
            "series=chengqu-centre/gw-centre-cold/cr1-probe-door/temprature",
            404,
            "did you mean 'chengqu-centre/gw-centre-cold/cr1-probe-door/temperature'",
        ),
        (f"series={TEMP}&start=2&end=1", 422, "start (2) must be before end (1)"),
        (f"series={TEMP}&start=yesterday", 422, "give epoch milliseconds or ISO 8601"),
        (f"series={TEMP}&start=2026-11-28T08:00:00", 422, "say the time zone"),
        (f"series={TEMP}&step=5", 422, "step: '5' is not a duration; write a number and a unit"),
        (f"series={TEMP}&step=10ms", 422, "is under a second"),
        (f"series={TEMP}&start=0&end=9000000000000&step=1s", 422, "more than 10000 buckets"),
        (f"series={TEMP}&start=0&end=9000000000000", 422, "more than 31 days: give a step"),
        (f"series={TEMP}&agg=median", 422, "min"),
    ],
)
async def test_history_refuses_bad_input_clearly(
    tmp_path: Path, mosquitto: Broker, query: str, status: int, message: str
) -> None:
    async with hub_with_data(tmp_path, mosquitto) as hub:
        got, body = await get(f"{hub.url}/api/history?{query.replace('/', '%2F')}")
        assert got == status
        assert message in str(body["detail"])


async def test_gateways_audit_metrics_openapi(tmp_path: Path, mosquitto: Broker) -> None:
    async with hub_with_data(tmp_path, mosquitto) as hub:
        u = hub.url
        status, gws = await get(f"{u}/api/gateways")
        assert status == 200
        assert len(gws) == 5
        assert {g["state"] for g in gws} == {"unknown"}
        status, body = await get(f"{u}/api/gateways/gw-nowhere")
        assert status == 404
        status, body = await get(f"{u}/api/doors?series={q(TEMP)}")
        assert status == 422
        assert "is a temperature point, not a door" in body["detail"]
        status, audit = await get(f"{u}/api/audit?action=config.load")
        assert status == 200
        assert audit["total"] == 1
        assert audit["items"][0]["action"] == "config.load"
        assert audit["items"][0]["after"]["sha256"]
        status, text = await get(f"{u}/metrics")
        assert status == 200
        assert "coldchain_ingest_readings_total" in text
        assert 'coldchain_gateways{state="unknown"} 5.0' in text
        status, spec = await get(f"{u}/openapi.json")
        paths: dict[str, Any] = spec["paths"]
        for p in (
            "/api/sites",
            "/api/devices",
            "/api/points",
            "/api/latest",
            "/api/history",
            "/api/doors",
            "/api/gateways",
            "/api/audit",
        ):
            assert p in paths
