"""The texture look-up (judo.comparator.texture): neighbourhood descriptors come from inside the picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage
from PIL import Image

from judo.comparator.texture import GRIDS, foreign_map, texture_features, texture_trees


def _gravel() -> np.ndarray:
    rgb = Image.open(Path(skimage.__file__).parent / "data" / "gravel.png").convert("RGB")
    return np.asarray(rgb, np.float32) / 255.0


def _ycc(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb)


def test_a_rim_block_is_described_by_the_whole_neighbourhood_one_block_in() -> None:
    picture = _ycc(_gravel()[:256, :256])
    for size in GRIDS:
        structure = texture_features(picture, size)[0].reshape(size, size, -1)
        assert np.array_equal(structure[0, 0], structure[1, 1])
        assert np.array_equal(structure[0, 5], structure[1, 5])
        assert np.array_equal(structure[-1, -1], structure[-2, -2])
        # inside, the neighbourhood is the block's own (no two neighbouring blocks share one)
        assert not np.array_equal(structure[5, 5], structure[5, 6])


def test_the_rim_of_a_piece_of_surface_the_normal_shows_is_not_foreign() -> None:
    photo = _gravel()
    normal, query = photo[0:256, 0:256], photo[128:384, 128:384]  # the query's top-left quarter lies inside
    foreign = foreign_map(_ycc(query), [texture_trees(_ycc(normal))])
    seen = foreign[:32, :32]
    rim = max(seen[0].max(), seen[:, 0].max())
    assert rim <= seen[1:, 1:].max()
    assert rim < foreign[32:, 32:].max()  # what the normal never showed stays the most foreign
