"""Golden samples added and removed on disk: atomic, de-duplicated, nothing deleted, hostile names refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from judo.comparator import build_bank, stored_calibration
from judo.golden import (
    REMOVED_FOLDER,
    GoldenError,
    add_golden,
    golden_images,
    product_folder,
    remove_golden,
)
from judo.images import load_image


def _part(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def test_add_writes_a_png_named_by_content_once(tmp_path):
    first = add_golden(tmp_path, "bottle", _part(1), name="shift 3/part 7.jpg")
    assert first.changed and first.path.parent == tmp_path / "bottle"
    assert first.path.suffix == ".png" and first.path.name.startswith("part-7-")
    assert np.array_equal(np.asarray(load_image(first.path)), np.asarray(_part(1)))
    again = add_golden(tmp_path, "bottle", _part(1), name="other.png")
    assert not again.changed and again.path == first.path and "already" in again.message
    assert golden_images(tmp_path / "bottle") == [first.path]
    assert not [p for p in (tmp_path / "bottle").iterdir() if p.name.startswith(".adding-")]


def test_remove_moves_into_removed_and_names_what_is_left(tmp_path):
    paths = [add_golden(tmp_path, "bottle", _part(i)).path for i in range(3)]
    change = remove_golden(tmp_path, "bottle", paths[0].name)
    assert change.path == tmp_path / "bottle" / REMOVED_FOLDER / paths[0].name and change.path.is_file()
    assert golden_images(tmp_path / "bottle") == sorted(paths[1:])
    assert "2 left" in change.message and "at least 3" in change.message


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 65, "..", "a\\b"])
def test_hostile_product_names_are_refused(tmp_path, name):
    with pytest.raises(GoldenError, match="not a usable product name"):
        product_folder(tmp_path, name)


def test_remove_refuses_anything_but_a_golden_sample_of_the_product(tmp_path):
    add_golden(tmp_path, "bottle", _part(1))
    (tmp_path / "secret.png").write_bytes(b"x")
    for name in ["../secret.png", "missing.png", f"{REMOVED_FOLDER}/x.png"]:
        with pytest.raises(GoldenError, match="not a golden sample"):
            remove_golden(tmp_path, "bottle", name)
    assert (tmp_path / "secret.png").exists()


def test_a_corrupt_image_is_not_added_and_the_folder_is_unchanged(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(GoldenError, match="Not added"):
        add_golden(tmp_path / "golden", "bottle", bad)
    assert golden_images(tmp_path / "golden" / "bottle") == []


def test_an_unwritable_golden_folder_says_so(tmp_path):
    (tmp_path / "bottle").write_text("a file where the folder should be")  # fails as root too
    with pytest.raises(GoldenError, match="cannot be written"):
        add_golden(tmp_path, "bottle", _part(1))


def test_the_stored_calibration_follows_the_folder(tmp_path):
    for i in range(3):
        add_golden(tmp_path, "tile", _part(i))
    bank = build_bank([load_image(p) for p in golden_images(tmp_path / "tile")])
    _, rebuilt = stored_calibration(bank, tmp_path / "tile")
    assert rebuilt
    _, rebuilt = stored_calibration(bank, tmp_path / "tile")
    assert not rebuilt
    add_golden(tmp_path, "tile", _part(9))
    bank = build_bank([load_image(p) for p in golden_images(tmp_path / "tile")])
    calibration, rebuilt = stored_calibration(bank, tmp_path / "tile")
    assert rebuilt and calibration.normals == 4
