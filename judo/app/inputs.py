"""Validating what the inspector gave before any engine runs: one clear sentence per problem.

Images go through `judo.images` (bomb guard, truncation, modes, EXIF); the question, options, optional
ground-truth mask and generation settings are checked here, so no accelerator time is spent on input
that cannot be inspected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from transformers import GenerationConfig

from judo.engines.base import InspectionRequest
from judo.grid import Cell, mask_to_cells
from judo.images import ImageInputError, load_image, load_mask
from judo.inputs import InputError, check_question, parse_options


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
            if what == "query"
            else f"No {what} image: pick a normal sample from the gallery or upload one."
        )
    path = _path_of(value)
    try:
        return load_image(path)
    except ImageInputError as err:  # show the uploaded file's name, not the server's cache path
        raise InputProblem(f"The {what} image cannot be used: {hide_paths(str(err))}") from None


def prepare_inputs(query, template, question, options_text, category, mask, expected) -> Prepared:
    """Validate every input; raise InputProblem with a sentence for the first problem found."""
    try:
        question = check_question(question)
        options = parse_options(options_text)
    except InputError as err:
        raise InputProblem(str(err)) from None
    q_img = load_input_image(query, "query")
    t_img = load_input_image(template, "template")
    notes = []
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


def size_note(prep: Prepared) -> str | None:
    """For a language model only (the comparator registers the images itself): the two images differ in size."""
    q, t = prep.request.query, prep.request.template
    if q.size == t.size:
        return None
    return (
        f"The template ({t.width}x{t.height}) and the query ({q.width}x{q.height}) differ in size: both "
        "are resized to 448x448 for the model, so compare like with like when you can."
    )


def settings_from(max_new_tokens, do_sample, temperature, top_p) -> GenerationConfig:
    """The advanced panel's values as the one validated decoding configuration (`judo.generation.decoding`)."""
    from judo.generation import DEFAULT_MAX_NEW_TOKENS, GenerationError, decoding

    def num(x, cast, what):
        if x in (None, ""):
            return None
        try:
            return cast(x)
        except (TypeError, ValueError):
            raise InputProblem(f"{what} must be a number, got {str(x)[:20]!r}.") from None

    tokens = num(max_new_tokens, lambda x: int(float(x)), "Max new tokens")
    try:
        return decoding(
            max_new_tokens=DEFAULT_MAX_NEW_TOKENS if tokens is None else tokens,
            do_sample=bool(do_sample),
            temperature=num(temperature, float, "Temperature") if do_sample else None,
            top_p=num(top_p, float, "Top-p") if do_sample else None,
        )
    except GenerationError as err:
        raise InputProblem(str(err)[:1].upper() + str(err)[1:] + ".") from None


def sensitivity_from(value: Any) -> float:
    """The comparator's sensitivity as sent (slider, API): a number above 0 and at most 100 (1 = the
    default threshold); anything else is one sentence."""
    try:
        sensitivity = 1.0 if value in (None, "") else float(value)
    except (TypeError, ValueError):
        sensitivity = float("nan")
    if not 0 < sensitivity <= 100:  # NaN fails too
        raise InputProblem(
            f"The sensitivity must be a number above 0 and at most 100 (1 = default), got {value!r}."
        )
    return sensitivity
