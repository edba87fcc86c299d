"""Write a small synthetic dataset in MMAD's exact on-disk layout.

Why the exact layout (and its quirks): the loader, the evaluator and the data builders are tested on
this root and then pointed at the real 28 GB one, so everything the real root does must happen here too:
keys `<dataset>/<category>/image/<defect>/NNN.png`, image and mask paths relative to the category
folder, mask folders named `rbg_mask` in some datasets and `rgb_mask` in others, templates relative to
the root under a separate tree (`MVTec-AD/...` for DS-MVTec), empty mask paths for normal images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from judo.synthetic.catalog import DEFAULT_CATEGORIES, SPECS, CategorySpec, spec_knowledge
from judo.synthetic.defects import paint_defect
from judo.synthetic.products import make_product
from judo.synthetic.questions import anomalous_conversation, normal_conversation

#: Mask folder per dataset: both spellings occur in MMAD, so consumers must read mask_path, not guess.
MASK_FOLDER = {"DS-MVTec": "rbg_mask", "MVTec-LOCO": "rbg_mask", "VisA": "rgb_mask", "GoodsAD": "rgb_mask"}
#: Mask colour per dataset: white, and one coloured variant (any nonzero channel marks a defect).
MASK_COLOUR = {
    "DS-MVTec": (255, 255, 255),
    "MVTec-LOCO": (255, 255, 255),
    "VisA": (255, 255, 255),
    "GoodsAD": (255, 0, 0),
}
#: domain_knowledge.json key per dataset.
KNOWLEDGE_KEY = {"DS-MVTec": "MVTec"}


def template_dir(dataset: str, category: str) -> str:
    """Root-relative folder of normal template images (MMAD keeps DS-MVTec's under MVTec-AD/)."""
    if dataset == "DS-MVTec":
        return f"MVTec-AD/{category}/train/good"
    return f"{dataset}/{category}/train/good"


def _save_png(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG", compress_level=6)


def _thumb(src: Image.Image | Path) -> np.ndarray:
    img = Image.open(src) if isinstance(src, Path) else src
    return np.asarray(img.convert("L").resize((32, 32), Image.BILINEAR), np.float32)


def _mask_image(mask: np.ndarray, colour: tuple[int, int, int]) -> Image.Image:
    arr = np.zeros(mask.shape + (3,), np.uint8)
    arr[mask] = colour
    return Image.fromarray(arr)


def _write_category(
    root: Path,
    spec: CategorySpec,
    rng: np.random.Generator,
    *,
    per_defect: int,
    normals: int,
    templates: int,
    size: tuple[int, int],
) -> dict[str, dict]:
    base = root / spec.dataset / spec.name
    tdir = template_dir(spec.dataset, spec.name)
    template_paths = []
    for i in range(templates):
        rel = f"{tdir}/{i:03d}.png"
        _save_png(make_product(spec.product, size, rng), root / rel)
        template_paths.append(rel)

    thumbs = [_thumb(root / rel) for rel in template_paths]

    def template_lists(query: Image.Image) -> dict[str, list[str]]:
        """MMAD's two template lists: ranked by similarity to the query, and in random order.

        The random list never starts with the most similar template, so "random_templates[0]" and
        "similar_templates[0]" are two different 1-shot settings, as in MMAD.
        """
        q = _thumb(query)
        ranked = [template_paths[i] for i in np.argsort([float(np.abs(q - t).mean()) for t in thumbs])]
        shuffled = [template_paths[i] for i in rng.permutation(len(template_paths))]
        if len(shuffled) > 1 and shuffled[0] == ranked[0]:
            shuffled = shuffled[1:] + shuffled[:1]
        return {"similar_templates": ranked, "random_templates": shuffled}

    entries: dict[str, dict] = {}
    mask_folder = MASK_FOLDER[spec.dataset]
    for defect in spec.defects:
        for i in range(per_defect):
            image, mask = paint_defect(make_product(spec.product, size, rng), defect.kind, rng)
            image_rel = f"image/{defect.folder}/{i:03d}.png"
            mask_rel = f"{mask_folder}/{defect.folder}/{i:03d}_{mask_folder}.png"
            _save_png(image, base / image_rel)
            _save_png(_mask_image(mask, MASK_COLOUR[spec.dataset]), base / mask_rel)
            entries[f"{spec.dataset}/{spec.name}/{image_rel}"] = {
                "image_path": image_rel,
                "mask_path": mask_rel,
                **template_lists(image),
                "conversation": anomalous_conversation(spec, defect, mask, rng),
            }
    for i in range(normals):
        image_rel = f"image/good/{i:03d}.png"
        image = make_product(spec.product, size, rng)
        _save_png(image, base / image_rel)
        entries[f"{spec.dataset}/{spec.name}/{image_rel}"] = {
            "image_path": image_rel,
            "mask_path": "",
            **template_lists(image),
            "conversation": normal_conversation(spec, rng),
        }
    return entries


def make_mmad_root(
    out_dir: Path | str,
    seed: int = 0,
    categories: Iterable[str] | None = None,
    *,
    per_defect: int = 2,
    normals: int = 3,
    templates: int = 3,
    size: int | tuple[int, int] | None = None,
) -> Path:
    """Write a synthetic MMAD root (images, masks, templates, mmad.json, domain_knowledge.json).

    Deterministic for `seed`; each category draws from its own generator, so adding a category does
    not change the others. `size` overrides every category's default picture size. The default root
    (5 categories over the 4 datasets) is about 2 MB and takes a few seconds.
    """
    names = tuple(categories) if categories is not None else DEFAULT_CATEGORIES
    unknown = [n for n in names if n not in SPECS]
    if unknown or not names:
        raise ValueError(f"unknown synthetic MMAD categories {unknown}; choose from {', '.join(SPECS)}")
    if per_defect < 1 or normals < 1 or templates < 1:
        raise ValueError("per_defect, normals and templates must all be at least 1")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    mmad: dict[str, dict] = {}
    knowledge: dict[str, dict[str, dict[str, str]]] = {}
    for name in names:
        spec = SPECS[name]
        rng = np.random.default_rng([seed, list(SPECS).index(name)])
        wh = spec.size if size is None else ((size, size) if isinstance(size, int) else tuple(size))
        mmad.update(
            _write_category(
                root, spec, rng, per_defect=per_defect, normals=normals, templates=templates, size=wh
            )
        )
        knowledge.setdefault(KNOWLEDGE_KEY.get(spec.dataset, spec.dataset), {})[spec.name] = spec_knowledge(
            spec
        )
    (root / "mmad.json").write_text(json.dumps(mmad, indent=1), encoding="utf-8")
    (root / "domain_knowledge.json").write_text(json.dumps(knowledge, indent=1), encoding="utf-8")
    return root
