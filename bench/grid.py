"""Throughput of the seg language: format, parse (lenient and strict), mask -> cells, and the
streaming response parser that reads it token by token.

Every reward call, evaluation record and streamed token goes through these functions, so they must stay
far below the cost of generating a token. Target: format and parse (lenient and strict) under 50 µs
per string; the script exits 1 and names the figure when one is missed.
Run: ``.venv/bin/python bench/grid.py [--n 10000]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from judo.grid import GRID_SIZE, format_seg, mask_to_cells, parse_seg
from judo.response import StreamParser, parse_response

TARGET_US = 50.0  # per seg string: format, parse (lenient), parse (strict)
DASHES = ["-", " - ", "\u2013", " \u2013 ", "\u2014"]  # hyphen, spaced hyphen, en dash (the paper), em dash


def blob(rng: random.Random, target: int) -> set[tuple[int, int]]:
    """A connected, defect-like region of about ``target`` cells grown from a random seed cell."""
    if target == 0:
        return set()
    cells = {(rng.randrange(GRID_SIZE), rng.randrange(GRID_SIZE))}
    frontier = list(cells)
    while len(cells) < target and frontier:
        r, c = rng.choice(frontier)
        dr, dc = rng.choice(((0, 1), (0, -1), (1, 0), (-1, 0), (0, 1), (0, -1)))  # defects run wide
        nxt = (r + dr, c + dc)
        if 0 <= nxt[0] < GRID_SIZE and 0 <= nxt[1] < GRID_SIZE and nxt not in cells:
            cells.add(nxt)
            frontier.append(nxt)
    return cells


def as_model_writes(seg: str, rng: random.Random) -> str:
    """Re-spell a canonical seg string with the variations models and the paper produce."""
    dash = rng.choice(DASHES)
    text = seg.replace(")-(", ")" + dash + "(")
    if rng.random() < 0.2:
        text = text.replace(", ", ",\n")
    if rng.random() < 0.1:
        text = re.sub(r"\((\d+),(\d+)\)", r"( \1, \2 )", text)
    return text


def timed(fn: Callable[[object], object], items: list, repeat: int = 3) -> float:
    """Best-of-``repeat`` CPU microseconds per item.

    CPU time of this process (``process_time``), not wall time: on a shared machine wall time mostly
    measures the other processes.
    """
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - t0)
    return best / len(items) * 1e6


THINK = (
    "Compared with the normal template, the query shows a {kind} near the {where}. The surface around it "
    "is otherwise uniform, and the region differs in texture and brightness from the template. "
)


def response_for(seg_text: str, rng: random.Random) -> str:
    """A JUDO-shaped response of realistic length around a seg string."""
    think = "".join(
        THINK.format(
            kind=rng.choice(["scratch", "dent", "stain"]), where=rng.choice(["top left", "centre", "edge"])
        )
        for _ in range(rng.randint(3, 8))
    )
    return f"{seg_text}\n<think> {think}</think>\n<answer>{rng.choice('ABCD')}</answer>"


def stream_all(chunks: list[str]) -> None:
    parser = StreamParser()
    for chunk in chunks:
        parser.feed(chunk)


def reparse_all(chunks: list[str]) -> None:
    text = ""
    for chunk in chunks:
        text += chunk
        parse_response(text, final=False)


def mask_for(cells: set[tuple[int, int]], size: int, rng: random.Random) -> Image.Image:
    """An MMAD-like RGB mask: the defect painted in a colour on black, touching the given cells."""
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    step = size / GRID_SIZE
    for r, c in cells:
        y, x = int((r + rng.random()) * step), int((c + rng.random()) * step)
        arr[y : y + max(1, int(step // 2)), x : x + max(1, int(step // 2))] = (255, 255, 255)
    return Image.fromarray(arr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="seg strings to generate")
    parser.add_argument("--masks", type=int, default=200, help="masks per size for mask_to_cells")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    sizes = [0 if rng.random() < 0.15 else int(rng.triangular(1, 60, 12)) for _ in range(args.n)]
    cell_sets = [blob(rng, k) for k in sizes]
    canonical = [format_seg(cells) for cells in cell_sets]
    written = [as_model_writes(text, rng) for text in canonical]
    assert all(parse_seg(w) == c for w, c in zip(written, cell_sets, strict=True)), "parse mismatch"

    mean_cells = sum(map(len, cell_sets)) / len(cell_sets)
    mean_chars = sum(map(len, written)) / len(written)
    print(
        f"{args.n} seg strings: {mean_cells:.1f} cells, {mean_chars:.0f} chars on average (max cells "
        f"{max(sizes)})"
    )
    per_string = {
        "format_seg": timed(format_seg, cell_sets),
        "parse_seg (lenient)": timed(parse_seg, written),
        "parse_seg (strict)": timed(lambda t: parse_seg(t, strict=True), written),
    }
    for name, us in per_string.items():
        verdict = "ok" if us < TARGET_US else "MISSES"
        print(f"  {name:25s} {us:7.2f} us/string (target < {TARGET_US:g} us, {verdict})")

    responses = [response_for(written[i], rng) for i in range(200)]
    mean_len = sum(map(len, responses)) / len(responses)
    print(
        f"  parse_response (full)     {timed(parse_response, responses):7.2f} us/response "
        f"({mean_len:.0f} chars)"
    )
    chunked = [[text[i : i + 4] for i in range(0, len(text), 4)] for text in responses]
    n_tokens = sum(map(len, chunked))
    stream_us = timed(stream_all, chunked, 1) * len(chunked) / n_tokens
    naive_us = timed(reparse_all, chunked[:40], 1) * 40 / sum(map(len, chunked[:40]))
    print(
        f"  StreamParser.feed         {stream_us:7.2f} us/token   (re-parsing the prefix per token: "
        f"{naive_us:.2f} us/token)"
    )

    for size in (448, 2048):
        masks = [mask_for(cell_sets[i], size, rng) for i in range(args.masks)]
        arrays = [np.asarray(m) for m in masks]
        print(f"  mask_to_cells {size:4d}px PIL  {timed(mask_to_cells, masks, 1) / 1000:7.3f} ms/mask")
        print(f"  mask_to_cells {size:4d}px array {timed(mask_to_cells, arrays, 1) / 1000:7.3f} ms/mask")
    load = os.getloadavg()
    print(
        f"load average (1/5/15 min) {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs "
        "(figures are CPU time of this process)"
    )
    missed = [name for name, us in per_string.items() if us >= TARGET_US]
    if missed:
        print(f"target missed (< {TARGET_US:g} us per string): {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
