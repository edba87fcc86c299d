"""Question presets for the seven MMAD subtasks as editable "A. text" option lines (read by
`judo.inputs.parse_options`).

Presets use MMAD's own question wording; options are starting points the inspector edits (the defect
types of the selected product when the knowledge base knows it). Free questions have no options.
"""

from __future__ import annotations

from judo.inputs import MAX_OPTIONS
from judo.mmad import SUBTASK_LABELS, SUBTASKS
from judo.synthetic.questions import (
    AD_QUESTION,
    ANALYSE_QUESTION,
    CLASSIFY_QUESTION,
    DESCRIBE_QUESTION,
    LOCATE_QUESTION,
    OBJECT_QUESTION,
)

FREE = "Free question"

PRESETS: dict[str, tuple[str, list[str]]] = {
    "Anomaly Detection": (AD_QUESTION, ["Yes.", "No."]),
    "Defect Classification": (CLASSIFY_QUESTION, ["Scratch.", "Hole.", "Stain.", "Crack."]),
    "Defect Localization": (
        LOCATE_QUESTION,
        ["Top left.", "Top right.", "Center.", "Bottom left.", "Bottom right."],
    ),
    "Defect Description": (
        DESCRIBE_QUESTION,
        ["A thin dark line.", "A round hole.", "A discoloured patch.", "A missing part."],
    ),
    "Defect Analysis": (
        ANALYSE_QUESTION,
        [
            "Only cosmetic, no effect on function.",
            "It weakens the part and may cause failure.",
            "It contaminates the product.",
            "It prevents assembly.",
        ],
    ),
    "Object Classification": (OBJECT_QUESTION, ["Bottle.", "Screw.", "Carpet.", "Pill."]),
    "Object Analysis": ("How many objects are in the image?", ["One.", "Two.", "Three.", "None."]),
}


def preset_choices() -> list[tuple[str, str]]:
    """(label, value) pairs for the dropdown: the paper's column names, MMAD's type keys."""
    return [(SUBTASK_LABELS[s], s) for s in SUBTASKS] + [(FREE, FREE)]


def format_option_lines(options: dict[str, str] | None) -> str:
    return "\n".join(f"{k}. {v}" for k, v in (options or {}).items())


def lettered(texts: list[str]) -> dict[str, str]:
    return {chr(ord("A") + i): t for i, t in enumerate(texts[:MAX_OPTIONS])}


def preset(
    subtask: str, defect_titles: list[str] | None = None, products: list[str] | None = None
) -> tuple[str, str]:
    """(question, option lines) for a subtask; defect and product names fill in where known."""
    if subtask not in PRESETS:
        return "", ""
    question, options = PRESETS[subtask]
    if subtask == "Defect Classification" and defect_titles:
        options = [t if t.endswith(".") else t + "." for t in defect_titles][:MAX_OPTIONS]
    if subtask == "Object Classification" and products:
        options = [p.replace("_", " ").capitalize() + "." for p in products][:4]
    return question, format_option_lines(lettered(options))
