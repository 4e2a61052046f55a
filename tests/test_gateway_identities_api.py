"""The gateways' broker identities through the hub's API (technicians), on a real Mosquitto
with the dynamic security plugin and the real hub: provision answers with the bundle as a
download, the gateway then connects with it; rotate, retire and revoke do what the command
does; each is audited under the logged-in user's name, never with a secret; an operator is
refused; errors say what is wrong."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path

import aiomqtt
import httpx
import pytest
from playwright.async_api import Dialog

from dashboards.web.i18n import translate
from hub.auth import COOKIE
from hub.csrf import HEADER as CSRF_HEADER
from tests.browser import add_user, chromium, logged_in
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


@pytest.mark.slow
async def test_a_technician_provisions_and_revokes_from_the_gateways_page(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    """The gateways page's identity buttons, in headless Chromium: each enabled where its
    action applies; Provision downloads the bundle; Revoke asks first, then cuts it off."""
    broker = secured_mosquitto
    async with (
        simulated_centre(tmp_path, broker) as (_site, cfg),
        running_hub_service(
            cfg, PROFILES, tmp_path / "hub", broker.url, password=broker.hub[1]
        ) as hub,
        chromium() as browser,
    ):
        page = await logged_in(browser, hub.url, "li-tech", add_user(hub, "li-tech", "technician"))
        await page.goto(f"{hub.url}/gateways")
        clients = page.locator("#gw-gw1 td.identity .clients")
        buttons = page.locator('form.identity[data-gateway="gw1"] button')

        async def enabled() -> list[str]:
            await page.wait_for_function(
                "el => el.textContent !== '…'", arg=await clients.element_handle()
            )
            return [
                v
                for v in await buttons.evaluate_all("bs => bs.map(b => b.disabled ? '' : b.value)")
                if v
            ]

        assert await enabled() == ["provision"]
        none = translate("identity_none", "zh-CN")  # the UI's default language
        assert await clients.text_content() == none
        async with page.expect_download() as download_info:
            await page.click('form.identity[data-gateway="gw1"] button[value=provision]')
        download = await download_info.value
        assert download.suggested_filename == "coldchain-gw1.tar.gz"
        files = bundle_files(await asyncio.to_thread(Path(await download.path()).read_bytes))
        assert files["coldchain-gw1/broker-password"].strip()
        await page.wait_for_function(
            "el => el.textContent === 'gw1'", arg=await clients.element_handle()
        )
        assert await enabled() == ["rotate", "revoke"]

        asked: list[str] = []

        async def answer(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await (dialog.dismiss() if len(asked) == 1 else dialog.accept())

        page.on("dialog", answer)
        revoke = 'form.identity[data-gateway="gw1"] button[value=revoke]'
        await page.click(revoke)  # dismissed: nothing happens
        await page.click(revoke)
        await page.wait_for_function(
            "([el, none]) => el.textContent === none", arg=[await clients.element_handle(), none]
        )
        assert len(asked) == 2
        assert "gw1" in asked[0]
        records, _ = hub.audit.page(10, 0, action="gateway.")
        assert [(r.actor, r.action) for r in reversed(records)] == [
            ("li-tech", "gateway.provision"),
            ("li-tech", "gateway.revoke"),
        ]
