"""Overlay rendering speed: the app re-renders the query every time the streamed cell set changes.

Targets: under 5 ms at 448 px, under 30 ms at 2048 px (red cells; the green outline and the heat map
are drawn once per inspection and are reported for information). Exits 1 naming each size whose red
cells miss their target.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
from PIL import Image

from judo.grid import mask_to_cells
from judo.render import heatmap_overlay, outline_mask, overlay_cells

TARGETS_MS = {448: 5.0, 2048: 30.0}


def _time(fn, repeat: int = 30) -> float:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs)


def main() -> int:
    rng = np.random.default_rng(0)
    missed = []
    for side, target in TARGETS_MS.items():
        img = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
        mask = np.zeros((side, side), bool)
        mask[side // 4 : side // 2, side // 3 : side // 2 + side // 8] = True
        cells = mask_to_cells(mask) | {(r, 12) for r in range(16)}  # a blob + a long column: ~40 cells
        scores = rng.random((16, 16))
        cells_ms = _time(lambda img=img, cells=cells: overlay_cells(img, cells))
        outline_ms = _time(lambda img=img, mask=mask: outline_mask(img, mask), repeat=10)
        heat_ms = _time(lambda img=img, scores=scores: heatmap_overlay(img, scores), repeat=10)
        verdict = "ok" if cells_ms < target else "SLOW"
        if cells_ms >= target:
            missed.append(f"red cells at {side} px: {cells_ms:.2f} ms (target < {target:g} ms)")
        print(
            f"{side:>5} px  red cells ({len(cells)}): {cells_ms:6.2f} ms (target < {target:g} ms, {verdict})"
            f"   green outline: {outline_ms:6.2f} ms   heat map: {heat_ms:6.2f} ms"
        )
    load = os.getloadavg()
    print(
        f"wall-clock medians; load average (1/5/15 min) {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    for miss in missed:
        print(f"target missed: {miss}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
