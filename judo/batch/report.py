"""A batch's exports: a CSV table, the JSON records and one self-contained HTML report.

The HTML report opens offline anywhere (a mail attachment, a USB stick): no external style sheet,
script, font or image; each overlay is embedded as a small JPEG ``data:`` URI (THUMB_SIDE px, so 100
parts make about 2 MB), and every text in it (part names are whatever the files were called) is
HTML-escaped.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from judo.batch.run import RESULTS_FILE, BatchResult, result_from_row
from judo.jsonl import read_jsonl
from judo.record import VERDICTS
from judo.render import fit_within

CSV_FILE, RECORDS_FILE, HTML_FILE = "results.csv", "records.json", "report.html"
CSV_COLUMNS = ("part", "verdict", "strongest score", "cells", "seconds", "answer", "error")
THUMB_SIDE, THUMB_QUALITY = 224, 80
#: Table order: the worst news first (judo.record.VERDICTS), skipped files last.
ORDER = {v: i for i, v in enumerate((*VERDICTS, "skipped"))}


@dataclass
class Exports:
    csv: Path
    records: Path
    html: Path

    def paths(self) -> list[Path]:
        return [self.csv, self.records, self.html]


def load_results(out: str | Path) -> list[BatchResult]:
    """Every part in an output folder's results.jsonl (its last line per part), in file order."""
    out = Path(out)
    path = out / RESULTS_FILE
    if not path.exists():
        return []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for _, row in read_jsonl(path):
        rows.pop((row["part"], row["sha256"]), None)
        rows[(row["part"], row["sha256"])] = row
    return [result_from_row(row, out) for row in rows.values()]


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def table_rows(results: Iterable[BatchResult]) -> list[list[Any]]:
    """The rows of the CSV and of the app's table (CSV_COLUMNS)."""
    return [
        [r.part, r.verdict, _score(r.score), r.cells, round(r.seconds, 3), r.answer or "", r.error or ""]
        for r in results
    ]


def write_csv(results: list[BatchResult], path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(table_rows(results))
    return path


def write_records(results: list[BatchResult], path: Path) -> Path:
    rows = [{"part": r.part, "verdict": r.verdict, "error": r.error, "record": r.record} for r in results]
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def thumbnail_uri(path: Path | None) -> str | None:
    """A small JPEG of an overlay as a data: URI (None when there is no overlay)."""
    if path is None or not Path(path).exists():
        return None
    with Image.open(path) as img:
        small = fit_within(img.convert("RGB"), THUMB_SIDE)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=THUMB_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:middle;
overflow-wrap:anywhere}th{background:#f4f4f4}img{display:block;max-width:224px;height:auto}
.v{font-weight:600;white-space:nowrap}.defect{color:#b00}.borderline{color:#b60}.normal{color:#070}
.error,.skipped,.stopped,.not-comparable{color:#555;font-style:italic}dl{display:grid;
grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
"""


def write_html(results: list[BatchResult], path: Path, info: dict[str, Any] | None = None) -> Path:
    """One HTML file holding the whole batch: the settings, a count per verdict and one row per part."""
    esc = html.escape
    counts = Counter(r.verdict for r in results)
    summary = f"{len(results)} parts: " + ", ".join(
        f"{counts[v]} {v}" for v in sorted(counts, key=lambda v: ORDER.get(v, 99))
    )
    facts = {"inspected": time.strftime("%Y-%m-%d %H:%M"), "parts": str(len(results)), **(info or {})}
    rows = []
    for r in results:
        uri = thumbnail_uri(r.overlay)
        image = f'<img src="{uri}" alt="overlay of {esc(r.part)}">' if uri else ""
        cls = r.verdict.replace(" ", "-")
        cells = [
            image,
            esc(r.part),
            f'<span class="v {esc(cls)}">{esc(r.verdict)}</span>',
            esc(_score(r.score)),
            str(r.cells),
            f"{r.seconds:.2f}",
            esc(r.answer or ""),
            esc(r.error or ""),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in ("overlay", *CSV_COLUMNS))
    dl = "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>" for k, v in facts.items())
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Batch inspection report</title><style>{_STYLE}</style></head><body>"
        f'<h1>Batch inspection report</h1><dl>{dl}</dl><p id="summary">{esc(summary)}</p>'
        f'<table id="results"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def export(results: list[BatchResult], out: str | Path, info: dict[str, Any] | None = None) -> Exports:
    """Write results.csv, records.json and report.html into `out` (the batch's output folder)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return Exports(
        write_csv(results, out / CSV_FILE),
        write_records(results, out / RECORDS_FILE),
        write_html(results, out / HTML_FILE, info),
    )
