"""The reports' PDF as an archive keeps it: with a TrueType face with Chinese glyphs on the
centre (Debian's fonts-wqy-microhei, which `make test` installs) every font the PDF uses is
embedded (a subset) and its Chinese text reads back; without one, the built-in fonts, not
embedded, as before; a time column never wraps, however many columns share the page."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from dashboards.fonts import KNOWN_FONTS, find_cjk_font
from dashboards.reports import pdfout
from dashboards.reports.tables import Document, Section

TIME = "2026-01-02 10:00:00"
DOC = Document(
    title="每日温度记录 Daily log",
    facts=(("Site", "双溪镇禽类冷库 (s1)"), ("Room", "冷鲜禽库 (chill)")),
    sections=(
        Section(
            "Alerts, acknowledgements and comments",
            # thirteen columns (landscape), long text beside the times
            (
                "Rule",
                "Level",
                "Started",
                "Ended",
                "Peak",
                "Acknowledged",
                "By",
                "Via",
                "Comment",
                "Cause",
                "Action",
                "Note",
                "Checked by",
            ),
            tuple(
                (
                    "temperature-high",
                    "alarm",
                    TIME,
                    TIME,
                    "5.5 °C",
                    TIME,
                    "wang-li",
                    "sms",
                    "门未关好，已关门并通知主管 " * 3,  # noqa: RUF001
                    "door left open by the night shift",
                    "moved the stock of shelf 3 to room 2 and checked it",
                    "the next shift checked the room twice and found it cold again",
                    "zhang-wei",
                )
                for _ in range(3)
            ),
        ),
    ),
    filename="daily",
)


@pytest.fixture
def font() -> Iterator[Path]:
    path = find_cjk_font()
    if path is None:
        pytest.fail(
            f"no CJK TrueType font ({', '.join(map(str, KNOWN_FONTS))}): "
            "`apt-get install fonts-wqy-microhei` (make services does it)"
        )
    yield path
    pdfout.configure(path)  # as the module starts


def fonts_of(body: bytes) -> dict[str, bool]:
    """Each font of the PDF's pages: whether its glyphs are embedded."""
    out = {}
    for page in pypdf.PdfReader(io.BytesIO(body)).pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            f = ref.get_object()
            desc = f.get("/FontDescriptor")
            if "/DescendantFonts" in f:
                desc = f["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            desc = desc.get_object() if desc is not None else {}
            out[str(f["/BaseFont"])] = any(
                k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")
            )
    return out


def lines_of(body: bytes) -> list[str]:
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body)).pages)
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_every_font_is_embedded_and_the_chinese_reads_back(font: Path) -> None:
    assert pdfout.configure(font)
    body = pdfout.render(DOC)
    embedded = fonts_of(body)
    assert embedded
    assert all(embedded.values()), embedded  # Helvetica too: none left out
    text = "\n".join(lines_of(body))
    for words in ("每日温度记录", "双溪镇禽类冷库", "门未关好", "5.5 °C"):
        assert words in text, words
    assert TIME in lines_of(body)  # a whole line: the time did not wrap


def test_without_a_font_the_built_in_ones_are_used_and_not_embedded(font: Path) -> None:
    assert not pdfout.configure(None)
    body = pdfout.render(DOC)
    assert fonts_of(body) == {"/Helvetica": False, "/Helvetica-Bold": False, "/STSong-Light": False}
    text = "\n".join(lines_of(body))
    assert "双溪镇禽类冷库" in text
    assert TIME in lines_of(body)
