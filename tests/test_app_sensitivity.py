"""The sensitivity slider re-thresholds the shown comparator result live, without a new comparison.

One served app for the module (the comparator first, the tiny language model beside it), driven by
gradio_client (`/inspect`, `/rethreshold`) and once by chromium. Every comparison the server makes is
counted (`judo.comparator.compare.compare_prepared`, which every comparison and calibration goes
through), so "no new comparison" is measured, not assumed.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from tests.app_server import EXAMPLES, REPO, browser_page, inspect_args, serve_config
from tests.test_browser import EXAMPLE_TITLE, sync_playwright  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "02.png"
MASK = EXAMPLES / "bottle" / "bottle-contamination-000_mask.png"
# /rethreshold's return order (judo.app.retune's docstring)
OVERLAY, TEXT, ANSWER, STATUS, RESULT, RECORD, OVERLAY_PNG, LEGEND, NOTE = range(9)


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    """The app (comparator by default, tiny LM too), its record hook's log, and a count of comparisons."""
    from judo.engines import load_config

    compare_module = importlib.import_module("judo.comparator.compare")
    counted = {"comparisons": 0}
    real = compare_module.compare_prepared

    def counting(*args, **kwargs):
        counted["comparisons"] += 1
        return real(*args, **kwargs)

    told: list[dict] = []

    def on_record(record, **context):
        told.append({"record": record, **context})

    env = {
        "JUDO_ENGINE_TINY_CHECKPOINT": str(tiny_model_dir),
        "JUDO_ENGINES": "comparator,tiny",
        "JUDO_DEFAULT_ENGINE": "comparator",
    }
    config = load_config(REPO / "configs" / "tiny.yaml", env=env)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compare_module, "compare_prepared", counting)
        with serve_config(config, on_record=on_record) as app:
            yield app.url, told, counted


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def _inspect(client, sensitivity=1.0, engine="comparator"):
    from gradio_client import handle_file

    args = inspect_args(
        handle_file(str(QUERY)),
        handle_file(str(TEMPLATE)),
        engine=engine,
        mask=handle_file(str(MASK)),
        sensitivity=sensitivity,
    )
    job = client.submit(*args, api_name="/inspect")
    for _ in job:
        pass
    return job.outputs()[-1]


def _left_alone(value) -> bool:
    """An output the handler did not touch (Gradio's bare update, or nothing)."""
    return value is None or value == {"__type__": "update"}


def _cells(result: dict) -> set[tuple[int, int]]:
    return {tuple(c) for c in result["cells"]}


def test_the_slider_rethresholds_the_shown_result_as_a_fresh_run_would(served):
    url, told, counted = served
    client = _client(url)
    first = _inspect(client)
    shown = first[5]
    assert shown["error"] is None and shown["comparator"]["sensitivity"] == 1.0
    run_record = told[-1]["record"]
    comparisons = counted["comparisons"]
    elapsed_ms = shown["comparator"]["elapsed_ms"]

    high = client.predict(4.0, "Overlay", api_name="/rethreshold")
    # low enough that cells drop although threshold growth keeps neighbours at 0.7x (threshold.py)
    low = client.predict(0.4, "Overlay", api_name="/rethreshold")
    assert counted["comparisons"] == comparisons, "re-thresholding compared nothing"
    for out, s in ((high, 4.0), (low, 0.4)):
        assert out[RESULT]["comparator"]["sensitivity"] == s
        assert out[RESULT]["comparator"]["elapsed_ms"] == elapsed_ms, "the kept comparison, not a new one"
        assert out[RESULT]["retuned_from"] == run_record["id"]
        assert out[NOTE].startswith(f"Re-thresholded at sensitivity {s:g} from the kept comparison")
    # monotonic: more sensitive, more cells (a superset); less sensitive, fewer
    assert _cells(low[RESULT]) <= _cells(shown) <= _cells(high[RESULT])
    assert len(_cells(low[RESULT])) < len(_cells(shown)) < len(_cells(high[RESULT]))
    # the status still names the run (its time), and says what changed
    run_line = first[4].split("\n\n")[0]
    assert "finished in" in run_line and low[STATUS].split("\n\n")[0] == run_line
    assert f"{len(_cells(low[RESULT]))} cells" in low[STATUS]

    # each re-thresholded result is a record of its own: downloadable, and logged with its sensitivity
    retuned = [t for t in told if (t["record"]["extra"] or {}).get("retuned_from") == run_record["id"]]
    assert [t["record"]["extra"]["comparator"]["sensitivity"] for t in retuned] == [4.0, 0.4]
    assert all(t["kind"] == "single" and t["product"] == "bottle" for t in retuned)
    saved = json.loads(Path(low[RECORD]).read_text(encoding="utf-8"))
    assert saved["extra"]["comparator"]["sensitivity"] == 0.4 and saved["cells"] == low[RESULT]["cells"]
    assert saved["id"] != run_record["id"] and Path(low[OVERLAY_PNG]).suffix == ".png"

    # exactly what a fresh run at that sensitivity gives: cells, answer, text, scores
    for out, s in ((high, 4.0), (low, 0.4)):
        fresh = _inspect(client, sensitivity=s)
        assert _cells(fresh[5]) == _cells(out[RESULT]), s
        assert fresh[5]["answer"] == out[RESULT]["answer"] and fresh[2] == out[TEXT], s
        assert fresh[5]["comparator"]["scores"] == out[RESULT]["comparator"]["scores"], s
        assert fresh[5]["comparator"]["borderline"] == out[RESULT]["comparator"]["borderline"], s
        assert fresh[3] == out[ANSWER], s


def test_nothing_to_rethreshold_yet_or_a_language_model_result(served):
    url, told, counted = served
    client = _client(url)  # its own session: another client's result is not its to re-threshold
    before = len(told)
    out = client.predict(2.0, "Overlay", api_name="/rethreshold")
    assert out[NOTE].startswith("Nothing to re-threshold yet: run Inspect with the comparator first")
    assert all(_left_alone(out[i]) for i in (OVERLAY, RESULT, RECORD, STATUS)) and len(told) == before

    lm = _inspect(client, engine="tiny")
    assert lm[5]["engine"] == "tiny"
    before, comparisons = len(told), counted["comparisons"]
    out = client.predict(2.0, "Heat map", api_name="/rethreshold")
    assert "a language model: the sensitivity does not change it" in out[NOTE]
    assert "Nothing was changed." in out[NOTE]
    assert all(_left_alone(out[i]) for i in (OVERLAY, RESULT, RECORD, STATUS))
    assert len(told) == before and counted["comparisons"] == comparisons

    # a bad value (what an API client can send) is one sentence, and the kept result stays usable
    _inspect(client)
    for bad in ("abc", 0, 1000):
        out = client.predict(bad, "Overlay", api_name="/rethreshold")
        assert out[NOTE].startswith("The sensitivity must be a number above 0"), bad
    out = client.predict(2.0, "Overlay", api_name="/rethreshold")
    assert out[NOTE].startswith("Re-thresholded at sensitivity 2")


def test_in_the_browser_the_slider_changes_the_cells_without_a_new_run(served, sync_playwright):  # noqa: F811
    url, told, counted = served
    status = "() => document.querySelector('#judo-status')?.innerText || ''"
    overlay_src = "() => document.querySelector('#judo-overlay img')?.src || ''"
    with browser_page(sync_playwright, url, example=EXAMPLE_TITLE) as page:
        page.locator("#judo-run").click()
        page.wait_for_function(f"() => ({status})().includes('finished in')", timeout=60_000)
        page.wait_for_function(f"() => ({overlay_src})() !== ''", timeout=10_000)
        run_line = page.evaluate(status).split("\n")[0]
        cells_before = int(re.search(r"\((\d+) predicted", page.evaluate(status)).group(1))
        src_before = page.evaluate(overlay_src)
        logged, comparisons = len(told), counted["comparisons"]

        note = "() => document.querySelector('#judo-retune-note')?.innerText || ''"
        page.wait_for_function(f"() => ({note})().includes('re-threshold this result')", timeout=10_000)
        page.get_by_role("button", name=re.compile("Comparator settings")).click()
        track = page.locator("#judo-sensitivity input[type=range]")
        track.wait_for(timeout=10_000)
        track.scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # the accordion has opened
        box = track.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.2, y)  # near 1.0
        page.mouse.down()
        page.mouse.move(box["x"] + 2, y, steps=8)  # drag to the least sensitive end
        page.mouse.up()
        page.wait_for_function(f"() => ({note})().includes('Re-thresholded')", timeout=20_000)
        page.wait_for_function(f"() => ({overlay_src})() !== {json.dumps(src_before)}", timeout=10_000)
        text = page.evaluate(status)
        assert text.split("\n")[0] == run_line, "the same run, re-thresholded"
        cells_after = int(re.search(r"\((\d+) predicted", text).group(1))
        assert cells_after < cells_before
        assert counted["comparisons"] == comparisons, "no new comparison"
        assert len(told) == logged + 1 and told[-1]["record"]["extra"]["retuned_from"]
        assert told[-1]["record"]["extra"]["comparator"]["sensitivity"] < 0.5

        src_overlay = page.evaluate(overlay_src)
        page.locator("#judo-view").get_by_text("Heat map", exact=True).click()
        page.wait_for_function(
            "() => (document.querySelector('#judo-legend')?.innerText || '').includes('below threshold')",
            timeout=10_000,
        )
        legend = page.locator("#judo-legend").inner_text()
        assert "threshold" in legend and "strong" in legend and "truth" in legend
        assert "borderline" not in legend, "the heat map draws no cells: its legend names none"
        page.wait_for_function(f"() => ({overlay_src})() !== {json.dumps(src_overlay)}", timeout=10_000)
        assert counted["comparisons"] == comparisons and len(told) == logged + 1

        # The keyboard moves the slider too, and the shown result follows it (one record, as for a drag).
        track.focus()
        page.keyboard.press("End")  # the most sensitive end
        page.wait_for_function(f"() => ({note})().includes('sensitivity 4')", timeout=20_000)
        assert len(told) == logged + 2 and told[-1]["record"]["extra"]["comparator"]["sensitivity"] == 4.0
        assert counted["comparisons"] == comparisons


def test_the_engine_and_the_rethreshold_say_the_same(tmp_path):
    """One function turns a comparison into text/answer/meta: the engine's final update at a sensitivity
    is the kept result's `comparison_update` at that sensitivity."""
    from judo.engines.base import InspectionRequest
    from judo.engines.comparator import ComparatorEngine, at_sensitivity, comparison_update
    from judo.images import load_image

    def request(sensitivity=None):  # new images each time: the engine compares them afresh
        return InspectionRequest(
            load_image(QUERY),
            load_image(TEMPLATE),
            "Is there any defect in the object?",
            {"A": "Yes.", "B": "No."},
            sensitivity=sensitivity,
        )

    engine = ComparatorEngine()
    kept = engine.answer(request()).measurement
    assert kept is not None
    for s in (0.5, 3.0):
        fresh = engine.answer(request(s))
        again = comparison_update(at_sensitivity(kept, s), request(s), engine.engine_meta())
        assert (fresh.text, fresh.cells, fresh.answer) == (again.text, again.cells, again.answer)
        timeless = [
            {k: v for k, v in u.meta["comparator"].items() if k != "elapsed_ms"} for u in (fresh, again)
        ]
        assert timeless[0] == timeless[1]  # the time is the comparison's: the kept one took its own


def test_kept_results_are_per_session_bounded_and_refuse_what_cannot_be_rethresholded():
    """A stopped or failed comparator run has nothing to re-threshold (one sentence each); the store
    keeps the newest sessions only."""
    from judo.app.inputs import prepare_inputs
    from judo.app.retune import KeptResults, Shown
    from judo.engines.base import Update
    from judo.engines.comparator import ComparatorEngine

    engine = ComparatorEngine()
    prep = prepare_inputs(
        str(QUERY), str(TEMPLATE), "Is there any defect in the object?", "A. Yes.\nB. No.", "", None, ""
    )
    measured = engine.answer(prep.request)
    stopped = Update(done=True, meta={"stopped": True})
    failed = Update(done=True, error="Comparison failed: boom")

    def shown(update):
        return Shown(engine, prep, update, [], 0.1, "r1", None)

    assert shown(measured).refusal() is None
    assert shown(stopped).refusal().startswith("The shown comparator run was stopped")
    assert shown(failed).refusal().startswith("The shown comparator run failed")
    kept = KeptResults(size=2)
    for session in ("a", "b", "c"):
        kept.keep(session, shown(measured))
    assert kept.get("a") is None and kept.get("b") is not None and kept.get("c") is not None
    kept.forget("c")
    assert kept.get("c") is None
