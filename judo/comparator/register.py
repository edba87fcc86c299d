"""Register the template onto the query with one global transform (OpenCV: phase correlation + ECC).

Why global: a dense flow field would happily bend the template until it matches the query, hiding
exactly the defects we are looking for. Real template pairs differ by a rigid motion of the camera or
part (a shift, a few degrees of rotation, a few percent of scale), so one transform is estimated:
phase correlation for the coarse shift, then OpenCV's ECC maximisation (enhanced correlation
coefficient, Evangelidis & Psarakis 2008) refines an affine motion coarse to fine. ECC maximises a
correlation coefficient, so it is indifferent to brightness and contrast changes; a small defect
barely moves the optimum. The result is reduced to the nearest similarity transform (rotation, one
scale, shift): what photos of one product really differ by, and it keeps a stray shear from
bending the borders. Every candidate (no motion, the shift alone, the refined motion) is scored by
the correlation it achieves and the best plausible one wins; failure falls back to no motion with
a warning rather than an exception.

Another sample of an object may lie at any angle (a screw, a can's pull tab): unless the near-upright
result already lines up pixel for pixel, whole-turn poses (pose.py) are tried as well. One of them
replaces the upright result when it correlates clearly better, and the runners-up are kept as
`alternatives`: a part can agree with the template in one pose (the pull tab) and its surroundings
in another (the lid under a fixed lamp).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from judo.comparator.pose import pose_candidates

#: Coarse-to-fine sizes (px) and ECC iterations per level.
LEVELS = ((64, 40), (128, 25))
#: Plausible motion between two photos of one product; beyond this we call registration failed.
MAX_ROTATION_DEG = 15.0
MAX_SCALE_CHANGE = 0.15
MAX_SHIFT_FRACTION = 0.25
#: Below this correlation the pair does not line up pixel for pixel (another product, another pose,
#: or another sample of a texture); compare.py then asks the appearance test which it is.
MIN_SIMILARITY = 0.3
#: A pair that already correlates this well needs no refinement to count as registered.
GOOD_SIMILARITY = 0.7
#: Pixels (at analysis size) along the edge of the warped template that are not judged.
EDGE_MARGIN = 3
#: A whole-turn pose (pose.py) replaces the near-upright registration only when it correlates this
#: much better: the lamp's shading stays put when the part turns, so a turned part correlates less.
TURNED_GAIN = 0.02
#: Above this correlation the near-upright registration is taken as exact: no whole-turn search.
ALIGNED_SIMILARITY = 0.985
#: Other poses kept as alternatives (a can's lid agrees with the upright template, its pull tab
#: with the turned one): at most ALT_COUNT, correlating at least ALT_MIN_SIMILARITY, each at least
#: ALT_SEPARATION_DEG away from the primary pose and from each other.
ALT_COUNT, ALT_MIN_SIMILARITY, ALT_SEPARATION_DEG = 2, 0.4, 10.0


@dataclass(frozen=True)
class Registration:
    """Template -> query alignment at analysis size.

    matrix: 3x3 homogeneous map from query (x, y) pixel coordinates to template coordinates (where
    to sample the template for each query pixel). success: a plausible alignment was found (else
    `matrix` is the identity). similarity: correlation of the registered grey images (1 = same
    picture; below MIN_SIMILARITY the two do not line up pixel for pixel). method: which
    candidate won ("ecc", "ecc-shift", "phase-correlation", "identity").
    """

    matrix: np.ndarray
    success: bool
    similarity: float
    method: str
    message: str | None = None
    #: Other plausible poses (3x3 maps like `matrix`): compare.py asks whether a local look is
    #: present near the same place in the template in *any* of them.
    alternatives: tuple[np.ndarray, ...] = ()

    @property
    def rotation_deg(self) -> float:
        return float(np.rad2deg(np.arctan2(self.matrix[1, 0], self.matrix[0, 0])))

    @property
    def scale(self) -> float:
        return float(np.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    @property
    def shift(self) -> tuple[float, float]:
        """Translation part of `matrix` (px at analysis size)."""
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])


def _resize(img: np.ndarray, n: int) -> np.ndarray:
    return img if img.shape[0] == n else cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA)


def _rescale(m: np.ndarray, factor: float) -> np.ndarray:
    """A 3x3 map expressed in pixel coordinates `factor` times larger (pixel centres kept)."""
    s = np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5], [0, 0, 1.0]])
    return s @ m @ np.linalg.inv(s)


def _nearest_similarity(m: np.ndarray, size: int) -> np.ndarray:
    """Closest rotation+scale to the affine part (polar decomposition), keeping where the centre goes."""
    u, sv, vt = np.linalg.svd(m[:2, :2])
    rot = u @ vt
    if np.linalg.det(rot) < 0:  # a mirror is never a plausible motion
        return m
    lin = rot * float(sv.mean())
    centre = np.full(2, (size - 1) / 2.0)
    out = np.eye(3)
    out[:2, :2] = lin
    out[:2, 2] = m[:2, :2] @ centre + m[:2, 2] - lin @ centre
    return out


def _angle(m: np.ndarray) -> float:
    return float(np.rad2deg(np.arctan2(m[1, 0], m[0, 0])))


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _plausible(m: np.ndarray, size: int) -> bool:
    if not np.all(np.isfinite(m)):
        return False
    scale = np.hypot(m[0, 0], m[1, 0])
    rotation = abs(np.rad2deg(np.arctan2(m[1, 0], m[0, 0])))
    centre = np.full(2, (size - 1) / 2.0)
    moved = np.abs(m[:2, :2] @ centre + m[:2, 2] - centre)
    return (
        rotation <= MAX_ROTATION_DEG
        and abs(scale - 1.0) <= MAX_SCALE_CHANGE
        and bool(np.all(moved <= MAX_SHIFT_FRACTION * size))
    )


def _warp(img: np.ndarray, m: np.ndarray, border: float = np.nan) -> np.ndarray:
    """Resample `img` at m(x) for every pixel x (bilinear); `border` where m(x) falls outside."""
    n = img.shape[0]
    return cv2.warpAffine(
        img,
        m[:2].astype(np.float64),
        (n, n),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def _correlation(q: np.ndarray, t: np.ndarray, m: np.ndarray) -> float:
    """Pearson correlation of q and the warped t over the pixels t covers."""
    warped = _warp(t, m)
    valid = ~np.isnan(warped)
    if valid.sum() < 0.25 * valid.size:
        return -1.0
    x, y = q[valid].astype(np.float64), warped[valid].astype(np.float64)
    sx, sy = x.std(), y.std()
    if sx < 1e-6 or sy < 1e-6:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def _phase_shift(q: np.ndarray, t: np.ndarray) -> np.ndarray:
    n = q.shape[0]
    (dx, dy), _ = cv2.phaseCorrelate(q, t, cv2.createHanningWindow((n, n), cv2.CV_32F))
    m = np.eye(3)
    m[0, 2], m[1, 2] = dx, dy
    return m


def _ecc(
    q_full: np.ndarray,
    t_full: np.ndarray,
    start: np.ndarray,
    start_size: int,
    motion: int = cv2.MOTION_AFFINE,
) -> np.ndarray | None:
    """Coarse-to-fine ECC from `start` (given at `start_size`); None when it does not converge or
    wanders off to an implausible motion."""
    m, size = start, start_size
    refined_once = False
    for n, iterations in LEVELS:
        m = _rescale(m, n / size)
        size = n
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5)
        try:
            _, warp = cv2.findTransformECC(
                _resize(q_full, n),
                _resize(t_full, n),
                m[:2].astype(np.float32),
                motion,
                criteria,
                None,
                3,
            )
        except cv2.error:  # "the algorithm stopped before its convergence": correlation did not improve
            if not refined_once:
                return None
            break  # keep the coarser level's estimate
        candidate = np.vstack([warp.astype(np.float64), [0.0, 0.0, 1.0]])
        if not _plausible(candidate, n):
            return None
        m, refined_once = candidate, True
    return _rescale(m, q_full.shape[0] / size)


def register(query_gray: np.ndarray, template_gray: np.ndarray) -> Registration:
    """Estimate the template -> query alignment of two equally sized square grey float32 images."""
    size = query_gray.shape[0]
    q, t = query_gray.astype(np.float32), template_gray.astype(np.float32)
    judge = LEVELS[-1][0]  # candidates are compared at the finest ECC level: fast and sharp enough
    qj, tj = _resize(q, judge), _resize(t, judge)

    coarse = LEVELS[0][0]
    shift = _phase_shift(_resize(q, coarse), _resize(t, coarse))
    candidates = {"identity": np.eye(3), "phase-correlation": _rescale(shift, size / coarse)}
    refined = _ecc(q, t, shift, coarse)
    if refined is not None:
        candidates["ecc"] = _nearest_similarity(refined, size)
    else:
        # Round parts leave the rotation free and the affine fit may drift off: refine the shift alone.
        refined = _ecc(q, t, shift, coarse, cv2.MOTION_TRANSLATION)
        if refined is not None:
            candidates["ecc-shift"] = refined

    scored = {
        name: _correlation(qj, tj, _rescale(m, judge / size))
        for name, m in candidates.items()
        if _plausible(m, size)
    }
    best = max(scored, key=lambda name: scored[name])
    # Prefer doing nothing unless moving clearly helps: a blank-ish pair correlates by chance.
    if scored[best] < scored["identity"] + 0.005:
        best = "identity"
    similarity, matrix, method = scored[best], candidates[best], best
    success = refined is not None or similarity >= GOOD_SIMILARITY
    # A pair that already lines up pixel for pixel (the same part photographed again) needs no turn.
    turned = _turned_poses(q, t, qj, tj) if similarity < ALIGNED_SIMILARITY else []
    if turned and turned[0][0] > similarity + TURNED_GAIN:  # the part lies at another angle
        similarity, matrix = turned[0]
        method, success = "pose-search", True
    alternatives: list[np.ndarray] = []
    for score, pose in [(scored[best], candidates[best]), *turned]:
        if score >= ALT_MIN_SIMILARITY and all(
            _angle_gap(_angle(pose), _angle(k)) >= ALT_SEPARATION_DEG for k in [matrix, *alternatives]
        ):
            alternatives.append(pose)
        if len(alternatives) == ALT_COUNT:
            break
    message = None if success else "registration failed: no alignment improved the match; compared unaligned"
    return Registration(matrix, success, similarity, method, message, tuple(alternatives))


def _turned_poses(
    q: np.ndarray, t: np.ndarray, qj: np.ndarray, tj: np.ndarray
) -> list[tuple[float, np.ndarray]]:
    """Whole-turn starting poses (pose.py) with their shift corrected by phase correlation of the
    turned template (robust to the lamp's shading, which ECC would chase into a wrong angle), scored
    by the correlation they reach at the judging size, best first."""
    size, coarse, judge = q.shape[0], LEVELS[0][0], qj.shape[0]
    qc, tc = _resize(q, coarse), _resize(t, coarse)
    poses = []
    for start in pose_candidates(q, t):
        small = _rescale(start, coarse / size)
        turned = _warp(tc, small, border=float(np.median(tc)))
        pose = _rescale(small @ _phase_shift(qc, turned), size / coarse)
        poses.append((_correlation(qj, tj, _rescale(pose, judge / size)), pose))
    return sorted(poses, key=lambda item: -item[0])


def warp_template(
    template: np.ndarray, reg: Registration, matrix: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The template resampled into the query frame (0 outside), and a mask of the pixels it covers.
    `matrix` overrides reg.matrix (to warp by one of reg.alternatives)."""
    m = reg.matrix if matrix is None else matrix
    warped = _warp(template.astype(np.float32), m, border=0.0)
    reach = _warp(np.ones(template.shape[:2], np.float32), m, border=0.0)
    # Pixels next to the template's edge are interpolated from the edge itself (and from whatever
    # padding the photo had): not trustworthy enough to call a defect on.
    kernel = np.ones((2 * EDGE_MARGIN + 1, 2 * EDGE_MARGIN + 1), np.uint8)
    covered = cv2.erode((reach > 0.999).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    return warped, covered.astype(bool)
