"""The Batch tab: a tray of parts (several images or a zip) against a product's golden samples.

`build_batch_tab` lays the tab out inside an open ``gr.Blocks`` and wires it; the work is judo.batch's
(`run_batch`, the exports). Results stream in as parts finish: a progress bar, a table growing row by
row, overlay thumbnails (refreshed by a timer while the batch runs), and at the end the downloads
(CSV, JSON records, the HTML report). Stop ends the run after the part in flight and the downloads cover
what finished. The run is the API endpoint ``/batch`` (gradio_client: ``client.predict(..., api_name="/batch")``).

Each batch writes into ``records_root/batch/<key>``, the key a hash of the parts (names and sizes) and
the settings: running the same tray again resumes it (finished parts are not inspected twice), also
from another browser at the same time.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from judo.app.components import RawSlider
from judo.app.inputs import sensitivity_from
from judo.batch import DEFAULT_OPTIONS, DEFAULT_QUESTION, BatchInputError, BatchSpec, discover, run_batch
from judo.batch.report import CSV_COLUMNS, export, table_rows
from judo.batch.run import BatchResult, skipped_results
from judo.engines.base import Engine
from judo.images import ImageInputError, load_image
from judo.inputs import InputError, parse_options
from judo.jsonl import JsonlError
from judo.render import fit_within

#: What the product dropdown says when the uploaded golden samples are the bank.
UPLOADED = "(uploaded golden samples)"
#: Longest side of the gallery's thumbnails (the overlays themselves are in the output folder).
THUMB_SIDE = 256
#: At most one streamed update per this many seconds (the last one always goes out): the page and
#: the API client get every result, without a full re-send after each fast part.
UPDATE_EVERY_S = 1.0
#: The page refreshes the thumbnails this often while a batch runs (a timer of its own, not an output
#: of /batch: gradio_client downloads every file of every streamed update, which would cost an API
#: client more than the inspection; it gets the table and the downloads, the report holding the
#: overlays).
GALLERY_EVERY_S = 2.0
OPTIONS_TEXT = "\n".join(f"{k}. {v}" for k, v in DEFAULT_OPTIONS.items())


@dataclass
class BatchTab:
    """The tab's components (by name, for callers that wire more to them) and the run/stop handlers."""

    parts: gr.File
    product: gr.Dropdown
    golden: gr.File
    engine: gr.Dropdown
    question: gr.Textbox
    options: gr.Textbox
    sensitivity: gr.Slider
    run: gr.Button
    stop: gr.Button
    progress: gr.HTML
    table: gr.Dataframe
    gallery: gr.Gallery
    downloads: gr.File
    timer: gr.Timer | None = None
    stops: dict[str, threading.Event] = field(default_factory=dict)
    #: The results so far of each session's running (or last) batch, for the gallery.
    live: dict[str, list[BatchResult]] = field(default_factory=dict)


def _session(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "api"


def progress_html(done: int, total: int, note: str = "") -> str:
    """A progress bar with its count (plain HTML: no client script)."""
    pct = 100 * done / total if total else 0
    text = html.escape(f"{done} / {total} parts" + (f" · {note}" if note else ""))
    return (
        f'<div class="judo-batch-progress"><progress max="{max(total, 1)}" value="{done}" '
        f'style="width:100%" aria-label="batch progress"></progress><span>{text}</span>'
        f'<span hidden data-done="{done}" data-total="{total}">{pct:.0f}%</span></div>'
    )


def _thumb(overlay: Path) -> str:
    """A small JPEG beside the overlay for the gallery (made once per part)."""
    path = overlay.with_suffix(".thumb.jpg")
    if not path.exists():
        with Image.open(overlay) as img:
            fit_within(img.convert("RGB"), THUMB_SIDE).save(path, "JPEG", quality=80)
    return str(path)


def downloads_named(paths: list[Path], out: Path) -> list[str]:
    """Copies of the exports named for the batch and the time (``batch-20260112-143005-report.html``),
    so the downloads of several batches neither collide nor read alike."""
    folder = out / "downloads"
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    named = []
    for path in paths:
        target = folder / f"batch-{stamp}-{path.name}"
        shutil.copyfile(path, target)
        named.append(str(target))
    return named


def _key(files: list[Path], templates: list[Path], engine: str, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for f in [*files, None, *templates]:
        h.update(b"|" if f is None else f"{f.name}:{f.stat().st_size};".encode())
    h.update(json.dumps([engine, settings], sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def build_batch_tab(
    engines: list[Engine],
    templates_for: Callable[[str | None], list[Path]],
    products: list[str],
    records_root: Path,
    gpu: Callable | None = None,
    *,
    concurrency_id: str | None = None,
    concurrency_limit: int | None = 1,
    on_record: Callable[..., str | None] | None = None,
) -> BatchTab:
    """The Batch tab's layout and events, inside the caller's open ``gr.Blocks`` (and ``gr.Tab``).

    engines: those offered (unavailable ones are left out); templates_for(product): the product's
    golden sample files; records_root: where batches write; gpu: a decorator for the run (ZeroGPU);
    concurrency_id/limit: the queue the run shares with the app's other GPU work; on_record: told of each
    part inspected (not resumed or skipped ones), as `judo.app.runner.RecordHook` with kind "batch"."""
    usable = [e for e in engines if e.available]
    by_id = {e.id: e for e in usable}
    root = Path(records_root) / "batch"

    with gr.Row():
        with gr.Column(scale=2):
            parts = gr.File(
                label="Parts: several images or one zip",
                file_count="multiple",
                file_types=["image", ".zip"],
                type="filepath",
                elem_id="batch-parts",
            )
            with gr.Row():
                product = gr.Dropdown(
                    [*products, UPLOADED],
                    value=products[0] if products else UPLOADED,
                    label="Product (its golden samples are the bank)",
                )
                engine = gr.Dropdown(
                    [(e.label, e.id) for e in usable],
                    value=usable[0].id if usable else None,
                    label="Engine",
                )
            golden = gr.File(
                label="Or upload golden samples (good parts of the product)",
                file_count="multiple",
                file_types=["image"],
                type="filepath",
            )
        with gr.Column(scale=1):
            question = gr.Textbox(DEFAULT_QUESTION, label="Question", lines=2)
            options = gr.Textbox(OPTIONS_TEXT, label="Options (one per line)", lines=3)
            sensitivity = RawSlider(0.25, 4.0, value=1.0, step=0.05, label="Sensitivity (comparator)")
            with gr.Row():
                run = gr.Button("Run batch", variant="primary", elem_id="batch-run")
                stop = gr.Button("Stop", variant="stop", elem_id="batch-stop")
    progress = gr.HTML(progress_html(0, 0, "no batch yet"), label="Progress", elem_id="batch-progress")
    table = gr.Dataframe(
        headers=list(CSV_COLUMNS),
        value=[],
        interactive=False,
        wrap=True,
        label="Results",
        elem_id="batch-table",
    )
    gallery = gr.Gallery(
        label="Overlays", columns=6, height="auto", object_fit="contain", elem_id="batch-gallery"
    )
    downloads = gr.File(
        label="Downloads (CSV, JSON records, HTML report)",
        file_count="multiple",
        interactive=False,
        elem_id="batch-downloads",
    )
    tab = BatchTab(
        parts,
        product,
        golden,
        engine,
        question,
        options,
        sensitivity,
        run,
        stop,
        progress,
        table,
        gallery,
        downloads,
    )

    def state(results: list[BatchResult], done: int, total: int, note: str, files: list[str] | None) -> dict:
        return {
            tab.progress: progress_html(done, total, note),
            tab.table: table_rows(results),
            tab.downloads: files,
        }

    def logged(result: BatchResult, product: str, request: gr.Request | None) -> str | None:
        """Hand a part's fresh record to the inspection log; its complaint (if any) as one sentence."""
        if on_record is None or result.record is None or result.resumed:
            return None
        try:
            return on_record(
                result.record,
                record_path=None,
                user=getattr(request, "username", None) if request is not None else None,
                part=Path(result.part).stem,
                product=None if product == UPLOADED else product,
                kind="batch",
            )
        except Exception as err:  # noqa: BLE001 - the log's failure must not cost the batch its results
            return f"The part {result.part} was not logged: {err or type(err).__name__}"

    def run_handler(
        parts: list[str] | None,
        product: str | None = None,
        engine: str | None = None,
        golden: list[str] | None = None,
        question: str = DEFAULT_QUESTION,
        options: str = OPTIONS_TEXT,
        sensitivity: float = 1.0,
        request: gr.Request | None = None,
    ) -> Iterator[dict]:
        """parts: image files and/or zips; product: whose golden samples are the bank (or UPLOADED:
        then golden); engine: an engine id; question/options: what each part is asked; sensitivity:
        the comparator's threshold divisor. Yields the progress, table, gallery and downloads."""
        files = [Path(f) for f in (parts or [])]
        if not files:
            raise gr.Error("Add the parts: several images or one zip of them.")
        chosen = product or UPLOADED
        templates = [Path(f) for f in (golden or [])] if chosen == UPLOADED else templates_for(chosen)
        if not templates:
            raise gr.Error(
                "No golden samples: pick a product that has some, or upload good parts of the product."
            )
        selected = by_id.get(engine or (usable[0].id if usable else ""))
        if selected is None:
            raise gr.Error(f"Choose an engine among: {', '.join(by_id) or 'none is available'}.")
        try:
            opts = parse_options(options or "")
            strength = sensitivity_from(sensitivity)
            found = discover(files)
            images = [load_image(t) for t in templates]
            settings = {"q": question, "o": opts, "s": strength, "p": chosen}
            out = root / _key(files, templates, selected.id, settings)
            spec = BatchSpec(
                selected,
                images,
                out,
                question=question,
                options=opts,
                template_names=[t.name for t in templates],
                category=None if chosen == UPLOADED else chosen,
                sensitivity=strength,
            )
        except (InputError, ImageInputError, BatchInputError, ValueError) as err:  # InputProblem too
            raise gr.Error(str(err)) from None
        session = _session(request)
        stop_event = tab.stops[session] = threading.Event()
        results: list[BatchResult] = []
        total, done, last = len(found.parts), 0, 0.0
        t0 = time.perf_counter()
        tab.live[session] = results
        yield state(results, 0, total, "starting", None)
        note = "finished"
        try:
            for step in run_batch(found, spec, stop_event):
                results.append(step.result)
                if problem := logged(step.result, chosen, request):
                    gr.Warning(problem)
                done = step.done
                now = time.perf_counter()
                if now - last >= UPDATE_EVERY_S:
                    last = now
                    yield state(results, done, total, f"{now - t0:.1f} s", None)
            if stop_event.is_set():
                note = "stopped: the finished parts are kept"
        except (JsonlError, OSError) as err:
            note = f"error: {err}"
            gr.Warning(str(err))
        finally:
            if tab.stops.get(session) is stop_event:
                del tab.stops[session]
        results += skipped_results(found)
        info = {
            "engine": selected.label,
            "product": chosen,
            "golden samples": ", ".join(t.name for t in templates),
            "question": question,
            "options": "; ".join(f"{k}. {v}" for k, v in (opts or {}).items()),
            "sensitivity": sensitivity,
        }
        exports = export(results, out, info)
        note = f"{note} in {time.perf_counter() - t0:.1f} s"
        if found.skipped:
            count = len(found.skipped)
            note += f" · {count} file{'s' if count > 1 else ''} left out (see the table)"
        yield state(results, done, total, note, downloads_named(exports.paths(), out))

    def shown_thumbnails(results: list[BatchResult]) -> list[tuple[str, str]]:
        return [(_thumb(r.overlay), r.part) for r in results if r.overlay is not None]

    def thumbnails(request: gr.Request | None = None) -> Any:
        """The timer's refresh while a run streams. After the run's last refresh (which forgets the
        session's results) a late tick changes nothing: it must not blank the finished gallery."""
        results = tab.live.get(_session(request))
        return gr.skip() if results is None else shown_thumbnails(list(results))

    def timer_on() -> dict:
        return {tab.timer: gr.Timer(active=True)}

    def last_thumbnails(request: gr.Request | None = None) -> dict:
        shown = shown_thumbnails(list(tab.live.pop(_session(request), [])))
        return {tab.gallery: shown, tab.timer: gr.Timer(active=False)}

    def stop_handler(request: gr.Request | None = None) -> None:
        event = tab.stops.get(_session(request))
        if event is not None:
            event.set()

    fn = gpu(run_handler) if gpu is not None else run_handler
    queue: dict[str, Any] = {"concurrency_limit": concurrency_limit}
    if concurrency_id:
        queue["concurrency_id"] = concurrency_id
    tab.timer = gr.Timer(GALLERY_EVERY_S, active=False)
    tab.timer.tick(thumbnails, None, tab.gallery, queue=False, api_name=False, show_progress="hidden")
    run.click(timer_on, None, [tab.timer], queue=False, api_name=False).then(
        fn,
        None,
        inputs_kwargs={
            "parts": tab.parts,
            "product": tab.product,
            "engine": tab.engine,
            "golden": tab.golden,
            "question": tab.question,
            "options": tab.options,
            "sensitivity": tab.sensitivity,
        },
        outputs=[tab.progress, tab.table, tab.downloads],
        api_name="batch",
        api_description="Inspect a tray of parts against a product's golden samples (a batch): the "
        "progress, the table and the downloads (CSV, JSON records, HTML report with the overlays).",
        **queue,
    ).then(last_thumbnails, None, [tab.gallery, tab.timer], queue=False, api_name=False)
    stop.click(stop_handler, None, None, queue=False, api_name=False)
    return tab


def batch_demo(
    engines: list[Engine],
    golden: dict[str, list[Path]],
    records_root: Path,
    title: str = "JUDO Inspector: batch",
) -> gr.Blocks:
    """A page with the Batch tab alone (tests, the benchmark, a lab that only runs trays)."""
    with gr.Blocks(title=title, analytics_enabled=False) as demo, gr.Tab("Batch"):
        build_batch_tab(engines, lambda p: list(golden.get(p or "", [])), list(golden), records_root)
    demo.queue(default_concurrency_limit=1)
    return demo
