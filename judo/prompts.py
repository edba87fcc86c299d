"""Every prompt the student model sees, in one place: training, evaluation and the app share these texts.

A model is only as good as the agreement between the prompt it was trained on and the prompt it is
asked with, so no other module writes student prompt text. Prompts follow MMAD's official 1-shot order
(instruction, "answer with the option's letter", optional domain knowledge, the normal template, the
query image, then ``Question: ...`` and ``A. ...`` option lines); the JUDO style appends the output
instruction for ``<seg>``/``<think>``/``<answer>``. Images are resized to 448x448 so Qwen2.5-VL turns
each into exactly 16x16 merged vision tokens, one per seg cell.

Messages use TRL's conversational form: a user turn whose content lists ``{"type": "text", "text": ...}``
parts and ``{"type": "image"}`` placeholders, filled in order from ``Prompt.images``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from judo.grid import GRID_SIZE, format_seg
from judo.images import ImageSource, to_model_size
from judo.inputs import InputError, check_question

IMAGE_SIZE = 448

# judo: <seg>/<think>/<answer> (JUDO, stage 3); mmad: MMAD's plain letter answer (base models);
# think: <think>/<answer> without seg (the "Base GRPO" / AnomalyR1 ablation).
STYLES = ("judo", "mmad", "think")

_OPTION_KEY = re.compile(r"^[A-Z]$")

# --- texts -------------------------------------------------------------------------------------------
INSPECTOR_INSTRUCTION = (
    "You are an industrial inspector who checks products by images. You should judge whether there is "
    "a defect in the query image and answer the questions about it."
)
LETTER_INSTRUCTION_DIRECT = "Answer with the option's letter from the given choices directly."
LETTER_INSTRUCTION = "Answer with the option's letter from the given choices."
FREE_ANSWER_INSTRUCTION = "Answer the question briefly."
KNOWLEDGE_PREFIX = (
    "Following is the domain knowledge which contains some type of defect and the normal object "
    "characteristics:"
)
QUERY_INTRO = "Following is the query image:"
QUESTION_INTRO = "Following is the question list:"

_SEG_EXAMPLE = format_seg({(11, 12), (11, 13), (11, 14), (12, 11)})
SEG_INSTRUCTION = (
    f"In <seg> </seg>, list the cells of the query image that differ from the normal template, on a "
    f"{GRID_SIZE}x{GRID_SIZE} grid laid over the query image (rows and columns numbered 0 to "
    f"{GRID_SIZE - 1} from the top left): a single cell as (row,col) and a horizontal run of cells in one "
    f"row as (row,first_col)-(row,last_col), separated by commas, e.g. {_SEG_EXAMPLE}. "
    "Write <seg> </seg> if the query image has no defect."
)
THINK_INSTRUCTION = (
    "In <think> </think>, compare the query image with the normal template region by region and reason, "
    "with what you know about this product and its defects, to the answer."
)
ANSWER_INSTRUCTION = "In <answer> </answer>, give only the option's letter."
FREE_ANSWER_TAG_INSTRUCTION = "In <answer> </answer>, give only your short answer."
JUDO_OUTPUT_INSTRUCTION = (
    "Respond in this format: <seg> ... </seg><think> ... </think><answer> ... </answer>."
)
THINK_OUTPUT_INSTRUCTION = "Respond in this format: <think> ... </think><answer> ... </answer>."
STAGE1_TASK = "Find where the query image differs from the normal template{of_category}."
STAGE1_EXPLAIN = (
    "Then, in <think> </think>, explain the defect by comparing the two images: what the query shows in "
    "those cells and what the template shows there instead."
)
STAGE1_OUTPUT_INSTRUCTION = "Respond in this format: <seg> ... </seg><think> ... </think>."
STAGE2_INTRO = "Following is an image of a normal {category} sample."
STAGE2_INTRO_NO_CATEGORY = "Following is an image of a normal product sample."


class PromptError(ValueError):
    """Bad input to a prompt builder (empty question, malformed options, unknown style...)."""


@dataclass
class Prompt:
    """Chat messages plus the images that fill their ``{"type": "image"}`` placeholders, in order."""

    messages: list[dict[str, Any]]
    images: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        placeholders = sum(
            1
            for message in self.messages
            if isinstance(message.get("content"), list)
            for part in message["content"]
            if part.get("type") == "image"
        )
        if placeholders != len(self.images):
            raise PromptError(f"prompt has {placeholders} image placeholders but {len(self.images)} images")

    @property
    def text(self) -> str:
        """The text parts joined, images shown as ``<image>`` (for logs and tests)."""
        out = []
        for message in self.messages:
            content = message["content"]
            if isinstance(content, str):
                out.append(content)
                continue
            out.extend(part["text"] if part.get("type") == "text" else "<image>" for part in content)
        return "".join(out)


# --- small pieces ------------------------------------------------------------------------------------
def format_options(options: Mapping[str, str]) -> str:
    """MMAD option lines, in the given order: ``"A. Yes.\\nB. No."``."""
    if not isinstance(options, Mapping) or not options:
        raise PromptError(
            f"options must be a non-empty mapping like {{'A': 'Yes.', 'B': 'No.'}}, got {options!r}"
        )
    lines = []
    for key, value in options.items():
        if not isinstance(key, str) or not _OPTION_KEY.match(key):
            raise PromptError(f"option keys must be single capital letters (A, B, ...), got {key!r}")
        if not isinstance(value, str) or not value.strip():
            raise PromptError(f"option {key} has no text")
        lines.append(f"{key}. {' '.join(value.split())}")
    return "\n".join(lines)


def _question(text: Any) -> str:
    if not isinstance(text, str):
        raise PromptError("the question is empty")
    try:
        return check_question(text)
    except InputError as err:
        raise PromptError(str(err)) from None


def _category(category: str | None) -> str | None:
    """MMAD folder names as words: ``"breakfast_box"`` -> ``"breakfast box"``."""
    if category is None:
        return None
    words = " ".join(str(category).replace("_", " ").split())
    return words or None


def _images(sources: ImageSource | Sequence[ImageSource], what: str) -> list[Image.Image]:
    """One image or a list of them, each resized to IMAGE_SIZE x IMAGE_SIZE RGB."""
    if isinstance(sources, (list, tuple)):
        if not sources:
            raise PromptError(f"no {what} image given")
        return [to_model_size(s, IMAGE_SIZE) for s in sources]
    if sources is None:
        raise PromptError(f"no {what} image given")
    return [to_model_size(sources, IMAGE_SIZE)]


def _template_intro(count: int) -> str:
    images = "image" if count == 1 else "images"
    return (
        f"Following is {count} {images} of normal sample, which can be used as a template to compare the "
        "image being queried."
    )


def _user(parts: list[str | Image.Image]) -> list[dict[str, Any]]:
    """Text and images in order -> one user message; consecutive texts are merged."""
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Image.Image):
            content.append({"type": "image"})
        elif content and content[-1]["type"] == "text":
            content[-1]["text"] += "\n" + part
        else:
            content.append({"type": "text", "text": part})
    return [{"role": "user", "content": content}]


def _template_then_query(templates: list[Image.Image], query: Image.Image) -> list[str | Image.Image]:
    return [_template_intro(len(templates)), *templates, QUERY_INTRO, query]


# --- builders ----------------------------------------------------------------------------------------
def inspection_prompt(
    query: ImageSource,
    template: ImageSource | Sequence[ImageSource],
    question: str,
    options: Mapping[str, str] | None,
    *,
    knowledge: str | None = None,
    style: str = "judo",
) -> Prompt:
    """One MMAD question about a query image, with normal template(s) shown first (1-shot or few-shot).

    ``style`` picks the output instruction (see STYLES); ``knowledge`` adds MMAD's domain-knowledge block
    (the RAG setting) before the template. The stage-3 GRPO prompt is this with style="judo".
    """
    if style not in STYLES:
        raise PromptError(f"unknown prompt style {style!r}; use one of {', '.join(STYLES)}")
    question = _question(question)
    option_text = format_options(options) if options is not None else None
    templates = _images(template, "template")
    query_image = _images(query, "query")[0]

    if style == "mmad":
        answer_rule = LETTER_INSTRUCTION_DIRECT if option_text else FREE_ANSWER_INSTRUCTION
    else:
        answer_rule = LETTER_INSTRUCTION if option_text else FREE_ANSWER_INSTRUCTION
    parts: list[str | Image.Image] = [INSPECTOR_INSTRUCTION, answer_rule]
    if knowledge is not None and str(knowledge).strip():
        parts.append(f"{KNOWLEDGE_PREFIX}\n{str(knowledge).strip()}")
    parts += _template_then_query(templates, query_image)
    ask = f"{QUESTION_INTRO}\nQuestion: {question}"
    if option_text:
        ask += "\n" + option_text
    parts.append(ask)
    answer_part = ANSWER_INSTRUCTION if option_text else FREE_ANSWER_TAG_INSTRUCTION
    if style == "judo":
        parts.append(f"{JUDO_OUTPUT_INSTRUCTION} {SEG_INSTRUCTION} {THINK_INSTRUCTION} {answer_part}")
    elif style == "think":
        parts.append(f"{THINK_OUTPUT_INSTRUCTION} {THINK_INSTRUCTION} {answer_part}")
    return Prompt(_user(parts), [*templates, query_image])


def stage1_prompt(query: ImageSource, template: ImageSource, *, category: str | None = None) -> Prompt:
    """Stage 1 (juxtaposed segmentation SFT): template, query -> ``<seg>..</seg><think>..</think>``."""
    templates = _images(template, "template")
    query_image = _images(query, "query")[0]
    name = _category(category)
    task = STAGE1_TASK.format(of_category=f" of this {name}" if name else "")
    instruction = f"{STAGE1_OUTPUT_INSTRUCTION} {SEG_INSTRUCTION} {STAGE1_EXPLAIN}"
    parts: list[str | Image.Image] = [
        INSPECTOR_INSTRUCTION,
        *_template_then_query(templates, query_image),
        task,
        instruction,
    ]
    return Prompt(_user(parts), [*templates, query_image])


def stage2_prompt(question_text: str, image: ImageSource, *, category: str | None = None) -> Prompt:
    """Stage 2 (domain-knowledge SFT): a normal image of the category as context, then the question."""
    question = _question(question_text)
    picture = _images(image, "context")[0]
    name = _category(category)
    intro = STAGE2_INTRO.format(category=name) if name else STAGE2_INTRO_NO_CATEGORY
    return Prompt(_user([intro, picture, question]), [picture])
