"""Non-local agreement: does the query's local appearance occur *near* the same place in the template?

Why: a real template is another sample of the product, not the same photo. Pills carry a different
speckle pattern, a hazelnut's outline wanders a little, a carpet's fibres never line up: the precise
pixel maps (features.py) flag all of that. A defect, in contrast, looks like nothing in the template's
neighbourhood. So every location is described by a small appearance vector (mean colour and local
contrast over a 4x4 px block at 64x64), and its distance to the *closest* template vector within a
search radius of about one grid cell is measured (both ways: what the query has and the template
lacks, and the reverse). A cell is only called anomalous when both the precise maps and this
agreement test say so: localisation stays sharp, and normal part-to-part variation is ignored.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Side of the descriptor grid (4x4 analysis pixels per descriptor at 256 px).
MATCH_SIZE = 64
#: Search radius in descriptor pixels (4 = 16 analysis px = one grid cell).
MATCH_RADIUS = 4
#: Absolute noise floor of the distance ([0, 1] colour units) and the pair-noise rule (as features.py).
MATCH_FLOOR, NOISE_QUANTILE, NOISE_FACTOR = 0.03, 0.75, 2.5
#: Median distance above which most of the query has no look-alike near it in the template: another
#: product. Measured on the synthetic categories: other samples of the same product <= 0.016,
#: other products mostly >= 0.03 (two plain textures of similar tone can fall below: a known limit).
MAX_APPEARANCE_DISTANCE = 0.02
#: Weights of the descriptor channels: Y, Cr, Cb, local contrast (chroma is numerically small).
WEIGHTS = np.array([1.0, 2.0, 2.0, 1.5], np.float32)


def descriptors(ycc: np.ndarray) -> np.ndarray:
    """(N, N, 3) YCrCb -> (64, 64, 4): block-mean Y, Cr, Cb and the block's standard deviation of Y."""
    mean = cv2.resize(ycc, (MATCH_SIZE, MATCH_SIZE), interpolation=cv2.INTER_AREA)
    sq = cv2.resize(ycc[:, :, 0] ** 2, (MATCH_SIZE, MATCH_SIZE), interpolation=cv2.INTER_AREA)
    std = np.sqrt(np.maximum(sq - mean[:, :, 0] ** 2, 0.0))
    return np.dstack([mean, std]).astype(np.float32) * WEIGHTS


def nearest_distance(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
    """For every descriptor of `a`, the Euclidean distance to the closest descriptor of `b` within
    `radius` (a square window; `b` mirrored at its borders)."""
    n = a.shape[0]
    padded = cv2.copyMakeBorder(b, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    best = np.full(a.shape[:2], np.inf, np.float32)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            diff = a - padded[dy : dy + n, dx : dx + n]
            np.minimum(best, np.einsum("ijk,ijk->ij", diff, diff), out=best)
    return np.sqrt(best)


def agreement_map(
    query_ycc: np.ndarray, template_ycc: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, float]:
    """(64, 64) non-local difference in noise units (1 = this pair's ordinary variation), and the
    median raw distance: how unlike the template the query looks overall (see MAX_APPEARANCE_DISTANCE).
    """
    dq, dt = descriptors(query_ycc), descriptors(template_ycc)
    dist = np.maximum(nearest_distance(dq, dt, MATCH_RADIUS), nearest_distance(dt, dq, MATCH_RADIUS))
    covered = (
        cv2.resize(valid.astype(np.uint8), (MATCH_SIZE, MATCH_SIZE), interpolation=cv2.INTER_NEAREST) > 0
    )
    dist[~covered] = 0.0
    typical = float(np.quantile(dist[covered], NOISE_QUANTILE)) if covered.any() else 0.0
    median = float(np.median(dist[covered])) if covered.any() else 0.0
    return dist / max(MATCH_FLOOR, NOISE_FACTOR * typical), median
