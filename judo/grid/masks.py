"""Defect masks (PIL images or arrays of any mode and size) -> the grid cells they touch."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from judo.grid.cells import GRID_SIZE, Cell


def _colour_rule(arr: np.ndarray, has_alpha: bool) -> np.ndarray:
    """(H, W, C) -> (H, W) bool: a pixel is set when any colour channel is nonzero.

    With an alpha channel, transparent pixels never count (tools often store white under alpha 0);
    when no visible pixel has any colour, the alpha channel itself is the mask.
    """
    n_colour = arr.shape[2] - 1 if has_alpha else arr.shape[2]
    colour = _nonzero(arr[..., 0]).copy()  # OR-ed into below: never alias the caller's array
    for k in range(1, n_colour):  # per-channel OR: far faster than .any(axis=2) over a 3-wide axis
        colour |= _nonzero(arr[..., k])
    if not has_alpha:
        return colour
    alpha = _nonzero(arr[..., -1])
    colour &= alpha
    return colour if colour.any() else alpha


def _nonzero(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind == "f":
        return (arr != 0) & ~np.isnan(arr)
    if arr.dtype.kind in "iu":
        return arr != 0
    raise TypeError(f"mask array has unsupported dtype {arr.dtype}; use bool, integer or float")


# Modes whose ``getbbox`` is reliable in C (it misreads 16-bit modes); the rest go through numpy.
_BBOX_MODES = frozenset({"1", "L", "RGB", "RGBA", "LA"})


def _image_to_bool(img: Image.Image) -> tuple[np.ndarray, int, int]:
    """PIL mask -> (bool array of its non-empty bounding box, x offset, y offset).

    ``getbbox`` runs in C and masks are mostly background, so cropping first keeps large masks cheap.
    Palette images are read by their colours (black = background), as a viewer would show them.
    """
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "La":
        img = img.convert("LA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    if img.mode not in _BBOX_MODES:  # I, I;16*, F: numeric single-band images
        sub, ox, oy, _ = _array_to_bool(np.asarray(img))
        return sub, ox, oy
    bbox = img.getbbox()  # transparent pixels trimmed for alpha modes, all-zero pixels otherwise
    if bbox is None:
        return np.zeros((0, 0), dtype=bool), 0, 0
    x0, y0, _, _ = bbox
    arr = np.asarray(img.crop(bbox))
    if arr.ndim == 2:
        return _nonzero(arr), x0, y0
    return _colour_rule(arr, has_alpha=img.mode in ("RGBA", "LA")), x0, y0


def _array_to_bool(mask: Any) -> tuple[np.ndarray, int, int, tuple[int, int]]:
    """Array mask -> (bool array of its non-empty bounding box, x offset, y offset, (height, width))."""
    arr = np.asarray(mask)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(
            f"mask must be a PIL image or a numeric array, got {type(mask).__name__} of {arr.dtype}"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (2, 3, 4))):
        raise ValueError(
            f"mask array must be (H, W) or (H, W, C) with C in 1..4 (channels last), got shape {arr.shape}"
        )
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        return arr.reshape(0, 0).astype(bool), 0, 0, (height, width)
    # Crop to the rows/columns holding any nonzero value first (two fast passes); masks are mostly empty.
    rows = np.flatnonzero(arr.reshape(height, -1).any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=bool), 0, 0, (height, width)
    band = arr[rows[0] : rows[-1] + 1]
    col_any = band.any(axis=0)
    cols = np.flatnonzero(col_any if col_any.ndim == 1 else col_any.any(axis=1))
    crop = band[:, cols[0] : cols[-1] + 1]
    sub = _nonzero(crop) if crop.ndim == 2 else _colour_rule(crop, has_alpha=crop.shape[2] in (2, 4))
    return sub, int(cols[0]), int(rows[0]), (height, width)


def mask_to_cells(mask: Image.Image | np.ndarray, grid: int = GRID_SIZE) -> set[Cell]:
    """Cells of the grid that contain at least one set mask pixel.

    ``mask`` is a PIL image (any mode: 1, L, P, I, F, RGB, RGBA, LA, ...) or an array shaped (H, W) or
    (H, W, C). A pixel is set when it is nonzero; for colour masks such as MMAD's ``rbg_mask`` when any
    colour channel is nonzero (see :func:`_colour_rule` for alpha). "Any pixel" follows the paper: a
    cell is anomalous when it overlaps the defect at all.
    """
    if isinstance(mask, (str, bytes)) or hasattr(mask, "__fspath__"):
        raise TypeError(
            "mask_to_cells takes an image or array, not a path; load it with judo.images.load_mask"
        )
    if isinstance(mask, Image.Image):
        width, height = mask.size
        if width == 0 or height == 0:
            raise ValueError(f"mask image is empty ({width}x{height})")
        sub, ox, oy = _image_to_bool(mask)
    else:
        sub, ox, oy, (height, width) = _array_to_bool(mask)
        if width == 0 or height == 0:
            raise ValueError(f"mask array is empty (shape {np.shape(mask)})")
    if sub.size == 0 or not sub.any():
        return set()
    # Columns first: reducing along the contiguous axis is the cheap direction for row-major arrays.
    c0, by_col = _cells_hit(sub, ox, width, grid, axis=1)
    r0, hit = _cells_hit(by_col, oy, height, grid, axis=0)
    rs, cs = np.nonzero(hit)
    return {(r0 + r, c0 + c) for r, c in zip(rs.tolist(), cs.tolist(), strict=True)}


def _cells_hit(sub: np.ndarray, offset: int, length: int, grid: int, axis: int) -> tuple[int, np.ndarray]:
    """OR-reduce ``sub`` (a window starting at pixel ``offset`` of an axis of ``length`` px) per cell.

    Returns the first cell index covered by the window and the reduced array along ``axis``.
    """
    span = sub.shape[axis]
    starts = np.arange(grid) * length // grid
    if length >= grid:  # cells partition the pixels: find the cells holding the window's ends
        first = int(np.searchsorted(starts, offset, side="right")) - 1
        last = int(np.searchsorted(starts, offset + span - 1, side="right")) - 1
        local = np.maximum(starts[first : last + 1] - offset, 0)
    else:  # several cells share one pixel: each takes the pixel its edge falls in
        first = int(np.searchsorted(starts, offset, side="left"))
        last = int(np.searchsorted(starts, offset + span - 1, side="right")) - 1
        local = starts[first : last + 1] - offset
    return first, np.logical_or.reduceat(sub, local, axis=axis)
