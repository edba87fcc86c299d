"""The page: its components, grouped by panel (`InputsPanel`, `InspectPanel`, `ComparePanel`), and
`build_demo`, which lays them out and has `judo.app.wiring` connect them. What each event does lives
elsewhere (`judo.app.handlers` for the small ones, `judo.app.runner` for Inspect and Compare).

Left: the inputs a quality lab works with (query upload or example, a normal template from the product's
golden-sample gallery, an MMAD question preset with editable options, optional ground truth). Right: one
engine streaming (red cells, reasoning, highlighted answer, truth metrics, downloads), or two-three
engines side by side. Ctrl+Enter (Cmd+Enter) runs Inspect; on a phone the images, the examples and the
Inspect button come first (assets/judo.css).

Named API endpoints: ``/inspect`` and ``/compare`` (`judo.app.api`). GPU work runs under one concurrency
id (limit from the config, 1 by default) with an explicit queue size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from judo.app.api import COMPARE_OUTPUTS, INSPECT_OUTPUTS, MAX_COMPARE
from judo.app.batch import build_batch_tab
from judo.app.components import RawImage, RawSlider, engine_choices, token_slider
from judo.app.golden_panel import golden_controls
from judo.app.handlers import CUSTOM_PRODUCT, Handlers
from judo.app.history import build_history_tab
from judo.app.owner import is_operator
from judo.app.presets import preset, preset_choices
from judo.app.retune import OVERLAY, SLIDER_INFO, VIEWS, Retune
from judo.app.runner import Runner
from judo.app.state import AppState
from judo.app.views import compare_needs_two, engines_markdown, legend_html
from judo.app.wiring import GPU_CONCURRENCY_ID, wire_inputs, wire_runs
from judo.engines import Engine, default_engine
from judo.engines.pool import LANGUAGE_MODEL_KINDS

FIRST_SUBTASK = "Anomaly Detection"


@dataclass
class InputsPanel:
    """The left column: what an inspection or a comparison is asked with."""

    example_id: gr.Textbox
    query: gr.Image
    template: gr.Image
    product: gr.Dropdown
    gallery: gr.Gallery
    subtask: gr.Dropdown
    question: gr.Textbox
    options: gr.Textbox
    options_on_load: str  # the options one per line, as the page opens with them (see `inputs_panel`)
    mask: gr.Image
    expected: gr.Textbox
    max_new_tokens: gr.Slider
    do_sample: gr.Checkbox
    temperature: gr.Slider
    top_p: gr.Slider
    sensitivity: gr.Slider


@dataclass
class InspectPanel:
    engine: gr.Dropdown
    prior: gr.Checkbox
    run: gr.Button
    stop: gr.Button
    outputs: dict[str, gr.components.Component]  # by `INSPECT_OUTPUTS` name
    view: gr.Radio  # overlay / heat map / side by side (judo.app.retune)
    legend: gr.HTML
    retune_note: gr.Markdown


@dataclass
class ComparePanel:
    engines: gr.CheckboxGroup
    run: gr.Button
    stop: gr.Button
    outputs: dict[str, gr.components.Component]  # by `COMPARE_OUTPUTS` name


def header_markdown(state: AppState, available: list[Engine]) -> str:
    no_lm = not any(getattr(e, "kind", "") in LANGUAGE_MODEL_KINDS for e in available)
    return (
        f"# {state.config.title}\n"
        "Compare a **query** image with a **normal template** of the same product: the engine marks the "
        "differing cells of a 16x16 grid in red, reasons, and answers the question."
        + (
            "\n\n**No language-model checkpoint is loaded:** the comparator (a measurement) answers detection "
            "and localization questions. See the Engines tab for how to add a model."
            if no_lm
            else ""
        )
    )


# ------------------------------------------------------------------------------------- panels
def inputs_panel(state: AppState, default: Engine | None) -> InputsPanel:
    library = state.library
    products = library.products()
    first_product = products[0] if products else None
    example_id = gr.Textbox(visible="hidden", elem_id="judo-example-id")
    with gr.Row(elem_id="judo-images"):
        query, template = (
            RawImage(label=label, type="filepath", sources=["upload", "clipboard"], height=300, elem_id=eid)
            for label, eid in (("Query (drop a photo)", "judo-query"), ("Normal template", "judo-template"))
        )
    if library.examples:
        gr.Examples(
            examples=[[str(e.query), str(e.template), e.id] for e in library.examples],
            inputs=[query, template, example_id],
            example_labels=[e.title for e in library.examples],
            label="Examples (click one)",
            examples_per_page=12,
            cache_examples=False,
            elem_id="judo-examples",
        )
    with gr.Column(elem_id="judo-question-panel"):
        product = gr.Dropdown(
            [CUSTOM_PRODUCT, *products],
            value=first_product,
            label="Product (category)",
            allow_custom_value=True,
            elem_id="judo-product",
            info="Picks the template gallery and the domain knowledge.",
        )
        gallery = gr.Gallery(
            value=[str(p) for p in library.templates_for(first_product)],
            label="Golden samples: click to use as template",
            columns=6,
            height=130,
            allow_preview=False,
            show_label=True,
            elem_id="judo-gallery",
        )
        golden_controls(state, product, gallery, query)
        subtask = gr.Dropdown(
            preset_choices(), value=FIRST_SUBTASK, label="Question type", elem_id="judo-subtask"
        )
        q0, o0 = preset(FIRST_SUBTASK)
        question = gr.Textbox(q0, label="Question", lines=2, max_lines=6, elem_id="judo-question")
        # The page opens with the options one per line (demo.load in `wire_inputs`); the first value, which
        # the "Use via API" page shows as the default, is their one-line form: that page writes a string's
        # line breaks into its Python snippet unescaped.
        options = gr.Textbox(
            " ".join(o0.splitlines()),
            label="Options: one per line, 'A. text' (empty = free question)",
            lines=4,
            max_lines=8,
            elem_id="judo-options",
        )
        with gr.Accordion("Ground truth (optional)", open=False):
            mask = RawImage(
                label="Defect mask (white = defect)",
                type="filepath",
                sources=["upload"],
                height=160,
                elem_id="judo-mask",
            )
            expected = gr.Textbox(label="Correct option letter", max_lines=1, elem_id="judo-expected")
        with gr.Accordion("Generation settings", open=False):
            max_new_tokens = RawSlider(
                step=16, label="Max new tokens", elem_id="judo-max-new-tokens", **token_slider(default)
            )
            do_sample = gr.Checkbox(False, label="Sample (greedy when off)")
            temperature = RawSlider(0.05, 2.0, value=0.7, step=0.05, label="Temperature")
            top_p = RawSlider(0.05, 1.0, value=0.9, step=0.05, label="Top-p")
        with gr.Accordion("Comparator settings", open=False):
            sensitivity = RawSlider(
                0.25,
                4.0,
                value=1.0,
                step=0.05,
                elem_id="judo-sensitivity",
                label="Sensitivity (the threshold is divided by it)",
                info=SLIDER_INFO,
            )
    return InputsPanel(
        example_id,
        query,
        template,
        product,
        gallery,
        subtask,
        question,
        options,
        o0,
        mask,
        expected,
        max_new_tokens,
        do_sample,
        temperature,
        top_p,
        sensitivity,
    )


def inspect_panel(state: AppState, default: Engine | None) -> InspectPanel:
    with gr.Row():
        engine = gr.Dropdown(
            engine_choices(state.engines),
            value=default.id if default else None,
            label="Engine",
            elem_id="judo-engine",
            scale=3,
        )
        prior = gr.Checkbox(False, label="Visual prior (comparator heat map)", scale=2, elem_id="judo-prior")
    with gr.Row(elem_id="judo-run-row"):
        run = gr.Button("Inspect", variant="primary", elem_id="judo-run")
        stop = gr.Button("Stop", variant="stop", elem_id="judo-stop")
    picture = {"type": "pil", "format": "png", "interactive": False, "height": 360}
    view = gr.Radio(list(VIEWS), value=OVERLAY, label="View", elem_id="judo-view", container=False)
    with gr.Row():
        overlay = gr.Image(label="Result (see the legend)", elem_id="judo-overlay", **picture)
        prior_img = gr.Image(label="Visual prior", elem_id="judo-prior-img", **picture)
    legend = gr.HTML(legend_html(False, True), label="Legend", elem_id="judo-legend")
    retune_note = gr.Markdown(label="Sensitivity note", elem_id="judo-retune-note")
    answer = gr.HTML(label="Answer", elem_id="judo-answer")
    status = gr.Markdown(label="Status", elem_id="judo-status")
    reasoning = gr.Textbox(
        label="Model output (streaming)", lines=8, max_lines=20, interactive=False, elem_id="judo-reasoning"
    )
    with gr.Row():
        record = gr.File(label="Inspection record (JSON)", interactive=False, elem_id="judo-record")
        overlay_png = gr.File(label="Overlay (PNG)", interactive=False, elem_id="judo-overlay-png")
    with gr.Accordion("Result (JSON)", open=False):
        result = gr.JSON(label="Result", elem_id="judo-result")
    outputs = {
        "overlay": overlay,
        "visual_prior": prior_img,
        "output_text": reasoning,
        "answer_html": answer,
        "status": status,
        "result": result,
        "record": record,
        "overlay_png": overlay_png,
    }
    assert tuple(outputs) == INSPECT_OUTPUTS  # noqa: S101 - the endpoint's return order
    return InspectPanel(engine, prior, run, stop, outputs, view, legend, retune_note)


def compare_panel(available: list[Engine]) -> ComparePanel:
    can_compare = len(available) >= 2
    gr.Markdown(
        compare_needs_two(available) if not can_compare else "",
        visible=not can_compare,
        elem_id="judo-compare-why",
    )
    with gr.Column(visible=can_compare):
        engines = gr.CheckboxGroup(
            engine_choices(available),
            value=[e.id for e in available][:2],
            label="Engines (two or three)",
            elem_id="judo-compare-engines",
        )
        with gr.Row():
            run = gr.Button("Compare", variant="primary", elem_id="judo-run-compare")
            stop = gr.Button("Stop", variant="stop")
        outputs: dict[str, gr.components.Component] = {}
        with gr.Row():
            for i in range(MAX_COMPARE):  # as many panels as engines can take part
                with gr.Column(min_width=200, visible=i < max(2, len(available))):
                    outputs[f"overlay_{i}"] = gr.Image(
                        type="pil",
                        format="png",
                        interactive=False,
                        height=260,
                        show_label=False,
                        elem_id=f"judo-cmp-img-{i}",
                    )
                    outputs[f"answer_{i}"] = gr.HTML(elem_id=f"judo-cmp-answer-{i}")
                    outputs[f"text_{i}"] = gr.Textbox(
                        lines=6,
                        max_lines=14,
                        interactive=False,
                        show_label=False,
                        elem_id=f"judo-cmp-text-{i}",
                    )
        outputs["summary"] = gr.Markdown(label="Summary", elem_id="judo-compare-summary")
        outputs["status"] = gr.Markdown(label="Status", elem_id="judo-compare-status")
        outputs["files"] = gr.File(
            label="Each engine's record (JSON) and overlay (PNG)",
            file_count="multiple",
            interactive=False,
            elem_id="judo-compare-files",
        )
        with gr.Accordion("Result (JSON)", open=False):
            outputs["result"] = gr.JSON(label="Result")
    outputs = {name: outputs[name] for name in COMPARE_OUTPUTS}  # the endpoint's return order
    return ComparePanel(engines, run, stop, outputs)


# ------------------------------------------------------------------------------------- page
def build_demo(state: AppState, gpu: Callable[[Callable], Callable] | None = None) -> gr.Blocks:
    """The Blocks page. ``gpu`` decorates the GPU handlers (``spaces.GPU`` on ZeroGPU Spaces)."""
    runner = Runner(
        state.engines,
        state.config.stream_interval_s,
        state.config.records_folder,
        gallery=state.library.templates_for,
        on_record=state.on_record,
    )
    default = default_engine(state.engines, state.config.default_engine)
    available = [e for e in state.engines if e.available]
    # delete_cache: Gradio's copies of uploads and results older than a day go, checked hourly
    with gr.Blocks(title=state.config.title, analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(header_markdown(state, available), elem_id="judo-header")
        with gr.Row(equal_height=False, elem_id="judo-main"):
            with gr.Column(scale=5, min_width=360, elem_id="judo-inputs"):
                inputs = inputs_panel(state, default)
            with gr.Column(scale=7, min_width=420, elem_id="judo-outputs"):
                with gr.Tabs():
                    with gr.Tab("Inspect", id="inspect", elem_id="judo-inspect-tab"):
                        inspect = inspect_panel(state, default)
                    with gr.Tab("Compare", id="compare"):
                        compare = compare_panel(available)
                    with gr.Tab("Batch", id="batch"):
                        build_batch_tab(
                            state.engines,
                            state.library.templates_for,
                            state.library.products(),
                            state.config.records_folder,
                            gpu,
                            concurrency_id=GPU_CONCURRENCY_ID,
                            concurrency_limit=state.config.queue.concurrency_limit,
                            on_record=state.on_record,
                        )
                    with gr.Tab("History", id="history"):
                        build_history_tab(
                            state.inspection_log,
                            lambda request: is_operator(request, bool(state.config.auth)),
                            unavailable=state.log_problem,
                            per_user=bool(state.config.auth),
                        )
                    with gr.Tab("Engines", id="engines"):
                        engines_md = gr.Markdown(engines_markdown(state), elem_id="judo-engines")
        handlers = Handlers(state, runner, inputs, inspect)
        demo.load(handlers.engines_page, None, engines_md, queue=False, api_name=False)
        wire_inputs(demo, handlers, inputs, inspect)
        inspect_run = wire_runs(state, runner, handlers, inputs, inspect, compare, gpu or (lambda fn: fn))
        Retune(runner, inputs.sensitivity, inspect).wire(inspect_run)
    demo.queue(
        max_size=state.config.queue.max_size, default_concurrency_limit=state.config.queue.concurrency_limit
    )
    return demo
