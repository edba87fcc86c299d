"""Pure scoring of eval records: the paper's table in MMAD-official and strict modes, plus seg metrics.

MMAD-official mode reproduces MMAD's `helper/summary.py` (`caculate_accuracy_mmad`) number for number:
- row = `image.split('/')[0]`; `Object Structure` / `Object Details` are merged into `Object Analysis`;
- the columns are the (merged) types seen in ANY record, the rows the datasets seen in ANY record, both
  collected before anything is dropped;
- a record whose correct or predicted answer is not one of A-E is dropped. The official scorer removes it
  from the list it is iterating over, which makes the iteration skip the record right after it: that next
  record is never looked at. We do the same (counted as `skipped`), because parity is the point of this
  mode; strict mode below has no such effect;
- cell = correct / total x 100; a (dataset, type) cell with no scored records is 0 (and counts as 0 in the
  averages), as in the official scorer; such cells are listed in `empty_cells` so reports can flag them;
- Anomaly Detection = (normal accuracy + anomalous accuracy) / 2, normal iff `good` is in the key; a side
  with no records has accuracy 0 (official);
- row Average = mean of the type columns; Overkill = 100 - normal acc, Miss = 100 - anomalous acc; the
  Average row = mean over the datasets of every column (so the headline is a macro average).

Strict mode scores every record whose correct answer is a letter: an unparseable prediction is wrong,
nothing is skipped; the aggregation is otherwise identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import fmean
from typing import Literal

from judo.evaluate.records import LETTERS, EvalRecord
from judo.grid import Cell, seg_f1, seg_iou
from judo.mmad import DATASETS, SUBTASKS, subtask_of

Mode = Literal["official", "strict"]
MODES: tuple[str, ...] = ("official", "strict")
AVERAGE = "Average"
DEFECT_SUBTASKS = ("Defect Classification", "Defect Localization", "Defect Description", "Defect Analysis")
DETECTION = "Anomaly Detection"


@dataclass
class ScoreTable:
    """One mode's table. `values[dataset][column]` in percent; columns are subtask names + Average."""

    mode: str
    datasets: list[str]
    subtasks: list[str]
    values: dict[str, dict[str, float]]
    counts: dict[str, dict[str, tuple[int, int]]]  # (correct, total) per cell, AD unbalanced
    detection: dict[str, dict[str, tuple[int, int]]]  # dataset -> normal/anomalous -> (correct, total)
    overkill: dict[str, float]
    miss: dict[str, float]
    n_records: int = 0
    n_scored: int = 0
    n_dropped: int = 0
    n_skipped: int = 0
    n_unparseable: int = 0
    n_bad_truth: int = 0
    empty_cells: list[tuple[str, str]] = field(default_factory=list)

    @property
    def headline(self) -> float:
        return self.values[AVERAGE][AVERAGE]

    def as_dict(self) -> dict[str, dict[str, float]]:
        """`{dataset or "Average": {subtask or "Average": value}}` (the `--json` shape)."""
        return {row: {col: self.values[row][col] for col in [*self.subtasks, AVERAGE]} for row in self.rows}

    @property
    def rows(self) -> list[str]:
        return [*self.datasets, AVERAGE]

    def subtask_mean(self, subtasks: Iterable[str], row: str = AVERAGE) -> float:
        """Mean of some columns of one row (e.g. the four defect subtasks for the stage progression plot)."""
        vals = [self.values[row][s] for s in subtasks if s in self.values[row]]
        return fmean(vals) if vals else 0.0


def _ordered(seen: list[str], canonical: Iterable[str]) -> list[str]:
    """Canonical names first in their canonical order, unknown ones after in order of appearance."""
    canon = [c for c in canonical if c in seen]
    return canon + [s for s in seen if s not in canon]


def _pct(correct: int, total: int) -> float:
    return correct / total * 100 if total else 0.0


def score(records: Iterable[EvalRecord], mode: Mode = "official") -> ScoreTable:
    """Score records (in file order: official mode depends on it) into the paper's table."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    records = list(records)
    seen_ds: list[str] = []
    seen_types: list[str] = []
    for rec in records:
        ds, st = rec.dataset, subtask_of(rec.type)
        if ds not in seen_ds:
            seen_ds.append(ds)
        if st not in seen_types:
            seen_types.append(st)
    datasets = _ordered(seen_ds, DATASETS)
    subtasks = _ordered(seen_types, SUBTASKS)

    counts = {ds: {st: [0, 0] for st in subtasks} for ds in datasets}
    det = {ds: {"normal": [0, 0], "anomalous": [0, 0]} for ds in datasets}
    table = ScoreTable(mode, datasets, subtasks, {}, {}, {}, {}, {}, n_records=len(records))

    table.n_unparseable = sum(not rec.parseable for rec in records)
    skip_next = False
    for rec in records:
        if mode == "official" and skip_next:
            skip_next = False
            table.n_skipped += 1
            continue
        if rec.answer not in LETTERS:
            table.n_bad_truth += 1
        if rec.answer not in LETTERS or (mode == "official" and not rec.parseable):
            table.n_dropped += 1
            skip_next = mode == "official"
            continue
        table.n_scored += 1
        ok = int(rec.correct)
        cell = counts[rec.dataset][subtask_of(rec.type)]
        cell[0] += ok
        cell[1] += 1
        if subtask_of(rec.type) == DETECTION:
            side = det[rec.dataset]["normal" if rec.is_normal else "anomalous"]
            side[0] += ok
            side[1] += 1

    for ds in datasets:
        row: dict[str, float] = {}
        for st in subtasks:
            c, t = counts[ds][st]
            row[st] = _pct(c, t)
            if t == 0:
                table.empty_cells.append((ds, st))
        normal_acc = _pct(*det[ds]["normal"])
        anomalous_acc = _pct(*det[ds]["anomalous"])
        if DETECTION in row:
            row[DETECTION] = (normal_acc + anomalous_acc) / 2
        row[AVERAGE] = fmean(row[st] for st in subtasks) if subtasks else 0.0
        table.values[ds] = row
        table.counts[ds] = {st: (counts[ds][st][0], counts[ds][st][1]) for st in subtasks}
        table.detection[ds] = {k: (v[0], v[1]) for k, v in det[ds].items()}
        table.overkill[ds] = 100 - normal_acc
        table.miss[ds] = 100 - anomalous_acc

    columns = [*subtasks, AVERAGE]
    table.values[AVERAGE] = {
        col: fmean(table.values[ds][col] for ds in datasets) if datasets else 0.0 for col in columns
    }
    table.overkill[AVERAGE] = fmean(table.overkill[ds] for ds in datasets) if datasets else 0.0
    table.miss[AVERAGE] = fmean(table.miss[ds] for ds in datasets) if datasets else 0.0
    return table


def score_both(records: Iterable[EvalRecord]) -> dict[str, ScoreTable]:
    """Both modes, always reported together."""
    records = list(records)
    return {mode: score(records, mode) for mode in MODES}  # type: ignore[arg-type]


@dataclass
class SegScores:
    """Patch-level seg quality of `<seg>` outputs (beyond MMAD).

    F1/IoU: per record on images with a ground-truth mask, averaged per dataset, then over datasets.
    Emptiness: share of records on normal images whose seg has no cells (a missing seg counts as empty).
    `present`: share of all records that had a `<seg>` block at all.
    """

    f1: dict[str, float]
    iou: dict[str, float]
    n_anomalous: dict[str, int]
    empty_rate: dict[str, float]
    n_normal: dict[str, int]
    present_rate: float
    n_records: int
    n_no_truth: int

    def as_dict(self) -> dict[str, object]:
        return {
            "f1": self.f1,
            "iou": self.iou,
            "n_anomalous": self.n_anomalous,
            "empty_rate_normal": self.empty_rate,
            "n_normal": self.n_normal,
            "seg_present_rate": self.present_rate,
            "n_records": self.n_records,
            "n_anomalous_without_mask": self.n_no_truth,
        }


def score_seg(records: Iterable[EvalRecord], truth: Mapping[str, frozenset[Cell] | None]) -> SegScores:
    """Seg metrics of records against ground-truth cells per image key (`truth.load_truth_cells`).

    Anomalous = not normal by MMAD's rule; an anomalous key whose truth is None (no readable mask) is
    counted in `n_no_truth` and left out. Scores use `judo.grid.seg_f1` / `seg_iou`.
    """
    records = list(records)
    f1s: dict[str, list[float]] = {}
    ious: dict[str, list[float]] = {}
    empties: dict[str, list[bool]] = {}
    no_truth = 0
    for rec in records:
        pred = set(rec.cells or ())
        if rec.is_normal:
            empties.setdefault(rec.dataset, []).append(not pred)
            continue
        cells = truth.get(rec.key)
        if cells is None:
            no_truth += 1
            continue
        f1s.setdefault(rec.dataset, []).append(seg_f1(pred, set(cells)))
        ious.setdefault(rec.dataset, []).append(seg_iou(pred, set(cells)))

    def per_ds(values: dict[str, list], fn) -> dict[str, float]:
        out = {ds: fn(v) for ds, v in sorted(values.items(), key=lambda kv: _ds_rank(kv[0]))}
        if out:
            out[AVERAGE] = fmean(out.values())
        return out

    return SegScores(
        f1=per_ds(f1s, lambda v: fmean(v) * 100),
        iou=per_ds(ious, lambda v: fmean(v) * 100),
        n_anomalous={ds: len(v) for ds, v in f1s.items()},
        empty_rate=per_ds(empties, lambda v: sum(v) / len(v) * 100),
        n_normal={ds: len(v) for ds, v in empties.items()},
        present_rate=(sum(r.cells is not None for r in records) / len(records) * 100) if records else 0.0,
        n_records=len(records),
        n_no_truth=no_truth,
    )


def _ds_rank(ds: str) -> tuple[int, str]:
    return (DATASETS.index(ds) if ds in DATASETS else len(DATASETS), ds)
