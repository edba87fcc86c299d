"""Non-local agreement: does the query's local appearance occur *near* the same place in the template?

Why: a real template is another sample of the product, not the same photo. Pills carry a different
speckle pattern, a hazelnut's outline wanders a little, a carpet's fibres never line up: the precise
pixel maps (features.py) flag all of that. A defect, in contrast, looks like nothing in the template's
neighbourhood. So every location is described by a small appearance vector (mean colour and local
contrast over a 4x4 px block at 64x64), and its distance to the *closest* template vector within a
search radius of about one grid cell is measured (both ways: what the query has and the template
lacks, and the reverse). A cell is only called anomalous when both the precise maps and this
agreement test say so: localisation stays sharp, and normal part-to-part variation is ignored.
Where the template is unlike itself from place to place (random fine texture such as speckles) the
test tolerates as much difference as the template shows internally (_self_tolerance); the template
may also be given in several poses, and a look present in any of them agrees.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Side of the descriptor grid (4x4 analysis pixels per descriptor at 256 px).
MATCH_SIZE = 64
#: Search radius in descriptor pixels (4 = 16 analysis px = one grid cell).
MATCH_RADIUS = 4
#: Offsets searched: all within FINE_RADIUS, every FAR_STEP-th beyond (see _offsets: half the cost).
FINE_RADIUS, FAR_STEP = 2, 2
#: Self-similarity tolerance (see _self_tolerance): offsets within SELF_EXCLUDE are the look's own
#: blur, not a look-alike; the tolerance is SELF_FACTOR x that distance averaged over +-SELF_SPREAD.
SELF_EXCLUDE, SELF_FACTOR, SELF_SPREAD = 1, 2.0, 4
#: Absolute noise floor of the distance ([0, 1] colour units) and the pair-noise rule (as features.py).
MATCH_FLOOR, NOISE_QUANTILE, NOISE_FACTOR = 0.03, 0.75, 2.5
#: Median distance above which most of the query has no look-alike near it in the template: another
#: product. Measured on the synthetic categories: other samples of the same product <= 0.016,
#: other products mostly >= 0.03 (two plain textures of similar tone can fall below: a known limit).
MAX_APPEARANCE_DISTANCE = 0.02
#: Weights of the descriptor channels: Y, Cr, Cb, local contrast (chroma is numerically small).
WEIGHTS = np.array([1.0, 2.0, 2.0, 1.5], np.float32)
#: Sub-block shifts (analysis px) at which the compared-against image is also described: a small
#: feature such as a speckle looks different depending on where it falls in a 4x4 block, so a
#: look-alike is searched for at half-block phases too (every position then lies within 1 px of one).
PHASES = ((0, 0), (0, 2), (2, 0), (2, 2))


def descriptors(ycc: np.ndarray, size: int = MATCH_SIZE) -> np.ndarray:
    """(N, N, 3) YCrCb -> (size, size, 4): block-mean Y, Cr, Cb and the block's standard deviation of Y."""
    mean = cv2.resize(ycc, (size, size), interpolation=cv2.INTER_AREA)
    sq = cv2.resize(ycc[:, :, 0] ** 2, (size, size), interpolation=cv2.INTER_AREA)
    std = np.sqrt(np.maximum(sq - mean[:, :, 0] ** 2, 0.0))
    return np.dstack([mean, std]).astype(np.float32) * WEIGHTS


def phased_descriptors(ycc: np.ndarray) -> list[np.ndarray]:
    """`descriptors` of the image shifted by each of PHASES (content moved up/left, border mirrored)."""
    out = []
    for dy, dx in PHASES:
        shifted = cv2.copyMakeBorder(ycc, 0, dy, 0, dx, cv2.BORDER_REFLECT)[dy:, dx:] if dy or dx else ycc
        out.append(descriptors(shifted))
    return out


def _offsets(radius: int) -> list[tuple[int, int]]:
    """Search offsets: every one within FINE_RADIUS, every FAR_STEP-th beyond (descriptors are
    block means, so neighbours barely differ: the far ring needs no full sampling)."""
    span = range(-radius, radius + 1)
    fine = [(dy, dx) for dy in span for dx in span if max(abs(dy), abs(dx)) <= FINE_RADIUS]
    coarse = span[::FAR_STEP]
    far = [(dy, dx) for dy in coarse for dx in coarse if max(abs(dy), abs(dx)) > FINE_RADIUS]
    return fine + far


def nearest_distance(a: np.ndarray, b: np.ndarray, radius: int, exclude: int = -1) -> np.ndarray:
    """For every descriptor of `a`, the Euclidean distance to the closest descriptor of `b` within
    `radius` (a square window; `b` mirrored at its borders), skipping offsets within `exclude`."""
    n = a.shape[0]
    padded = cv2.copyMakeBorder(b, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    best = np.full(a.shape[:2], np.inf, np.float32)
    for dy, dx in _offsets(radius):
        if max(abs(dy), abs(dx)) <= exclude:
            continue
        diff = a - padded[radius + dy : radius + dy + n, radius + dx : radius + dx + n]
        np.minimum(best, np.einsum("ijk,ijk->ij", diff, diff), out=best)
    return np.sqrt(best)


def _covered(valid: np.ndarray) -> np.ndarray:
    return cv2.resize(valid.astype(np.uint8), (MATCH_SIZE, MATCH_SIZE), interpolation=cv2.INTER_NEAREST) > 0


def agreement_map(
    query_ycc: np.ndarray,
    template_ycc: np.ndarray,
    valid: np.ndarray,
    alternatives: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> tuple[np.ndarray, float]:
    """(64, 64) non-local difference in noise units (1 = this pair's ordinary variation), and the
    median raw distance: how unlike the template the query looks overall (see MAX_APPEARANCE_DISTANCE).

    `alternatives`: the template in other plausible poses, (YCrCb, covered) each. A location counts
    as agreeing when its look is present nearby in *any* pose: a can's pull tab agrees with the
    template turned to the tab's angle, the lid around it with the upright template.
    """
    query_phases = phased_descriptors(query_ycc)

    def two_way(template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The worse of both directions per location: (block phase only, best of all phases)."""
        template_phases = phased_descriptors(template)
        forward = [nearest_distance(query_phases[0], t, MATCH_RADIUS) for t in template_phases]
        backward = [nearest_distance(template_phases[0], q, MATCH_RADIUS) for q in query_phases]
        plain = np.maximum(forward[0], backward[0])
        return plain, np.maximum(np.minimum.reduce(forward), np.minimum.reduce(backward))

    covered = _covered(valid)
    plain, dist = two_way(template_ycc)
    # Product check at block phase only: MAX_APPEARANCE_DISTANCE was measured that way.
    median = float(np.median(plain[covered])) if covered.any() else 0.0
    for other_ycc, other_valid in alternatives:
        other = two_way(other_ycc)[1]
        other[~_covered(other_valid)] = np.inf
        np.minimum(dist, other, out=dist)
    dist[~covered] = 0.0
    typical = float(np.quantile(dist[covered], NOISE_QUANTILE)) if covered.any() else 0.0
    return dist / np.maximum(max(MATCH_FLOOR, NOISE_FACTOR * typical), _self_tolerance(template_ycc)), median


def _self_tolerance(template_ycc: np.ndarray) -> np.ndarray:
    """How unlike its own surroundings the template already is, per location: the distance of each
    template look to its nearest look-alike a little further away (not its immediate neighbours),
    spread over one search window. Plain surfaces and edges resemble themselves (about 0, no loss of
    sensitivity); random fine texture (a pill's speckles, fibres) does not, and there a query look
    only counts as foreign when it is further from the template than the template is from itself."""
    dt = descriptors(template_ycc)
    own = nearest_distance(dt, dt, MATCH_RADIUS, exclude=SELF_EXCLUDE)
    size = 2 * SELF_SPREAD + 1
    # The local mean, not the maximum: a few unique looks (a part's outline, a thread) must not
    # make a whole neighbourhood tolerant, a field of them (speckles) should.
    return SELF_FACTOR * cv2.blur(own, (size, size), borderType=cv2.BORDER_REFLECT)
