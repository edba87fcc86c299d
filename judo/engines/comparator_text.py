"""Words for what the comparator measured, and the answers a measurement can give.

Only two MMAD question kinds follow from a difference map alone: "is there a defect?" (Yes/No options)
and "where is the defect?" (options naming positions such as "Top left." or "Center."). Everything
else (defect type, appearance, effect, product, counts) needs a language model: `answer` returns None
and a sentence saying so.
"""

from __future__ import annotations

import re

import numpy as np

from judo.grid import GRID_SIZE

_YES = re.compile(r"^\s*yes\b", re.I)
_NO = re.compile(r"^\s*no\b", re.I)
_VERT = {"top": 0, "upper": 0, "bottom": 2, "lower": 2}
_HORIZ = {"left": 0, "right": 2}
LABEL = "[Comparator measurement — no language model]"


def _position(text: str) -> tuple[int, int] | None:
    """(row, col) of a 3x3 split named by an option ("Top left.", "Center.", "Bottom center") or None."""
    words = re.findall(r"[a-z]+", text.lower())
    if not words or len(words) > 4:
        return None
    row = next((_VERT[w] for w in words if w in _VERT), None)
    col = next((_HORIZ[w] for w in words if w in _HORIZ), None)
    central = any(w in {"center", "centre", "middle", "central"} for w in words)
    if row is None and col is None and not central:
        return None
    return (1 if row is None else row, 1 if col is None else col)


def _centre(result) -> tuple[float, float] | None:
    """Score-weighted centre (row, col) of the anomalous cells, in cell units."""
    if not result.cells:
        return None
    rows = np.array([r for r, _ in result.cells], dtype=float) + 0.5
    cols = np.array([c for _, c in result.cells], dtype=float) + 0.5
    w = np.array([max(float(result.scores[r, c]), 1e-6) for r, c in result.cells])
    return float((rows * w).sum() / w.sum()), float((cols * w).sum() / w.sum())


def position_name(result) -> str | None:
    """Where the differences are, in words ("top left", "center", ...)."""
    centre = _centre(result)
    if centre is None:
        return None
    r, c = (min(2, int(3 * v / GRID_SIZE)) for v in centre)
    vert = ("top", "center", "bottom")[r]
    horiz = ("left", "center", "right")[c]
    return "center" if vert == horiz == "center" else (vert if horiz == "center" else (
        horiz if vert == "center" else f"{vert} {horiz}"))


def answer(result, question: str, options: dict[str, str] | None) -> tuple[str | None, str]:
    """(letter or None, one sentence on how the answer was reached or why there is none)."""
    if not options:
        return None, "It gives no free-text answers: that needs a language model."
    if not result.valid:
        return None, "The comparison is not reliable for this pair, so it does not answer."
    yes = [k for k, v in options.items() if _YES.match(v)]
    no = [k for k, v in options.items() if _NO.match(v)]
    if len(options) == 2 and len(yes) == 1 and len(no) == 1:
        found = result.is_anomalous
        letter = yes[0] if found else no[0]
        return letter, f"Answer {letter}: {'a difference above the threshold was found' if found else 'no cell differs from the template beyond the threshold'}."
    positions = {k: _position(v) for k, v in options.items()}
    if all(p is not None for p in positions.values()):
        centre = _centre(result)
        if centre is None:
            return None, "No difference was found, so there is no position to choose."
        cr, cc = (3 * v / GRID_SIZE - 0.5 for v in centre)  # centre in 3x3 units
        best = min(positions, key=lambda k: (positions[k][0] - cr) ** 2 + (positions[k][1] - cc) ** 2)
        return best, f"Answer {best}: the differences are centred in the {position_name(result)} of the image."
    return None, ("This question (defect type, appearance, effect or product) cannot be answered from a "
                  "measurement: choose a language-model engine.")


def sentences(result, answer_note: str) -> list[str]:
    """The explanation, sentence by sentence (each ends with a space or newline)."""
    out = [LABEL + "\n"]
    if not result.valid:
        out.append("The query could not be compared reliably with this template. ")
    n = len(result.cells)
    if n == 0:
        out.append("No cell differs from the template beyond the adaptive threshold. ")
    else:
        share = 100.0 * n / GRID_SIZE**2
        out.append(
            f"{n} of {GRID_SIZE * GRID_SIZE} cells ({share:.0f}% of the image) differ from the template, "
            f"mostly in the {position_name(result)}. "
        )
        out.append(f"The strongest difference is {result.max_score:.1f}x the threshold. ")
        cells = list(result.cells)
        bright = float(np.mean([result.brightness[r, c] for r, c in cells]))
        tex = float(np.mean([result.texture[r, c] for r, c in cells]))
        if abs(bright) > 0.03:
            out.append(f"The region is {'brighter' if bright > 0 else 'darker'} than the template. ")
        if tex > 0.2:
            out.append("It has more edges or texture than the template (e.g. a scratch, crack or contamination). ")
        elif tex < -0.2:
            out.append("It has less structure than the template (e.g. a missing or smoothed part). ")
    for w in result.warnings:
        out.append(f"Note: {w}. ")
    out.append("\n" + answer_note)
    return out
