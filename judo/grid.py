"""The 16x16 patch-grid language: the one place that knows how seg cells are written, read and drawn.

A 448x448 image becomes exactly 16x16 vision tokens in Qwen2.5-VL, so JUDO names anomalous regions by
grid cell: ``<seg> (11,12)-(11,14), (12,11) </seg>``. Cells are ``(row, col)``, 0-based, row 0 at the
top. Everything that produces or consumes seg text (training targets, rewards, the app's red patches,
the evaluator) goes through this module, so the language is defined once.

Geometry: cell boundaries are integers, ``x0 = col * width // 16`` (see :func:`cell_box`). For images
at least 16 px wide and tall the cells partition the pixels, so
``mask_to_cells(cells_to_mask(cells, size)) == cells``. Smaller images have fewer pixels than cells:
each cell then owns the one pixel its left/top edge falls in, so one pixel covers several cells.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "GRID_SIZE", "Cell", "SegFormatError", "SegScanner", "mask_to_cells", "format_seg", "format_seg_body",
    "parse_seg", "parse_seg_prefix", "locate_seg", "cell_box", "cell_boxes", "cells_to_mask", "seg_f1",
    "seg_iou",
]

GRID_SIZE = 16
Cell = tuple[int, int]

SEG_OPEN = "<seg>"
SEG_CLOSE = "</seg>"

# Dashes models and the paper write between the ends of a run: hyphen-minus, en dash, em dash,
# minus sign, hyphen, non-breaking hyphen, figure dash.
_DASH = "[-\u2013\u2014\u2212\u2010\u2011\u2012]"
_NUM = "[-\u2212]?[0-9]+"
_CELL = rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)"
# One item: a single cell, or a run "(r,c1)-(r,c2)". Groups 3-4 are the run's end cell.
_ITEM = re.compile(rf"{_CELL}(?:\s*{_DASH}\s*{_CELL})?")
# Text that could still grow into a run tail "-(r,c)" (streaming): a single cell followed by this,
# up to the end of the text, may yet become a run, so it is not complete.
_TAIL_PREFIX = re.compile(
    rf"\s*(?:{_DASH}\s*(?:\(\s*(?:[-\u2212]|{_NUM}\s*(?:,\s*(?:[-\u2212]|{_NUM}\s*)?)?)?)?)?\Z"
)
_ITEM_SYNTAX = rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*\)(?:\s*{_DASH}\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\))?"
_STRICT_SYNTAX = re.compile(rf"\s*{_ITEM_SYNTAX}(?:\s*,\s*{_ITEM_SYNTAX})*\s*,?\s*")
_SEP = re.compile(r"\s*,\s*")
_TRAILING = re.compile(r"\s*,?\s*")
_DANGLING_RUN = re.compile(rf"\s*{_DASH}")
_NONE_BODY = re.compile(r"\s*(?:none|NONE|None)?\s*")


class SegFormatError(ValueError):
    """A seg string that breaks the grammar. ``reason`` says what is wrong, in words a person can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------------------------- geometry

def _check_size(size: Any) -> tuple[int, int]:
    try:
        width, height = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise TypeError(f"size must be (width, height) integers, got {size!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got (width={width}, height={height})")
    return width, height


def _check_cell(cell: Any, grid: int = GRID_SIZE) -> Cell:
    try:
        row, col = cell
        row, col = operator.index(row), operator.index(col)
    except (TypeError, ValueError):
        raise TypeError(f"a cell is a (row, col) pair of integers, got {cell!r}") from None
    if not (0 <= row < grid and 0 <= col < grid):
        raise ValueError(f"cell {(row, col)} is outside the {grid}x{grid} grid (indices 0..{grid - 1})")
    return row, col


def _edges(length: int, grid: int) -> list[tuple[int, int]]:
    """Integer [start, end) pixel span of each cell along one axis; never empty."""
    starts = [i * length // grid for i in range(grid)]
    return [(s, max(s + 1, (i + 1) * length // grid)) for i, s in enumerate(starts)]


def cell_box(cell: Cell, size: tuple[int, int], grid: int = GRID_SIZE) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` of ``cell`` on an image of ``size=(width, height)``.

    ``x1``/``y1`` are exclusive (PIL's crop convention). Boxes of one image tile it exactly when
    width and height are at least ``grid``; non-square images get non-square cells.
    """
    row, col = _check_cell(cell, grid)
    width, height = _check_size(size)
    x0 = col * width // grid
    y0 = row * height // grid
    return x0, y0, max(x0 + 1, (col + 1) * width // grid), max(y0 + 1, (row + 1) * height // grid)


def cell_boxes(size: tuple[int, int], grid: int = GRID_SIZE) -> list[list[tuple[int, int, int, int]]]:
    """Every cell's box, indexed ``[row][col]`` (same numbers as :func:`cell_box`)."""
    width, height = _check_size(size)
    xs, ys = _edges(width, grid), _edges(height, grid)
    return [[(x0, y0, x1, y1) for x0, x1 in xs] for y0, y1 in ys]


def cells_to_mask(cells: Iterable[Cell], size: tuple[int, int], grid: int = GRID_SIZE) -> np.ndarray:
    """A ``(height, width)`` bool mask with the pixels of ``cells`` set."""
    width, height = _check_size(size)
    mask = np.zeros((height, width), dtype=bool)
    xs, ys = _edges(width, grid), _edges(height, grid)
    for cell in cells:
        row, col = _check_cell(cell, grid)
        (y0, y1), (x0, x1) = ys[row], xs[col]
        mask[y0:y1, x0:x1] = True
    return mask


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
        raise TypeError(f"mask must be a PIL image or a numeric array, got {type(mask).__name__} of {arr.dtype}")
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
    band = arr[rows[0]:rows[-1] + 1]
    col_any = band.any(axis=0)
    cols = np.flatnonzero(col_any if col_any.ndim == 1 else col_any.any(axis=1))
    crop = band[:, cols[0]:cols[-1] + 1]
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
        raise TypeError("mask_to_cells takes an image or array, not a path; load it with judo.images.load_mask")
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
        local = np.maximum(starts[first:last + 1] - offset, 0)
    else:  # several cells share one pixel: each takes the pixel its edge falls in
        first = int(np.searchsorted(starts, offset, side="left"))
        last = int(np.searchsorted(starts, offset + span - 1, side="right")) - 1
        local = starts[first:last + 1] - offset
    return first, np.logical_or.reduceat(sub, local, axis=axis)


# ----------------------------------------------------------------------------------------------- text

def _normalise_cells(cells: Iterable[Cell]) -> list[Cell]:
    """Validated, de-duplicated, sorted cells; plain int pairs take the fast path."""
    if isinstance(cells, (str, bytes)):
        raise TypeError("cells must be an iterable of (row, col) pairs; to read seg text use parse_seg")
    out = set()
    for cell in cells:
        try:
            row, col = cell
        except (TypeError, ValueError):
            raise TypeError(f"a cell is a (row, col) pair of integers, got {cell!r}") from None
        if row.__class__ is not int or col.__class__ is not int or not (
            0 <= row < GRID_SIZE and 0 <= col < GRID_SIZE
        ):
            row, col = _check_cell(cell)
        out.add((row, col))
    return sorted(out)


def format_seg_body(cells: Iterable[Cell]) -> str:
    """Canonical body: rows ascending, horizontal runs ``(r,c1)-(r,c2)``, singles ``(r,c)``, ``", "``-joined."""
    ordered = _fast_sorted(cells)
    if ordered is None:
        ordered = _normalise_cells(cells)
    parts: list[str] = []
    append = parts.append
    row = start = end = -2
    for r, c in ordered:
        if r == row and c == end + 1:
            end = c
            continue
        if row >= 0:
            append(f"({row},{start})" if end == start else f"({row},{start})-({row},{end})")
        row, start, end = r, c, c
    if row >= 0:
        append(f"({row},{start})" if end == start else f"({row},{start})-({row},{end})")
    return ", ".join(parts)


def _fast_sorted(cells: Iterable[Cell]) -> list[Cell] | None:
    """Sorted unique cells when they are all plain in-range int pairs, else None (take the checked path)."""
    if isinstance(cells, (str, bytes)):
        return None
    try:
        ordered = sorted(set(cells))
    except TypeError:
        return None
    n = GRID_SIZE
    for cell in ordered:
        if cell.__class__ is not tuple or len(cell) != 2:
            return None
        r, c = cell
        if r.__class__ is not int or c.__class__ is not int or not (0 <= r < n and 0 <= c < n):
            return None
    return ordered


def format_seg(cells: Iterable[Cell]) -> str:
    """``<seg> body </seg>``; the empty set is ``<seg> </seg>`` (what a normal image is trained to say)."""
    body = format_seg_body(cells)
    return f"<seg> {body} </seg>" if body else "<seg> </seg>"


def locate_seg(text: str) -> tuple[int, int, bool, bool]:
    """Where the seg body is: ``(start, end, closed, terminated)``.

    The body starts after the first ``<seg>`` and ends at the next ``<`` (a seg body never holds one,
    so the next tag ends it, whichever it is). ``closed``: that tag is ``</seg>``. ``terminated``: some
    tag ended the body, i.e. it can no longer grow. Without ``<seg>``: a ``</seg>`` with no tag before it
    ends a body that starts at 0 (the opening tag was in the prompt); otherwise the text is a bare body.
    """
    start = text.find(SEG_OPEN)
    if start >= 0:
        start += len(SEG_OPEN)
    else:
        start = 0
    end = text.find("<", start)
    if end < 0:
        return start, len(text), False, False
    return start, end, text.startswith(SEG_CLOSE, end), True


def _int(s: str) -> int:
    return int(s) if s[0] != "\u2212" else -int(s[1:])


def _add_item(cells: set[Cell], r1: str, c1: str, r2: str | None, c2: str | None) -> None:
    """Lenient reading of one item: out-of-grid cells are dropped, a run is clipped to the grid, a
    reversed run is read forwards, and a run across rows contributes its two end cells."""
    row, col = _int(r1), _int(c1)
    if r2 is None:
        if 0 <= row < GRID_SIZE and 0 <= col < GRID_SIZE:
            cells.add((row, col))
        return
    row2, col2 = _int(r2), _int(c2)  # type: ignore[arg-type]
    if row2 != row:
        for r, c in ((row, col), (row2, col2)):
            if 0 <= r < GRID_SIZE and 0 <= c < GRID_SIZE:
                cells.add((r, c))
        return
    if not 0 <= row < GRID_SIZE:
        return
    lo, hi = (col, col2) if col <= col2 else (col2, col)
    for c in range(max(lo, 0), min(hi, GRID_SIZE - 1) + 1):
        cells.add((row, c))


def _read_body(body: str) -> set[Cell]:
    """Lenient reading of a whole body (the hot path of rewards and evaluation: kept inline)."""
    items = _ITEM.findall(body)
    cells: set[Cell] = set()
    if "\u2212" in body:  # a unicode minus: int() cannot read it, take the general path
        for r1, c1, r2, c2 in items:
            _add_item(cells, r1, c1, r2 or None, c2 or None)
        return cells
    add, n = cells.add, GRID_SIZE
    for r1, c1, r2, c2 in items:
        row, col = int(r1), int(c1)
        if not r2:
            if 0 <= row < n and 0 <= col < n:
                add((row, col))
            continue
        end = int(c2)
        if int(r2) == row and 0 <= row < n and 0 <= col <= end < n:
            for c in range(col, end + 1):
                add((row, c))
        else:
            _add_item(cells, r1, c1, r2, c2)
    return cells


def _describe(snippet: str, limit: int = 40) -> str:
    snippet = snippet.strip()
    return repr(snippet if len(snippet) <= limit else snippet[:limit] + "...")


def _strict_body(body: str) -> set[Cell]:
    """Read a body under the full grammar; raise SegFormatError naming the first problem.

    Fast path: one regex checks the syntax and the values are checked in a tight loop; only a body
    that fails goes through the item-by-item walk that finds the words for the error.
    """
    if _NONE_BODY.fullmatch(body):
        return set()
    if _STRICT_SYNTAX.fullmatch(body) and "\u2212" not in body:
        cells: set[Cell] = set()
        add, n = cells.add, GRID_SIZE
        for r1, c1, r2, c2 in _ITEM.findall(body):
            row, col = int(r1), int(c1)
            if not (0 <= row < n and 0 <= col < n):
                break
            if not r2:
                add((row, col))
                continue
            end = int(c2)
            if int(r2) != row or not col <= end < n:
                break
            for c in range(col, end + 1):
                add((row, c))
        else:
            return cells
    return _strict_walk(body)


def _strict_walk(body: str) -> set[Cell]:
    """Item-by-item strict reading that raises with the precise reason and the offending text."""
    cells: set[Cell] = set()
    prev_end, prev_text = 0, ""
    for m in _ITEM.finditer(body):
        gap = body[prev_end:m.start()]
        if not prev_text:
            if gap and not gap.isspace():
                raise SegFormatError(f"unexpected text {_describe(gap)} before the first cell")
        elif not _SEP.fullmatch(gap):
            if gap.count(",") > 1 and not gap.replace(",", "").strip():
                raise SegFormatError(f"empty item: several commas between {prev_text!r} and {m.group(0)!r}")
            if not gap or gap.isspace():
                raise SegFormatError(f"missing comma between {prev_text!r} and {m.group(0)!r}")
            if _DANGLING_RUN.match(gap):
                raise SegFormatError(f"incomplete run: {prev_text + gap.rstrip()!r} has no valid end cell")
            raise SegFormatError(f"unexpected text {_describe(gap)} between {prev_text!r} and {m.group(0)!r}")
        _check_item(m)
        r1, c1, r2, c2 = m.groups()
        _add_item(cells, r1, c1, r2, c2)
        prev_end, prev_text = m.end(), m.group(0)
    tail = body[prev_end:]
    if not prev_text:
        raise SegFormatError(f"no cells in seg body {_describe(body)}: write (row,col) cells or leave it empty")
    if not _TRAILING.fullmatch(tail):
        if _DANGLING_RUN.match(tail):
            raise SegFormatError(f"incomplete run: {prev_text + tail.rstrip()!r} has no valid end cell")
        raise SegFormatError(f"unexpected text {_describe(tail)} after the last cell {prev_text!r}")
    return cells


def _check_item(m: re.Match[str]) -> None:
    r1, c1, r2, c2 = m.groups()
    values = [(r1, c1)] if r2 is None else [(r1, c1), (r2, c2)]
    for r, c in values:
        row, col = _int(r), _int(c)
        if not (0 <= row < GRID_SIZE and 0 <= col < GRID_SIZE):
            raise SegFormatError(
                f"cell ({row},{col}) in {m.group(0)!r} is out of range: rows and columns are 0..{GRID_SIZE - 1}"
            )
    if r2 is None:
        return
    if _int(r1) != _int(r2):
        raise SegFormatError(f"run {m.group(0)!r} crosses rows {_int(r1)} and {_int(r2)}: a run stays in one row")
    if _int(c1) > _int(c2):
        raise SegFormatError(f"run {m.group(0)!r} is reversed: its start column must not exceed its end column")


def _strict_tags(text: str) -> str:
    """The body between the only ``<seg>`` and the only ``</seg>``; raise on any tag problem."""
    n_open, n_close = text.count(SEG_OPEN), text.count(SEG_CLOSE)
    if n_open == 0 and n_close == 0:
        raise SegFormatError("missing <seg> ... </seg> tags")
    if n_open == 0:
        raise SegFormatError("missing the opening <seg> tag")
    if n_close == 0:
        raise SegFormatError("unclosed <seg>: no </seg> follows it")
    if n_open > 1:
        raise SegFormatError(f"duplicate <seg> tag ({n_open} found): write one seg block")
    if n_close > 1:
        raise SegFormatError(f"duplicate </seg> tag ({n_close} found): write one seg block")
    start, end = text.index(SEG_OPEN) + len(SEG_OPEN), text.index(SEG_CLOSE)
    if end < start:
        raise SegFormatError("</seg> comes before <seg>")
    body = text[start:end]
    inner = body.find("<")
    if inner >= 0:
        raise SegFormatError(f"unexpected tag {_describe(body[inner:], 20)} inside <seg> ... </seg>")
    return body


def parse_seg(text: str, strict: bool = False) -> set[Cell]:
    """Cells written in the first ``<seg>...</seg>`` of ``text`` (or in a bare body without tags).

    Lenient mode (the default) never raises and returns whatever cells it can read: it accepts every
    dash the paper and models use, spaces and newlines anywhere, ``( 3 , 7 )``, trailing commas,
    ``none``/empty, an unclosed tag, and skips text it cannot read. ``strict=True`` is the grammar a
    reward checks: exactly one ``<seg>`` and ``</seg>``, comma-separated items, every index in range,
    runs within one row and left to right; otherwise :class:`SegFormatError` says what is wrong.
    """
    if strict:
        if not isinstance(text, str):
            raise SegFormatError(f"seg text must be a string, got {type(text).__name__}")
        return _strict_body(_strict_tags(text))
    if not isinstance(text, str):
        return set()
    start, end, _, _ = locate_seg(text)
    return _read_body(text[start:end])


class SegScanner:
    """Reads one seg body while it streams in, without re-reading what it has already committed.

    Call :meth:`feed` with the whole body so far (each call extends the previous one). It returns the
    cells of every COMPLETE item: a run whose end cell is written, or a single cell followed by text that
    cannot turn it into a run. ``(1,2)-`` and a bare trailing ``(1,2)`` are pending: the next tokens may
    make them a run. :meth:`pending` gives the cells a pending item would add if the body ended now.
    """

    __slots__ = ("cells", "_pos", "_pending")

    def __init__(self) -> None:
        self.cells: set[Cell] = set()
        self._pos = 0
        self._pending: set[Cell] = set()

    def feed(self, body: str, complete: bool = False) -> set[Cell]:
        """Advance over ``body``; ``complete=True`` when the body can no longer grow (a tag ended it)."""
        self._pending = set()
        pos = self._pos
        for m in _ITEM.finditer(body, pos):
            r1, c1, r2, c2 = m.groups()
            if r2 is None and not complete and _TAIL_PREFIX.match(body, m.end()):
                _add_item(self._pending, r1, c1, None, None)
                self._pos = m.start()
                return self.cells
            _add_item(self.cells, r1, c1, r2, c2)
            pos = m.end()
        # Nothing before the last "(" can still start an item: skip it next time.
        last_paren = body.rfind("(", pos)
        self._pos = last_paren if last_paren >= 0 else len(body)
        return self.cells

    def pending(self) -> set[Cell]:
        return self._pending


def parse_seg_prefix(text: str) -> set[Cell]:
    """Cells of every complete item in a possibly unfinished seg (streaming).

    ``"<seg> (1,2)-(1,4), (3,"`` gives ``{(1,2), (1,3), (1,4)}``; ``"<seg> (1,2)-"`` gives nothing
    yet, since the run's end is not written. Once a tag ends the body this equals :func:`parse_seg`.
    Never raises.
    """
    if not isinstance(text, str):
        return set()
    start, end, _, terminated = locate_seg(text)
    return SegScanner().feed(text[start:end], complete=terminated)


# ----------------------------------------------------------------------------------------------- scores

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
