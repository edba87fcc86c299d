"""Ground-truth seg cells per image key, read from an MMAD root's masks.

Kept apart from `score.py` so scoring stays pure: this is the only evaluation code that reads masks.
Cells come from `judo.grid.mask_to_cells`, the same function that made the training targets.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from judo.grid import Cell, mask_to_cells
from judo.images import ImageInputError, load_mask
from judo.mmad import MMADRoot, load_mmad


def load_truth_cells(
    root: str | Path | MMADRoot, keys: Iterable[str]
) -> tuple[dict[str, frozenset[Cell] | None], list[str]]:
    """Truth cells for each key: empty for normal images, None where no mask could be read.

    Returns the mapping and a list of human-readable problems (unknown key, missing/unreadable mask),
    which the caller reports; a bad mask never stops scoring the answers.
    """
    mmad = root if isinstance(root, MMADRoot) else load_mmad(root)
    out: dict[str, frozenset[Cell] | None] = {}
    problems: list[str] = []
    for key in dict.fromkeys(keys):
        sample = mmad.samples.get(key)
        if sample is None:
            out[key] = None
            problems.append(f"{key}: not in {mmad.root / 'mmad.json'}")
            continue
        if sample.mask_path is None:
            out[key] = frozenset() if sample.is_normal else None
            if not sample.is_normal:
                problems.append(f"{key}: anomalous image without a mask")
            continue
        try:
            out[key] = frozenset(mask_to_cells(load_mask(sample.mask_path)))
        except (ImageInputError, OSError) as exc:
            out[key] = None
            problems.append(f"{key}: mask {sample.mask_path}: {exc}")
    return out, problems
