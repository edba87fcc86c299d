"""Texture look-alikes anywhere in the bank: how foreign each piece of a surface is (scipy cKDTree).

Why: another piece of a random surface (gravel, grass, a carpet) never lines up with the golden
sample, not even within a cell: the stones simply lie elsewhere. What makes a defect is a look that
occurs nowhere on the good surfaces, so for pictures that are a texture filling the frame (no object
on a plain background: pose.foreground) every small neighbourhood of the query is looked up among
all neighbourhoods of all normals, wherever they are (PatchCore's memory bank, with hand-made
descriptors): 3x3 blocks of block-mean brightness and contrast plus the centre's colour, after
removing each picture's global brightness and contrast. A normal's tree is built once and cached
with the normal (registration-independent).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from judo.comparator.matching import MATCH_SIZE, descriptors

#: Absolute floor of the distance scale and the pair-noise rule (as features.py / matching.py).
TEXTURE_NN_FLOOR, NOISE_QUANTILE, NOISE_FACTOR = 0.05, 0.75, 2.5
#: The colour look-up's floor: a chroma distance ([0, 1] units x matching.WEIGHTS) below it is no change.
COLOUR_NN_FLOOR = 0.03
#: Pictures are smoothed by this (px at analysis size) before they are described: sensor noise and JPEG
#: blocks differ from photo to photo and would read as a change of fine contrast.
DENOISE_SIGMA = 1.0
#: Descriptor grids looked up (blocks of 7 and 14 px at 448 px): fine grain, and blobs such as a stain
#: or a hole that a fine block sees only in part.
GRIDS = (MATCH_SIZE, MATCH_SIZE // 2)
#: Approximate nearest-neighbour slack (cKDTree eps): distances within (1 + eps) of the exact ones.
KD_EPS = 0.3


@dataclass(frozen=True)
class TextureTrees:
    """One normal's look-up trees per descriptor grid (GRIDS): structure (brightness and contrast of a
    3x3 block neighbourhood) and colour (the centre block's chroma) apart, so that a change of one is
    not diluted by a match of the other (a stain of a new colour on ordinary grain; a scratch in the
    usual colour)."""

    structure: tuple[cKDTree, ...]
    colour: tuple[cKDTree, ...]


def texture_features(ycc: np.ndarray, size: int = MATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(size*size, 18) structure and (size*size, 2) colour descriptors of one (N, N, 3) YCrCb picture."""
    d = descriptors(cv2.GaussianBlur(ycc, (0, 0), DENOISE_SIGMA), size).astype(np.float32)
    y, contrast = d[:, :, 0], d[:, :, 3]
    spread = float(y.std()) + 1e-3
    y = (y - y.mean()) / spread * 0.1
    contrast = contrast / spread * 0.1
    chroma = d[:, :, 1:3] - d[:, :, 1:3].reshape(-1, 2).mean(axis=0)
    inner = size - 2
    planes = [
        plane[1 + dy : 1 + dy + inner, 1 + dx : 1 + dx + inner]
        for plane in (y, contrast)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    # Only whole neighbourhoods inside the picture: a block on the rim is described by the neighbourhood
    # one block further in that contains it (a mirrored rim would be a look no real surface has).
    structure = np.pad(np.dstack(planes), ((1, 1), (1, 1), (0, 0)), mode="edge").reshape(-1, len(planes))
    return structure.astype(np.float32), chroma.reshape(-1, 2).astype(np.float32)


def texture_trees(ycc: np.ndarray) -> TextureTrees:
    feats = [texture_features(ycc, size) for size in GRIDS]
    return TextureTrees(tuple(cKDTree(s) for s, _ in feats), tuple(cKDTree(c) for _, c in feats))


def _nearest(feats: np.ndarray, trees: list[cKDTree], floor: float) -> np.ndarray:
    """Distance of each feature to its nearest look-alike in any tree, in this query's noise units."""
    best = np.full(len(feats), np.inf, np.float32)
    for tree in trees:
        dist, _ = tree.query(feats, k=1, eps=KD_EPS)
        np.minimum(best, dist.astype(np.float32), out=best)
    return best / max(floor, NOISE_FACTOR * float(np.quantile(best, NOISE_QUANTILE)))


def foreign_map(query_ycc: np.ndarray, trees: list[TextureTrees]) -> np.ndarray:
    """(64, 64) distance of each query neighbourhood to its nearest look-alike among the normals, in
    noise units (1 = this query's ordinary distance): the worst of structure and colour, per grid."""
    out = np.zeros((MATCH_SIZE, MATCH_SIZE), np.float32)
    for g, size in enumerate(GRIDS):
        structure, colour = texture_features(query_ycc, size)
        foreign = np.maximum(
            _nearest(structure, [t.structure[g] for t in trees], TEXTURE_NN_FLOOR),
            _nearest(colour, [t.colour[g] for t in trees], COLOUR_NN_FLOOR),
        ).reshape(size, size)
        if size != MATCH_SIZE:
            foreign = cv2.resize(foreign, (MATCH_SIZE, MATCH_SIZE), interpolation=cv2.INTER_NEAREST)
        np.maximum(out, foreign, out=out)
    return out
