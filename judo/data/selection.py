"""Which images the builders use, chosen reproducibly, and a check of their files before any teacher call.

Stage 1 (and stage 3, which reuses stage 1's choice) takes one anomalous image per (dataset, category,
defect type) of MMAD (293 in the real benchmark), optionally 10 per Real-IAD category. Every random
choice is drawn from a generator seeded with the build seed *and the thing being chosen for*, so a
choice does not depend on the order of iteration, on `--limit` or on other items: rerunning with the
same seed always picks the same images and templates.

Normal images for templates (stage 1) and for anchoring Q&A pairs (stage 2) come from MMAD's template
lists (`random_templates`/`similar_templates`: training images such as `MVTec-AD/<cat>/train/good/`),
never from the evaluation queries, so nothing used for training needs to be excluded from evaluation
except the chosen anomalous queries themselves.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from judo.data.build import DataBuildError
from judo.data.realiad import RealIADRoot
from judo.mmad import MMADRoot, Sample


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator that depends only on the seed and what it is used for (str seeds hash stably)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


@dataclass(frozen=True)
class Stage1Item:
    """One anomalous query with its mask and a normal template; `key` is the MMAD key (or Real-IAD path)."""

    source: str  # "mmad" or "realiad"
    key: str
    dataset: str
    category: str
    defect: str
    image_path: Path
    mask_path: Path
    template_path: Path
    root: Path  # the source root; paths written to rows are relative to it

    def relative(self, path: Path) -> str:
        """`path` relative to the source root when inside it (rows stay valid when the root moves)."""
        try:
            return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)


def template_pools(mmad: MMADRoot) -> dict[tuple[str, str], list[Path]]:
    """(dataset, category) -> every normal template path MMAD lists for that category, sorted, unique."""
    pools: dict[tuple[str, str], set[Path]] = defaultdict(set)
    for sample in mmad.samples.values():
        pools[(sample.dataset, sample.category)].update(sample.random_templates)
        pools[(sample.dataset, sample.category)].update(sample.similar_templates)
    return {k: sorted(v) for k, v in pools.items()}


def pick_template(sample: Sample, pools: dict[tuple[str, str], list[Path]], seed: int) -> Path:
    """A random normal template of the sample's category (its own random_templates first)."""
    candidates = sorted(sample.random_templates) or pools.get((sample.dataset, sample.category), [])
    if not candidates:
        raise DataBuildError(
            f"no normal template listed for {sample.dataset}/{sample.category} "
            f"(needed by {sample.key}); check random_templates in mmad.json"
        )
    return rng_for(seed, "template", sample.key).choice(candidates)


def select_mmad_stage1(mmad: MMADRoot, *, seed: int, per_defect: int = 1) -> list[Stage1Item]:
    """`per_defect` anomalous images (with a mask) per (dataset, category, defect), each with a template."""
    if per_defect < 1:
        raise ValueError(f"per_defect must be >= 1, got {per_defect}")
    groups: dict[tuple[str, str, str], list[Sample]] = defaultdict(list)
    for sample in mmad.samples.values():
        if not sample.is_normal and sample.mask_path:
            groups[(sample.dataset, sample.category, sample.defect)].append(sample)
    if not groups:
        raise DataBuildError(f"no anomalous image with a mask in {mmad.root / 'mmad.json'}")
    pools = template_pools(mmad)
    items = []
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda s: s.key)
        chosen = rng_for(seed, "stage1", *group).sample(members, min(per_defect, len(members)))
        for sample in sorted(chosen, key=lambda s: s.key):
            items.append(
                Stage1Item(
                    "mmad",
                    sample.key,
                    sample.dataset,
                    sample.category,
                    sample.defect,
                    Path(sample.image_path),
                    Path(sample.mask_path),
                    Path(pick_template(sample, pools, seed)),
                    Path(mmad.root),
                )
            )
    return items


def select_realiad_stage1(realiad: RealIADRoot, *, seed: int, per_category: int = 10) -> list[Stage1Item]:
    """`per_category` anomalous Real-IAD views per category, each with a random OK view as template."""
    items = []
    for category in sorted(realiad.anomalous):
        members = realiad.anomalous[category]
        chosen = rng_for(seed, "realiad", category).sample(members, min(per_category, len(members)))
        for img in sorted(chosen, key=lambda i: i.key):
            template = rng_for(seed, "template", img.key).choice(realiad.normal[category])
            items.append(
                Stage1Item(
                    "realiad",
                    img.key,
                    "Real-IAD",
                    category,
                    img.defect,
                    img.image_path,
                    img.mask_path,
                    template,
                    realiad.root,
                )
            )
    return items


def _size(path: Path) -> tuple[int, int] | str:
    """(width, height) from the file header, or a problem description."""
    if not path.is_file():
        return f"missing file {path}"
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as err:
        return f"unreadable image {path} ({err})"


def check_stage1_items(items: list[Stage1Item]) -> list[tuple[Stage1Item, str]]:
    """Problems that would make an item unusable: missing/unreadable files, a mask whose size differs
    from its image (its grid cells would be wrong). Reads headers only; fast even for thousands."""
    problems = []
    for item in items:
        image_size = _size(item.image_path)
        mask_size = _size(item.mask_path)
        template = _size(item.template_path)
        for found in (image_size, mask_size, template):
            if isinstance(found, str):
                problems.append((item, found))
                break
        else:
            if image_size != mask_size:
                problems.append(
                    (
                        item,
                        f"mask {item.mask_path} is {mask_size[0]}x{mask_size[1]} but its image "
                        f"{item.image_path} is {image_size[0]}x{image_size[1]}",
                    )
                )
    return problems


def resolve_problems(items: list, problems: list[tuple[object, str]], *, skip_bad: bool, log) -> list:
    """Fail with every problem listed, or (with --skip-bad) drop the affected items and log why."""
    if not problems:
        return items
    listing = "\n".join(f"  {getattr(item, 'key', item)}: {why}" for item, why in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    if not skip_bad:
        raise DataBuildError(
            f"{len(problems)} selected item(s) cannot be used:\n{listing}{more}\n"
            "Fix the files, or pass --skip-bad to leave these items out."
        )
    for item, why in problems:
        log.warning("leaving out %s: %s", getattr(item, "key", item), why)
    bad = {id(item) for item, _ in problems}
    return [item for item in items if id(item) not in bad]
