"""MMAD-style conversations for synthetic samples, with answers taken from the synthetic truth.

Why shuffled options with a recorded letter: MMAD's answers sit at every letter, and Yes/No appear in
both orders; a model (or a bug) that always answers "A" must not score well on the test data.
"""

from __future__ import annotations

import numpy as np

from judo.synthetic.catalog import EXTRA_LABELS, KIND_TEXTS, OBJECT_NAMES, CategorySpec, DefectSpec

LETTERS = "ABCDE"
#: Position names for Defect Localization, by (row, col) of a 3x3 split of the image.
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "Top left.",
    (0, 1): "Top center.",
    (0, 2): "Top right.",
    (1, 0): "Center left.",
    (1, 1): "Center.",
    (1, 2): "Center right.",
    (2, 0): "Bottom left.",
    (2, 1): "Bottom center.",
    (2, 2): "Bottom right.",
}

AD_QUESTION = "Is there any defect in the object?"
CLASSIFY_QUESTION = "There is a defect in the object. What is the type of the defect?"
LOCATE_QUESTION = "There is a defect in the object. Where is the defect?"
DESCRIBE_QUESTION = "There is a defect in the object. What is the appearance of the defect?"
ANALYSE_QUESTION = "There is a defect in the object. What is the potential effect of the defect?"
OBJECT_QUESTION = "What kind of product is shown in the image?"


def position_cell(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) in a 3x3 split of the image holding the centre of mass of the mask."""
    ys, xs = np.nonzero(np.asarray(mask))
    if len(xs) == 0:
        raise ValueError("empty mask has no position")
    h, w = mask.shape[:2]
    row = min(2, int(3 * ys.mean() / h))
    col = min(2, int(3 * xs.mean() / w))
    return row, col


def position_of(mask: np.ndarray) -> str:
    """MMAD-style position name ("Top left.", "Center.", ...) of the defect in `mask`."""
    return POSITIONS[position_cell(mask)]


def _question(text: str, correct: str, wrong: list[str], qtype: str, rng: np.random.Generator) -> dict:
    """One conversation item with the correct option at a random letter."""
    options = [correct] + wrong
    order = rng.permutation(len(options))
    shuffled = [options[i] for i in order]
    letters = LETTERS[: len(shuffled)]
    return {
        "Question": text,
        "Answer": letters[shuffled.index(correct)],
        "Options": dict(zip(letters, shuffled)),
        "type": qtype,
        "annotation": True,
    }


def _pick(pool: list[str], k: int, rng: np.random.Generator) -> list[str]:
    return [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]


def anomaly_detection(has_defect: bool, rng: np.random.Generator) -> dict:
    return _question(
        AD_QUESTION,
        "Yes." if has_defect else "No.",
        ["No." if has_defect else "Yes."],
        "Anomaly Detection",
        rng,
    )


def _location_distractors(cell: tuple[int, int], rng: np.random.Generator) -> list[str]:
    """Three other positions, preferring ones not next to the true one (keeps the answer unambiguous)."""
    far = [name for c, name in POSITIONS.items() if max(abs(c[0] - cell[0]), abs(c[1] - cell[1])) > 1]
    near = [name for c, name in POSITIONS.items() if c != cell and name not in far]
    picked = _pick(far, min(3, len(far)), rng) if far else []
    if len(picked) < 3:
        picked += _pick(near, 3 - len(picked), rng)
    return picked


def anomalous_conversation(
    spec: CategorySpec, defect: DefectSpec, mask: np.ndarray, rng: np.random.Generator
) -> list[dict]:
    """Anomaly Detection, then Defect Classification / Localization / Description / Analysis."""
    kt = KIND_TEXTS[defect.kind]
    label = defect.label or kt.label
    own_labels = {KIND_TEXTS[d.kind].label for d in spec.defects} | {d.label for d in spec.defects if d.label}
    label_pool = [t.label for k, t in KIND_TEXTS.items() if t.label not in own_labels] + list(EXTRA_LABELS)
    others = [t for k, t in KIND_TEXTS.items() if k != defect.kind]
    cell = position_cell(mask)
    return [
        anomaly_detection(True, rng),
        _question(CLASSIFY_QUESTION, label, _pick(label_pool, 3, rng), "Defect Classification", rng),
        _question(
            LOCATE_QUESTION, POSITIONS[cell], _location_distractors(cell, rng), "Defect Localization", rng
        ),
        _question(
            DESCRIBE_QUESTION,
            kt.appearance,
            _pick([t.appearance for t in others], 3, rng),
            "Defect Description",
            rng,
        ),
        _question(
            ANALYSE_QUESTION, kt.effect, _pick([t.effect for t in others], 3, rng), "Defect Analysis", rng
        ),
    ]


def normal_conversation(spec: CategorySpec, rng: np.random.Generator) -> list[dict]:
    """Anomaly Detection, Object Classification, then the category's structure/details facts."""
    names = [n for n in OBJECT_NAMES if n != spec.object_name]
    items = [
        anomaly_detection(False, rng),
        _question(OBJECT_QUESTION, spec.object_name, _pick(names, 3, rng), "Object Classification", rng),
    ]
    for fact in spec.facts:
        items.append(_question(fact.question, fact.options[0], list(fact.options[1:]), fact.type, rng))
    return items
