"""The alert store hands back an inserted alert as it was stored, without reading it back:
the row it builds is the row a read gives, for every shape of insert the hub makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts.store import AlertStore

BASE: dict[str, Any] = {
    "key": "temperature-high/alarm/s1/gw1/probe/temperature",
    "rule": "temperature-high",
    "kind": "threshold",
    "tier": "alarm",
    "severity": "alarm",
    "policy": None,
    "site": "s1",
    "room": "chill",
    "gateway": "gw1",
    "series": "s1/gw1/probe/temperature",
    "quantity": "temperature",
    "unit": "°C",
    "direction": "above",
    "state": "pending",
    "since_ms": 1_767_225_600_000,
    "pending_ms": 1_767_225_660_000,
}


@pytest.mark.parametrize(
    "extra",
    [
        {"value": 6.5, "limit_value": 4.0, "peak": 6.5},  # as the lifecycle opens one
        {"value": 7, "limit_value": 4, "peak": None},  # whole numbers: REAL columns
        {  # as an agent's edge notice records one, resolved already
            "state": "resolved",
            "fired_ms": 1_767_225_700_000,
            "resolved_ms": 1_767_225_800_000,
            "value": 9.25,
            "limit_value": 4.0,
            "peak": 9.25,
            "policy": "default",
            "direction": None,
            "room": None,
        },
    ],
)
def test_an_inserted_alert_is_the_row_a_read_gives(tmp_path: Path, extra: dict[str, Any]) -> None:
    store = AlertStore(tmp_path / "hub.db")
    with store.transaction():
        row = store.insert(**{**BASE, **extra})
    stored = store.get(row.id)
    assert stored is not None
    assert row == stored
    assert [type(getattr(row, f)) for f in ("value", "limit_value", "peak")] == [
        type(getattr(stored, f)) for f in ("value", "limit_value", "peak")
    ]
    store.close()
