"""Every integer a request to the hub can carry has both bounds, so a number beyond 64 bits
is a 422 that states the range, never a 500 (issue 10: ``offset``, ``end`` or an alert id of
2^64 raised OverflowError where SQLite binds them).

The first tests walk the real hub's routes (every router it mounts, the UI's too, which the
OpenAPI schema leaves out) and its OpenAPI schema, so a route added later cannot forget a
bound. The last sends 2^64 and -2^64 to a running hub."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types as at
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from coldchain.params import EPOCH_MS_MAX, ID_MAX, LIMIT_MAX, OFFSET_MAX
from hub.service import Hub
from tests.alertkit import PROFILES
from tests.hubkit import call, running_hub_service
from tests.services import Broker
from tests.test_alerts_api import _config

BIG, SMALL = 2**64, -(2**64)


def _constraints(meta: list[Any]) -> Iterator[Any]:
    """The annotated-types constraints in ``meta``, flattened (Interval -> Ge, Le; a
    pydantic Field -> its metadata)."""
    for m in meta:
        if isinstance(m, FieldInfo):
            yield from _constraints(list(m.metadata))
        elif isinstance(m, at.GroupedMetadata):
            yield from _constraints(list(m))
        else:
            yield m


def int_bounds(tp: Any, meta: list[Any], where: str) -> Iterator[tuple[str, bool, bool]]:
    """(where, has a lower bound, has an upper bound) of each int in the type ``tp``
    (through Annotated, unions, containers and pydantic models)."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        yield from int_bounds(base, [*meta, *extra], where)
    elif origin in (Union, types.UnionType):
        for arg in get_args(tp):
            yield from int_bounds(arg, meta, where)
    elif origin is not None:  # list[int], dict[str, int], ...
        for arg in get_args(tp):
            yield from int_bounds(arg, [], where)
    elif tp is int:
        cs = list(_constraints(meta))
        lower = any(isinstance(c, at.Ge | at.Gt) for c in cs)
        upper = any(isinstance(c, at.Le | at.Lt) for c in cs)
        yield where, lower, upper
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            yield from int_bounds(f.annotation, list(f.metadata), f"{where}.{name}")


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The API routes in ``routes``, those of included routers too (FastAPI keeps an
    included router as one entry holding the ``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (sub := getattr(route, "original_router", None)) is not None:
            yield from api_routes(sub.routes)


def route_ints(app: Any) -> list[tuple[str, bool, bool]]:
    """Every int parameter of every route of ``app``: query, path, header, cookie, form and
    body fields, those of the routes' dependencies included."""
    out: list[tuple[str, bool, bool]] = []
    for route in api_routes(app.routes):
        stack = [route.dependant]
        while stack:
            dep = stack.pop()
            stack += dep.dependencies
            params = (
                dep.query_params
                + dep.path_params
                + dep.header_params
                + dep.cookie_params
                + dep.body_params
            )
            for p in params:
                where = f"{','.join(sorted(route.methods or ()))} {route.path} {p.name}"
                out += int_bounds(p.field_info.annotation, list(p.field_info.metadata), where)
    return out


@pytest.fixture
def hub_app(tmp_path: Path) -> Iterator[Any]:
    """The app of a real hub, built as ``coldchain hub`` builds it (not started)."""
    hub = Hub(
        _config(tmp_path),
        PROFILES,
        data_dir=tmp_path / "hub",
        broker="mqtt://127.0.0.1:1",
        listen="127.0.0.1:0",
    )
    yield hub.app
    hub.socket.close()


def test_every_integer_parameter_of_every_route_has_both_bounds(hub_app: Any) -> None:
    found = route_ints(hub_app)
    names = {w.split(" ", 2)[2] for w, _, _ in found}
    # the walk sees what it must (else the test would pass on nothing)
    assert {"offset", "limit", "alert_id", "body.until_ms"} <= names, names
    unbounded = [w for w, lower, upper in found if not (lower and upper)]
    assert not unbounded, "integer parameters without both bounds:\n" + "\n".join(unbounded)


def _schema_ints(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            yield path, node
        for k, v in node.items():
            yield from _schema_ints(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _schema_ints(v, f"{path}/{i}")


def test_every_integer_in_the_openapi_schema_has_both_bounds(hub_app: Any) -> None:
    spec = hub_app.openapi()
    inputs = {
        "paths": spec["paths"],
        "schemas": {
            k: v
            for k, v in spec.get("components", {}).get("schemas", {}).items()
            if k.endswith("In")  # request bodies (responses are the hub's own numbers)
        },
    }
    found = list(_schema_ints(inputs, ""))
    assert any("/api/alerts/{alert_id}" in p for p, _ in found)
    unbounded = [
        p for p, s in found if "/responses/" not in p and ("minimum" not in s or "maximum" not in s)
    ]
    assert not unbounded, "integers without both bounds in the schema:\n" + "\n".join(unbounded)


TIME = "a time must lie between 1970-01-01 and 9999-12-30"
HISTORY = "/api/history?series=s1%2Fgw1%2Fprobe%2Ftemperature"
REFUSED: list[tuple[str, str, dict[str, Any] | None, str, int | None, int | None]] = [
    # (method, path and query, JSON body, the parameter named in the answer, its bounds;
    # None, None: a time given as text, refused with TIME)
    ("GET", "/api/devices?offset={n}", None, "offset", 0, OFFSET_MAX),
    ("GET", "/api/points?offset={n}", None, "offset", 0, OFFSET_MAX),
    ("GET", "/api/audit?offset={n}", None, "offset", 0, OFFSET_MAX),
    ("GET", "/api/audit?limit={n}", None, "limit", 1, LIMIT_MAX),
    ("GET", "/api/alerts?offset={n}", None, "offset", 0, OFFSET_MAX),
    ("GET", HISTORY + "&end={n}", None, "end=", None, None),
    ("GET", HISTORY + "&start={n}", None, "start=", None, None),
    ("GET", "/api/doors?series=s1%2Fgw1%2Fdi%2Fdoor_1&end={n}", None, "end=", None, None),
    ("GET", "/rooms/s1/chill/data?end={n}", None, "end=", None, None),
    ("GET", "/rooms/s1/chill/data?start={n}", None, "start=", None, None),
    ("GET", "/api/alerts/{n}", None, "alert_id", 1, ID_MAX),
    ("POST", "/api/alerts/{n}/ack", {}, "alert_id", 1, ID_MAX),
    ("POST", "/api/alerts/{n}/snooze", {"for": "1h"}, "alert_id", 1, ID_MAX),
    ("POST", "/api/alerts/1/snooze", {"until_ms": "{n}"}, "until_ms", 0, EPOCH_MS_MAX),
    (
        "POST",
        "/api/rooms/s1/chill/maintenance",
        {"reason": "seal repair", "until_ms": "{n}"},
        "until_ms",
        0,
        EPOCH_MS_MAX,
    ),
]


def expected(n: int, lo: int | None, hi: int | None) -> str:
    if lo is None or hi is None:
        return TIME
    return f"less than or equal to {hi}" if n > 0 else f"greater than or equal to {lo}"


async def test_integers_beyond_64_bits_get_422_that_says_the_range(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with running_hub_service(
        _config(tmp_path), PROFILES, tmp_path / "hub", mosquitto.url
    ) as hub:
        wrong = []
        for n in (BIG, SMALL):
            for method, target, body, name, lo, hi in REFUSED:
                url = hub.url + target.replace("{n}", str(n))
                sent = (
                    None if body is None else {k: n if v == "{n}" else v for k, v in body.items()}
                )
                status, answer = await call(method, url, sent)
                text = str(answer)
                if status != 422 or name not in text or expected(n, lo, hi) not in text:
                    wrong.append(f"{method} {target} n={n}: {status} {text[:300]}")
        assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("target", "body", "message"),
    [
        (
            HISTORY + "&end=18446744073709551616",
            None,
            "end='18446744073709551616': a time must lie between 1970-01-01 and 9999-12-30",
        ),
        (
            HISTORY + "&end=%C2%B2",  # "²"
            None,
            "end='²': give epoch milliseconds or ISO 8601 with an offset",
        ),
        (
            HISTORY + "&start=0001-01-01T00:00:00%2B08:00",
            None,
            "a time must lie between 1970-01-01 and 9999-12-30",
        ),
        (
            HISTORY + "&start=0&end=1000000&step=" + "9" * 39 + "d",
            None,
            "step: '" + "9" * 39 + "d' is longer than any setting needs; write at most 36500d",
        ),
        (
            "/api/alerts/1/snooze",
            {"for": "9" * 39 + "h"},
            "h' is longer than any setting needs; write at most 36500d",
        ),
        ("/reports/daily?site=s1&room=chill&date=9999-12-31", None, "less than or equal to"),
        ("/reports/excursions?site=s1&from=0001-01-01&to=0001-01-02", None, "greater than"),
    ],
)
async def test_times_and_durations_out_of_range_get_422(
    tmp_path: Path, mosquitto: Broker, target: str, body: Any, message: str
) -> None:
    async with running_hub_service(
        _config(tmp_path), PROFILES, tmp_path / "hub", mosquitto.url
    ) as hub:
        status, answer = await call("POST" if body else "GET", hub.url + target, body)
        assert status == 422, answer
        assert message in str(answer)
