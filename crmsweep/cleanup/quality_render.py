"""The data-quality report as text, CSV, JSON and one self-contained HTML page. Pure: value in, str out.

CRM text (owner names, record labels) is data everywhere: made one line with its invisible characters
escaped in text, HTML-escaped in HTML, and in CSV a cell that a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return) gets a leading apostrophe, as OWASP advises.
Every format carries `REPORT_FORMAT` where `is_report_file` looks for it, so `-o` may replace an earlier
report but never another file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from crmsweep.cleanup.labels import one_line, table_lines
from crmsweep.cleanup.quality import REPORT_FORMAT, OwnerQuality, QualityReport, WorstRecord
from crmsweep.cleanup.quality_rules import WEIGHTS
from crmsweep.concepts import SEVERITIES

FORMATS = ("text", "csv", "html", "json")

OWNER_CSV_COLUMNS = (
    "rank", "owner_id", "owner_name", "active", "records", "records_with_defects", "critical", "major", "minor",
    "weighted", "score", "score_before", "score_delta", "new_violations", "fixed_violations", "removed_violations",
    "worst_records",
)
DETAIL_CSV_COLUMNS = ("owner_id", "owner_name", "object", "record_id", "rule", "severity", "fields")


def owner_name(owner: OwnerQuality) -> str:
    """The name shown for an owner: with "(inactive)" when the snapshot says so."""
    return owner.name + (" (inactive)" if owner.active is False else "")


def distinct_names(owners: Sequence[OwnerQuality]) -> dict[str | None, str]:
    """Each owner's shown name, with its id where another owner shows the same name: two John Smiths in
    one ranking must not read as one person (the worst offender named must be the right one)."""
    names = [owner_name(o) for o in owners]
    taken = Counter(names)
    return {o.owner_id: f"{n} [{o.owner_id}]" if taken[n] > 1 and o.owner_id and o.owner_id != o.name else n
            for o, n in zip(owners, names, strict=True)}


def _records(count: int) -> str:
    return f"{count:,} record" + ("" if count == 1 else "s")


def _signed(value: float | None) -> str:
    if value is None:
        return "new"
    return f"{value:+.1f}" if value else "0.0"


def _worst_text(record: WorstRecord) -> str:
    name = f" {record.label}" if record.label else ""
    return f"{record.object} {record.record_id}{name}: lacks {', '.join(record.lacks)}"


# --- text ---------------------------------------------------------------------------------------------------


def _heading(report: QualityReport) -> list[str]:
    lines = [
        f"Data quality of {report.provider} org {report.org_id} (connection {report.connection})",
        f"snapshot {report.snapshot_id}, finished {report.snapshot_finished}; generated {report.generated}",
    ]
    if report.compared:
        lines.append(f"compared with snapshot {report.compared.snapshot_id}, finished {report.compared.finished}")
    return lines


def _totals_line(report: QualityReport) -> str:
    counts = ", ".join(f"{report.violations[s]} {s}" for s in SEVERITIES)
    line = f"{_records(report.records)}, score {report.score:.1f}"
    if report.compared:
        c = report.compared
        line += f" ({_signed(c.score_delta)} since)"
        counts += (f"; {c.new_violations} new, {c.fixed_violations} fixed and {c.removed_violations} gone with "
                   "removed records since")
    return f"{line}; violations: {counts}"


def render_text(report: QualityReport) -> str:
    lines = [f"crmsweep data-quality report ({REPORT_FORMAT})", *_heading(report), "", _totals_line(report), "",
             "Score: 100 - 10 x weighted violations per record (critical 10, major 3, minor 1), at least 0.", ""]
    lines += table_lines(
        ("RULE", "OBJECT", "SEVERITY", "CHECKED", "VIOLATIONS"),
        [(r.label, r.object, r.severity, r.checked if r.skipped is None else "not checked", r.violations)
         for r in report.rules],
    )
    lines.append("")
    trend = report.compared is not None
    headers = ["RANK", "OWNER", "RECORDS", "CRITICAL", "MAJOR", "MINOR", "SCORE"]
    if trend:
        headers += ["CHANGE", "NEW", "FIXED", "REMOVED"]
    rows: list[list[object]] = []
    shown = distinct_names(report.owners)
    for rank, owner in enumerate(report.owners, 1):
        row: list[object] = [rank, shown[owner.owner_id], owner.records, *(owner.violations[s] for s in SEVERITIES),
                             f"{owner.score:.1f}"]
        if trend and owner.trend:
            row += [_signed(owner.trend.score_delta), owner.trend.new_violations, owner.trend.fixed_violations,
                    owner.trend.removed_violations]
        rows.append(row)
    lines += table_lines(headers, rows)
    lines += ["", f"Worst records (at most {report.worst_per_owner} per owner):"]
    for owner in report.owners:
        if not owner.worst:
            continue
        ident = f" [{owner.owner_id}]" if owner.owner_id and owner.owner_id != owner.name else ""
        lines.append(f"  {one_line(owner_name(owner))}{ident}")
        lines += [f"    {one_line(_worst_text(w))}" for w in owner.worst]
    if report.notes:
        lines += ["", "Notes:", *(f"  - {one_line(n)}" for n in report.notes)]
    return "\n".join(lines) + "\n"


# --- csv ------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CRM text cell that a spreadsheet would not run as a formula; numbers and flags as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def render_csv(report: QualityReport) -> str:
    """One row per owner, worst first."""
    rows: list[list[Any]] = []
    for rank, owner in enumerate(report.owners, 1):
        trend = owner.trend
        rows.append([
            rank, owner.owner_id or "", _cell(owner.name), "" if owner.active is None else str(owner.active).lower(),
            owner.records, owner.records_with_defects, *(owner.violations[s] for s in SEVERITIES), owner.penalty,
            f"{owner.score:.1f}",
            "" if trend is None or trend.score_before is None else f"{trend.score_before:.1f}",
            "" if trend is None or trend.score_delta is None else f"{trend.score_delta:.1f}",
            "" if trend is None else trend.new_violations, "" if trend is None else trend.fixed_violations,
            "" if trend is None else trend.removed_violations,
            _cell(" | ".join(_worst_text(w) for w in owner.worst)),
        ])
    return _csv(OWNER_CSV_COLUMNS, rows)


def render_detail_csv(detail: pd.DataFrame) -> str:
    """One row per violation (quality.detail_rows)."""
    rows = [[_cell(v) for v in row] for row in detail[list(DETAIL_CSV_COLUMNS)].itertuples(index=False, name=None)]
    return _csv(DETAIL_CSV_COLUMNS, rows)


# --- json ------------------------------------------------------------------------------------------------------


def report_data(report: QualityReport) -> dict[str, Any]:
    """Everything the report holds, as JSON data with fixed keys."""
    data = asdict(report)
    data["weights"] = dict(WEIGHTS)
    return {"format": REPORT_FORMAT, **data}


def render_json(report: QualityReport) -> str:
    return json.dumps(report_data(report), indent=2, ensure_ascii=False) + "\n"


# --- html -------------------------------------------------------------------------------------------------------

_COLOURS = {"critical": "#c62828", "major": "#ef6c00", "minor": "#f9a825"}
_CHART_OWNERS = 40  # bars drawn at most; the cards below still list every owner

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;
background:#f4f5f7;color:#1f2328}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px}
.meta{color:#57606a;margin:0}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin-top:18px}
.tile{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px;
box-shadow:0 1px 2px rgba(0,0,0,.08);border-top:4px solid #8c959f}
.tile b{display:block;font-size:26px}
.tile span{color:#57606a}
.critical{border-top-color:#c62828}
.major{border-top-color:#ef6c00}
.minor{border-top-color:#f9a825}
.chart{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{font-size:12px;color:#57606a;text-transform:uppercase;letter-spacing:.03em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card h3{margin:0;font-size:15px;display:flex;justify-content:space-between;gap:8px}
.score{font-weight:700;border-radius:12px;padding:0 8px;color:#fff;white-space:nowrap;align-self:flex-start}
.chips{margin:6px 0;color:#57606a}
.chip{display:inline-block;border-radius:10px;padding:0 7px;margin-right:4px;color:#fff;font-size:12px}
.up{color:#1a7f37}
.down{color:#c62828}
.flat{color:#57606a}
.card table td{font-size:12.5px}
.id{color:#57606a;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px}
.notes li{color:#57606a}
"""


def _e(text: object) -> str:
    """CRM text for HTML: invisible and direction-changing characters shown as escapes (as in the
    terminal), then the markup characters escaped."""
    return html.escape(one_line(text), quote=True)


def _band(score: float) -> str:
    return "#1a7f37" if score >= 90 else "#9a6700" if score >= 70 else "#bc4c00" if score >= 40 else "#c62828"


def _arrow(delta: float | None, *, new_label: str = "new") -> str:
    """Up is better (a score rose), down is worse."""
    if delta is None:
        return f'<span class="flat">{new_label}</span>'
    if delta > 0:
        return f'<span class="up">&#9650; {delta:+.1f}</span>'
    if delta < 0:
        return f'<span class="down">&#9660; {delta:+.1f}</span>'
    return '<span class="flat">&#9644; 0.0</span>'


def _tiles(report: QualityReport) -> str:
    c = report.compared
    score_trend = f"<br>{_arrow(c.score_delta)} since" if c else ""
    tiles = [f'<div class="tile"><b style="color:{_band(report.score)}">{report.score:.1f}</b>'
             f"<span>score, {_records(report.records)}</span>{score_trend}</div>"]
    for s in SEVERITIES:
        change = ""
        if c:
            diff = report.violations[s] - c.violations_before[s]
            cls = "down" if diff > 0 else "up" if diff < 0 else "flat"
            change = f'<br><span class="{cls}">{f"{diff:+d}" if diff else "no change"} since</span>'
        tiles.append(f'<div class="tile {s}"><b>{report.violations[s]:,}</b><span>{s} (weight {WEIGHTS[s]})</span>'
                     f"{change}</div>")
    if c:
        tiles.append(f'<div class="tile"><b>{c.new_violations:,}</b><span>new violations</span>'
                     f'<br><span class="up">{c.fixed_violations:,} fixed</span>'
                     f"<br><span>{c.removed_violations:,} gone with removed records</span></div>")
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def _bar_trend(owner: OwnerQuality) -> str:
    """The score's change after a bar, as an arrow coloured like the cards' (SVG text, so a tspan)."""
    delta = owner.trend.score_delta if owner.trend else None
    if not delta:
        return ""
    colour, arrow = ("#1a7f37", "&#9650;") if delta > 0 else ("#c62828", "&#9660;")
    return f' <tspan fill="{colour}">{arrow} {delta:+.1f}</tspan>'


def _chart(owners: Sequence[OwnerQuality]) -> str:
    """Owners by score as horizontal bars, worst first (an inline SVG: nothing fetched at view time)."""
    shown = list(owners[:_CHART_OWNERS])
    bar, gap, left, width = 18, 6, 230, 640
    height = len(shown) * (bar + gap) + 24
    parts = [f'<svg role="img" aria-label="owners by score" width="100%" '
             f'viewBox="0 0 {left + width + 110} {height}">']
    for tick in (0, 25, 50, 75, 100):
        x = left + width * tick / 100
        parts.append(f'<line x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height - 18}" stroke="#eaeef2"/>'
                     f'<text x="{x:.0f}" y="{height - 4}" font-size="11" fill="#57606a" '
                     f'text-anchor="middle">{tick}</text>')
    names = distinct_names(owners)
    for i, owner in enumerate(shown):
        y = i * (bar + gap)
        name = names[owner.owner_id]
        short = name if len(name) <= 32 else name[:31] + "\u2026"
        w = max(2.0, width * owner.score / 100)
        parts.append(
            f'<text x="{left - 8}" y="{y + 13}" font-size="12" text-anchor="end" fill="#1f2328">{_e(short)}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" rx="3" fill="{_band(owner.score)}">'
            f"<title>{_e(name)}: {owner.score:.1f}</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{y + 13}" font-size="12" fill="#1f2328">{owner.score:.1f}'
            f"{_bar_trend(owner)}</text>"
        )
    parts.append("</svg>")
    more = (f'<p class="meta">{len(owners) - len(shown)} more owners in the cards below.</p>'
            if len(owners) > len(shown) else "")
    return '<div class="chart">' + "".join(parts) + more + "</div>"


def _rules_table(report: QualityReport) -> str:
    rows = "".join(
        f"<tr><td>{_e(r.label)}</td><td>{_e(r.object)}</td><td>{_e(' or '.join(r.fields) or 'owner')}</td>"
        f'<td><span class="chip" style="background:{_COLOURS[r.severity]}">{r.severity}</span></td>'
        f'<td class="n">{r.checked:,}</td><td class="n">{r.violations:,}</td>'
        f"<td>{_e(r.skipped or '')}</td></tr>"
        for r in report.rules
    )
    return ("<table><tr><th>rule</th><th>object</th><th>fields</th><th>severity</th><th class=n>checked</th>"
            f"<th class=n>violations</th><th>not checked because</th></tr>{rows}</table>")


def _card(rank: int, owner: OwnerQuality) -> str:
    chips = "".join(f'<span class="chip" style="background:{_COLOURS[s]}">{owner.violations[s]:,} {s}</span>'
                    for s in SEVERITIES if owner.violations[s])
    trend = ""
    if owner.trend is not None:
        t = owner.trend
        trend = (f"<div>{_arrow(t.score_delta, new_label='new owner')} &middot; {t.new_violations:,} new, "
                 f"{t.fixed_violations:,} fixed, {t.removed_violations:,} gone with removed records</div>")
    worst = "".join(
        f'<tr><td>{_e(w.object)} <span class="id">{_e(w.record_id)}</span><br>{_e(w.label)}</td>'
        f"<td>{_e(', '.join(w.lacks))}</td></tr>"
        for w in owner.worst
    )
    table = f"<table><tr><th>worst records</th><th>lacks</th></tr>{worst}</table>" if worst else ""
    ident = f' <span class="id">{_e(owner.owner_id)}</span>' if owner.owner_id and owner.owner_id != owner.name else ""
    return (f'<section class="card"><h3><span>#{rank} {_e(owner_name(owner))}{ident}</span>'
            f'<span class="score" style="background:{_band(owner.score)}">{owner.score:.1f}</span></h3>'
            f'<div class="chips">{_records(owner.records)}, {owner.records_with_defects:,} with defects '
            f"{chips or '&middot; nothing missing'}</div>{trend}{table}</section>")


def render_html(report: QualityReport) -> str:
    """One page, inline CSS and SVG, no script and nothing fetched from anywhere."""
    heading = "".join(f'<p class="meta">{_e(line)}</p>' for line in _heading(report)[1:])
    notes = ("<h2>Notes</h2><ul class=notes>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>"
             if report.notes else "")
    cards = "".join(_card(rank, owner) for rank, owner in enumerate(report.owners, 1))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{REPORT_FORMAT}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Data quality: {_e(report.connection)} {_e(report.snapshot_id)}</title>"
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>{_e(_heading(report)[0])}</h1>{heading}"
        f"{_tiles(report)}"
        "<h2>Owners by score (worst first)</h2>"
        f"{_chart(report.owners)}"
        '<p class="meta">Score = 100 &minus; 10 &times; weighted violations per record (critical 10, major 3, '
        "minor 1), at least 0: one critical gap on every record is 0.</p>"
        f"<h2>Owners</h2><div class=cards>{cards}</div>"
        f"<h2>Rules</h2>{_rules_table(report)}{notes}"
        "</main></body></html>\n"
    )


def render(report: QualityReport, fmt: str) -> str:
    renderers = {"text": render_text, "csv": render_csv, "html": render_html, "json": render_json}
    return renderers[fmt](report)


def is_report_file(path: Path) -> bool:
    """True if `path` is a regular file holding a report this module wrote (any format)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would hang the read; a terminal is no report
            return False
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    text = head.decode("utf-8", errors="replace")
    first = text.split("\n", 1)[0]
    return REPORT_FORMAT in text or first in (",".join(OWNER_CSV_COLUMNS), ",".join(DETAIL_CSV_COLUMNS))
