"""A report as a printable HTML page: one self-contained document (inline CSS, no script
or font fetched from anywhere), A4 with table headers repeated on every printed page."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from dashboards.reports.tables import Document

CSS = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
  "WenQuanYi Micro Hei", sans-serif; font-size: 13px; margin: 1.5em; color: #111; }
h1 { font-size: 18px; margin: 0 0 .5em; }
h2 { font-size: 15px; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; margin-bottom: .5em; }
th, td { border: 1px solid #999; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
td { white-space: nowrap; }
td.wrap { white-space: normal; min-width: 12em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.out td { background: #fde2e1; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 0; }
dt { font-weight: bold; }
dd { margin: 0; }
nav { margin-bottom: 1em; }
nav a, nav button { margin-right: 1em; }
@page { size: A4; margin: 12mm; }
@media print {
  nav { display: none; }
  body { margin: 0; font-size: 10pt; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  tr.out td { background: none; font-weight: bold; }
  h2 { break-after: avoid; }
}
"""


WIDE = 7  # a section with more columns than this prints in landscape


def _is_num(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cls(text: str) -> str:
    if _is_num(text):
        return ' class="num"'
    return ' class="wrap"' if len(text) > 24 else ""


def render(doc: Document, links: Mapping[str, str] | None = None) -> bytes:
    """The page; ``links`` (label -> URL) go in a toolbar hidden when printed. Reports with
    wide tables print in landscape."""
    wide = any(len(s.header) > WIDE for s in doc.sections)
    page = "@page { size: A4 landscape; }" if wide else ""
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(doc.lang)}"><head><meta charset="utf-8">',
        f"<title>{escape(doc.title)}</title><style>{CSS}{page}</style></head><body>",
        '<nav><button type="button" onclick="window.print()">'
        f"{'打印' if doc.lang == 'zh-CN' else 'Print'}</button>",
        *(f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in (links or {}).items()),
        "</nav>",
        f"<h1>{escape(doc.title)}</h1><dl>",
        *(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in doc.facts),
        "</dl>",
    ]
    for s in doc.sections:
        out.append(f"<section><h2>{escape(s.title)}</h2>")
        if not s.rows:
            out.append(f"<p>{escape(s.empty)}</p></section>")
            continue
        head = "".join(f"<th>{escape(h)}</th>" for h in s.header)
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for row in s.rows:
            flagged = s.flagged and row[-1] == "*"
            cells = "".join(f"<td{_cls(c)}>{escape(c)}</td>" for c in row)
            out.append(f'<tr class="out">{cells}</tr>' if flagged else f"<tr>{cells}</tr>")
        out.append("</tbody></table></section>")
    out.append("</body></html>")
    return "\n".join(out).encode("utf-8")
