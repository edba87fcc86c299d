"""The served app's comparator: the product's whole golden gallery is the bank, the chosen template
the one shown; the /inspect endpoint takes a sensitivity; the calibration lands beside the samples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from judo.comparator.calibration import CALIBRATION_FILE
from judo.synthetic.perturb import perturb
from judo.synthetic.products import make_product
from tests.app_server import inspect_args, serve_tiny_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """<golden>/can/good_*.png (four normals) and a query with a dark square in cells (8-9, 7-8)."""
    root = tmp_path_factory.mktemp("golden")
    (root / "can").mkdir()
    rng = np.random.default_rng(4)
    for i in range(4):
        perturb(make_product("drink_can", 448, rng), rng).save(root / "can" / f"good_{i}.png")
    arr = np.asarray(make_product("drink_can", 448, rng)).copy()
    arr[224:280, 196:252] = (arr[224:280, 196:252] * 0.4).astype(np.uint8)
    query = root / "query.png"
    Image.fromarray(arr).save(query)
    return root, query


@pytest.fixture(scope="module")
def client(tiny_model_dir, golden):
    from gradio_client import Client

    with serve_tiny_app(tiny_model_dir, JUDO_GOLDEN_DIR=str(golden[0])) as served:
        yield Client(served.url, verbose=False)


def _inspect(client, query, template, **kw):
    from gradio_client import handle_file

    args = inspect_args(
        handle_file(str(query)), handle_file(str(template)), engine="comparator", category="can", **kw
    )
    job = client.submit(*args, api_name="/inspect")
    for _ in job:
        pass
    return job.outputs()[-1]


def test_the_gallery_is_the_bank_and_the_sensitivity_is_a_parameter(client, golden):
    root, query = golden
    final = _inspect(client, query, root / "can" / "good_2.png")
    result = final[5]
    assert result["error"] is None and result["answer"] == "A"
    assert result["comparator"]["bank_size"] == 4 and result["comparator"]["calibrated_on"] == 4
    assert [8, 7] in result["cells"] and "Judged against 4 of 4 golden samples" in final[2]
    assert (root / "can" / CALIBRATION_FILE).exists()
    blunt = _inspect(client, query, root / "can" / "good_2.png", sensitivity=0.25)[5]
    assert blunt["comparator"]["sensitivity"] == 0.25
    assert len(blunt["cells"]) < len(result["cells"]) or blunt["answer"] == "B"


def test_a_bad_sensitivity_is_refused_with_a_sentence(client, golden):
    root, query = golden
    for bad in (-1, 0, 1000):
        final = _inspect(client, query, root / "can" / "good_0.png", sensitivity=bad)
        assert final[5]["error"].startswith("The sensitivity must be a number above 0"), bad
        assert "Traceback" not in final[4]
    # Directly on the handler, what a slider cannot even send.
    from judo.app.api import InspectForm
    from judo.app.runner import Runner
    from judo.engines.comparator import ComparatorEngine

    runner = Runner([ComparatorEngine()])
    for bad in ("abc", float("nan")):
        form = InspectForm(
            str(query),
            str(root / "can" / "good_0.png"),
            "Is there any defect?",
            "A. Yes.\nB. No.",
            "comparator",
            "can",
            sensitivity=bad,
        )
        first = next(iter(runner.inspect(form)))
        assert first.result["error"].startswith("The sensitivity must be a number above 0"), bad


def test_a_wrong_product_pair_shows_one_warning_headline(client, golden, tmp_path):
    """A wood board against the can's gallery: one headline, every warning folded under it, none of them
    repeated in the text, and no language-model facts (first-token time, resizing for a model)."""
    wood = tmp_path / "wood.png"
    make_product("wood", 448, np.random.default_rng(9)).save(wood)
    final = _inspect(client, wood, golden[0] / "can" / "good_0.png")
    status, text = final[4], final[2]
    assert final[5]["answer"] is None and final[5]["comparator"]["valid"] is False
    assert (
        status.count("⚠") == 1
        and "⚠ No meaningful comparison: the template may not show the same product." in status
    )
    assert "<details><summary>All warnings (" in status and status.count("<li>") >= 2
    assert "low similarity" not in text, "the warnings are listed once, under the headline"
    assert "first token" not in status and "for the model" not in status
