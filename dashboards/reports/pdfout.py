"""A report as PDF, with ReportLab.

Latin text is set in Helvetica; Chinese names (and ≤, ≥, Δ) in ReportLab's built-in CID font
STSong-Light (Adobe-GB1, ``UniGB-UCS2-H``): it needs no font file, no font package and no
network on the machine that makes the PDF, and its metrics ship inside ReportLab. Neither
font is embedded: the viewer supplies them (Adobe Reader, Windows, macOS and browsers' viewers
have a Song face for Adobe-GB1; on Linux poppler substitutes any installed CJK font, e.g.
``fonts-arphic-uming`` or ``fonts-noto-cjk``). docs/reports.md says why this was chosen over
embedding a TrueType font.
"""

from __future__ import annotations

import io
from itertools import groupby
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from dashboards.reports.tables import Document, Section

CJK = "STSong-Light"
FONT = "Helvetica"  # Latin text: a standard font, its metrics built into every viewer
pdfmetrics.registerFont(UnicodeCIDFont(CJK))

_TITLE = ParagraphStyle("title", fontName=FONT, fontSize=14, leading=18, spaceAfter=6)
_H2 = ParagraphStyle("h2", fontName=FONT, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
_TEXT = ParagraphStyle("text", fontName=FONT, fontSize=9, leading=11)
_CELL = ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=10, wordWrap="CJK")
_CELL_LATIN = ParagraphStyle("cell-latin", parent=_CELL, wordWrap=None)
_HEAD = ParagraphStyle("head", parent=_CELL, fontName="Helvetica-Bold")
_FOOT = ParagraphStyle("foot", fontName=FONT, fontSize=7, leading=9)
_WIDE = 7  # sections with more columns than this print in landscape

PAD = 3
_STYLE = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONT", (0, 1), (-1, -1), FONT, _CELL.fontSize, _CELL.leading),
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
    """``text`` as Paragraph markup: runs Helvetica cannot set (Chinese, ≤, ≥, Δ) in the CID
    font, the rest in Helvetica, whose Latin glyphs every viewer has as designed."""
    return "".join(
        escape(run) if latin else f'<font name="{CJK}">{escape(run)}</font>'
        for latin, chars in groupby(text, _latin)
        for run in ["".join(chars)]
    )


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(markup(text), style)


def _cell(text: str, width: float) -> str | Paragraph:
    """A plain string where Helvetica sets it on one line (a Paragraph costs ~0.5 ms to lay
    out: thousands of record cells would take seconds), else a wrapping Paragraph."""
    if all(map(_latin, text)):
        if stringWidth(text, FONT, _CELL.fontSize) <= width - 2 * PAD:
            return text
        return _p(text, _CELL_LATIN)
    return _p(text, _CELL)


def _chars(text: str) -> int:
    """Width in Latin characters: a CJK character is about two."""
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def _widths(s: Section, width: float) -> list[float]:
    """Column widths in proportion to their longest text (within 4-40 characters)."""
    weights = [
        min(max(_chars(s.header[i]), *(_chars(r[i]) for r in s.rows), 4), 40)
        for i in range(len(s.header))
    ]
    return [width * w / sum(weights) for w in weights]


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
    )
    width = size[0] - 24 * mm

    def footer(canvas: Any, page_doc: Any) -> None:
        line = _p(f"{doc.title}  ·  page {page_doc.page}", _FOOT)
        line.wrapOn(canvas, width, 10 * mm)
        line.drawOn(canvas, 12 * mm, 6 * mm)

    story: list[Any] = [_p(doc.title, _TITLE)]
    story += [_p(f"{k}: {v}", _TEXT) for k, v in doc.facts]
    for s in doc.sections:
        story += [_p(s.title, _H2)]
        if not s.rows:
            story.append(_p(s.empty, _TEXT))
            continue
        widths = _widths(s, width)
        data: list[list[Any]] = [[_p(h, _HEAD) for h in s.header]]
        data += [[_cell(c, w) for c, w in zip(row, widths, strict=True)] for row in s.rows]
        story.append(LongTable(data, colWidths=widths, repeatRows=1))
        story[-1].setStyle(_STYLE)
        story.append(Spacer(1, 2 * mm))
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
