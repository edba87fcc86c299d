"""The page's small event handlers: presets, examples, own uploads, the gallery, the token slider, Stop.

Each takes the values of its inputs as one dict keyed by component (Gradio's set-of-inputs form) and
returns a dict ``{component: value}`` of what changes, so no handler depends on the order of a list. The
runs themselves (Inspect, Compare) are `judo.app.runner`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from judo.app.components import token_slider
from judo.app.owner import is_operator
from judo.app.presets import FREE, format_option_lines, preset
from judo.app.streaming import STOPS, session_of
from judo.app.views import engines_markdown

if TYPE_CHECKING:
    from judo.app.layout import InputsPanel, InspectPanel
    from judo.app.runner import Runner
    from judo.app.state import AppState

#: The product choice after an own upload: no gallery, no product knowledge, generic presets.
CUSTOM_PRODUCT = ("Custom product (pick one to use its gallery)", "")


class Handlers:
    """The handlers of one page, bound to its state and its components."""

    def __init__(self, state: AppState, runner: Runner, inputs: InputsPanel, inspect: InspectPanel) -> None:
        self.state = state
        self.library = state.library
        self.runner = runner
        self.inputs = inputs
        self.inspect = inspect

    # ---------------------------------------------------------------------------- question
    def question_for(self, subtask: str, product: str | None, example_id: str | None) -> dict[Any, Any]:
        """The question, options and expected letter for a question type: the example's own question of
        that type when an example is loaded, else the preset (with the product's defect names)."""
        f = self.inputs
        ex = self.library.example(example_id) if example_id else None
        if ex is not None:
            for q in ex.questions:
                if q.get("subtask") == subtask or q.get("type") == subtask:
                    options = format_option_lines(q.get("options"))
                    return {f.question: q["text"], f.options: options, f.expected: q.get("answer") or ""}
        if subtask == FREE:
            return {f.options: "", f.expected: ""}
        products = self.library.products()
        question, options = preset(subtask, self.state.defect_titles.get(product or ""), products)
        return {f.question: question, f.options: options, f.expected: ""}

    def apply_preset(self, values: dict) -> dict:
        f = self.inputs
        return self.question_for(values[f.subtask], values[f.product], values[f.example_id])

    # ---------------------------------------------------------------------------- examples
    def load_example(self, values: dict) -> Any:
        f = self.inputs
        ex = self.library.example(values[f.example_id] or "")
        if ex is None:
            return gr.skip()
        subtask = values[f.subtask]
        if not any(q.get("subtask") == subtask for q in ex.questions):
            subtask = ex.questions[0]["subtask"] if ex.questions else subtask
        return {
            f.product: ex.category,
            f.gallery: self.templates(ex.category),
            f.subtask: subtask,
            f.mask: str(ex.mask) if ex.mask else None,
            **self.question_for(subtask, ex.category, ex.id),
        }

    def to_custom_product(self, values: dict) -> dict:
        """An own query or template: no example, no ground truth, and no product until the inspector picks
        one (so neither the gallery nor the defect presets belong to the previous example's product)."""
        f = self.inputs
        return {
            f.mask: None,
            f.expected: "",
            f.example_id: "",
            f.product: CUSTOM_PRODUCT[1],
            f.gallery: [],
            **self.question_for(values[f.subtask], CUSTOM_PRODUCT[1], None),
        }

    # ---------------------------------------------------------------------------- gallery
    def templates(self, product: str | None) -> list[str]:
        return [str(p) for p in self.library.templates_for(product)]

    def show_templates(self, values: dict) -> dict:
        return {self.inputs.gallery: self.templates(values[self.inputs.product])}

    def pick_template(self, values: dict, evt: gr.SelectData) -> Any:
        paths = self.library.templates_for(values[self.inputs.product])
        if evt.index is None or not 0 <= int(evt.index) < len(paths):
            return gr.skip()
        return {self.inputs.template: str(paths[int(evt.index)])}

    # ---------------------------------------------------------------------------- engine
    def fit_token_slider(self, values: dict) -> dict:
        f = self.inputs
        engine = self.runner.engines.get(values[self.inspect.engine])
        return {f.max_new_tokens: gr.Slider(**token_slider(engine, values[f.max_new_tokens]))}

    def engines_page(self, request: gr.Request) -> str:
        return engines_markdown(self.state, is_operator(request, bool(self.state.config.auth)))

    # ---------------------------------------------------------------------------- stop
    @staticmethod
    def arm(request: gr.Request) -> None:
        STOPS.arm(session_of(request))

    @staticmethod
    def stop(request: gr.Request) -> None:
        # The running stream says "stopping…" itself and ends with a record: nothing here writes the
        # status, so a late reply of this handler cannot overwrite the finished run's status.
        if not STOPS.stop(session_of(request)):
            gr.Info("Nothing is running.")
