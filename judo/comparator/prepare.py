"""Bring any two inputs to one analysis format: the same square size, float RGB, with flags.

Why: the comparison must not care whether the template is 2048x1536 JPEG and the query a 448x448 PNG,
grey or colour. Both are resized (without keeping the aspect ratio, exactly as the model's 448x448
input and the 16x16 grid do) to a fixed, small analysis size, which also bounds the run time: the
cost after this step does not depend on the input resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from judo.images import ImageSource, load_image

#: Side of the square the comparison runs at: 16 px per grid cell, enough for scratches of a few
#: pixels at 448 px, small enough for ~100 ms per pair on one CPU core.
ANALYSIS_SIZE = 256
#: Grey level from RGB (ITU-R BT.601 weights): `Prepared.gray`.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: A picture whose grey levels vary less than this (std, [0, 1] units) shows nothing to compare.
BLANK_STD = 0.01
#: Mean channel spread below which a colour picture is treated as grey (2.5 levels of 255).
GRAY_SPREAD = 0.01


@dataclass(frozen=True)
class Prepared:
    """One image at analysis size. rgb: (N, N, 3) float32 in [0, 1]; gray: (N, N) float32."""

    rgb: np.ndarray
    gray: np.ndarray
    original_size: tuple[int, int]  # (width, height) of the input
    is_gray: bool
    is_blank: bool


def prepare(src: ImageSource, size: int = ANALYSIS_SIZE) -> Prepared:
    """Load (judo.images rules: bad input raises ImageInputError) and resize to size x size."""
    img = load_image(src)
    original = img.size
    # PIL's resize filters over the whole footprint (no aliasing on 2048 px inputs); reducing_gap
    # first does an exact box reduction, which keeps large inputs fast.
    small = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0) if img.size != (size, size) else img
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    gray = rgb @ LUMA
    spread = float(np.mean(rgb.max(axis=2) - rgb.min(axis=2)))
    return Prepared(
        rgb=rgb,
        gray=gray,
        original_size=original,
        is_gray=spread < GRAY_SPREAD,
        is_blank=float(gray.std()) < BLANK_STD,
    )


def as_gray_rgb(p: Prepared) -> np.ndarray:
    """The grey channel repeated three times: how a colour image is compared against a grey one."""
    return np.repeat(p.gray[:, :, None], 3, axis=2)
