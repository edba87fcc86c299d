"""Full-rotation pose candidates for one object on a plain background (OpenCV + numpy FFT).

Why: a screw lies at any angle, a can's pull tab points anywhere, a nut's pale tip faces any side.
The global registration (register.py) only searches the few degrees two photos of one part differ
by, so another sample of the product in another pose lines up nowhere. Here each picture's object
is separated from its background (a smooth surface fitted to the picture's border, as inspection
photos have), both objects are unrolled into polar coordinates about their centroids
(cv2.warpPolar), and one circular cross-correlation along the angle axis (FFT) scores every
rotation at once. The best few angles become poses (rotation about the template's centroid onto
the query's); register.py corrects their shift and scores them.
Gradient magnitude is correlated rather than grey levels: the structure (a tab's outline, a
thread, a tip's border) turns with the part, while the shading of the lamp does not.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Size (px) the foreground and polar maps are computed at: coarse shapes only.
POSE_SIZE = 128
#: Polar sampling: angle bins (2 degrees each) x radius bins.
ANGLE_BINS, RADIUS_BINS = 180, 48
#: Background model: residual (grey [0, 1] units) that counts as object, at least this or
#: BORDER_FACTOR x the border's own median residual; a border this uneven is a texture, no object.
MIN_CONTRAST, BORDER_FACTOR, MAX_BORDER_SPREAD = 0.08, 8.0, 0.04
#: An object covers this fraction of the picture (else: a texture, or nothing separable).
MIN_AREA, MAX_AREA = 0.02, 0.85
#: Peaks kept, at least this far apart (degrees).
PEAKS, PEAK_SEPARATION_DEG = 2, 20.0


def foreground(gray: np.ndarray) -> np.ndarray | None:
    """(n, n) bool object mask of a square grey picture, or None when the picture is not one object
    on a smooth background (a texture filling the frame, or no clear object)."""
    n = gray.shape[0]
    b = max(2, n // 32)
    ring = np.zeros((n, n), bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    basis = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)
    a = basis[ring].astype(np.float64)
    coef = np.linalg.solve(a.T @ a, a.T @ gray[ring].astype(np.float64))  # least squares, 6 unknowns
    residual = np.abs(gray - basis @ coef)
    spread = float(np.median(residual[ring]))
    if spread > MAX_BORDER_SPREAD:
        return None
    mask = (residual > max(MIN_CONTRAST, BORDER_FACTOR * spread)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    obj = (labels == largest).astype(np.uint8)
    # Fill holes: everything not reachable from the border outside the object belongs to it.
    flood = obj.copy()
    cv2.floodFill(flood, np.zeros((n + 2, n + 2), np.uint8), (0, 0), 1)
    filled = obj.astype(bool) | (flood == 0)
    return filled if MIN_AREA < filled.mean() < MAX_AREA else None


def _centroid(mask: np.ndarray) -> np.ndarray:
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    return np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])


def _polar(signal: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """(ANGLE_BINS, RADIUS_BINS) `signal` in polar coordinates, each radius ring mean-free and
    weighted by its circumference (area) so that every pixel counts alike."""
    polar = cv2.warpPolar(
        signal,
        (RADIUS_BINS, ANGLE_BINS),
        (float(centre[0]), float(centre[1])),
        radius,
        cv2.WARP_POLAR_LINEAR | cv2.INTER_LINEAR | cv2.WARP_FILL_OUTLIERS,
    )
    polar = polar - polar.mean(axis=0, keepdims=True)
    return polar * np.sqrt((np.arange(RADIUS_BINS) + 0.5) / RADIUS_BINS)[None, :]


def _matrix(angle_deg: float, query_centre: np.ndarray, template_centre: np.ndarray) -> np.ndarray:
    """3x3 map query (x, y) -> template (x, y): turn by -angle about the query centroid, then move
    onto the template centroid (image coordinates, y down)."""
    a = np.deg2rad(-angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = np.eye(3)
    m[:2, :2] = rot
    m[:2, 2] = template_centre - rot @ query_centre
    return m


def _rescale(m: np.ndarray, factor: float) -> np.ndarray:
    s = np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5], [0, 0, 1.0]])
    return s @ m @ np.linalg.inv(s)


def pose_candidates(query_gray: np.ndarray, template_gray: np.ndarray) -> list[np.ndarray]:
    """Best few whole-turn poses (3x3 query -> template maps at the inputs' size), best first;
    empty when either picture is not one object on a plain background."""
    size = query_gray.shape[0]
    q = cv2.resize(query_gray, (POSE_SIZE, POSE_SIZE), interpolation=cv2.INTER_AREA)
    t = cv2.resize(template_gray, (POSE_SIZE, POSE_SIZE), interpolation=cv2.INTER_AREA)
    fq, ft = foreground(q), foreground(t)
    if fq is None or ft is None:
        return []
    cq, ct = _centroid(fq), _centroid(ft)
    ys, xs = np.nonzero(fq | ft)
    radius = 1.1 * float(max(np.hypot(xs - cq[0], ys - cq[1]).max(), np.hypot(xs - ct[0], ys - ct[1]).max()))
    angles: list[float] = []
    for sq, st in zip(_signals(q), _signals(t), strict=True):
        for angle in _best_turns(_polar(sq, cq, radius), _polar(st, ct, radius)):
            if all(abs((angle - a + 180.0) % 360.0 - 180.0) >= PEAK_SEPARATION_DEG / 2 for a in angles):
                angles.append(angle)
    return [_rescale(_matrix(a, cq, ct), size / POSE_SIZE) for a in angles]


def _signals(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What is correlated: the grey levels (a pale tip, a bright tab: large areas) and the gradient
    magnitude (outlines and threads; the lamp's smooth shading hardly shows)."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    grad = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    return smooth, grad


def _best_turns(pq: np.ndarray, pt: np.ndarray) -> list[float]:
    """The PEAKS best turns (degrees) of the circular cross-correlation along the angle axis."""
    # score[k] = sum over angle and radius of pq(angle + k) * pt(angle): the query looks like the
    # template turned by k bins.
    cross = np.fft.rfft(pq, axis=0) * np.conj(np.fft.rfft(pt, axis=0))
    score = np.fft.irfft(cross.sum(axis=1), n=ANGLE_BINS)
    step = 360.0 / ANGLE_BINS
    # Distinct turns: circular local maxima over +-PEAK_SEPARATION_DEG / 2, best first.
    half = max(1, int(PEAK_SEPARATION_DEG / step / 2))
    window = np.concatenate([score[-half:], score, score[:half]])
    local_max = np.lib.stride_tricks.sliding_window_view(window, 2 * half + 1).max(axis=1)
    peaks = [int(k) for k in np.argsort(-score) if score[k] >= local_max[k]]
    return [k * step for k in peaks[:PEAKS]]
