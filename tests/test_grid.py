"""The 16x16 seg language: text round trips, lenient and strict reading, streaming, masks and boxes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from judo.grid import (
    GRID_SIZE,
    SegFormatError,
    cell_box,
    cell_boxes,
    cells_to_mask,
    format_seg,
    format_seg_body,
    locate_seg,
    mask_to_cells,
    parse_seg,
    parse_seg_prefix,
    scan_seg_body,
    seg_f1,
    seg_iou,
)

cells_st = st.sets(st.tuples(st.integers(0, GRID_SIZE - 1), st.integers(0, GRID_SIZE - 1)), max_size=80)
DASHES = ["-", " - ", "\u2013", " \u2013 ", "\u2014", "\u2212", "  -\n "]


def run(row: int, c1: int, c2: int) -> set[tuple[int, int]]:
    return {(row, c) for c in range(c1, c2 + 1)}


# ------------------------------------------------------------------------------------------ format


def test_format_is_canonical() -> None:
    cells = run(11, 12, 14) | {(12, 11)}
    assert format_seg(cells) == "<seg> (11,12)-(11,14), (12,11) </seg>"
    assert format_seg_body(cells) == "(11,12)-(11,14), (12,11)"
    assert format_seg([(0, 0), (0, 2), (0, 1), (15, 15)]) == "<seg> (0,0)-(0,2), (15,15) </seg>"
    assert format_seg([(2, 5), (1, 9), (2, 4)]) == "<seg> (1,9), (2,4)-(2,5) </seg>"  # rows ascending


def test_format_empty_and_duplicates() -> None:
    assert format_seg(set()) == "<seg> </seg>"
    assert format_seg_body([]) == ""
    assert format_seg([(3, 3), (3, 3), (3, 4)]) == "<seg> (3,3)-(3,4) </seg>"


def test_format_accepts_numpy_ints_and_iterators() -> None:
    assert format_seg([(np.int64(1), np.uint8(2))]) == "<seg> (1,2) </seg>"
    assert format_seg((np.int64(1), c) for c in (3, 2)) == "<seg> (1,2)-(1,3) </seg>"
    assert format_seg(zip(np.array([4, 4]), np.array([0, 1]), strict=True)) == "<seg> (4,0)-(4,1) </seg>"


@pytest.mark.parametrize(
    ("cells", "error", "message"),
    [
        ([(16, 0)], ValueError, "outside the 16x16 grid"),
        ([(0, -1)], ValueError, "outside the 16x16 grid"),
        ([(1.5, 2)], TypeError, "pair of integers"),
        ([(1, 2, 3)], TypeError, "pair of integers"),
        ([5], TypeError, "pair of integers"),
        ("(1,2)", TypeError, "use parse_seg"),
    ],
)
def test_format_rejects_bad_cells(cells: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        format_seg(cells)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ parse


@settings(max_examples=300, deadline=None)
@given(cells_st)
def test_round_trip(cells: set[tuple[int, int]]) -> None:
    text = format_seg(cells)
    assert parse_seg(text) == cells
    assert parse_seg(text, strict=True) == cells
    assert parse_seg(format_seg_body(cells)) == cells
    assert parse_seg_prefix(text) == cells


@settings(max_examples=200, deadline=None)
@given(cells_st, st.sampled_from(DASHES), st.sampled_from([", ", ",", " ,  ", ",\n"]))
def test_written_variants_read_the_same(cells: set[tuple[int, int]], dash: str, sep: str) -> None:
    """Every dash and separator style models write reads to the same cells, strictly too."""
    body = format_seg_body(cells).replace(")-(", ")" + dash + "(").replace(", ", sep)
    text = f"<seg>\n {body} \n</seg>"
    assert parse_seg(text) == cells
    assert parse_seg(text, strict=True) == cells


PAPER = [
    # Figure 7 (stage 1 examples), en dashes as printed.
    (
        "<seg> (3,7)\u2013(3,8), (4,7)\u2013(4,8), (5,8), (6,8) </seg>",
        run(3, 7, 8) | run(4, 7, 8) | {(5, 8), (6, 8)},
    ),
    ("(3,7)\u2013(3,8), (4,7)\u2013(4,8), (5,8), (6,8)", run(3, 7, 8) | run(4, 7, 8) | {(5, 8), (6, 8)}),
    (
        "<seg> (11,13), (12,12)\u2013(12,13), (13,10)\u2013(13,12), (14,8)\u2013(14,11) </seg>",
        {(11, 13)} | run(12, 12, 13) | run(13, 10, 12) | run(14, 8, 11),
    ),
    # Appendix text (spaced hyphen) and section 3 (plain hyphen).
    ("<seg> (11,12) - (11,14), (12,11) </seg>", run(11, 12, 14) | {(12, 11)}),
    ("(11,12)-(11,14), (12,11)", run(11, 12, 14) | {(12, 11)}),
]


@pytest.mark.parametrize(("text", "cells"), PAPER)
def test_paper_strings(text: str, cells: set[tuple[int, int]]) -> None:
    assert parse_seg(text) == cells
    if text.startswith("<seg>"):
        assert parse_seg(text, strict=True) == cells


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("<seg> ( 3 , 7 ) </seg>", {(3, 7)}),
        ("<seg>(3,7)\u2014(3,9),</seg>", run(3, 7, 9)),
        ("<seg> (3,7)\u2212(3,8), , </seg>", run(3, 7, 8)),
        ("<seg> none </seg>", set()),
        ("<seg> None </seg>", set()),
        ("<seg></seg>", set()),
        ("<seg> </seg><think>(1,1) is fine</think>", set()),
        ("Here: <seg> (1,2)-(1,3) </seg> and <seg> (9,9) </seg>", run(1, 2, 3)),  # the first block
        ("<seg> (1,2)-(1,3), (2,2)", run(1, 2, 3) | {(2, 2)}),  # unclosed: read to the end
        ("<seg> (1,2) <think> (5,5) </think>", {(1, 2)}),  # unclosed: the next tag ends it
        (" (4,4)-(4,5) </seg><think>x</think>", run(4, 4, 5)),  # opening tag was in the prompt
        ("<think>(1,1)</think>", set()),  # no seg: text inside other tags is not a seg
        ("<seg> (1,3)-(1,1) </seg>", run(1, 1, 3)),  # reversed: read forwards
        ("<seg> (1,3)-(2,5) </seg>", {(1, 3), (2, 5)}),  # across rows: the two ends
        ("<seg> (1,14)-(1,20), (16,3), (-1,2), (2,2) </seg>", run(1, 14, 15) | {(2, 2)}),  # clipped/dropped
        ("<seg> (1,2) junk (1,4) (1.5,2) </seg>", {(1, 2), (1, 4)}),
        ("<seg> (01,002) </seg>", {(1, 2)}),
    ],
)
def test_lenient_reading(text: str, cells: set[tuple[int, int]]) -> None:
    assert parse_seg(text) == cells


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("()<>/,-\u2013 \n0123456789segnothink\u2212")), max_size=120))
def test_lenient_never_raises_on_seg_like_garbage(text: str) -> None:
    cells = parse_seg(text)
    assert all(0 <= r < GRID_SIZE and 0 <= c < GRID_SIZE for r, c in cells)
    assert parse_seg_prefix(text) <= cells  # what streaming shows is never more than the final reading


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_lenient_never_raises_on_any_text(text: str) -> None:
    assert isinstance(parse_seg(text), set)
    assert isinstance(parse_seg_prefix(text), set)


def test_lenient_non_string_input() -> None:
    assert parse_seg(None) == set()  # type: ignore[arg-type]
    assert parse_seg_prefix(b"<seg> (1,1) </seg>") == set()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<seg> (1,16) </seg>", "out of range"),
        ("<seg> (16,1) </seg>", "out of range"),
        ("<seg> (-1,1) </seg>", "out of range"),
        ("<seg> (1,2)-(1,16) </seg>", "out of range"),
        ("<seg> (1,2)-(2,4) </seg>", "crosses rows 1 and 2"),
        ("<seg> (1,4)-(1,2) </seg>", "reversed"),
        ("<seg> (1,2) foo, (1,4) </seg>", "unexpected text 'foo,' between"),
        ("<seg> (1,2) (1,4) </seg>", "missing comma between '(1,2)' and '(1,4)'"),
        ("<seg> (1,2),, (1,4) </seg>", "empty item"),
        ("<seg> , (1,2) </seg>", "before the first cell"),
        ("<seg> (1,2) extra </seg>", "after the last cell"),
        ("<seg> (1,2)- </seg>", "incomplete run"),
        ("<seg> (1,2)-(1,x), (1,5) </seg>", "incomplete run"),
        ("<seg> (1.5,2) </seg>", "no cells in seg body"),
        ("<seg> some cells </seg>", "no cells in seg body"),
        ("(1,2)", "missing <seg> ... </seg> tags"),
        ("(1,2) </seg>", "missing the opening <seg> tag"),
        ("<seg> (1,2)", "unclosed <seg>"),
        ("<seg> (1,2) </seg><seg> (3,3) </seg>", "duplicate <seg> tag (2 found)"),
        ("<seg> (1,2) </seg></seg>", "duplicate </seg> tag"),
        ("</seg> (1,2) <seg>", "</seg> comes before <seg>"),
        ("<seg> (1,2) <think> </seg>", "unexpected tag '<think>' inside"),
    ],
)
def test_strict_reasons(text: str, reason: str) -> None:
    with pytest.raises(SegFormatError) as info:
        parse_seg(text, strict=True)
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason
    parse_seg(text)  # the same text never raises leniently


def test_strict_accepts_trailing_comma_none_and_surrounding_text() -> None:
    assert parse_seg("<seg> (1,2), </seg>", strict=True) == {(1, 2)}
    assert parse_seg("<seg> none </seg>", strict=True) == set()
    assert parse_seg("<seg>\n</seg>", strict=True) == set()
    assert parse_seg("<seg> (1,1)-(1,1) </seg><think>a</think><answer>B</answer>", strict=True) == {(1, 1)}


def test_strict_rejects_non_string() -> None:
    with pytest.raises(SegFormatError, match="must be a string"):
        parse_seg(None, strict=True)  # type: ignore[arg-type]


def test_locate_seg() -> None:
    assert locate_seg("<seg> (1,1) </seg>") == (5, 12, True, True)
    assert locate_seg("<seg> (1,1)") == (5, 11, False, False)
    assert locate_seg("x <seg> (1,1) <think>") == (7, 14, False, True)
    assert locate_seg(" (1,1) </seg>") == (0, 7, True, True)


# ------------------------------------------------------------------------------------------ streaming


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("<seg> (1,2)-(1,4), (3,", run(1, 2, 4)),
        ("<seg> (1,2)-", set()),  # the run's end is not written yet
        ("<seg> (1,2)", set()),  # may still become a run
        ("<seg> (1,2) ", set()),
        ("<seg> (1,2) \u2013 (1,", set()),
        ("<seg> (1,2),", {(1, 2)}),
        ("<seg> (1,2)-(1,3)", run(1, 2, 3)),  # a run cannot grow
        ("<seg> (1,2)-(1,x", {(1, 2)}),  # cannot become a run any more
        ("<seg> (1,2) </se", {(1, 2)}),  # a tag is starting: the body is over
        ("<seg> (1,2) </seg>", {(1, 2)}),
        ("<se", set()),
        ("", set()),
    ],
)
def test_prefix(text: str, cells: set[tuple[int, int]]) -> None:
    assert parse_seg_prefix(text) == cells


@settings(max_examples=150, deadline=None)
@given(cells_st, st.sampled_from(DASHES), st.data())
def test_prefixes_grow_monotonically_to_the_full_reading(cells: set, dash: str, data: st.DataObject) -> None:
    text = format_seg(cells).replace(")-(", ")" + dash + "(")
    previous: set = set()
    for end in range(len(text) + 1):
        now = parse_seg_prefix(text[:end])
        assert previous <= now <= cells
        previous = now
    assert previous == cells


def test_scan_reports_the_unfinished_item_as_pending() -> None:
    assert scan_seg_body("(1,1), (2,3)") == ({(1, 1)}, {(2, 3)})
    assert scan_seg_body("(1,1), (2,3)-(2,5)") == ({(1, 1)} | run(2, 3, 5), set())
    assert scan_seg_body("(1,1), (2,3)", complete=True) == ({(1, 1), (2, 3)}, set())


# ------------------------------------------------------------------------------------------ geometry


def test_cell_box_square_and_non_square() -> None:
    assert cell_box((0, 0), (448, 448)) == (0, 0, 28, 28)
    assert cell_box((15, 15), (448, 448)) == (420, 420, 448, 448)
    assert cell_box((15, 15), (640, 480)) == (600, 450, 640, 480)  # (row, col) -> y from row, x from col
    assert cell_box((2, 5), (100, 50)) == (31, 6, 37, 9)
    assert cell_box((0, 15), (8, 8)) == (7, 0, 8, 1)  # smaller than the grid: still one pixel


@pytest.mark.parametrize("size", [(16, 16), (17, 31), (448, 448), (640, 480), (100, 1000), (8, 5)])
def test_cell_boxes_tile_the_image(size: tuple[int, int]) -> None:
    boxes = cell_boxes(size)
    coverage = np.zeros((size[1], size[0]), dtype=int)
    for r in range(GRID_SIZE):
        for c in range(GRID_SIZE):
            assert boxes[r][c] == cell_box((r, c), size)
            x0, y0, x1, y1 = boxes[r][c]
            assert x1 > x0 and y1 > y0
            coverage[y0:y1, x0:x1] += 1
    assert coverage.min() >= 1
    if min(size) >= GRID_SIZE:
        assert coverage.max() == 1  # a partition: every pixel in exactly one cell


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: cell_box((0, 16), (448, 448)), ValueError, "outside the 16x16 grid"),
        (lambda: cell_box((0, 0), (0, 448)), ValueError, "size must be positive"),
        (lambda: cell_box((0, 0), 448), TypeError, "size must be"),
        (lambda: cell_box("ab", (448, 448)), TypeError, "pair of integers"),
        (lambda: cells_to_mask([(20, 0)], (448, 448)), ValueError, "outside"),
    ],
)
def test_geometry_errors(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_cells_to_mask_shape_and_pixels() -> None:
    mask = cells_to_mask({(0, 0), (15, 15)}, (640, 480))
    assert mask.shape == (480, 640) and mask.dtype == bool
    assert mask[:30, :40].all() and mask.sum() == 2 * 30 * 40
    assert mask[479, 639] and not mask[30, 40]


@settings(max_examples=150, deadline=None)
@given(cells_st, st.integers(16, 700), st.integers(16, 700))
def test_mask_round_trip_any_size(cells: set, width: int, height: int) -> None:
    mask = cells_to_mask(cells, (width, height))
    assert mask_to_cells(mask) == cells
    assert mask_to_cells(Image.fromarray(mask)) == cells


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.data())
def test_mask_to_cells_matches_cell_boxes(width: int, height: int, data: st.DataObject) -> None:
    """Brute-force reference: a cell is set iff any pixel of its box is; holds below 16 px too."""
    n = data.draw(st.integers(0, 6))
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(n):
        mask[data.draw(st.integers(0, height - 1)), data.draw(st.integers(0, width - 1))] = 255
    expected = set()
    for r in range(GRID_SIZE):
        for c in range(GRID_SIZE):
            x0, y0, x1, y1 = cell_box((r, c), (width, height))
            if mask[y0:y1, x0:x1].any():
                expected.add((r, c))
    assert mask_to_cells(mask) == expected
    assert mask_to_cells(Image.fromarray(mask)) == expected


def test_one_pixel_sets_exactly_its_cell() -> None:
    mask = np.zeros((448, 448), dtype=bool)
    mask[27, 28] = True  # last row of cell row 0, first column of cell col 1
    assert mask_to_cells(mask) == {(0, 1)}


def _rgb_defect(size: tuple[int, int], colour: tuple[int, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    w, h = size
    arr = np.zeros((h, w, len(colour)), dtype=np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = colour
    return arr


MODE_CASES = [
    ("1", lambda a: Image.fromarray(a.any(axis=2))),
    ("L", lambda a: Image.fromarray(a.max(axis=2)).convert("L")),
    ("RGB", lambda a: Image.fromarray(a)),
    ("RGB blue", lambda a: Image.fromarray((a > 0).astype(np.uint8) * np.array([0, 0, 1], np.uint8))),
    ("P", lambda a: Image.fromarray(a).convert("P")),
    ("I;16", lambda a: Image.fromarray(a.max(axis=2).astype(np.uint16) * 200)),
    ("I", lambda a: Image.fromarray(a.max(axis=2)).convert("I")),
    ("F", lambda a: Image.fromarray(a.max(axis=2)).convert("F")),
    ("RGBA", lambda a: Image.fromarray(a).convert("RGBA")),
    ("LA", lambda a: Image.fromarray(a).convert("LA")),
    ("CMYK", lambda a: Image.fromarray(a).convert("CMYK")),  # read by its RGB look: black background
    (
        "I;16 big",
        lambda a: Image.fromarray(np.pad(a.max(axis=2).astype(np.uint16) * 200, ((0, 600), (0, 0)))),
    ),
]


@pytest.mark.parametrize(("name", "make"), MODE_CASES, ids=[n for n, _ in MODE_CASES])
def test_mask_image_modes(name: str, make) -> None:
    arr = _rgb_defect((640, 480), (200, 30, 30), (100, 60, 130, 95))  # x 100..129, y 60..94
    expected = {(r, c) for r in (2, 3) for c in (2, 3)}
    if name == "I;16 big":  # 1080 px tall: rows 0..3 of 67.5 px hold y 60..94 -> cell rows 0 and 1
        expected = {(r, c) for r in (0, 1) for c in (2, 3)}
    img = make(arr)
    assert mask_to_cells(img) == expected


def test_rgba_alpha_rules() -> None:
    base = _rgb_defect((64, 64), (255, 255, 255, 255), (0, 0, 4, 4))
    # White under full transparency (as drawing tools save) does not count.
    hidden = base.copy()
    hidden[40:44, 40:44] = (255, 255, 255, 0)
    assert mask_to_cells(Image.fromarray(hidden, "RGBA")) == {(0, 0)}
    assert mask_to_cells(hidden) == {(0, 0)}
    # An alpha-only mask (no colour anywhere visible) is read from alpha.
    alpha_only = np.zeros((64, 64, 4), dtype=np.uint8)
    alpha_only[60:64, 0:4, 3] = 255
    assert mask_to_cells(Image.fromarray(alpha_only, "RGBA")) == {(15, 0)}
    assert mask_to_cells(alpha_only) == {(15, 0)}


@pytest.mark.parametrize(
    "mask",
    [
        np.pad(np.ones((5, 5), bool), ((0, 443), (443, 0))),
        np.pad(np.full((5, 5), 255, np.uint8), ((0, 443), (443, 0))),
        np.pad(np.full((5, 5), 0.5), ((0, 443), (443, 0))),
        np.pad(np.full((5, 5, 1), 1, np.int32), ((0, 443), (443, 0), (0, 0))),
        np.pad(np.full((5, 5, 3), (0, 9, 0), np.uint8), ((0, 443), (443, 0), (0, 0))),
    ],
    ids=["bool", "uint8", "float", "HxWx1", "HxWx3"],
)
def test_mask_arrays(mask: np.ndarray) -> None:
    assert mask_to_cells(mask) == {(0, 15)}


def test_mask_nan_and_empty() -> None:
    assert mask_to_cells(np.full((32, 32), np.nan)) == set()
    assert mask_to_cells(np.zeros((448, 448, 3), np.uint8)) == set()
    assert mask_to_cells(Image.new("RGB", (448, 448))) == set()


def test_tiny_mask_covers_several_cells() -> None:
    mask = np.zeros((2, 4), dtype=bool)
    mask[1, 3] = True  # bottom-right pixel of a 4x2 mask: rows 8..15, columns 12..15
    assert mask_to_cells(mask) == {(r, c) for r in range(8, 16) for c in range(12, 16)}


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        ("mask.png", TypeError, "not a path"),
        (np.zeros((0, 5)), ValueError, "empty"),
        (np.zeros((4, 4, 5)), ValueError, "channels last"),
        (np.zeros((2, 2, 2, 2)), ValueError, "channels last"),
        (np.array([["a", "b"]]), TypeError, "numeric array"),
        (object(), TypeError, "numeric array"),
    ],
)
def test_mask_errors(mask: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        mask_to_cells(mask)  # type: ignore[arg-type]


def test_mask_does_not_modify_input() -> None:
    mask = np.zeros((32, 32, 3), dtype=bool)
    mask[0, 0, 0] = True
    before = mask.copy()
    assert mask_to_cells(mask) == {(0, 0)}
    assert (mask == before).all()


# ------------------------------------------------------------------------------------------ scores


def test_scores() -> None:
    a, b = run(1, 0, 3), run(1, 2, 5)
    assert seg_f1(a, b) == pytest.approx(2 * 2 / 8)
    assert seg_iou(a, b) == pytest.approx(2 / 6)
    assert seg_f1(a, a) == seg_iou(a, a) == 1.0
    assert seg_f1(set(), set()) == seg_iou([], []) == 1.0  # normal image, correctly blank
    assert seg_f1(a, set()) == seg_f1(set(), a) == seg_iou(a, []) == 0.0
    assert seg_f1({(0, 0)}, {(5, 5)}) == 0.0
