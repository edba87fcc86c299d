"""From a pixel map to the 16x16 grid: pool per cell, then pick cells with a pair-adaptive threshold.

Why adaptive: how different two normal photos look depends on the product (a glossy can reflects
differently each time, a carpet never aligns fibre for fibre) and on the pair. A fixed threshold is
either blind on clean pairs or noisy on hard ones. Most of a picture is normal, so the cell values
of one pair describe its own noise floor: the threshold is a robust z-score above the median cell
(median + K x MAD), never below an absolute floor so that a normal, well-matched pair yields no
cells at all (a z-score alone would always flag the "least normal" cells).

Why grow: a cell counts as anomalous when the defect touches it at all (judo.grid), so cells next
to a clear detection are accepted at a lower score (hysteresis), which recovers the thin borders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from judo.grid import GRID_SIZE, Cell, cell_boxes

#: The threshold in noise units (see features.py): at least this, whatever the pair.
ABSOLUTE_FLOOR = 1.5
#: The noise floor needs at least this many cells to rest on.
MIN_STAT_CELLS = 12
#: Robust z above the pair's median cell.
Z_THRESHOLD = 6.0
#: A neighbour of a detected cell is accepted at this fraction of the threshold, up to GROW_RINGS cells
#: away (a defect's rim rarely reaches the threshold in the cells it only grazes).
GROW_FRACTION, GROW_RINGS = 0.7, 2
#: Cells scoring within this factor of the threshold (above or below) are "borderline": a small change
#: of sensitivity flips them, so an answer resting on them says so.
BORDERLINE_BAND = 1.25


@dataclass(frozen=True)
class CellSelection:
    """scores: cell values divided by the threshold (>= 1 means anomalous); threshold in map units;
    borderline: cells whose score lies within BORDERLINE_BAND of the threshold, on either side."""

    scores: np.ndarray
    cells: set[Cell]
    threshold: float
    borderline: set[Cell] = field(default_factory=set)


def pool_cells(
    pixel_map: np.ndarray, stat: str = "max", margin: int = 0, grid: int = GRID_SIZE
) -> np.ndarray:
    """One value per judo.grid cell of an (H, W) map: the max or mean over the cell's box.

    `margin` shrinks every box by that many pixels per side before pooling: a map smoothed at scale
    s spills about 1.5 s pixels of a neighbour's defect into a cell, and that spill must not count
    as evidence for the cell itself.
    """
    height, width = pixel_map.shape
    if height == width and height % grid == 0:
        # Equal square cells (the analysis maps): one vectorised reduction over a cells view.
        side = height // grid
        m = min(margin, (side - 1) // 2)
        blocks = pixel_map.reshape(grid, side, grid, side)[:, m : side - m, :, m : side - m]
        return (blocks.max(axis=(1, 3)) if stat == "max" else blocks.mean(axis=(1, 3))).astype(np.float64)
    boxes = cell_boxes((width, height))
    out = np.zeros((grid, grid), dtype=np.float64)
    reduce = np.max if stat == "max" else np.mean
    for r in range(grid):
        for c in range(grid):
            x0, y0, x1, y1 = boxes[r][c]
            mx, my = min(margin, (x1 - x0 - 1) // 2), min(margin, (y1 - y0 - 1) // 2)
            block = pixel_map[y0 + my : y1 - my, x0 + mx : x1 - mx]
            out[r, c] = float(reduce(block)) if block.size else 0.0
    return out


def _grow(above: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Add cells that are `near` the threshold and 8-connected to an `above` cell (one ring)."""
    padded = np.pad(above, 1)
    neighbour = np.zeros_like(above)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            neighbour |= padded[1 + dr : 1 + dr + above.shape[0], 1 + dc : 1 + dc + above.shape[1]]
    return above | (neighbour & near)


def adaptive_threshold(values: np.ndarray, where: np.ndarray | None = None) -> float:
    """The pair-adaptive threshold of a (16, 16) grid of cell values (see the module docstring), its
    noise floor taken over the cells `where` is True (default all; fewer than MIN_STAT_CELLS: all)."""
    if where is not None and int(where.sum()) >= MIN_STAT_CELLS:
        values = values[where]
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    return max(ABSOLUTE_FLOOR, median + Z_THRESHOLD * mad)


def select_cells(
    values: np.ndarray, threshold: float | None = None, sensitivity: float = 1.0
) -> CellSelection:
    """Threshold a (16, 16) grid of cell values: at `threshold` (default: the adaptive rule of the
    module docstring) divided by `sensitivity` (2 = twice as sensitive, 0.5 = half)."""
    if not sensitivity > 0:
        raise ValueError(f"sensitivity must be a positive number, got {sensitivity}")
    base = adaptive_threshold(values) if threshold is None else float(threshold)
    effective = base / sensitivity
    scores = values / effective
    chosen = scores >= 1.0
    for _ in range(GROW_RINGS):
        chosen = _grow(chosen, scores >= GROW_FRACTION)
    cells = {(int(r), int(c)) for r, c in zip(*np.nonzero(chosen), strict=True)}
    near = (scores >= 1.0 / BORDERLINE_BAND) & (scores < BORDERLINE_BAND)
    borderline = {(int(r), int(c)) for r, c in zip(*np.nonzero(near), strict=True)}
    return CellSelection(scores=scores, cells=cells, threshold=effective, borderline=borderline)
