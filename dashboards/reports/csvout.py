"""A report as CSV: UTF-8 with a byte-order mark, so Excel (which reads a BOM-less CSV in
the machine's ANSI code page) shows Chinese room and site names correctly. Sections follow
one another, each a title line, its header and its rows, then a blank line."""

from __future__ import annotations

import csv
import io

from dashboards.reports.tables import Document


def render(doc: Document) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([doc.title])
    w.writerows(doc.facts)
    for s in doc.sections:
        w.writerow([])
        w.writerow([s.title])
        w.writerow(s.header)
        if s.rows:
            w.writerows(s.rows)
        else:
            w.writerow([s.empty])
    return buf.getvalue().encode("utf-8-sig")
