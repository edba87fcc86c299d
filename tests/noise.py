"""Deterministic noise pictures for tests that need an image but not a product."""

from __future__ import annotations

import numpy as np
from PIL import Image


def noise(seed: int, size: tuple[int, int] = (448, 448)) -> Image.Image:
    """An RGB picture of uniform noise, `size` = (width, height), the same for the same seed."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
