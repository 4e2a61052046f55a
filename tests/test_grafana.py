"""Grafana dashboards generated from the site config (``dashboards/grafana``).

Golden files: ``tests/cases/grafana/<site config name>.json`` holds every file ``coldchain
dashboards build`` writes for ``firmware_configs/sites/<name>.yaml`` (both datasources), by
relative path: dashboards as JSON, provisioning and scrape files as text. After a deliberate
change, regenerate with ``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_grafana.py`` and read
the diff before committing it.

Structural checks read the queries back (PromQL label matchers, Flux filters) and hold them
against the config: every series exists, every panel shows exactly its room's series of its
kind, thresholds are the room's limits, datasources resolve, uids are stable and unique.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
import yaml

from alerts.service import AlertService
from coldchain.cli import main
from coldchain.config.loader import load_site_config
from coldchain.config.site import InfluxStoreSettings, SiteConfig
from coldchain.config.topology import PointInfo, site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Reading, SeriesId
from dashboards.grafana.build import BuildOptions, dashboards, provisioning, render
from dashboards.grafana.common import fresh_window, stable_uid
from gateway.ingest import IngestStats
from gateway.registry import Registry
from hub.audit import AuditLog
from hub.metrics import render_metrics
from tests.sites import shipped_profiles

if TYPE_CHECKING:
    from hub.context import HubContext

ROOT = Path(__file__).resolve().parent.parent
SITES = ROOT / "firmware_configs" / "sites"
CASES = Path(__file__).parent / "cases" / "grafana"
COUNTY = SITES / "county.yaml"
Board = dict[str, Any]

# -- reading queries back ----------------------------------------------------------------------

_STR = r'"(?:[^"\\]|\\.)*"'
PROM_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
PROM_MATCHER = re.compile(rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*({_STR})\s*(?:,|$)")
FLUX_SERIES = re.compile(
    rf"\(r\.site == ({_STR}) and r\.gateway == ({_STR}) "
    rf"and r\.device == ({_STR}) and r\.point == ({_STR})\)"
)
FLUX_EQ = re.compile(rf"r\.([a-zA-Z_][a-zA-Z0-9_]*) == ({_STR})")


def flux_string(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def prom_selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """Every ``metric{label="value",...}`` of ``expr`` (only ``=`` matchers are generated:
    any other matcher fails to parse here, and so fails the test)."""
    out = []
    for name, body in PROM_SELECTOR.findall(expr):
        labels: dict[str, str] = {}
        rest = body
        while rest.strip():
            m = PROM_MATCHER.match(rest)
            assert m, f"matcher not understood in {body!r}"
            labels[m[1]] = json.loads(m[2])
            rest = rest[m.end() :]
        out.append((name, labels))
    return out


def target_series(target: dict[str, Any]) -> list[SeriesId]:
    """The store series a panel query selects, read back from its PromQL or Flux."""
    if "expr" in target:
        expr = target["expr"]
        sels = prom_selectors(expr)
        leftover = PROM_SELECTOR.sub("", expr)
        assert re.fullmatch(r"(\s*or\s*)*", leftover), f"unexpected PromQL around: {expr}"
        out = []
        for name, labels in sels:
            assert name == "coldchain_value", expr
            assert set(labels) == {"site", "gateway", "device", "point"}, expr
            out.append(
                SeriesId(labels["site"], labels["gateway"], labels["device"], labels["point"])
            )
        return out
    query = target["query"]
    assert 'r._measurement == "coldchain" and r._field == "value"' in query, query
    found = [SeriesId(*(flux_string(g) for g in m)) for m in FLUX_SERIES.findall(query)]
    assert len(found) == query.count("r.site =="), f"a filter clause not understood: {query}"
    return found


def hub_selectors(target: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(metric name, label matchers) of a fleet-health query."""
    if "expr" in target:
        return prom_selectors(target["expr"])
    pairs = {k: flux_string(v) for k, v in FLUX_EQ.findall(target["query"])}
    assert pairs.pop("_measurement") == "prometheus"
    return [(pairs.pop("_field"), pairs)]


def panels(board: Board) -> Iterator[dict[str, Any]]:
    for p in board["panels"]:
        if p["type"] != "row":
            yield p


def steps(panel: dict[str, Any]) -> list[float]:
    return [
        s["value"]
        for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        if s["value"] is not None
    ]


def band_values(band: Any) -> list[float]:
    return [] if band is None else [v for v in (band.low, band.high) if v is not None]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def county(profiles: ProfileRegistry) -> SiteConfig:
    return load_site_config(COUNTY, profiles)


@pytest.fixture(scope="module")
def points(county: SiteConfig, profiles: ProfileRegistry) -> dict[SeriesId, PointInfo]:
    return {p.sid: p for p in site_points(county, profiles)}


@pytest.fixture(scope="module")
def boards(county: SiteConfig, profiles: ProfileRegistry) -> dict[str, Board]:
    return dashboards(county, profiles, BuildOptions())


@pytest.fixture(scope="module")
def provisioned(county: SiteConfig) -> dict[str, dict[str, Any]]:
    return provisioning(county, BuildOptions())


# -- golden ------------------------------------------------------------------------------------


def golden(files: dict[str, str]) -> dict[str, Any]:
    return {
        path: json.loads(text) if path.endswith(".json") else text
        for path, text in sorted(files.items())
    }


@pytest.mark.parametrize("name", sorted(p.stem for p in SITES.glob("*.yaml")))
def test_golden_dashboards(name: str, profiles: ProfileRegistry) -> None:
    cfg = load_site_config(SITES / f"{name}.yaml", profiles)
    got = golden(render(cfg, profiles, BuildOptions()))
    expected_file = CASES / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        text = json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        expected_file.write_text(text, encoding="utf-8")
    assert expected_file.exists(), f"no golden file: run with UPDATE_GOLDEN=1 to write {name}.json"
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    assert sorted(got) == sorted(expected)
    for path in got:
        assert got[path] == expected[path], f"{path} differs from the golden file"


# -- structure ---------------------------------------------------------------------------------


def test_every_query_selects_series_of_the_config(
    boards: dict[str, Board], points: dict[SeriesId, PointInfo]
) -> None:
    n = 0
    for path, board in boards.items():
        if path.endswith("fleet-health.json"):
            continue
        for panel in panels(board):
            for target in panel["targets"]:
                series = target_series(target)
                assert series, f"{path}: panel {panel['title']!r} selects nothing"
                unknown = [str(s) for s in series if s not in points]
                assert not unknown, f"{path}: {panel['title']!r} selects unknown {unknown}"
                n += len(series)
    assert n > 100


@pytest.mark.parametrize("key", ["prometheus", "flux"])
def test_site_panels_show_exactly_their_rooms_series_with_its_limits(
    key: str, county: SiteConfig, boards: dict[str, Board], points: dict[SeriesId, PointInfo]
) -> None:
    kinds = {"celsius": PointKind.TEMPERATURE, "humidity": PointKind.HUMIDITY}
    for site in county.sites:
        board = boards[f"dashboards/{key}/site-{site.id}.json"]
        shown: dict[tuple[str, PointKind], set[SeriesId]] = {}
        for panel in panels(board):
            [target] = panel["targets"]
            infos = [points[s] for s in target_series(target)]
            if panel["type"] == "state-timeline":
                kind = PointKind.DOOR
            else:
                kind = kinds[panel["fieldConfig"]["defaults"]["unit"]]
            [room_id] = {p.room for p in infos}
            assert {p.site for p in infos} == {site.id}
            assert {p.kind for p in infos} == {kind}, panel["title"]
            if kind is not PointKind.DOOR:
                assert {p.role for p in infos} == {PointRole.ROOM}, panel["title"]
                room = next(r for r in site.rooms if r.id == room_id)
                limits = room.effective_limits
                band = limits.temperature if kind is PointKind.TEMPERATURE else limits.humidity
                assert steps(panel) == band_values(band), f"{site.id}/{room_id} {kind}"
            assert (room_id, kind) not in shown, f"two {kind} panels for {room_id}"
            shown[(room_id, kind)] = {p.sid for p in infos}
        expected: dict[tuple[str, PointKind], set[SeriesId]] = {}
        for p in points.values():
            air = p.kind in kinds.values() and p.role is PointRole.ROOM
            if p.site == site.id and (air or p.kind is PointKind.DOOR):
                expected.setdefault((p.room, p.kind), set()).add(p.sid)
        assert shown == expected


@pytest.mark.parametrize("key", ["prometheus", "flux"])
def test_overview_has_each_rooms_temperatures_against_its_limits(
    key: str, county: SiteConfig, boards: dict[str, Board], points: dict[SeriesId, PointInfo]
) -> None:
    stats = list(panels(boards[f"dashboards/{key}/overview.json"]))
    rooms = [(s, r) for s in county.sites for r in s.rooms]
    assert len(stats) == len(rooms)
    for panel, (site, room) in zip(stats, rooms, strict=True):
        assert panel["type"] == "stat"
        [target] = panel["targets"]
        got = set(target_series(target))
        expected = {
            p.sid
            for p in points.values()
            if (p.site, p.room) == (site.id, room.id)
            and p.kind is PointKind.TEMPERATURE
            and p.role is PointRole.ROOM
        }
        assert got == expected, room.id
        assert steps(panel) == band_values(room.effective_limits.temperature), room.id
        assert panel["links"][0]["url"] == f"/d/{stable_uid(key, 'site', site.id)}"
        assert panel["timeFrom"] == "15m"  # a silent probe shows "no reading", not a stale value


def test_stats_look_back_further_when_devices_report_rarely(county: SiteConfig) -> None:
    assert fresh_window(county) == "15m"
    gw = county.gateways[0]
    slow = gw.devices[0].model_copy(update={"poll_interval": 600.0})
    cfg = county.model_copy(
        update={"gateways": [gw.model_copy(update={"devices": [slow]}), *county.gateways[1:]]}
    )
    assert fresh_window(cfg) == "30m"
    agent = county.agent.model_copy(update={"max_silence": 401.0})
    assert fresh_window(county.model_copy(update={"agent": agent})) == "1203s"


def test_a_limit_override_is_what_the_thresholds_show(boards: dict[str, Board]) -> None:
    """meilin-tea's green tea room overrides the chilled class: 0..5 °C, 30..55 %RH."""
    board = boards["dashboards/prometheus/site-meilin-tea.json"]
    temp, hum = list(panels(board))[:2]
    assert steps(temp) == [0, 5]
    assert steps(hum) == [30, 55]
    colours = [s["color"] for s in temp["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert colours == ["blue", "green", "red"]


def hub_metric_names(tmp_path: Path, county: SiteConfig) -> dict[str, set[tuple[str, str]]]:
    """Metric name -> (label, value) pairs, from what the hub's /metrics really renders."""
    stats = IngestStats()
    stats.rejected["unknown series"] += 1
    registry = Registry(tmp_path / "hub.db", [g.id for g in county.gateways], health_timeout_s=60)
    gw = county.gateways[0]
    health = {"buffer": {"pending": 12}, "devices": {gw.devices[0].id: {"success": 0.98}}}
    registry.on_health(gw.id, json.dumps(health).encode())
    alerts = AlertService(
        county,
        shipped_profiles(),
        db_path=tmp_path / "hub.db",
        audit=AuditLog(tmp_path / "hub.db").record,
    )
    warm = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-door", "temperature")
    alerts.on_readings([Reading(warm, 1_767_225_600_000, 9.0)])  # pending: an open alert
    ctx = cast(
        "HubContext",
        SimpleNamespace(cfg=county, ingest=stats, registry=registry, alerts=alerts, order=None),
    )
    out: dict[str, set[tuple[str, str]]] = {}
    for line in render_metrics(ctx).splitlines():
        if line and not line.startswith("#"):
            [(name, labels)] = prom_selectors(re.sub(r"^(\w+) ", r"\1{} ", line))
            out.setdefault(name, set()).update(labels.items())
    return out


@pytest.mark.parametrize("key", ["prometheus", "flux"])
def test_fleet_health_reads_metrics_the_hub_exposes(
    key: str, tmp_path: Path, county: SiteConfig, boards: dict[str, Board]
) -> None:
    exposed = hub_metric_names(tmp_path, county)
    used = set()
    for panel in panels(boards[f"dashboards/{key}/fleet-health.json"]):
        for target in panel["targets"]:
            for name, labels in hub_selectors(target):
                assert name in exposed, f"{panel['title']!r}: the hub has no metric {name}"
                for pair in labels.items():
                    assert pair in exposed[name], f"{panel['title']!r}: {name} has no {pair}"
                used.add(name)
    assert {"coldchain_gateways", "coldchain_ingest_lag_seconds"} <= used


def test_datasource_references_resolve(
    boards: dict[str, Board], provisioned: dict[str, dict[str, Any]]
) -> None:
    sources = provisioned["provisioning/datasources/coldchain.yaml"]["datasources"]
    by_uid = {s["uid"]: s["type"] for s in sources}
    assert len(by_uid) == 2
    for path, board in boards.items():
        used = set()
        for panel in panels(board):
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert ref["uid"] in by_uid, f"{path}: {panel['title']!r} uses {ref}"
                assert ref["type"] == by_uid[ref["uid"]]
                used.add(ref["uid"])
        assert len(used) == 1, f"{path} mixes datasources: {used}"


def test_provisioned_providers_point_at_the_written_dashboards(
    boards: dict[str, Board], provisioned: dict[str, dict[str, Any]]
) -> None:
    providers = provisioned["provisioning/dashboards/coldchain.yaml"]["providers"]
    folders = {Path(p["options"]["path"]).name for p in providers}
    assert folders == {Path(path).parent.name for path in boards}
    assert len({p["folderUid"] for p in providers}) == len(providers)


def test_dashboard_uids_are_unique_stable_and_short(
    boards: dict[str, Board], county: SiteConfig, profiles: ProfileRegistry
) -> None:
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids)
    assert all(len(u) <= 40 and re.fullmatch(r"[a-z0-9_-]+", u) for u in uids)
    # a site's dashboard keeps its uid when other sites come and go
    fewer = county.model_copy(update={"sites": county.sites[1:], "gateways": []})
    again = dashboards(fewer, profiles, BuildOptions())
    for path, board in again.items():
        if "/site-" in path:
            assert board["uid"] == boards[path]["uid"]
    assert dashboards(county, profiles, BuildOptions()) == boards


def test_long_ids_get_a_short_stable_uid() -> None:
    a = stable_uid("prometheus", "site", "a-township-cold-store-with-a-long-name-1")
    b = stable_uid("prometheus", "site", "a-township-cold-store-with-a-long-name-2")
    assert len(a) == len(b) == 40
    assert a != b
    assert a == stable_uid("prometheus", "site", "a-township-cold-store-with-a-long-name-1")
    assert stable_uid("flux", "overview") == "coldchain-flux-overview"


def test_panels_have_unique_ids_and_do_not_overlap(boards: dict[str, Board]) -> None:
    for path, board in boards.items():
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), path
        taken: set[tuple[int, int]] = set()
        for p in board["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, path
            cells = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & taken, f"{path}: {p['title']!r} overlaps another panel"
            taken |= cells


def test_flux_datasource_follows_the_configs_influx_store(
    county: SiteConfig, profiles: ProfileRegistry
) -> None:
    store = InfluxStoreSettings(
        url="http://influx.lan:8086", flavour="influxdb2", org="county", bucket="readings"
    )
    hub = county.hub.model_copy(update={"store": store})
    cfg = county.model_copy(update={"hub": hub})
    files = render(cfg, profiles, BuildOptions(datasources=("flux",)))
    [source] = yaml.safe_load(files["provisioning/datasources/coldchain.yaml"])["datasources"]
    assert source["url"] == "http://influx.lan:8086"
    assert source["jsonData"] == {
        "version": "Flux",
        "organization": "county",
        "defaultBucket": "readings",
    }
    overview = json.loads(files["dashboards/flux/overview.json"])
    assert 'from(bucket: "readings")' in overview["panels"][1]["targets"][0]["query"]
    assert 'organization = "county"' in files["scrape/telegraf.conf"]


# -- the command line --------------------------------------------------------------------------


def test_cli_writes_the_dashboards_and_provisioning(
    tmp_path: Path,
    county: SiteConfig,
    profiles: ProfileRegistry,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "grafana"
    argv = ["dashboards", "build", str(COUNTY), "--out", str(out), "--datasource", "prometheus"]
    code = main([*argv, "--prometheus-url", "http://vm.lan:8428"])
    stdout = capsys.readouterr().out
    assert code == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    sites = [f"dashboards/prometheus/site-{s.id}.json" for s in county.sites]
    assert written == sorted(
        [
            "dashboards/prometheus/overview.json",
            "dashboards/prometheus/fleet-health.json",
            *sites,
            "provisioning/dashboards/coldchain.yaml",
            "provisioning/datasources/coldchain.yaml",
            "scrape/victoria-metrics.yml",
        ]
    )
    assert f"{len(written)} files written" in stdout
    options = BuildOptions(datasources=("prometheus",), urls={"prometheus": "http://vm.lan:8428"})
    for rel, text in render(county, profiles, options).items():
        assert (out / rel).read_text(encoding="utf-8") == text
    [source] = yaml.safe_load((out / "provisioning/datasources/coldchain.yaml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://vm.lan:8428"


def test_cli_bad_config_prints_its_errors_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "site.yaml"
    text = COUNTY.read_text(encoding="utf-8").replace("class: frozen, area_m2: 90", "class: frozn")
    bad.write_text(text, encoding="utf-8")
    line = text[: text.index("class: frozn")].count("\n") + 1
    out = tmp_path / "grafana"
    code = main(["dashboards", "build", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {bad}:{line}:" in err
    assert "frozn" in err
    assert "frozen" in err  # the fix names the allowed classes
    assert "no dashboards written" in err
    assert not out.exists()
