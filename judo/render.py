"""Drawing what an inspection found: red seg cells, amber dashed borderline cells, the green true region,
a comparator heat map, the template and the query side by side.

Everything works on the query image at its own size, so the red cells line up with the pixels the
inspector looks at (the model sees a 448x448 copy; the 16x16 grid is the same in both). Rendering
happens on every change of the streamed cell set, so it must be cheap: every drawing step is a PIL
operation in C (translucent rectangles per run of cells, LUT colour maps, composites), never a
full-image round trip through numpy.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from judo.grid import GRID_SIZE, Cell, cell_boxes, cells_to_mask

RED = (255, 0, 0)
GREEN = (0, 200, 0)
#: Borderline cells (within the band around the threshold): amber, under a dashed outline, so they read
#: as "near the line" next to the red anomalous cells.
AMBER = (255, 170, 0)

# A small perceptual colour map (dark blue -> purple -> orange -> yellow), 256 entries. Built from five
# anchors so the heat map needs no plotting library on floor 2.
HEAT_ANCHORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 4),
    (87, 16, 110),
    (188, 55, 84),
    (249, 142, 9),
    (252, 255, 164),
)
_ANCHORS = np.array(HEAT_ANCHORS, dtype=np.float32)
_LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)],
    axis=1,
).astype(np.uint8)


#: Side at which the outline's dilation runs (the line is computed there and upsampled).
OUTLINE_WORK_SIDE = 512


def _edge_width(size: tuple[int, int]) -> int:
    """Line width that stays visible on small and large images alike (2 px up to 448, 9 px at 2048)."""
    return max(2, round(min(size) / 224))


def overlay_cells(
    image: Image.Image,
    cells: Iterable[Cell],
    *,
    color: tuple[int, int, int] = RED,
    alpha: float = 0.45,
    grid: int = GRID_SIZE,
) -> Image.Image:
    """The image with each cell filled in translucent ``color``; no cells -> an unchanged RGB copy.

    Only pixels inside the given cells change, so a test (or a user) can recover the cell set from
    the picture. Cells outside the grid are ignored rather than raising: the app draws whatever a
    model streamed, and range checking belongs to the parser. Each horizontal run is one translucent
    rectangle drawn by PIL in C (no full-image numpy round trip: ~1 ms at 2048 px).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    valid = [(r, c) for r, c in cells if 0 <= r < grid and 0 <= c < grid]
    if not valid:
        return out
    boxes = cell_boxes(out.size, grid)
    draw = ImageDraw.Draw(out, "RGBA")
    fill = (*color, round(alpha * 255))
    for r, (c0, c1) in _merge_runs(valid):
        x0, y0, _, _ = boxes[r][c0]
        _, _, x1, y1 = boxes[r][c1]
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)  # PIL boxes are inclusive
    return out


def overlay_findings(
    image: Image.Image,
    cells: Iterable[Cell],
    borderline: Iterable[Cell] = (),
    *,
    alpha: float = 0.45,
    grid: int = GRID_SIZE,
) -> Image.Image:
    """The image with the anomalous cells in red and the borderline ones (within the band around the
    threshold, above or below it) in amber under a dashed outline: a borderline cell that is also
    anomalous is drawn as borderline, since a small change of sensitivity would drop it."""
    near = {c for c in borderline if 0 <= c[0] < grid and 0 <= c[1] < grid}
    out = overlay_cells(image, set(cells) - near, alpha=alpha, grid=grid)
    if near:
        out = overlay_cells(out, near, color=AMBER, alpha=alpha * 0.7, grid=grid)
        dashed_outline(out, near, AMBER, grid=grid)
    return out


def dashed_outline(
    image: Image.Image,
    cells: Iterable[Cell],
    color: tuple[int, int, int] = AMBER,
    *,
    width: int | None = None,
    grid: int = GRID_SIZE,
) -> Image.Image:
    """Draw (in place) a dashed line around the region the ``cells`` cover: only the cell sides that
    face a cell outside the region, so a group of cells gets one outline. Returns ``image``."""
    region = {(r, c) for r, c in cells if 0 <= r < grid and 0 <= c < grid}
    if not region:
        return image
    boxes = cell_boxes(image.size, grid)
    width = width or _edge_width(image.size)
    dash = max(3, round(min(image.size) / grid / 4))
    draw = ImageDraw.Draw(image)
    for r, c in region:
        x0, y0, x1, y1 = boxes[r][c]
        x1, y1 = x1 - 1, y1 - 1  # inclusive
        sides = (
            ((r - 1, c), (x0, y0), (x1, y0)),
            ((r + 1, c), (x0, y1 - width + 1), (x1, y1 - width + 1)),
            ((r, c - 1), (x0, y0), (x0, y1)),
            ((r, c + 1), (x1 - width + 1, y0), (x1 - width + 1, y1)),
        )
        for neighbour, (ax, ay), (bx, by) in sides:
            if neighbour in region:
                continue
            _dashes(draw, (ax, ay), (bx, by), dash, width, color)
    return image


def _dashes(
    draw: ImageDraw.ImageDraw, a: tuple[int, int], b: tuple[int, int], dash: int, width: int, color
) -> None:
    """Dashes ``dash`` px long with gaps as long along the axis-parallel segment a-b (``width`` px thick,
    growing right/down from the segment)."""
    horizontal = a[1] == b[1]
    start, end = (a[0], b[0]) if horizontal else (a[1], b[1])
    for t in range(start, end + 1, 2 * dash):
        u = min(t + dash - 1, end)
        if horizontal:
            draw.rectangle((t, a[1], u, a[1] + width - 1), fill=color)
        else:
            draw.rectangle((a[0], t, a[0] + width - 1, u), fill=color)


def side_by_side(left: Image.Image, right: Image.Image, *, gap: int = 8) -> Image.Image:
    """``left`` and ``right`` next to each other on white, ``left`` scaled to ``right``'s height (the
    template beside the query with its cells: the inspector looks from one to the other)."""
    right = right.convert("RGB")
    h = right.height
    left = left.convert("RGB")
    if left.height != h:
        left = left.resize((max(1, round(left.width * h / left.height)), h), Image.Resampling.BILINEAR)
    out = Image.new("RGB", (left.width + gap + right.width, h), (255, 255, 255))
    out.paste(left, (0, 0))
    out.paste(right, (left.width + gap, 0))
    return out


def _merge_runs(cells: Iterable[Cell]) -> list[tuple[int, tuple[int, int]]]:
    """Horizontal runs of cells as (row, (col_start, col_end)), so each run is one rectangle."""
    runs: list[tuple[int, tuple[int, int]]] = []
    for r, c in sorted(set(cells)):
        if runs and runs[-1][0] == r and runs[-1][1][1] == c - 1:
            runs[-1] = (r, (runs[-1][1][0], c))
        else:
            runs.append((r, (c, c)))
    return runs


def outline_mask(
    image: Image.Image,
    mask_or_cells: np.ndarray | Image.Image | Iterable[Cell],
    color: tuple[int, int, int] = GREEN,
    *,
    width: int | None = None,
) -> Image.Image:
    """The image with the border of a region drawn in ``color`` (the paper's green ground truth).

    ``mask_or_cells`` is a mask of any size and mode (resized to the image, nearest neighbour) or a
    set of grid cells. The line is drawn just outside the region so what lies inside stays readable;
    a region covering the whole image gets its inner border instead.
    """
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    edge = outline_edges(out.size, mask_or_cells, width=width)
    if edge is not None:
        out.paste(color, (0, 0), edge)
    return out


def outline_edges(
    size: tuple[int, int],
    mask_or_cells: np.ndarray | Image.Image | Iterable[Cell],
    *,
    width: int | None = None,
) -> Image.Image | None:
    """The outline of a region as an 'L' stencil at ``size`` (None for an empty region).

    Computed once per inspection and pasted over every re-rendered overlay, so the green truth stays
    on top of the red cells while they stream.
    """
    mask = _mask_image(mask_or_cells, size)
    if mask.getbbox() is None:
        return None
    width = width or _edge_width(size)
    # Dilate at a reduced scale (cheaper on large images), then cut the full-size mask out of the
    # upsampled ring so the line still never covers the region itself.
    scale = min(1.0, OUTLINE_WORK_SIDE / max(size))
    small_w = max(1, round(width * scale))
    small = (
        mask
        if scale == 1.0
        else mask.resize(
            (max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.BOX
        ).point(lambda v: 255 if v else 0)
    )
    ring = ImageChops.subtract(_dilate(small, small_w), small)
    if ring.getbbox() is None:  # the region fills the image: inner border
        ring = ImageChops.subtract(small, ImageChops.invert(_dilate(ImageChops.invert(small), small_w)))
        return (
            ring if scale == 1.0 else ImageChops.multiply(ring.resize(size, Image.Resampling.NEAREST), mask)
        )
    return ring if scale == 1.0 else ImageChops.subtract(ring.resize(size, Image.Resampling.NEAREST), mask)


def _dilate(mask: Image.Image, radius: int) -> Image.Image:
    """Binary dilation of an 'L' 0/255 mask: a box blur is non-zero exactly near the region, and unlike
    a max (rank) filter its cost does not grow with the radius."""
    return mask.filter(ImageFilter.BoxBlur(radius)).point(lambda v: 255 if v else 0)


def _mask_image(mask_or_cells, size: tuple[int, int]) -> Image.Image:
    """An 'L' image (0/255) at ``size`` from a mask image/array (any mode) or from grid cells."""
    if isinstance(mask_or_cells, Image.Image):
        arr = np.asarray(mask_or_cells)
    elif isinstance(mask_or_cells, np.ndarray):
        arr = mask_or_cells
    else:
        return Image.fromarray(cells_to_mask(set(mask_or_cells), size).astype(np.uint8) * 255)
    if arr.ndim == 3:
        arr = arr.any(axis=2)
    img = Image.fromarray(arr.astype(bool).astype(np.uint8) * 255)
    return img if img.size == size else img.resize(size, Image.Resampling.NEAREST)


def heatmap_overlay(
    image: Image.Image, scores: np.ndarray, *, alpha: float = 0.55, vmax: float | None = None
) -> Image.Image:
    """The image under a colour-mapped score map (the comparator's 16x16 scores or its heat map).

    Scores are scaled to [0, vmax] (default: the map's maximum, so a normal pair with tiny scores
    still shows its relative structure; pass ``vmax`` to put pairs on one scale). Higher scores are
    also more opaque, so low-score areas keep the product visible. The map is upsampled and blended
    by PIL in C.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D grid, got shape {scores.shape}")
    base = image.convert("RGB") if image.mode != "RGB" else image
    scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
    top = float(vmax) if vmax is not None else float(scores.max())
    norm = (scores / top).clip(0.0, 1.0) if top > 0 else np.zeros_like(scores)
    level = Image.fromarray((norm * 255).astype(np.uint8))
    if level.size != base.size:
        level = level.resize(base.size, Image.Resampling.BILINEAR)
    colour = Image.merge("RGB", [level.point(_LUT[:, c].tolist()) for c in range(3)])
    opacity = level.point([round(255 * alpha * (0.35 + 0.65 * v / 255)) for v in range(256)])
    return Image.composite(colour, base, opacity)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most ``max_side``: cheap display copies."""
    w, h = image.size
    if max(w, h) <= max_side:
        return image
    scale = max_side / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
