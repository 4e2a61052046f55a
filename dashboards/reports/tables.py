"""A report as titled tables of text, the one layout every output format renders (so the
CSV, the PDF and the printed page always say the same). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from coldchain.config.site import Room, Site
from dashboards.refrigeration import Health
from dashboards.reports.excursions import Excursion, Side
from dashboards.reports.model import (
    Ack,
    DailyLog,
    ExcursionReport,
    PointSummary,
    SignatureRow,
    local,
    minutes,
    num,
)


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"  # said when there are no rows
    flagged: bool = False  # the last column marks rows out of range ("*")


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    facts: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]
    filename: str  # without extension
    page: str = "page"  # the word before the page number, in the document's language
    lang: str = "en"  # the document's language (dashboards/reports/localize.py)


SUMMARY_HEADER = (
    "Point",
    "Quantity",
    "Min",
    "Max",
    "Mean",
    "MKT °C",
    "Data %",
    "Gaps (min)",
)
ACK_HEADER = (
    "Alert",
    "Rule",
    "Severity",
    "Since",
    "Resolved",
    "Peak",
    "Acknowledged",
    "By",
    "Via",
    "Comment",
)
SIGNATURE_HEADER = (
    "Signed",
    "Signed by",
    "Role",
    "Record",
    "Meaning",
    "Cause",
    "Corrective action",
    "Comment",
    "Record digest (SHA-256)",
)
SIGNATURES_TITLE = "Signatures (password re-entered; record digest as signed)"


def _signature_section(signatures: tuple[SignatureRow, ...], tz: str) -> Section:
    return Section(
        SIGNATURES_TITLE,
        SIGNATURE_HEADER,
        tuple(
            (
                local(s.ts_ms, tz, "%Y-%m-%d %H:%M:%S"),
                s.signer,
                s.role,
                s.object,
                s.meaning,
                s.cause or "",
                s.corrective_action or "",
                s.comment or "",
                s.digest,
            )
            for s in signatures
        ),
    )


EXCURSION_HEADER = (
    "Point",
    "Quantity",
    "Limit crossed",
    "Start",
    "End",
    "Duration (min)",
    "Peak",
    "Peak at",
)


def _offset_changes(start_ms: int, end_ms: int, tz: str) -> bool:
    zone = ZoneInfo(tz)
    a = datetime.fromtimestamp(start_ms / 1000, zone).utcoffset()
    b = datetime.fromtimestamp((end_ms - 1) / 1000, zone).utcoffset()
    return a != b


def _summary_row(p: PointSummary) -> tuple[str, ...]:
    s = p.stats
    return (
        p.label,
        f"{p.quantity} ({p.unit})",
        num(s.minimum),
        num(s.maximum),
        num(s.mean),
        num(s.mkt, 2),
        f"{100 * s.coverage:.1f}",
        minutes(sum(e - b for b, e in p.gaps)),
    )


def _limit(e: Excursion, unit: str) -> str:
    return f"{'>' if e.side is Side.HIGH else '<'} {e.limit:g} {unit}"


def _excursion_row(e: Excursion, tz: str, until_ms: int, units: dict[str, str]) -> tuple[str, ...]:
    unit = units.get(e.quantity, "")
    start = local(e.start_ms, tz)
    return (
        e.series,
        e.quantity,
        _limit(e, unit),
        start if e.start_known else f"≤ {start}",
        local(e.end_ms, tz) if e.end_ms is not None else "ongoing",
        minutes(e.duration_ms(until_ms))
        if e.end_ms is not None and e.start_known
        else f"≥ {minutes(e.duration_ms(until_ms))}",
        f"{num(e.peak)} {unit}",
        local(e.peak_ms, tz),
    )


def _ack_row(a: Ack, tz: str) -> tuple[str, ...]:
    return (
        str(a.alert_id),
        a.rule,
        a.severity,
        local(a.since_ms, tz),
        local(a.resolved_ms, tz) if a.resolved_ms is not None else a.state,
        "" if a.peak is None else f"{num(a.peak)} {a.unit}",
        local(a.acked_ms, tz) if a.acked_ms is not None else "not acknowledged",
        a.acked_by or "",
        a.via or "",
        a.comment or "",
    )


def _units(points: tuple[PointSummary, ...]) -> dict[str, str]:
    return {p.quantity: p.unit for p in points}


LEFT_OUT_TITLE = "Readings left out of the figures"
LEFT_OUT_HEADER = ("Point", "Quantity", "Readings", "First", "Last", "Why")


def _left_out_rows(
    points: tuple[PointSummary, ...], tz: str, room: str | None = None
) -> list[tuple[str, ...]]:
    """One row per point and reason: good readings whose value no figure can use (a probe
    fault: docs/reports.md). They count as missing data, like bad readings."""
    return [
        (
            *(() if room is None else (room,)),
            p.label,
            p.quantity,
            str(lo.count),
            local(lo.first_ms, tz),
            local(lo.last_ms, tz),
            lo.reason,
        )
        for p in points
        for lo in p.left_out
    ]


def daily_document(log: DailyLog) -> Document:
    r, tz = log.room, log.room.timezone
    until = min(log.end_ms, log.generated_ms)
    time_fmt = "%H:%M (UTC%z)" if _offset_changes(log.start_ms, log.end_ms, tz) else "%H:%M"
    facts = [
        ("Site", f"{r.site_name} ({r.site_id})"),
        ("Room", f"{r.room_name} ({r.room_id})"),
        ("Class", r.room_class),
        ("Date", log.day.isoformat()),
        ("Time zone", tz),
        ("Temperature limits", r.temperature),
    ]
    if r.humidity:
        facts.append(("Humidity limits", r.humidity))
    facts.append(("Generated", local(log.generated_ms, tz, "%Y-%m-%d %H:%M:%S")))
    if log.audit_head is not None:
        facts.append(("Audit trail head", f"#{log.audit_head[0]} {log.audit_head[1]}"))
    if log.seal_head is not None:
        sealed, hour = log.seal_head[0], local(log.seal_head[1], tz, "%Y-%m-%d %H:%M")
        facts.append(("Readings seal head", f"#{sealed} {log.seal_head[2]} ({hour})"))
    sections = [
        Section("Summary", SUMMARY_HEADER, tuple(_summary_row(p) for p in log.points)),
        Section(
            "Records (every 30 min; every 2 min while out of range, marked *)",
            ("Time", *(f"{p.label} ({p.unit})" for p in log.points), "Out of range"),
            tuple(
                (
                    local(rec.ts_ms, tz, time_fmt),
                    *(num(v) for v in rec.values),
                    "*" if rec.out_of_range else "",
                )
                for rec in log.records
            ),
            empty="no room-air points in this room",
            flagged=True,
        ),
        Section(
            "Excursions",
            EXCURSION_HEADER,
            tuple(_excursion_row(e, tz, until, _units(log.points)) for e in log.excursions),
        ),
    ]
    left = _left_out_rows(log.points, tz)
    if left:
        sections.append(Section(LEFT_OUT_TITLE, LEFT_OUT_HEADER, tuple(left)))
    if log.acks is not None:
        sections.append(
            Section(
                "Alerts, acknowledgements and comments",
                ACK_HEADER,
                tuple(_ack_row(a, tz) for a in log.acks),
            )
        )
    sections.append(_signature_section(log.signatures, tz))
    return Document(
        title=f"Daily temperature log · {r.site_name} · {r.room_name} · {log.day}",
        facts=tuple(facts),
        sections=tuple(sections),
        filename=f"daily-{r.site_id}-{r.room_id}-{log.day.isoformat()}",
    )


def excursion_document(rep: ExcursionReport, room_id: str | None = None) -> Document:
    tz = rep.timezone
    until = min(rep.end_ms, rep.generated_ms)
    summary, excursions, left = [], [], []
    for rp in rep.rooms:
        name = f"{rp.room.room_name} ({rp.room.room_id})"
        left += _left_out_rows(rp.points, tz, name)
        summary += [
            (
                name,
                p.label,
                f"{p.quantity} ({p.unit})",
                num(p.stats.mkt, 2),
                num(p.stats.minimum),
                num(p.stats.maximum),
                num(p.stats.mean),
                f"{100 * p.stats.coverage:.1f}",
                str(sum(1 for e in rp.excursions if e.series == p.label)),
            )
            for p in rp.points
        ]
        excursions += [
            (name, *_excursion_row(e, tz, until, _units(rp.points))) for e in rp.excursions
        ]
    facts = (
        ("Site", f"{rep.site_name} ({rep.site_id})"),
        ("Period", f"{rep.first.isoformat()} to {rep.last.isoformat()}"),
        ("Time zone", tz),
        ("MKT", "ΔH/R = 10000 K, each reading weighted by the time it stands for"),
        ("Generated", local(rep.generated_ms, tz, "%Y-%m-%d %H:%M:%S")),
    )
    scope = f"-{room_id}" if room_id else ""
    return Document(
        title=f"Excursion report · {rep.site_name} · {rep.first} to {rep.last}",
        facts=facts,
        sections=(
            Section(
                "Summary by room",
                (
                    "Room",
                    "Point",
                    "Quantity",
                    "MKT °C",
                    "Min",
                    "Max",
                    "Mean",
                    "Data %",
                    "Excursions",
                ),
                tuple(summary),
                empty="no room-air points",
            ),
            Section("Excursions", ("Room", *EXCURSION_HEADER), tuple(excursions)),
            *((Section(LEFT_OUT_TITLE, ("Room", *LEFT_OUT_HEADER), tuple(left)),) if left else ()),
            _signature_section(rep.signatures, tz),
        ),
        filename=f"excursions-{rep.site_id}{scope}-{rep.first.isoformat()}-{rep.last.isoformat()}",
    )


def maintenance_document(
    site: Site, health: dict[str, tuple[Room, Health]], last: date, generated_ms: int
) -> Document:
    """The week's refrigeration health of a site's rooms (dashboards/refrigeration.py): a
    row per room and day, and the flags."""
    tz = site.timezone
    rows, flags = [], []
    for room, h in health.values():
        name = f"{room.name} ({room.id})"
        rows += [
            (
                name,
                d.day.isoformat(),
                "" if d.duty is None else f"{100 * d.duty:.0f}",
                str(d.defrosts),
                num(d.defrost_min, 0),
                str(d.doors),
                num(d.pull_down_min, 0),
            )
            for d in h.days
        ]
        flags += [
            (
                name,
                FLAG_WORDS[f.kind],
                local(f.at_ms, tz) if f.kind == "no_pull_down" else "",
                f"{f.detail:.1f}",
            )
            for f in h.flags
        ]
    first = last - timedelta(days=6)
    return Document(
        title=f"Maintenance report · {site.name} · {first} to {last}",
        facts=(
            ("Site", f"{site.name} ({site.id})"),
            ("Period", f"{first.isoformat()} to {last.isoformat()}"),
            ("Time zone", tz),
            ("Generated", local(generated_ms, tz, "%Y-%m-%d %H:%M:%S")),
        ),
        sections=(
            Section(
                "Refrigeration by room and day",
                (
                    "Room",
                    "Date",
                    "Compressor duty %",
                    "Defrosts",
                    "Mean defrost (min)",
                    "Door openings",
                    "Pull-down (min)",
                ),
                tuple(rows),
                empty="no room reports its compressor or defrost",
            ),
            Section("Flags", ("Room", "Flag", "At", "Detail"), tuple(flags)),
        ),
        filename=f"maintenance-{site.id}-{first.isoformat()}-{last.isoformat()}",
    )


FLAG_WORDS = {
    "duty_rising": "compressor works harder day by day at the same door traffic",
    "no_pull_down": "compressor ran without bringing the air down",
}
