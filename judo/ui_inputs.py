"""Validating what the inspector gave before any engine runs: one clear sentence per problem.

Images go through `judo.images` (bomb guard, truncation, modes, EXIF); the question, options, optional
ground-truth mask and generation settings are checked here, so no accelerator time is spent on input
that cannot be inspected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from judo.engines.base import GenerationSettings, InspectionRequest
from judo.engines.config import MAX_NEW_TOKENS_CAP
from judo.grid import Cell, mask_to_cells
from judo.images import ImageInputError, load_image, load_mask
from judo.ui_presets import OptionsError, parse_options

MAX_QUESTION_CHARS = 2000


class InputProblem(ValueError):
    """A user-facing reason why an inspection cannot start."""


@dataclass
class Prepared:
    """Validated inputs of one run."""

    request: InspectionRequest
    truth_mask: Any = None  # bool ndarray at query size
    truth_cells: set[Cell] | None = None
    expected: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# A server path in a message: an absolute path of two or more parts (a file name alone is fine to show;
# "pass/fail/unknown" inside a word is no path).
_SERVER_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:;,()]+){2,}[\\/]?")


def hide_paths(text: str) -> str:
    """A message fit for the page: every server path shortened to its last part (the file's own name)."""
    return _SERVER_PATH.sub(lambda m: m.group(0).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1], text)


# ------------------------------------------------------------------------------------- validation
def _path_of(value: Any) -> Any:
    """Gradio hands files as paths (str) or dicts with a 'path'; PIL/arrays pass through."""
    if isinstance(value, dict):
        return value.get("path") or value.get("name")
    return value


def load_input_image(value: Any, what: str) -> Image.Image:
    if value is None or value == "":
        raise InputProblem(
            f"No {what} image: upload one (drag and drop) or pick an example."
            if what == "query" else f"No {what} image: pick a normal sample from the gallery or upload one."
        )
    path = _path_of(value)
    try:
        return load_image(path)
    except ImageInputError as err:  # show the uploaded file's name, not the server's cache path
        raise InputProblem(f"The {what} image cannot be used: {hide_paths(str(err))}") from None


def prepare_inputs(query, template, question, options_text, category, mask, expected) -> Prepared:
    """Validate every input; raise InputProblem with a sentence for the first problem found."""
    question = (question or "").strip()
    if not question:
        raise InputProblem("The question is empty: type a question or pick a preset.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputProblem(f"The question is too long ({len(question)} characters, at most {MAX_QUESTION_CHARS}).")
    try:
        options = parse_options(options_text)
    except OptionsError as err:
        raise InputProblem(str(err)) from None
    q_img = load_input_image(query, "query")
    t_img = load_input_image(template, "template")
    notes = []
    if q_img.size != t_img.size:
        notes.append(
            f"The template ({t_img.width}x{t_img.height}) and the query ({q_img.width}x{q_img.height}) differ in "
            "size: both are resized to 448x448 for the model, so compare like with like when you can."
        )
    prepared = Prepared(
        request=InspectionRequest(q_img, t_img, question, options, category=category or None),
        names={"query": _name(query), "template": _name(template)},
        notes=notes,
    )
    if mask not in (None, ""):
        try:
            prepared.truth_mask = load_mask(_path_of(mask), size=q_img.size)
            prepared.truth_cells = mask_to_cells(prepared.truth_mask)
        except (ImageInputError, ValueError) as err:
            notes.append(f"The ground-truth mask was ignored: {hide_paths(str(err))}")
    exp = (expected or "").strip().upper()[:1]
    if exp and options and exp in options:
        prepared.expected = exp
    return prepared


def _name(value: Any) -> str | None:
    p = _path_of(value)
    return str(p).rsplit("/", 1)[-1] if isinstance(p, str) else None


def settings_from(max_new_tokens, do_sample, temperature, top_p) -> GenerationSettings:
    """The generation settings of a request, checked here (the page's sliders hand over raw values)."""

    def num(x, cast, name: str, low: float, high: float):
        if x in (None, ""):
            return None
        try:
            value = cast(float(x)) if cast is int and float(x).is_integer() else cast(x)
        except (TypeError, ValueError, OverflowError):
            shown = repr(x) if len(repr(x)) <= 40 else repr(x)[:37] + "...'"
            kind = "a whole number" if cast is int else "a number"
            raise InputProblem(f"{name} must be {kind} (got {shown}).") from None
        if not low <= value <= high:
            raise InputProblem(f"{name} must be between {low:g} and {high:g} (got {value:g}).")
        return value

    sample = _flag(do_sample)
    return GenerationSettings(
        max_new_tokens=num(max_new_tokens, int, "Max new tokens", 1, MAX_NEW_TOKENS_CAP),
        do_sample=sample,
        temperature=num(temperature, float, "Temperature", 0.01, 5.0) if sample else None,
        top_p=num(top_p, float, "Top-p", 0.01, 1.0) if sample else None,
    )


def _flag(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off", ""}:
        return False
    raise InputProblem(f"Sample must be true or false (got {str(value)[:40]!r}).")
