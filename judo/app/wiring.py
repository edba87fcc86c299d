"""How the page's events are wired: which handler each event calls, with which components in and out.

The small events go by name (a set of inputs, a dict back: `judo.app.handlers`); Inspect and Compare
are the named API endpoints themselves (`judo.app.api`), their inputs in the endpoint's parameter order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from judo.app.api import (
    COMPARE_API,
    COMPARE_DESCRIPTION,
    INSPECT_API,
    INSPECT_DESCRIPTION,
    compare_endpoint,
    inspect_endpoint,
)
from judo.app.handlers import Handlers
from judo.app.runner import Runner
from judo.app.state import AppState

if TYPE_CHECKING:
    from judo.app.layout import ComparePanel, InputsPanel, InspectPanel

GPU_CONCURRENCY_ID = "gpu"


def wire_inputs(demo: gr.Blocks, h: Handlers, f: InputsPanel, inspect: InspectPanel) -> None:
    quick = {"queue": False, "api_name": False}
    demo.load(lambda: f.options_on_load, None, f.options, **quick)  # the one-line first value: layout
    inspect.engine.change(
        h.fit_token_slider, inputs={inspect.engine, f.max_new_tokens}, outputs=[f.max_new_tokens], **quick
    )
    f.product.change(h.show_templates, inputs={f.product}, outputs=[f.gallery], **quick)
    f.gallery.select(h.pick_template, inputs={f.product}, outputs=[f.template], **quick)
    f.subtask.input(
        h.apply_preset,
        inputs={f.subtask, f.product, f.example_id},
        outputs=[f.question, f.options, f.expected],
        **quick,
    )
    example_outputs = [f.product, f.gallery, f.subtask, f.question, f.options, f.mask, f.expected]
    f.example_id.change(h.load_example, inputs={f.example_id, f.subtask}, outputs=example_outputs, **quick)
    for own in (f.query, f.template):
        own.upload(h.to_custom_product, inputs={f.subtask}, outputs=[*example_outputs, f.example_id], **quick)


def wire_runs(
    state: AppState,
    runner: Runner,
    h: Handlers,
    f: InputsPanel,
    inspect: InspectPanel,
    cmp: ComparePanel,
    wrap,
) -> gr.events.Dependency:
    """Inspect and Compare: each the named API endpoint itself, its parameters in the endpoint's order.
    Returns the Inspect run's event (what follows a finished run chains on it: `judo.app.retune`)."""
    shared = {
        "query": f.query,
        "template": f.template,
        "question": f.question,
        "options": f.options,
        "category": f.product,
        "mask": f.mask,
        "expected": f.expected,
        "max_new_tokens": f.max_new_tokens,
        "do_sample": f.do_sample,
        "temperature": f.temperature,
        "top_p": f.top_p,
    }
    inspect_in = shared | {
        "engine": inspect.engine,
        "visual_prior": inspect.prior,
        "sensitivity": f.sensitivity,
    }
    compare_in = shared | {"engines": cmp.engines}
    gpu = {"concurrency_id": GPU_CONCURRENCY_ID, "concurrency_limit": state.config.queue.concurrency_limit}
    inspect_run = inspect.run.click(h.arm, None, None, queue=False, api_name=False).then(
        wrap(inspect_endpoint(runner, inspect.outputs)),
        [inspect_in[name] for name in INSPECT_API],
        list(inspect.outputs.values()),
        api_name="inspect",
        api_description=INSPECT_DESCRIPTION,
        **gpu,
    )
    cmp.run.click(h.arm, None, None, queue=False, api_name=False).then(
        wrap(compare_endpoint(runner, cmp.outputs)),
        [compare_in[name] for name in COMPARE_API],
        list(cmp.outputs.values()),
        api_name="compare",
        api_description=COMPARE_DESCRIPTION,
        **gpu,
    )
    # Stop: ask the running engine to end at its next token; a run still waiting in the queue ends as
    # soon as it begins. Either way it finishes with a record that says it was stopped (a cancelled
    # event would end with none, and leave its last streamed update on screen).
    for button in (inspect.stop, cmp.stop):
        button.click(h.stop, None, None, queue=False, api_name=False)
    return inspect_run
