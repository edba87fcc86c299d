"""Template perturbations: what a real normal template differs from its query by.

Why: a comparator that only ever sees pixel-identical templates would learn nothing about the
nuisance it must ignore. Real template pairs (MMAD's `random_templates`) are other photos of the same
product: the part sits a few pixels elsewhere, turned by a degree or two, the lens a little closer,
the light a little brighter, the sensor noisy and the file JPEG-compressed. `perturb` applies exactly
those, with a seeded generator, so benchmarks and tests are reproducible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.transform import SimilarityTransform, warp


@dataclass(frozen=True)
class Perturbation:
    """One draw of nuisance parameters.

    shift: (dx, dy) as fractions of (width, height); rotation_deg: counter-clockwise about the centre;
    scale: zoom factor (>1 = closer); brightness: added to every channel (in [0, 1] units);
    contrast: factor about mid-grey; noise_std: Gaussian sensor noise (in [0, 1] units);
    jpeg_quality: re-encode at this JPEG quality, None = no compression.
    """

    shift: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    scale: float = 1.0
    brightness: float = 0.0
    contrast: float = 1.0
    noise_std: float = 0.0
    jpeg_quality: int | None = None

    @property
    def is_geometric(self) -> bool:
        return self.shift != (0.0, 0.0) or self.rotation_deg != 0.0 or self.scale != 1.0


def sample_perturbation(
    rng: np.random.Generator,
    *,
    max_shift: float = 0.03,
    max_rotation_deg: float = 3.0,
    max_scale: float = 0.03,
    max_brightness: float = 0.08,
    max_contrast: float = 0.12,
    max_noise_std: float = 0.02,
    jpeg_quality: tuple[int, int] | None = (60, 95),
) -> Perturbation:
    """Draw each nuisance uniformly within its bound (defaults: the "few pixels / few degrees /
    few percent" that separate real photos of one product)."""

    def u(bound: float) -> float:
        return float(rng.uniform(-bound, bound))

    quality = None if jpeg_quality is None else int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
    return Perturbation(
        shift=(u(max_shift), u(max_shift)),
        rotation_deg=u(max_rotation_deg),
        scale=1.0 + u(max_scale),
        brightness=u(max_brightness),
        contrast=1.0 + u(max_contrast),
        noise_std=float(rng.uniform(0.0, max_noise_std)),
        jpeg_quality=quality,
    )


def similarity_transform(p: Perturbation, size: tuple[int, int]) -> SimilarityTransform:
    """The map from source to perturbed pixel coordinates (x, y): rotate and scale about the image
    centre, then shift. Tests use it to check registration against the truth."""
    width, height = size
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    shift = np.array([p.shift[0] * width, p.shift[1] * height])
    # Image rows grow downwards, so a counter-clockwise turn on screen is a negative angle here.
    return (
        SimilarityTransform(translation=-centre)
        + SimilarityTransform(rotation=-np.deg2rad(p.rotation_deg), scale=p.scale)
        + SimilarityTransform(translation=centre + shift)
    )


def apply_perturbation(
    img: Image.Image, p: Perturbation, rng: np.random.Generator | None = None
) -> Image.Image:
    """Apply `p` to an RGB or L image; returns a new image of the same size and mode.

    Borders uncovered by the motion are filled by reflection (a camera would see more of the scene
    there, not black). `rng` draws the sensor noise; a fixed default keeps the call deterministic.
    """
    mode = "L" if img.mode == "L" else "RGB"
    arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    if p.is_geometric:
        tf = similarity_transform(p, img.size)
        arr = warp(arr, tf.inverse, order=1, mode="reflect", preserve_range=True).astype(np.float32)
    arr = (arr - 0.5) * p.contrast + 0.5 + p.brightness
    if p.noise_std > 0:
        noise_rng = rng if rng is not None else np.random.default_rng(0)
        arr = arr + noise_rng.normal(0.0, p.noise_std, size=arr.shape).astype(np.float32)
    out = Image.fromarray(np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8))
    if p.jpeg_quality is not None:
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(p.jpeg_quality))
        buf.seek(0)
        out = Image.open(buf).convert(mode)
    return out


def perturb(img: Image.Image, rng: np.random.Generator, **bounds: object) -> Image.Image:
    """A realistic template of `img`: one random draw of `sample_perturbation(rng, **bounds)` applied."""
    return apply_perturbation(img, sample_perturbation(rng, **bounds), rng)  # type: ignore[arg-type]


@dataclass
class Pair:
    """One benchmark case: a query (normal or with one painted defect) and a perturbed template.

    mask: bool (H, W) of the defect pixels (all False for a normal query); defect: the kind or "good".
    """

    query: Image.Image
    template: Image.Image
    mask: np.ndarray
    category: str
    defect: str

    @property
    def is_normal(self) -> bool:
        return self.defect == "good"


def make_pair(
    category: str,
    defect: str | None,
    size: int,
    rng: np.random.Generator,
    *,
    new_instance: bool = False,
    **bounds: object,
) -> Pair:
    """A query/template pair of one synthetic product.

    The template is the same rendered product, perturbed (`perturb`); with `new_instance=True` it is
    another normal sample of the category instead (natural part-to-part variation as well), which
    is the harder, MMAD-like case. `defect=None` or "good" makes a normal query.
    """
    from judo.synthetic.defects import (
        paint_defect,  # floor-1 siblings; imported here to keep this module light
    )
    from judo.synthetic.products import make_product

    product = make_product(category, size, rng)
    source = make_product(category, size, rng) if new_instance else product
    template = perturb(source, rng, **bounds)
    if defect in (None, "good"):
        return Pair(product, template, np.zeros((size, size), bool), category, "good")
    query, mask = paint_defect(product, defect, rng)
    return Pair(query, template, mask, category, defect)
