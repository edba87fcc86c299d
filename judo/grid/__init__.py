"""The 16x16 patch-grid language: the one place that knows how seg cells are written, read and drawn.

A 448x448 image becomes exactly 16x16 vision tokens in Qwen2.5-VL, so JUDO names anomalous regions by
grid cell: ``<seg> (11,12)-(11,14), (12,11) </seg>``. Cells are ``(row, col)``, 0-based, row 0 at the
top. Everything that produces or consumes seg text (training targets, rewards, the app's red patches,
the evaluator) goes through this package, so the language is defined once:

- :mod:`judo.grid.cells`: the cell type, validation, and F1/IoU between cell sets;
- :mod:`judo.grid.geometry`: each cell's pixel box on any image size, cells -> mask;
- :mod:`judo.grid.masks`: defect masks of any mode and size -> cells;
- :mod:`judo.grid.text`: the seg text, written canonically, read leniently, strictly or streaming.
"""

from judo.grid.cells import GRID_SIZE, Cell, seg_f1, seg_iou
from judo.grid.geometry import cell_box, cell_boxes, cells_to_mask
from judo.grid.masks import mask_to_cells
from judo.grid.text import (
    SEG_CLOSE,
    SEG_OPEN,
    SegFormatError,
    format_seg,
    format_seg_body,
    locate_seg,
    parse_seg,
    parse_seg_prefix,
    scan_seg_body,
)

__all__ = [
    "GRID_SIZE",
    "SEG_CLOSE",
    "SEG_OPEN",
    "Cell",
    "SegFormatError",
    "cell_box",
    "cell_boxes",
    "cells_to_mask",
    "format_seg",
    "format_seg_body",
    "locate_seg",
    "mask_to_cells",
    "parse_seg",
    "parse_seg_prefix",
    "scan_seg_body",
    "seg_f1",
    "seg_iou",
]
