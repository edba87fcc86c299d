"""Compare: two or three engines on the same input, in threads, merged into one paced stream of panels,
ending with each engine's record and overlay for download."""

from __future__ import annotations

import html
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from judo.app.api import MAX_COMPARE, CompareForm, CompareView, PanelView
from judo.app.downloads import RecordWriteError, write_outputs
from judo.app.inputs import InputProblem, Prepared, prepare_inputs, settings_from
from judo.app.owner import owner_of_request
from judo.app.pictures import OverlayPainter, ShownFiles
from judo.app.streaming import STOPS, Pacer, public, session_of
from judo.app.views import answer_html, disagreement_summary, result_json
from judo.engines.base import Engine, Update
from judo.engines.comparator import borderline_of
from judo.record import build_record, download_stem, truth_metrics, truth_section

if TYPE_CHECKING:
    from transformers import GenerationConfig

    from judo.app.runner import Runner


def compare_run(runner: Runner, form: CompareForm, request: Any = None) -> Iterator[CompareView]:
    """Validate, then stream the comparison; bad input is one sentence in the status."""
    import gradio as gr

    t0 = time.perf_counter()
    try:
        ids = [i for i in (form.engines or []) if i]
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise InputProblem(f"Pick two or three engines to compare (got {len(ids)}).")
        engines = [runner.engine(i) for i in ids]
        prep = prepare_inputs(
            form.query, form.template, form.question, form.options, form.category, form.mask, form.expected
        )
        settings = settings_from(form.max_new_tokens, form.do_sample, form.temperature, form.top_p)
    except InputProblem as err:
        gr.Warning(str(err))
        yield CompareView(
            panels=[PanelView(answer=answer_html(None, None)) for _ in range(MAX_COMPARE)],
            status=f"**Cannot compare:** {html.escape(str(err), quote=False)}",
            result={"error": str(err), "done": True},
        )
        return
    files = ShownFiles(owner_of_request(request))
    try:
        yield from _stream(runner, engines, prep, files, t0, request, settings)
    finally:  # after the final yield (Gradio has copied the pictures), or when the client went away
        files.close()


def _stream(
    runner: Runner,
    engines: list[Engine],
    prep: Prepared,
    files: ShownFiles,
    t0: float,
    request: Any,
    settings: GenerationConfig,
) -> Iterator[CompareView]:
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
    names = ", ".join(e.label for e in engines)

    def view() -> CompareView:
        panels = []
        for j, e in enumerate(engines):
            u = latest[j]
            if (u.answer, u.done) != shown[j]:
                answers[j] = answer_html(
                    u if u.done or u.answer else None, req.options, prep.expected, e.label
                )
                shown[j] = (u.answer, u.done)
            panels.append(PanelView(painters[j].show(u.cells), u.text, answers[j]))
        doing = "Stopping" if stop.is_set() else "Comparing"
        return CompareView(panels, status=f"{doing} {names}… {time.perf_counter() - t0:.1f} s")

    yield view()
    for t in threads:
        t.start()
    running = len(engines)
    pacer = Pacer(runner.interval)
    try:
        while running:
            try:
                i, update = events.get(timeout=0.5)
            except queue.Empty:  # no news for a while: the clock moves on
                yield view()
                continue
            if update is None:
                running -= 1
            else:
                latest[i] = update
            now = time.perf_counter()
            news = update is not None and (
                update.done or update.answer != shown[i][0] or painters[i].changed(update.cells)
            )
            if running and not pacer.due(now) and not news:
                continue
            yield view()
            pacer.sent(now)
    finally:
        stop.set()
        STOPS.finish(session, stop)
    for t in threads:
        t.join(timeout=5)
    yield _final(runner, engines, latest, prep, painters, files.owner, t0, request)


def _final(
    runner: Runner,
    engines: list[Engine],
    latest: list[Update],
    prep: Prepared,
    painters: list[OverlayPainter],
    owner: str | None,
    t0: float,
    request: Any,
) -> CompareView:
    req = prep.request
    metrics = [truth_metrics(u.cells, prep.truth_cells) for u in latest]
    summary = disagreement_summary([e.label for e in engines], latest, req.options)
    panels = [
        PanelView(
            painters[j].show(u.cells, borderline_of(u)),
            u.text,
            answer_html(u, req.options, prep.expected, e.label),
        )
        for j, (e, u) in enumerate(zip(engines, latest, strict=True))
    ]
    stopped = any(u.meta.get("stopped") for u in latest)
    lines = [f"{'Stopped by the user after' if stopped else 'Compared in'} {time.perf_counter() - t0:.2f} s."]
    for e, u, m in zip(engines, latest, metrics, strict=True):
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
        "engines": [result_json(u, m, e.id) for e, u, m in zip(engines, latest, metrics, strict=True)],
    }
    downloads, problems = _downloads(
        runner, engines, latest, metrics, prep, painters, owner, time.perf_counter() - t0, request
    )
    lines += [f"⚠ {html.escape(p, quote=False)}" for p in problems]
    return CompareView(panels, summary, "\n\n".join(lines), result, downloads)


def _downloads(
    runner: Runner,
    engines: list[Engine],
    updates: list[Update],
    metrics: list,
    prep: Prepared,
    painters: list[OverlayPainter],
    owner: str | None,
    elapsed: float,
    request: Any,
) -> tuple[list[str] | None, list[str]]:
    """Each engine's record (JSON) and overlay (PNG), named like a single inspection's downloads; every
    record also goes to the runner's record hook. Returns the paths (None when any failed) and problems."""
    paths: list[str] = []
    problems: list[str] = []
    writable = True
    for e, u, m, painter in zip(engines, updates, metrics, painters, strict=True):
        record = build_record(
            prep.request,
            u,
            engine_label=e.label,
            truth=truth_section(m, prep.truth_cells, prep.expected),
            names=prep.names,
            elapsed_s=elapsed,
        )
        record_path = None
        if writable:
            try:
                written = write_outputs(
                    record,
                    painter.full_size(u.cells, borderline_of(u)),
                    folder=runner.records_dir,
                    owner=owner,
                    stem=download_stem(prep.names.get("query"), e.id),
                )
                paths += written
                record_path = written[0]
            except RecordWriteError as err:
                writable = False
                problems.append(str(err))
        if problem := runner.told(record, record_path, request, prep, "compare"):
            problems.append(f"{e.label}: {problem}")
    return (paths if writable else None), problems
