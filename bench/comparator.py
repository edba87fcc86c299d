"""Benchmark of the training-free comparator: one template and a bank of normals, procedural products
and real photographs, against three classical baselines scored on the same cases in the same run.

Cases: a query (normal, or with one painted defect: judo.synthetic.defects) and its normals.
- "same": the template is the query's own product re-shot (judo.synthetic.perturb: shift, turn, scale,
  light, noise, JPEG).
- "new-K": K templates, each ANOTHER normal sample of the product, perturbed (MMAD's case; K = 1, 4, 8).
Products: the procedural categories of judo.synthetic ("synth"), and real photographs the project did
not draw ("real"): the texture photos scikit-image ships inside its package (brick, grass, gravel:
grey 512 px; hubble_deep_field: a colour star field, speckles like a pill's). Their "samples" are
crops at random places of one photo (another piece of the same surface), resized to --size; a
template is "shot" (shoot_source): perturbed with SHOT_MARGIN more surface around it and cut back, so
its border shows the surface, not perturb's mirrored fill.

Baselines (written here, fed the comparator's own registration of every template):
- absdiff: registered absolute grey difference (lightly smoothed), nearest template per pixel;
- ssim: 1 - SSIM map (scikit-image), nearest template per pixel;
- variation: a per-pixel variation model of the registered templates, |q - mean| / max(floor, 3 std).
A baseline has no threshold of its own: it gets the one that leaves 95 % of this run's normal queries
clean (calibrated on the very normals it is scored on: generous to the baseline).

Prints patch F1/IoU on anomalous queries, the share of normal queries with no cell, Anomaly Detection
balanced accuracy, per setting and method; speed at 448 px for 1 and 8 templates (bank prepared
once, as the app and `judo eval` use it); the time to calibrate a bank of 20 normals; and the
calibration's honesty (false cells per held-out normal against the rate asked for). Exits 1 and
names every target missed.

Where it falls short (measured, see README): real random surfaces as new instances (F1 about 0.4 with
4 templates). The star field scores F1 0: its "missing" and "crack" defects on black sky are invisible
to every method, and a new galaxy in a good query is as foreign as a painted scratch or speck to the
hand-made look-up descriptors of texture.py (good queries reach 0.3-0.7 of the calibrated threshold,
a bright scratch 0.4, specks 0.8). Thin cracks on grass and gravel stay under the threshold too. With
4 templates on 64 procedural queries two drink-can normals of 32 are flagged: their pull tab reaches
1.1x the threshold, which the 4 normals' leave-one-out does not show (its highest cell 0.75x).

    .venv/bin/python bench/comparator.py [--per-category 4] [--seed 0] [--products synth real]
        [--settings same new-1 new-4 new-8] [--dump DIR] [--no-speed] [--no-calibration]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from judo.comparator import compare
from judo.comparator.bank import build_bank
from judo.comparator.features import match_photometry
from judo.comparator.prepare import LUMA, prepare
from judo.comparator.register import register, warp_template
from judo.comparator.threshold import pool_cells
from judo.grid import cells_to_mask, mask_to_cells, seg_f1, seg_iou
from judo.synthetic.defects import DEFECT_KINDS, paint_defect
from judo.synthetic.perturb import perturb
from judo.synthetic.products import CATEGORIES, make_product

#: The issue's targets: (products, setting) -> metric -> minimum.
QUALITY_TARGETS = {
    ("synth", "same"): {"f1": 0.85, "normal_clean": 1.0},
    ("synth", "new-1"): {"f1": 0.65, "normal_clean": 0.85},
    ("synth", "new-4"): {"f1": 0.75, "balanced_accuracy": 0.93, "normal_clean": 0.95},
    ("real", "new-4"): {"f1": 0.6, "balanced_accuracy": 0.9, "normal_clean": 0.9},
}
SPEED_TARGETS_MS = {1: 150.0, 8: 400.0}
CALIBRATION_NORMALS, CALIBRATION_TARGET_S = 20, 15.0
#: Calibration honesty: the measured false-cell rate on held-out normals within this factor of the asked.
HONESTY_FACTOR = 2.0
HONESTY_RATES = (0.25, 1.0)
REAL_PHOTOS = {
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "stars": "hubble_deep_field.jpg",
}
#: Crop side as a fraction of the photo's shorter side.
CROP_FRACTION = {"brick": 0.5, "grass": 0.5, "gravel": 0.5, "stars": 0.4}
BASELINE_CLEAN_SHARE = 0.95
#: A real photo's template is shot with this much more of the surface around it (shoot_source): enough
#: for perturb's largest motion (3 % shift, 3 degrees, 3 % zoom out) to uncover no border.
SHOT_MARGIN = 1.12


# ---------------------------------------------------------------------------------------------- cases


@dataclass
class Case:
    query: Image.Image
    mask: np.ndarray
    templates: list[Image.Image]
    product: str
    defect: str

    @property
    def is_normal(self) -> bool:
        return self.defect == "good"


def _photo(name: str) -> Image.Image:
    import skimage

    path = Path(skimage.__file__).parent / "data" / REAL_PHOTOS[name]
    return Image.open(path).convert("RGB")


def product_source(products: str, name: str, size: int) -> Callable[[np.random.Generator], Image.Image]:
    """A function drawing one normal sample of product `name` at size x size."""
    if products == "synth":
        return lambda rng: make_product(name, size, rng)
    photo = _photo(name)
    side = int(CROP_FRACTION[name] * min(photo.size))

    def crop(rng: np.random.Generator) -> Image.Image:
        x = int(rng.integers(0, photo.size[0] - side + 1))
        y = int(rng.integers(0, photo.size[1] - side + 1))
        return photo.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)

    return crop


def shoot_source(products: str, name: str, size: int) -> Callable[[np.random.Generator], Image.Image]:
    """A function drawing one normal sample as a template is photographed (perturb). A real photo's
    sample is shot with SHOT_MARGIN more of the surface around it and cut back, so that the border the
    motion uncovers shows the surface, as a camera sees it, not perturb's mirrored fill."""
    draw = product_source(products, name, size)
    if products == "synth":
        return lambda rng: perturb(draw(rng), rng)
    photo = _photo(name)
    side = int(CROP_FRACTION[name] * min(photo.size))
    wide = int(round(side * SHOT_MARGIN))
    view = int(round(size * SHOT_MARGIN))
    cut = (view - size) // 2

    def shot(rng: np.random.Generator) -> Image.Image:
        x = int(rng.integers(0, photo.size[0] - wide + 1))
        y = int(rng.integers(0, photo.size[1] - wide + 1))
        scene = photo.crop((x, y, x + wide, y + wide)).resize((view, view), Image.BICUBIC)
        return perturb(scene, rng).crop((cut, cut, cut + size, cut + size))

    return shot


def build_cases(products: str, setting: str, per_category: int, seed: int, size: int) -> list[Case]:
    """`per_category` normal and anomalous queries per product. "same": each query has its own
    re-shot template; "new-K": all queries of a product share one bank of K normals (a lab's golden
    samples), drawn from its own generator, so that new-4's bank is new-8's first four."""
    names = CATEGORIES if products == "synth" else tuple(REAL_PHOTOS)
    count = 1 if setting in ("same", "new-1") else int(setting.split("-")[1])
    cases = []
    for ci, name in enumerate(names):
        draw, shoot = product_source(products, name, size), shoot_source(products, name, size)
        b_rng = np.random.default_rng([seed, ci, 99])
        bank = [shoot(b_rng) for _ in range(count)]
        for i in range(2 * per_category):
            rng = np.random.default_rng([seed, ci, i])
            kind = "good" if i % 2 == 0 else DEFECT_KINDS[(i // 2 + ci) % len(DEFECT_KINDS)]
            product = draw(rng)
            if kind == "good":
                query, mask = product, np.zeros((size, size), bool)
            else:
                query, mask = paint_defect(product, kind, rng)
            templates = [perturb(product, rng)] if setting == "same" else bank
            cases.append(Case(query, mask, templates, name, kind))
    return cases


# ---------------------------------------------------------------------------------------------- baselines


def _registered(query: Image.Image, templates: list[Image.Image]) -> tuple[np.ndarray, list, list]:
    """The query's grey picture and every template registered onto it (grey, covered mask)."""
    q = prepare(query)
    warped, covered = [], []
    for t in templates:
        p = prepare(t)
        reg = register(q.gray, p.gray)
        w, c = warp_template(p.rgb, reg)
        matched = match_photometry(w, q.rgb, c) if c.any() else w
        warped.append(matched @ LUMA)
        covered.append(c)
    return q.gray, warped, covered


def _smooth(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x.astype(np.float32), (0, 0), 1.0)


def baseline_maps(query: Image.Image, templates: list[Image.Image]) -> dict[str, np.ndarray]:
    """Each baseline's (16, 16) cell scores for one case (larger = more anomalous)."""
    q, warped, covered = _registered(query, templates)
    qs = _smooth(q)
    diffs = []
    ssims = []
    for w, c in zip(warped, covered, strict=True):
        ws = _smooth(w)
        d = np.abs(qs - ws)
        d[~c] = 0.0
        diffs.append(d)
        _, s = structural_similarity(q, w, data_range=1.0, full=True, gaussian_weights=True, sigma=1.5)
        s = 1.0 - s
        s[~c] = 0.0
        ssims.append(s)
    stack = np.stack([_smooth(w) for w in warped])
    valid = np.logical_and.reduce(covered)
    mean, std = stack.mean(axis=0), stack.std(axis=0)
    variation = np.abs(qs - mean) / np.maximum(0.02, 3.0 * std)
    variation[~valid] = 0.0
    return {
        "absdiff": pool_cells(np.minimum.reduce(diffs)),
        "ssim": pool_cells(np.minimum.reduce(ssims), stat="mean"),
        "variation": pool_cells(variation),
    }


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class Outcome:
    cells: set
    truth: set
    normal: bool
    product: str
    defect: str


def summarise(outcomes: list[Outcome]) -> dict[str, float]:
    normals = [o for o in outcomes if o.normal]
    defects = [o for o in outcomes if not o.normal]
    clean = float(np.mean([not o.cells for o in normals])) if normals else float("nan")
    detected = float(np.mean([bool(o.cells) for o in defects])) if defects else float("nan")
    return {
        "f1": float(np.mean([seg_f1(o.cells, o.truth) for o in defects])) if defects else float("nan"),
        "iou": float(np.mean([seg_iou(o.cells, o.truth) for o in defects])) if defects else float("nan"),
        "normal_clean": clean,
        "balanced_accuracy": (clean + detected) / 2,
    }


def baseline_outcomes(scores: list[np.ndarray], cases: list[Case]) -> list[Outcome]:
    """Cells of one baseline at the threshold leaving BASELINE_CLEAN_SHARE of the normal queries clean."""
    peaks = [float(s.max()) for s, c in zip(scores, cases, strict=True) if c.is_normal]
    threshold = float(np.quantile(peaks, BASELINE_CLEAN_SHARE, method="higher")) + 1e-9
    out = []
    for s, c in zip(scores, cases, strict=True):
        cells = {(int(r), int(k)) for r, k in zip(*np.nonzero(s > threshold), strict=True)}
        out.append(Outcome(cells, mask_to_cells(c.mask), c.is_normal, c.product, c.defect))
    return out


def _dump(case: Case, cells: set, heatmap: np.ndarray, path: Path) -> None:
    size = case.query.size
    q = np.asarray(case.query).copy()
    pred = cells_to_mask(cells, size)
    q[pred] = (0.5 * q[pred] + [127, 0, 0]).astype(np.uint8)
    q[case.mask] = [0, 255, 0]
    heat = (np.repeat(heatmap[:, :, None], 3, axis=2) * 255).astype(np.uint8)
    Image.fromarray(np.concatenate([np.asarray(case.templates[0].resize(size)), q, heat], axis=1)).save(path)


def run_setting(products: str, setting: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    start = time.perf_counter()
    cases = build_cases(products, setting, args.per_category, args.seed, args.size)
    built = time.perf_counter() - start
    ours, base_scores = [], defaultdict(list)
    times = []
    banks: dict[int, object] = {}
    calibrating = []
    for n, case in enumerate(cases):
        if len(case.templates) == 1:
            bank = case.templates[0]
        elif id(case.templates) not in banks:
            t0 = time.perf_counter()
            bank = banks[id(case.templates)] = build_bank(case.templates)
            compare(case.query, bank)  # the bank's calibration, once (calibration.py)
            calibrating.append(time.perf_counter() - t0)
        else:
            bank = banks[id(case.templates)]
        t0 = time.perf_counter()
        result = compare(case.query, bank)
        times.append((time.perf_counter() - t0) * 1000)
        truth = mask_to_cells(case.mask)
        ours.append(Outcome(result.cells, truth, case.is_normal, case.product, case.defect))
        for name, s in baseline_maps(case.query, case.templates).items():
            base_scores[name].append(s)
        bad = (case.is_normal and result.cells) or (not case.is_normal and seg_f1(result.cells, truth) < 0.5)
        if args.dump is not None and bad:
            folder = args.dump / f"{products}_{setting}"
            folder.mkdir(parents=True, exist_ok=True)
            _dump(case, result.cells, result.heatmap, folder / f"{n:03d}_{case.product}_{case.defect}.png")
    table = {"comparator": summarise(ours)}
    for name, scores in base_scores.items():
        table[name] = summarise(baseline_outcomes(scores, cases))
    print(
        f"\n== {products} / {setting}: {len(cases)} queries built in {built:.1f} s, comparator "
        f"{statistics.median(times):.0f} ms per query (median)"
        + (f", bank prepared and calibrated in {statistics.median(calibrating):.1f} s" if calibrating else "")
    )
    print(f"{'method':12s} {'F1':>6s} {'IoU':>6s} {'clean':>6s} {'bal.acc':>8s}")
    for name, s in table.items():
        print(
            f"{name:12s} {s['f1']:6.3f} {s['iou']:6.3f} {s['normal_clean']:6.3f} {s['balanced_accuracy']:8.3f}"
        )
    per_product = defaultdict(list)
    for o in ours:
        per_product[o.product].append(o)
    print(
        "comparator per product: "
        + ", ".join(
            f"{p} F1 {summarise(os_)['f1']:.2f} clean {summarise(os_)['normal_clean']:.2f}"
            for p, os_ in per_product.items()
        )
    )
    return table


# ---------------------------------------------------------------------------------------------- speed


def time_queries(templates: int, size: int, repeats: int = 8) -> float:
    """Median ms per query at size x size against a prepared bank of `templates` drink-can normals."""
    rng = np.random.default_rng(5)
    normals = [perturb(make_product("drink_can", size, rng), rng) for _ in range(templates)]
    bank = build_bank(normals) if templates > 1 else normals[0]
    queries = [make_product("drink_can", size, rng) for _ in range(repeats)]
    compare(queries[0], bank)  # warm-up
    times = []
    for q in queries:
        t0 = time.perf_counter()
        compare(q, bank)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def calibration_checks(size: int, held_out: int) -> list[str]:
    """Calibrate a bank of CALIBRATION_NORMALS normals per product (timed) and count, on `held_out`
    other normals, the cells at or over the calibrated threshold per part, against the rate asked."""
    from judo.comparator import calibrate

    missed = []
    products = ("bottle", "drink_can", "carpet")
    found: dict[float, list[int]] = defaultdict(list)
    for pi, name in enumerate(products):
        rng = np.random.default_rng([7, pi])
        normals = [perturb(make_product(name, size, rng), rng) for _ in range(CALIBRATION_NORMALS)]
        t0 = time.perf_counter()
        bank = build_bank(normals)
        calibration = calibrate(bank)
        seconds = time.perf_counter() - t0
        ok = seconds <= CALIBRATION_TARGET_S
        print(
            f"calibration: {name}, {len(bank)} normals: {seconds:.1f} s (bank {seconds - calibration.seconds:.1f} s "
            f"+ leave-one-out {calibration.seconds:.1f} s; target <= {CALIBRATION_TARGET_S:.0f}) {'ok' if ok else 'MISS'}"
        )
        if not ok:
            missed.append(
                f"calibrating {len(bank)} {name} normals took {seconds:.1f} s > {CALIBRATION_TARGET_S:.0f} s"
            )
        for _ in range(held_out):
            result = compare(perturb(make_product(name, size, rng), rng), bank)
            for rate in HONESTY_RATES:
                found[rate].append(
                    int((result.values >= result.rethreshold(false_alarm_rate=rate).base_threshold).sum())
                )
    for rate, counts in found.items():
        measured = float(np.mean(counts))
        ok = rate / HONESTY_FACTOR <= measured <= rate * HONESTY_FACTOR
        print(
            f"calibration honesty: asked {rate:g} false cells per good part, measured {measured:.3f} on "
            f"{len(counts)} held-out normals ({', '.join(products)}) {'ok' if ok else 'MISS'}"
        )
        if not ok:
            missed.append(
                f"false-alarm rate asked {rate:g}, measured {measured:.3f} (outside {HONESTY_FACTOR:g}x)"
            )
    return missed


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--per-category", type=int, default=4, help="normal and anomalous queries per product"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--products", nargs="+", choices=("synth", "real"), default=["synth", "real"])
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=("same", "new-1", "new-4", "new-8"),
        default=["same", "new-1", "new-4", "new-8"],
    )
    parser.add_argument("--dump", type=Path, default=None, help="write overlays of failures here")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-calibration", action="store_true")
    parser.add_argument(
        "--held-out", type=int, default=12, help="held-out normals per product (honesty check)"
    )
    args = parser.parse_args(argv)
    print(f"load average before: {_load()}")
    missed: list[str] = []
    for products in args.products:
        for setting in args.settings:
            table = run_setting(products, setting, args)
            ours = table["comparator"]
            for metric in ("f1", "balanced_accuracy"):
                for name, s in table.items():
                    if name != "comparator" and not ours[metric] > s[metric]:
                        missed.append(
                            f"{products}/{setting}: comparator {metric} {ours[metric]:.3f} does not "
                            f"beat {name} {s[metric]:.3f}"
                        )
            for metric, target in QUALITY_TARGETS.get((products, setting), {}).items():
                if not ours[metric] >= target:
                    missed.append(f"{products}/{setting}: {metric} {ours[metric]:.3f} < {target}")
    if not args.no_speed:
        for count, target in SPEED_TARGETS_MS.items():
            ms = time_queries(count, args.size)
            ok = ms <= target
            print(
                f"speed: {ms:.0f} ms per query at {args.size} px with {count} template(s) "
                f"(target <= {target:.0f}) {'ok' if ok else 'MISS'}"
            )
            if not ok:
                missed.append(f"speed with {count} template(s): {ms:.0f} ms > {target:.0f} ms")
    if not args.no_calibration:
        missed += calibration_checks(args.size, args.held_out)
    print(f"load average after: {_load()}")
    if missed:
        print("\nMISSED TARGETS:\n  " + "\n  ".join(missed))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
