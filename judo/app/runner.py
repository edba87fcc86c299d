"""What happens when the inspector presses Inspect: validate, stream an engine, draw, record.

Kept apart from the layout (`judo.app.layout`) and from input validation (`judo.app.inputs`) so the
streaming logic reads top to bottom. Rules:
- bad input ends in one clear sentence (a toast and the status line), never a traceback, and costs
  no accelerator time (images are validated before an engine is touched);
- the overlay is re-rendered only when the set of streamed cells changes, and text refreshes are
  paced (`Pacer`): a fast model must not drown the page, nor a busy server slow generation down.
  Tokens that arrive meanwhile are merged into the next update (the engine keeps generating);
- an output that did not change is re-sent as the same value, never as ``gr.skip()`` (see
  `ShownFiles`): Gradio sends only the difference between successive values of a stream;
- every run ends with a record (JSON) and the overlay (PNG) ready to download, also after Stop, and
  the record goes to the optional `RecordHook` (the inspection log) once.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import gradio as gr
from PIL import Image

from judo.app.api import CompareForm, CompareView, InspectForm, InspectView
from judo.app.downloads import RecordWriteError, write_outputs
from judo.app.inputs import (
    InputProblem,
    Prepared,
    hide_paths,
    prepare_inputs,
    sensitivity_from,
    settings_from,
    size_note,
)
from judo.app.owner import owner_of_request
from judo.app.pictures import OverlayPainter, ShownFiles, prior_heatmap
from judo.app.retune import KeptResults, Shown
from judo.app.streaming import STOPS, TICK_S, Pacer, public, session_of, stopped_before_start, ticking
from judo.app.views import answer_html, result_json, status_markdown
from judo.engines.base import Engine, Update
from judo.engines.comparator import borderline_of
from judo.record import build_record, download_stem, truth_metrics, truth_section

if TYPE_CHECKING:
    from transformers import GenerationConfig

log = logging.getLogger(__name__)


class RecordHook(Protocol):
    """Told of every finished inspection (stopped and failed ones too; each engine of a comparison once),
    after its record is built. A non-empty string returned (or an exception raised) is shown as a warning;
    the result shows either way. Input that cannot be inspected builds no record and calls no hook."""

    def __call__(
        self,
        record: dict[str, Any],
        *,
        record_path: str | None,
        user: str | None,
        part: str | None,
        product: str | None,
        kind: str,  # "single" or "compare"
    ) -> str | None: ...


@dataclass
class Saved:
    """What `Runner.save` made of a finished inspection: its record, the downloads (None when they could
    not be written), the notes to show (the run's, plus any problem on the way) and the truth metrics."""

    record: dict[str, Any]
    record_path: str | None
    png_path: str | None
    notes: list[str]
    metrics: dict[str, Any] | None


class Runner:
    """The app's runs, bound to its engines: `inspect` (one engine) and `compare` (two or three)."""

    def __init__(
        self,
        engines: list[Engine],
        stream_interval_s: float = 0.05,
        records_dir=None,
        gallery: Callable[[str | None], list] | None = None,
        on_record: RecordHook | None = None,
        kept: KeptResults | None = None,
    ) -> None:
        self.engines = {e.id: e for e in engines}
        self.kept = kept or KeptResults()  # the shown result per session, for the live re-threshold
        self.interval = stream_interval_s
        self.records_dir = records_dir  # None: judo.app.downloads.RECORDS_DIR
        self.gallery = gallery  # product -> its golden samples: the comparator's bank (judo.app.bank)
        self.on_record = on_record

    def engine(self, engine_id: str | None) -> Engine:
        e = self.engines.get(engine_id or "") or next(
            (x for x in self.engines.values() if x.label == engine_id), None
        )
        if e is None:
            raise InputProblem(f"Unknown engine {engine_id!r}; choose one of {', '.join(self.engines)}.")
        if not e.available:
            raise InputProblem(f"{e.label} is unavailable: {e.reason}")
        return e

    # ---------------------------------------------------------------------------------- record
    def told(
        self, record: dict[str, Any], record_path: str | None, request: Any, prep: Prepared, kind: str
    ) -> str | None:
        """Hand a finished inspection's record to `on_record`; its complaint (if any) as one sentence."""
        if self.on_record is None:
            return None
        part = prep.names.get("query")
        try:
            problem = self.on_record(
                record,
                record_path=record_path,
                user=getattr(request, "username", None) if request is not None else None,
                part=Path(part).stem if part else None,
                product=prep.request.category,
                kind=kind,
            )
        except Exception as err:  # noqa: BLE001 - the log's failure must not cost the inspector the result
            log.warning("the inspection record hook failed: %s", err, exc_info=True)
            return hide_paths(f"The inspection was not logged: {err or type(err).__name__}")
        return hide_paths(str(problem)) if problem else None

    # ---------------------------------------------------------------------------------- inspect
    def inspect(self, form: InspectForm, request: gr.Request | None = None) -> Iterator[InspectView]:
        """One engine on one input, streamed: a first view at once, paced updates, the final view."""
        t0 = time.perf_counter()
        session = session_of(request)
        stop = STOPS.start(session)  # taken first: a Stop pressed from now on (or before, see arm) counts
        self.kept.forget(session)  # the result shown until now is being replaced
        try:
            try:
                prep = prepare_inputs(
                    form.query,
                    form.template,
                    form.question,
                    form.options,
                    form.category,
                    form.mask,
                    form.expected,
                )
                engine = self.engine(form.engine)
                settings = settings_from(form.max_new_tokens, form.do_sample, form.temperature, form.top_p)
                if engine.kind == "comparator":
                    self._comparator_bank(prep, form.category, form.sensitivity)
                elif note := size_note(prep):
                    prep.notes.append(note)
            except InputProblem as err:
                gr.Warning(str(err))
                yield InspectView(
                    answer_html=answer_html(None, None),
                    status=f"**Cannot inspect:** {html.escape(str(err), quote=False)}",
                    result={"error": str(err), "done": True},
                )
                return
            files = ShownFiles(owner_of_request(request))
            try:
                yield from self._stream(
                    engine, prep, files, bool(form.visual_prior), t0, stop, settings, request
                )
            finally:  # after the final yield (Gradio has copied the pictures), or when the client went away
                files.close()
        finally:
            stop.set()
            STOPS.finish(session, stop)

    def _comparator_bank(self, prep: Prepared, category: str | None, sensitivity: Any) -> None:
        """The comparator judges against the product's whole gallery (the chosen template first)."""
        from judo.app.bank import gallery_bank

        prep.request.sensitivity = sensitivity_from(sensitivity)
        if self.gallery is not None and category:
            prep.request, notes = gallery_bank(prep.request, self.gallery(category))
            prep.notes += notes

    def _stream(
        self,
        engine: Engine,
        prep: Prepared,
        files: ShownFiles,
        prior_on: bool,
        t0: float,
        stop: threading.Event,
        settings: GenerationConfig,
        request: Any,
    ) -> Iterator[InspectView]:
        """The run itself: a first view at once, throttled streaming views, then the final one.

        Every view carries a value for every output (unchanged ones repeat, which Gradio turns into
        an empty diff); the text is sent at most every ``interval`` s, and everything the engine
        streamed in between is merged into that view. Cell and answer changes are sent at once; while
        the engine is silent (loading, prefill) the status clock still moves every `TICK_S`.
        """
        req = prep.request
        painter = OverlayPainter(req.query, prep.truth_mask, files)
        prior_path, notes = None, list(prep.notes)
        if prior_on:
            prior_img, note = prior_heatmap(req)
            prior_path = files.save(prior_img, "prior")
            if note:
                notes.append(note)
        first_update_s = None
        last = Update()
        answer = answer_html(None, req.options, prep.expected)
        shown_answer, shown_text = None, False
        pacer = Pacer(self.interval)

        def view(cells, text: str) -> InspectView:
            status = status_markdown(
                engine.label, None, notes, None, time.perf_counter() - t0, True, stopping=stop.is_set()
            )
            return InspectView(painter.show(cells), prior_path, text, answer, status)

        yield view(set(), "")
        if stop.is_set():  # Stop was pressed before the run began: the engine is not started at all
            last = stopped_before_start()
        for update in ticking(public(engine.run(req, stop, settings)) if not last.done else iter(()), TICK_S):
            if update is None:  # no news from the engine for a while: the clock moves on
                yield view(last.cells, last.text)
                continue
            last = update
            if update.text and first_update_s is None:
                first_update_s = time.perf_counter() - t0
            if update.done:
                break
            answer_changed = update.answer != shown_answer
            now = time.perf_counter()
            first_text = bool(update.text) and not shown_text  # the first words go out at once
            if not (first_text or answer_changed or pacer.due(now) or painter.changed(update.cells)):
                continue
            if answer_changed:
                answer = answer_html(update, req.options, prep.expected)
                shown_answer = update.answer
            shown_text = shown_text or bool(update.text)
            yield view(update.cells, update.text)
            pacer.sent(now)
        yield self._final(engine, prep, painter, last, notes, t0, first_update_s, prior_path, request)

    def _final(
        self,
        engine: Engine,
        prep: Prepared,
        painter: OverlayPainter,
        last: Update,
        notes: list[str],
        t0: float,
        first_update_s: float | None,
        prior_path: str | None,
        request: Any,
    ) -> InspectView:
        req = prep.request
        if not last.done:  # the stream ended without a final update (should not happen): say so
            last = Update(
                text=last.text,
                cells=last.cells,
                answer=None,
                done=True,
                error="The engine stopped without a final answer.",
                meta=last.meta,
            )
        elapsed = time.perf_counter() - t0
        borderline = borderline_of(last)
        saved = self.save(
            engine,
            prep,
            last,
            painter.full_size(last.cells, borderline),
            notes,
            elapsed=elapsed,
            first_update_s=first_update_s,
            request=request,
            owner=painter.files.owner,
        )
        self.kept.keep(
            session_of(request),
            Shown(
                engine,
                prep,
                last,
                list(notes),
                elapsed,
                saved.record.get("id"),
                painter.files.owner,
                painter,
            ),
        )
        if last.error:
            gr.Warning(last.error)
        return InspectView(
            overlay=painter.show(last.cells, borderline),
            visual_prior=prior_path,
            output_text=last.text,
            answer_html=answer_html(last, req.options, prep.expected),
            status=status_markdown(engine.label, last, saved.notes, saved.metrics, elapsed, False),
            result=result_json(last, saved.metrics, engine.id),
            record=saved.record_path,
            overlay_png=saved.png_path,
        )

    def save(
        self,
        engine: Engine,
        prep: Prepared,
        update: Update,
        overlay: Image.Image,
        notes: list[str],
        *,
        elapsed: float,
        first_update_s: float | None,
        request: Any,
        owner: str | None,
    ) -> Saved:
        """A finished inspection's record: built, written with its full-size overlay for download, handed
        to `on_record` (kind "single"). What went wrong on the way is added to the notes and shown as a
        warning; the result stands either way."""
        metrics = truth_metrics(update.cells, prep.truth_cells)
        record = build_record(
            prep.request,
            update,
            engine_label=engine.label,
            truth=truth_section(metrics, prep.truth_cells, prep.expected),
            names=prep.names,
            elapsed_s=elapsed,
            first_update_s=first_update_s,
        )
        try:
            record_path, png_path = write_outputs(
                record,
                overlay,
                stem=download_stem(prep.names.get("query"), engine.id),
                folder=self.records_dir,
                owner=owner,
            )
        except RecordWriteError as err:  # the analysis is done: show it, say the download is missing
            record_path = png_path = None
            notes = [*notes, str(err)]
            gr.Warning(str(err))
        if problem := self.told(record, record_path, request, prep, "single"):
            notes = [*notes, problem]
            gr.Warning(problem)
        return Saved(record, record_path, png_path, notes, metrics)

    # ---------------------------------------------------------------------------------- compare
    def compare(self, form: CompareForm, request: gr.Request | None = None) -> Iterator[CompareView]:
        """2-3 engines on the same input, streaming side by side (see `judo.app.comparing`)."""
        from judo.app.comparing import compare_run

        return compare_run(self, form, request)
