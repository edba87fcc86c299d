"""Painting one defect into a product picture, with a mask of exactly the pixels that changed.

Why "exactly changed": the mask is the ground truth for the 16x16 grid (judo.grid.mask_to_cells), so a
cell counts as anomalous iff the picture really differs there. Each painter draws an alpha layer and a
colour layer; the mask is then computed from the 8-bit result, so it can never drift from the picture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

DEFECT_KINDS: tuple[str, ...] = ("scratch", "hole", "stain", "missing", "crack", "contamination")

Array = np.ndarray
_SS = 4  # supersampling factor for drawn strokes (anti-aliased, sub-pixel widths)


# ---------------------------------------------------------------------------------------------- geometry


def estimate_foreground(rgb: Array) -> Array:
    """Object pixels of a product picture, judged against a background model fitted to its border.

    Objects lie on a plain, unevenly lit background: a quadratic surface per channel, fitted to the
    border pixels, predicts the background everywhere; pixels far from it are the object. When that
    is not one compact region (a texture fills the frame), everything is foreground.
    """
    h, w = rgb.shape[:2]
    b = max(2, min(h, w) // 64)
    ring = np.zeros((h, w), bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w - 0.5, y / h - 0.5
    basis = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)
    coef, *_ = np.linalg.lstsq(basis[ring], rgb[ring], rcond=None)
    background = basis @ coef
    residual = np.abs(rgb - background).max(axis=2)
    spread = float(np.median(residual[ring])) + 1e-3
    fg = residual > max(0.12, 8 * spread)
    fg = ndimage.binary_opening(fg, iterations=2)
    labels, n = ndimage.label(fg)
    if n == 0 or spread > 0.04:
        return np.ones((h, w), bool)
    sizes = ndimage.sum(fg, labels, index=np.arange(1, n + 1))
    fg = ndimage.binary_fill_holes(labels == (1 + int(np.argmax(sizes))))
    if not 0.02 < fg.mean() < 0.85:
        return np.ones((h, w), bool)
    return fg


def _pick_inside(region: Array, rng: np.random.Generator, margin: int) -> tuple[float, float]:
    """A random (x, y) inside `region`, preferring points at least `margin` px from its edge."""
    core = ndimage.binary_erosion(region, iterations=max(1, margin)) if margin > 0 else region
    ys, xs = np.nonzero(core if core.any() else region)
    k = int(rng.integers(len(xs)))
    return float(xs[k]), float(ys[k])


def _stroke_alpha(size: tuple[int, int], paths: list[list[tuple[float, float]]], width: float) -> Array:
    """Anti-aliased alpha (H, W) in [0, 1] of polylines drawn `width` px wide."""
    w, h = size
    canvas = Image.new("L", (w * _SS, h * _SS), 0)
    draw = ImageDraw.Draw(canvas)
    for path in paths:
        pts = [(x * _SS, y * _SS) for x, y in path]
        draw.line(pts, fill=255, width=max(1, round(width * _SS)), joint="curve")
    return np.asarray(canvas.resize((w, h), Image.BOX), np.float32) / 255.0


def _blob(
    h: int, w: int, cx: float, cy: float, radius: float, rng: np.random.Generator, rough: float = 0.35
) -> Array:
    """Soft irregular blob alpha: a disc whose edge is pushed around by smooth noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    small = rng.standard_normal((6, 6)).astype(np.float32)
    noise = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), np.float32)
    d = np.hypot(x - cx, y - cy) / max(radius, 1.0) + rough * noise / (np.abs(noise).max() + 1e-6)
    edge = 1.5 / max(radius, 1.0)
    return np.clip((1.0 - d) / edge + 0.5, 0.0, 1.0)


def _walk(
    rng: np.random.Generator,
    x: float,
    y: float,
    length: float,
    step: float,
    turn: float,
    angle: float | None = None,
) -> list[tuple[float, float]]:
    """A random-walk polyline: small `turn` gives smooth scratches, large gives jagged cracks."""
    angle = rng.uniform(0, 2 * np.pi) if angle is None else angle
    pts = [(x, y)]
    for _ in range(max(2, int(length / step))):
        angle += rng.normal(0.0, turn)
        x, y = x + step * np.cos(angle), y + step * np.sin(angle)
        pts.append((x, y))
    return pts


def _luma(rgb: Array) -> Array:
    return rgb @ np.asarray((0.299, 0.587, 0.114), np.float32)


def _contrast_colour(rgb: Array, alpha: Array, dark: tuple, bright: tuple) -> Array:
    """The dark colour on bright surfaces and the bright one on dark surfaces, so a defect shows."""
    weight = alpha > 0.05
    level = float(_luma(rgb)[weight].mean()) if weight.any() else float(_luma(rgb).mean())
    return np.asarray(dark if level > 0.45 else bright, np.float32)


# ---------------------------------------------------------------------------------------------- painters
# Each painter returns (alpha (H, W) in [0, 1], colour layer (H, W, 3)): result = mix(rgb, colour, alpha).


def _scratch(rgb: Array, fg: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    h, w = fg.shape
    s = min(h, w)
    x, y = _pick_inside(fg, rng, int(0.08 * s))
    path = _walk(rng, x, y, rng.uniform(0.18, 0.32) * s, max(2.0, s / 40), 0.12)
    alpha = _stroke_alpha((w, h), [path], max(1.5, s / 120)) * fg
    colour = _contrast_colour(rgb, alpha, (0.18, 0.17, 0.16), (0.92, 0.92, 0.90))
    return alpha, np.broadcast_to(colour, rgb.shape)


def _crack(rgb: Array, fg: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    h, w = fg.shape
    s = min(h, w)
    x, y = _pick_inside(fg, rng, int(0.1 * s))
    main = _walk(rng, x, y, rng.uniform(0.14, 0.24) * s, max(2.0, s / 60), 0.55)
    paths = [main]
    for _ in range(int(rng.integers(1, 3))):
        bx, by = main[int(rng.integers(1, len(main)))]
        paths.append(_walk(rng, bx, by, rng.uniform(0.04, 0.09) * s, max(2.0, s / 70), 0.6))
    alpha = np.clip(_stroke_alpha((w, h), paths, max(1.0, s / 220)) * 1.3, 0, 1) * fg
    return alpha, np.broadcast_to(np.asarray((0.05, 0.04, 0.04), np.float32), rgb.shape)


def _hole(rgb: Array, fg: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    h, w = fg.shape
    s = min(h, w)
    r = rng.uniform(0.03, 0.05) * s
    x, y = _pick_inside(fg, rng, int(r * 1.6))
    core = _blob(h, w, x, y, r, rng, rough=0.15)
    rim = np.clip(_blob(h, w, x, y, r * 1.35, rng, rough=0.1) - core, 0, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = np.clip(np.hypot(xx - x, yy - y) / r, 0, 1)[..., None]
    inside = np.asarray((0.02, 0.02, 0.02), np.float32) + 0.10 * depth
    rim_colour = np.clip(rgb * 0.55, 0, 1)
    colour = inside * core[..., None] + rim_colour * (1 - core[..., None])
    alpha = np.clip(core + 0.8 * rim, 0, 1) * fg
    return alpha, colour


def _stain(rgb: Array, fg: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    h, w = fg.shape
    s = min(h, w)
    r = rng.uniform(0.06, 0.10) * s
    x, y = _pick_inside(fg, rng, int(r))
    alpha = 0.85 * _blob(h, w, x, y, r, rng, rough=0.45) * fg
    if float(_luma(rgb)[alpha > 0.1].mean()) > 0.35:
        tint = np.asarray(
            rng.choice([(0.55, 0.42, 0.25), (0.40, 0.45, 0.60), (0.62, 0.30, 0.25)]), np.float32
        )
        colour = rgb * tint  # darkening dye: the texture stays visible through the stain
    else:
        colour = np.clip(rgb * 0.4 + np.asarray((0.55, 0.50, 0.38), np.float32), 0, 1)  # pale residue
    return alpha, colour


def _contamination(rgb: Array, fg: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    h, w = fg.shape
    s = min(h, w)
    x, y = _pick_inside(fg, rng, int(0.08 * s))
    alpha = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 8))):
        px, py = x + rng.normal(0, 0.04 * s), y + rng.normal(0, 0.04 * s)
        alpha = np.maximum(alpha, _blob(h, w, px, py, rng.uniform(0.008, 0.018) * s, rng, rough=0.4))
    if rng.random() < 0.7:  # a fibre or hair among the particles
        fibre = _walk(rng, x, y, rng.uniform(0.08, 0.15) * s, max(2.0, s / 60), 0.35)
        alpha = np.maximum(alpha, _stroke_alpha((w, h), [fibre], max(1.0, s / 250)))
    alpha = alpha * fg
    colour = _contrast_colour(rgb, alpha, (0.10, 0.10, 0.12), (0.85, 0.82, 0.70))
    return alpha, np.broadcast_to(colour, rgb.shape)


def _missing(rgb: Array, fg: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    """Objects lose a piece of their outline to the background; textures lose a patch of surface."""
    h, w = fg.shape
    s = min(h, w)
    if fg.all():  # texture: threads or material gone, exposing a dark backing
        r = rng.uniform(0.06, 0.09) * s
        x, y = _pick_inside(fg, rng, int(r))
        alpha = _blob(h, w, x, y, r, rng, rough=0.3)
        backing = _luma(rgb)[alpha > 0.5].mean() * 0.3
        colour = np.full(rgb.shape, backing, np.float32) * np.asarray((1.0, 0.95, 0.9), np.float32)
        return alpha, colour
    grown = ndimage.binary_dilation(fg, iterations=3)  # include the object's anti-aliased edge
    edge = fg & ~ndimage.binary_erosion(fg, iterations=1)
    ys, xs = np.nonzero(edge)
    k = int(rng.integers(len(xs)))
    cy, cx = ndimage.center_of_mass(fg)
    ex, ey = float(xs[k]), float(ys[k])
    r = rng.uniform(0.07, 0.11) * s
    bx, by = (
        ex + 0.35 * r * (cx - ex) / (np.hypot(cx - ex, cy - ey) + 1e-6),
        ey + 0.35 * r * (cy - ey) / (np.hypot(cx - ex, cy - ey) + 1e-6),
    )
    alpha = _blob(h, w, bx, by, r, rng, rough=0.3) * grown
    background = rgb[~grown]
    bg_colour = np.median(background, axis=0) if len(background) else np.asarray((0.5, 0.5, 0.5))
    colour = np.broadcast_to(bg_colour.astype(np.float32), rgb.shape) + rng.normal(0, 0.01, rgb.shape).astype(
        np.float32
    )
    return alpha, colour


_PAINTERS: dict[str, Callable[[Array, Array, np.random.Generator], tuple[Array, Array]]] = {
    "scratch": _scratch,
    "hole": _hole,
    "stain": _stain,
    "missing": _missing,
    "crack": _crack,
    "contamination": _contamination,
}


def paint_defect(
    img: Image.Image, kind: str, rng: np.random.Generator, *, foreground: Array | None = None
) -> tuple[Image.Image, Array]:
    """Paint one defect of `kind` into a copy of `img`; returns (RGB image, bool mask of changed pixels).

    `foreground` (bool H x W) limits where the defect may go; by default it is estimated from the
    picture (the object on a plain background, or the whole frame for textures).
    """
    if kind not in _PAINTERS:
        raise ValueError(f"unknown defect kind {kind!r}; choose one of {', '.join(DEFECT_KINDS)}")
    before = np.asarray(img.convert("RGB"))
    rgb = before.astype(np.float32) / 255.0
    fg = estimate_foreground(rgb) if foreground is None else np.asarray(foreground, bool)
    if fg.shape != rgb.shape[:2]:
        raise ValueError(f"foreground shape {fg.shape} does not match the image {rgb.shape[:2]}")
    if not fg.any():
        raise ValueError("foreground is empty: nowhere to paint a defect")
    for _ in range(8):  # a stroke can, rarely, leave the frame entirely: draw again
        alpha, colour = _PAINTERS[kind](rgb, fg, rng)
        out = rgb * (1 - alpha[..., None]) + colour * alpha[..., None]
        after = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
        changed = np.any(after != before, axis=2)
        if changed.sum() >= 4:
            return Image.fromarray(after), changed
    raise RuntimeError(f"could not paint a visible {kind} defect on a {img.size[0]}x{img.size[1]} image")
