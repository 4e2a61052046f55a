"""A report as PDF, with ReportLab.

With a TrueType face with Chinese glyphs on the machine (``hub.cjk_font``, or one of
:data:`dashboards.fonts.KNOWN_FONTS`: Debian's ``fonts-wqy-microhei``), every text of the
report is set in it and the glyphs the report uses are embedded (a subset, as ReportLab
always embeds TrueType): the PDF shows the same in every viewer and carries every font it
uses, as archiving asks. Without one, Latin text is set in Helvetica and Chinese (and ≤, ≥,
Δ) in ReportLab's built-in CID font STSong-Light (Adobe-GB1, ``UniGB-UCS2-H``), neither
embedded: the viewer supplies them (docs/reports.md). :func:`configure` chooses; the module
starts with the first known font installed.

Columns of times, dates and numbers are as wide as their longest cell, so a time never
wraps; the other columns share the rest of the width.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from dashboards.fonts import find_cjk_font
from dashboards.reports.tables import Document, Section

CJK = "STSong-Light"  # the built-in CID font, when no TrueType face is configured
EMBEDDED = "coldchain-cjk"  # the TrueType face, when there is one
pdfmetrics.registerFont(UnicodeCIDFont(CJK))
_WIDE = 7  # sections with more columns than this print in landscape


@dataclass(frozen=True)
class _Fonts:
    text: str  # every Latin text (every text, when embedded)
    bold: str
    cjk: str  # Chinese runs
    embedded: bool
    styles: dict[str, ParagraphStyle]


def _fonts(text: str, bold: str, cjk: str, *, embedded: bool) -> _Fonts:
    cell = ParagraphStyle("cell", fontName=text, fontSize=8, leading=10, wordWrap="CJK")
    styles = {
        "title": ParagraphStyle("title", fontName=text, fontSize=14, leading=18, spaceAfter=6),
        "h2": ParagraphStyle(
            "h2", fontName=text, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4
        ),
        "text": ParagraphStyle("text", fontName=text, fontSize=9, leading=11),
        "cell": cell,
        "cell-latin": ParagraphStyle("cell-latin", parent=cell, wordWrap=None),
        "head": ParagraphStyle("head", parent=cell, fontName=bold),
        "foot": ParagraphStyle("foot", fontName=text, fontSize=7, leading=9),
    }
    return _Fonts(text, bold, cjk, embedded, styles)


BUILT_IN = _fonts("Helvetica", "Helvetica-Bold", CJK, embedded=False)


@dataclass
class _Chosen:
    fonts: _Fonts


_chosen = _Chosen(BUILT_IN)


def configure(font: Path | None) -> bool:
    """Set every text in ``font`` (a TrueType face with Chinese glyphs, embedded) from now
    on; None: Helvetica and STSong-Light, not embedded. Whether a face is embedded."""
    if font is None:
        _chosen.fonts = BUILT_IN
        return False
    name = f"{EMBEDDED}-{hashlib.sha256(str(font).encode()).hexdigest()[:8]}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(font), subfontIndex=0))
    _chosen.fonts = _fonts(name, name, name, embedded=True)
    return True


configure(find_cjk_font())


def embedded() -> bool:
    """Whether reports embed their font (a TrueType face is configured)."""
    return _chosen.fonts.embedded


PAD = 3
# a column whose every cell is a time, a date or a number (with its unit): never wrapped
_UNBROKEN = re.compile(r"[-+]?[0-9][0-9 :./+\-]*(?: ?(?:°C|%RH|%|min|s|h))?")


def _table_style(f: _Fonts) -> TableStyle:
    cell = f.styles["cell"]
    return TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("FONT", (0, 0), (-1, -1), f.text, cell.fontSize, cell.leading),
            ("LEFTPADDING", (0, 0), (-1, -1), PAD),
            ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ]
    )


def _latin(ch: str) -> bool:
    """Whether Helvetica (WinAnsiEncoding, cp1252) has ``ch``."""
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def markup(text: str) -> str:
    """``text`` as Paragraph markup. With an embedded face, as it is (the face has every
    glyph); else runs Helvetica cannot set (Chinese, ≤, ≥, Δ) in the CID font, the rest in
    Helvetica, whose Latin glyphs every viewer has as designed."""
    if _chosen.fonts.embedded:
        return escape(text)
    return "".join(
        escape(run) if latin else f'<font name="{CJK}">{escape(run)}</font>'
        for latin, chars in groupby(text, _latin)
        for run in ["".join(chars)]
    )


def _p(text: str, style: str) -> Paragraph:
    return Paragraph(markup(text), _chosen.fonts.styles[style])


def _settable(text: str) -> bool:
    """Whether the text font sets ``text`` by itself (no run in the CID font)."""
    return _chosen.fonts.embedded or all(map(_latin, text))


def _cell(text: str, width: float) -> str | Paragraph:
    """A plain string where the text font sets it on one line (a Paragraph costs ~0.5 ms to
    lay out: thousands of record cells would take seconds), else a wrapping Paragraph."""
    f = _chosen.fonts
    if _settable(text):
        if stringWidth(text, f.text, f.styles["cell"].fontSize) <= width - 2 * PAD:
            return text
        return _p(text, "cell" if f.embedded else "cell-latin")
    return _p(text, "cell")


def _chars(text: str) -> int:
    """Width in Latin characters: a CJK character is about two."""
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def _width(text: str) -> float:
    return stringWidth(text, _chosen.fonts.text, _chosen.fonts.styles["cell"].fontSize)


def _need(s: Section, i: int, cap: float) -> tuple[float, bool]:
    """The least width column ``i`` needs, and whether it is a column of times, dates and
    numbers (with their unit), which is set on one line whatever it costs; else the least
    width that breaks none of its words (the header's included), up to ``cap``."""
    cells = [r[i] for r in s.rows if r[i]]
    pad = 2 * PAD + 1
    if cells and all(_UNBROKEN.fullmatch(c) for c in cells):
        return max(map(_width, [*cells, *s.header[i].split()])) + pad, True
    words = [w for text in (s.header[i], *cells) for w in text.split()]
    return min(max(map(_width, words), default=0.0) + pad, cap), False


def _widths(s: Section, width: float) -> list[float]:
    """Every column at least as wide as it needs (:func:`_need`); what is left goes to the
    columns of text, in proportion to their longest text (within 4-40 characters)."""
    needs = [_need(s, i, width / 6) for i in range(len(s.header))]
    least = [n for n, _ in needs]
    if sum(least) > width:  # cannot fit: shrink all alike
        return [width * n / sum(least) for n in least]
    weights = [
        0 if fixed else min(max(_chars(s.header[i]), *(_chars(r[i]) for r in s.rows), 4), 40)
        for i, (_, fixed) in enumerate(needs)
    ]
    free = width - sum(least)
    total = sum(weights)
    if total == 0:
        return [n + free / len(least) for n in least]
    return [n + free * w / total for n, w in zip(least, weights, strict=True)]


def render(doc: Document) -> bytes:
    buf = io.BytesIO()
    wide = any(len(s.header) > _WIDE for s in doc.sections)
    size = landscape(A4) if wide else A4
    pdf = SimpleDocTemplate(
        buf,
        pagesize=size,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=doc.title,
        author="coldchain",
        initialFontName=_chosen.fonts.text,  # else each page names Helvetica, unembedded
    )
    width = size[0] - 24 * mm

    def footer(canvas: Any, page_doc: Any) -> None:
        line = _p(f"{doc.title}  ·  {doc.page} {page_doc.page}", "foot")
        line.wrapOn(canvas, width, 10 * mm)
        line.drawOn(canvas, 12 * mm, 6 * mm)

    story: list[Any] = [_p(doc.title, "title")]
    story += [_p(f"{k}: {v}", "text") for k, v in doc.facts]
    style = _table_style(_chosen.fonts)
    for s in doc.sections:
        story += [_p(s.title, "h2")]
        if not s.rows:
            story.append(_p(s.empty, "text"))
            continue
        widths = _widths(s, width)
        data: list[list[Any]] = [[_p(h, "head") for h in s.header]]
        data += [[_cell(c, w) for c, w in zip(row, widths, strict=True)] for row in s.rows]
        story.append(LongTable(data, colWidths=widths, repeatRows=1))
        story[-1].setStyle(style)
        story.append(Spacer(1, 2 * mm))
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
