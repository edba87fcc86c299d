"""A synthetic tray for trying a batch out: N parts of one judo.synthetic product (some with a
painted defect) and golden samples of it, written as PNG files (tests, the benchmark, a demo)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from judo.synthetic.defects import DEFECT_KINDS, paint_defect
from judo.synthetic.perturb import perturb
from judo.synthetic.products import make_product


@dataclass
class Tray:
    parts: list[Path]
    golden: list[Path]
    defective: list[str]  # names of the parts with a painted defect


def make_tray(
    folder: str | Path,
    parts: int,
    *,
    golden: int = 4,
    size: int = 448,
    category: str = "bottle",
    defect_share: float = 0.3,
    seed: int = 0,
) -> Tray:
    """``folder/parts/part-NNN.png`` and ``folder/golden/good-N.png``; every part is another sample of
    the product re-shot (perturbed), about `defect_share` of them with one painted defect."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    (folder / "golden").mkdir(parents=True, exist_ok=True)
    good = []
    for i in range(golden):
        path = folder / "golden" / f"good-{i}.png"
        perturb(make_product(category, size, rng), rng).save(path)
        good.append(path)
    paths, defective = [], []
    for i in range(parts):
        img = perturb(make_product(category, size, rng), rng)
        name = f"part-{i:03d}.png"
        if rng.random() < defect_share:
            img, _ = paint_defect(img, DEFECT_KINDS[int(rng.integers(len(DEFECT_KINDS)))], rng)
            defective.append(name)
        img.save(folder / "parts" / name)
        paths.append(folder / "parts" / name)
    return Tray(paths, good, defective)
