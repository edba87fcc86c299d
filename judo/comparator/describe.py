"""Words from measurements: a factual explanation of a ComparisonResult and the two kinds of MMAD
questions a comparison alone can answer (Anomaly Detection; Defect Localization by position).

Why here and not in an engine: the explanation must only state what was measured (where, how strong,
how large, which direction), never guess a defect type; and the evaluator, the app and any engine
must give the same answers for the same result. Anything else is left to a language model: the
answer functions return None (abstain) rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from judo.comparator.compare import ComparisonResult
from judo.grid import GRID_SIZE, Cell

#: Mean grey change (query minus template, [0, 1] units) beyond which a region is "brighter"/"darker".
BRIGHTNESS_STEP = 0.03
#: Mean log gradient-energy ratio beyond which a region has "extra edges" / "missing structure".
TEXTURE_STEP = 0.3
_THIRDS = ("top", "middle", "bottom"), ("left", "center", "right")


def region_name(row: float, col: float, grid: int = GRID_SIZE) -> str:
    """Position words for a (fractional) cell: "top left", "top", ..., "center", ..., "bottom right"."""
    v = _THIRDS[0][min(2, int(3 * (row + 0.5) / grid))]
    h = _THIRDS[1][min(2, int(3 * (col + 0.5) / grid))]
    if v == "middle":
        return "center" if h == "center" else h
    return v if h == "center" else f"{v} {h}"


@dataclass(frozen=True)
class Region:
    """One connected group of anomalous cells and what was measured there."""

    cells: frozenset[Cell]
    where: str
    strength: float  # the group's highest cell score, in multiples of the pair's threshold
    area_fraction: float  # share of the image the cells cover
    brightness: float  # mean grey change, query minus template
    texture: float  # mean log gradient-energy ratio, query vs template
    dominant: str  # which measurement was strongest: "luma_fine", "colour_coarse" or "texture"

    def direction(self) -> list[str]:
        words = []
        if self.brightness > BRIGHTNESS_STEP:
            words.append("brighter than the template")
        elif self.brightness < -BRIGHTNESS_STEP:
            words.append("darker than the template")
        if self.texture > TEXTURE_STEP:
            words.append("with extra edges or texture")
        elif self.texture < -TEXTURE_STEP:
            words.append("with structure missing or smoothed out")
        if not words:
            words.append(
                {
                    "colour_coarse": "with a colour change",
                    "luma_fine": "with changed fine detail",
                    "texture": "with a changed texture",
                }.get(self.dominant, "different")
            )
        return words


def regions(result: ComparisonResult) -> list[Region]:
    """The anomalous cells grouped 8-connected, largest and strongest first."""
    grid = np.zeros((GRID_SIZE, GRID_SIZE), bool)
    for r, c in result.cells:
        grid[r, c] = True
    labels, count = ndi.label(grid, structure=np.ones((3, 3)))
    out = []
    for k in range(1, count + 1):
        rows, cols = np.nonzero(labels == k)
        weights = np.maximum(result.scores[rows, cols], 1e-6)
        features = {name: float(m[rows, cols].max()) for name, m in result.feature_scores.items()}
        out.append(
            Region(
                cells=frozenset((int(r), int(c)) for r, c in zip(rows, cols, strict=True)),
                where=region_name(
                    float(np.average(rows, weights=weights)), float(np.average(cols, weights=weights))
                ),
                strength=float(result.scores[rows, cols].max()),
                area_fraction=len(rows) / GRID_SIZE**2,
                brightness=float(result.brightness[rows, cols].mean()),
                texture=float(result.texture[rows, cols].mean()),
                dominant=max(features, key=features.get) if features else "",
            )
        )
    return sorted(out, key=lambda g: (len(g.cells), g.strength), reverse=True)


def describe(result: ComparisonResult, max_regions: int = 3) -> str:
    """A short, factual account of what the comparison measured (plain text, a few sentences)."""
    lines = []
    if not result.valid:
        lines.append("No meaningful comparison was possible: " + "; ".join(result.warnings) + ".")
        return " ".join(lines)
    found = regions(result)
    if not found:
        lines.append(
            "No region differs from the template beyond this pair's noise level "
            f"(strongest cell at {result.max_score:.2f} of the threshold)."
        )
    else:
        total = len(result.cells)
        many = len(found) > 1
        lines.append(
            f"{len(found)} region{'s' if many else ''} differ{'' if many else 's'} from the template: "
            f"{total} of {GRID_SIZE**2} grid cells ({100 * total / GRID_SIZE**2:.1f}% of the image)."
        )
        for i, g in enumerate(found[:max_regions], 1):
            lines.append(
                f"{i}) {g.where}: {len(g.cells)} cell{'s' if len(g.cells) > 1 else ''}, "
                f"{g.strength:.1f}x the threshold, {', '.join(g.direction())}."
            )
        if len(found) > max_regions:
            lines.append(f"(and {len(found) - max_regions} smaller regions)")
    if result.warnings:
        lines.append("Note: " + "; ".join(result.warnings) + ".")
    if result.bank_size > 1:
        lines.append(
            f"Judged against {len(result.normals_used)} of {result.bank_size} golden samples (the nearest"
            f" per cell){_threshold_words(result)}."
        )
    return "\n".join(lines)


def _threshold_words(result: ComparisonResult) -> str:
    words = ""
    if result.calibration is not None and result.false_alarm_rate is not None:
        words = (
            f"; threshold calibrated on {result.calibration.normals} of them for "
            f"{result.false_alarm_rate:g} false cells per good part"
        )
    if result.sensitivity != 1.0:
        words += f"; sensitivity {result.sensitivity:g}x"
    return words


def borderline_note(result: ComparisonResult) -> str:
    """One sentence saying the Yes/No verdict rests on cells near the threshold, and which."""
    from judo.comparator.threshold import BORDERLINE_BAND
    from judo.grid import format_seg

    verdict = "defect" if result.cells else "no defect"
    return (
        f"Borderline: the verdict ({verdict}) rests on {len(result.borderline)} cell(s) within "
        f"{round(100 * (BORDERLINE_BAND - 1))}% of the threshold, {format_seg(result.borderline)}; a slightly "
        "different sensitivity would change it."
    )


# ---------------------------------------------------------------------------------------------- answers

_WORD = re.compile(r"[a-z]+")
_YES, _NO = {"yes", "true"}, {"no", "false"}
#: Questions whose "Yes" means the object is fine ("Is the object free of defects?").
_POSITIVE_QUESTION = re.compile(
    r"\b(free of|without (any )?(defect|flaw|damage)|flawless|defect-free|normal|intact)\b"
)


def _norm_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def says_yes(answer_text: str | None, options: dict[str, str] | None, question: str | None) -> bool | None:
    """Whether an answer to a Yes/No detection question says the part has a defect (None when the
    options are not one Yes and one No, or there is no answer). "Is it free of defects? Yes" is False."""
    if not answer_text or not options or len(options) != 2:
        return None
    yes = [v for v in options.values() if (w := _norm_words(v)) and w[0] in _YES]
    no = [v for v in options.values() if (w := _norm_words(v)) and w[0] in _NO]
    words = _norm_words(answer_text)
    if len(yes) != 1 or len(no) != 1 or not words or words[0] not in _YES | _NO:
        return None
    said_yes = words[0] in _YES
    if question and _POSITIVE_QUESTION.search(question.lower()):
        return not said_yes
    return said_yes


def answer_anomaly_detection(
    result: ComparisonResult, options: dict[str, str] | None, question: str | None = None
) -> str | None:
    """The letter of "Yes" or "No" for "Is there any defect?" (either letter order), or None.

    Abstains when the options are not exactly one Yes and one No, or when the comparison is not
    valid. A question asking whether the object is *normal* ("free of defects") flips the polarity.
    """
    if not result.valid or not options or len(options) != 2:
        return None
    yes = [k for k, v in options.items() if (w := _norm_words(v)) and w[0] in _YES]
    no = [k for k, v in options.items() if (w := _norm_words(v)) and w[0] in _NO]
    if len(yes) != 1 or len(no) != 1:
        return None
    says_defect = result.is_anomalous
    if question and _POSITIVE_QUESTION.search(question.lower()):
        says_defect = not says_defect
    return yes[0] if says_defect else no[0]


_VERTICAL = {"top": -1.0, "upper": -1.0, "bottom": 1.0, "lower": 1.0}
_HORIZONTAL = {"left": -1.0, "right": 1.0}
_CENTRE = {"center", "centre", "middle", "central"}
_FILLER = {
    "the",
    "of",
    "a",
    "an",
    "in",
    "at",
    "on",
    "near",
    "side",
    "part",
    "corner",
    "edge",
    "region",
    "area",
    "portion",
    "image",
    "object",
    "and",
    "half",
    "section",
    "position",
    "located",
    "is",
    "it",
}


def parse_position(text: str) -> tuple[float, float] | None:
    """Option text -> (vertical, horizontal) target in [-1, 1] ("Top" = top centre, "Left side" =
    middle left, "Center" = (0, 0)), or None when the text says anything that is not a position
    ("On the cap", "No defect")."""
    words = _norm_words(text)
    v = h = 0.0
    positional = False
    for w in words:
        if w in _VERTICAL:
            v = _VERTICAL[w]
        elif w in _HORIZONTAL:
            h = _HORIZONTAL[w]
        elif w not in _CENTRE and w not in _FILLER:
            return None
        positional = positional or w in _VERTICAL or w in _HORIZONTAL or w in _CENTRE
    return (v, h) if positional else None


def answer_localization(result: ComparisonResult, options: dict[str, str] | None) -> str | None:
    """The letter of the position option nearest to where the comparison found the difference.

    Every option must be a position ("Top left.", "Center.", "Bottom side"); otherwise None. Cells
    vote with their scores (the anomalous cells if any, else every cell above half the threshold);
    an option collects Gaussian-weighted votes by distance to its target position.
    """
    if not result.valid or not options:
        return None
    targets = {k: parse_position(v) for k, v in options.items()}
    if any(t is None for t in targets.values()) or len(targets) < 2:
        return None
    rows, cols = np.mgrid[0:GRID_SIZE, 0:GRID_SIZE]
    y = (rows + 0.5) / GRID_SIZE * 2 - 1
    x = (cols + 0.5) / GRID_SIZE * 2 - 1
    weights = np.zeros((GRID_SIZE, GRID_SIZE))
    if result.cells:
        for r, c in result.cells:
            weights[r, c] = result.scores[r, c]
    else:
        weights = np.where(result.scores >= 0.5, result.scores, 0.0)
    if weights.sum() <= 0:
        return None
    best, best_score = None, -1.0
    for letter, target in targets.items():
        tv, th = target  # type: ignore[misc]
        d2 = (y - tv) ** 2 + (x - th) ** 2
        score = float(np.sum(weights * np.exp(-d2 / (2 * 0.5**2))))
        if score > best_score:
            best, best_score = letter, score
    return best
