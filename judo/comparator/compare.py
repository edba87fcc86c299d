"""compare(query, template): the training-free juxtaposed comparison, end to end.

Steps: bring both images to one analysis format (prepare.py), register the template onto the query
(register.py), undo global brightness/contrast, measure colour/texture/structure differences at
several scales (features.py), pool them onto the judo.grid 16x16 cells and select cells with a
pair-adaptive threshold (threshold.py). Bad input never crashes the comparison: it is reported in
`warnings` and, where no meaningful comparison exists, by `valid=False`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from judo.comparator.features import SPREAD, DifferenceMaps, difference_maps, match_photometry
from judo.comparator.matching import MAX_APPEARANCE_DISTANCE, agreement_map
from judo.comparator.prepare import ANALYSIS_SIZE, Prepared, as_gray_rgb, prepare
from judo.comparator.register import MIN_SIMILARITY, Registration, register, warp_template
from judo.comparator.threshold import pool_cells, select_cells
from judo.grid import GRID_SIZE, Cell
from judo.images import ImageSource

#: Aspect ratios that differ by more than this (relative) get a warning: stretching both to a
#: square distorts one of them more than registration can absorb.
ASPECT_TOLERANCE = 0.05
#: Gate the precise per-cell maps with the non-local agreement test (matching.py).
USE_AGREEMENT = True


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

    @property
    def is_anomalous(self) -> bool:
        return bool(self.cells)

    @property
    def max_score(self) -> float:
        return float(self.scores.max()) if self.scores.size else 0.0


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


def compare(query: ImageSource, template: ImageSource, *, size: int = ANALYSIS_SIZE) -> ComparisonResult:
    """Compare a query with a normal template of the same product (any sizes, colour or grey).

    Raises judo.images.ImageInputError only for input that is not a readable image at all.
    """
    start = time.perf_counter()
    q, t = prepare(query, size), prepare(template, size)
    notes = _input_warnings(q, t)
    if q.is_blank and t.is_blank:
        return _empty(q, "both images are blank (uniform): nothing to compare", notes)
    if t.is_blank:
        return _empty(q, "the template is blank (uniform): nothing to compare against", notes)
    if q.is_blank:
        return _empty(q, "the query image is blank (uniform): nothing to inspect", notes)

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
    selection = select_cells(np.minimum(precise, agreement) if USE_AGREEMENT else precise)
    pooled["agreement"] = agreement
    result = ComparisonResult(
        scores=selection.scores,
        cells=selection.cells,
        heatmap=_heatmap(maps.combined, selection.threshold, q.original_size),
        registration=reg,
        valid=valid,
        appearance_distance=appearance,
        warnings=notes,
        feature_scores=pooled,
        brightness=pool_cells(maps.brightness, stat="mean"),
        texture=pool_cells(maps.texture_sign, stat="mean"),
        threshold=selection.threshold,
        query_size=q.original_size,
    )
    result.elapsed_ms = (time.perf_counter() - start) * 1000.0
    return result
