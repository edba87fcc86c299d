"""A bank of normals: several golden samples of one product, prepared once and checked for sense.

Why a bank: one golden sample cannot tell a defect from the product's ordinary part-to-part variation
(a label that sits a little elsewhere, another speckle pattern, a pull tab at another angle); twenty
can. Each normal is loaded, brought to the analysis format and described once (prepare.py and a small
appearance thumbnail), keyed by a hash of its pixels: the same picture handed in again, as a path, a
PIL image or bytes, is never prepared twice (an in-process cache), so a bank costs its preparation
once per process, not once per query.

Bad banks are reported, not trusted: an unreadable or blank picture is skipped and named; a picture
unlike all the others (another product mixed in) is named and left out; pictures of another aspect
ratio are named (they are stretched to a square like every input).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from judo.comparator.matching import descriptors, nearest_distance
from judo.comparator.prepare import ANALYSIS_SIZE, Prepared, prepare
from judo.comparator.texture import TextureTrees, texture_trees
from judo.images import ImageInputError, ImageSource, load_image

if TYPE_CHECKING:
    from judo.comparator.calibration import Calibration

#: Search radius (thumbnail pixels) of the appearance distance between two normals.
THUMB_RADIUS = 4
#: Outlier rule (see _outliers), measured on the synthetic categories: other samples of the product
#: lie at up to 0.024 (2.6x a bank's typical distance), most other products at 0.028-0.07 (3-17x);
#: one texture among another (carpet, wood, metal plate) is not told apart: a known limit.
OUTLIER_FACTOR, OUTLIER_FLOOR = 2.5, 0.025
ALIGNED_BANK, OUTLIER_FIT_DROP = 0.8, 0.25
#: Aspect ratios that differ from the bank's most common one by more than this are named.
ASPECT_TOLERANCE = 0.05
#: Prepared normals kept in memory (a golden gallery of a few products).
CACHE_SIZE = 256

_cache: OrderedDict[tuple[str, int], Normal] = OrderedDict()
_trees: dict[tuple[str, int], TextureTrees] = {}
_outlier_memory: dict[tuple[str, ...], list[int]] = {}


class BankError(ImageInputError):
    """A bank with no usable normal at all (every picture unreadable or blank)."""


@dataclass(frozen=True)
class Normal:
    """One golden sample at analysis size. digest: hash of its decoded pixels (the calibration key)."""

    name: str
    digest: str
    prepared: Prepared
    thumb: np.ndarray  # (64, 64, 4) appearance descriptors (matching.descriptors)


@dataclass
class Bank:
    """The usable normals of one product, and what was wrong with the pictures that were left out."""

    normals: list[Normal]
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    size: int = ANALYSIS_SIZE
    #: Set by calibration.stored_calibration / attach: the threshold is then taken from it.
    calibration: Calibration | None = None

    def __len__(self) -> int:
        return len(self.normals)

    @property
    def key(self) -> str:
        """Content hash of the whole bank (its normals' digests, order-free, and the analysis size)."""
        joined = ",".join(sorted(n.digest for n in self.normals)) + f"@{self.size}"
        return hashlib.sha256(joined.encode()).hexdigest()[:32]

    def subset(self, indices: Sequence[int]) -> Bank:
        return Bank([self.normals[i] for i in indices], [], [], self.size)


def _name(src: object, index: int) -> str:
    if isinstance(src, (str, os.PathLike)):
        return Path(src).name
    name = getattr(src, "name", None)
    if not isinstance(name, str) and isinstance(src, Image.Image):
        name = src.info.get("name")  # set by callers that loaded the picture from a file
    return Path(name).name if isinstance(name, str) else f"template {index + 1}"


def pixel_digest(img: Image.Image) -> str:
    """Hash of a loaded picture's pixels and size: the same image has the same digest in any container."""
    h = hashlib.sha256(f"{img.size}{img.mode}".encode())
    h.update(img.tobytes())
    return h.hexdigest()[:32]


def _ycc(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2YCrCb)


def load_normal(src: ImageSource, name: str, size: int = ANALYSIS_SIZE) -> Normal:
    """Load and prepare one golden sample (judo.images rules: bad input raises ImageInputError)."""
    img = load_image(src)
    digest = pixel_digest(img)
    cached = _cache.get((digest, size))
    if cached is not None:
        _cache.move_to_end((digest, size))
        return cached if cached.name == name else Normal(name, digest, cached.prepared, cached.thumb)
    prepared = prepare(img, size)
    normal = Normal(name, digest, prepared, descriptors(_ycc(prepared.rgb)))
    _cache[(digest, size)] = normal
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return normal


def normal_trees(normal: Normal) -> TextureTrees:
    """The normal's texture look-up trees (texture.py), built once per picture and analysis size."""
    key = (normal.digest, normal.prepared.rgb.shape[0])
    tree = _trees.get(key)
    if tree is None:
        tree = _trees[key] = texture_trees(_ycc(normal.prepared.rgb))
        while len(_trees) > CACHE_SIZE:
            _trees.pop(next(iter(_trees)))
    return tree


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median distance of each look of `a` to its nearest look-alike near the same place in `b`,
    the worse of both directions (as matching.agreement_map measures a pair, unregistered)."""
    forward = float(np.median(nearest_distance(a, b, THUMB_RADIUS)))
    backward = float(np.median(nearest_distance(b, a, THUMB_RADIUS)))
    return max(forward, backward)


def _outliers(normals: list[Normal]) -> list[int]:
    """Indices of normals that do not show the bank's product (needs three or more normals).

    Each normal is compared (compare.pair_evidence) with the two most central other normals (by
    thumbnail appearance distance), keeping the better of the two: its appearance distance (how far
    its local looks are from their nearest look-alikes) and its registration correlation. A normal
    whose distance is OUTLIER_FACTOR times the bank's typical one, or, in a bank that lines up pixel
    for pixel, whose correlation drops OUTLIER_FIT_DROP below the typical one, shows something
    else. The correlation rule holds for objects only: views of a surface filling the frame line up
    only where they happen to overlap, so a bank of them can look aligned while a genuine piece that
    overlaps none does not. More than half: no majority, none is named.
    """
    from judo.comparator.compare import object_cells, pair_evidence  # compare builds on this module

    k = len(normals)
    if k < 3:
        return []
    key = tuple(n.digest for n in normals)
    if key in _outlier_memory:
        return _outlier_memory[key]
    dist = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            dist[i, j] = dist[j, i] = appearance_distance(normals[i].thumb, normals[j].thumb)
    central = list(np.argsort(dist.sum(axis=1), kind="stable"))
    appearance, similarity = np.zeros(k), np.zeros(k)
    for i in range(k):
        refs = [j for j in central if j != i][:2]
        pairs = [pair_evidence(normals[i].prepared, normals[j].prepared) for j in refs]
        appearance[i] = min(p.appearance for p in pairs)
        similarity[i] = max(p.registration.similarity for p in pairs)
    typical_look, typical_fit = float(np.median(appearance)), float(np.median(similarity))
    out = [
        i
        for i in range(k)
        if (appearance[i] > max(OUTLIER_FLOOR, OUTLIER_FACTOR * typical_look))
        or (
            typical_fit >= ALIGNED_BANK
            and similarity[i] < typical_fit - OUTLIER_FIT_DROP
            and object_cells(normals[i].prepared) is not None
        )
    ]
    result = out if len(out) < k / 2 else []
    _outlier_memory[key] = result
    return result


def build_bank(
    sources: Sequence[ImageSource], names: Sequence[str] | None = None, size: int = ANALYSIS_SIZE
) -> Bank:
    """The bank of the readable, non-blank normals among `sources`, with a warning for each left out.

    Raises BankError when no picture is usable.
    """
    normals: list[Normal] = []
    warnings: list[str] = []
    skipped: list[str] = []
    for i, src in enumerate(sources):
        name = names[i] if names is not None else _name(src, i)
        try:
            normal = load_normal(src, name, size)
        except ImageInputError as err:
            skipped.append(name)
            text = str(err)
            if isinstance(src, (str, os.PathLike)):  # the sample's name, never a server path
                text = text.replace(f"'{os.fspath(src)}'", "it").replace(os.fspath(src), name)
            warnings.append(f"golden sample {name} was skipped: {text}")
            continue
        if normal.prepared.is_blank:
            skipped.append(name)
            warnings.append(f"golden sample {name} was skipped: it is blank (uniform)")
            continue
        normals.append(normal)
    if not normals:
        detail = f" ({warnings[0]})" if len(warnings) == 1 else ""
        raise BankError(f"none of the golden samples is a usable image{detail}", reason="empty")
    _aspect_warnings(normals, warnings)
    outliers = _outliers(normals)
    for i in outliers:
        skipped.append(normals[i].name)
        warnings.append(
            f"golden sample {normals[i].name} looks unlike the other {len(normals) - 1} (another product "
            "or view?); it was left out of the bank"
        )
    normals = [n for i, n in enumerate(normals) if i not in outliers]
    if len(normals) == 1 and len(sources) > 1:
        warnings.append("only one usable golden sample: compared against it alone")
    return Bank(normals, warnings, skipped, size)


def _aspect_warnings(normals: list[Normal], warnings: list[str]) -> None:
    ratios = [n.prepared.original_size[0] / n.prepared.original_size[1] for n in normals]
    common = float(np.median(ratios))
    for n, r in zip(normals, ratios, strict=True):
        if abs(r / common - 1.0) > ASPECT_TOLERANCE:
            w, h = n.prepared.original_size
            warnings.append(
                f"golden sample {n.name} has another aspect ratio ({w}x{h}); it was stretched to a square, "
                "so it lines up less well"
            )


def as_bank(templates: ImageSource | Sequence[ImageSource] | Bank, size: int = ANALYSIS_SIZE) -> Bank:
    """A Bank as is; one picture or a list of pictures built into one."""
    if isinstance(templates, Bank):
        return templates
    if isinstance(templates, (list, tuple)):
        return build_bank(templates, size=size)
    return build_bank([templates], size=size)
