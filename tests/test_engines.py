"""Engines: configuration, the shared model pool, the Qwen engine on the tiny model, RAG lookup, comparator."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.engines import (
    ConfigError,
    InspectionRequest,
    ModelPool,
    UnavailableEngine,
    Update,
    build_engines,
    default_engine,
    load_config,
)
from judo.engines.comparator import ComparatorEngine
from judo.engines.config import looks_local
from judo.engines.qwen import QwenEngine
from judo.engines.rag import KnowledgeBase, KnowledgeError
from judo.generation import decoding

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _pair(defect: bool = True) -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(0)
    base = rng.integers(90, 110, (128, 128, 3), dtype=np.uint8)
    query = base.copy()
    if defect:
        query[40:56, 72:96] = 250
    return Image.fromarray(query), Image.fromarray(base)


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "configs").mkdir(exist_ok=True)
    p = tmp_path / "configs" / "app.yaml"
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------- config
def test_default_config_names_the_paper_engines_and_the_comparator():
    cfg = load_config(REPO / "configs" / "app.yaml", env={})
    labels = [e.label for e in cfg.engines]
    assert labels[:3] == ["JUDO", "Base GRPO + RAG", "Base GRPO"]
    assert any(e.kind == "comparator" for e in cfg.engines)
    assert cfg.engine("judo").checkpoint == str(REPO / "outputs" / "judo-stage3")
    assert (
        cfg.engine("base-grpo").checkpoint
        == cfg.engine("base-grpo-rag").checkpoint
        == str(REPO / "outputs" / "base-grpo")
    )
    assert cfg.engine("base-grpo-rag").rag and not cfg.engine("base-grpo").rag
    assert cfg.queue.concurrency_limit == 1 and cfg.queue.max_size > 0


def test_env_overrides_engine_fields_and_selection(tmp_path):
    env = {
        "JUDO_ENGINE_JUDO_CHECKPOINT": "org/judo-7b",
        "JUDO_ENGINE_BASE_GRPO_RAG_QUANTIZATION": "4bit",
        "JUDO_ENGINE_JUDO_MAX_NEW_TOKENS": "99",
        "JUDO_ENGINES": "judo,base-grpo-rag,comparator",
        "JUDO_QUEUE_SIZE": "3",
        "JUDO_MMAD_ROOT": str(tmp_path),
    }
    cfg = load_config(REPO / "configs" / "app.yaml", env=env)
    assert [e.id for e in cfg.engines] == ["judo", "base-grpo-rag", "comparator"]
    assert cfg.engine("judo").checkpoint == "org/judo-7b"  # a hub id stays a hub id
    assert cfg.engine("judo").max_new_tokens == 99
    assert cfg.engine("base-grpo-rag").quantization == "4bit"
    assert cfg.queue.max_size == 3 and cfg.templates.mmad_root == str(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("engines: []", "no engines"),
        ("engines:\n  - {id: a, label: A}", "needs a checkpoint"),
        ("engines:\n  - {id: a, label: A, checkpoint: x, quantization: 3bit}", "quantization"),
        ("engines:\n  - {id: a, label: A, checkpoint: x, colour: red}", "unknown field"),
        (
            "engines:\n  - {id: a, label: A, kind: comparator}\n  - {id: a, label: B, kind: comparator}",
            "unique",
        ),
        ("engines: [oops", "not valid YAML"),
        ("engines:\n  - {id: a, label: A, checkpoint: x, max_new_tokens: 100000}", "max_new_tokens"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), env={})


def test_bad_env_override_is_a_config_error():
    with pytest.raises(ConfigError, match="JUDO_ENGINE_JUDO_MAX_NEW_TOKENS"):
        load_config(REPO / "configs" / "app.yaml", env={"JUDO_ENGINE_JUDO_MAX_NEW_TOKENS": "many"})
    with pytest.raises(ConfigError, match="unknown engine"):
        load_config(REPO / "configs" / "app.yaml", env={"JUDO_ENGINES": "nope"})


def test_checkpoint_kind_detection(tmp_path):
    assert looks_local("outputs/judo-stage3", tmp_path)
    assert looks_local("./ckpt", tmp_path) and looks_local("/abs/ckpt", tmp_path)
    assert not looks_local("Qwen/Qwen2.5-VL-7B-Instruct", tmp_path)
    assert not looks_local("tiny", tmp_path)


# --------------------------------------------------------------------------------------------- pool
def test_missing_checkpoints_become_unavailable_and_comparator_is_default():
    cfg = load_config(REPO / "configs" / "app.yaml", env={"JUDO_ENGINE_JUDO_CHECKPOINT": "/nonexistent/judo"})
    engines = build_engines(cfg)
    by_id = {e.id: e for e in engines}
    assert isinstance(by_id["judo"], UnavailableEngine)
    assert "does not exist" in by_id["judo"].reason and "JUDO_ENGINE_JUDO_CHECKPOINT" in by_id["judo"].reason
    assert not by_id["base-grpo"].available and by_id["base-grpo"].reason
    assert by_id["comparator"].available
    assert default_engine(engines, "judo").id == "comparator"
    last = list(by_id["judo"].stream(InspectionRequest(*_pair(), "Is there a defect?")))[-1]
    assert last.done and "unavailable" in last.error


def test_engines_sharing_a_checkpoint_share_one_model(tiny_model_dir):
    calls = []

    def loader(checkpoint, quantization, device):
        calls.append((checkpoint, quantization))
        from judo.models import load_model, load_processor

        return load_model(checkpoint), load_processor(checkpoint)

    text = f"""
engines:
  - {{id: a, label: A, checkpoint: {tiny_model_dir}}}
  - {{id: b, label: B, checkpoint: {tiny_model_dir}, rag: true, knowledge: {EXAMPLES / "domain_knowledge.json"}}}
  - {{id: c, label: C, checkpoint: {tiny_model_dir}, quantization: 8bit}}
"""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(_write(Path(tmp), text), env={})
    pool = ModelPool(
        loader=lambda c, q, d: (
            loader(c, q, d)
            if q is None
            else (_ for _ in ()).throw(
                __import__("judo.engines.pool", fromlist=["EngineLoadError"]).EngineLoadError(
                    "no bitsandbytes here"
                )
            )
        )
    )
    engines = build_engines(cfg, pool)
    assert [e.available for e in engines] == [True, True, False]
    assert engines[0].model is engines[1].model
    assert calls == [(str(tiny_model_dir), None)]
    assert "no bitsandbytes here" in engines[2].reason


# ------------------------------------------------------------------------------------------- qwen
@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir):
    from judo.models import load_model, load_processor

    return QwenEngine(
        "tiny",
        "Tiny",
        load_model(tiny_model_dir),
        load_processor(tiny_model_dir),
        defaults=decoding(24, temperature=0.7, top_p=0.9),
    )


def test_qwen_engine_streams_cumulative_text_and_ends_with_one_final(tiny_engine):
    req = InspectionRequest(*_pair(), "Is there any defect in the object?", {"A": "Yes.", "B": "No."})
    updates = list(tiny_engine.stream(req))
    assert updates[-1].done and sum(u.done for u in updates) == 1
    texts = [u.text for u in updates]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:])), "text must only grow"
    final = updates[-1]
    assert final.error is None and final.text
    assert final.answer in {None, "A", "B"}
    assert final.meta["new_tokens"] <= 24 and final.meta["total_s"] > 0
    # greedy decoding is deterministic
    assert list(tiny_engine.stream(req))[-1].text == final.text


def test_qwen_engine_stops_on_the_stop_event(tiny_engine):
    req = InspectionRequest(*_pair(), "Is there any defect?", {"A": "Yes.", "B": "No."})
    stop = threading.Event()
    stream = tiny_engine.stream(req, stop, settings=decoding(24))
    seen = []
    for u in stream:
        seen.append(u)
        if u.text:
            stop.set()
    assert seen[-1].done and seen[-1].meta["stopped"]
    assert any("Stopped by the user" in w for w in seen[-1].meta["warnings"])


def test_settings_cannot_exceed_the_engine_cap(tiny_engine):
    assert tiny_engine.settings(decoding(4000)).max_new_tokens == 24
    assert tiny_engine.settings(decoding(5)).max_new_tokens == 5


class _ScriptedModelEngine(QwenEngine):
    """The real QwenEngine with generation replaced by a fixed text: exercises the final checks."""

    def __init__(self, text: str):
        super().__init__("s", "Scripted", None, _Tok(), defaults=decoding(64))
        self._text = text


class _Tok:
    tokenizer = None

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


@pytest.mark.parametrize(
    "text, answer, warning",
    [
        ("<seg> (1,2)-(1,4) </seg><think>a scratch</think><answer>B</answer>", "B", None),
        ("<seg> (1,2)-(1,99) </seg><think>x</think><answer>A</answer>", "A", "malformed"),
        ("<seg> </seg><think>x</think><answer>F</answer>", "B", "not an option"),  # MMAD closest-option rule
        ("<seg> </seg><think>x</think>", "A", "No <answer> tag"),
        ("I think it is fine", ..., "does not follow"),  # the letter comes from MMAD's closest-option rule
        ("", None, "no text"),
    ],
)
def test_malformed_and_out_of_range_output_become_warnings(monkeypatch, text, answer, warning):
    import judo.generation

    def fake_stream(model, processor, prompt, *args, **kw):
        for i in range(0, len(text), 5):
            yield text[i : i + 5]

    monkeypatch.setattr(judo.generation, "stream_generate", fake_stream)
    engine = _ScriptedModelEngine(text)
    final = list(engine.stream(InspectionRequest(*_pair(), "Where?", {"A": "Left.", "B": "Right."})))[-1]
    assert final.done and final.error is None
    if answer is not ...:
        assert final.answer == answer
    if warning:
        assert any(warning in w for w in final.meta["warnings"]), final.meta["warnings"]
    else:
        assert final.cells == {(1, 2), (1, 3), (1, 4)} and not final.meta["warnings"]


def test_generation_crash_is_reported_not_raised(monkeypatch):
    import judo.generation

    def broken(*a, **kw):
        yield "<seg> (0,0)"
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(judo.generation, "stream_generate", broken)
    final = list(_ScriptedModelEngine("").stream(InspectionRequest(*_pair(), "Q?")))[-1]
    assert final.done and "out of memory" in final.error


def test_empty_question_is_refused():
    with pytest.raises(ValueError, match="question is empty"):
        InspectionRequest(*_pair(), "   ")


# -------------------------------------------------------------------------------------------- rag
def test_rag_oracle_lookup_by_category():
    kb = KnowledgeBase.from_file(EXAMPLES / "domain_knowledge.json")
    hit = kb.lookup(InspectionRequest(*_pair(), "Is there any defect?", category="Bottle"))
    assert hit.mode == "oracle"
    assert {e["category"] for e in hit.entries} == {"bottle"}
    assert "bottle" in hit.summary() and "category lookup" in hit.summary()


def test_rag_retrieval_when_category_unknown_names_the_entries():
    kb = KnowledgeBase.from_file(EXAMPLES / "domain_knowledge.json")
    hit = kb.lookup(
        InspectionRequest(*_pair(), "Is the hazelnut shell cracked?", category="nut from supplier X")
    )
    assert hit.mode == "retrieval" and 1 <= len(hit.entries) <= 3
    assert all(isinstance(e["score"], float) for e in hit.entries)
    assert hit.entries[0]["category"] == "hazelnut"
    assert "retrieved by similarity" in hit.summary()


def test_rag_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(KnowledgeError, match="JUDO_KNOWLEDGE"):
        KnowledgeBase.from_file(tmp_path / "nope.json")


def test_rag_engine_puts_knowledge_in_the_prompt(tiny_engine, monkeypatch):
    import judo.generation

    prompts = []

    def capture(model, processor, prompt, *args, **kw):
        prompts.append(prompt)
        yield "<answer>A</answer>"

    monkeypatch.setattr(judo.generation, "stream_generate", capture)
    kb = KnowledgeBase.from_file(EXAMPLES / "domain_knowledge.json")
    engine = QwenEngine("r", "RAG", tiny_engine.model, tiny_engine.processor, knowledge=kb)
    final = list(
        engine.stream(InspectionRequest(*_pair(), "Defect?", {"A": "Yes.", "B": "No."}, category="pill"))
    )[-1]
    user_text = json.dumps(prompts[0].messages)
    assert "domain knowledge" in user_text.lower()
    assert final.meta["knowledge"]["mode"] == "oracle"


# ------------------------------------------------------------------------------------- comparator
def _example(name: str) -> tuple[Image.Image, Image.Image]:
    from judo.images import load_image

    index = json.loads((EXAMPLES / "index.json").read_text())
    ex = next(e for e in index["examples"] if e["id"] == name)
    return load_image(EXAMPLES / ex["query"]), load_image(EXAMPLES / ex["template"])


def test_comparator_engine_answers_detection_and_position():
    engine = ComparatorEngine()
    query, template = _example("bottle-contamination-000")
    updates = list(
        engine.stream(
            InspectionRequest(
                query, template, "Is there any defect in the object?", {"A": "No.", "B": "Yes."}
            )
        )
    )
    final = updates[-1]
    assert final.done and final.answer == "B" and final.cells
    assert final.text.startswith("[Comparator measurement")
    assert len(updates) > 2  # streamed sentence by sentence
    rows = [r for r, _ in final.cells]
    cols = [c for _, c in final.cells]
    # the options name the 3x3 region holding the cells' centre, and one far away
    where = list(
        engine.stream(
            InspectionRequest(
                query,
                template,
                "Where is the defect?",
                {"A": "Bottom right.", "B": "Center left.", "C": "Top right."},
            )
        )
    )[-1]
    assert sum(rows) / len(rows) < 10.7 and sum(cols) / len(cols) < 5.3
    assert where.answer == "B"


def test_comparator_engine_abstains_on_questions_it_cannot_answer():
    final = list(
        ComparatorEngine().stream(
            InspectionRequest(
                *_example("bottle-contamination-000"),
                "What is the type of the defect?",
                {"A": "Scratch.", "B": "Hole."},
            )
        )
    )[-1]
    assert final.answer is None and final.meta["abstained"]
    assert "language model" in final.text


@pytest.mark.parametrize("name", ["carpet-good-000", "metal_plate-good-000", "wood-good-000"])
def test_normal_texture_example_gives_no_cells_and_answers_no(name):
    """Shipped normal texture examples: the template is another normal sample of the product."""
    final = list(
        ComparatorEngine().stream(
            InspectionRequest(*_example(name), "Is there any defect?", {"A": "Yes.", "B": "No."})
        )
    )[-1]
    assert isinstance(final, Update) and not final.cells and final.answer == "B"


def test_normal_object_against_a_perturbed_golden_sample_gives_no_cells():
    """Within the comparator's stated envelope (shift, a few degrees, a few % scale, lighting, noise, JPEG)
    a normal object gives no cells. Templates of another pose (a screw at any angle) are outside it."""
    import numpy as np

    from judo.synthetic.perturb import perturb

    query, _ = _example("bottle-good-000")
    template = perturb(query, np.random.default_rng(3))
    final = list(
        ComparatorEngine().stream(
            InspectionRequest(query, template, "Is there any defect?", {"A": "Yes.", "B": "No."})
        )
    )[-1]
    assert not final.cells and final.answer == "B"
