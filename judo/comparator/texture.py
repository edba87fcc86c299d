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

import cv2
import numpy as np
from scipy.spatial import cKDTree

from judo.comparator.matching import MATCH_SIZE, descriptors

#: Absolute floor of the distance scale and the pair-noise rule (as features.py / matching.py).
TEXTURE_NN_FLOOR, NOISE_QUANTILE, NOISE_FACTOR = 0.05, 0.75, 2.5
#: Approximate nearest-neighbour slack (cKDTree eps): distances within (1 + eps) of the exact ones.
KD_EPS = 0.3


def texture_features(ycc: np.ndarray) -> np.ndarray:
    """(64*64, 20) descriptors of one (N, N, 3) YCrCb picture (see the module docstring)."""
    d = descriptors(ycc).astype(np.float32)
    y, contrast = d[:, :, 0], d[:, :, 3]
    spread = float(y.std()) + 1e-3
    y = (y - y.mean()) / spread * 0.1
    contrast = contrast / spread * 0.1
    chroma = d[:, :, 1:3] - d[:, :, 1:3].reshape(-1, 2).mean(axis=0)
    planes = []
    for plane in (y, contrast):
        padded = cv2.copyMakeBorder(plane, 1, 1, 1, 1, cv2.BORDER_REFLECT)
        planes += [
            padded[1 + dy : 1 + dy + MATCH_SIZE, 1 + dx : 1 + dx + MATCH_SIZE]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ]
    stacked = np.dstack([*planes, chroma])
    return stacked.reshape(-1, stacked.shape[2]).astype(np.float32)


def texture_tree(ycc: np.ndarray) -> cKDTree:
    return cKDTree(texture_features(ycc))


def foreign_map(query_ycc: np.ndarray, trees: list[cKDTree]) -> np.ndarray:
    """(64, 64) distance of each query neighbourhood to its nearest look-alike in any tree, in noise
    units (1 = this query's ordinary distance)."""
    feats = texture_features(query_ycc)
    best = np.full(len(feats), np.inf, np.float32)
    for tree in trees:
        dist, _ = tree.query(feats, k=1, eps=KD_EPS)
        np.minimum(best, dist.astype(np.float32), out=best)
    scale = max(TEXTURE_NN_FLOOR, NOISE_FACTOR * float(np.quantile(best, NOISE_QUANTILE)))
    return (best / scale).reshape(MATCH_SIZE, MATCH_SIZE)
