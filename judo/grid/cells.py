"""Cells of the 16x16 grid and the scores between two sets of them.

Cells are ``(row, col)``, 0-based, row 0 at the top: one per vision token of a 448x448 image.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

GRID_SIZE = 16
Cell = tuple[int, int]


def check_size(size: Any) -> tuple[int, int]:
    """``(width, height)`` as positive ints (PIL's order), or a TypeError/ValueError that says why not."""
    try:
        width, height = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise TypeError(f"size must be (width, height) integers, got {size!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got (width={width}, height={height})")
    return width, height


def check_cell(cell: Any, grid: int = GRID_SIZE) -> Cell:
    """``(row, col)`` as plain ints inside the grid (numpy ints welcome), or an error naming the cell."""
    try:
        row, col = cell
        row, col = operator.index(row), operator.index(col)
    except (TypeError, ValueError):
        raise TypeError(f"a cell is a (row, col) pair of integers, got {cell!r}") from None
    if not (0 <= row < grid and 0 <= col < grid):
        raise ValueError(f"cell {(row, col)} is outside the {grid}x{grid} grid (indices 0..{grid - 1})")
    return row, col


def seg_f1(pred: Iterable[Cell], truth: Iterable[Cell]) -> float:
    """Cell-level F1 (Dice). Both empty -> 1.0 (a normal image correctly left blank); exactly one
    empty -> 0.0 (a missed defect or a false alarm)."""
    p, t = set(pred), set(truth)
    if not p and not t:
        return 1.0
    if not p or not t:
        return 0.0
    return 2 * len(p & t) / (len(p) + len(t))


def seg_iou(pred: Iterable[Cell], truth: Iterable[Cell]) -> float:
    """Cell-level intersection over union, with the same empty-set convention as :func:`seg_f1`."""
    p, t = set(pred), set(truth)
    if not p and not t:
        return 1.0
    if not p or not t:
        return 0.0
    return len(p & t) / len(p | t)
