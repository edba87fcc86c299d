"""The shown Inspect result, live: the sensitivity slider re-thresholds it, the view toggle redraws it.

Why kept server-side: a comparison costs a tenth of a second to seconds (a bank of normals), while a new
sensitivity only re-reads the kept 16x16 cell values (`ComparisonResult.rethreshold`). So every finished
run leaves what it showed here (`Shown`, per browser session, in `KeptResults`); moving the slider
re-thresholds that result and says it through `comparison_update`, the very function the comparator
engine ends its stream with, so the answer is exactly what a fresh run at that sensitivity gives. No
comparison runs: the handlers are light events (no queue, no accelerator).

A re-thresholded result is a new inspection: it gets its own record (and downloads) with its
sensitivity, noting ``retuned_from`` the run's record id, and goes to the inspection log (kind
"single"). A language model's result has no threshold: the slider leaves it alone and says so.

The views of the shown result (`VIEWS`): the overlay (red cells, amber dashed borderline cells, green
truth on the query), the comparator's heat map (0.5 = the threshold) and the template beside the query
with its cells; the legend under the picture says what the colours mean.

`/rethreshold` (named endpoint, for API clients too) takes the sensitivity and the view and returns, in
order: the overlay, the text, the answer, the status, the result (JSON), the record (JSON), the overlay
(PNG), the legend and the note (what the slider did, or why it did nothing).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from judo.app.inputs import InputProblem, Prepared, sensitivity_from
from judo.app.pictures import DISPLAY_SIDE, OverlayPainter
from judo.app.streaming import session_of
from judo.app.views import answer_html, legend_html, result_json, status_markdown
from judo.engines.base import Engine, Update
from judo.engines.comparator import ComparatorEngine, at_sensitivity, borderline_of, comparison_update
from judo.render import GREEN, fit_within, heatmap_overlay, side_by_side

if TYPE_CHECKING:
    from judo.app.runner import Runner

OVERLAY, HEATMAP, SIDE_BY_SIDE = VIEWS = ("Overlay", "Heat map", "Side by side")

#: Sessions whose shown result is kept (the oldest go first): each keeps its images and maps (~10 MB).
KEEP_SESSIONS = 32

#: The slider's info, fixed (the page does not re-lay the slider after each run): what the slider did to
#: the shown result is the note's (`Retune.note`) to say.
SLIDER_INFO = (
    "Judged against the product's whole gallery. Moving it re-thresholds a shown comparator result at once, "
    "without a new run; a language model's result has no threshold and stays as it is."
)
NOTHING_YET = (
    "Nothing to re-threshold yet: run Inspect with the comparator first (the sensitivity is also read when "
    "it runs)."
)


def model_note(label: str) -> str:
    """What the slider says while a language model's result is shown."""
    return (
        f"The shown result is from {label}, a language model: the sensitivity does not change it (it applies "
        "to the comparator's runs)."
    )


@dataclass
class Shown:
    """The result the Inspect tab shows, as its run finished (``update``: after any re-threshold)."""

    engine: Engine
    prep: Prepared
    update: Update
    notes: list[str]  # the run's own notes (input, bank, prior): shown again with every re-threshold
    elapsed: float  # the run's time: the status still names the run after a re-threshold
    record_id: str | None  # the run's record: a re-thresholded record names it (``retuned_from``)
    owner: str | None  # whose downloads these are (judo.app.owner)
    #: The run's painter (display copy and truth stencil made once), reused by every redraw.
    painter: OverlayPainter | None = None

    def __post_init__(self) -> None:
        if self.painter is None:
            self.painter = OverlayPainter(self.prep.request.query, self.prep.truth_mask)

    def refusal(self) -> str | None:
        """Why the slider cannot re-threshold this result (None: it can)."""
        if not isinstance(self.engine, ComparatorEngine):
            return model_note(self.engine.label) + " Nothing was changed."
        if self.update.meta.get("stopped"):
            return "The shown comparator run was stopped: run Inspect again to re-threshold it."
        if self.update.measurement is None:
            return "The shown comparator run failed: run Inspect again to re-threshold it."
        return None


class KeptResults:
    """The shown result of each browser session (at most `KEEP_SESSIONS`, the oldest dropped first)."""

    def __init__(self, size: int = KEEP_SESSIONS) -> None:
        self.size = size
        self._shown: OrderedDict[str, Shown] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, session: str, shown: Shown) -> None:
        with self._lock:
            self._shown[session] = shown
            self._shown.move_to_end(session)
            while len(self._shown) > self.size:
                self._shown.popitem(last=False)

    def get(self, session: str) -> Shown | None:
        with self._lock:
            return self._shown.get(session)

    def forget(self, session: str) -> None:
        with self._lock:
            self._shown.pop(session, None)


# ----------------------------------------------------------------------------------------- views
def picture(view: str, shown: Shown) -> tuple[Image.Image, str | None]:
    """The shown result drawn in ``view`` (display size), and a note when that view cannot be had."""
    req, painter = shown.prep.request, shown.painter
    update, result = shown.update, shown.update.measurement
    if view == HEATMAP:
        if result is None:
            note = "The heat map is the comparator's measurement: this result is from a language model."
            return painter.render(update.cells), note
        img = heatmap_overlay(painter.base, result.heatmap, vmax=1.0)  # 0.5 = the threshold
        if painter.edges is not None:
            img.paste(GREEN, (0, 0), painter.edges)
        return img, None
    overlay = painter.render(update.cells, borderline_of(update))
    if view == SIDE_BY_SIDE:
        return side_by_side(fit_within(req.template, DISPLAY_SIDE), overlay), None
    return overlay, None


def legend(view: str, shown: Shown | None, note: str | None = None) -> str:
    comparator = shown is None or shown.update.measurement is not None
    return legend_html(view == HEATMAP and comparator, comparator, note)


# ----------------------------------------------------------------------------------------- events
class Retune:
    """The slider's and the view toggle's handlers for one page (components by name, dict back)."""

    def __init__(self, runner: Runner, sensitivity: gr.Slider, inspect: Any) -> None:
        self.runner = runner
        self.sensitivity = sensitivity
        self.view = inspect.view
        self.legend = inspect.legend
        self.note = inspect.retune_note
        self.outputs = inspect.outputs

    def api_outputs(self) -> list[Any]:
        """The `/rethreshold` endpoint's outputs, in the order it returns them (module docstring)."""
        names = ("overlay", "output_text", "answer_html", "status", "result", "record", "overlay_png")
        return [*(self.outputs[n] for n in names), self.legend, self.note]

    def rethreshold(self, values: dict, request: gr.Request) -> dict:
        """The shown comparator result at the slider's sensitivity: drawn, said, recorded and logged."""
        shown = self.runner.kept.get(session_of(request))
        view = values[self.view]
        if shown is None:
            return {self.note: NOTHING_YET}
        if why := shown.refusal():
            return {self.note: why}
        try:
            sensitivity = sensitivity_from(values[self.sensitivity])
        except InputProblem as err:
            return {self.note: str(err)}
        t0 = time.perf_counter()
        engine, prep = shown.engine, shown.prep
        assert isinstance(engine, ComparatorEngine)  # noqa: S101 - refusal() checked it
        result = at_sensitivity(shown.update.measurement, sensitivity)
        update = comparison_update(
            result, prep.request, {**engine.engine_meta(), "retuned_from": shown.record_id}
        )
        shown.update = update
        img, view_note = picture(view, shown)
        borderline = borderline_of(update)
        saved = self.runner.save(
            engine,
            prep,
            update,
            shown.painter.full_size(update.cells, borderline),
            shown.notes,
            elapsed=time.perf_counter() - t0,
            first_update_s=None,
            request=request,
            owner=shown.owner,
        )
        note = (
            f"Re-thresholded at sensitivity {sensitivity:g} from the kept comparison (no new run, "
            f"{(time.perf_counter() - t0) * 1000:.0f} ms): {len(update.cells)} cells, {len(borderline)} borderline."
        )
        status = status_markdown(engine.label, update, saved.notes, saved.metrics, shown.elapsed, False)
        o = self.outputs
        return {
            o["overlay"]: img,
            o["output_text"]: update.text,
            o["answer_html"]: answer_html(update, prep.request.options, prep.expected),
            o["status"]: f"{status}\n\n{note}",
            o["result"]: {**result_json(update, saved.metrics, engine.id), "retuned_from": shown.record_id},
            o["record"]: saved.record_path,
            o["overlay_png"]: saved.png_path,
            self.legend: legend(view, shown, view_note),
            self.note: note,
        }

    def switch_view(self, values: dict, request: gr.Request) -> dict:
        """The shown result redrawn in the chosen view (nothing recomputed), with its legend."""
        view = values[self.view]
        shown = self.runner.kept.get(session_of(request))
        if shown is None:
            return {self.legend: legend(view, None)}
        img, note = picture(view, shown)
        return {self.outputs["overlay"]: img, self.legend: legend(view, shown, note)}

    def after_run(self, values: dict, request: gr.Request) -> dict:
        """Once a run has finished: the note says what the slider will do to this result, and a view other
        than the overlay (the one a run streams) is drawn."""
        view = values[self.view]
        shown = self.runner.kept.get(session_of(request))
        out: dict[Any, Any] = {self.note: self.hint(shown)}
        if shown is not None:
            img, note = picture(view, shown)
            out[self.legend] = legend(view, shown, note)
            if view != OVERLAY:
                out[self.outputs["overlay"]] = img
        return out

    @staticmethod
    def hint(shown: Shown | None) -> str:
        """What moving the slider will do to the shown result."""
        if shown is None:
            return ""
        if not isinstance(shown.engine, ComparatorEngine):
            return model_note(shown.engine.label)
        if shown.refusal():
            return ""
        return (
            "Move the sensitivity slider (Comparator settings) to re-threshold this result without a new run."
        )

    def wire(self, inspect_run: Any) -> None:
        """Connect the slider (its release: a drag ended, a typed value left), the view toggle and the end
        of an Inspect run (``inspect_run``: its event). No unload handler: it holds a stream open for the
        page's whole life; `KeptResults` is bounded instead."""
        light = {"queue": False, "show_progress": "hidden"}
        self.sensitivity.release(
            self.rethreshold,
            inputs={self.sensitivity, self.view},
            outputs=self.api_outputs(),
            api_name="rethreshold",
            api_description=(
                "Re-threshold the result the Inspect tab shows (this session's last comparator inspection) at "
                "another sensitivity, without a new comparison; returns the overlay, the text, the answer, the "
                "status, the result, the record, the overlay PNG, the legend and a note."
            ),
            **light,
        )
        self.view.change(
            self.switch_view,
            inputs={self.view},
            outputs=[self.outputs["overlay"], self.legend],
            api_name=False,
            **light,
        )
        inspect_run.then(
            self.after_run,
            inputs={self.view},
            outputs=[self.note, self.legend, self.outputs["overlay"]],
            api_name=False,
            **light,
        )
