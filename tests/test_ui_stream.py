"""How the inspect handler streams: values instead of gr.skip(), pictures written once per change, paced
text that never delays the final update. Driven in-process with the real tiny engine (no server)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from judo.ui_run import UPDATE_BUDGET, OverlayPainter, Pacer, Runner, ShownFiles
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


def _inspect(runner: Runner, tokens: int = 32) -> list[tuple]:
    question, options = "Is there any defect in the object?", "A. Yes.\nB. No."
    return list(
        runner.inspect(
            str(QUERY),
            str(TEMPLATE),
            question,
            options,
            "tiny",
            "bottle",
            None,
            "",
            False,
            tokens,
            False,
            0.7,
            0.9,
        )
    )


def test_inspect_yields_values_only_and_the_full_text_last(engines):
    outs = _inspect(Runner(engines, stream_interval_s=0.0))  # every engine update is sent
    assert len(outs) >= 4, "a first update, streamed text, a final update"
    skipped = [o for out in outs for o in out if isinstance(o, dict) and o.get("__type__") == "update"]
    assert not skipped, "gr.skip() makes Gradio rebuild the component's config on every update"
    texts = [out[2] for out in outs]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:])), "streamed text only grows"
    final = outs[-1]
    assert final[5]["done"] and final[5]["error"] is None and final[2] == texts[-1] != ""
    if not final[5]["cells"]:  # the tiny model's text has no seg here: the overlay never changes
        assert len({out[0] for out in outs}) == 1, "one overlay file, re-sent unchanged"
    assert final[6].endswith(".json") and final[7].endswith(".png")
    assert not os.path.exists(final[0]), "the run's display files are removed once Gradio has copied them"


def test_first_words_go_out_at_once_and_the_final_update_does_not_wait(engines):
    t0 = time.perf_counter()
    outs = _inspect(Runner(engines, stream_interval_s=30.0))  # text refreshes paced far apart
    assert time.perf_counter() - t0 < 30
    # updates that only move the status clock (the engine was silent for TICK_S) are left out
    outs = [outs[0]] + [b for a, b in zip(outs, outs[1:], strict=False) if b[:4] != a[:4] or b[5] is not None]
    assert [bool(out[2]) for out in outs] == [False, True, True], "start, first words, final"
    assert outs[2][2].startswith(outs[1][2]) and len(outs[2][2]) > len(outs[1][2])
    assert outs[2][5]["done"]


def _stopped_run(runner: Runner, session: str, stop_at_yield: int | None) -> list[tuple]:
    """An inspection of the browser session ``session``, with Stop pressed before it begins (None) or
    right after its ``stop_at_yield``-th update (the engine has produced no text yet at the first)."""
    import gradio as gr

    from judo.ui_run import STOPS

    request = gr.Request(session_hash=session)
    STOPS.arm(session)  # what pressing Inspect does, before the run waits in the queue
    if stop_at_yield is None:
        assert STOPS.stop(session), "a Stop pressed while the run waits reaches it"
    outs = []
    for out in runner.inspect(
        str(QUERY),
        str(TEMPLATE),
        "Is there any defect in the object?",
        "A. Yes.\nB. No.",
        "tiny",
        "bottle",
        request=request,
    ):
        outs.append(out)
        if len(outs) == stop_at_yield:
            assert STOPS.stop(session)
    return outs


@pytest.mark.parametrize("stop_at_yield", [None, 1], ids=["before-the-run-began", "before-the-first-token"])
def test_an_early_stop_ends_with_a_record_that_says_so(engines, stop_at_yield):
    import json

    from judo.ui_run import STOPS

    session = f"early-stop-{stop_at_yield}"
    outs = _stopped_run(Runner(engines), session, stop_at_yield)
    final = outs[-1]
    assert final[5]["done"] and final[5]["stopped"] and final[5]["error"] is None
    assert "stopped by the user" in final[4] and "stopping" not in final[4]
    assert not final[2].endswith("\ufffd"), (
        "a stop that cuts a character's bytes leaves no replacement character"
    )
    record = json.loads(Path(final[6]).read_text(encoding="utf-8"))
    assert record["stopped"] is True and any("Stopped by the user" in w for w in record["warnings"])
    assert not STOPS.stop(session), "the run let go of its stop event"


def test_the_status_clock_counts_up_while_the_engine_is_silent():
    from judo.ui_run import ticking

    def slow():  # an engine that prefills for 0.35 s before its only update
        time.sleep(0.35)
        yield "done"

    t0 = time.perf_counter()
    seen = list(ticking(slow(), 0.1))
    assert seen[-1] == "done" and seen.count(None) >= 2 and time.perf_counter() - t0 < 2


def test_the_running_status_shows_the_time_so_far(engines):
    import re

    outs = _inspect(Runner(engines, stream_interval_s=0.0))
    clocks = [float(m.group(1)) for out in outs[:-1] if (m := re.search(r"running… ([\d.]+) s", out[4]))]
    assert len(clocks) >= 2 and clocks == sorted(clocks) and clocks[-1] > clocks[0]


def test_downloads_are_named_after_the_part_the_engine_and_the_time(engines):
    import re

    final = _inspect(Runner(engines))[-1]
    for path, suffix in ((final[6], r"\.json"), (final[7], r"-overlay\.png")):
        name = Path(path).name
        assert re.fullmatch(rf"bottle-contamination-000-tiny-\d{{8}}-\d{{6}}-[0-9a-f]{{16}}{suffix}", name), (
            name
        )


def test_a_stopped_compare_says_so(engines):
    import gradio as gr

    from judo.engines.comparator import ComparatorEngine
    from judo.ui_run import STOPS

    session = "early-stop-compare"
    STOPS.arm(session)
    assert STOPS.stop(session)
    outs = list(
        Runner([*engines, ComparatorEngine()]).compare(
            str(QUERY),
            str(TEMPLATE),
            "Is there any defect in the object?",
            "A. Yes.\nB. No.",
            ["tiny", "comparator"],
            "bottle",
            request=gr.Request(session_hash=session),
        )
    )
    final = outs[-1]
    assert final[10].startswith("Stopped by the user after") and len(final[12]) == 4
