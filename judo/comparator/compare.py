"""compare(query, template): the training-free juxtaposed comparison, end to end.

Steps: bring both images to one analysis format (prepare.py), register the template onto the query
(register.py), undo global brightness/contrast, measure colour/texture/structure differences at
several scales (features.py), pool them onto the judo.grid 16x16 cells and select cells with a
pair-adaptive threshold (threshold.py). Bad input never crashes the comparison: it is reported in
`warnings` and, where no meaningful comparison exists, by `valid=False`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image

from judo.comparator.bank import Bank, appearance_distance, as_bank, load_normal, normal_trees
from judo.comparator.calibration import (
    DEFAULT_FALSE_ALARM_RATE,
    FEW_NORMALS,
    MIN_NORMALS,
    Calibration,
)
from judo.comparator.calibration import calibrate as calibrate_bank
from judo.comparator.features import SPREAD, DifferenceMaps, difference_maps, match_photometry
from judo.comparator.matching import MAX_APPEARANCE_DISTANCE, agreement_map, descriptors
from judo.comparator.pose import POSE_SIZE, foreground
from judo.comparator.prepare import ANALYSIS_SIZE, LUMA, Prepared, as_gray_rgb, prepare
from judo.comparator.register import MIN_SIMILARITY, Registration, register, warp_template
from judo.comparator.texture import foreign_map
from judo.comparator.threshold import adaptive_threshold, pool_cells, select_cells
from judo.grid import GRID_SIZE, Cell
from judo.images import ImageSource

#: Aspect ratios that differ by more than this (relative) get a warning: stretching both to a
#: square distorts one of them more than registration can absorb.
ASPECT_TOLERANCE = 0.05
#: Gate the precise per-cell maps with the non-local agreement test (matching.py), except for a pair
#: whose fine detail lines up (detail_alignment >= DETAIL_ALIGNED): the same part re-shot, where the
#: precise maps are right and the gate only hides defects on a random surface. Measured at 448 px on
#: bench/comparator.py's cases: the same part re-shot 0.81-0.99 (real photos 0.96-0.99), another
#: sample of the product 0.5-0.92 (procedural pills, cans, screws; surfaces about 0).
USE_AGREEMENT, DETAIL_ALIGNED, DETAIL_SIGMA = True, 0.93, 2.0
#: With a bank, each query is registered to and measured against this many of its normals: those
#: whose looks are nearest the query's (bank.appearance_distance).
NEAREST_NORMALS = 4
#: With a bank, a normal speaks for a cell only where its registered picture covers at least this share
#: of the cell: elsewhere it has seen nothing there (features.py reads "no difference" outside the
#: covered area), and taking the least different normal per cell would let that silence hide a defect.
MIN_CELL_COVERAGE = 0.5


@dataclass
class ComparisonResult:
    """What the comparator measured for one query/template pair.

    scores: (16, 16) cell scores in threshold units: >= 1.0 is anomalous, 0 is "like the template".
    cells: the anomalous judo.grid cells (row, col). heatmap: (H, W) at query resolution in [0, 1],
    0.5 being the threshold. registration: how the template was aligned. valid: False when no
    meaningful comparison exists (a blank image, a template of another product); then `cells` is
    empty or untrustworthy and the answer helpers abstain. warnings: plain sentences for the user.
    feature_scores: per measurement ("colour_fine", "colour_coarse", "texture") the (16, 16) cell
    maxima in noise units; brightness: (16, 16) mean grey change (query minus template, > 0 =
    brighter); texture: (16, 16) mean log gradient-energy ratio (> 0 = more edges, < 0 = structure
    missing). appearance_distance: median distance of the query's local looks to their nearest
    look-alikes in the template (matching.py; large = probably another product).
    values: (16, 16) cell values in noise units before thresholding (scores = values / threshold);
    base_threshold: the threshold at sensitivity 1; threshold = base_threshold / sensitivity;
    borderline: cells within threshold.BORDERLINE_BAND of the threshold (either side);
    pixel_values: the analysis-size map the heat map is drawn from; normals_used: the names of the
    bank's normals the cells were judged against; bank_size: how many normals the bank had.
    With a bank, feature_scores, brightness and texture come, cell by cell, from the normal that
    explains the cell best; registration is the nearest normal's.
    """

    scores: np.ndarray
    cells: set[Cell]
    heatmap: np.ndarray
    registration: Registration
    valid: bool
    warnings: list[str] = field(default_factory=list)
    feature_scores: dict[str, np.ndarray] = field(default_factory=dict)
    brightness: np.ndarray = field(default_factory=lambda: np.zeros((GRID_SIZE, GRID_SIZE)))
    texture: np.ndarray = field(default_factory=lambda: np.zeros((GRID_SIZE, GRID_SIZE)))
    threshold: float = 0.0
    query_size: tuple[int, int] = (0, 0)
    appearance_distance: float = 0.0
    elapsed_ms: float = 0.0
    values: np.ndarray = field(default_factory=lambda: np.zeros((GRID_SIZE, GRID_SIZE)))
    base_threshold: float = 0.0
    sensitivity: float = 1.0
    borderline: set[Cell] = field(default_factory=set)
    pixel_values: np.ndarray | None = None
    normals_used: list[str] = field(default_factory=list)
    bank_size: int = 1
    calibration: Calibration | None = None
    false_alarm_rate: float | None = None

    @property
    def is_anomalous(self) -> bool:
        return bool(self.cells)

    @property
    def max_score(self) -> float:
        return float(self.scores.max()) if self.scores.size else 0.0

    @property
    def borderline_decision(self) -> bool:
        """True when the Yes/No verdict rests on borderline cells only (or is No with borderline
        cells just below the threshold): a small change of sensitivity would flip it."""
        return bool(self.borderline) and (not self.cells or self.cells <= self.borderline)

    def rethreshold(
        self, sensitivity: float = 1.0, false_alarm_rate: float | None = None
    ) -> ComparisonResult:
        """The same comparison at another sensitivity (and, for a calibrated bank, another false-alarm
        rate), without recomputing anything: the cells, the borderline cells and the heat map follow
        from the kept cell values (`values`)."""
        if not self.valid or self.base_threshold <= 0:
            return replace(self, sensitivity=sensitivity)
        base, rate = self.base_threshold, self.false_alarm_rate
        if false_alarm_rate is not None and self.calibration is not None:
            base, rate = (
                calibrated_threshold(self.calibration, false_alarm_rate, self.values),
                false_alarm_rate,
            )
        selection = select_cells(self.values, base, sensitivity)
        heatmap = self.heatmap
        if self.pixel_values is not None:
            heatmap = _heatmap(self.pixel_values, selection.threshold, self.query_size)
        return replace(
            self,
            scores=selection.scores,
            cells=selection.cells,
            borderline=selection.borderline,
            threshold=selection.threshold,
            sensitivity=sensitivity,
            heatmap=heatmap,
            base_threshold=base,
            false_alarm_rate=rate,
        )


def _input_warnings(q: Prepared, t: Prepared) -> list[str]:
    notes = []
    (qw, qh), (tw, th) = q.original_size, t.original_size
    if abs((qw / qh) / (tw / th) - 1.0) > ASPECT_TOLERANCE:
        notes.append(
            f"the images have different aspect ratios ({qw}x{qh} vs {tw}x{th}); both were stretched to a "
            "square, so alignment and cell positions are approximate"
        )
    if q.is_gray != t.is_gray:
        which = "query" if q.is_gray else "template"
        notes.append(f"the {which} is greyscale and the other image is colour: compared in grey levels only")
    return notes


def _empty(q: Prepared, reason: str, notes: list[str]) -> ComparisonResult:
    width, height = q.original_size
    zeros = np.zeros((GRID_SIZE, GRID_SIZE))
    reg = Registration(np.eye(3), False, 0.0, "identity", reason)
    return ComparisonResult(
        scores=zeros,
        cells=set(),
        heatmap=np.zeros((height, width), np.float32),
        registration=reg,
        valid=False,
        warnings=[*notes, reason],
        query_size=q.original_size,
    )


def _heatmap(combined: np.ndarray, threshold: float, size: tuple[int, int]) -> np.ndarray:
    """Pixel map -> [0, 1] at query resolution, 0.5 at the cell threshold (bilinear upsampling)."""
    scaled = np.clip(combined / (2.0 * threshold), 0.0, 1.0).astype(np.float32)
    if scaled.shape[::-1] == size:
        return scaled
    return np.asarray(Image.fromarray(scaled).resize(size, Image.BILINEAR), dtype=np.float32)


def _ycc(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2YCrCb)


def _pooled(maps: DifferenceMaps) -> dict[str, np.ndarray]:
    """Per-map cell maxima, each ignoring the rim its own smoothing spills into a cell."""
    return {name: pool_cells(m, margin=SPREAD[name]) for name, m in maps.maps.items()}


@dataclass
class PairEvidence:
    """What one registered normal says about every cell of the query (all in the query's frame).

    evidence: (16, 16) cell values in noise units (the precise maps gated by the agreement test) before
    any threshold; combined: the (N, N) pixel map the heat map is drawn from; covered: (N, N) pixels
    the registered normal covers; coverage: (16, 16) the covered share of each cell.
    """

    evidence: np.ndarray
    combined: np.ndarray
    covered: np.ndarray
    coverage: np.ndarray
    pooled: dict[str, np.ndarray]
    brightness: np.ndarray
    texture: np.ndarray
    registration: Registration
    appearance: float
    valid: bool
    notes: list[str]


def detail_alignment(q_gray: np.ndarray, warped_gray: np.ndarray, covered: np.ndarray) -> float:
    """Correlation of the two pictures' fine detail (grey minus its DETAIL_SIGMA blur) over the covered
    area: about 1 when the very same grain, speckles and print lie on each other, about 0 for another
    piece of a random surface."""
    if covered.sum() < 16:
        return 0.0
    a, b = (x - cv2.GaussianBlur(x, (0, 0), DETAIL_SIGMA) for x in (q_gray, warped_gray))
    a, b = a[covered], b[covered]
    if a.std() < 1e-4 or b.std() < 1e-4:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def blank_reason(q: Prepared, t: Prepared) -> str | None:
    """Why a pair cannot be compared at all (a blank picture), or None."""
    if q.is_blank and t.is_blank:
        return "both images are blank (uniform): nothing to compare"
    if t.is_blank:
        return "the template is blank (uniform): nothing to compare against"
    if q.is_blank:
        return "the query image is blank (uniform): nothing to inspect"
    return None


def pair_evidence(q: Prepared, t: Prepared) -> PairEvidence:
    """Register `t` onto `q` and measure every cell against it (both already prepared, neither blank)."""
    notes: list[str] = []
    reg = register(q.gray, t.gray)
    if reg.message:
        notes.append(reg.message)
    q_rgb, t_rgb = (as_gray_rgb(q), as_gray_rgb(t)) if (q.is_gray or t.is_gray) else (q.rgb, t.rgb)
    warped, covered = warp_template(t_rgb, reg)
    matched = match_photometry(warped, q_rgb, covered)
    maps = difference_maps(q_rgb, matched, covered)
    pooled = _pooled(maps)
    precise = np.maximum.reduce(list(pooled.values()))
    # A cell is anomalous only where the local look is also absent from the template's neighbourhood.
    alternatives = []
    for pose in reg.alternatives:  # the template in other plausible poses (register.py)
        alt, alt_covered = warp_template(t_rgb, reg, pose)
        alternatives.append((_ycc(match_photometry(alt, q_rgb, alt_covered)), alt_covered))
    agreement_pixels, appearance = agreement_map(_ycc(q_rgb), _ycc(matched), covered, alternatives)
    agreement = pool_cells(agreement_pixels)
    valid = True
    if reg.similarity < MIN_SIMILARITY:
        if appearance > MAX_APPEARANCE_DISTANCE:
            valid = False
            notes.append(
                f"low similarity (correlation {reg.similarity:.2f}, appearance distance {appearance:.3f}): "
                "the template may not show the same product; the comparison is not meaningful"
            )
        else:
            notes.append(
                "the template does not line up pixel for pixel (another sample or another pose); "
                "judged by local appearance"
            )
    pooled["agreement"] = agreement
    # The warped template's grey level is its warped RGB's (both linear): no second warp.
    gate = USE_AGREEMENT and detail_alignment(q.gray, warped @ LUMA, covered) < DETAIL_ALIGNED
    return PairEvidence(
        evidence=np.minimum(precise, agreement) if gate else precise,
        combined=maps.combined,
        covered=covered,
        coverage=pool_cells(covered.astype(np.float32), stat="mean"),
        pooled=pooled,
        brightness=pool_cells(maps.brightness, stat="mean"),
        texture=pool_cells(maps.texture_sign, stat="mean"),
        registration=reg,
        appearance=appearance,
        valid=valid,
        notes=notes,
    )


def _choose(q: Prepared, bank: Bank, count: int) -> list[int]:
    """The `count` normals whose local looks are nearest the query's (bank order on ties): the
    evidence is taken against them only, so the cost per query stops growing with the bank."""
    if len(bank) <= count:
        return list(range(len(bank)))
    thumb = descriptors(_ycc(q.rgb))
    distance = [appearance_distance(thumb, n.thumb) for n in bank.normals]
    return sorted(int(i) for i in np.argsort(distance, kind="stable")[:count])


def _single(template: ImageSource, size: int) -> Bank:
    """A one-picture bank that keeps the picture's own error and its blankness (reported by compare)."""
    return Bank([load_normal(template, "template", size)], size=size)


def _where_seen(maps: list[np.ndarray], seen: list[np.ndarray]) -> np.ndarray:
    """The stacked maps of several normals, each set to +inf where that normal has not seen the place
    (`seen` False), except where no normal has: there all keep their value (as one template does)."""
    stack = np.stack(maps)
    if len(maps) == 1:
        return stack
    masked = np.where(np.stack(seen), stack, np.inf)
    unseen = ~np.stack(seen).any(axis=0)
    masked[:, unseen] = stack[:, unseen]
    return masked


def _per_cell(maps: list[np.ndarray], best: np.ndarray) -> np.ndarray:
    """Cell by cell, the value of the normal that explains the cell best."""
    return np.take_along_axis(np.stack(maps), best[None], axis=0)[0]


def compare(
    query: ImageSource,
    template: ImageSource | Sequence[ImageSource] | Bank,
    *,
    size: int = ANALYSIS_SIZE,
    sensitivity: float = 1.0,
    false_alarm_rate: float | None = None,
    calibrate: bool = True,
    nearest: int = NEAREST_NORMALS,
) -> ComparisonResult:
    """Compare a query with one normal template of the same product, or with a bank of them.

    `template`: one picture (any size, colour or grey), a list of pictures, or a built Bank. With
    several, each cell is judged against the normals that explain it best (the `nearest` normals
    whose looks are closest to the query, registered one by one; per cell the least different).
    A bank of MIN_NORMALS or more is calibrated on itself (calibration.py; `calibrate=False` keeps
    the pair-adaptive threshold) and thresholded for `false_alarm_rate` false cells per good part
    (default calibration.DEFAULT_FALSE_ALARM_RATE). `sensitivity` divides the threshold
    (ComparisonResult.rethreshold gives the same at no cost).
    Raises judo.images.ImageInputError only for input that is not a readable image at all (and a
    bank with no readable picture); CalibrationError for a rate outside (0, 256).
    """
    start = time.perf_counter()
    bank = as_bank(template, size) if isinstance(template, (list, tuple, Bank)) else _single(template, size)
    result = compare_prepared(
        prepare(query, size),
        bank,
        sensitivity=sensitivity,
        false_alarm_rate=false_alarm_rate,
        calibrate=calibrate,
        nearest=nearest,
    )
    result.elapsed_ms = (time.perf_counter() - start) * 1000.0
    return result


def bank_calibration(bank: Bank, calibrate: bool = True) -> Calibration | None:
    """The bank's own calibration: attached, or computed (cached) when the bank is large enough."""
    if bank.calibration is not None:
        return bank.calibration
    if calibrate and len(bank) >= MIN_NORMALS:
        return calibrate_bank(bank)
    return None


def compare_prepared(
    q: Prepared,
    bank: Bank,
    *,
    sensitivity: float = 1.0,
    false_alarm_rate: float | None = None,
    calibrate: bool = True,
    nearest: int = NEAREST_NORMALS,
) -> ComparisonResult:
    """`compare` for a query already prepared at the bank's analysis size."""
    chosen = [bank.normals[i] for i in _choose(q, bank, nearest)]
    notes = list(bank.warnings)
    for n in chosen:
        notes += [w for w in _input_warnings(q, n.prepared) if w not in notes]
    reason = blank_reason(q, chosen[0].prepared)  # a bank's normals are never blank (bank.py)
    if reason:
        return _empty(q, reason, notes)
    calibration = bank_calibration(bank, calibrate)
    rate = DEFAULT_FALSE_ALARM_RATE if false_alarm_rate is None else false_alarm_rate
    if calibration is not None:
        notes += [w for w in calibration.warnings if w not in notes]
    pairs = [pair_evidence(q, n.prepared) for n in chosen]
    usable = [p for p in pairs if p.valid] or pairs
    for p in usable:
        notes += [w for w in p.notes if w not in notes]
    seen = [p.coverage >= MIN_CELL_COVERAGE for p in usable]
    evidence = _where_seen([p.evidence for p in usable], seen)
    best = np.argmin(evidence, axis=0)
    values = np.take_along_axis(evidence, best[None], axis=0)[0]
    combined = _where_seen([p.combined for p in usable], [p.covered for p in usable]).min(axis=0)
    on_object = object_cells(q)  # None: a surface filling the frame
    if len(bank) > 1 and on_object is None:
        # A surface: a look-alike anywhere on the nearest normals explains a place, also where no
        # registered normal covers it.
        foreign = foreign_map(_ycc(q.rgb), [normal_trees(n) for n in chosen])
        unseen = ~np.stack(seen).any(axis=0)
        values = np.where(unseen, pool_cells(foreign), np.minimum(values, pool_cells(foreign)))
        side = combined.shape[0]
        combined = np.minimum(combined, cv2.resize(foreign, (side, side), interpolation=cv2.INTER_LINEAR))
    names = usable[0].pooled.keys()
    base = calibrated_threshold(calibration, rate, values, on_object)
    selection = select_cells(values, base, sensitivity)
    return ComparisonResult(
        scores=selection.scores,
        cells=selection.cells,
        heatmap=_heatmap(combined, selection.threshold, q.original_size),
        registration=usable[0].registration,
        valid=any(p.valid for p in pairs),
        appearance_distance=min(p.appearance for p in usable),
        warnings=notes,
        feature_scores={k: _per_cell([p.pooled[k] for p in usable], best) for k in names},
        brightness=_per_cell([p.brightness for p in usable], best),
        texture=_per_cell([p.texture for p in usable], best),
        threshold=selection.threshold,
        query_size=q.original_size,
        values=values,
        base_threshold=base,
        sensitivity=sensitivity,
        borderline=selection.borderline,
        pixel_values=combined,
        normals_used=[n.name for n, p in zip(chosen, pairs, strict=True) if any(p is u for u in usable)],
        bank_size=len(bank),
        calibration=calibration,
        false_alarm_rate=rate if calibration is not None else None,
    )


def object_cells(q: Prepared) -> np.ndarray | None:
    """(16, 16) the cells mostly on the object of a picture that shows one object on a plain background
    (pose.foreground), else None. The pair-adaptive noise floor is measured there: the empty background
    agrees with any template and would set the floor at nothing, so that an object's ordinary
    part-to-part variation (a pill's speckles) would read as defects."""
    mask = foreground(cv2.resize(q.gray, (POSE_SIZE, POSE_SIZE), interpolation=cv2.INTER_AREA))
    return None if mask is None else pool_cells(mask.astype(np.float32), stat="mean") >= 0.5


def calibrated_threshold(
    calibration: Calibration | None, rate: float, values: np.ndarray, where: np.ndarray | None = None
) -> float:
    """The threshold at sensitivity 1: the calibration's for `rate` (as measured on the bank: no floor,
    or the rate would not be the one asked for), or the pair-adaptive rule without a calibration (its
    noise floor over the cells `where`: object_cells)."""
    if calibration is None:
        return adaptive_threshold(values, where)
    if calibration.normals < FEW_NORMALS:  # a small bank's tail is a guess: no lower than what it saw
        return max(calibration.threshold(rate), calibration.max_value)
    return calibration.threshold(rate)
