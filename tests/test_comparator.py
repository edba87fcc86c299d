"""The training-free comparator: exact behaviour on synthetic pairs, bad input, and its answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from judo.comparator import (
    ComparisonResult,
    answer_anomaly_detection,
    answer_localization,
    compare,
    describe,
    parse_position,
    region_name,
)
from judo.grid import seg_f1
from judo.images import ImageInputError
from judo.synthetic.perturb import Perturbation, apply_perturbation, make_pair, perturb, sample_perturbation
from judo.synthetic.products import make_product

# A 56x56 px square at x 196..252, y 224..280 of a 448 px image covers exactly cells rows 8-9, cols 7-8.
SQUARE_CELLS = {(8, 7), (8, 8), (9, 7), (9, 8)}


def _product(category: str, seed: int = 0) -> Image.Image:
    return make_product(category, 448, np.random.default_rng(seed))


def _with_square(img: Image.Image, x: int = 196, y: int = 224, side: int = 56) -> Image.Image:
    arr = np.asarray(img).copy()
    arr[y : y + side, x : x + side] = (arr[y : y + side, x : x + side] * 0.4).astype(np.uint8)
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def can() -> Image.Image:
    return _product("drink_can")


# ---------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("category", ["drink_can", "wood", "carpet"])
def test_pasted_square_is_found_in_exactly_its_cells(category: str) -> None:
    base = _product(category)
    result = compare(_with_square(base), base)
    assert result.cells == SQUARE_CELLS
    assert result.is_anomalous and result.valid and not result.warnings
    assert result.max_score >= 1.0
    assert result.scores.shape == (16, 16)
    assert all(result.scores[c] >= 1.0 for c in SQUARE_CELLS)


def test_pasted_square_survives_a_perturbed_template(can: Image.Image) -> None:
    template = perturb(can, np.random.default_rng(1))
    result = compare(_with_square(can), template)
    assert result.cells >= SQUARE_CELLS
    assert seg_f1(result.cells, SQUARE_CELLS) >= 0.5


@pytest.mark.parametrize("category", ["drink_can", "screw", "carpet", "metal_plate"])
def test_identical_pair_gives_no_cells(category: str) -> None:
    img = _product(category)
    result = compare(img, img.copy())
    assert result.cells == set() and not result.is_anomalous
    assert result.valid and result.warnings == []
    assert result.max_score < 1.0
    assert result.heatmap.shape == (448, 448) and float(result.heatmap.max()) < 0.5
    assert result.registration.similarity > 0.99


def test_shifted_pair_gives_no_cells_and_the_shift_is_recovered(can: Image.Image) -> None:
    shifted = apply_perturbation(can, Perturbation(shift=(0.025, -0.02)))
    result = compare(can, shifted)
    assert result.cells == set()
    # query (x, y) is found at (x + dx, y + dy) in the template, in analysis pixels (256 px side)
    dx, dy = result.registration.shift
    assert abs(dx - 0.025 * 256) < 1.0 and abs(dy + 0.02 * 256) < 1.0
    assert abs(result.registration.rotation_deg) < 0.5 and abs(result.registration.scale - 1) < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_realistic_template_nuisance_gives_no_cells(can: Image.Image, seed: int) -> None:
    """Shift, rotation, scale, brightness, contrast, noise and JPEG together."""
    rng = np.random.default_rng(seed)
    template = apply_perturbation(can, sample_perturbation(rng), rng)
    result = compare(can, template)
    assert result.cells == set(), describe(result)
    assert result.registration.success


def test_synthetic_defects_are_localised() -> None:
    """A few generated defects: most truth cells found, few normal cells flagged."""
    from judo.grid import mask_to_cells

    scores = []
    for i, (category, kind) in enumerate([("pill", "stain"), ("wood", "hole"), ("hazelnut", "missing")]):
        pair = make_pair(category, kind, 448, np.random.default_rng([7, i]))
        result = compare(pair.query, pair.template)
        assert result.is_anomalous, (category, kind)
        scores.append(seg_f1(result.cells, mask_to_cells(pair.mask)))
    assert float(np.mean(scores)) >= 0.6, scores


# ---------------------------------------------------------------------------------------------- bad input


def test_different_sizes_and_aspect_ratios_are_handled(can: Image.Image) -> None:
    same_aspect = compare(can, can.resize((896, 896)))
    assert same_aspect.cells == set() and same_aspect.warnings == []
    stretched = compare(can, can.resize((600, 400)))
    assert any("aspect ratio" in w for w in stretched.warnings)
    assert stretched.scores.shape == (16, 16) and stretched.heatmap.shape == (448, 448)
    wide = compare(can.resize((640, 480)), can)
    assert wide.heatmap.shape == (480, 640)
    assert float(wide.heatmap.min()) >= 0.0 and float(wide.heatmap.max()) <= 1.0


def test_grayscale_against_colour_is_compared_in_grey(can: Image.Image) -> None:
    result = compare(can, can.convert("L"))
    assert any("greyscale" in w for w in result.warnings)
    assert result.valid and result.cells == set()
    reverse = compare(_with_square(can).convert("L"), can)
    assert reverse.cells >= SQUARE_CELLS


def test_template_of_another_product_is_called_out(can: Image.Image) -> None:
    result = compare(can, _product("carpet"))
    assert not result.valid
    assert any("low similarity" in w or "registration failed" in w for w in result.warnings)
    assert answer_anomaly_detection(result, {"A": "Yes.", "B": "No."}) is None
    assert "No meaningful comparison" in describe(result)


def test_another_sample_of_a_texture_is_judged_by_appearance() -> None:
    """Two carpets never line up fibre for fibre: not "another product", and no defect either."""
    result = compare(_product("carpet", 0), _product("carpet", 1))
    assert result.valid
    assert any("does not line up pixel for pixel" in w for w in result.warnings)
    assert result.registration.similarity < 0.3


@pytest.mark.parametrize("which", ["query", "template", "both"])
def test_blank_images_give_a_clear_result(can: Image.Image, which: str) -> None:
    blank = Image.new("RGB", (448, 448), (128, 128, 128))
    query = blank if which in ("query", "both") else can
    template = blank if which in ("template", "both") else can
    result = compare(query, template)
    assert not result.valid and result.cells == set()
    assert any("blank" in w for w in result.warnings)
    assert result.heatmap.shape == (448, 448) and float(result.heatmap.max()) == 0.0
    assert answer_localization(result, {"A": "Top left.", "B": "Center."}) is None


def test_unreadable_input_raises_a_user_facing_error(can: Image.Image) -> None:
    with pytest.raises(ImageInputError):
        compare(b"not an image", can)
    with pytest.raises(ImageInputError):
        compare(can, Image.new("RGB", (4, 4)))


# ---------------------------------------------------------------------------------------------- answers


def _result_with(cells: set[tuple[int, int]], valid: bool = True) -> ComparisonResult:
    """A result as compare() builds it, with chosen cells (the answer functions only read the result)."""
    from judo.comparator.register import Registration

    scores = np.full((16, 16), 0.2)
    for cell in cells:
        scores[cell] = 3.0
    return ComparisonResult(
        scores=scores,
        cells=set(cells),
        heatmap=np.zeros((448, 448), np.float32),
        registration=Registration(np.eye(3), True, 0.99, "ecc"),
        valid=valid,
    )


@pytest.mark.parametrize("options", [{"A": "Yes.", "B": "No."}, {"A": "No.", "B": "Yes."}])
def test_anomaly_detection_answers_in_either_letter_order(options: dict[str, str]) -> None:
    yes = next(k for k, v in options.items() if v == "Yes.")
    no = next(k for k, v in options.items() if v == "No.")
    question = "Is there any defect in the object?"
    assert answer_anomaly_detection(_result_with({(3, 3)}), options, question) == yes
    assert answer_anomaly_detection(_result_with(set()), options, question) == no
    # "Is the object free of defects?": Yes now means normal
    assert answer_anomaly_detection(_result_with(set()), options, "Is the object free of defects?") == yes


def test_anomaly_detection_abstains_when_it_cannot_answer() -> None:
    anomalous = _result_with({(3, 3)})
    assert answer_anomaly_detection(anomalous, {"A": "Scratch.", "B": "Hole."}) is None
    assert answer_anomaly_detection(anomalous, {"A": "Yes.", "B": "No.", "C": "Maybe."}) is None
    assert answer_anomaly_detection(anomalous, None) is None
    assert answer_anomaly_detection(_result_with({(3, 3)}, valid=False), {"A": "Yes.", "B": "No."}) is None


def test_localization_picks_the_position_of_the_cells() -> None:
    options = {"A": "Top left.", "B": "Bottom right.", "C": "Center.", "D": "Top right."}
    assert answer_localization(_result_with({(13, 13), (13, 14), (14, 13)}), options) == "B"
    assert answer_localization(_result_with({(1, 1), (2, 1)}), options) == "A"
    assert answer_localization(_result_with({(7, 7), (8, 8)}), options) == "C"
    assert answer_localization(_result_with({(0, 14)}), options) == "D"
    sides = {"A": "Left side.", "B": "Upper part.", "C": "Lower part of the image."}
    assert answer_localization(_result_with({(14, 7), (15, 8)}), sides) == "C"


def test_localization_on_a_real_comparison(can: Image.Image) -> None:
    result = compare(_with_square(can, x=340, y=340, side=60), can)
    options = {"A": "Bottom right.", "B": "Top left.", "C": "Center.", "D": "Top right."}
    assert answer_localization(result, options) == "A"
    assert answer_localization(result, dict(reversed(list(options.items())))) == "A"


def test_localization_abstains_on_non_positional_options() -> None:
    result = _result_with({(13, 13)})
    assert answer_localization(result, {"A": "On the cap.", "B": "Top left."}) is None
    assert answer_localization(result, {"A": "Scratch.", "B": "Crack."}) is None
    assert answer_localization(result, {"A": "Top left."}) is None


def test_position_words() -> None:
    assert parse_position("Top left.") == (-1.0, -1.0)
    assert parse_position("Bottom right corner") == (1.0, 1.0)
    assert parse_position("Center.") == (0.0, 0.0)
    assert parse_position("The upper part of the object") == (-1.0, 0.0)
    assert parse_position("No defect") is None
    assert region_name(0, 0) == "top left"
    assert region_name(8, 8) == "center"
    assert region_name(15, 7) == "bottom"
    assert region_name(7, 15) == "right"


def test_describe_states_where_how_strong_and_which_direction(can: Image.Image) -> None:
    result = compare(_with_square(can), can)
    text = describe(result)
    assert "1 region differs" in text and "center" in text
    assert "4 cells" in text and "darker than the template" in text
    clean = describe(compare(can, can))
    assert clean.startswith("No region differs from the template")


# ---------------------------------------------------------------------------------------------- perturb


def test_perturb_is_deterministic_and_keeps_size_and_mode(can: Image.Image) -> None:
    a = perturb(can, np.random.default_rng(3))
    b = perturb(can, np.random.default_rng(3))
    assert a.size == can.size and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    grey = perturb(can.convert("L"), np.random.default_rng(3))
    assert grey.mode == "L"
    assert np.array_equal(np.asarray(apply_perturbation(can, Perturbation())), np.asarray(can))


# ---------------------------------------------------------------------------------------------- vision tokens


@pytest.mark.parametrize("seed", [0, 1])
def test_a_part_at_another_angle_is_turned_into_place(seed: int) -> None:
    """Another screw lying at another angle: the whole-turn pose search finds the angle, so the
    normal pair gives no cells; the same pair with a pasted square still finds it."""
    query, template = _product("screw", seed), _product("screw", seed + 100)
    result = compare(query, template)
    assert result.registration.method == "pose-search"
    assert result.registration.similarity > 0.85
    assert result.cells == set()
    x, y = 224 - 12, 224 - 12  # on the screw's centre, whatever its angle
    defect = _with_square(query, x=x, y=y, side=24)
    assert compare(defect, template).cells, "a pasted square on the turned part must still be found"


def test_pose_search_skips_textures_and_finds_a_known_turn() -> None:
    from judo.comparator.pose import pose_candidates
    from judo.comparator.prepare import prepare

    carpet = prepare(_product("carpet")).gray
    assert pose_candidates(carpet, carpet) == []
    can = prepare(_product("drink_can")).gray
    turned = np.ascontiguousarray(np.rot90(can))  # a quarter turn on screen: exact, no resampling
    best = pose_candidates(can, turned)[0]  # the best candidate comes first
    assert np.rad2deg(np.arctan2(best[1, 0], best[0, 0])) == pytest.approx(-90.0, abs=2.0)
    # It maps the query's pixels onto the same content of the turned template.
    from judo.comparator.register import _correlation

    assert _correlation(can, turned, best) > 0.99
