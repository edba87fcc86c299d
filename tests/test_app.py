"""The served app, driven over HTTP with gradio_client: /inspect and /compare stream, draw and record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.grid import cells_to_mask, mask_to_cells
from judo.inputs import parse_options
from tests.app_server import EXAMPLES, inspect_args, serve_tiny_app

pytestmark = pytest.mark.slow

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
MASK = EXAMPLES / "bottle" / "bottle-contamination-000_mask.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"


@pytest.fixture(scope="module")
def app(tiny_model_dir):
    with serve_tiny_app(tiny_model_dir) as served:
        yield served


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def _run(client, *args, api_name="/inspect"):
    job = client.submit(*args, api_name=api_name)
    for _ in job:
        pass
    return job.outputs()


def _is_value(x) -> bool:
    return not (isinstance(x, dict) and x.get("__type__") == "update")


def test_api_has_named_inspect_and_compare_endpoints(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert {"/inspect", "/compare"} <= set(api["named_endpoints"])
    names = [p["parameter_name"] for p in api["named_endpoints"]["/inspect"]["parameters"]]
    from judo.app.api import INSPECT_API

    assert tuple(names) == INSPECT_API


def test_inspect_needs_only_the_images_the_rest_has_defaults(client):
    from gradio_client import handle_file

    params = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/inspect"][
        "parameters"
    ]
    required = [p["parameter_name"] for p in params if not p["parameter_has_default"]]
    assert required == ["query", "template"], "mask and expected (ground truth) are optional"
    defaults = {p["parameter_name"]: p["parameter_default"] for p in params}
    assert parse_options(defaults["options"]) == {"A": "Yes.", "B": "No."}  # one line: the API page's snippet
    result = client.predict(
        query=handle_file(str(QUERY)), template=handle_file(str(TEMPLATE)), api_name="/inspect"
    )
    assert result[5]["done"] and result[5]["error"] is None and result[6].endswith(".json")


def test_inspect_streams_in_order_and_records(client):
    from gradio_client import handle_file

    outputs = _run(
        client, *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), max_new_tokens=40)
    )
    assert len(outputs) >= 3, "expected a start update, streamed updates and a final update"
    texts = [o[2] for o in outputs if _is_value(o[2])]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:])), "streamed text must only grow"
    assert "running" in outputs[0][4]
    final = outputs[-1]
    result = final[5]
    assert result["done"] and result["engine"] == "tiny" and result["error"] is None
    assert final[2] == texts[-1]
    record = json.loads(Path(final[6]).read_text(encoding="utf-8"))
    assert record["question"] == "Is there any defect in the object?"
    assert record["options"] == {"A": "Yes.", "B": "No."}
    assert record["engine"]["id"] == "tiny" and record["raw_output"] == final[2]
    assert record["cells"] == result["cells"] and record["answer"] == result["answer"]
    assert record["timing"]["total_s"] > 0 and record["images"]["query"]["size"] == [256, 256]
    with Image.open(final[7]) as png:
        assert png.format == "PNG" and png.size == (256, 256)


def test_final_overlay_has_red_exactly_in_the_cells(client):
    """The comparator marks real cells on this pair: the overlay changes exactly those pixels (and those of
    the borderline cells, amber: tested in test_render), red where a cell is firmly anomalous."""
    from gradio_client import handle_file

    question = "There is a defect in the object. Where is the defect?"
    options = "A. Top left.\nB. Center left.\nC. Bottom right.\nD. Top right."
    outputs = _run(
        client,
        *inspect_args(
            handle_file(str(QUERY)),
            handle_file(str(TEMPLATE)),
            question=question,
            options=options,
            engine="comparator",
        ),
    )
    final = outputs[-1]
    cells = {tuple(c) for c in final[5]["cells"]}
    assert cells, "the comparator should find the contamination"
    assert final[5]["answer"] in parse_options(options)
    query = np.asarray(Image.open(QUERY).convert("RGB")).astype(int)
    overlay = np.asarray(Image.open(final[0]).convert("RGB")).astype(int)
    borderline = {tuple(c) for c in final[5]["comparator"]["borderline"]}
    changed = np.any(overlay != query, axis=2)
    assert np.array_equal(changed, cells_to_mask(cells | borderline, (256, 256)))
    assert cells - borderline, "some cells are firmly anomalous"
    firm = cells_to_mask(cells - borderline, (256, 256))
    red = (overlay[..., 0] - query[..., 0] >= 0) & (overlay[..., 1] < query[..., 1] + 1)
    assert red[firm].all()


def test_truth_mask_gives_green_outline_and_metrics(client, tmp_path):
    from gradio_client import handle_file

    # the example's mask plus a 2x2-cell block in the top left corner the comparator cannot find, so
    # F1 and IoU are below 1 and differ (a perfect match would make many wrong formulas agree)
    arr = np.asarray(Image.open(MASK).convert("L")).copy()
    arr[:32, :32] = 255
    mask = tmp_path / "mask.png"
    Image.fromarray(arr).save(mask)
    outputs = _run(
        client,
        *inspect_args(
            handle_file(str(QUERY)),
            handle_file(str(TEMPLATE)),
            engine="comparator",
            mask=handle_file(str(mask)),
            expected="A",
            options="A. Yes.\nB. No.",
        ),
    )
    final = outputs[-1]
    truth = final[5]["truth"]
    cells = {tuple(c) for c in final[5]["cells"]}
    truth_cells = mask_to_cells(arr)
    assert cells and cells & truth_cells and truth_cells - cells, "found: the contamination, not the block"
    both = len(cells & truth_cells)
    assert truth["truth_cells"] == len(truth_cells) and truth["predicted_cells"] == len(cells)
    assert truth["patch_f1"] == pytest.approx(2 * both / (len(cells) + len(truth_cells)), abs=1e-4)
    assert truth["patch_iou"] == pytest.approx(both / len(cells | truth_cells), abs=1e-4)
    assert "patch F1" in final[4]
    overlay = np.asarray(Image.open(final[0]).convert("RGB"))
    green = (overlay[..., 1] == 200) & (overlay[..., 0] == 0) & (overlay[..., 2] == 0)
    assert green.sum() > 50
    assert "correct" in final[3]  # the expected option is marked in the answer list


def test_visual_prior_next_to_a_language_model(client):
    from gradio_client import handle_file

    outputs = _run(
        client,
        *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), prior=True, max_new_tokens=16),
    )
    final = outputs[-1]
    assert final[1] is not None
    with Image.open(final[1]) as prior:
        assert prior.size == (256, 256)
    assert "Visual prior" in final[4]


def test_compare_streams_two_engines_side_by_side(client):
    from gradio_client import handle_file

    outputs = _run(
        client,
        handle_file(str(QUERY)),
        handle_file(str(TEMPLATE)),
        "Is there any defect in the object?",
        "A. Yes.\nB. No.",
        ["tiny", "comparator"],
        "bottle",
        None,
        "",
        32,
        False,
        0.7,
        0.9,
        api_name="/compare",
    )
    assert len(outputs) >= 3
    final = outputs[-1]
    result = final[11]
    assert [e["engine"] for e in result["engines"]] == ["tiny", "comparator"]
    assert all(e["done"] for e in result["engines"])
    summary = final[9]
    assert summary.startswith(("All agree", "Answers differ")) and "segmentation" in summary
    assert final[1] and final[4]  # both panels got their text
    texts0 = [o[1] for o in outputs if _is_value(o[1])]
    assert all(b.startswith(a) for a, b in zip(texts0, texts0[1:]))


def test_compare_needs_two_engines(client):
    from gradio_client import handle_file

    outputs = _run(
        client,
        handle_file(str(QUERY)),
        handle_file(str(TEMPLATE)),
        "Q?",
        "",
        ["tiny"],
        "bottle",
        None,
        "",
        32,
        False,
        0.7,
        0.9,
        api_name="/compare",
    )
    assert "two or three engines" in outputs[-1][10]


def test_unknown_engine_is_a_clear_message(client):
    """Gradio validates the dropdown itself: the API caller gets the list of engines, not a traceback."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(
            *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="judo-xl"),
            api_name="/inspect",
        )


def test_the_token_slider_shows_the_engines_cap(app, tiny_model_dir):
    import urllib.request

    from judo.app.components import token_slider

    config = json.loads(urllib.request.urlopen(app.url + "config", timeout=30).read())
    (slider,) = [
        c["props"] for c in config["components"] if c["props"].get("elem_id") == "judo-max-new-tokens"
    ]
    assert slider["maximum"] == 48 and slider["value"] <= 48, "configs/tiny.yaml caps the tiny engine at 48"
    assert "48 tokens" in slider["info"]
    from judo.engines import build_engines, load_config
    from tests.app_server import REPO

    env = {"JUDO_ENGINES": "tiny,comparator", "JUDO_ENGINE_TINY_CHECKPOINT": str(tiny_model_dir)}
    engines = {e.id: e for e in build_engines(load_config(REPO / "configs" / "tiny.yaml", env=env))}
    assert (
        token_slider(engines["tiny"], 2048)["value"] == 48
    )  # a longer budget is not offered, nor cut silently
    assert "Not used" in token_slider(engines["comparator"], 100)["info"]


def test_public_visitors_see_no_server_configuration(app):
    import urllib.request

    page_config = urllib.request.urlopen(app.url + "config", timeout=30).read().decode()
    assert "JUDO_ENGINES" not in page_config and "tiny.yaml" not in page_config
    assert "shown when signed in, or on the server itself" in page_config


@pytest.mark.parametrize(
    "client, headers, operator",
    [
        (("127.0.0.1", 50000), {"host": "127.0.0.1:7860"}, True),
        (("::1", 50000), {"host": "[::1]:7860"}, True),
        (("10.1.2.3", 50000), {"host": "inspector.lab.example:7860"}, False),
        (("127.0.0.1", 50000), {"host": "inspector.lab.example", "x-forwarded-for": "203.0.113.9"}, False),
        (("127.0.0.1", 50000), {"host": "localhost:7860", "x-forwarded-for": "203.0.113.9"}, False),
    ],
)
def test_who_counts_as_the_operator(client, headers, operator):
    import gradio as gr
    from starlette.requests import Request

    from judo.app.owner import is_operator
    from judo.engines import load_config
    from tests.app_server import REPO

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "client": client,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    config = load_config(REPO / "configs" / "tiny.yaml", env={})
    assert is_operator(gr.Request(request=Request(scope)), bool(config.auth)) is operator
    config.auth = "lab:secret"  # with a login, every visitor has signed in
    assert is_operator(gr.Request(request=Request(scope)), bool(config.auth))


def test_compare_gives_each_engines_record_and_overlay(client):
    from gradio_client import handle_file

    outputs = _run(
        client,
        handle_file(str(QUERY)),
        handle_file(str(TEMPLATE)),
        "Is there any defect in the object?",
        "A. Yes.\nB. No.",
        ["tiny", "comparator"],
        "bottle",
        api_name="/compare",
    )
    files = outputs[-1][12]
    names = sorted(Path(f).name for f in files)
    assert len(names) == 4 and all(n.startswith("bottle-contamination-000-") for n in names)
    assert [n for n in names if "-comparator-" in n and n.endswith(".json")]
    assert [n for n in names if "-tiny-" in n and n.endswith("-overlay.png")]
    record = json.loads(
        Path(next(f for f in files if "-comparator-" in f and f.endswith(".json"))).read_text()
    )
    assert record["engine"]["label"].startswith("Comparator") and record["cells"]


def test_compare_with_one_engine_says_why_and_how_to_add_one(tiny_model_dir):
    import urllib.request

    with serve_tiny_app(tiny_model_dir, JUDO_ENGINES="comparator") as served:
        page_config = json.loads(urllib.request.urlopen(served.url + "config", timeout=30).read())
    props = {c["props"].get("elem_id"): c["props"] for c in page_config["components"]}
    why = props["judo-compare-why"]
    assert why["visible"] is True and "only **Comparator" in why["value"] and "`engines:`" in why["value"]
    assert props["judo-run-compare"]["visible"] is True  # inside a hidden column
    hidden = [
        c for c in page_config["components"] if c["type"] == "column" and c["props"].get("visible") is False
    ]
    assert hidden, "the compare controls and panels are hidden"


def test_raw_inputs_keep_their_rule_when_a_handler_refits_them() -> None:
    """Gradio rebuilds a component from its class when a handler updates its settings (the token slider,
    refitted per engine): the rebuilt copy still hands bad values over unchecked (the app says what is
    wrong in one sentence) and is still drawn as Gradio's own slider or image."""
    from judo.app.components import RawImage, RawSlider

    for made in (RawSlider(16, 512, value=64, render=False), RawImage(type="filepath", render=False)):
        rebuilt = made.__class__(**{**made.constructor_args, "render": False})
        assert rebuilt.get_block_name() in ("slider", "image")
        assert rebuilt.get_block_name() == made.get_block_name()
    slider = RawSlider(16, 512, value=64, render=False)
    assert slider.__class__(**{**slider.constructor_args, "render": False}).preprocess("abc") == "abc"
