"""Rendering: red cells change exactly their pixels, borderline cells are amber under a dashed outline,
the green outline hugs the mask, heat maps are sane, side by side keeps both pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from judo.grid import cell_box, cells_to_mask
from judo.render import (
    AMBER,
    RED,
    dashed_outline,
    fit_within,
    heatmap_overlay,
    outline_mask,
    overlay_cells,
    overlay_findings,
    side_by_side,
)


def _noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 200, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [(448, 448), (640, 480), (37, 53)])
def test_overlay_changes_exactly_the_cells(size):
    base = _noise(size)
    cells = {(0, 0), (3, 4), (3, 5), (3, 6), (15, 15), (8, 2)}
    out = overlay_cells(base, cells)
    assert out.size == base.size and out.mode == "RGB"
    changed = np.any(np.asarray(out) != np.asarray(base), axis=2)
    assert np.array_equal(changed, cells_to_mask(cells, size))
    # red goes up, green and blue go down inside the cells
    a, b = np.asarray(out).astype(int), np.asarray(base).astype(int)
    x0, y0, x1, y1 = cell_box((3, 5), size)
    assert (a[y0:y1, x0:x1, 0] >= b[y0:y1, x0:x1, 0]).all()
    assert (a[y0:y1, x0:x1, 1] <= b[y0:y1, x0:x1, 1]).all()


def test_overlay_empty_and_out_of_range_cells_leave_image_unchanged():
    base = _noise((64, 64))
    assert np.array_equal(np.asarray(overlay_cells(base, set())), np.asarray(base))
    assert np.array_equal(np.asarray(overlay_cells(base, {(16, 0), (-1, 3)})), np.asarray(base))


def test_overlay_accepts_any_mode_and_rejects_bad_alpha():
    gray = Image.new("L", (32, 32), 100)
    out = overlay_cells(gray, {(0, 0)})
    assert out.mode == "RGB" and out.getpixel((0, 0))[0] > out.getpixel((0, 0))[1]
    with pytest.raises(ValueError):
        overlay_cells(gray, {(0, 0)}, alpha=1.5)


def test_outline_is_outside_the_region_and_green():
    base = Image.new("RGB", (160, 160), (0, 0, 0))
    mask = np.zeros((160, 160), bool)
    mask[40:80, 50:100] = True
    out = np.asarray(outline_mask(base, mask, width=2))
    green = (out[..., 1] == 200) & (out[..., 0] == 0)
    assert green.any() and not (green & mask).any()
    # every green pixel is within 2 px of the region
    ys, xs = np.nonzero(green)
    assert ys.min() >= 38 and ys.max() <= 81 and xs.min() >= 48 and xs.max() <= 101


def test_outline_from_cells_and_mask_image_of_another_size():
    base = Image.new("RGB", (320, 320), (10, 10, 10))
    from_cells = np.asarray(outline_mask(base, {(5, 5)}))
    small_mask = Image.new("L", (16, 16), 0)
    small_mask.putpixel((5, 5), 255)
    from_mask = np.asarray(outline_mask(base, small_mask))
    assert np.array_equal(from_cells, from_mask)
    assert np.array_equal(np.asarray(outline_mask(base, set())), np.asarray(base))


def test_heatmap_overlay_is_brighter_where_scores_are_high():
    base = Image.new("RGB", (256, 256), (40, 40, 40))
    scores = np.zeros((16, 16))
    scores[2, 3] = 5.0
    out = np.asarray(heatmap_overlay(base, scores)).astype(int).sum(axis=2)
    hot = out[2 * 16 + 8, 3 * 16 + 8]
    cold = out[12 * 16 + 8, 12 * 16 + 8]
    assert hot > cold + 200
    with pytest.raises(ValueError):
        heatmap_overlay(base, np.zeros(16))
    # NaNs count as zero scores and an all-zero grid is the base under the colour of zero: both give the
    # same picture, uniform like the base (no cell stands out)
    from_nan = np.asarray(heatmap_overlay(base, np.full((16, 16), np.nan)))
    from_zeros = np.asarray(heatmap_overlay(base, np.zeros((16, 16))))
    assert np.array_equal(from_nan, from_zeros)
    # score 0: the colour map's darkest entry (0, 0, 4) at the lowest opacity (35% of alpha 0.55)
    low = 0.55 * 0.35
    expected = np.round(np.array([40, 40, 40]) * (1 - low) + np.array([0, 0, 4]) * low)
    assert np.abs(from_zeros.astype(int) - expected).max() <= 1
    partly_nan = scores.copy()
    partly_nan[7, 7] = np.nan
    from_partly_nan = np.asarray(heatmap_overlay(base, partly_nan))
    assert np.array_equal(from_partly_nan, np.asarray(heatmap_overlay(base, scores)))


def test_fit_within_downscales_only():
    img = Image.new("RGB", (3000, 1000))
    assert fit_within(img, 1024).size == (1024, 341)
    small = Image.new("RGB", (100, 50))
    assert fit_within(small, 1024) is small


def _is(arr: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(arr == np.array(colour, dtype=arr.dtype), axis=-1)


def test_borderline_cells_are_amber_with_a_dashed_outline_and_the_others_red():
    base = Image.new("RGB", (448, 448), (40, 40, 40))
    cells, borderline = {(2, 2), (2, 3), (9, 9)}, {(9, 9), (12, 4)}  # (9, 9): anomalous yet borderline
    out = np.asarray(overlay_findings(base, cells, borderline))
    grey = np.asarray(base)
    for cell in ((2, 2), (2, 3)):  # firm: red fill, no amber anywhere
        x0, y0, x1, y1 = cell_box(cell, (448, 448))
        inside = out[y0:y1, x0:x1].astype(int)
        assert (inside[..., 0] > grey[y0:y1, x0:x1, 0] + 60).all() and (inside[..., 1] <= 40).all()
        assert not _is(out[y0:y1, x0:x1], AMBER).any()
    for cell in borderline:
        x0, y0, x1, y1 = cell_box(cell, (448, 448))
        top = _is(out[y0, x0:x1], AMBER)  # the outline's top edge: amber dashes with gaps between
        assert 0.3 < top.mean() < 0.8, (cell, top.mean())
        assert _is(out[y0:y1, x0], AMBER).any() and _is(out[y1 - 1, x0:x1], AMBER).any()
        middle = out[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
        assert middle[0] > middle[2] + 60 and middle[1] > middle[2] + 30, "an amber tint, not red"
    # an outline only where the region ends: two borderline neighbours share no dashed side
    pair = np.asarray(dashed_outline(base.copy(), {(5, 5), (5, 6)}))
    x0, y0, x1, _ = cell_box((5, 6), (448, 448))
    assert not _is(pair[y0 + 8 : y0 + 20, x0 : x0 + 2], AMBER).any()
    assert _is(pair[y0, x0:x1], AMBER).any()


def test_findings_without_borderline_cells_are_the_red_overlay():
    base = _noise((200, 120))
    cells = {(1, 1), (7, 8)}
    assert np.array_equal(np.asarray(overlay_findings(base, cells)), np.asarray(overlay_cells(base, cells)))
    drawn = np.asarray(overlay_findings(base, cells, {(30, 30)}))  # outside the grid: ignored
    assert np.array_equal(drawn, np.asarray(overlay_cells(base, cells)))
    assert _is(np.asarray(overlay_cells(Image.new("RGB", (64, 64)), {(0, 0)}, alpha=1.0))[:4, :4], RED).all()


def test_side_by_side_puts_the_template_left_at_the_query_height():
    template = Image.new("RGB", (100, 50), (0, 0, 255))
    query = Image.new("RGB", (120, 200), (0, 255, 0))
    out = side_by_side(template, query, gap=8)
    assert out.size == (400 + 8 + 120, 200)
    a = np.asarray(out)
    assert _is(a[:, :400], (0, 0, 255)).mean() > 0.99 and _is(a[:, 408:], (0, 255, 0)).all()
    assert _is(a[:, 400:408], (255, 255, 255)).all()
