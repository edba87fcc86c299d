"""Figures for eval runs (matplotlib, Agg backend: no display needed, safe in servers and CI).

- `subtask_bars`: grouped bars, one group per subtask (+ Average), one bar per run (the Average row).
- `stage_progression`: the paper's Figure 2 — each checkpoint a point at (Anomaly Discrimination, mean of
  the four defect subtasks), joined in the given order, so a training stage shows as an arrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from judo.evaluate.score import AVERAGE, DEFECT_SUBTASKS, DETECTION, ScoreTable
from judo.mmad import SUBTASK_LABELS


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return out


def subtask_bars(
    runs: Mapping[str, ScoreTable], out: str | Path, title: str = "MMAD accuracy per subtask"
) -> Path:
    """Grouped bar chart of the Average row of each run; subtasks are the union over runs."""
    if not runs:
        raise ValueError("subtask_bars needs at least one run")
    subtasks = list(dict.fromkeys(s for t in runs.values() for s in t.subtasks)) + [AVERAGE]
    n = len(runs)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(subtasks)), 4.2))
    for i, (name, table) in enumerate(runs.items()):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(subtasks))]
        ys = [table.values[AVERAGE].get(s, 0.0) for s in subtasks]
        ax.bar(xs, ys, width=width, label=name)
    ax.set_xticks(range(len(subtasks)))
    ax.set_xticklabels([SUBTASK_LABELS.get(s, s) for s in subtasks], rotation=25, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)


def progression_points(runs: Mapping[str, ScoreTable]) -> list[tuple[str, float, float]]:
    """(name, anomaly discrimination, mean of the four defect subtasks) per run, from the Average row."""
    return [
        (name, t.values[AVERAGE].get(DETECTION, 0.0), t.subtask_mean(DEFECT_SUBTASKS))
        for name, t in runs.items()
    ]


def stage_progression(
    runs: Mapping[str, ScoreTable], out: str | Path, title: str = "Stage progression (MMAD, Average row)"
) -> Path:
    """Scatter of the runs in order (e.g. base -> stage 1 -> stage 2 -> stage 3), joined by arrows."""
    points = progression_points(runs)
    if not points:
        raise ValueError("stage_progression needs at least one run")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    ax.scatter(xs, ys, s=40, zorder=3)
    for name, x, y in points:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize="small")
    for a, b in pairwise(points):
        ax.annotate(
            "",
            xy=(b[1], b[2]),
            xytext=(a[1], a[2]),
            arrowprops={"arrowstyle": "->", "color": "gray", "lw": 1.2},
        )
    ax.set_xlabel(f"{SUBTASK_LABELS.get(DETECTION, DETECTION)} (%)")
    ax.set_ylabel("mean of the four defect subtasks (%)")
    lo = min([*xs, *ys]) - 5
    hi = max([*xs, *ys]) + 5
    ax.set_xlim(max(0, lo), min(100, hi) if hi > lo else 100)
    ax.set_ylim(max(0, lo), min(100, hi) if hi > lo else 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, out)
