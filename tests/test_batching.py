"""Batched generation: a left-padded batch answers like single calls; pictures resized once; eval image cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from judo.generation import GenerationError, decoding, generate_batch
from judo.models import load_model, load_processor
from judo.prompts import inspection_prompt
from tests.noise import noise

TOKENS = 12


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)


@pytest.fixture(scope="module")
def prompts():
    """Three questions on one query (separate but equal image objects), one on another; one template."""
    options = {"A": "Yes.", "B": "No."}
    return [
        inspection_prompt(noise(1), noise(0), "Is there any defect in the object?", options),
        inspection_prompt(noise(1), noise(0), "Is the object normal?", options, style="mmad"),
        inspection_prompt(
            noise(1), noise(0), "Where is the defect?", {"A": "Top.", "B": "Bottom.", "C": "Nowhere."}
        ),
        inspection_prompt(noise(2), noise(0), "Any defect?", options, knowledge="Hole: a round gap."),
    ]


def test_batch_with_shared_pictures_equals_single_calls(tiny, prompts):
    model, processor = tiny
    batch = generate_batch(model, processor, prompts, decoding(TOKENS))
    assert batch == [generate_batch(model, processor, [p], decoding(TOKENS))[0] for p in prompts]


def test_image_placeholder_in_the_question_is_refused(tiny):
    model, processor = tiny
    prompt = inspection_prompt(noise(1), noise(0), "What is <|image_pad|>?", {"A": "Yes.", "B": "No."})
    with pytest.raises(GenerationError, match="placeholder"):
        generate_batch(model, processor, [prompt], decoding(2))


def test_eval_image_cache_shares_and_bounds(tmp_path):
    from judo.evaluate.run import ImageCache
    from judo.images import ImageInputError

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        noise(i, (64, 64)).save(paths[-1])
    cache = ImageCache(size=2)
    first = cache.load(paths[0])
    assert cache.load(paths[0]) is first  # the next question on the same picture gets the same object
    cache.load(paths[1])
    cache.load(paths[2])  # evicts the least recently used: paths[0]
    assert cache.load(paths[0]) is not first
    assert np.array_equal(np.asarray(cache.load(paths[0])), np.asarray(first))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageInputError):
        cache.load(tmp_path / "bad.png")


def test_engine_batch_resizes_each_picture_once_and_answers_like_run(tiny, monkeypatch):
    import judo.images
    from judo.engines.base import InspectionRequest
    from judo.engines.qwen import QwenEngine

    engine = QwenEngine("tiny", "Tiny", *tiny, defaults=decoding(TOKENS))
    query, template = noise(1, (256, 256)), noise(0, (320, 256))
    resized = []
    real = judo.images.to_model_size

    def counting(image, size=448):
        if image.size != (size, size):
            resized.append(image.size)
        return real(image, size)

    monkeypatch.setattr(judo.images, "to_model_size", counting)
    requests = [
        InspectionRequest(query, template, q, {"A": "Yes.", "B": "No."})
        for q in ("Any defect?", "Is it normal?", "Any defect?")
    ]
    batch = engine.answer_batch(requests)
    assert sorted(resized) == [(256, 256), (320, 256)]
    monkeypatch.setattr(judo.images, "to_model_size", real)
    for request, update in zip(requests, batch, strict=True):
        alone = engine.answer(request)
        assert update.done and (update.text, update.cells, update.answer) == (
            alone.text,
            alone.cells,
            alone.answer,
        )


def test_eval_threads_option(tiny_model_dir, mmad_root, tmp_path, capsys):
    from judo.evaluate.records import iter_file
    from judo.evaluate.run import main

    out = tmp_path / "run.jsonl"
    common = ["--mmad-root", str(mmad_root), "--out", str(out), "--checkpoint", str(tiny_model_dir)]
    assert main([*common, "--threads", "0", "--no-progress"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    before = torch.get_num_threads()
    try:
        args = ["--threads", "1", "--limit", "3", "--batch-size", "2", "--max-new-tokens", "2"]
        assert main([*common, *args, "--device", "cpu", "--no-progress"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert len(list(iter_file(out))) == 3
