"""Question presets for the seven MMAD subtasks, and the editable "A. text" option format of the UI.

Presets use MMAD's own question wording; options are starting points the inspector edits (the defect
types of the selected product when the knowledge base knows it). Free questions have no options.
"""

from __future__ import annotations

import re

from judo.mmad import SUBTASK_LABELS, SUBTASKS
from judo.synth.questions import (
    AD_QUESTION,
    ANALYSE_QUESTION,
    CLASSIFY_QUESTION,
    DESCRIBE_QUESTION,
    LOCATE_QUESTION,
    OBJECT_QUESTION,
)

FREE = "Free question"
_OPTION_LINE = re.compile(r"^\s*\(?([A-Za-z])\s*[.):]\s*(.*\S)\s*$")
MAX_OPTIONS = 5  # MMAD answers are A-E
#: Longest option text an inspector may type (MMAD's options are one sentence): the prompt stays small.
MAX_OPTION_CHARS = 400

PRESETS: dict[str, tuple[str, list[str]]] = {
    "Anomaly Detection": (AD_QUESTION, ["Yes.", "No."]),
    "Defect Classification": (CLASSIFY_QUESTION, ["Scratch.", "Hole.", "Stain.", "Crack."]),
    "Defect Localization": (LOCATE_QUESTION, ["Top left.", "Top right.", "Center.", "Bottom left.", "Bottom right."]),
    "Defect Description": (
        DESCRIBE_QUESTION,
        ["A thin dark line.", "A round hole.", "A discoloured patch.", "A missing part."],
    ),
    "Defect Analysis": (
        ANALYSE_QUESTION,
        ["Only cosmetic, no effect on function.", "It weakens the part and may cause failure.",
         "It contaminates the product.", "It prevents assembly."],
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


def preset(subtask: str, defect_titles: list[str] | None = None, products: list[str] | None = None
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


class OptionsError(ValueError):
    """The options text cannot be read; the message says which line and how to write it."""


def parse_options(text: str | None) -> dict[str, str] | None:
    """'A. Yes.\\nB. No.' -> {'A': 'Yes.', 'B': 'No.'}; blank -> None (a free question).

    Lines without a letter are lettered in order, so pasting plain option texts works too.
    """
    text = text or ""
    if len(text) > MAX_OPTIONS * (MAX_OPTION_CHARS + 8):  # refused before any parsing work
        raise OptionsError(f"The options are too long ({len(text)} characters): at most {MAX_OPTIONS} options "
                           f"of {MAX_OPTION_CHARS} characters each.")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    if len(lines) > MAX_OPTIONS:
        raise OptionsError(f"{len(lines)} options given: at most {MAX_OPTIONS} (A-E).")
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if m and len(line.strip()) > 2:
            key, value = m.group(1).upper(), m.group(2)
        else:
            key, value = chr(ord("A") + len(out)), line.strip()
        if len(value) > MAX_OPTION_CHARS:
            raise OptionsError(f"Option {key} is too long ({len(value)} characters, at most {MAX_OPTION_CHARS}).")
        if key in out:
            raise OptionsError(f"Option {key} appears twice (line {i + 1}): give each option its own letter.")
        if key not in "ABCDE":
            raise OptionsError(f"Option letter {key} on line {i + 1}: MMAD-style options use the letters A-E.")
        out[key] = value
    if len(out) == 1:
        raise OptionsError("A single option is not a choice: give at least two, or clear the options.")
    return dict(sorted(out.items()))
