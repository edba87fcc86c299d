"""What answers the questions in `judo eval`: a checkpoint (batched greedy generation) or the comparator.

Both take a batch of prepared items and return one raw output text per item; the runner parses the
letter and the seg cells from that text with `judo.response`, the same way for every engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from judo.mmad import subtask_of


@dataclass
class Prepared:
    """One question ready to ask: images loaded, knowledge text resolved."""

    query: Image.Image
    templates: list[Image.Image]
    question: str
    options: dict[str, str]
    type: str
    knowledge: str | None
    category: str
    dataset: str


class Answerer(Protocol):
    #: True when only a letter inside <answer> counts (an engine that abstains must not be guessed for)
    tagged_only: bool

    def answer(self, batch: list[Prepared]) -> list[str]: ...


class ModelAnswerer:
    """A Qwen2.5-VL checkpoint with the 1-shot prompt of `judo.prompts`, greedy, batched."""

    tagged_only = False

    def __init__(
        self,
        checkpoint: str,
        *,
        prompt_style: str = "judo",
        quantization: str | None = None,
        device: str | None = None,
        max_new_tokens: int = 512,
    ):
        from judo.models import load_model, load_processor

        self.processor = load_processor(checkpoint)
        self.model = load_model(checkpoint, quantization=quantization, device=device)
        self.prompt_style = prompt_style
        self.max_new_tokens = max_new_tokens

    def prompt(self, item: Prepared, fit: Callable[[Image.Image], Image.Image] | None = None):
        """The 1-shot prompt of one item; ``fit`` may hand over images already at the model's size."""
        return item_prompt(item, self.prompt_style, fit)

    def answer(self, batch: list[Prepared]) -> list[str]:
        from judo.generation import generate_batch

        fit = _model_size_once()  # a batch asks several questions about the same pictures
        prompts = [self.prompt(item, fit) for item in batch]
        return generate_batch(
            self.model, self.processor, prompts, max_new_tokens=self.max_new_tokens, do_sample=False
        )


def item_prompt(item: Prepared, style: str, fit: Callable[[Image.Image], Image.Image] | None = None):
    """The official 1-shot prompt of one item (`judo.prompts`), whichever backend answers it."""
    from judo.prompts import inspection_prompt

    fit = fit or (lambda image: image)
    return inspection_prompt(
        fit(item.query),
        [fit(t) for t in item.templates],
        item.question,
        item.options,
        knowledge=item.knowledge,
        style=style,
    )


def _model_size_once() -> Callable[[Image.Image], Image.Image]:
    """`to_model_size` that resizes each image object once (for one batch, whose items keep them alive)."""
    from judo.images import to_model_size
    from judo.prompts import IMAGE_SIZE

    done: dict[int, Image.Image] = {}

    def fit(image: Image.Image) -> Image.Image:
        if id(image) not in done:
            done[id(image)] = to_model_size(image, IMAGE_SIZE)
        return done[id(image)]

    return fit


class ComparatorAnswerer:
    """The training-free comparator as a baseline row: it answers Anomaly Detection and position-type
    Defect Localization questions from its query-vs-template map and abstains elsewhere.

    Its output is written in the JUDO format (`<seg>..</seg>` + `<answer>X</answer>`) so that the same
    parser reads it. An abstention is the seg block alone: no letter, so the record's predicted letter is
    None (dropped in MMAD-official mode, wrong in strict mode) and its seg still counts for seg metrics.
    The answer rules live in `judo.comparator.describe`, shared with the app.
    """

    tagged_only = True

    def __init__(self) -> None:
        from judo.comparator import compare
        from judo.comparator.describe import answer_anomaly_detection, answer_localization

        self._compare = compare
        self._detect = answer_anomaly_detection
        self._locate = answer_localization

    def answer(self, batch: list[Prepared]) -> list[str]:
        from judo.grid import format_seg

        out = []
        for item in batch:
            result = self._compare(item.query, item.templates[0])
            letter = self.letter(result, item)
            seg = format_seg(result.cells)
            out.append(seg if letter is None else f"{seg}<answer>{letter}</answer>")
        return out

    def letter(self, result: Any, item: Prepared) -> str | None:
        subtask = subtask_of(item.type)
        if subtask == "Anomaly Detection":
            return self._detect(result, item.options, item.question)
        if subtask == "Defect Localization":
            return self._locate(result, item.options)
        return None
