"""The bank in its callers: `judo inspect` with several templates and threshold options, `judo eval
--engine comparator --templates K`, and the comparator engine's request fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.engines import InspectionRequest
from judo.engines.comparator import ComparatorEngine
from judo.inspect_cli import main as inspect_main
from judo.synthetic.perturb import perturb
from judo.synthetic.products import make_product

QUESTION = [
    "--question",
    "Is there any defect in the object?",
    "--options",
    "A. Yes.;B. No.",
    "--engine",
    "comparator",
]


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A query with a dark square and four golden samples of the same can, as files."""
    folder = tmp_path_factory.mktemp("golden")
    rng = np.random.default_rng(4)
    paths = []
    for i in range(4):
        path = folder / f"good_{i}.png"
        perturb(make_product("drink_can", 448, rng), rng).save(path)
        paths.append(path)
    arr = np.asarray(make_product("drink_can", 448, rng)).copy()
    arr[224:280, 196:252] = (arr[224:280, 196:252] * 0.4).astype(np.uint8)
    query = folder / "query.png"
    Image.fromarray(arr).save(query)
    return query, paths


def test_inspect_takes_several_templates_and_a_sensitivity(golden, tmp_path, capsys) -> None:
    query, paths = golden
    record = tmp_path / "record.json"
    assert inspect_main([str(query), *map(str, paths), *QUESTION, "--record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "answer: A (Yes.)" in out and "Judged against 4 of 4 golden samples" in out
    assert "(8,7)" in out.replace(" ", "")
    strict = inspect_main([str(query), *map(str, paths), *QUESTION, "--sensitivity", "0.05"])
    assert strict == 0 and "answer: B (No.)" in capsys.readouterr().out
    assert inspect_main([str(query), *map(str, paths), *QUESTION, "--false-alarm-rate", "0.5"]) == 0
    assert "0.5 false cells per good part" in capsys.readouterr().out
    assert json.loads(record.read_text())


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--sensitivity", "0", "sensitivity must be a number above 0"),
        ("--sensitivity", "-2", "sensitivity must be a number above 0"),
        ("--false-alarm-rate", "300", "false-alarm rate must be above 0 and below 256"),
    ],
)
def test_inspect_refuses_bad_threshold_settings(golden, capsys, option, value, message) -> None:
    query, paths = golden
    assert inspect_main([str(query), *map(str, paths), *QUESTION, option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_inspect_skips_an_unreadable_template_among_several(golden, tmp_path, capsys) -> None:
    query, paths = golden
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    assert inspect_main([str(query), str(broken), *map(str, paths), *QUESTION]) == 0
    captured = capsys.readouterr()
    assert "template skipped" in captured.err and "answer: A" in captured.out


def test_engine_uses_the_bank_and_reports_it(golden) -> None:
    query, paths = golden
    images = [Image.open(p).convert("RGB") for p in paths]
    request = InspectionRequest(
        Image.open(query).convert("RGB"),
        images,
        "Is there any defect?",
        {"A": "Yes.", "B": "No."},
        sensitivity=1.0,
    )
    last = list(ComparatorEngine().stream(request))[-1]
    info = last.meta["comparator"]
    assert last.answer == "A" and info["bank_size"] == 4 and info["calibrated_on"] == 4
    assert len(info["scores"]) == 16 and {(8, 7), (9, 8)} <= last.cells
    with pytest.raises(ValueError, match="false-alarm rate"):
        InspectionRequest(images[0], images[1], "q", false_alarm_rate=0)


def test_eval_comparator_with_a_bank_of_templates(mmad_root, tmp_path) -> None:
    from judo.evaluate.records import read_records
    from judo.evaluate.run import main as eval_main

    out = tmp_path / "bank.jsonl"
    args = [
        "--mmad-root",
        str(mmad_root),
        "--out",
        str(out),
        "--engine",
        "comparator",
        "--templates",
        "3",
        "--types",
        "Anomaly Detection",
        "--limit",
        "4",
        "--no-progress",
    ]
    assert eval_main(args) == 0
    records = read_records([out])
    assert len(records) == 4 and all(r.predicted in ("A", "B") for r in records)
    assert all(len(r.extra.get("templates", [])) == 3 or r.extra["config"]["shots"] == 3 for r in records)
    assert eval_main([*args[:-1], "--templates", "0"]) == 2  # argparse accepts it, the check does not


def test_the_abstain_text_says_the_real_reason() -> None:
    """A Yes/No question on a pair of two different products: the measurement abstains because the
    comparison is not meaningful, and says so (not that the question is not a Yes/No question)."""
    rng = np.random.default_rng(5)
    query, other = make_product("drink_can", 256, rng), make_product("wood", 256, rng)
    yes_no = {"A": "Yes.", "B": "No."}
    update = ComparatorEngine().answer(
        InspectionRequest(query, other, "Is there any defect in the object?", yes_no)
    )
    assert update.answer is None and not update.meta["comparator"]["valid"]
    note = update.text.strip().splitlines()[-1]
    assert "not meaningful" in note and "same product" in note and "Yes/No" not in note
    where = {"A": "Top left.", "B": "Bottom right."}
    same = ComparatorEngine().answer(InspectionRequest(query, query, "Where is the defect?", where))
    assert same.answer is None and "no difference stands out" in same.text
    other_question = ComparatorEngine().answer(
        InspectionRequest(query, query, "What is it?", {"A": "Can.", "B": "Nut."})
    )
    assert "needs a language-model engine" in other_question.text
