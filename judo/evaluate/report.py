"""Renderings of score tables: markdown (terminal / notes), CSV (spreadsheets), JSON (machines).

Columns carry the paper's labels (`SUBTASK_LABELS`, e.g. "Anomaly Discrimination"); JSON keeps MMAD's
type names (the scoring keys) so it lines up with MMAD's own CSVs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from judo.evaluate.score import AVERAGE, ScoreTable, SegScores
from judo.mmad import SUBTASK_LABELS

MODE_TITLES = {
    "official": "MMAD-official (unparseable answers dropped)",
    "strict": "strict (unparseable answers count as wrong)",
}


def label(subtask: str) -> str:
    return SUBTASK_LABELS.get(subtask, subtask)


def _header(table: ScoreTable) -> list[str]:
    return ["Dataset", *[label(s) for s in table.subtasks], AVERAGE, "Overkill", "Miss"]


def _rows(table: ScoreTable) -> list[list[Any]]:
    rows = []
    for ds in table.rows:
        vals = table.values[ds]
        rows.append(
            [ds, *[vals[s] for s in table.subtasks], vals[AVERAGE], table.overkill[ds], table.miss[ds]]
        )
    return rows


def markdown_table(table: ScoreTable, title: str | None = None, digits: int = 2) -> str:
    """The paper's table for one mode, with a footer of counts and any cells that had no records."""
    head = _header(table)
    lines = []
    if title is not None:
        lines += [f"### {title}", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for row in _rows(table):
        name, *vals = row
        cells = [f"**{name}**" if name == AVERAGE else name] + [f"{v:.{digits}f}" for v in vals]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    foot = (
        f"{table.n_records} records, {table.n_scored} scored, {table.n_unparseable} unparseable, "
        f"{table.n_dropped} dropped"
    )
    if table.mode == "official":
        foot += f", {table.n_skipped} skipped after a dropped record (as MMAD's scorer does)"
    if table.n_bad_truth:
        foot += f", {table.n_bad_truth} with a correct answer that is not A-E"
    lines.append(foot + ".")
    if table.empty_cells:
        empty = ", ".join(f"{ds}/{label(st)}" for ds, st in table.empty_cells)
        lines.append(f"Cells with no scored records (0, as the official scorer counts them): {empty}.")
    return "\n".join(lines) + "\n"


def markdown_seg(seg: SegScores, digits: int = 2) -> str:
    """Seg F1/IoU on anomalous images and seg emptiness on normal images, per dataset."""
    datasets = [d for d in dict.fromkeys([*seg.f1, *seg.empty_rate]) if d != AVERAGE] + [AVERAGE]
    lines = [
        (
            "| Dataset | Seg F1 (anomalous) | Seg IoU (anomalous) | Empty seg (normal) "
            "| n anomalous | n normal |"
        ),
        "|---|---:|---:|---:|---:|---:|",
    ]

    def fmt(d: Mapping[str, float], ds: str) -> str:
        return f"{d[ds]:.{digits}f}" if ds in d else "-"

    for ds in datasets:
        n_a = sum(seg.n_anomalous.values()) if ds == AVERAGE else seg.n_anomalous.get(ds, 0)
        n_n = sum(seg.n_normal.values()) if ds == AVERAGE else seg.n_normal.get(ds, 0)
        name = f"**{ds}**" if ds == AVERAGE else ds
        lines.append(
            f"| {name} | {fmt(seg.f1, ds)} | {fmt(seg.iou, ds)} | {fmt(seg.empty_rate, ds)} | {n_a} | {n_n} |"
        )
    lines.append("")
    lines.append(
        f"A <seg> block was present in {seg.present_rate:.1f}% of {seg.n_records} answers"
        + (
            f"; {seg.n_no_truth} answers on anomalous images without a readable mask were left out."
            if seg.n_no_truth
            else "."
        )
    )
    return "\n".join(lines) + "\n"


def csv_table(tables: Mapping[str, ScoreTable], digits: int = 4) -> str:
    """Both modes in one CSV: a `Mode` column first, then the markdown table's columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    first = next(iter(tables.values()))
    writer.writerow(["Mode", *_header(first)])
    for mode, table in tables.items():
        for row in _rows(table):
            writer.writerow([mode, row[0], *[round(v, digits) for v in row[1:]]])
    return buf.getvalue()


def json_tables(tables: Mapping[str, ScoreTable], seg: SegScores | None = None) -> dict[str, Any]:
    """`{mode: {dataset or "Average": {subtask or "Average": value}}}` plus a `summary` of counts."""
    out: dict[str, Any] = {mode: t.as_dict() for mode, t in tables.items()}
    summary: dict[str, Any] = {}
    for mode, t in tables.items():
        summary[mode] = {
            "records": t.n_records,
            "scored": t.n_scored,
            "unparseable": t.n_unparseable,
            "dropped": t.n_dropped,
            "skipped_after_drop": t.n_skipped,
            "overkill": t.overkill,
            "miss": t.miss,
            "empty_cells": [list(c) for c in t.empty_cells],
        }
    if seg is not None:
        summary["seg"] = seg.as_dict()
    out["summary"] = summary
    return out
