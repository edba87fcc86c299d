"""The bank of normals: exact behaviour on synthetic cases, calibration, sensitivity, bad banks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image

from judo.comparator import (
    BankError,
    CalibrationError,
    build_bank,
    calibrate,
    compare,
    describe,
    stored_calibration,
)
from judo.comparator.calibration import CALIBRATION_FILE
from judo.synthetic.perturb import perturb
from judo.synthetic.products import make_product

SQUARE_CELLS = {(8, 7), (8, 8), (9, 7), (9, 8)}


def _product(category: str, seed: int) -> Image.Image:
    return make_product(category, 448, np.random.default_rng(seed))


def _with_square(img: Image.Image, x: int = 196, y: int = 224, side: int = 56) -> Image.Image:
    arr = np.asarray(img).copy()
    arr[y : y + side, x : x + side] = (arr[y : y + side, x : x + side] * 0.4).astype(np.uint8)
    return Image.fromarray(arr)


def _normals(category: str, count: int, seed: int = 100) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [perturb(make_product(category, 448, rng), rng) for _ in range(count)]


@pytest.fixture(scope="module")
def can_bank() -> list[Image.Image]:
    return _normals("drink_can", 5)


def test_one_template_in_a_list_is_exactly_one_template() -> None:
    query, template = _with_square(_product("wood", 0)), _product("wood", 0)
    alone, listed = compare(query, template), compare(query, [template])
    assert alone.cells == listed.cells == SQUARE_CELLS
    assert np.array_equal(alone.scores, listed.scores)
    assert alone.warnings == listed.warnings and listed.calibration is None


def test_a_defect_is_found_against_a_bank(can_bank: list[Image.Image]) -> None:
    query = _with_square(_product("drink_can", 7))
    result = compare(query, can_bank)
    assert result.cells >= SQUARE_CELLS, describe(result)
    assert result.bank_size == 5 and len(result.normals_used) == 4
    assert result.calibration is not None and result.calibration.normals == 5
    assert compare(_product("drink_can", 7), can_bank).cells == set()


def test_a_normal_unlike_every_single_template_but_within_the_banks_variation_gives_no_cells() -> None:
    """A can's pull tab and print sit a little differently on every can: most single templates flag a
    normal can (several cells), the bank of them does not."""
    bank = build_bank(_normals("drink_can", 8))
    for seed in (5, 6):
        query = _product("drink_can", seed)
        singles = [len(compare(query, n.prepared.rgb).cells) for n in bank.normals]
        assert sum(count >= 3 for count in singles) >= 5, singles
        assert compare(query, bank).cells == set()


def test_rethresholding_gives_the_same_cells_as_recomputing(can_bank: list[Image.Image]) -> None:
    query = _with_square(_product("drink_can", 8), side=30)
    base = compare(query, can_bank)
    for sensitivity in (0.5, 0.8, 1.6, 3.0):
        again = compare(query, can_bank, sensitivity=sensitivity)
        quick = base.rethreshold(sensitivity)
        assert quick.cells == again.cells and quick.borderline == again.borderline
        assert np.allclose(quick.scores, again.scores) and np.allclose(quick.heatmap, again.heatmap)
    for rate in (0.01, 1.0):
        assert (
            base.rethreshold(false_alarm_rate=rate).cells
            == compare(query, can_bank, false_alarm_rate=rate).cells
        )
    assert base.rethreshold(3.0).cells >= base.cells >= base.rethreshold(0.5).cells


def test_borderline_cells_are_named_in_the_answer_text() -> None:
    from judo.comparator import borderline_note

    query, template = _with_square(_product("wood", 0)), _product("wood", 0)
    result = compare(query, template)
    at_edge = result.rethreshold(1.0 / float(result.scores[8, 7]) * 1.05)  # cell (8, 7) just above
    assert (8, 7) in at_edge.borderline and at_edge.borderline_decision
    assert "(8,7)" in borderline_note(at_edge).replace(" ", "")


def test_calibration_rate_on_generated_normals() -> None:
    """The rate asked for is what held-out normals show (within 2x), counted in cells over threshold."""
    bank = build_bank(_normals("bottle", 10, seed=1))
    calibration = calibrate(bank)
    assert calibration.normals == 10 and not calibration.warnings
    rate = 2.0
    held_out = _normals("bottle", 10, seed=2)
    threshold = calibration.threshold(rate)
    false_cells = [int((compare(q, bank, false_alarm_rate=rate).values >= threshold).sum()) for q in held_out]
    measured = float(np.mean(false_cells))
    assert rate / 2 <= measured <= rate * 2, (measured, false_cells)
    assert calibration.threshold(0.01) > calibration.threshold(1.0)
    with pytest.raises(CalibrationError):
        calibration.threshold(0)


def test_calibration_is_stored_beside_the_samples_and_rebuilt_for_another_bank(tmp_path) -> None:
    normals = _normals("hazelnut", 4, seed=3)
    for i, img in enumerate(normals):
        img.save(tmp_path / f"good_{i}.png")
    bank = build_bank(sorted(tmp_path.glob("*.png")))
    first, rebuilt = stored_calibration(bank, tmp_path)
    assert rebuilt and (tmp_path / CALIBRATION_FILE).exists()
    assert first.warnings and "only 4 golden samples" in first.warnings[0]
    again, rebuilt = stored_calibration(build_bank(sorted(tmp_path.glob("*.png"))), tmp_path)
    assert not rebuilt and again == first
    # A calibration file of an older bank (one sample replaced) is rebuilt, never trusted.
    _normals("hazelnut", 1, seed=9)[0].save(tmp_path / "good_0.png")
    newer = build_bank(sorted(tmp_path.glob("*.png")))
    third, rebuilt = stored_calibration(newer, tmp_path)
    assert rebuilt and third.bank_key == newer.key != first.bank_key
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert stored["bank_key"] == newer.key
    # A damaged file is rebuilt too.
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    assert stored_calibration(newer, tmp_path)[1]


# ---------------------------------------------------------------------------------------------- bad banks


def test_a_bank_with_one_image_compares_against_it_alone() -> None:
    bank = build_bank([_product("wood", 0), b"not an image"], names=["good.png", "broken.png"])
    assert len(bank) == 1 and bank.skipped == ["broken.png"]
    assert any("broken.png was skipped" in w for w in bank.warnings)
    assert any("only one usable golden sample" in w for w in bank.warnings)
    result = compare(_with_square(_product("wood", 0)), bank)
    assert result.cells == SQUARE_CELLS and result.calibration is None


def test_images_of_mixed_sizes_are_used_and_the_stretched_one_named() -> None:
    normals = _normals("metal_plate", 3)
    mixed = [normals[0], normals[1].resize((896, 896)), normals[2].resize((600, 400))]
    bank = build_bank(mixed, names=["a.png", "b.png", "c.png"])
    assert len(bank) == 3
    assert [w for w in bank.warnings if "aspect ratio" in w] and "c.png" in bank.warnings[0]


def test_a_bank_mixing_two_products_names_the_outlier() -> None:
    normals = _normals("drink_can", 4) + [_product("carpet", 1)]
    bank = build_bank(normals, names=[f"can_{i}.png" for i in range(4)] + ["carpet.png"])
    assert len(bank) == 4 and bank.skipped == ["carpet.png"]
    assert any("carpet.png looks unlike the other 4" in w for w in bank.warnings)


def test_a_piece_of_a_surface_that_overlaps_no_other_view_stays_in_the_bank() -> None:
    # Three views of a brick wall overlap and line up; the fourth shows another, genuine piece of the
    # wall. Views of a surface line up only where they overlap, so the fourth is no outlier.
    wall = Image.open(Path(skimage.__file__).parent / "data" / "brick.png").convert("RGB")
    corners = [(0, 0), (6, 4), (3, 9), (256, 256)]
    views = [wall.crop((x, y, x + 256, y + 256)).resize((448, 448)) for x, y in corners]
    bank = build_bank(views, names=[f"wall_{i}.png" for i in range(4)])
    assert len(bank) == 4 and bank.skipped == []
    assert not any("looks unlike" in w for w in bank.warnings)


def test_a_corrupt_image_in_the_golden_folder_is_skipped_and_named(tmp_path) -> None:
    for i, img in enumerate(_normals("screw", 3)):
        img.save(tmp_path / f"good_{i}.png")
    (tmp_path / "good_9.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bank = build_bank(sorted(tmp_path.glob("*.png")))
    assert len(bank) == 3 and bank.skipped == ["good_9.png"]
    assert any("good_9.png was skipped" in w and str(tmp_path) not in w for w in bank.warnings)


def test_a_bank_with_no_usable_image_is_a_clear_error() -> None:
    with pytest.raises(BankError, match="none of the golden samples"):
        build_bank([b"nope", Image.new("RGB", (64, 64), (90, 90, 90))])
