"""What embedding the Chinese face costs a PDF report: the same documents rendered with the
built-in fonts (Helvetica and STSong-Light, nothing embedded) and with the centre's TrueType
face embedded as a subset (``dashboards/reports/pdfout.py``), alternating, in one run.

The documents are report-shaped: a daily log (a summary, 84 records, a few excursions and
acknowledgements) and excursion reports with 446 and 1,366 excursion rows (a month and a
quarter of a room with an excursion every 97 minutes, as docs/reports.md measured), their
names and comments in Chinese.

    .venv/bin/python bench/bench_reports_pdf.py [--repeat 5]

Prints the median render time and file size per document and font, and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.fonts import find_cjk_font
from dashboards.reports import pdfout
from dashboards.reports.tables import (
    ACK_HEADER,
    EXCURSION_HEADER,
    SUMMARY_HEADER,
    Document,
    Section,
)

ROOM = "冷鲜禽库 Chilled poultry (chill)"


def excursion_rows(n: int) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (
            ROOM,
            "probe/temperature",
            "temperature",
            "> 4 °C",
            f"2026-01-{1 + i // 15:02d} {i % 24:02d}:{(7 * i) % 60:02d}",
            f"2026-01-{1 + i // 15:02d} {i % 24:02d}:{(7 * i + 9) % 60:02d}",
            str(9 + i % 13),
            f"{5 + (i % 7) / 10:.1f} °C",
            f"2026-01-{1 + i // 15:02d} {i % 24:02d}:{(7 * i + 4) % 60:02d}",
        )
        for i in range(n)
    )


def daily() -> Document:
    records = tuple(
        (f"{h // 2:02d}:{30 * (h % 2):02d}", f"{2 + (h % 5) / 10:.1f}", "85.0", "")
        for h in range(84)
    )
    acks = tuple(
        ("7", "temperature-high", "alarm", "2026-01-02 10:00", "2026-01-02 10:07", "5.5 °C",
         "2026-01-02 10:04", "王莉", "sms", "门未关好，已关门并通知主管")  # noqa: RUF001
        for _ in range(3)
    )  # fmt: skip
    return Document(
        title="Daily temperature log · 双溪镇禽类冷库 · 冷鲜禽库 · 2026-01-02",
        facts=(("Site", "双溪镇禽类冷库 (s1)"), ("Room", ROOM), ("Date", "2026-01-02")),
        sections=(
            Section(
                "Summary",
                SUMMARY_HEADER,
                (
                    (
                        "probe/temperature",
                        "temperature (°C)",
                        "2.0",
                        "6.0",
                        "3.1",
                        "3.30",
                        "99.0",
                        "12",
                    ),
                ),
            ),
            Section("Records", ("Time", "probe (°C)", "humidity (%RH)", "Out of range"), records),
            Section("Excursions", EXCURSION_HEADER, tuple(r[1:] for r in excursion_rows(4))),
            Section("Alerts, acknowledgements and comments", ACK_HEADER, acks),
        ),
        filename="daily",
    )


def excursions(n: int) -> Document:
    return Document(
        title=f"Excursion report · 双溪镇禽类冷库 · {n} excursions",
        facts=(("Site", "双溪镇禽类冷库 (s1)"),),
        sections=(Section("Excursions", ("Room", *EXCURSION_HEADER), excursion_rows(n)),),
        filename="excursions",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    face = find_cjk_font()
    if face is None:
        raise SystemExit("no CJK TrueType font: apt-get install fonts-wqy-microhei")
    docs = {
        "daily log": daily(),
        "446 excursions": excursions(446),
        "1,366 excursions": excursions(1366),
    }
    times: dict[tuple[str, str], list[float]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for _ in range(args.repeat):
        for font, path in (("built-in", None), ("embedded", face)):
            pdfout.configure(path)
            for name, doc in docs.items():
                t = time.perf_counter()
                body = pdfout.render(doc)
                times.setdefault((name, font), []).append(time.perf_counter() - t)
                sizes[(name, font)] = len(body)
    print(
        f"# PDF reports, built-in fonts vs {face.name} embedded: "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"medians of {args.repeat}, alternating"
    )
    print(
        f"{'document':<18} {'built-in s':>11} {'kB':>7} {'embedded s':>11} {'kB':>7} {'ratio':>6}"
    )
    for name in docs:
        a = statistics.median(times[(name, "built-in")])
        b = statistics.median(times[(name, "embedded")])
        print(
            f"{name:<18} {a:11.3f} {sizes[(name, 'built-in')] / 1000:7.0f} "
            f"{b:11.3f} {sizes[(name, 'embedded')] / 1000:7.0f} {b / a:5.2f}x"
        )


if __name__ == "__main__":
    main()
