"""How the inspect handler streams: values instead of gr.skip(), pictures written once per change, paced
text that never delays the final update. Driven in-process with the real tiny engine (no server)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from judo.app.api import CompareForm, InspectForm, InspectView
from judo.app.pictures import OverlayPainter, ShownFiles
from judo.app.runner import Runner
from judo.app.streaming import UPDATE_BUDGET, Pacer
from tests.app_server import EXAMPLES, REPO

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"


def test_pacer_spaces_refreshes_by_the_cost_of_the_last_update():
    pacer = Pacer(0.05)
    assert pacer.gap == 0.05
    started = time.perf_counter() - 0.01  # Gradio took ~10 ms to handle the update
    pacer.sent(started)
    assert pacer.gap == pytest.approx(0.01 / UPDATE_BUDGET, rel=0.5)
    assert not pacer.due(started + 0.05) and pacer.due(started + pacer.gap)
    pacer.sent(time.perf_counter())  # a cheap update: back to the configured interval
    assert pacer.gap == 0.05
    pacer.sent(time.perf_counter() - 1.0)  # one very slow update does not freeze the page
    assert pacer.gap == pacer.longest == 0.5


def test_overlay_file_is_written_only_when_the_cells_change():
    files = ShownFiles()
    painter = OverlayPainter(Image.new("RGB", (64, 48), "white"), files=files)
    first = painter.show(set())
    assert painter.show(set()) == first  # unchanged: the same file, re-sent as the same value
    red = painter.show({(0, 0)})
    assert red != first and painter.show({(0, 0)}) == red
    with Image.open(red) as img:
        assert img.size == (64, 48) and img.getpixel((1, 1))[0] > img.getpixel((1, 1))[1]
    folder = os.path.dirname(red)
    files.close()
    assert not os.path.exists(folder)


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    from judo.engines import build_engines, load_config

    config = load_config(
        REPO / "configs" / "tiny.yaml",
        env={"JUDO_ENGINES": "tiny", "JUDO_ENGINE_TINY_CHECKPOINT": str(tiny_model_dir)},
    )
    return build_engines(config)


QUESTION, OPTIONS = "Is there any defect in the object?", "A. Yes.\nB. No."


def _inspect(runner: Runner, tokens: int = 32) -> list[InspectView]:
    form = InspectForm(str(QUERY), str(TEMPLATE), QUESTION, OPTIONS, "tiny", "bottle", max_new_tokens=tokens)
    return list(runner.inspect(form))


def test_inspect_yields_values_only_and_the_full_text_last(engines):
    outs = _inspect(Runner(engines, stream_interval_s=0.0))  # every engine update is sent
    assert len(outs) >= 4, "a first update, streamed text, a final update"
    values = [v for out in outs for v in out.values().values()]
    skipped = [v for v in values if isinstance(v, dict) and v.get("__type__") == "update"]
    assert not skipped, "gr.skip() makes Gradio rebuild the component's config on every update"
    texts = [out.output_text for out in outs]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:])), "streamed text only grows"
    final = outs[-1]
    assert final.result["done"] and final.result["error"] is None and final.output_text == texts[-1] != ""
    if not final.result["cells"]:  # the tiny model's text has no seg here: the overlay never changes
        assert len({out.overlay for out in outs}) == 1, "one overlay file, re-sent unchanged"
    assert final.record.endswith(".json") and final.overlay_png.endswith(".png")
    assert not os.path.exists(final.overlay), (
        "the run's display files are removed once Gradio has copied them"
    )


def test_first_words_go_out_at_once_and_the_final_update_does_not_wait(engines):
    t0 = time.perf_counter()
    outs = _inspect(Runner(engines, stream_interval_s=30.0))  # text refreshes paced far apart
    assert time.perf_counter() - t0 < 30

    # updates that only move the status clock (the engine was silent for TICK_S) are left out
    def shown(v: InspectView) -> tuple:
        return v.overlay, v.visual_prior, v.output_text, v.answer_html

    outs = [outs[0]] + [b for a, b in zip(outs, outs[1:]) if shown(b) != shown(a) or b.result is not None]
    assert [bool(out.output_text) for out in outs] == [False, True, True], "start, first words, final"
    assert outs[2].output_text.startswith(outs[1].output_text)
    assert len(outs[2].output_text) > len(outs[1].output_text)
    assert outs[2].result["done"]


def _stopped_run(runner: Runner, session: str, stop_at_yield: int | None) -> list[InspectView]:
    """An inspection of the browser session ``session``, with Stop pressed before it begins (None) or
    right after its ``stop_at_yield``-th update (the engine has produced no text yet at the first)."""
    import gradio as gr

    from judo.app.streaming import STOPS

    request = gr.Request(session_hash=session)
    STOPS.arm(session)  # what pressing Inspect does, before the run waits in the queue
    if stop_at_yield is None:
        assert STOPS.stop(session), "a Stop pressed while the run waits reaches it"
    outs = []
    for out in runner.inspect(
        InspectForm(str(QUERY), str(TEMPLATE), QUESTION, OPTIONS, "tiny", "bottle"), request
    ):
        outs.append(out)
        if len(outs) == stop_at_yield:
            assert STOPS.stop(session)
    return outs


@pytest.mark.parametrize("stop_at_yield", [None, 1], ids=["before-the-run-began", "before-the-first-token"])
def test_an_early_stop_ends_with_a_record_that_says_so(engines, stop_at_yield):
    import json

    from judo.app.streaming import STOPS

    session = f"early-stop-{stop_at_yield}"
    outs = _stopped_run(Runner(engines), session, stop_at_yield)
    final = outs[-1]
    assert final.result["done"] and final.result["stopped"] and final.result["error"] is None
    assert "stopped by the user" in final.status and "stopping" not in final.status
    assert not final.output_text.endswith("\ufffd"), (
        "a stop that cuts a character's bytes leaves no replacement character"
    )
    record = json.loads(Path(final.record).read_text(encoding="utf-8"))
    assert record["stopped"] is True and any("Stopped by the user" in w for w in record["warnings"])
    assert not STOPS.stop(session), "the run let go of its stop event"


def test_the_status_clock_counts_up_while_the_engine_is_silent():
    from judo.app.streaming import ticking

    def slow():  # an engine that prefills for 0.35 s before its only update
        time.sleep(0.35)
        yield "done"

    t0 = time.perf_counter()
    seen = list(ticking(slow(), 0.1))
    assert seen[-1] == "done" and seen.count(None) >= 2 and time.perf_counter() - t0 < 2


def test_the_running_status_shows_the_time_so_far(engines):
    import re

    outs = _inspect(Runner(engines, stream_interval_s=0.0))
    clocks = [float(m.group(1)) for out in outs[:-1] if (m := re.search(r"running… ([\d.]+) s", out.status))]
    assert len(clocks) >= 2 and clocks == sorted(clocks) and clocks[-1] > clocks[0]


def test_downloads_are_named_after_the_part_the_engine_and_the_time(engines):
    import re

    final = _inspect(Runner(engines))[-1]
    for path, suffix in ((final.record, r"\.json"), (final.overlay_png, r"-overlay\.png")):
        name = Path(path).name
        assert re.fullmatch(rf"bottle-contamination-000-tiny-\d{{8}}-\d{{6}}-[0-9a-f]{{16}}{suffix}", name), (
            name
        )


def test_a_stopped_compare_says_so(engines):
    import gradio as gr

    from judo.app.streaming import STOPS
    from judo.engines.comparator import ComparatorEngine

    session = "early-stop-compare"
    STOPS.arm(session)
    assert STOPS.stop(session)
    outs = list(
        Runner([*engines, ComparatorEngine()]).compare(
            CompareForm(str(QUERY), str(TEMPLATE), QUESTION, OPTIONS, ["tiny", "comparator"], "bottle"),
            gr.Request(session_hash=session),
        )
    )
    final = outs[-1]
    assert final.status.startswith("Stopped by the user after") and len(final.files) == 4


# ------------------------------------------------------------------------------------ record hook
class Told:
    """A record hook that keeps what it is told, and answers (or raises) what it is given."""

    def __init__(self, answer: str | None = None, error: Exception | None = None) -> None:
        self.calls: list[dict] = []
        self.answer, self.error = answer, error

    def __call__(self, record, **context):
        self.calls.append({"record": record, **context})
        if self.error is not None:
            raise self.error
        return self.answer


def test_each_finished_inspection_is_told_once_stopped_and_compared_ones_too(engines):
    import gradio as gr

    from judo.app.streaming import STOPS
    from judo.engines.comparator import ComparatorEngine

    told = Told()
    runner = Runner([*engines, ComparatorEngine()], on_record=told)
    final = _inspect(runner)[-1]
    (call,) = told.calls
    assert call["kind"] == "single" and call["record_path"] == final.record
    assert call["part"] == "bottle-contamination-000" and call["product"] == "bottle" and call["user"] is None
    assert call["record"]["raw_output"] == final.output_text and call["record"]["engine"]["id"] == "tiny"

    STOPS.arm("told-stopped")
    STOPS.stop("told-stopped")  # Stop pressed before the run began: still a record, still told
    form = InspectForm(str(QUERY), str(TEMPLATE), QUESTION, OPTIONS, "comparator", "bottle")
    list(runner.inspect(form, gr.Request(session_hash="told-stopped")))
    assert len(told.calls) == 2 and told.calls[-1]["record"]["verdict"] == "stopped"

    compared = CompareForm(str(QUERY), str(TEMPLATE), QUESTION, OPTIONS, ["tiny", "comparator"], "bottle")
    final = list(runner.compare(compared))[-1]
    calls = told.calls[2:]
    assert [c["kind"] for c in calls] == ["compare", "compare"]
    assert sorted(c["record"]["engine"]["id"] for c in calls) == ["comparator", "tiny"]
    assert {c["record_path"] for c in calls} <= set(final.files)

    bad = InspectForm(None, str(TEMPLATE), QUESTION, OPTIONS, "tiny", "bottle")
    assert list(runner.inspect(bad))[-1].result["error"] and len(told.calls) == 4, "no record, no call"


@pytest.mark.parametrize(
    ("told", "said"),
    [
        (Told(error=OSError("database is locked")), "The inspection was not logged: database is locked"),
        (Told(answer="The inspection log is read-only."), "The inspection log is read-only."),
    ],
    ids=["raises", "complains"],
)
def test_a_failing_record_hook_is_a_warning_and_the_result_still_shows(told, said):
    from judo.engines.comparator import ComparatorEngine

    runner = Runner([ComparatorEngine()], on_record=told)
    form = InspectForm(str(QUERY), str(TEMPLATE), QUESTION, OPTIONS, "comparator", "bottle")
    final = list(runner.inspect(form))[-1]
    assert final.result["done"] and final.result["error"] is None and final.result["cells"]
    assert final.record.endswith(".json") and said in final.status
    assert len(told.calls) == 1


def test_the_endpoints_take_the_forms_fields_in_order_with_the_same_defaults():
    import dataclasses
    import inspect as pyinspect

    from judo.app.api import COMPARE_API, INSPECT_API, compare_endpoint, inspect_endpoint

    for endpoint, form, names in (
        (inspect_endpoint, InspectForm, INSPECT_API),
        (compare_endpoint, CompareForm, COMPARE_API),
    ):
        params = dict(pyinspect.signature(endpoint(None, {})).parameters)
        params.pop("request")
        assert tuple(params) == names == tuple(f.name for f in dataclasses.fields(form))
        defaults = {
            f.name: f.default for f in dataclasses.fields(form) if f.default is not dataclasses.MISSING
        }
        assert defaults == {n: p.default for n, p in params.items() if p.default is not p.empty}
