"""The built-in rules, applied per room class unless the config turns them off
(``alerts.default_rules: false``) or defines a rule of the same id.

Delays follow real controllers (Dixell ``ALd`` 15 min, door alarm 2-10 min) and GSP's
one-minute sampling (stale after 5 missed minutes). Humidity is a warning only: rooms drift
with every door opening and the product takes hours to suffer.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from coldchain.alerting.rules import AnyRule, Rule

_COLD = ["chilled", "frozen"]

_DEFAULTS: list[dict[str, Any]] = [
    {
        "id": "temperature-high",
        "kind": "threshold",
        "direction": "above",
        "warning": {"delay": "5min"},
        "alarm": {"delay": "15min"},
        "description": "room air above its high limit",
    },
    {
        "id": "temperature-low",
        "kind": "threshold",
        "direction": "below",
        "warning": {"delay": "5min"},
        "alarm": {"delay": "15min"},
        "description": "room air below its low limit (chilled goods freezing)",
    },
    {
        "id": "humidity-high",
        "kind": "threshold",
        "quantity": "humidity",
        "direction": "above",
        "hysteresis": 2.0,
        "warning": {"delay": "30min"},
        "description": "humidity above the room's band",
    },
    {
        "id": "humidity-low",
        "kind": "threshold",
        "quantity": "humidity",
        "direction": "below",
        "hysteresis": 2.0,
        "warning": {"delay": "30min"},
        "description": "humidity below the room's band",
    },
    {
        "id": "temperature-rise",
        "kind": "rate_of_rise",
        "severity": "warning",
        "rise": 3.0,
        "window": "15min",
        "room_classes": _COLD,
        "description": "temperature climbing 3 °C within 15 min",
    },
    {
        "id": "door-open",
        "kind": "door_open",
        "longer_than": "10min",
        "room_classes": _COLD,
        "description": "a cold room door open longer than 10 min",
    },
    {
        "id": "door-open-warm",
        "kind": "door_open_warm",
        "delay": "2min",
        "room_classes": _COLD,
        "description": "a door open while the room is already above its limit",
    },
    {"id": "sensor-stale", "kind": "stale", "after": "5min", "description": "no reading for 5 min"},
    {
        "id": "sensor-fault",
        "kind": "sensor_fault",
        "longer_than": "2min",
        "description": "bad readings for 2 min",
    },
    {
        "id": "gateway-offline",
        "kind": "gateway_offline",
        "longer_than": "5min",
        "description": "a gateway offline for 5 min",
    },
    {
        "id": "gateway-clock",
        "kind": "gateway_clock",
        "max_offset": "10s",
        "severity": "warning",
        "description": "a gateway's clock 10 s or more off the hub's",
    },
    {
        "id": "gateway-backlog",
        "kind": "gateway_backlog",
        "max_age": "30min",
        "severity": "warning",
        "description": "a gateway's oldest unsent reading waiting 30 min (online)",
    },
    {
        "id": "gateway-disk",
        "kind": "gateway_disk",
        "min_free": 5,
        "severity": "warning",
        "description": "a gateway's outbox disk under 5 % free",
    },
    {
        "id": "backup-missing",
        "kind": "backup",
        "max_age": "26h",
        "severity": "warning",
        "description": "the hub's scheduled backup failed, or none good for 26 h (only where "
        "hub.backup is configured)",
    },
    {
        "id": "power-cut",
        "kind": "power",
        "longer_than": "30s",
        "description": "a room's supply cut for 30 s",
    },
]

DEFAULT_RULES: tuple[AnyRule, ...] = tuple(TypeAdapter(list[Rule]).validate_python(_DEFAULTS))
