"""Procedural industrial products: textures (carpet, wood, metal plate) and objects on a background.

Why procedural: the project may not ship or download real inspection data, yet tests, examples and
benchmarks need pictures with the structure of MMAD's (a regular surface or one object on a plain
background, small variations between normal samples). Every picture is a pure function of the
category, the size and a numpy Generator, so a seed reproduces a dataset bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

Size = int | tuple[int, int]
Array = np.ndarray

#: Surface-like categories: the whole picture is the product (MVTec's carpet, wood, ...).
TEXTURES = ("carpet", "wood", "metal_plate")
#: One object on a plain background (MVTec's bottle, screw, pill, hazelnut; GoodsAD's cans).
OBJECTS = ("bottle", "screw", "pill", "hazelnut", "drink_can")
CATEGORIES: tuple[str, ...] = TEXTURES + OBJECTS


def _wh(size: Size) -> tuple[int, int]:
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if width < 16 or height < 16:
        raise ValueError(f"product size must be at least 16x16, got {width}x{height}")
    return width, height


def _smooth(rng: np.random.Generator, h: int, w: int, cells: int | tuple[int, int]) -> Array:
    """Low-frequency noise with unit standard deviation: random grid upsampled bicubically."""
    ch, cw = (cells, cells) if isinstance(cells, int) else cells
    small = rng.standard_normal((ch + 3, cw + 3)).astype(np.float32)
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), dtype=np.float32)
    return (big - big.mean()) / (big.std() + 1e-6)


def _coords(h: int, w: int) -> tuple[Array, Array]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x, y


def _smoothstep(edge0: float, edge1: float, v: Array) -> Array:
    t = np.clip((v - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _mix(a: Array, b: Array, t: Array) -> Array:
    """Per-pixel blend of two colour layers (H, W, 3) or colours (3,) by t (H, W)."""
    return a * (1 - t[..., None]) + b * t[..., None]


def _finish(rgb: Array, rng: np.random.Generator, noise: float) -> Image.Image:
    """Camera look: soft vignette and optional sensor noise, then 8-bit RGB."""
    h, w = rgb.shape[:2]
    x, y = _coords(h, w)
    r2 = ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2
    rgb = rgb * (1.0 - 0.08 * r2)[..., None]
    if noise > 0:
        rgb = rgb + rng.normal(0.0, noise, rgb.shape).astype(np.float32)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))


def _background(
    rng: np.random.Generator, h: int, w: int, level: float, tint: tuple[float, float, float]
) -> Array:
    """A plain, slightly uneven inspection background."""
    x, _ = _coords(h, w)
    light = level * (1 + 0.015 * _smooth(rng, h, w, 2)) + 0.03 * (x / w - 0.5)
    return light[..., None] * np.asarray(tint, np.float32)


def _rotated(x: Array, y: Array, cx: float, cy: float, angle: float) -> tuple[Array, Array]:
    """Coordinates along (s) and across (t) an axis through (cx, cy) at `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    return dx * c + dy * s, -dx * s + dy * c


# ---------------------------------------------------------------------------------------------- textures


def _carpet(rng: np.random.Generator, h: int, w: int) -> Array:
    """Basket weave: alternating over/under threads with fibre noise."""
    x, y = _coords(h, w)
    period = min(h, w) / rng.uniform(14, 20)
    u = x / period + 0.12 * _smooth(rng, h, w, 5)
    v = y / period + 0.12 * _smooth(rng, h, w, 5)
    over = (np.floor(u) + np.floor(v)) % 2 == 0
    fu, fv = u - np.floor(u), v - np.floor(v)
    shade = np.where(over, np.sin(np.pi * fu), np.sin(np.pi * fv)) ** 0.7
    fibre = _smooth(rng, h, w, (max(4, h // 3), max(4, w // 3)))  # fibre grain, a few pixels wide
    palette = [(0.72, 0.64, 0.50), (0.55, 0.57, 0.58), (0.30, 0.48, 0.50), (0.52, 0.40, 0.30)]
    base = np.asarray(palette[rng.integers(len(palette))], np.float32) * rng.uniform(0.92, 1.08)
    light = 0.50 + 0.48 * shade + 0.04 * fibre + 0.03 * _smooth(rng, h, w, 4)
    return light[..., None] * base


def _wood(rng: np.random.Generator, h: int, w: int) -> Array:
    """Vertical grain: distorted growth rings plus fine fibres along the grain."""
    x, _y = _coords(h, w)
    s = min(h, w)
    period = s / rng.uniform(5, 9)
    t = (x + 0.10 * s * _smooth(rng, h, w, (3, 2)) + 0.02 * s * _smooth(rng, h, w, (10, 6))) / period
    grain = (0.5 + 0.5 * np.sin(2 * np.pi * t)) ** 3
    fibres = _smooth(rng, h, w, (4, max(8, w // 4)))  # stretched along y: streaks
    light = np.asarray((0.80, 0.60, 0.38), np.float32) * rng.uniform(0.9, 1.05)
    dark = np.asarray((0.52, 0.33, 0.18), np.float32)
    rgb = _mix(light, dark, np.clip(0.75 * grain + 0.08 * fibres, 0, 1))
    return rgb * (1 + 0.03 * _smooth(rng, h, w, 3))[..., None]


def _metal_plate(rng: np.random.Generator, h: int, w: int) -> Array:
    """Brushed metal: streaks along x and a broad light gradient."""
    x, y = _coords(h, w)
    streaks = np.asarray(
        Image.fromarray(rng.standard_normal((h, max(4, w // 50))).astype(np.float32)).resize(
            (w, h), Image.BILINEAR
        )
    )
    level = rng.uniform(0.55, 0.66)
    light = (
        level + 0.045 * streaks + 0.08 * (x / w - 0.5) - 0.05 * (y / h - 0.5) + 0.02 * _smooth(rng, h, w, 3)
    )
    return light[..., None] * np.asarray((0.97, 0.99, 1.03), np.float32)


# ---------------------------------------------------------------------------------------------- objects


def _bottle(rng: np.random.Generator, h: int, w: int) -> Array:
    """Top view of a bottle opening: glass rim ring around a dark interior (MVTec 'bottle')."""
    x, y = _coords(h, w)
    s = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.03, 0.03) * s, h / 2 + rng.uniform(-0.03, 0.03) * s
    r = np.hypot(x - cx, y - cy) / (s / 2)
    outer, inner = rng.uniform(0.80, 0.86), rng.uniform(0.56, 0.62)
    bg = _background(rng, h, w, 0.86, (1.0, 1.0, 0.98))
    glass = np.asarray((0.36, 0.28, 0.17), np.float32) * rng.uniform(0.85, 1.1)
    mid = (outer + inner) / 2
    ring_light = (
        0.65 + 0.9 * np.exp(-(((r - mid) / 0.035) ** 2)) + 0.25 * np.exp(-(((r - outer + 0.02) / 0.01) ** 2))
    )
    rim = glass * ring_light[..., None] * (1 + 0.04 * _smooth(rng, h, w, 6))[..., None]
    interior = (0.03 + 0.07 * (r / inner) ** 2)[..., None] * np.asarray((1.0, 0.95, 0.9), np.float32)
    px = 2.0 / s  # one pixel in radius units: anti-aliased edges
    rgb = _mix(interior, rim, _smoothstep(inner - px, inner + px, r))
    return _mix(rgb, bg, _smoothstep(outer - px, outer + px, r))


def _screw(rng: np.random.Generator, h: int, w: int) -> Array:
    """A threaded screw lying at a random angle on a light background (MVTec 'screw')."""
    x, y = _coords(h, w)
    sz = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * sz, h / 2 + rng.uniform(-0.05, 0.05) * sz
    angle = rng.uniform(0, 2 * np.pi)
    s, t = _rotated(x, y, cx, cy, angle)
    length, half, head_r = 0.58 * sz, 0.042 * sz, 0.085 * sz
    start, end = -length / 2 + head_r, length / 2
    taper = np.clip((end - s) / (0.15 * length), 0.15, 1.0)
    shank = (s > start - head_r) & (s < end) & (np.abs(t) < half * taper)
    hx = -length / 2
    head_d = np.hypot(s - hx, t)
    head = head_d < head_r
    pitch = 0.032 * sz
    thread = 0.5 + 0.5 * np.sin(2 * np.pi * (s + 0.35 * t) / pitch)
    cyl = np.sqrt(np.clip(1 - (t / (half * taper + 1e-6)) ** 2, 0, 1))
    shank_light = 0.22 + 0.30 * cyl + 0.14 * thread * cyl
    dome = np.sqrt(np.clip(1 - (head_d / head_r) ** 2, 0, 1))
    slot = (np.abs(t) < 0.012 * sz) & head
    head_light = np.where(slot, 0.10, 0.25 + 0.35 * dome)
    light = np.where(head, head_light, shank_light)
    obj = head | shank
    bg = _background(rng, h, w, 0.84, (1.0, 0.99, 0.96))
    bg = bg * (1 - 0.10 * _shift(obj, int(0.01 * sz)))[..., None]
    metal = light[..., None] * np.asarray((1.0, 1.0, 1.02), np.float32)
    return np.where(obj[..., None], metal, bg)


def _shift(mask: Array, d: int) -> Array:
    """The mask moved down-right by d pixels: a cheap cast shadow."""
    out = np.zeros_like(mask, dtype=np.float32)
    if d <= 0:
        return out
    out[d:, d:] = mask[:-d, :-d]
    return out


def _pill(rng: np.random.Generator, h: int, w: int) -> Array:
    """A white oblong tablet with red speckles and a score line on a dark tray (MVTec 'pill')."""
    x, y = _coords(h, w)
    sz = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.03, 0.03) * sz, h / 2 + rng.uniform(-0.03, 0.03) * sz
    s, t = _rotated(x, y, cx, cy, rng.uniform(-0.12, 0.12))
    a, b = 0.38 * sz, 0.19 * sz
    r2 = (s / a) ** 2 + (t / b) ** 2
    height = np.sqrt(np.clip(1 - r2, 0, 1))
    body = np.asarray((0.94, 0.91, 0.85), np.float32) * (0.72 + 0.28 * height)[..., None]
    spec = np.exp(-(((s + 0.25 * a) / (0.35 * a)) ** 2 + ((t + 0.35 * b) / (0.25 * b)) ** 2))
    body = body + 0.06 * spec[..., None]
    score = np.exp(-((s / (0.012 * sz)) ** 2)) * (np.abs(t) < 0.8 * b)
    body = body * (1 - 0.25 * score)[..., None]
    speck = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(40, 70))):
        ang, rad = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 0.8))
        px, py = cx + rad * a * np.cos(ang), cy + rad * b * np.sin(ang)
        rr = rng.uniform(0.004, 0.008) * sz
        x0, x1 = max(0, int(px - 3 * rr)), min(w, int(px + 3 * rr) + 2)
        y0, y1 = max(0, int(py - 3 * rr)), min(h, int(py + 3 * rr) + 2)
        win = np.exp(-(((x[y0:y1, x0:x1] - px) ** 2 + (y[y0:y1, x0:x1] - py) ** 2) / (rr**2)))
        speck[y0:y1, x0:x1] = np.maximum(speck[y0:y1, x0:x1], win)  # local window: 60 dots stay cheap
    body = _mix(body, np.asarray((0.70, 0.22, 0.18), np.float32), 0.85 * speck)
    bg = _background(rng, h, w, 0.20, (1.0, 1.0, 1.05))
    edge = _smoothstep(1.0 + 2.0 / a, 1.0 - 2.0 / a, r2)  # 1 inside, ~2 px soft edge
    return _mix(bg, body, edge)


def _hazelnut(rng: np.random.Generator, h: int, w: int) -> Array:
    """A brown nut with a striped shell and a pale tip on a dark background (MVTec 'hazelnut')."""
    x, y = _coords(h, w)
    sz = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.04, 0.04) * sz, h / 2 + rng.uniform(-0.04, 0.04) * sz
    theta = np.arctan2(y - cy, x - cx)
    phase = rng.uniform(0, 2 * np.pi, 3)
    radius = 0.33 * sz * (1 + 0.035 * np.sin(2 * theta + phase[0]) + 0.02 * np.sin(3 * theta + phase[1]))
    d = np.hypot(x - cx, y - cy) / radius
    dome = np.sqrt(np.clip(1 - d**2, 0, 1))
    tip_dir = phase[2]
    along = np.cos(theta - tip_dir) * d
    stripes = 0.5 + 0.5 * np.sin(18 * theta + 2 * _smooth(rng, h, w, 4))
    shell = np.asarray((0.56, 0.35, 0.18), np.float32) * rng.uniform(0.9, 1.1)
    light = 0.55 + 0.45 * dome - 0.07 * stripes * _smoothstep(0.15, 0.5, d)
    nut = shell * light[..., None]
    tip = _smoothstep(0.55, 0.85, along)
    nut = _mix(nut, np.asarray((0.78, 0.66, 0.50), np.float32) * (0.7 + 0.3 * dome)[..., None], 0.8 * tip)
    bg = _background(rng, h, w, 0.12, (1.0, 1.0, 1.0))
    return _mix(bg, nut, _smoothstep(1.0 + 1.5 / (0.33 * sz), 1.0 - 1.5 / (0.33 * sz), d))


def _drink_can(rng: np.random.Generator, h: int, w: int) -> Array:
    """Top view of a beverage can: bright rim, recessed lid, rivet and pull tab (GoodsAD-like)."""
    x, y = _coords(h, w)
    sz = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.03, 0.03) * sz, h / 2 + rng.uniform(-0.03, 0.03) * sz
    r = np.hypot(x - cx, y - cy) / (sz / 2)
    theta = np.arctan2(y - cy, x - cx)
    rim = 0.55 + 0.4 * np.exp(-(((r - 0.84) / 0.025) ** 2)) + 0.15 * np.cos(theta - 0.8)
    wall = 0.35 + 0.25 * _smoothstep(0.72, 0.80, r)
    lid = 0.58 + 0.12 * np.cos(theta - 0.8) * r + 0.03 * _smooth(rng, h, w, 4)
    light = np.where(r < 0.74, lid, np.where(r < 0.80, wall, rim))
    rgb = light[..., None] * np.asarray((0.93, 0.95, 1.0), np.float32)
    # Pull tab and its score line drawn with PIL (4x supersampled for clean edges).
    tab_angle = rng.uniform(0, 2 * np.pi)
    layer = _draw_tab(w, h, cx, cy, sz, tab_angle)
    rgb = _mix(rgb, np.asarray((0.80, 0.82, 0.86), np.float32), layer[0])
    rgb = rgb * (1 - 0.45 * layer[1])[..., None]
    rivet = np.exp(-((np.hypot(x - cx, y - cy) / (0.025 * sz)) ** 2))
    rgb = rgb + 0.15 * rivet[..., None]
    bg = _background(rng, h, w, 0.30, (0.95, 0.97, 1.0))
    return _mix(bg, rgb, _smoothstep(0.92 + 2.0 / sz, 0.92 - 2.0 / sz, r))


def _draw_tab(w: int, h: int, cx: float, cy: float, sz: int, angle: float) -> tuple[Array, Array]:
    """Alpha layers (tab body, dark outlines) for the can's pull tab, anti-aliased by supersampling."""
    k = 4
    body = Image.new("L", (w * k, h * k), 0)
    lines = Image.new("L", (w * k, h * k), 0)
    db, dl = ImageDraw.Draw(body), ImageDraw.Draw(lines)
    c, s = np.cos(angle), np.sin(angle)

    def pt(u: float, v: float) -> tuple[float, float]:
        return ((cx + (u * c - v * s) * sz) * k, (cy + (u * s + v * c) * sz) * k)

    outline = [pt(-0.06, -0.09), pt(0.30, -0.11), pt(0.36, 0.0), pt(0.30, 0.11), pt(-0.06, 0.09)]
    db.polygon(outline, fill=255)
    dl.line(outline + [outline[0]], fill=255, width=max(2, sz * k // 150))
    hole = [pt(0.14, -0.05), pt(0.27, -0.06), pt(0.30, 0.0), pt(0.27, 0.06), pt(0.14, 0.05)]
    db.polygon(hole, fill=0)
    dl.line(hole + [hole[0]], fill=255, width=max(2, sz * k // 200))
    score = [pt(-0.45 * np.cos(a), 0.45 * np.sin(a)) for a in np.linspace(-0.9, 0.9, 24)]
    dl.line(score, fill=255, width=max(2, sz * k // 200))

    def to_alpha(im: Image.Image) -> np.ndarray:
        return np.asarray(im.resize((w, h), Image.BOX), np.float32) / 255.0

    return to_alpha(body), to_alpha(lines)


_MAKERS: dict[str, Callable[[np.random.Generator, int, int], Array]] = {
    "carpet": _carpet,
    "wood": _wood,
    "metal_plate": _metal_plate,
    "bottle": _bottle,
    "screw": _screw,
    "pill": _pill,
    "hazelnut": _hazelnut,
    "drink_can": _drink_can,
}


def _check_category(category: str) -> None:
    if category not in _MAKERS:
        raise ValueError(f"unknown synthetic category {category!r}; choose one of {', '.join(CATEGORIES)}")


def make_product(category: str, size: Size, rng: np.random.Generator, *, noise: float = 0.0) -> Image.Image:
    """A normal (defect-free) RGB picture of `category`; size is an int (square) or (width, height).

    `noise` adds Gaussian sensor noise (std in [0, 1] units). It is off by default because it makes
    PNGs about twice as large, and the generated MMAD roots must stay small.
    """
    _check_category(category)
    width, height = _wh(size)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rgb = _MAKERS[category](rng, height, width).astype(np.float32)
    return _finish(rgb, rng, noise)
