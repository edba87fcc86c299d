"""What happens when the inspector presses Run: validate, stream an engine, draw, record.

Kept apart from the layout (judo/ui.py) and from input validation (judo/ui_inputs.py) so the streaming
logic reads top to bottom. Rules:
- bad input ends in one clear sentence (a toast and the status line), never a traceback, and costs
  no accelerator time (images are validated before an engine is touched);
- the overlay is re-rendered only when the set of streamed cells changes, and text refreshes are
  paced (`Pacer`): a fast model must not drown the page, nor a busy server slow generation down.
  Tokens that arrive meanwhile are merged into the next update (the engine keeps generating);
- an output that did not change is re-sent as the same value, never as ``gr.skip()`` (see
  `ShownFiles`): Gradio sends only the difference between successive values of a stream;
- every run ends with a record (JSON) and the overlay (PNG) ready to download, also after Stop.
"""

from __future__ import annotations

import html
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from judo.engines.base import Engine, InspectionRequest, Update
from judo.grid import Cell, seg_f1, seg_iou
from judo.record import build_record, download_stem
from judo.render import GREEN, fit_within, heatmap_overlay, outline_edges, outline_mask, overlay_cells
from judo.ui_inputs import InputProblem, Prepared, hide_paths, prepare_inputs, settings_from, size_note
from judo.ui_owner import OWNERS, new_token, owner_of_request
from judo.ui_record import RecordWriteError, write_outputs

if TYPE_CHECKING:
    from transformers import GenerationConfig

#: Longest side of the pictures sent to the browser while streaming (downloads keep full size).
DISPLAY_SIDE = 1024
MAX_COMPARE = 3
#: Largest share of a run's time spent handing streamed updates to Gradio (see `Pacer`).
UPDATE_BUDGET = 0.05
#: How often the status clock moves while the engine is silent (loading, prefill).
TICK_S = 0.5
#: What each /inspect yield holds, in order (the final yield always carries every value).
INSPECT_OUTPUTS = (
    "overlay",
    "visual_prior",
    "output_text",
    "answer_html",
    "status",
    "result",
    "record",
    "overlay_png",
)


# ----------------------------------------------------------------------------------------- stops
class StopRegistry:
    """One stop event per browser session: the Stop button sets it, the running engine sees it.

    Inspect arms the session's event the moment it is pressed (`arm`, before the run waits in the
    queue), so a Stop pressed before the run has begun still reaches it: the run then ends at once with
    a record that says it was stopped.
    """

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._started: set[int] = set()  # ids of the events a run has taken
        self._lock = threading.Lock()

    def arm(self, session: str) -> None:
        with self._lock:
            event = self._events.get(session)
            if event is None or id(event) not in self._started:  # a running run keeps its event
                self._events[session] = threading.Event()

    def start(self, session: str) -> threading.Event:
        """The run's stop event: the armed one (Stop may have set it already), else a fresh one."""
        with self._lock:
            event = self._events.get(session)
            if event is None or id(event) in self._started:
                event = self._events[session] = threading.Event()
            self._started.add(id(event))
        return event

    def stop(self, session: str) -> bool:
        with self._lock:
            event = self._events.get(session)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, session: str, event: threading.Event) -> None:
        with self._lock:
            self._started.discard(id(event))
            if self._events.get(session) is event:
                del self._events[session]


STOPS = StopRegistry()


def session_of(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "api"


# ----------------------------------------------------------------------------------------- views
def answer_html(
    update: Update | None,
    options: dict[str, str] | None,
    expected: str | None = None,
    title: str | None = None,
) -> str:
    """The options as a list with the chosen one highlighted (and the expected one marked, if known)."""
    head = f"<div class='judo-answer-title'>{html.escape(title, quote=False)}</div>" if title else ""
    if update is None:
        return head + "<div class='judo-answer judo-pending'>No answer yet.</div>"
    chosen = update.answer
    if not options:
        body = html.escape(chosen or "—", quote=False)
        return head + f"<div class='judo-answer'><span class='judo-chosen'>{body}</span></div>"
    rows = []
    for letter, text in options.items():
        cls = ["judo-option"]
        if letter == chosen:
            cls.append("judo-chosen")
        mark = ""
        if expected:
            if letter == expected:
                cls.append("judo-expected")
                mark = " ✓ correct" if letter == chosen else " (correct)"
            elif letter == chosen:
                mark = " ✗"
        rows.append(
            f"<li class='{' '.join(cls)}'><b>{letter}.</b> {html.escape(text, quote=False)}{mark}</li>"
        )
    status = ""
    if update.done and chosen is None:
        status = "<div class='judo-pending'>No option chosen.</div>"
    elif not update.done and chosen is None:
        status = "<div class='judo-pending'>Waiting for &lt;answer&gt;…</div>"
    return head + f"<ul class='judo-answer'>{''.join(rows)}</ul>{status}"


class Pacer:
    """When the next text refresh of a stream is due.

    At most one every ``interval`` s, and never more often than keeps the time spent handing updates
    to Gradio under `UPDATE_BUDGET` of the run: Gradio resumes the handler only once it has processed
    the previous update, so that pause is the update's cost, and it grows on a busy server (each
    update hops between threads, which wait for the interpreter lock held by generation). Cell and
    answer changes are not paced; the final update never waits; the text refreshes at least every
    ``longest`` s, so one slow update (a garbage collection) does not freeze the page.
    """

    def __init__(self, interval: float, longest: float = 0.5) -> None:
        self.interval = interval
        self.longest = max(interval, longest)
        self.gap = interval
        self.last = time.perf_counter()

    def due(self, now: float) -> bool:
        return now - self.last >= self.gap

    def sent(self, started: float) -> None:
        """Call when the handler resumes after an update yielded at ``started``."""
        self.last = started
        cost = time.perf_counter() - started
        self.gap = min(self.longest, max(self.interval, cost / UPDATE_BUDGET))


class ShownFiles:
    """The PNG files behind the pictures of one streaming run; removed when the run ends.

    Why files: while an event streams, Gradio diffs each output against its previous value and sends
    only the change, so re-sending an unchanged value costs next to nothing. ``gr.skip()`` is not
    free: Gradio rebuilds the component and its config (a pydantic JSON schema) for each skipped
    output of each update, several ms of server CPU apiece, paid up to ``1 / stream_interval_s``
    times a second while generation competes for the same interpreter. A picture re-sent as the
    same PIL image would be PNG-encoded again; re-sent as the path of the file written when it last
    changed, Gradio only hashes that file. Fast PNG compression: these are display copies.
    """

    def __init__(self, owner: str | None = None) -> None:
        self._dir: str | None = None
        self._count = 0
        self.owner = owner
        self.token = new_token()  # names are claimed for the owner (judo.ui_owner): nobody else sees them

    def save(self, img: Image.Image | None, stem: str) -> str | None:
        if img is None:
            return None
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="judo-view-")
        self._count += 1
        name = f"{stem}-{self.token}-{self._count}.png"
        img.save(f"{self._dir}/{name}", format="PNG", compress_level=1)
        OWNERS.claim(name, self.owner)
        return f"{self._dir}/{name}"

    def close(self) -> None:
        """Gradio copies every yielded file into its cache before asking for the next update."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class OverlayPainter:
    """Draws the query with red cells and the green truth outline on top, at display size.

    The display copy and the outline stencil are computed once; a re-render (only when the cell set
    changes) is one translucent rectangle per run of cells plus one paste. `show` returns the path of
    the current picture, so an unchanged overlay is re-sent as the same value (see `ShownFiles`).
    """

    def __init__(
        self,
        query: Image.Image,
        truth_mask: Any = None,
        files: ShownFiles | None = None,
        stem: str = "overlay",
    ) -> None:
        self.query = query
        self.truth_mask = truth_mask
        self.base = fit_within(query, DISPLAY_SIDE)
        self.edges = outline_edges(self.base.size, truth_mask) if truth_mask is not None else None
        self.files = files or ShownFiles()
        self.stem = stem
        self.cells: frozenset[Cell] | None = None
        self.path: str | None = None

    def changed(self, cells: set[Cell]) -> bool:
        return self.cells is None or len(cells) != len(self.cells) or frozenset(cells) != self.cells

    def render(self, cells: set[Cell]) -> Image.Image:
        img = overlay_cells(self.base, cells)
        if self.edges is not None:
            img.paste(GREEN, (0, 0), self.edges)
        return img

    def show(self, cells: set[Cell]) -> str:
        """The display picture's file for these cells, drawn and written only when they changed."""
        if self.path is None or self.changed(cells):
            self.cells = frozenset(cells)
            self.path = self.files.save(self.render(self.cells), self.stem)
        return self.path

    def full_size(self, cells: set[Cell]) -> Image.Image:
        img = overlay_cells(self.query, cells)
        return outline_mask(img, self.truth_mask) if self.truth_mask is not None else img


def truth_metrics(cells: set[Cell], truth: set[Cell] | None) -> dict[str, float] | None:
    if truth is None:
        return None
    return {
        "patch_f1": round(seg_f1(cells, truth), 4),
        "patch_iou": round(seg_iou(cells, truth), 4),
        "truth_cells": len(truth),
        "predicted_cells": len(cells),
    }


def prior_heatmap(request: InspectionRequest) -> tuple[Image.Image | None, str | None]:
    """The comparator heat map over the query (display size), or a note why not."""
    try:
        from judo.comparator.compare import compare

        result = compare(request.query, request.template)
    except Exception as err:
        return None, f"Visual prior unavailable: {err}"
    display = fit_within(request.query, DISPLAY_SIDE)
    img = heatmap_overlay(display, result.heatmap, vmax=1.0)
    img = overlay_cells(img, result.cells, color=(255, 255, 255), alpha=0.15)
    note = f"Visual prior: {len(result.cells)} cells differ from the template"
    if result.warnings:
        note += " (" + "; ".join(result.warnings) + ")"
    return img, note


def ticking(updates: Iterator[Update], every_s: float) -> Iterator[Update | None]:
    """``updates``, read in a worker thread, with a ``None`` whenever ``every_s`` passes without one
    (so a caller can refresh a clock while an engine loads or prefills). The engine's own stop event
    ends the worker; an exception in it is raised here."""
    events: queue.Queue = queue.Queue()
    end = object()

    def work() -> None:
        try:
            for update in updates:
                events.put(update)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            events.put(err)
        events.put(end)

    threading.Thread(target=work, daemon=True, name="judo-engine-stream").start()
    while True:
        try:
            item = events.get(timeout=every_s)
        except queue.Empty:
            yield None
            continue
        if item is end:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def stopped_before_start() -> Update:
    """The final update of a run that Stop ended before its engine began."""
    return Update(
        done=True, meta={"stopped": True, "warnings": ["Stopped by the user before the engine started."]}
    )


def status_markdown(
    engine_label: str,
    update: Update | None,
    notes: list[str],
    metrics: dict | None,
    elapsed: float,
    running: bool,
    stopping: bool = False,
) -> str:
    lines = []
    label = html.escape(engine_label, quote=False)
    if running:
        lines.append(
            f"**{label}** is stopping… {elapsed:.1f} s"
            if stopping
            else f"**{label}** is running… {elapsed:.1f} s"
        )
    elif update is not None and update.error:
        lines.append(f"**Error:** {html.escape(update.error, quote=False)}")
    else:
        meta = update.meta if update else {}
        verb = "stopped by the user after" if meta.get("stopped") else "finished in"
        parts = [f"**{label}** {verb} {elapsed:.2f} s"]
        if meta.get("first_token_s") is not None:
            parts.append(f"first token {meta['first_token_s']:.2f} s")
        if meta.get("new_tokens"):
            parts.append(f"{meta['new_tokens']} tokens")
        if meta.get("tokens_per_s"):
            parts.append(f"{meta['tokens_per_s']:.1f} tok/s")
        lines.append(" · ".join(parts))
    if metrics:
        lines.append(
            f"Truth (green) vs prediction (red): patch F1 **{metrics['patch_f1']:.2f}**, "
            f"IoU **{metrics['patch_iou']:.2f}** ({metrics['predicted_cells']} predicted, "
            f"{metrics['truth_cells']} true cells)"
        )
    meta = update.meta if update else {}
    if meta.get("knowledge_summary"):
        lines.append(html.escape(meta["knowledge_summary"], quote=False))
    warnings = list(dict.fromkeys(hide_paths(str(w)) for w in [*notes, *(meta.get("warnings") or [])]))
    if warnings:
        lines.append(warnings_markdown(meta.get("headline") or warnings[0], warnings))
    return "\n\n".join(lines)


def warnings_markdown(headline: str, warnings: list[str]) -> str:
    """One warning line (the headline) and, folded under it, every warning in full."""
    head = f"⚠ {html.escape(headline, quote=False)}"
    if warnings == [headline]:
        return head
    items = "".join(f"<li>{html.escape(w, quote=False)}</li>" for w in warnings)
    return f"{head}\n\n<details><summary>All warnings ({len(warnings)})</summary><ul>{items}</ul></details>"


def result_json(update: Update, metrics: dict | None, engine: str) -> dict[str, Any]:
    return {
        "engine": engine,
        "done": update.done,
        "stopped": bool(update.meta.get("stopped")),
        "answer": update.answer,
        "cells": sorted([list(c) for c in update.cells]),
        "error": update.error,
        "warnings": update.meta.get("warnings", []),
        "truth": metrics,
        **({"comparator": update.meta["comparator"]} if "comparator" in update.meta else {}),
    }


# ------------------------------------------------------------------------------------- inspect
class Runner:
    """The app's handlers, bound to its engines."""

    def __init__(
        self,
        engines: list[Engine],
        stream_interval_s: float = 0.05,
        records_dir=None,
        gallery: Callable[[str | None], list] | None = None,
    ) -> None:
        self.engines = {e.id: e for e in engines}
        self.interval = stream_interval_s
        self.records_dir = records_dir  # None: judo.ui_record.RECORDS_DIR
        self.gallery = gallery  # product -> its golden samples: the comparator's bank (ui_bank.py)

    def engine(self, engine_id: str | None) -> Engine:
        e = self.engines.get(engine_id or "") or next(
            (x for x in self.engines.values() if x.label == engine_id), None
        )
        if e is None:
            raise InputProblem(f"Unknown engine {engine_id!r}; choose one of {', '.join(self.engines)}.")
        if not e.available:
            raise InputProblem(f"{e.label} is unavailable: {e.reason}")
        return e

    def inspect(
        self,
        query,
        template,
        question,
        options,
        engine,
        category,
        mask=None,
        expected=None,
        visual_prior=False,
        max_new_tokens=768,
        do_sample=False,
        temperature=0.7,
        top_p=0.9,
        sensitivity=1.0,
        request: gr.Request = None,
    ) -> Iterator[tuple]:
        """One engine on one input, streamed; see INSPECT_OUTPUTS for what each yield holds."""
        options_text, engine_id = options, engine
        t0 = time.perf_counter()
        session = session_of(request)
        stop = STOPS.start(session)  # taken first: a Stop pressed from now on (or before, see arm) counts
        try:
            try:
                prep = prepare_inputs(query, template, question, options_text, category, mask, expected)
                engine = self.engine(engine_id)
                settings = settings_from(max_new_tokens, do_sample, temperature, top_p)
                if engine.kind == "comparator":
                    self._comparator_bank(prep, category, sensitivity)
                elif note := size_note(prep):
                    prep.notes.append(note)
            except InputProblem as err:
                gr.Warning(str(err))
                yield (
                    None,
                    None,
                    "",
                    answer_html(None, None),
                    f"**Cannot inspect:** {html.escape(str(err), quote=False)}",
                    {"error": str(err), "done": True},
                    None,
                    None,
                )
                return
            files = ShownFiles(owner_of_request(request))
            try:
                yield from self._stream(engine, prep, files, visual_prior, t0, stop, settings)
            finally:  # after the final yield (Gradio has copied the pictures), or when the client went away
                files.close()
        finally:
            stop.set()
            STOPS.finish(session, stop)

    def _comparator_bank(self, prep: Prepared, category: str | None, sensitivity: Any) -> None:
        """The comparator judges against the product's whole gallery (the chosen template first)."""
        from judo.ui_bank import gallery_bank

        try:
            value = 1.0 if sensitivity in (None, "") else float(sensitivity)
        except (TypeError, ValueError):
            value = float("nan")
        if not 0 < value <= 100:  # NaN fails too
            raise InputProblem(
                f"The sensitivity must be a number above 0 and at most 100 (1 = default), got {sensitivity!r}."
            )
        prep.request.sensitivity = value
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
    ) -> Iterator[tuple]:
        """The run itself: a first update at once, throttled streaming updates, then the final one.

        Every yield carries a value for every output (unchanged ones repeat, which Gradio turns into
        an empty diff); the text is sent at most every ``interval`` s, and everything the engine
        streamed in between is merged into that update. Cell and answer changes are sent at once; while
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

        def status() -> str:
            return status_markdown(
                engine.label, None, notes, None, time.perf_counter() - t0, True, stopping=stop.is_set()
            )

        yield (painter.show(set()), prior_path, "", answer, status(), None, None, None)
        if stop.is_set():  # Stop was pressed before the run began: the engine is not started at all
            last = stopped_before_start()
        for update in ticking(public(engine.run(req, stop, settings)) if not last.done else iter(()), TICK_S):
            if update is None:  # no news from the engine for a while: the clock moves on
                yield (painter.show(last.cells), prior_path, last.text, answer, status(), None, None, None)
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
            yield (painter.show(update.cells), prior_path, update.text, answer, status(), None, None, None)
            pacer.sent(now)
        yield self._final(engine, prep, painter, last, notes, t0, first_update_s, prior_path)

    def _final(
        self,
        engine,
        prep: Prepared,
        painter: OverlayPainter,
        last: Update,
        notes,
        t0,
        first_update_s,
        prior_path,
    ):
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
        metrics = truth_metrics(last.cells, prep.truth_cells)
        elapsed = time.perf_counter() - t0
        record = build_record(
            req,
            last,
            engine_label=engine.label,
            truth=_truth(metrics, prep),
            names=prep.names,
            elapsed_s=elapsed,
            first_update_s=first_update_s,
        )
        full = painter.full_size(last.cells)
        try:
            record_path, png_path = write_outputs(
                record,
                full,
                stem=download_stem(prep.names.get("query"), engine.id),
                folder=self.records_dir,
                owner=painter.files.owner,
            )
        except RecordWriteError as err:  # the analysis is done: show it, say the download is missing
            record_path = png_path = None
            notes = [*notes, str(err)]
            gr.Warning(str(err))
        if last.error:
            gr.Warning(last.error)
        return (
            painter.show(last.cells),
            prior_path,
            last.text,
            answer_html(last, req.options, prep.expected),
            status_markdown(engine.label, last, notes, metrics, elapsed, False),
            result_json(last, metrics, engine.id),
            record_path,
            png_path,
        )

    # ---------------------------------------------------------------------------------- compare
    def compare(
        self,
        query,
        template,
        question,
        options,
        engines,
        category,
        mask=None,
        expected=None,
        max_new_tokens=768,
        do_sample=False,
        temperature=0.7,
        top_p=0.9,
        request: gr.Request = None,
    ) -> Iterator[tuple]:
        """2-3 engines on the same input, streaming side by side; outputs: 3 x (overlay, text, answer),
        summary, status, result, downloads (each engine's record and overlay)."""
        t0 = time.perf_counter()
        options_text, engine_ids = options, engines
        try:
            ids = [i for i in (engine_ids or []) if i]
            if not 2 <= len(ids) <= MAX_COMPARE:
                raise InputProblem(f"Pick two or three engines to compare (got {len(ids)}).")
            engines = [self.engine(i) for i in ids]
            prep = prepare_inputs(query, template, question, options_text, category, mask, expected)
            settings = settings_from(max_new_tokens, do_sample, temperature, top_p)
        except InputProblem as err:
            gr.Warning(str(err))
            blank = [None, "", answer_html(None, None)] * MAX_COMPARE
            yield (
                *blank,
                "",
                f"**Cannot compare:** {html.escape(str(err), quote=False)}",
                {"error": str(err), "done": True},
                None,
            )
            return
        files = ShownFiles(owner_of_request(request))
        try:
            yield from self._compare_stream(engines, prep, files, t0, request, settings)
        finally:  # after the final yield (Gradio has copied the pictures), or when the client went away
            files.close()

    def _compare_stream(
        self,
        engines: list[Engine],
        prep: Prepared,
        files: ShownFiles,
        t0: float,
        request: gr.Request | None,
        settings: GenerationConfig,
    ) -> Iterator[tuple]:
        """The engines run in threads; their updates are merged into one throttled stream of panels."""
        req = prep.request
        painters = [
            OverlayPainter(req.query, prep.truth_mask, files, stem=f"panel{i}") for i in range(len(engines))
        ]
        latest: list[Update] = [Update() for _ in engines]
        session = session_of(request)
        stop = STOPS.start(session)
        events: queue.Queue = queue.Queue()

        def run(i: int, engine: Engine) -> None:
            for update in public(engine.run(req, stop, settings)):
                events.put((i, update))
            events.put((i, None))

        threads = [
            threading.Thread(target=run, args=(i, e), daemon=True, name=f"judo-compare-{e.id}")
            for i, e in enumerate(engines)
        ]
        answers = [answer_html(None, req.options, prep.expected, e.label) for e in engines]
        shown = [(None, False)] * len(engines)  # (answer, done) behind each panel's answer box
        unused = [None, "", ""] * (MAX_COMPARE - len(engines))
        names = ", ".join(e.label for e in engines)

        def status() -> str:
            doing = "Stopping" if stop.is_set() else "Comparing"
            return f"{doing} {names}… {time.perf_counter() - t0:.1f} s"

        def panels() -> list:
            out = []
            for j, e in enumerate(engines):
                u = latest[j]
                if (u.answer, u.done) != shown[j]:
                    answers[j] = answer_html(
                        u if u.done or u.answer else None, req.options, prep.expected, e.label
                    )
                    shown[j] = (u.answer, u.done)
                out += [painters[j].show(u.cells), u.text, answers[j]]
            return out + unused

        yield (*panels(), "", status(), None, None)
        for t in threads:
            t.start()
        running = len(engines)
        pacer = Pacer(self.interval)
        try:
            while running:
                try:
                    i, update = events.get(timeout=0.5)
                except queue.Empty:  # no news for a while: the clock moves on
                    yield (*panels(), "", status(), None, None)
                    continue
                if update is None:
                    running -= 1
                else:
                    latest[i] = update
                now = time.perf_counter()
                if (
                    running
                    and not pacer.due(now)
                    and not (
                        update is not None
                        and (update.done or update.answer != shown[i][0] or painters[i].changed(update.cells))
                    )
                ):
                    continue
                yield (*panels(), "", status(), None, None)
                pacer.sent(now)
        finally:
            stop.set()
            STOPS.finish(session, stop)
        for t in threads:
            t.join(timeout=5)
        metrics = [truth_metrics(u.cells, prep.truth_cells) for u in latest]
        summary = disagreement_summary([e.label for e in engines], latest, req.options)
        out = []
        for j, e in enumerate(engines):
            u = latest[j]
            out += [painters[j].show(u.cells), u.text, answer_html(u, req.options, prep.expected, e.label)]
        out += unused
        stopped = any(u.meta.get("stopped") for u in latest)
        lines = [
            f"{'Stopped by the user after' if stopped else 'Compared in'} {time.perf_counter() - t0:.2f} s."
        ]
        for e, u, m in zip(engines, latest, metrics):
            line = f"**{html.escape(e.label, quote=False)}**: " + (
                f"error: {html.escape(u.error, quote=False)}"
                if u.error
                else f"answer {u.answer or '—'}, {len(u.cells)} cells"
            )
            if m:
                line += f", patch F1 {m['patch_f1']:.2f}, IoU {m['patch_iou']:.2f}"
            lines.append(line)
        result = {
            "summary": summary,
            "engines": [result_json(u, m, e.id) for e, u, m in zip(engines, latest, metrics)],
        }
        downloads, problem = self._compare_downloads(
            engines, latest, metrics, prep, painters, files.owner, time.perf_counter() - t0
        )
        if problem:
            lines.append(f"⚠ {html.escape(problem, quote=False)}")
        yield (*out, summary, "\n\n".join(lines), result, downloads)

    def _compare_downloads(
        self,
        engines: list[Engine],
        updates: list[Update],
        metrics: list,
        prep: Prepared,
        painters: list[OverlayPainter],
        owner: str | None,
        elapsed: float,
    ) -> tuple[list[str] | None, str | None]:
        """Each engine's record (JSON) and overlay (PNG), named like a single inspection's downloads."""
        paths: list[str] = []
        for e, u, m, painter in zip(engines, updates, metrics, painters, strict=True):
            record = build_record(
                prep.request,
                u,
                engine_label=e.label,
                truth=_truth(m, prep),
                names=prep.names,
                elapsed_s=elapsed,
            )
            try:
                paths += write_outputs(
                    record,
                    painter.full_size(u.cells),
                    folder=self.records_dir,
                    owner=owner,
                    stem=download_stem(prep.names.get("query"), e.id),
                )
            except RecordWriteError as err:
                return None, str(err)
        return paths, None


def public(updates: Iterator[Update]) -> Iterator[Update]:
    """An engine's updates as the page and the record show them: no server path in an error."""
    for update in updates:
        if update.error:
            update.error = hide_paths(update.error)
        yield update


def _truth(metrics: dict | None, prep: Prepared) -> dict | None:
    if metrics is None and prep.expected is None:
        return None
    out = dict(metrics or {})
    if prep.truth_cells is not None:
        out["cells"] = sorted([list(c) for c in prep.truth_cells])
    if prep.expected:
        out["answer"] = prep.expected
    return out


def disagreement_summary(labels: list[str], updates: list[Update], options: dict[str, str] | None) -> str:
    """One line: do the engines agree on the answer, and how much do their segmentations overlap?"""
    answers = [u.answer for u in updates]
    named = ", ".join(f"{lab} → {a or '—'}" for lab, a in zip(labels, answers))
    if any(u.error for u in updates):
        failed = [lab for lab, u in zip(labels, updates) if u.error]
        head = f"{', '.join(failed)} failed; "
    else:
        head = ""
    if len(set(answers)) == 1 and answers[0] is not None:
        text = (options or {}).get(answers[0], "")
        head += f"All agree on {answers[0]}{(' (' + text + ')') if text else ''}"
    else:
        head += f"Answers differ: {named}"
    pairs = []
    for i in range(len(updates)):
        for j in range(i + 1, len(updates)):
            a, b = updates[i].cells, updates[j].cells
            if a or b:
                pairs.append(f"{labels[i]}/{labels[j]} {seg_iou(a, b):.2f}")
    seg = ("; segmentation IoU " + ", ".join(pairs)) if pairs else "; no engine marked any cell"
    return head + seg + "."
