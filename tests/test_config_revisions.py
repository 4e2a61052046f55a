"""Config revisions without a broker: the messages (signed, bounded, checked), a gateway's
slice of the site config and how the agent puts it in place, what the agent answers to a
revision it cannot take, and the hub's record of revisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from coldchain.config.slices import (
    SliceError,
    apply_slice,
    digest,
    gateway_slice,
    needs_restart,
    slice_text,
)
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.auth import new_key
from coldchain.protocol.messages import ProtocolError, pack
from coldchain.protocol.revisions import (
    ConfigAck,
    Revision,
    decode_ack,
    decode_revision,
    encode_ack,
    encode_revision,
)
from edge_agent.agent import Agent
from firmware_configs import SITES_DIR
from gateway.configpush import Revisions, plan
from tests.sites import shipped_profiles

GW = "gw-dongtang"


@pytest.fixture(scope="module")
def site() -> tuple[SiteConfig, ProfileRegistry]:
    profiles = shipped_profiles()
    return load_site_config(SITES_DIR / "county.yaml", profiles), profiles


def test_a_revision_round_trips_signed_and_refuses_what_the_hub_did_not_send() -> None:
    key = new_key()
    data = encode_revision(3, '{"a":1}', key=key, gateway=GW)
    rev = decode_revision(data, key=key, gateway=GW)
    assert (rev.rev, rev.text, rev.sha256) == (3, '{"a":1}', digest('{"a":1}'))
    with pytest.raises(ProtocolError) as err:  # signed for another gateway
        decode_revision(data, key=key, gateway="gw-meilin")
    assert err.value.reason == "bad_mac"
    with pytest.raises(ProtocolError) as err:  # unsigned, to an agent with a key
        decode_revision(encode_revision(3, "{}"), key=key, gateway=GW)
    assert err.value.reason == "bad_mac"
    tampered = {"v": 1, "rev": 3, "sha256": digest('{"a":1}'), "slice": '{"a":2}'}
    with pytest.raises(ProtocolError, match="does not match"):
        decode_revision(pack(tampered))


@pytest.mark.parametrize(
    ("msg", "why"),
    [
        ({"v": 2, "rev": 1, "sha256": digest("{}"), "slice": "{}"}, "not a v1"),
        ({"v": 1, "rev": 0, "sha256": digest("{}"), "slice": "{}"}, "bad rev"),
        ({"v": 1, "rev": True, "sha256": digest("{}"), "slice": "{}"}, "bad rev"),
        ({"v": 1, "rev": 1, "sha256": digest("{}"), "slice": b"{}"}, "are text"),
        ({"v": 1, "rev": 1, "sha256": digest("{}"), "slice": "{}", "x": 1}, "unknown field"),
    ],
)
def test_a_malformed_revision_is_refused(msg: dict[str, Any], why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        decode_revision(pack(msg))


def test_an_answer_round_trips_and_a_refusal_says_why() -> None:
    ack = ConfigAck(4, ok=True, restart=("agent.data_dir",))
    assert decode_ack(encode_ack(ack)) == ack
    no = ConfigAck(5, ok=False, error="rolled back: bus x")
    assert decode_ack(encode_ack(no)) == no
    with pytest.raises(ProtocolError, match="says why"):
        decode_ack(pack({"v": 1, "rev": 5, "ok": False}))
    with pytest.raises(ProtocolError, match="bad restart"):
        decode_ack(pack({"v": 1, "rev": 5, "ok": True, "restart": [1]}))


def test_a_slice_applied_to_the_config_it_came_from_changes_nothing(
    site: tuple[SiteConfig, ProfileRegistry],
) -> None:
    cfg, profiles = site
    doc = gateway_slice(cfg, GW, profiles)
    assert "uplink" not in doc  # a push must never cut a gateway off from the centre
    assert set(doc["profiles"]) == {d.profile for d in cfg.gateway(GW).devices}
    new, _ = apply_slice(cfg, GW, json.loads(slice_text(doc)), profiles)
    assert new.gateway(GW) == cfg.gateway(GW)
    assert new.agent == cfg.agent
    assert slice_text(gateway_slice(new, GW, profiles)) == slice_text(doc)


def test_a_slice_brings_the_profile_its_new_device_uses(
    site: tuple[SiteConfig, ProfileRegistry],
) -> None:
    cfg, profiles = site
    doc = gateway_slice(cfg, GW, profiles)
    body = dict(doc["profiles"]["renke-rs-ws-n01-8"], id="renke-local")
    doc["profiles"]["renke-local"] = body
    doc["gateway"]["devices"][0]["profile"] = "renke-local"
    before = ProfileRegistry(list(profiles))
    new, registry = apply_slice(cfg, GW, doc, before)
    assert new.gateway(GW).devices[0].profile == "renke-local"
    assert "renke-local" in registry
    assert "renke-local" not in before  # the agent's own registry is not touched


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda d: d["gateway"]["devices"][0].update(bus="no-such-bus"), "no-such-bus"),
        (lambda d: d["gateway"]["devices"][0].update(profile="nope"), "nope"),
        (lambda d: d["gateway"].update(id="gw-meilin"), "this is gw-dongtang"),
        (lambda d: d.update(uplink={"broker": "mqtt://evil:1883"}), "unknown part"),
        (lambda d: d["profiles"]["carel-ir33plus"].update(id="x"), "says"),
        (lambda d: d["agent"].update(batch_size=0), "batch_size"),
        (lambda d: d.pop("site"), "site: missing"),
    ],
)
def test_a_slice_that_does_not_check_is_refused_whole(
    site: tuple[SiteConfig, ProfileRegistry], edit: Any, why: str
) -> None:
    cfg, profiles = site
    doc = json.loads(slice_text(gateway_slice(cfg, GW, profiles)))
    edit(doc)
    with pytest.raises(SliceError, match=why):
        apply_slice(cfg, GW, doc, profiles)


def test_what_waits_for_a_restart(site: tuple[SiteConfig, ProfileRegistry]) -> None:
    cfg, _ = site
    live = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={"batch_size": 7})})
    assert needs_restart(cfg, live, GW) == []
    moved = cfg.model_copy(
        update={"agent": cfg.agent.model_copy(update={"buffer_max_mb": 9, "clock_check": False})}
    )
    assert needs_restart(cfg, moved, GW) == ["agent.buffer_max_mb", "agent.clock_check"]


async def test_the_agent_refuses_what_does_not_check_and_keeps_running_as_it_was(
    site: tuple[SiteConfig, ProfileRegistry], tmp_path: Path
) -> None:
    cfg, profiles = site
    agent = Agent(cfg, GW, profiles, data_dir=tmp_path)
    before = agent.cfg
    doc = gateway_slice(cfg, GW, profiles)
    doc["gateway"]["devices"][0]["bus"] = "no-such-bus"
    text = slice_text(doc)
    ack = await agent.reconfig.on_revision(Revision(2, digest(text), text))
    assert ack is not None
    assert not ack.ok
    assert ack.error is not None
    assert ack.error.startswith("invalid: ")
    assert "no-such-bus" in ack.error
    assert agent.cfg is before
    for garbage in ("[1]", "{" * 100, "not json"):
        ack = await agent.reconfig.on_revision(Revision(3, digest(garbage), garbage))
        assert ack is None or not ack.ok
    # the refusal is kept: the same revision again is answered the same, untried
    again = await agent.reconfig.on_revision(Revision(2, digest(text), text))
    assert again is None  # 3 came after it
    restarted = Agent(cfg, GW, profiles, data_dir=tmp_path)
    assert restarted.reconfig.last_rev == 3
    assert restarted.cfg == cfg
    agent.outbox.close()
    restarted.outbox.close()


async def test_the_agent_keeps_an_applied_revision_across_a_restart(
    site: tuple[SiteConfig, ProfileRegistry], tmp_path: Path
) -> None:
    cfg, profiles = site
    agent = Agent(cfg, GW, profiles, data_dir=tmp_path)
    doc = gateway_slice(cfg, GW, profiles)
    doc["gateway"]["devices"] = [d for d in doc["gateway"]["devices"] if d["bus"] == "local"]
    doc["gateway"]["buses"] = [b for b in doc["gateway"]["buses"] if b["id"] == "local"]
    doc["agent"]["batch_size"] = 123
    text = slice_text(doc)
    ack = await agent.reconfig.on_revision(Revision(5, digest(text), text))
    assert ack == ConfigAck(5, ok=True)
    assert agent.uplink.settings.batch_size == 123
    assert not agent.pollers  # the Modbus buses it dropped are closed
    assert await agent.reconfig.on_revision(Revision(5, digest(text), text)) == ack
    restarted = Agent(cfg, GW, profiles, data_dir=tmp_path)
    assert restarted.cfg.agent.batch_size == 123
    assert [b.id for b in restarted.gw.buses] == ["local"]
    # a local config changed since (a new bundle): it wins, the revision is taken anew
    local = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={"batch_size": 9})})
    reinstalled = Agent(local, GW, profiles, data_dir=tmp_path)
    assert reinstalled.cfg.agent.batch_size == 9
    assert reinstalled.reconfig.last_rev == 0
    agent.outbox.close()
    restarted.outbox.close()
    reinstalled.outbox.close()


def test_the_hub_pushes_only_the_slices_that_changed(
    site: tuple[SiteConfig, ProfileRegistry], tmp_path: Path
) -> None:
    cfg, profiles = site
    revisions = Revisions(tmp_path / "hub.db")
    first = plan(cfg, profiles, revisions)
    assert {c.gateway for c in first} == {g.id for g in cfg.gateways}
    for c in first:
        revisions.record(c, now_ms=1000, actor="test")
    assert plan(cfg, profiles, revisions) == []
    gws = [
        g.model_copy(update={"devices": g.devices[:-1]}) if g.id == GW else g for g in cfg.gateways
    ]
    changed = plan(cfg.model_copy(update={"gateways": gws}), profiles, revisions)
    assert [(c.gateway, c.rev) for c in changed] == [(GW, 2)]
    assert "precool-probe" in changed[0].diff()
    revisions.record(changed[0], now_ms=2000, actor="test")
    assert revisions.state(GW).state == "pending"
    assert not revisions.ack(GW, ConfigAck(7, ok=True), now_ms=3000)  # never pushed
    assert revisions.ack(GW, ConfigAck(2, ok=False, error="rolled back: x"), now_ms=3000)
    state = revisions.state(GW)
    assert (state.desired, state.applied, state.state, state.error) == (
        2,
        None,
        "refused",
        "rolled back: x",
    )
    assert revisions.superseded(2000) == [(GW, first[[c.gateway for c in first].index(GW)].text)]
    assert revisions.superseded(2001) == []
    revisions.close()


def test_the_hub_accepts_series_a_push_dropped_while_their_grace_lasts(
    site: tuple[SiteConfig, ProfileRegistry], tmp_path: Path
) -> None:
    from coldchain.store.sqlite.store import SqliteStore
    from gateway.configpush import retired_series
    from gateway.ingest import Ingest, series_bounds

    cfg, profiles = site
    old_text = slice_text(gateway_slice(cfg, GW, profiles))
    gws = [
        g.model_copy(update={"devices": g.devices[:-1]}) if g.id == GW else g for g in cfg.gateways
    ]
    new = cfg.model_copy(update={"gateways": gws})
    dropped = {s for s in series_bounds(cfg, profiles)[GW] if s.device == "precool-probe"}
    assert dropped
    store = SqliteStore(tmp_path / "store.db")
    ingest = Ingest(cfg, profiles, store)
    ingest.reconfigure(new, profiles)  # no grace: the dropped series are refused
    assert not dropped & ingest.allowed[GW]
    retired = retired_series(
        new, profiles, [(GW, old_text)], lambda c, p, g: series_bounds(c, p).get(g, {})
    )
    ingest.reconfigure(new, profiles, retired)
    assert dropped <= ingest.allowed[GW]
    assert set(series_bounds(new, profiles)[GW]) <= ingest.allowed[GW]
