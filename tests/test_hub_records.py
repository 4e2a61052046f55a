"""The hub's own records: the gateway registry (status, last will, health timeout) and the
audit trail that cannot be edited or deleted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from coldchain.protocol.messages import ProtocolError
from coldchain.statedb import StateConn, StateTarget
from gateway.registry import Registry
from hub.audit import AuditLog
from tests.services import until
from tests.sites import shipped_profiles


def test_registry_follows_status_health_and_the_timeout(state: StateTarget) -> None:
    reg = Registry(state, ["gw1", "gw2"], health_timeout_s=60)
    assert {g.id: g.state for g in reg.all()} == {"gw1": "unknown", "gw2": "unknown"}
    reg.on_status("gw1", json.dumps({"v": 1, "state": "online", "version": "0.1.0"}).encode())
    reg.on_health(
        "gw2",
        json.dumps(
            {
                "v": 1,
                "version": "0.1.0",
                "buffer": {"pending": 42},
                "devices": {"p1": {"success": 0.5}},
            }
        ).encode(),
    )
    gw1, gw2 = reg.all()
    assert (gw1.state, gw1.version) == ("online", "0.1.0")
    assert (gw2.state, gw2.backlog, gw2.poll_success()) == ("online", 42, {"p1": 0.5})
    reg.on_status("gw1", json.dumps({"v": 1, "state": "offline"}).encode())  # the last will
    assert reg.get("gw1").state == "offline"  # type: ignore[union-attr]
    # garbage and strangers change nothing (garbage raises, for the hub to count and log)
    with pytest.raises(ProtocolError, match="status: not JSON: Expecting property name"):
        reg.on_status("gw2", b"{not json")
    reg.on_status("gw-stranger", json.dumps({"state": "online"}).encode())
    assert reg.get("gw2").state == "online"  # type: ignore[union-attr]
    assert reg.get("gw-stranger") is None
    # silent longer than the timeout: offline although no last will came
    seen = reg.get("gw2").last_seen_ms  # type: ignore[union-attr]
    assert seen is not None
    assert reg.expire(seen + 59_000) == []
    assert reg.expire(seen + 61_000) == ["gw2"]
    assert reg.get("gw2").state == "offline"  # type: ignore[union-attr]
    reg.close()
    again = Registry(state, ["gw1", "gw2"], health_timeout_s=60)
    assert again.get("gw2").backlog == 42  # type: ignore[union-attr]  # kept over a restart
    again.close()


def test_audit_records_cannot_be_edited_or_deleted(state: StateTarget) -> None:
    audit = AuditLog(state)
    first = audit.record(
        actor="hub", action="config.load", obj="site-config", after={"sha256": "a"}
    )
    audit.record(actor="li.wei", action="comment", obj="alert-7", comment="door closed again")
    records, total = audit.page(10, 0)
    assert total == 2
    assert [r.action for r in records] == ["comment", "config.load"]
    db = StateConn(state)  # someone with access to the database, around the hub
    with pytest.raises(db.Error, match="audit records cannot be edited"):
        db.execute("UPDATE audit SET actor = 'someone' WHERE id = ?", (first,))
    for table in ("audit", "audit_chain"):
        with pytest.raises(db.Error, match="audit records cannot be deleted"):
            db.execute(f"DELETE FROM {table}")
        if db.kind == "postgres":  # TRUNCATE passes row triggers by: its own is there
            with pytest.raises(db.Error, match="audit records cannot be deleted"):
                db.execute(f"TRUNCATE {table}")
    assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == 2
    db.close()
    assert audit.last("config.load", "site-config").after == {"sha256": "a"}  # type: ignore[union-attr]
    audit.close()


async def test_the_hub_audits_each_new_config_once(tmp_path: Path) -> None:
    from coldchain.config.loader import load_site_config
    from firmware_configs import SITES_DIR
    from hub.service import Hub

    profiles = shipped_profiles()
    path = tmp_path / "site.yaml"
    path.write_text((SITES_DIR / "county.yaml").read_text())

    async def start() -> list[str]:
        cfg = load_site_config(path, profiles)
        hub = Hub(cfg, profiles, data_dir=tmp_path / "hub", config_path=path, listen="127.0.0.1:0")
        records, _ = hub.audit.page(100, 0)
        hub.audit.close()
        hub.registry.close()
        hub.socket.close()
        await hub.store.close()
        return [r.after["sha256"] for r in records]

    first = await start()
    assert len(first) == 1
    assert await start() == first  # the same config again: nothing new
    path.write_text(path.read_text() + "\n# a technician's edit\n")
    changed = await start()
    assert len(changed) == 2
    assert changed[1] == first[0]


async def test_ingest_retries_a_failing_store_and_acks_only_after(tmp_path: Path) -> None:
    import time

    from coldchain.config.loader import load_site_config
    from coldchain.protocol.messages import Batch, decode_ack, encode_batch
    from coldchain.reading import Reading, SeriesId
    from coldchain.store.base import StoreError, WriteResult
    from coldchain.store.sqlite.store import SqliteStore
    from firmware_configs import SITES_DIR
    from gateway.ingest import Ingest

    class FlakyStore(SqliteStore):  # the real store, failing its first two writes
        failures = 2

        async def write(self, readings: Any) -> WriteResult:
            if self.failures:
                self.failures -= 1
                raise StoreError("disk full (test)")
            return await super().write(readings)

    profiles = shipped_profiles()
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    store = FlakyStore(tmp_path / "s.db")
    ingest = Ingest(cfg, profiles, store)
    sid = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-door", "temperature")
    now = time.time_ns() // 1_000_000
    batch = Batch("gw-centre-cold", "chengqu-centre", "e1", 7, [Reading(sid, now, 3.0)])
    assert ingest.receive("coldchain/v1/gw/gw-centre-cold/telemetry", encode_batch(batch))
    acks: list[tuple[str, bytes]] = []

    async def publish(topic: str, payload: bytes) -> None:
        acks.append((topic, payload))

    writer = asyncio.create_task(ingest.writer(publish))
    await until(lambda: bool(acks), "the ack after the store recovered", within=10)
    writer.cancel()
    assert ingest.stats.store_errors == 2
    assert [(t, decode_ack(p)) for t, p in acks] == [
        ("coldchain/v1/gw/gw-centre-cold/ack", ("e1", [7]))
    ]
    assert len(await store.raw(sid, now, now + 1)) == 1
    await store.close()


def retention_site(tmp_path: Path, store: dict[str, Any]) -> Path:
    import yaml

    from tests.sites import device, one_gateway_site, room, tcp_bus

    doc = one_gateway_site(
        rooms=[room("r1", "Room 1")],
        buses=[tcp_bus("plc", "10.0.0.9")],
        devices=[device("p1", "xy-md02", bus="plc", unit_id=1, room="r1")],
        hub={"store": store},
    )
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def test_retention_under_five_years_needs_a_waiver(tmp_path: Path) -> None:
    from coldchain.config.loader import check_site_file

    short = check_site_file(retention_site(tmp_path, {"type": "sqlite", "retention": "30d"}))
    [error] = short.errors
    assert error.format().startswith(f"{tmp_path / 'site.yaml'}:")
    assert "hub.store" in error.format()
    assert "retention of 30 days is under the regulation's five years (1827 days)" in error.message
    waived = {
        "type": "sqlite",
        "retention": "30d",
        "retention_waiver": {"reason": "a training system, no goods", "approved_by": "Wang Li, QA"},
    }
    assert check_site_file(retention_site(tmp_path, waived)).errors == []
    lazy = {**waived, "retention_waiver": {"reason": "x", "approved_by": "W"}}
    assert len(check_site_file(retention_site(tmp_path, lazy)).errors) == 2  # say why, and who
    assert check_site_file(retention_site(tmp_path, {"type": "sqlite"})).errors == []


async def test_the_hub_audits_a_retention_waiver_once_and_its_end(tmp_path: Path) -> None:
    from coldchain.config.loader import load_site_config
    from hub.service import Hub

    profiles = shipped_profiles()
    waiver = {"reason": "a training system, no goods", "approved_by": "Wang Li, QA"}

    async def start(store: dict[str, Any]) -> list[Any]:
        path = retention_site(tmp_path, store)
        cfg = load_site_config(path, profiles)
        hub = Hub(cfg, profiles, data_dir=tmp_path / "hub", config_path=path, listen="127.0.0.1:0")
        records, _ = hub.audit.page(100, 0, action="store.")
        hub.audit.close()
        hub.registry.close()
        hub.socket.close()
        await hub.store.close()
        return [(r.before, r.after) for r in reversed(records)]

    short = {"type": "sqlite", "retention": "30d", "retention_waiver": waiver}
    assert await start({"type": "sqlite"}) == []  # no waiver, nothing to record
    first = await start(short)
    assert first == [(None, {"retention_days": 30.0, **waiver})]
    assert await start(short) == first  # the same waiver again: nothing new
    ended = await start({"type": "sqlite"})
    assert ended == [*first, ({"retention_days": 30.0, **waiver}, None)]
