"""Benchmark of the training-free comparator on synthetic query/template pairs.

Pairs come from judo.synth (every category, every defect kind, normal queries too); each template
is the same product perturbed as real template photos are (shift, rotation, scale, brightness,
contrast, sensor noise, JPEG; judo.synth.perturb). Both settings run by default: "same-instance"
(the template is a perturbed copy of the query's product) and "new-instance" (another normal sample
of the category, perturbed: part-to-part variation and another pose too, the harder, MMAD-like case);
`--setting` picks one.

Prints, overall and per category / defect kind: patch F1 and IoU on anomalous pairs (judo.grid
cells), the fraction of normal pairs with zero cells, Anomaly Detection balanced accuracy, and
milliseconds per pair at 448x448 and 2048x2048, against the targets below.

    .venv/bin/python bench/comparator.py [--per-category 6] [--seed 0] [--setting both|same|new] [--dump DIR]

Where the new-instance setting still falls short, and the next steps measured so far:
- half-block descriptor phases (matching.PHASES) took new-instance F1 0.62 -> 0.66, clean normal pairs
  56% -> 71% (hazelnut 33% -> 100%, screw 67% -> 100%), at a cost in the same-instance setting (F1
  0.89 -> 0.87: screw 0.81 -> 0.64, small defects on threads find a shifted look-alike). Using the
  phases only where the template's own tolerance is high undid the gains on both sides.
- pill: sparse random speckles; a query speckle often has no speckle within one cell in the other
  sample, so it looks foreign (normal pairs still score 1.9-3.2 against 3-9 for defects). Needs a
  notion of "a look that recurs across the template" without accepting background (missing parts).
- drink_can: the right turned pose is found, but the fixed lamp shading does not turn with the can, so
  the lid disagrees in every pose; remove a smooth (low-order) shading difference for the turned poses.
- wood: the pair-noise normalisation used for another sample hides faint scratches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from judo.comparator import compare
from judo.grid import cells_to_mask, mask_to_cells, seg_f1, seg_iou
from judo.synth.defects import DEFECT_KINDS
from judo.synth.perturb import Pair, make_pair
from judo.synth.products import CATEGORIES

TARGETS = {"f1": 0.6, "balanced_accuracy": 0.9, "normal_clean": 0.9, "ms_448": 200.0, "ms_2048": 1000.0}


def build_pairs(
    per_category: int, seed: int, size: int, new_instance: bool, categories: tuple[str, ...] = CATEGORIES
) -> list[Pair]:
    """`per_category` normal and `per_category` anomalous pairs per category (defect kinds cycled)."""
    pairs = []
    for ci, category in enumerate(CATEGORIES):
        if category not in categories:
            continue
        for i in range(2 * per_category):
            rng = np.random.default_rng([seed, ci, i])
            kind = "good" if i % 2 == 0 else DEFECT_KINDS[(i // 2 + ci) % len(DEFECT_KINDS)]
            pairs.append(make_pair(category, kind, size, rng, new_instance=new_instance))
    return pairs


def _dump(pair: Pair, result, path: Path) -> None:
    """Template | query with red predicted cells and green truth | heat map, side by side."""
    size = pair.query.size
    q = np.asarray(pair.query).copy()
    pred = cells_to_mask(result.cells, size)
    q[pred] = (0.5 * q[pred] + [127, 0, 0]).astype(np.uint8)
    q[pair.mask] = [0, 255, 0]
    heat = (np.repeat(result.heatmap[:, :, None], 3, axis=2) * 255).astype(np.uint8)
    Image.fromarray(np.concatenate([np.asarray(pair.template.resize(size)), q, heat], axis=1)).save(path)


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def evaluate(pairs: list[Pair], dump: Path | None) -> dict[str, float]:
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    times = []
    for n, pair in enumerate(pairs):
        start = time.perf_counter()
        result = compare(pair.query, pair.template)
        times.append((time.perf_counter() - start) * 1000)
        truth = mask_to_cells(pair.mask)
        for key in ("all", pair.category, pair.defect):
            g = groups[key]
            if pair.is_normal:
                g["normal_clean"].append(float(not result.cells))
            else:
                g["f1"].append(seg_f1(result.cells, truth))
                g["iou"].append(seg_iou(result.cells, truth))
                g["detected"].append(float(result.is_anomalous))
        bad = (pair.is_normal and result.cells) or (not pair.is_normal and seg_f1(result.cells, truth) < 0.5)
        if dump is not None and bad:
            dump.mkdir(parents=True, exist_ok=True)
            _dump(pair, result, dump / f"{n:03d}_{pair.category}_{pair.defect}.png")

    print(f"{'group':14s} {'F1':>6s} {'IoU':>6s} {'clean':>6s} {'bal.acc':>8s}  (pairs)")
    summary = {}
    for key in ["all", *CATEGORIES, *DEFECT_KINDS]:
        if key not in groups:
            continue
        g = groups[key]
        clean, detected = _mean(g["normal_clean"]), _mean(g["detected"])
        balanced = (clean + detected) / 2 if g["normal_clean"] and g["detected"] else float("nan")
        count = len(g["normal_clean"]) + len(g["detected"])
        f1, iou = _mean(g["f1"]), _mean(g["iou"])
        print(f"{key:14s} {f1:6.3f} {iou:6.3f} {clean:6.3f} {balanced:8.3f}  ({count})")
        if key == "all":
            summary = {
                "f1": _mean(g["f1"]),
                "iou": _mean(g["iou"]),
                "normal_clean": clean,
                "balanced_accuracy": balanced,
            }
    summary["ms_448"] = statistics.median(times)
    return summary


def time_large(pairs: list[Pair], side: int, count: int) -> float:
    """Median ms per pair with both images upscaled to side x side (the comparison's input cost)."""
    times = []
    for pair in pairs[:count]:
        q = pair.query.resize((side, side), Image.BICUBIC)
        t = pair.template.resize((side, side), Image.BICUBIC)
        start = time.perf_counter()
        compare(q, t)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run_setting(args: argparse.Namespace, new_instance: bool) -> dict[str, float]:
    """Build, compare and report one setting; returns its summary (with ms at 2048)."""
    name = "new-instance" if new_instance else "same-instance"
    start = time.perf_counter()
    pairs = build_pairs(args.per_category, args.seed, args.size, new_instance)
    print(
        f"\n== {name}: {len(pairs)} pairs ({len(CATEGORIES)} categories) built in "
        f"{time.perf_counter() - start:.1f} s; template = "
        f"{'another normal instance' if new_instance else 'the same product'}, perturbed"
    )
    compare(pairs[0].query, pairs[0].template)  # warm-up (imports, OpenCV thread pool)
    summary = evaluate(pairs, None if args.dump is None else args.dump / name)
    summary["ms_2048"] = time_large(pairs, 2048, count=6)
    print(
        f"ms per pair: {summary['ms_448']:.0f} at {args.size}x{args.size}, "
        f"{summary['ms_2048']:.0f} at 2048x2048 (median; load average {_load()})"
    )
    return summary


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-category", type=int, default=6, help="normal and anomalous pairs per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--setting", choices=("both", "same", "new"), default="both")
    parser.add_argument("--new-instance", action="store_true", help="same as --setting new")
    parser.add_argument("--dump", type=Path, default=None, help="write overlays of failures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    setting = "new" if args.new_instance else args.setting
    print(f"load average before: {_load()}")
    summaries = {
        name: run_setting(args, name == "new")
        for name in ("same", "new")
        if setting in (name, "both")
    }
    missed = []
    print(f"\n{'metric':18s} " + " ".join(f"{n + '-instance':>15s}" for n in summaries) + "  target")
    for key, target in TARGETS.items():
        sign = "<=" if key.startswith("ms_") else ">="
        cells = []
        for name, summary in summaries.items():
            value = summary[key]
            ok = value <= target if key.startswith("ms_") else value >= target
            missed += [] if ok else [f"{name}:{key}"]
            cells.append(f"{value:9.3f} {'ok' if ok else 'MISS':>5s}")
        print(f"{key:18s} " + " ".join(cells) + f"  {sign} {target:g}")
    print(f"{'iou':18s} " + " ".join(f"{s['iou']:9.3f}      " for s in summaries.values()))
    print(f"load average after: {_load()}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
