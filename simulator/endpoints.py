"""What the simulation serves, for people and for agents: the start-up summary printed by
``coldchain simulate`` and the copy of the site config whose buses point at the simulated
endpoints (pty paths, ``127.0.0.1:port``, the broker), so an agent runs against it
unchanged. The one other change: RTU buses lose their parity (a pty has none, and pyserial
fails with EINVAL re-configuring a pty opened with parity E or O).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coldchain.config.site import SiteConfig


def describe(endpoints: dict[str, Any]) -> list[str]:
    """One line per bus (and the control URL), for the console."""
    lines = []
    for b in endpoints["buses"]:
        where = f"{b['gateway']}/{b['bus']}"
        if b["type"] == "rtu":
            units = ", ".join(f"{u} {d}" for d, u in b["units"].items())
            lines.append(f"  rtu  {where}: {b['path']} at {b['baud']} baud (units: {units})")
        elif b["type"] == "tcp":
            units = ", ".join(f"{u} {d}" for d, u in b["units"].items())
            lines.append(f"  tcp  {where}: {b['host']}:{b['port']} (units: {units})")
        else:
            topics = [t for ts in b["topics"].values() for t in ts]
            broker = b["broker"] or "not simulated (no --broker)"
            lines.append(f"  mqtt {where}: {broker} topics: {', '.join(topics) or '-'}")
    lines.append(f"  control: {endpoints['control'] or 'off'}")
    return lines


def simulated_config(config: SiteConfig, endpoints: dict[str, Any]) -> dict[str, Any]:
    """The site config as plain data with every bus pointing at the simulation."""
    doc: dict[str, Any] = config.model_dump(mode="json", by_alias=True, exclude_unset=True)
    served = {(b["gateway"], b["bus"]): b for b in endpoints["buses"]}
    broker = endpoints.get("broker")
    for gw in doc.get("gateways", []):
        for bus in gw["buses"]:
            b = served.get((gw["id"], bus["id"]))
            if bus.get("type", "rtu") == "rtu" and b is not None:
                bus["port"] = b["path"]
                # A pty carries no parity, and pyserial cannot re-configure a pty opened
                # with parity (EINVAL), so the simulated line is always N.
                bus.pop("parity", None)
            elif bus.get("type") == "tcp" and b is not None:
                bus["host"], bus["port"] = b["host"], b["port"]
            elif bus.get("type") == "mqtt" and broker:
                host, _, port = broker.removeprefix("mqtt://").rpartition(":")
                bus["host"], bus["port"] = host, int(port)
    return doc


def write_config(
    path: str | Path, config: SiteConfig, endpoints: dict[str, Any], *, source: str = ""
) -> None:
    """Write the simulated copy of ``config`` to ``path`` as YAML."""
    header = (
        "# Written by 'coldchain simulate'"
        + (f" from {source}" if source else "")
        + ": the buses point at the simulated endpoints,\n"
        "# valid while that simulation runs.\n"
    )
    text = yaml.safe_dump(
        simulated_config(config, endpoints), allow_unicode=True, sort_keys=False, width=100
    )
    Path(path).write_text(header + text, encoding="utf-8")
