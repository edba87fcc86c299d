"""`judo compare RUN...`: several eval runs side by side (e.g. JUDO vs Base GRPO + RAG vs Base GRPO).

    judo compare runs/base-grpo.jsonl runs/base-grpo-rag.jsonl runs/judo.jsonl \\
        --names "Base GRPO" "Base GRPO + RAG" JUDO --mmad-root /data/MMAD --out compare/

Prints each run's table (MMAD-official), the per-subtask differences to the first run (both modes), and
with `--out` writes: `tables.md`, `compare.json`, `subtasks.png` (bars per subtask), `progression.png`
(the paper's Figure 2: runs in the order given, e.g. base -> stage 1 -> stage 2 -> stage 3), and
`disagreements.jsonl` + `images/` — every question the runs answered differently, with each run's output,
the query and template images (linked, or copied with `--copy`) and each run's seg drawn on the query,
ready to load into the app.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judo.evaluate.records import (
    DUPLICATE_POLICIES,
    DuplicateRecordError,
    EvalRecord,
    RecordFormatError,
    read_records,
)
from judo.evaluate.report import MODE_TITLES, label, markdown_table
from judo.evaluate.score import AVERAGE, MODES, ScoreTable, score_both


@dataclass
class Run:
    name: str
    records: list[EvalRecord]
    tables: dict[str, ScoreTable]


def run_name(pattern: str) -> str:
    """A short default name: the file stem without a `.rankN` shard suffix or glob characters."""
    stem = Path(pattern).name
    for suffix in (".jsonl", ".json"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"\.rank[\d*?]*$", "", stem).replace("*", "") or pattern


def load_runs(patterns: list[str], names: list[str] | None, duplicates: str = "error") -> list[Run]:
    if names is not None and len(names) != len(patterns):
        raise ValueError(f"--names got {len(names)} name(s) for {len(patterns)} run(s)")
    names = names or [run_name(p) for p in patterns]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must be unique, got {names}; pass --names")
    runs = []
    for name, pattern in zip(names, patterns):
        records = read_records([pattern], duplicates=duplicates)  # type: ignore[arg-type]
        if not records:
            raise ValueError(f"run {name!r} ({pattern}) holds no records")
        runs.append(Run(name, records, score_both(records)))
    return runs


def differences(runs: list[Run], mode: str = "official") -> dict[str, dict[str, float]]:
    """Per run after the first: Average-row value minus the first run's, per subtask and Average."""
    base = runs[0].tables[mode]
    out = {}
    for run in runs[1:]:
        t = run.tables[mode]
        cols = [
            c
            for c in dict.fromkeys([*base.subtasks, *t.subtasks])
            if c in base.values[AVERAGE] and c in t.values[AVERAGE]
        ]
        out[run.name] = {c: t.values[AVERAGE][c] - base.values[AVERAGE][c] for c in [*cols, AVERAGE]}
    return out


def markdown_differences(runs: list[Run], mode: str) -> str:
    diffs = differences(runs, mode)
    if not diffs:
        return ""
    cols = list(next(iter(diffs.values())))
    lines = [
        f"### Differences to {runs[0].name} — {MODE_TITLES[mode]}",
        "",
        "| Run | " + " | ".join(label(c) for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name, row in diffs.items():
        lines.append(f"| {name} | " + " | ".join(f"{row.get(c, 0.0):+.2f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def disagreements(runs: list[Run]) -> list[dict[str, Any]]:
    """Questions answered by every run whose predicted letters are not all the same."""
    by_uid = [{r.uid: r for r in run.records} for run in runs]
    out = []
    for uid, first in by_uid[0].items():
        if not all(uid in m for m in by_uid[1:]):
            continue
        recs = [m[uid] for m in by_uid]
        if len({r.predicted for r in recs}) == 1:
            continue
        out.append(
            {
                "key": first.key,
                "question_key": first.question_key,
                "question": first.question,
                "type": first.type,
                "options": first.options,
                "answer": first.answer,
                "templates": first.templates,
                "runs": {
                    run.name: {
                        "predicted": r.predicted,
                        "correct": r.correct,
                        "raw": r.raw,
                        "cells": None if r.cells is None else [list(c) for c in r.cells],
                    }
                    for run, r in zip(runs, recs)
                },
            }
        )
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _place(src: Path, dst: Path, copy: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if copy:
        shutil.copy2(src, dst)
    else:
        os.symlink(src.resolve(), dst)


def export_disagreements(
    runs: list[Run], out: Path, mmad_root: Path | None, copy: bool = False
) -> tuple[Path, int, list[str]]:
    """Write `disagreements.jsonl` and, with an MMAD root, the images each entry refers to."""
    rows = disagreements(runs)
    problems: list[str] = []
    samples = None
    if mmad_root is not None:
        from judo.mmad import load_mmad

        samples = load_mmad(mmad_root).samples
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if samples is None:
            continue
        sample = samples.get(row["key"])
        if sample is None:
            problems.append(f"{row['key']}: not in {mmad_root}/mmad.json")
            continue
        folder = Path("images") / _slug(row["question_key"] or row["key"])
        images: dict[str, str] = {}
        if sample.image_path.is_file():
            dst = folder / f"query{sample.image_path.suffix}"
            _place(sample.image_path, out / dst, copy)
            images["query"] = str(dst)
            images.update(_overlays(row, sample.image_path, out, folder))
        else:
            problems.append(f"{row['key']}: query image missing: {sample.image_path}")
        tpaths = (
            [mmad_root / t for t in row["templates"]] if row["templates"] else sample.random_templates[:1]
        )
        for i, tpath in enumerate(tpaths):
            if Path(tpath).is_file():
                dst = folder / f"template{i}{Path(tpath).suffix}"
                _place(Path(tpath), out / dst, copy)
                images[f"template{i}"] = str(dst)
            else:
                problems.append(f"{row['key']}: template missing: {tpath}")
        row["images"] = images
    path = out / "disagreements.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path, len(rows), problems


def _overlays(row: dict[str, Any], query: Path, out: Path, folder: Path) -> dict[str, str]:
    """Each run's seg cells drawn in red on the query (runs without a seg are left out)."""
    from judo.images import load_image
    from judo.render import overlay_cells

    images = {}
    base = None
    for name, res in row["runs"].items():
        if res["cells"] is None:
            continue
        base = base or load_image(query)
        dst = folder / f"seg_{_slug(name)}.png"
        overlay_cells(base, {tuple(c) for c in res["cells"]}).save(out / dst)
        images[f"seg:{name}"] = str(dst)
    return images


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="judo compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "runs", nargs="+", help="records files of the runs (globs allowed, e.g. 'runs/judo.rank*.jsonl')"
    )
    p.add_argument("--names", nargs="+", help="display names, one per run (default: file names)")
    p.add_argument("--out", type=Path, help="folder for tables, plots and the disagreement export")
    p.add_argument("--mmad-root", type=Path, help="MMAD root: export the images of the disagreements")
    p.add_argument("--copy", action="store_true", help="copy images into the export instead of symlinking")
    p.add_argument("--duplicates", choices=DUPLICATE_POLICIES, default="error")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = load_runs(args.runs, args.names, args.duplicates)
    except (FileNotFoundError, RecordFormatError, DuplicateRecordError, ValueError) as exc:
        print(f"judo compare: {exc}", file=sys.stderr)
        return 2
    parts = ["| Run | Records | MMAD-official | strict | unparseable |", "|---|---:|---:|---:|---:|"]
    parts += [
        f"| {r.name} | {len(r.records)} | {r.tables['official'].headline:.2f} | "
        f"{r.tables['strict'].headline:.2f} | {r.tables['strict'].n_unparseable} |"
        for r in runs
    ]
    text = "\n".join(parts) + "\n\n"
    text += "\n".join(
        markdown_table(r.tables["official"], f"{r.name} — {MODE_TITLES['official']}") for r in runs
    )
    text += "\n" + "\n".join(markdown_differences(runs, m) for m in MODES)
    print(text)
    if args.out is None:
        return 0

    from judo.evaluate.plots import stage_progression, subtask_bars

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(text, encoding="utf-8")
    summary = {
        "runs": {r.name: {m: r.tables[m].as_dict() for m in MODES} for r in runs},
        "differences": {m: differences(runs, m) for m in MODES},
    }
    (out / "compare.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    official = {r.name: r.tables["official"] for r in runs}
    subtask_bars(official, out / "subtasks.png")
    stage_progression(official, out / "progression.png")
    try:
        path, n, problems = export_disagreements(runs, out, args.mmad_root, copy=args.copy)
    except Exception as exc:
        from judo.mmad import MMADError

        if not isinstance(exc, (MMADError, OSError)):
            raise
        print(f"judo compare: export failed: {exc}", file=sys.stderr)
        return 2
    for msg in problems[:20]:
        print(f"warning: {msg}", file=sys.stderr)
    print(f"{n} question(s) where the runs disagree: {path}; tables, compare.json and plots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
