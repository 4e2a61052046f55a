"""Site configs for tests and benchmarks, built as plain dicts (the YAML a person would write).

One builder instead of a copied dict literal per helper: :func:`one_gateway_site` for the
common shape (one site, one gateway), :func:`site_doc` with :func:`site` and :func:`gateway`
for several, and :func:`room`, :func:`device` and the bus helpers for their parts. Each
function returns a new dict, so a caller may change what it gets (add a section, append a
site) without touching another test's config. The registry of shipped device profiles is
loaded once per process by :func:`shipped_profiles` (``ProfileRegistry`` is immutable: its
profiles are frozen models and it has no method that changes it).

This module imports only ``coldchain`` so benchmarks (``bench/``) can use it as well; the
pytest fixtures over it are in ``tests/conftest.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from coldchain.profiles.registry import ProfileRegistry

Doc = dict[str, Any]


@functools.cache
def shipped_profiles() -> ProfileRegistry:
    """The shipped device profiles (``firmware_configs/profiles``), loaded once."""
    return ProfileRegistry.load()


def room(room_id: str, name: str, cls: str = "chilled", **extra: Any) -> Doc:
    """A room; ``extra`` adds keys such as ``limits`` or ``defrost``."""
    return {"id": room_id, "name": name, "class": cls, **extra}


def rtu_bus(bus_id: str = "bus", port: str = "/dev/null", **extra: Any) -> Doc:
    """An RS-485 bus (Modbus RTU); ``/dev/null`` for a config that is never polled."""
    return {"type": "rtu", "id": bus_id, "port": port, **extra}


def tcp_bus(bus_id: str = "tcp", host: str = "127.0.0.1", **extra: Any) -> Doc:
    """A Modbus TCP bus."""
    return {"type": "tcp", "id": bus_id, "host": host, **extra}


def mqtt_bus(bus_id: str = "local", host: str = "localhost", **extra: Any) -> Doc:
    """A local MQTT broker the gateway reads sensors from."""
    return {"type": "mqtt", "id": bus_id, "host": host, **extra}


def device(
    device_id: str,
    profile: str,
    *,
    room: str,
    bus: str = "bus",
    unit_id: int | None = None,
    **extra: Any,
) -> Doc:
    """A device by profile on ``bus``; ``unit_id`` for Modbus (MQTT devices have none);
    ``extra`` adds keys such as ``poll_interval`` or ``points``."""
    doc: Doc = {"id": device_id, "profile": profile, "bus": bus}
    if unit_id is not None:
        doc["unit_id"] = unit_id
    return {**doc, "room": room, **extra}


def site(site_id: str, name: str, rooms: Sequence[Doc]) -> Doc:
    """A site with its rooms."""
    return {"id": site_id, "name": name, "rooms": list(rooms)}


def gateway(
    gateway_id: str, site_id: str, buses: Sequence[Doc], devices: Sequence[Doc], **extra: Any
) -> Doc:
    """A gateway of ``site_id`` with its buses and devices; ``extra`` adds e.g. ``fallback``."""
    return {
        "id": gateway_id,
        "site": site_id,
        "buses": list(buses),
        "devices": list(devices),
        **extra,
    }


def site_doc(sites: Sequence[Doc], gateways: Sequence[Doc], **sections: Any) -> Doc:
    """A whole site config (version 1); ``sections`` adds top-level sections (``uplink``,
    ``hub``, ``agent``, ``contacts``, ``alert_rules``, ...) after the gateways, in the order
    given (the order a YAML dump of the dict keeps)."""
    return {"version": 1, "sites": list(sites), "gateways": list(gateways), **sections}


def one_gateway_site(
    *,
    rooms: Sequence[Doc],
    buses: Sequence[Doc],
    devices: Sequence[Doc],
    site_id: str = "s1",
    site_name: str = "Site",
    gateway_id: str = "gw1",
    **sections: Any,
) -> Doc:
    """The common test shape: one site with ``rooms``, one gateway on it with ``buses`` and
    ``devices``; ``sections`` as in :func:`site_doc`."""
    return site_doc(
        [site(site_id, site_name, rooms)],
        [gateway(gateway_id, site_id, buses, devices)],
        **sections,
    )
