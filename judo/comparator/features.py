"""Per-pixel difference maps between a query and its registered template, in noise units.

Why these maps: defects show up as a change of colour (stains, contamination: brighter or darker),
of texture (scratches, cracks: new edges) or of structure (holes, missing parts: edges that vanish).
Each is measured at the scale it lives at, and each tolerates the residual misalignment of a global
registration (about a pixel at analysis size) by comparing a pixel with the range of values in a
small neighbourhood of the other image (an "envelope"), in both directions: what is in the query
but not near the same place in the template, and what is in the template but not in the query.

Every map is divided by a noise scale: the larger of an absolute floor (so that an identical or
nearly identical pair stays at ~0) and the pair's own typical difference (so that a noisy, JPEG-ed
or slightly mismatched pair does not light up everywhere). 1.0 means "as different as this pair's
ordinary noise allows"; the cell threshold lives in those units.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: name -> (Gaussian sigma, envelope radius in px at analysis size, absolute noise floor).
#: "luma_fine" compares brightness only: cameras (Bayer) and JPEG (4:2:0) resolve colour at half the
#: resolution of brightness, so fine colour detail differs between two honest photos. "colour_coarse"
#: compares brightness and both chroma channels (YCrCb) after stronger smoothing.
#: Floors are distances in [0, 1] units; the texture floor is a log energy ratio.
SCALES = {"luma_fine": (1.0, 2, 0.04), "colour_coarse": (3.0, 3, 0.035)}
#: How far (px) each map spreads a defect's signal beyond the defect (~1.5x its smoothing scale).
SPREAD = {"luma_fine": 1, "colour_coarse": 4, "texture": 7}
TEXTURE_SIGMA, TEXTURE_FLOOR, TEXTURE_EPS_QUANTILE = 3.0, 0.35, 0.5
#: The pair's typical difference: this quantile of the map over valid pixels, times this factor.
NOISE_QUANTILE, NOISE_FACTOR = 0.75, 2.5


@dataclass(frozen=True)
class DifferenceMaps:
    """Per-pixel maps (N, N) in noise units, plus signed changes for explanations.

    combined: the maximum over the named maps. brightness: query minus template grey level, smoothed
    ([-1, 1] units; positive = brighter in the query). texture_sign: log gradient-energy ratio
    (positive = more edges/texture in the query, negative = structure missing).
    """

    maps: dict[str, np.ndarray]
    combined: np.ndarray
    brightness: np.ndarray
    texture_sign: np.ndarray
    noise: dict[str, float]


def match_photometry(template: np.ndarray, query: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-channel gain and offset so the template has the query's mean and spread over the shared
    area: undoes global brightness/contrast changes (exposure, lamp ageing) before comparing."""
    out = np.empty_like(template)
    for ch in range(template.shape[2]):
        t, q = template[:, :, ch][valid], query[:, :, ch][valid]
        gain = q.std() / t.std() if t.size and t.std() > 1e-4 else 1.0
        gain = float(np.clip(gain, 0.5, 2.0))  # beyond this it is not a lighting change
        offset = (q.mean() - gain * t.mean()) if t.size else 0.0
        out[:, :, ch] = template[:, :, ch] * gain + offset
    return out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _envelope_distance(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
    """Per-pixel distance of `a` from the [min, max] range of `b` over a (2r+1)^2 window
    (Euclidean over channels): zero wherever a nearby pixel of `b` explains `a`."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    hi = cv2.dilate(b, kernel, borderType=cv2.BORDER_REFLECT)
    lo = cv2.erode(b, kernel, borderType=cv2.BORDER_REFLECT)
    excess = np.maximum(a - hi, 0.0) + np.maximum(lo - a, 0.0)
    return np.sqrt(np.sum(excess * excess, axis=2)) if excess.ndim == 3 else excess


def _noise_scale(values: np.ndarray, valid: np.ndarray, floor: float) -> float:
    typical = float(np.quantile(values[valid], NOISE_QUANTILE)) if valid.any() else 0.0
    return max(floor, NOISE_FACTOR * typical)


def _gradient(luma: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the lightly smoothed image."""
    smooth = _blur(luma, 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def _local_energy(grad: np.ndarray, support: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of `grad` over `support` only (normalised convolution): the texture
    strength near the template's edge is not diluted by, nor seamed to, what lies beyond it."""
    weight = support.astype(np.float32)
    return _blur(grad * weight, sigma) / np.maximum(_blur(weight, sigma), 1e-3)


def difference_maps(query: np.ndarray, template: np.ndarray, valid: np.ndarray) -> DifferenceMaps:
    """Compare (N, N, 3) float32 RGB images already registered and photometrically matched.

    `valid` marks the pixels the template really covers. For the colour measures the query stands in
    for the template elsewhere (no difference where nothing can be judged); the texture measure averages
    gradients over covered pixels only (normalised convolution), so the template's edge is no seam.
    """
    q_ycc = cv2.cvtColor(query.astype(np.float32), cv2.COLOR_RGB2YCrCb)
    t_ycc = cv2.cvtColor(template.astype(np.float32), cv2.COLOR_RGB2YCrCb)
    filled = t_ycc.copy()
    filled[~valid] = q_ycc[~valid]
    inputs = {"luma_fine": (q_ycc[:, :, 0], filled[:, :, 0]), "colour_coarse": (q_ycc, filled)}
    maps: dict[str, np.ndarray] = {}
    noise: dict[str, float] = {}
    for name, (sigma, radius, floor) in SCALES.items():
        qs, ts = (_blur(x, sigma) for x in inputs[name])
        dist = np.maximum(_envelope_distance(qs, ts, radius), _envelope_distance(ts, qs, radius))
        dist[~valid] = 0.0
        noise[name] = _noise_scale(dist, valid, floor)
        maps[name] = dist / noise[name]

    # Gradients are trusted one pixel inside the covered area (the edge itself is not texture).
    support = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    eq, et = (_local_energy(_gradient(x[:, :, 0]), support, TEXTURE_SIGMA) for x in (q_ycc, t_ycc))
    # The ratio is damped by the weakest texture of the pair: in flat regions the "texture" is sensor
    # noise, and two photos' noise levels differ (gain, JPEG) without anything being wrong.
    eps = 0.01 + (
        max(
            float(np.quantile(eq[support], TEXTURE_EPS_QUANTILE)),
            float(np.quantile(et[support], TEXTURE_EPS_QUANTILE)),
        )
        if support.any()
        else 0.0
    )
    texture_sign = np.log((eq + eps) / (et + eps))
    texture_sign[~valid] = 0.0
    tex = np.abs(texture_sign)
    noise["texture"] = _noise_scale(tex, valid, TEXTURE_FLOOR)
    maps["texture"] = tex / noise["texture"]

    brightness = _blur(q_ycc[:, :, 0] - t_ycc[:, :, 0], 3.0)
    brightness[~valid] = 0.0
    combined = np.maximum.reduce(list(maps.values()))
    return DifferenceMaps(maps, combined, brightness, texture_sign, noise)
