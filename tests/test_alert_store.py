"""The alert store hands back an inserted alert as it was stored, without reading it back:
the row it builds is the row a read gives, for every shape of insert the hub makes. On
PostgreSQL a transaction's alert and notification rows are held back and written together
at its commit; what the transaction reads, and what commits, is as if written at once."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.store import ID_BLOCK, AlertStore
from coldchain.statedb import StateConn, StateTarget

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
def test_an_inserted_alert_is_the_row_a_read_gives(
    state: StateTarget, extra: dict[str, Any]
) -> None:
    store = AlertStore(state)
    with store.transaction():
        row = store.insert(**{**BASE, **extra})
    stored = store.get(row.id)
    assert stored is not None
    assert row == stored
    assert [type(getattr(row, f)) for f in ("value", "limit_value", "peak")] == [
        type(getattr(stored, f)) for f in ("value", "limit_value", "peak")
    ]
    store.close()


def test_a_transactions_rows_read_and_commit_as_written(state: StateTarget) -> None:
    """A storm's shape in one transaction: alerts opened, changed, one resolved and its watch
    opened again (the open key is unique), notifications queued and changed; read back inside
    the transaction and from another connection after the commit."""
    store = AlertStore(state)
    n = ID_BLOCK + 6  # past one block of ids
    with store.transaction():
        rows = [store.insert(**{**BASE, "key": f"k{i}"}) for i in range(n)]
        for row in rows:
            store.update(row.id, state="firing", fired_ms=2, value=6.5)
        notes = [
            store.add_notification(
                alert_ids=[row.id], recipient="c1", address="+86", kind="alarm", level=0,
                queued_ms=3,
            )
            for row in rows
        ]  # fmt: skip
        store.update_notification(notes[0], status="accepted", attempts=1)
        got = store.get(rows[0].id)  # read inside the transaction: its own writes
        assert got is not None
        assert (got.state, got.value) == ("firing", 6.5)
        store.update(rows[1].id, state="resolved", resolved_ms=4)
        again = store.insert(**{**BASE, "key": "k1"})  # the resolved one's watch, open again
    assert len({r.id for r in rows} | {again.id}) == n + 1
    assert len(set(notes)) == n
    other = StateConn(state)
    try:
        states = dict(other.execute("SELECT id, state FROM alerts").fetchall())
        assert states == {
            **{r.id: "firing" for r in rows},
            rows[1].id: "resolved",
            again.id: "pending",
        }
        [(status, attempts)] = other.execute(
            "SELECT status, attempts FROM notifications WHERE id = ?", (notes[0],)
        ).fetchall()
        assert (status, attempts) == ("accepted", 1)
        assert other.execute("SELECT count(*) FROM notifications").fetchone()[0] == n
    finally:
        other.close()
    # a second open alert of one watch is refused, and nothing of it is kept
    with pytest.raises(Exception, match=r"alerts_open_key|UNIQUE"), store.transaction():
        store.insert(**{**BASE, "key": "k2"})
    assert store.open_by_key("k2") is not None
    assert len(store.open_alerts()) == n
    store.close()
