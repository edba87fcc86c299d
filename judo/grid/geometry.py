"""Where each cell lies on an image of any size, and the mask a set of cells covers.

Cell boundaries are integers, ``x0 = col * width // 16``. For images at least 16 px wide and tall the
cells partition the pixels, so ``mask_to_cells(cells_to_mask(cells, size)) == cells``. Smaller images
have fewer pixels than cells: each cell then owns the one pixel its left/top edge falls in.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from judo.grid.cells import GRID_SIZE, Cell, check_cell, check_size


def _edges(length: int, grid: int) -> list[tuple[int, int]]:
    """Integer [start, end) pixel span of each cell along one axis; never empty."""
    starts = [i * length // grid for i in range(grid)]
    return [(s, max(s + 1, (i + 1) * length // grid)) for i, s in enumerate(starts)]


def cell_box(cell: Cell, size: tuple[int, int], grid: int = GRID_SIZE) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` of ``cell`` on an image of ``size=(width, height)``.

    ``x1``/``y1`` are exclusive (PIL's crop convention). Boxes of one image tile it exactly when
    width and height are at least ``grid``; non-square images get non-square cells.
    """
    row, col = check_cell(cell, grid)
    width, height = check_size(size)
    x0 = col * width // grid
    y0 = row * height // grid
    return x0, y0, max(x0 + 1, (col + 1) * width // grid), max(y0 + 1, (row + 1) * height // grid)


def cell_boxes(size: tuple[int, int], grid: int = GRID_SIZE) -> list[list[tuple[int, int, int, int]]]:
    """Every cell's box, indexed ``[row][col]`` (same numbers as :func:`cell_box`)."""
    width, height = check_size(size)
    xs, ys = _edges(width, grid), _edges(height, grid)
    return [[(x0, y0, x1, y1) for x0, x1 in xs] for y0, y1 in ys]


def cells_to_mask(cells: Iterable[Cell], size: tuple[int, int], grid: int = GRID_SIZE) -> np.ndarray:
    """A ``(height, width)`` bool mask with the pixels of ``cells`` set."""
    width, height = check_size(size)
    mask = np.zeros((height, width), dtype=bool)
    xs, ys = _edges(width, grid), _edges(height, grid)
    for cell in cells:
        row, col = check_cell(cell, grid)
        (y0, y1), (x0, x1) = ys[row], xs[col]
        mask[y0:y1, x0:x1] = True
    return mask
