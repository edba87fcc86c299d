"""The comparator engine: the training-free query-vs-template comparison behind the engine interface.

It needs no checkpoint, so the app always has a working engine: it streams the cells it found, a
short factual explanation of what it measured (clearly labelled as a measurement, not language-model
reasoning), and answers the two question types a measurement can answer — anomaly detection and
defect localization by position. For any other question it says plainly that it cannot answer
without a language model (``answer=None``), which strict scoring counts as wrong.

What a comparison says (text, answer, cells, meta) is `comparison_update`'s, one function: the engine's
stream ends with it, and the app's live re-threshold (`judo.app.retune`) calls it on the kept result at
another sensitivity (`at_sensitivity`), so both give the very same answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from judo.engines.base import Engine, InspectionRequest, Update
from judo.grid import Cell

if TYPE_CHECKING:
    from transformers import GenerationConfig

    from judo.comparator import ComparisonResult

LABEL = "[Comparator measurement — no language model]"


def _not_meaningful(result: Any) -> str:
    """The one sentence that heads an invalid comparison's warnings (each of them is listed apart)."""
    if any("same product" in w for w in result.warnings):
        return "No meaningful comparison: the template may not show the same product."
    return "No meaningful comparison was possible for this pair (see the warnings)."


def _answer_note(answer: str | None, options: dict[str, str] | None, result: Any) -> str:
    """One sentence on the answer, or plainly why there is none (the real reason, not a guess)."""
    from judo.comparator.describe import parse_position

    if answer is not None:
        return f"Answer {answer} ({(options or {}).get(answer, '')}), from the measured differences."
    if not options:
        return "No free-text answer: that needs a language model."
    if not result.valid:
        return (
            "No answer: the comparison was judged not meaningful for this pair (see the warning), so the "
            "measurement does not answer; use a normal template of the same product."
        )
    if len(options) >= 2 and all(parse_position(v) is not None for v in options.values()):
        return "No answer: no difference stands out from the template, so there is no position to point at."
    return (
        "No answer: a measurement answers only defect detection (Yes/No) and position questions; "
        "this one needs a language-model engine."
    )


def at_sensitivity(result: ComparisonResult, sensitivity: float | None) -> ComparisonResult:
    """``result`` re-thresholded at ``sensitivity`` (None = 1), without recomputing; itself when it is
    already at that sensitivity."""
    sensitivity = sensitivity or 1.0
    return result if sensitivity == result.sensitivity else result.rethreshold(sensitivity)


def comparison_lines(result: ComparisonResult, request: InspectionRequest) -> tuple[list[str], str | None]:
    """The lines a comparison says about a request (label, account, answer note, borderline note) and
    its answer letter (None: the measurement does not answer this question)."""
    from judo.comparator import answer_anomaly_detection, answer_localization, borderline_note, describe

    answer = answer_anomaly_detection(result, request.options, request.question)
    if answer is None:
        answer = answer_localization(result, request.options)
    account = describe(result) if result.valid else _not_meaningful(result)  # the warnings say the rest
    lines = [LABEL, *account.splitlines(), _answer_note(answer, request.options, result)]
    if answer is not None and result.borderline_decision:
        lines.append(borderline_note(result))
    return lines, answer


def comparator_meta(result: ComparisonResult) -> dict[str, Any]:
    """The measurement as a record keeps it (``meta["comparator"]``)."""
    return {
        "valid": result.valid,
        "max_score": round(result.max_score, 3),
        "threshold": round(float(result.threshold), 4),
        "elapsed_ms": round(result.elapsed_ms, 1),
        "bank_size": result.bank_size,
        "normals_used": list(result.normals_used),
        "sensitivity": result.sensitivity,
        "false_alarm_rate": result.false_alarm_rate,
        "calibrated_on": result.calibration.normals if result.calibration else None,
        "borderline": sorted(result.borderline),
        "borderline_decision": result.borderline_decision,
        "scores": [[round(float(v), 3) for v in row] for row in result.scores],
    }


def borderline_of(update: Update) -> set[Cell]:
    """The borderline cells a comparator's final update names (`comparator_meta`); none for another
    engine's update, or before the final one."""
    cells = (update.meta.get("comparator") or {}).get("borderline") or []
    return {(int(r), int(c)) for r, c in cells}


def comparison_update(
    result: ComparisonResult,
    request: InspectionRequest,
    meta: dict[str, Any],
) -> Update:
    """The final update of a comparator run: cells, answer, text and meta (``meta``: the engine's own
    entries), with the result itself as its `Update.measurement`, so a caller can re-threshold it
    without a new comparison."""
    lines, answer = comparison_lines(result, request)
    final_meta = {
        **meta,
        "warnings": list(result.warnings),
        **({} if result.valid else {"headline": _not_meaningful(result)}),
        "comparator": comparator_meta(result),
        "abstained": answer is None and bool(request.options),
        "seg_present": True,  # a measurement always has a (possibly empty) cell set
    }
    return Update(
        text="".join(line + "\n" for line in lines),
        cells=set(result.cells),
        answer=answer,
        done=True,
        meta=final_meta,
        measurement=result,
    )


class ComparatorEngine(Engine):
    """The comparator behind the engine contract (decoding settings do not apply to it)."""

    kind = "comparator"

    def __init__(
        self, id: str = "comparator", label: str = "Comparator (no language model)", description: str = ""
    ) -> None:
        self.id, self.label, self.description = id, label, description
        self.checkpoint = None
        self._last: tuple[list[Any], Any] | None = None

    def engine_meta(self) -> dict[str, Any]:
        """The meta entries of every update of this engine (who answered; no decoding settings)."""
        return {
            "engine": self.id,
            "label": self.label,
            "checkpoint": None,
            "prompt_style": None,
            "settings": None,
        }

    def _compare(self, request: InspectionRequest, compare: Any) -> Any:
        """The comparison of the request's query with its template, or its bank when it has several
        (`request.templates`). Several questions in a row about the very same images (`judo eval`
        asks ~5 per picture) share one comparison; another sensitivity re-thresholds it."""
        key = [request.query, *request.templates, request.false_alarm_rate]
        last = self._last
        if last is None or len(last[0]) != len(key) or any(a is not b for a, b in zip(last[0], key)):
            templates = request.templates if len(request.templates) > 1 else request.template
            result = compare(request.query, templates, false_alarm_rate=request.false_alarm_rate)
            self._last = last = (key, result)
        return at_sensitivity(last[1], request.sensitivity)

    def stream(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Iterator[Update]:
        from judo.comparator import compare

        t0 = time.perf_counter()
        meta = self.engine_meta()
        try:
            result = self._compare(request, compare)
        except Exception as err:  # bad images are validated before; anything else is reported
            yield Update(done=True, error=f"Comparison failed: {type(err).__name__}: {err}", meta=meta)
            return
        final = comparison_update(result, request, meta)
        text = ""
        # Stream line by line (the same rhythm as a language model); the cells are shown at once.
        for line in final.text.splitlines():
            if stop_event is not None and stop_event.is_set():
                break
            text += line + "\n"
            yield Update(text=text, cells=final.cells, meta=meta)
        final.text = text
        final.meta["total_s"] = round(time.perf_counter() - t0, 4)
        yield final
