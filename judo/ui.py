"""The inspection app (Gradio Blocks): layout, wiring, queue and launch. `judo app` runs `main`.

Left: the inputs a quality lab works with (query upload or example, a normal template from the
product's golden-sample gallery, an MMAD question preset with editable options, optional ground
truth). Right: one engine streaming (red cells, reasoning, highlighted answer, truth metrics,
downloads), or two-three engines side by side. Handlers live in judo/ui_run.py; the template library
in judo/ui_library.py.

Named API endpoints: ``/inspect`` and ``/compare`` (see `INSPECT_API` / `COMPARE_API` for the
parameter order). GPU work runs under one concurrency id (limit from the config, 1 by default) with an
explicit queue size; uploads are capped with ``max_file_size``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from judo.engines import AppConfig, Engine, build_engines, default_engine, load_config
from judo.engines.config import ENV_HELP, ConfigError
from judo.engines.pool import LANGUAGE_MODEL_KINDS
from judo.generation import DEFAULT_MAX_NEW_TOKENS
from judo.ui_guard import guard_middleware
from judo.ui_inputs import hide_paths
from judo.ui_library import TemplateLibrary
from judo.ui_presets import FREE, format_option_lines, preset, preset_choices
from judo.ui_record import check_records_dir
from judo.ui_run import MAX_COMPARE, STOPS, Runner, session_of

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parents[1] / "assets"
INSPECT_API = (
    "query",
    "template",
    "question",
    "options",
    "engine",
    "category",
    "mask",
    "expected",
    "visual_prior",
    "max_new_tokens",
    "do_sample",
    "temperature",
    "top_p",
    "sensitivity",
)
COMPARE_API = (
    "query",
    "template",
    "question",
    "options",
    "engines",
    "category",
    "mask",
    "expected",
    "max_new_tokens",
    "do_sample",
    "temperature",
    "top_p",
)
GPU_CONCURRENCY_ID = "gpu"
#: The product choice after an own upload: no gallery, no product knowledge, generic presets.
CUSTOM_PRODUCT = ("Custom product (pick one to use its gallery)", "")
SLIDER_MAX_TOKENS = 2048  # the slider's top for an engine without a token budget of its own
INSPECT_DESCRIPTION = (
    "Inspect a query image against a normal template of the same product with one engine. Options: one per "
    "line or on one line ('A. Yes. B. No.'); empty for a free question. The mask (white = defect) and the "
    "expected letter are optional ground truth. Returns the overlay, the visual prior, the model output, "
    "the answer, the status, the result (JSON), the record (JSON) and the overlay (PNG)."
)
COMPARE_DESCRIPTION = (
    "Run two or three engines on the same query and template, side by side. Returns, for each of three "
    "panels, the overlay, the model output and the answer; then the summary, the status and the result (JSON)."
)


@dataclass
class AppState:
    """Everything the page is built from, loaded once at start-up (models included)."""

    config: AppConfig
    engines: list[Engine]
    library: TemplateLibrary
    defect_titles: dict[str, list[str]] = field(default_factory=dict)  # category -> defect titles
    records_problem: str | None = None  # why records cannot be written, checked once at start-up

    @classmethod
    def load(cls, config: AppConfig, engines: list[Engine] | None = None) -> AppState:
        library = TemplateLibrary.from_config(config.templates)
        if not config.knowledge and library.knowledge_files:
            # Fall back to the knowledge that came with the template sources (MMAD root, examples).
            config.knowledge = str(library.knowledge_files[0])
        records_problem = check_records_dir(config.records_folder)
        if records_problem:
            log.warning("%s", records_problem)
        engines = engines if engines is not None else build_engines(config)
        return cls(config, engines, library, _defect_titles(config.knowledge), records_problem)


def _defect_titles(path: str | None) -> dict[str, list[str]]:
    """Category -> defect titles ("<Title>" of each knowledge text), for the classification preset."""
    if not path or not Path(path).is_file():
        return {}
    import re

    from judo.mmad import MMADError, load_knowledge

    try:
        knowledge = load_knowledge(path)
    except MMADError:
        return {}
    out: dict[str, list[str]] = {}
    for e in knowledge.all_entries():
        if e.defect == "good":
            continue
        m = re.search(r"<([^>]+)>", e.text)
        out.setdefault(e.category, []).append(
            m.group(1).strip() if m else e.defect.replace("_", " ").capitalize()
        )
    return out


# ----------------------------------------------------------------------------------- components
def accept_raw_upload(component: gr.Image) -> gr.Image:
    """Hand uploads to the handler as the stored file path, unopened.

    Gradio's Image.preprocess opens every upload with PIL first, so a non-image or a decompression
    bomb would fail inside Gradio with a generic error. Every image must go through
    `judo.images.load_image` instead, which answers bad input with one clear sentence.
    """
    original = component.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        path = getattr(payload, "path", None)
        if path:
            return str(path)
        return original(payload)  # data: URLs (pasted images) are decoded by Gradio

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def accept_raw_value(component: gr.Slider) -> gr.Slider:
    """Hand a slider's value to the handler as sent: `judo.ui_inputs.settings_from` checks it and says
    what is wrong in one sentence (Gradio's own check fails on a non-number with an internal error)."""
    component.preprocess = lambda payload: payload  # type: ignore[method-assign]
    return component


def token_slider(engine: Engine | None, value: Any = None) -> dict[str, Any]:
    """The max-new-tokens slider's settings for ``engine``: it goes up to the engine's own cap (a longer
    budget would be cut there without a word) and says so; ``value`` is kept when it fits."""
    try:
        wanted = int(float(value)) if value not in (None, "") else DEFAULT_MAX_NEW_TOKENS
    except (TypeError, ValueError):
        wanted = DEFAULT_MAX_NEW_TOKENS
    cap = getattr(engine, "max_new_tokens", None)
    if not isinstance(cap, int) or cap <= 0:
        return {
            "minimum": 16,
            "maximum": SLIDER_MAX_TOKENS,
            "value": min(max(wanted, 16), SLIDER_MAX_TOKENS),
            "info": "Not used by this engine: it generates no text." if engine is not None else None,
        }
    label = getattr(engine, "label", "this engine")
    return {
        "minimum": min(16, cap),
        "maximum": cap,
        "value": min(max(wanted, 1), cap),
        "info": f"{label} stops at {cap} tokens (its configured limit).",
    }


def compare_needs_two(available: list[Engine]) -> str:
    """What the Compare tab says when fewer than two engines can run: why, and how to add one."""
    have = ", ".join(f"**{e.label}**" for e in available) or "no engine"
    return (
        f"Compare runs two or three engines on the same pair, side by side; this server has only {have} ready.\n\n"
        "To add one, the operator lists another engine under `engines:` in the app's configuration file (for "
        "instance a language model with its `checkpoint:`) and restarts the app. The **Engines** tab says why a "
        "listed engine is unavailable, and, on the server itself, which environment variables override the file."
    )


def engine_choices(engines: list[Engine]) -> list[tuple[str, str]]:
    return [(e.label if e.available else f"{e.label} (unavailable)", e.id) for e in engines]


def engines_markdown(state: AppState, private: bool = False) -> str:
    """The Engines tab. Server paths and the configuration (file, environment overrides) are for the
    operator only (``private``: a login is configured, or the page is opened on the server itself)."""
    shown = (lambda text: text) if private else hide_paths
    lines = ["| Engine | Status | Notes |", "|---|---|---|"]
    for e in state.engines:
        status = "ready" if e.available else "unavailable"
        notes = e.reason if not e.available else (getattr(e, "description", "") or "")
        lines.append(f"| {e.label} | {status} | {shown(notes or '').replace('|', '/')} |")
    if state.records_problem:
        lines += ["", "**Records:** the records folder is not writable: inspections run, downloads are off."]
    if state.library.notes:
        lines += ["", "**Template library:**"] + [f"- {shown(n)}" for n in state.library.notes]
    if not private:
        lines += [
            "",
            "The server's configuration is shown when signed in, or on the server itself (localhost).",
        ]
        return "\n".join(lines)
    lines += ["", "**Configuration** (`" + (state.config.source or "") + "`), environment overrides:"]
    lines += [f"- `{k}`: {v}" for k, v in ENV_HELP.items()]
    return "\n".join(lines)


LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def is_operator(request: gr.Request | None, config: AppConfig) -> bool:
    """True when the visitor may see server details: a login is configured (every visitor signed in), or
    the page is opened on the server itself (a loopback client asking for a loopback host name, so a
    reverse proxy on the same machine, which forwards a public host name, does not count)."""
    if config.auth:
        return True
    if request is None:
        return False
    client = getattr(request, "client", None)
    try:
        host_header = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
    except Exception:  # noqa: BLE001 - a request built without headers
        return False
    forwarded = any(request.headers.get(h) for h in ("x-forwarded-for", "x-forwarded-host", "forwarded"))
    return getattr(client, "host", None) in LOOPBACK_HOSTS and host_header in LOOPBACK_HOSTS and not forwarded


# ------------------------------------------------------------------------------------- build
def build_demo(state: AppState, gpu: Callable[[Callable], Callable] | None = None) -> gr.Blocks:
    """The Blocks page. ``gpu`` decorates the GPU handlers (``spaces.GPU`` on ZeroGPU Spaces)."""
    runner = Runner(
        state.engines,
        state.config.stream_interval_s,
        state.config.records_folder,
        gallery=state.library.templates_for,
    )
    wrap = gpu or (lambda f: f)
    default = default_engine(state.engines, state.config.default_engine)
    available = [e for e in state.engines if e.available]
    library = state.library
    products = library.products()
    first_product = products[0] if products else None
    no_lm = not any(getattr(e, "kind", "") in LANGUAGE_MODEL_KINDS for e in available)

    def apply_preset(subtask, product, example_id):
        ex = library.example(example_id) if example_id else None
        if ex is not None:
            for q in ex.questions:
                if q.get("subtask") == subtask or q.get("type") == subtask:
                    return q["text"], format_option_lines(q.get("options")), q.get("answer") or ""
        if subtask == FREE:
            return gr.skip(), "", ""
        question, options = preset(subtask, state.defect_titles.get(product or ""), products)
        return question, options, ""

    def load_example(example_id, subtask):
        ex = library.example(example_id or "")
        if ex is None:
            return (gr.skip(),) * 7
        if not any(q.get("subtask") == subtask for q in ex.questions):
            subtask = ex.questions[0]["subtask"] if ex.questions else subtask
        question, options, expected = apply_preset(subtask, ex.category, ex.id)
        gallery = [str(p) for p in library.templates_for(ex.category)]
        mask = str(ex.mask) if ex.mask else None
        return ex.category, gallery, subtask, question, options, mask, expected

    def show_templates(product):
        return [str(p) for p in library.templates_for(product)]

    def pick_template(product, evt: gr.SelectData):
        paths = library.templates_for(product)
        if evt.index is None or not 0 <= int(evt.index) < len(paths):
            return gr.skip()
        return str(paths[int(evt.index)])

    def to_custom_product(subtask):
        """An own query or template: no example, no ground truth, and no product until the inspector picks
        one (so neither the gallery nor the defect presets belong to the previous example's product)."""
        question, options_text, _ = apply_preset(subtask, CUSTOM_PRODUCT[1], None)
        return None, "", "", CUSTOM_PRODUCT[1], [], question, options_text

    def arm(request: gr.Request):
        STOPS.arm(session_of(request))

    def engines_for(request: gr.Request):
        return engines_markdown(state, is_operator(request, state.config))

    def stop(request: gr.Request):
        # The running stream says "stopping…" itself and ends with a record: nothing here writes the
        # status, so a late reply of this handler cannot overwrite the finished run's status.
        if not STOPS.stop(session_of(request)):
            gr.Info("Nothing is running.")

    # delete_cache: Gradio's copies of uploads and results older than a day go, checked hourly
    with gr.Blocks(title=state.config.title, analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            f"# {state.config.title}\n"
            "Compare a **query** image with a **normal template** of the same product: the engine marks the "
            "differing cells of a 16x16 grid in red, reasons, and answers the question."
            + (
                "\n\n**No language-model checkpoint is loaded:** the comparator (a measurement) answers detection "
                "and localization questions. See the Engines tab for how to add a model."
                if no_lm
                else ""
            ),
            elem_id="judo-header",
        )
        example_id = gr.Textbox(visible="hidden", elem_id="judo-example-id")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=360):
                with gr.Row():
                    query = accept_raw_upload(
                        gr.Image(
                            label="Query (drop a photo)",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            height=300,
                            elem_id="judo-query",
                        )
                    )
                    template = accept_raw_upload(
                        gr.Image(
                            label="Normal template",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            height=300,
                            elem_id="judo-template",
                        )
                    )
                product = gr.Dropdown(
                    [CUSTOM_PRODUCT, *products],
                    value=first_product,
                    label="Product (category)",
                    allow_custom_value=True,
                    elem_id="judo-product",
                    info="Picks the template gallery and the domain knowledge.",
                )
                gallery = gr.Gallery(
                    value=show_templates(first_product),
                    label="Golden samples: click to use as template",
                    columns=6,
                    height=130,
                    allow_preview=False,
                    show_label=True,
                    elem_id="judo-gallery",
                )
                subtask = gr.Dropdown(
                    preset_choices(), value="Anomaly Detection", label="Question type", elem_id="judo-subtask"
                )
                q0, o0 = preset("Anomaly Detection")
                question = gr.Textbox(q0, label="Question", lines=2, max_lines=6, elem_id="judo-question")
                # The page opens with the options one per line (demo.load below); the first value, which the
                # "Use via API" page shows as the default, is their one-line form: that page writes a
                # string's line breaks into its Python snippet unescaped.
                options = gr.Textbox(
                    " ".join(o0.splitlines()),
                    label="Options: one per line, 'A. text' (empty = free question)",
                    lines=4,
                    max_lines=8,
                    elem_id="judo-options",
                )
                with gr.Accordion("Ground truth (optional)", open=False):
                    mask = accept_raw_upload(
                        gr.Image(
                            label="Defect mask (white = defect)",
                            type="filepath",
                            sources=["upload"],
                            height=160,
                            elem_id="judo-mask",
                        )
                    )
                    expected = gr.Textbox(label="Correct option letter", max_lines=1, elem_id="judo-expected")
                with gr.Accordion("Generation settings", open=False):
                    max_new_tokens = accept_raw_value(
                        gr.Slider(
                            step=16,
                            label="Max new tokens",
                            elem_id="judo-max-new-tokens",
                            **token_slider(default),
                        )
                    )
                    do_sample = gr.Checkbox(False, label="Sample (greedy when off)")
                    temperature = accept_raw_value(
                        gr.Slider(0.05, 2.0, value=0.7, step=0.05, label="Temperature")
                    )
                    top_p = accept_raw_value(gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p"))
                with gr.Accordion("Comparator settings", open=False):
                    sensitivity = accept_raw_value(
                        gr.Slider(
                            0.25,
                            4.0,
                            value=1.0,
                            step=0.05,
                            elem_id="judo-sensitivity",
                            label="Sensitivity (the threshold is divided by it)",
                            info="Judged against the product's whole gallery; the chosen template is the one shown.",
                        )
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
            with gr.Column(scale=7, min_width=420):
                with gr.Tabs():
                    with gr.Tab("Inspect", id="inspect"):
                        with gr.Row():
                            engine = gr.Dropdown(
                                engine_choices(state.engines),
                                value=default.id if default else None,
                                label="Engine",
                                elem_id="judo-engine",
                                scale=3,
                            )
                            prior = gr.Checkbox(
                                False,
                                label="Visual prior (comparator heat map)",
                                scale=2,
                                elem_id="judo-prior",
                            )
                        with gr.Row():
                            run = gr.Button("Inspect", variant="primary", elem_id="judo-run")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="judo-stop")
                        with gr.Row():
                            overlay = gr.Image(
                                label="Red: model cells · green: truth",
                                type="pil",
                                format="png",
                                interactive=False,
                                height=360,
                                elem_id="judo-overlay",
                            )
                            prior_img = gr.Image(
                                label="Visual prior",
                                type="pil",
                                format="png",
                                interactive=False,
                                height=360,
                                elem_id="judo-prior-img",
                            )
                        answer = gr.HTML(label="Answer", elem_id="judo-answer")
                        status = gr.Markdown(label="Status", elem_id="judo-status")
                        reasoning = gr.Textbox(
                            label="Model output (streaming)",
                            lines=8,
                            max_lines=20,
                            interactive=False,
                            elem_id="judo-reasoning",
                        )
                        with gr.Row():
                            record = gr.File(
                                label="Inspection record (JSON)", interactive=False, elem_id="judo-record"
                            )
                            overlay_png = gr.File(
                                label="Overlay (PNG)", interactive=False, elem_id="judo-overlay-png"
                            )
                        with gr.Accordion("Result (JSON)", open=False):
                            result = gr.JSON(label="Result", elem_id="judo-result")
                    with gr.Tab("Compare", id="compare"):
                        can_compare = len(available) >= 2
                        gr.Markdown(
                            compare_needs_two(available) if not can_compare else "",
                            visible=not can_compare,
                            elem_id="judo-compare-why",
                        )
                        with gr.Column(visible=can_compare):
                            default_cmp = [e.id for e in available][:2]
                            engines_cmp = gr.CheckboxGroup(
                                engine_choices(available),
                                value=default_cmp,
                                label="Engines (two or three)",
                                elem_id="judo-compare-engines",
                            )
                            with gr.Row():
                                run_cmp = gr.Button("Compare", variant="primary", elem_id="judo-run-compare")
                                stop_cmp = gr.Button("Stop", variant="stop")
                            panels = []
                            with gr.Row():
                                for i in range(MAX_COMPARE):  # as many panels as engines can take part
                                    with gr.Column(min_width=200, visible=i < max(2, len(available))):
                                        img = gr.Image(
                                            type="pil",
                                            format="png",
                                            interactive=False,
                                            height=260,
                                            show_label=False,
                                            elem_id=f"judo-cmp-img-{i}",
                                        )
                                        ans = gr.HTML(elem_id=f"judo-cmp-answer-{i}")
                                        txt = gr.Textbox(
                                            lines=6,
                                            max_lines=14,
                                            interactive=False,
                                            show_label=False,
                                            elem_id=f"judo-cmp-text-{i}",
                                        )
                                        panels += [img, txt, ans]
                            summary = gr.Markdown(label="Summary", elem_id="judo-compare-summary")
                            cmp_status = gr.Markdown(label="Status", elem_id="judo-compare-status")
                            cmp_files = gr.File(
                                label="Each engine's record (JSON) and overlay (PNG)",
                                file_count="multiple",
                                interactive=False,
                                elem_id="judo-compare-files",
                            )
                            with gr.Accordion("Result (JSON)", open=False):
                                cmp_result = gr.JSON(label="Result")
                    with gr.Tab("Engines", id="engines"):
                        engines_md = gr.Markdown(engines_markdown(state), elem_id="judo-engines")

        # ---- wiring: inputs
        demo.load(lambda: o0, None, options, queue=False, api_name=False)
        demo.load(engines_for, None, engines_md, queue=False, api_name=False)
        engine.change(
            lambda engine_id, value: gr.Slider(**token_slider(runner.engines.get(engine_id), value)),
            [engine, max_new_tokens],
            max_new_tokens,
            queue=False,
            api_name=False,
        )
        product.change(show_templates, product, gallery, api_name=False, queue=False)
        gallery.select(pick_template, product, template, api_name=False, queue=False)
        subtask.input(
            apply_preset,
            [subtask, product, example_id],
            [question, options, expected],
            api_name=False,
            queue=False,
        )
        example_id.change(
            load_example,
            [example_id, subtask],
            [product, gallery, subtask, question, options, mask, expected],
            api_name=False,
            queue=False,
        )
        for own in (query, template):
            own.upload(
                to_custom_product,
                subtask,
                [mask, expected, example_id, product, gallery, question, options],
                api_name=False,
                queue=False,
            )

        # ---- wiring: GPU work
        common = {
            "concurrency_id": GPU_CONCURRENCY_ID,
            "concurrency_limit": state.config.queue.concurrency_limit,
        }
        run.click(arm, None, None, queue=False, api_name=False).then(
            wrap(runner.inspect),
            [
                query,
                template,
                question,
                options,
                engine,
                product,
                mask,
                expected,
                prior,
                max_new_tokens,
                do_sample,
                temperature,
                top_p,
                sensitivity,
            ],
            [overlay, prior_img, reasoning, answer, status, result, record, overlay_png],
            api_name="inspect",
            api_description=INSPECT_DESCRIPTION,
            **common,
        )
        run_cmp.click(arm, None, None, queue=False, api_name=False).then(
            wrap(runner.compare),
            [
                query,
                template,
                question,
                options,
                engines_cmp,
                product,
                mask,
                expected,
                max_new_tokens,
                do_sample,
                temperature,
                top_p,
            ],
            [*panels, summary, cmp_status, cmp_result, cmp_files],
            api_name="compare",
            api_description=COMPARE_DESCRIPTION,
            **common,
        )
        # Stop: ask the running engine to end at its next token; a run still waiting in the queue ends as
        # soon as it begins. Either way it finishes with a record that says it was stopped (a cancelled
        # event would end with none, and leave its last streamed update on screen).
        stop_btn.click(stop, None, None, queue=False, api_name=False)
        stop_cmp.click(stop, None, None, queue=False, api_name=False)
    demo.queue(
        max_size=state.config.queue.max_size, default_concurrency_limit=state.config.queue.concurrency_limit
    )
    return demo


# ------------------------------------------------------------------------------------- launch
def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """JUDO_AUTH: 'user:password', or a file with one 'user:password' per line ('#' comments)."""
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [value]
    pairs = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ConfigError("JUDO_AUTH must be 'user:password' or a file of such lines")
        pairs.append((user, password))
    return pairs or None


def launch_kwargs(config: AppConfig) -> dict[str, Any]:
    """Arguments for demo.launch(): upload cap, auth, css, narrow allowed paths, the abuse limits
    (`judo.ui_guard`, as middleware of Gradio's own FastAPI app)."""
    allowed = [
        p
        for p in (
            config.templates.examples_dir,
            config.templates.golden_dir,
            config.templates.mmad_root,
            *config.templates.golden.values(),
        )
        if p
    ]
    css_path = ASSETS / "judo.css"
    kwargs: dict[str, Any] = {
        "max_file_size": config.queue.max_file_size,
        "allowed_paths": allowed,
        "show_error": True,
        "ssr_mode": False,
        "css": css_path.read_text(encoding="utf-8") if css_path.is_file() else None,
        "theme": gr.themes.Soft(primary_hue="red"),
        "app_kwargs": {"middleware": guard_middleware(config.limits)},
    }
    auth = parse_auth(config.auth)
    if auth:
        kwargs["auth"] = auth
        kwargs["auth_message"] = "JUDO Inspector: sign in with your lab account."
    return kwargs


def create_app(
    config: AppConfig | None = None, gpu: Callable | None = None, engines: list[Engine] | None = None
) -> tuple[gr.Blocks, dict[str, Any]]:
    """Load the configuration and the models, build the page; return (demo, launch kwargs)."""
    config = config or load_config()
    state = AppState.load(config, engines)
    for e in state.engines:
        log.info("engine %-16s %s", e.id, "ready" if e.available else f"UNAVAILABLE: {e.reason}")
    return build_demo(state, gpu), launch_kwargs(config)


def serve_address(host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """Where to serve: the arguments, else GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if port is None:
        text = os.environ.get("GRADIO_SERVER_PORT", "").strip() or "7860"
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ConfigError(f"GRADIO_SERVER_PORT must be a port number 1-65535 (got {text!r}).")
        port = int(text)
    return host, port


def port_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` can be served, else the sentence saying why not (checked before any model loads,
    and the port is then given to Gradio explicitly, so it never moves to another one)."""
    if not 0 < port < 65536:
        return f"port {port} is not a port number (1-65535)."
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == 98:  # EADDRINUSE
                return (
                    f"port {port} on {host} is already in use: stop the other server or choose another "
                    "port (GRADIO_SERVER_PORT, or judo app --port)."
                )
            return f"cannot serve on {host}:{port} ({err.strerror or err})."
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judo app", description="Serve the JUDO inspection app.")
    parser.add_argument("--config", help="YAML file (default: $JUDO_CONFIG or configs/app.yaml)")
    parser.add_argument("--host", default=None, help="interface (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        host, port = serve_address(args.host, args.port)
        problem = port_problem(host, port)
        if problem:
            raise ConfigError(problem)
        demo, kwargs = create_app(config)
    except ConfigError as err:
        print(f"judo app: {err}", file=sys.stderr)
        return 2
    demo.launch(server_name=host, server_port=port, **kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
