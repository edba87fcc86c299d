"""judo.mmad: typed loading of an MMAD root; every malformed file gives one error naming the path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from judo.mmad import (
    DATASETS,
    SUBTASK_LABELS,
    SUBTASKS,
    DomainKnowledge,
    MMADError,
    load_knowledge,
    load_mmad,
    question_key,
    subtask_of,
)

REAL_KNOWLEDGE = Path(
    os.environ.get(
        "MMAD_KNOWLEDGE", Path(__file__).resolve().parents[2] / "shared/mmad/domain_knowledge.json"
    )
)


@pytest.fixture
def root_copy(mmad_root, tmp_path) -> Path:
    """A private copy of the session root that a test may damage."""
    return Path(shutil.copytree(mmad_root, tmp_path / "MMAD"))


def _write(root: Path, data) -> None:
    (root / "mmad.json").write_text(data if isinstance(data, str) else json.dumps(data))


def _entry(**over) -> dict:
    entry = {
        "image_path": "image/good/000.png",
        "mask_path": "",
        "similar_templates": ["MVTec-AD/x/train/good/000.png"],
        "random_templates": ["MVTec-AD/x/train/good/001.png"],
        "conversation": [
            {
                "Question": "Is there any defect in the object?",
                "Answer": "B",
                "Options": {"B": "No.", "A": "Yes."},
                "type": "Anomaly Detection",
                "annotation": True,
            },
            {
                "Question": "What is the shape?",
                "Answer": "A",
                "Options": {"A": "Round.", "B": "Square."},
                "type": "Object Structure",
            },
        ],
    }
    entry.update(over)
    return entry


# ---------------------------------------------------------------------------------------------- names


def test_subtasks_and_labels():
    assert len(SUBTASKS) == 7 and set(SUBTASK_LABELS) == set(SUBTASKS)
    assert SUBTASK_LABELS["Anomaly Detection"] == "Anomaly Discrimination"
    assert DATASETS == ("DS-MVTec", "MVTec-LOCO", "VisA", "GoodsAD")
    assert subtask_of("Object Structure") == subtask_of("Object Details") == "Object Analysis"
    assert all(subtask_of(s) == s for s in SUBTASKS)
    assert subtask_of("Something New") == "Something New"
    assert question_key("DS-MVTec/bottle/image/good/000.png", 2) == "DS-MVTec/bottle/image/good/000.png#2"


# ---------------------------------------------------------------------------------------------- good root


def test_load_synthetic_root(mmad_root):
    root = load_mmad(mmad_root, check_files=True)
    assert root.root == mmad_root and len(root) == len(json.loads((mmad_root / "mmad.json").read_text()))
    assert set(root.categories()) == set(DATASETS)
    keys = set()
    for sample, question in root.iter_questions():
        assert sample.image_path.is_file() and sample.image_path.is_absolute()
        assert sample.key.startswith(f"{sample.dataset}/{sample.category}/image/{sample.defect}/")
        assert sample.is_normal == ("good" in sample.key) == (sample.mask_path is None)
        assert all(t.is_file() for t in sample.similar_templates + sample.random_templates)
        assert sample.questions[question.index] is question
        assert question.answer in question.options and list(question.options) == sorted(question.options)
        assert question.subtask in SUBTASKS
        keys.add(question_key(sample.key, question.index))
    assert len(keys) == sum(len(s.questions) for s in root.samples.values())  # ids are unique
    subtasks = {q.subtask for _, q in root.iter_questions()}
    assert subtasks == set(SUBTASKS)


def test_options_are_put_in_letter_order(tmp_path):
    (tmp_path / "mmad.json").write_text(json.dumps({"DS-MVTec/x/image/good/000.png": _entry()}))
    sample = load_mmad(tmp_path).samples["DS-MVTec/x/image/good/000.png"]
    assert list(sample.questions[0].options) == ["A", "B"]
    assert sample.questions[1].annotation is True  # missing annotation defaults to True
    assert sample.mask_path is None and sample.defect == "good"
    assert sample.similar_templates == [tmp_path / "MVTec-AD/x/train/good/000.png"]
    assert load_mmad(tmp_path).knowledge is None


def test_knowledge_lookup(mmad_root):
    knowledge = load_mmad(mmad_root).knowledge
    assert isinstance(knowledge, DomainKnowledge)
    bottle = knowledge.for_category("DS-MVTec", "bottle")
    assert bottle == knowledge.for_category("MVTec", "bottle") and "good" in bottle
    assert knowledge.text_for("DS-MVTec", "bottle") == "\n".join(bottle.values())
    assert knowledge.for_category("VisA", "teapot") == {} and knowledge.text_for("VisA", "teapot") == ""
    entries = knowledge.all_entries()
    assert len(entries) == sum(len(d) for c in knowledge.entries.values() for d in c.values())
    assert {e.dataset for e in entries} == {"MVTec", "MVTec-LOCO", "VisA", "GoodsAD"}


def test_knowledge_from_an_explicit_path(tmp_path, mmad_root):
    (tmp_path / "mmad.json").write_text(json.dumps({"DS-MVTec/bottle/image/good/000.png": _entry()}))
    root = load_mmad(tmp_path, knowledge=mmad_root / "domain_knowledge.json")
    assert root.knowledge is not None and root.knowledge.text_for("DS-MVTec", "bottle")
    with pytest.raises(MMADError, match="domain_knowledge.json not found"):
        load_mmad(tmp_path, knowledge=tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------- bad roots


def test_missing_root_and_file(tmp_path):
    with pytest.raises(MMADError, match="root folder not found") as info:
        load_mmad(tmp_path / "nowhere")
    assert "nowhere" in str(info.value)
    with pytest.raises(MMADError, match="mmad.json not found") as info:
        load_mmad(tmp_path)
    assert info.value.path == tmp_path / "mmad.json"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"a": ', "not valid JSON \\(line 1"),
        ("[1, 2]", "expected an object keyed by image path, got list"),
        ("{}", "contains no samples"),
    ],
)
def test_malformed_json(tmp_path, content, message):
    _write(tmp_path, content)
    with pytest.raises(MMADError, match=message) as info:
        load_mmad(tmp_path)
    assert str(tmp_path / "mmad.json") in str(info.value)


def test_every_structural_problem_is_reported_at_once(tmp_path):
    bad_question = _entry()
    del bad_question["conversation"][1]["Options"]
    _write(
        tmp_path,
        {
            "DS-MVTec/x/image/good/000.png": _entry(),
            "DS-MVTec/x/image/good/001.png": _entry(image_path=None),
            "DS-MVTec/x/image/good/002.png": _entry(conversation="nope"),
            "DS-MVTec/x/image/good/003.png": bad_question,
            "DS-MVTec/x/image/good/004.png": _entry(similar_templates="MVTec-AD/x.png"),
            "toplevel.png": _entry(),
            "DS-MVTec/x/image/good/005.png": [],
        },
    )
    with pytest.raises(MMADError) as info:
        load_mmad(tmp_path)
    err = info.value
    assert len(err.problems) == 6
    text = str(err)
    assert text.startswith(f"{tmp_path / 'mmad.json'}: 6 problems")
    assert "good/001.png': missing 'image_path'" in text
    assert "good/002.png': missing 'conversation'" in text
    assert "good/003.png' conversation[1]: missing 'Options'" in text
    assert "'similar_templates' should be a list of paths" in text
    assert "'toplevel.png': key should look like" in text
    assert "good/005.png': should be an object, got list" in text


@pytest.mark.parametrize(
    "question, message",
    [
        ({"Question": "q", "Answer": 1, "Options": {"A": "x"}, "type": "t"}, "'Answer' should be a letter"),
        ({"Question": "q", "Answer": "A", "Options": {}, "type": "t"}, "'Options' should be a non-empty"),
        (
            {"Question": "q", "Answer": "A", "Options": {"A": 3}, "type": "t"},
            "'Options' should be a non-empty",
        ),
        ({"Question": None, "Answer": "A", "Options": {"A": "x"}, "type": "t"}, "should be texts"),
        ("just text", "should be an object, got str"),
    ],
)
def test_bad_questions(tmp_path, question, message):
    _write(tmp_path, {"VisA/x/image/good/000.png": _entry(conversation=[question])})
    with pytest.raises(MMADError, match=message):
        load_mmad(tmp_path)


def test_check_files_reports_all_missing_files(root_copy):
    data = json.loads((root_copy / "mmad.json").read_text())
    anomalous = next(k for k in data if "good" not in k)
    dataset, category = anomalous.split("/")[:2]
    entry = data[anomalous]
    (root_copy / anomalous).unlink()
    (root_copy / dataset / category / entry["mask_path"]).unlink()
    (root_copy / entry["random_templates"][0]).unlink()
    load_mmad(root_copy)  # structure alone is still fine
    with pytest.raises(MMADError) as info:
        load_mmad(root_copy, check_files=True)
    text = str(info.value)
    assert len(info.value.problems) == 3, text
    assert f"image file {anomalous} (entry" in text
    assert entry["mask_path"] in text and entry["random_templates"][0] in text


def test_malformed_knowledge(root_copy):
    (root_copy / "domain_knowledge.json").write_text(
        json.dumps({"MVTec": {"bottle": {"good": 3}}, "VisA": []})
    )
    with pytest.raises(MMADError) as info:
        load_mmad(root_copy)
    assert str(root_copy / "domain_knowledge.json") in str(info.value)
    assert len(info.value.problems) == 2
    (root_copy / "domain_knowledge.json").write_text("[]")
    with pytest.raises(MMADError, match="expected an object of datasets"):
        load_knowledge(root_copy / "domain_knowledge.json")


def test_error_lists_are_capped():
    err = MMADError("x.json", [f"problem {i}" for i in range(50)])
    assert "problem 19" in str(err) and "problem 20" not in str(err) and "... and 30 more" in str(err)
    assert len(err.problems) == 50


# ---------------------------------------------------------------------------------------------- real file


@pytest.mark.skipif(not REAL_KNOWLEDGE.is_file(), reason="MMAD's domain_knowledge.json is not available")
def test_real_domain_knowledge():
    knowledge = load_knowledge(REAL_KNOWLEDGE)
    assert set(knowledge.entries) == {"MVTec", "MVTec-LOCO", "VisA", "GoodsAD"}
    assert sum(len(c) for c in knowledge.entries.values()) == 38
    bottle = knowledge.for_category("DS-MVTec", "bottle")
    assert {"good", "broken_large", "broken_small", "contamination"} <= set(bottle)
    assert bottle["broken_large"].startswith(" <Large Breakage>\n Description:")
    text = knowledge.text_for("DS-MVTec", "bottle")
    assert text.count("Description:") == len(bottle) and text == "\n".join(bottle.values())
    assert knowledge.text_for("VisA", "pcb1")
