"""The gateways' broker identities through the hub's API (technicians), on a real Mosquitto
with the dynamic security plugin and the real hub: provision answers with the bundle as a
download, the gateway then connects with it; rotate, retire and revoke do what the command
does; each is audited under the logged-in user's name, never with a secret; an operator is
refused; errors say what is wrong."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import aiomqtt
import httpx

from hub.auth import COOKIE
from hub.csrf import HEADER as CSRF_HEADER
from tests.hubkit import running_hub_service, session_header
from tests.services import SecuredBroker
from tests.test_gateway_provisioning import PROFILES, simulated_centre


def bundle_files(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {
            m.name: f.read()
            for m in tar.getmembers()
            if m.isfile() and (f := tar.extractfile(m)) is not None
        }


async def test_technicians_manage_gateway_identities_through_the_api(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    broker = secured_mosquitto
    async with (
        simulated_centre(tmp_path, broker) as (_site, cfg),
        running_hub_service(
            cfg, PROFILES, tmp_path / "hub", broker.url, password=broker.hub[1]
        ) as hub,
    ):
        admin = session_header(hub.url)
        hub.auth.users.add("zhao-op", "operator", "operator-password-1")
        op_session = hub.auth.sessions.issue("zhao-op")
        op_state = hub.auth.sessions.verify(op_session)
        assert op_state is not None
        operator = {"Cookie": f"{COOKIE}={op_session}", CSRF_HEADER: op_state.csrf_token}
        async with httpx.AsyncClient(base_url=hub.url, timeout=20) as http:
            r = await http.post("/api/gateways/gw1/provision", headers=operator)
            assert r.status_code == 403
            r = await http.post("/api/gateways/gw9/provision", headers=admin)
            assert (r.status_code, "not in the site config" in r.text) == (404, True)

            r = await http.post("/api/gateways/gw1/provision", headers=admin)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/gzip"
            assert r.headers["cache-control"] == "no-store"
            assert 'filename="coldchain-gw1.tar.gz"' in r.headers["content-disposition"]
            files = bundle_files(r.content)
            password = files["coldchain-gw1/broker-password"].decode().strip()
            assert "coldchain-gw1/message-key" in files
            # the bundle's identity works on the broker
            async with aiomqtt.Client(
                broker.host, broker.port, username="gw1", password=password, timeout=5
            ):
                pass
            r = await http.post("/api/gateways/gw1/provision", headers=admin)
            assert r.status_code == 409
            assert "already has a broker identity" in r.json()["detail"]

            r = await http.post("/api/gateways/gw1/rotate", headers=admin)
            assert r.status_code == 200
            assert "coldchain-gw1/broker-password" in bundle_files(r.content)
            r = await http.get("/api/gateway-identities", headers=admin)
            assert r.json() == {"gw1": ["gw1", "gw1.2"]}
            r = await http.post("/api/gateways/gw1/retire", headers=admin)
            assert r.json() == {"gateway": "gw1", "deleted": ["gw1"]}
            r = await http.post("/api/gateways/gw1/revoke", headers=admin)
            assert r.json() == {"gateway": "gw1", "deleted": ["gw1.2"]}
            assert getattr(hub.registry.get("gw1"), "state", None) == "offline"
            assert (await http.get("/api/gateway-identities", headers=admin)).json() == {}
            r = await http.post("/api/gateways/gw1/rotate", headers=admin)
            assert r.status_code == 409  # nothing left to rotate
            r = await http.post("/api/gateways/Bad!Id/revoke", headers=admin)
            assert r.status_code == 422

            (tmp_path / "hub" / "broker-admin-password").unlink()
            r = await http.get("/api/gateway-identities", headers=admin)
            assert r.status_code == 503
            assert "coldchain broker config" in r.json()["detail"]

        records, _ = hub.audit.page(20, 0, action="gateway.")
        assert [(x.action, x.actor) for x in reversed(records)] == [
            ("gateway.provision", "test-admin"),
            ("gateway.rotate", "test-admin"),
            ("gateway.retire", "test-admin"),
            ("gateway.revoke", "test-admin"),
        ]
        assert records[-1].after == {"client": "gw1", "bundle": "coldchain-gw1.tar.gz"}
    assert password.encode() not in (tmp_path / "hub" / "hub.db").read_bytes()
