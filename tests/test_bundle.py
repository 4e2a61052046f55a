"""A gateway's bundle: the config slice it carries (its own gateway, no hub settings, where
its secrets will be), and no half-written bundle left behind when writing fails (it would
hold a password)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from coldchain.config.site import SiteConfig
from gateway import bundle
from gateway.dynsec import Identity
from tests.sites import device as dev
from tests.sites import gateway as gw
from tests.sites import one_gateway_site, room, shipped_profiles, tcp_bus

PROFILES = shipped_profiles()
KEY = bytes(range(32))


def two_gateways(**uplink: Any) -> SiteConfig:
    doc = one_gateway_site(
        rooms=[room("chill", "Chilled")],
        buses=[tcp_bus("tcp", port=1502)],
        devices=[dev("probe", "xy-md02", bus="tcp", unit_id=1, room="chill")],
        uplink={"broker": "mqtts://mqtt.example.org:8883", **uplink},
        hub={"data_dir": "/srv/hub"},
    )
    doc["gateways"].append(
        gw(
            "gw2",
            "s1",
            [tcp_bus("tcp", port=1503)],
            [dev("p2", "xy-md02", bus="tcp", unit_id=1, room="chill")],
        )
    )
    return SiteConfig.model_validate(doc)


def test_the_slice_is_the_gateways_own_with_its_secrets_where_the_install_puts_them(
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = two_gateways(ca_file=str(ca))
    doc = bundle.agent_config(cfg, "gw1", Identity("gw1", "gw1.2", "pw"))
    assert [g["id"] for g in doc["gateways"]] == ["gw1"]
    assert "hub" not in doc
    assert doc["uplink"] == {
        "broker": "mqtts://mqtt.example.org:8883",
        "ca_file": "/etc/coldchain/ca.crt",
        "username": "gw1.2",
        "password_file": "/etc/coldchain/broker-password",
        "key_file": "/etc/coldchain/message-key",
    }
    SiteConfig.model_validate(doc)  # loads as it is
    out = tmp_path / "b.tar.gz"
    bundle.write_bundle(out, cfg, PROFILES, "gw1", Identity("gw1", "gw1.2", "pw"), key=KEY)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"coldchain-gw1/ca.crt", "coldchain-gw1/message-key"} <= names
    with pytest.raises(ValueError, match="not in the site config"):
        bundle.agent_config(cfg, "gw9", Identity("gw9", "gw9", "pw"))


def test_a_bundle_that_fails_half_way_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = two_gateways()
    out = tmp_path / "b.tar.gz"
    calls: list[str] = []
    original = tarfile.TarFile.addfile

    def failing(self: tarfile.TarFile, info: tarfile.TarInfo, *args: Any) -> None:
        calls.append(info.name)
        if len(calls) == 3:  # after the password went in
            raise OSError(28, "No space left on device")
        original(self, info, *args)

    monkeypatch.setattr(tarfile.TarFile, "addfile", failing)
    with pytest.raises(OSError, match="No space left"):
        bundle.write_bundle(out, cfg, PROFILES, "gw1", Identity("gw1", "gw1", "secret"), key=KEY)
    assert "coldchain-gw1/broker-password" in calls[:2]
    assert not out.exists()
