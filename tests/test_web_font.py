"""The web UI's Chinese font: a subset of the centre's TrueType face (Debian's
fonts-wqy-microhei, which `make test` installs), only the glyphs the UI's text and the
site's names use, served as WOFF from an address named by its digest; Chromium loads it on
the login page and the board (``document.fonts``); a configured font that is missing stops
the hub with the reason."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from fontTools.ttLib import TTFont

from coldchain.config.site import SiteConfig
from dashboards.fonts import KNOWN_FONTS, FontError, find_cjk_font, ui_text
from dashboards.web.i18n import CATALOGUE
from hub.service import Hub
from tests.alertkit import PROFILES
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import running_hub_service
from tests.services import Broker
from tests.test_alerts_api import _config

LOADED = """async () => {
    await document.fonts.ready;
    const ours = [...document.fonts].filter(f => f.family.replace(/"/g, "") === "coldchain-cjk");
    await Promise.all(ours.map(f => f.status === "unloaded" ? f.load() : f.loaded));
    return ours.map(f => f.status).concat([document.fonts.check('15px "coldchain-cjk"', "冷库")]);
}"""


def names(cfg: SiteConfig) -> str:
    return "".join(s.name + "".join(r.name for r in s.rooms) for s in cfg.sites)


@pytest.mark.slow
async def test_the_ui_serves_its_own_chinese_font_and_chromium_loads_it(
    tmp_path: Path, mosquitto: Broker
) -> None:
    if find_cjk_font() is None:
        pytest.fail(f"no CJK TrueType font ({KNOWN_FONTS[0]}): make services installs one")
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        async with httpx.AsyncClient(base_url=hub.url) as http:
            login = (await http.get("/login")).text
            assert hub.ui.font is not None
            url = f"/fonts/{hub.ui.font.name}"
            assert url in login  # the login page (no session) names it
            got = await http.get(url)  # and may fetch it
            assert got.status_code == 200
            assert got.headers["content-type"] == "font/woff"
            assert "immutable" in got.headers["cache-control"]
            assert got.content[:4] == b"wOFF"
            assert len(got.content) < 400_000  # a subset, not the 5 MB face
            assert (await http.get("/fonts/cjk-0000000000000000.woff")).status_code == 404
        assert (tmp_path / "hub" / "fonts" / hub.ui.font.name).read_bytes() == got.content
        cmap = TTFont(io.BytesIO(got.content)).getBestCmap()
        wanted = set(names(cfg)) | {c for zh, _ in CATALOGUE.values() for c in zh}
        assert {c for c in wanted if c.strip() and ord(c) not in cmap} == set()
        assert "copyright" in str(TTFont(io.BytesIO(got.content))["name"].getDebugName(0)).lower()

        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"{hub.url}/login")
            assert await page.evaluate(LOADED) == ["loaded", True]
            page = await logged_in(browser, hub.url, "wu-op", add_user(hub, "wu-op", "operator"))
            assert await page.evaluate(LOADED) == ["loaded", True]


def test_a_configured_font_must_exist_and_be_truetype(tmp_path: Path) -> None:
    with pytest.raises(FontError, match="no such file"):
        find_cjk_font(str(tmp_path / "missing.ttf"))
    (tmp_path / "face.otf").write_bytes(b"OTTO")
    with pytest.raises(FontError, match="not a TrueType font"):
        find_cjk_font(str(tmp_path / "face.otf"))
    assert find_cjk_font(None, known=[tmp_path / "nothing.ttc"]) is None
    assert find_cjk_font("none") is None  # the browser's own fonts, by choice
    cfg = _config(tmp_path)
    cfg = cfg.model_copy(
        update={"hub": cfg.hub.model_copy(update={"cjk_font": str(tmp_path / "gone.ttf")})}
    )
    with pytest.raises(FontError, match=r"hub.cjk_font: .*gone.ttf: no such file"):
        Hub(cfg, PROFILES, data_dir=tmp_path / "hub", broker="mqtt://127.0.0.1:1")


def test_the_subset_covers_the_ui_and_the_names_it_is_given() -> None:
    text = ui_text(["冷鲜禽库", "Ünïcode"])
    assert {"冷", "鲜", "禽", "Ü", "ï"} <= set(text)
    assert {c for zh, _ in CATALOGUE.values() for c in zh} <= set(text)
