"""The Chinese font of the web UI and the PDF reports, from a TrueType font on the centre.

A machine without a CJK font shows every Chinese character of the UI as a box, and a PDF
viewer without one shows blank text. So the hub takes a TrueType face with Chinese glyphs
(``hub.cjk_font``, or the first of :data:`KNOWN_FONTS` installed: Debian's
``fonts-wqy-microhei``, WenQuanYi Micro Hei, Apache License 2.0) and

* serves the web UI a subset of it (:func:`web_font`): only the glyphs the UI's own text and
  the site config's names use, as WOFF, at an address named by its digest (cached for a
  year by browsers); its name table, with the copyright and licence, is kept in the subset;
* embeds it in the PDFs (ReportLab embeds the glyphs a document uses:
  :mod:`dashboards.reports.pdfout`).

The subset is made on first request, not at start (about 0.4 s of CPU for ~300 Chinese
characters, ~80 kB), then kept in the hub's data dir and in memory. Text typed by people
(comments, notes) in characters outside the subset falls back to the browser's own fonts.
Only TrueType outlines will do for the PDFs (ReportLab cannot embed CFF, the outlines of
Noto Sans CJK / Source Han Sans).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

KNOWN_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
)
FAMILY = "coldchain-cjk"  # the web font's CSS family name
HERE = Path(__file__).parent
# where the UI's own text lives: the catalogue, the templates, the scripts, the alert texts
UI_SOURCES = (HERE / "web", HERE / "reports", HERE.parent / "coldchain" / "alerting")
# what every page may show besides: ASCII, and the symbols of units, limits and times
ALWAYS = "".join(chr(c) for c in range(0x20, 0x7F)) + (
    "°±≤≥Δ·—–…×→←↑↓“”‘’、，。：；！？（）《》【】％"  # noqa: RUF001 - Chinese punctuation
)


class FontError(ValueError):
    """A configured font that cannot be used."""


def find_cjk_font(
    configured: str | None = None, known: Iterable[Path] = KNOWN_FONTS
) -> Path | None:
    """The configured font (which must be a readable TrueType file), else the first of
    ``known`` installed; None when there is none, or when ``configured`` is ``none`` (the
    browser's and the PDF viewer's own fonts)."""
    if configured == "none":
        return None
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FontError(f"hub.cjk_font: {path}: no such file")
        if path.suffix.lower() not in (".ttf", ".ttc"):
            raise FontError(f"hub.cjk_font: {path}: not a TrueType font (.ttf or .ttc)")
        return path
    return next((p for p in known if p.is_file()), None)


def ui_text(names: Iterable[str] = ()) -> str:
    """Every character the UI may show: its own text (:data:`UI_SOURCES`), :data:`ALWAYS`,
    and ``names`` (the site config's sites, rooms, devices, contacts)."""
    chars = set(ALWAYS) | _source_chars()
    for name in names:
        chars.update(c for c in name if c.isprintable())
    return "".join(sorted(chars))


@functools.cache
def _source_chars() -> frozenset[str]:
    """The characters beyond ASCII in the UI's sources (read once a process)."""
    chars: set[str] = set()
    for root in UI_SOURCES:
        for f in sorted(root.rglob("*")):
            if f.suffix in (".py", ".html", ".js", ".css"):
                chars.update(c for c in f.read_text(encoding="utf-8") if ord(c) >= 0x80)
    return frozenset(chars)


@dataclass(frozen=True)
class WebFont:
    """The UI's font subset: where it is served (``/fonts/NAME``), and how to make it."""

    source: Path
    text: str
    name: str  # cjk-<digest>.woff: a new subset gets a new address

    @classmethod
    def plan(cls, source: Path, text: str) -> WebFont:
        st = source.stat()
        key = f"{source}\0{st.st_size}\0{st.st_mtime_ns}\0{text}".encode()
        return cls(source, text, f"cjk-{hashlib.sha256(key).hexdigest()[:16]}.woff")

    def data(self, cache: Path | None = None) -> bytes:
        """The WOFF subset: from ``cache`` (a directory) or memory if made before, else made
        now and kept in both."""
        if cache is not None and (cache / self.name).is_file():
            return (cache / self.name).read_bytes()
        data = _subset(self.source, self.text, self.name)
        if cache is not None:
            try:
                cache.mkdir(parents=True, exist_ok=True)
                tmp = cache / (self.name + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(cache / self.name)
            except OSError as exc:  # served from memory all the same
                log.warning("could not keep the UI's font subset in %s: %s", cache, exc)
        return data


_lock = threading.Lock()


@functools.cache
def _made(source: Path, text: str, name: str) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing a browser reads
    options.name_IDs = ["*"]  # the copyright and licence records travel with the glyphs
    options.name_languages = ["*"]
    options.notdef_outline = True
    font = TTFont(source, fontNumber=0, lazy=True)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    font.flavor = "woff"  # zlib: every browser reads it, and no brotli needed here
    out = io.BytesIO()
    font.save(out)
    log.info("made the UI's font subset %s: %d bytes from %s", name, out.tell(), source)
    return out.getvalue()


def _subset(source: Path, text: str, name: str) -> bytes:
    with _lock:  # one subset at a time; the cache answers every later request
        return _made(source, text, name)
